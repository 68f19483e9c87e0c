//! `chat-server --check-config`: the effective configuration as a TOML
//! file (it can be fed back with `--config`), each line's source in a
//! comment, secrets masked.

use std::collections::{BTreeMap, HashSet};

use clap::Command as ClapCommand;

/// Renders `effective` (setting → value and source). The settings whose
/// environment values `cmd` hides are secrets: a URL shows its user and
/// host but `***` for its password, any other value is `***`.
pub fn render(cmd: &ClapCommand, effective: &BTreeMap<String, (Option<String>, String)>) -> String {
    let secret: HashSet<&str> = cmd
        .get_arguments()
        .filter(|a| a.is_hide_env_values_set())
        .filter_map(|a| a.get_long())
        .collect();
    let mut out = String::from("# chat-server: the effective configuration (secrets masked)\n");
    for (key, (value, source)) in effective {
        match value {
            Some(v) => {
                let shown = if secret.contains(key.as_str()) {
                    mask(v)
                } else {
                    v.clone()
                };
                let quoted = match shown.parse::<i64>() {
                    Ok(n) if n >= 0 && !shown.starts_with('+') => n.to_string(),
                    _ => toml::Value::String(shown).to_string(),
                };
                out.push_str(&format!("{key} = {quoted}  # from {source}\n"));
            }
            None => out.push_str(&format!("# {key} is not set\n")),
        }
    }
    out
}

/// Shows the settings whose default follows from others (`db` and
/// `data-dir`) with the value the server uses, when nothing set them.
pub fn fill_derived(
    effective: &mut BTreeMap<String, (Option<String>, String)>,
    config: &super::Config,
) {
    let derived = [
        ("db", config.db.clone()),
        ("data-dir", config.data_dir().display().to_string()),
    ];
    for (key, value) in derived {
        if value.is_empty() {
            continue;
        }
        if let Some(entry @ (None, _)) = effective.get_mut(key) {
            *entry = (Some(value), "the default".to_owned());
        }
    }
}

/// `scheme://user:***@host/...` for a URL with a password, `***` for
/// anything else that is not a URL or a `sqlite:` path.
pub fn mask(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        // A SQLite path holds no secret.
        if value.starts_with("sqlite:") {
            return value.to_owned();
        }
        return "***".to_owned();
    };
    let host_start = rest.find('/').unwrap_or(rest.len());
    match rest[..host_start].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        None => value.to_owned(),
    }
}
