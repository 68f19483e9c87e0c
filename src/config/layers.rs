//! The four layers of a setting's value: flag > environment > file > default.
//!
//! The command line is parsed by clap as given. The environment and the
//! config file are turned into `--key=value` arguments placed *before*
//! it, the file's first: clap's `args_override_self` lets the last
//! occurrence win, so the order of the argument list is the precedence,
//! and every value goes through the one parser its setting declares.
//! Clap's own environment lookup is switched off ([`without_env`]) so that
//! the environment comes from the `env` function [`super::Config::load`]
//! is given (tests pass a map).
//!
//! Each environment or file value is also parsed alone first, so that an
//! error names where the bad value came from.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{Arg, Command as ClapCommand};

use super::ConfigError;

/// Where a value came from, for errors and `--check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    Flag,
    /// An environment variable, by name.
    Env(String),
    /// The config file, by path.
    File(String),
}

impl Source {
    /// How errors and `--check-config` name it.
    pub fn describe(&self) -> String {
        match self {
            Source::Flag => "the command line".to_owned(),
            Source::Env(name) => format!("the environment ({name})"),
            Source::File(path) => format!("the config file {path}"),
        }
    }
}

/// One value from the environment or the file, by setting (the flag
/// without dashes).
#[derive(Debug, Clone)]
pub struct Layered {
    /// The setting's key: its flag without `--`.
    pub key: String,
    /// The value as text.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

/// The command with clap's own environment lookup off.
pub fn without_env(cmd: ClapCommand) -> ClapCommand {
    cmd.mut_args(|a| a.env(None::<&str>))
}

/// The settings' arguments that take a value, by flag, with their
/// environment variables (read from the declaration before
/// [`without_env`]).
pub fn settings(cmd: &ClapCommand) -> Vec<(&Arg, String, Option<String>)> {
    cmd.get_arguments()
        .filter(|a| a.get_action().takes_values())
        .filter_map(|a| {
            let long = a.get_long()?.to_owned();
            let env = a.get_env().map(|e| e.to_string_lossy().into_owned());
            Some((a, long, env))
        })
        .collect()
}

/// The values the environment gives, skipping empty ones (as unset).
pub fn from_env(cmd: &ClapCommand, env: &impl Fn(&str) -> Option<String>) -> Vec<Layered> {
    let mut out = Vec::new();
    for (_, key, name) in settings(cmd) {
        let Some(name) = name else { continue };
        if key == "config" {
            continue;
        }
        if let Some(value) = env(&name).filter(|v| !v.is_empty()) {
            out.push(Layered {
                key,
                value,
                source: Source::Env(name),
            });
        }
    }
    out
}

/// What a config file holds, and a note when it had the old format.
pub struct FileValues {
    /// The settings it sets.
    pub values: Vec<Layered>,
    /// A message for the operator, printed once at start.
    pub note: Option<String>,
}

/// Reads the config file: TOML (`listen = "0.0.0.0:6000"`, `workers = 4`),
/// or, when it is not TOML, the old `key = value` lines, with a note
/// saying how to rewrite it. Keys may use `_` for `-`.
///
/// # Errors
/// A file that cannot be read, that is neither format, or that names an
/// unknown key.
pub fn from_file(cmd: &ClapCommand, path: &Path) -> Result<FileValues, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read config file {shown}: {e}")))?;
    let (pairs, note) = match text.parse::<toml::Table>() {
        Ok(table) => (toml_pairs(&table).map_err(|e| file_error(&shown, e))?, None),
        Err(toml_error) => match legacy_pairs(&text) {
            Ok(pairs) => (pairs, Some(legacy_note(&shown))),
            Err(e) => {
                return Err(ConfigError(format!(
                    "{shown}: not a TOML file ({}) nor the old key = value format ({e})",
                    toml_error.message()
                )))
            }
        },
    };
    let known: Vec<String> = settings(cmd).into_iter().map(|(_, k, _)| k).collect();
    let mut values = Vec::new();
    for (key, value) in pairs {
        let key = key.trim().replace('_', "-");
        if key == "config" || !known.contains(&key) {
            return Err(file_error(&shown, format!("unknown key `{key}`")));
        }
        values.push(Layered {
            key,
            value,
            source: Source::File(shown.clone()),
        });
    }
    Ok(FileValues { values, note })
}

fn file_error(path: &str, why: String) -> ConfigError {
    ConfigError(format!("{path}: {why}"))
}

fn legacy_note(path: &str) -> String {
    format!(
        "{path} is in the old `key = value` format: it still works, but quote its \
         text values to make it TOML (`listen = \"0.0.0.0:6000\"`); \
         `chat-server --check-config` prints the whole configuration as TOML"
    )
}

/// A TOML table's values as text: strings as they are, numbers and
/// booleans (`on`/`off`) spelled out.
fn toml_pairs(table: &toml::Table) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (key, value) in table {
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => if *b { "on" } else { "off" }.to_owned(),
            other => {
                return Err(format!(
                    "key `{key}`: a {} is not a setting's value (use a string or a number)",
                    other.type_str()
                ))
            }
        };
        out.push((key.clone(), text));
    }
    Ok(out)
}

/// The old format: `key = value` lines, `#` comments (not inside quotes),
/// values optionally in double quotes.
pub fn legacy_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = strip_comment(line).trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected `key = value`", n + 1))?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        out.push((key.trim().to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// The line up to a `#` that is not inside double quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The arguments that give `values` to clap: `--key=value` each.
pub fn as_args(values: &[Layered]) -> Vec<String> {
    values
        .iter()
        .map(|l| format!("--{}={}", l.key, l.value))
        .collect()
}

/// Parses each value alone, so that an error names its source.
///
/// # Errors
/// The first value its setting's parser refuses.
pub fn check_each(cmd: &ClapCommand, values: &[Layered]) -> Result<(), ConfigError> {
    for l in values {
        let argv = ["chat-server".to_owned(), format!("--{}={}", l.key, l.value)];
        if let Err(e) = cmd.clone().try_get_matches_from(argv) {
            return Err(ConfigError(format!(
                "{} = {:?} (from {}): {}",
                l.key,
                l.value,
                l.source.describe(),
                clap_reason(&e)
            )));
        }
    }
    Ok(())
}

/// Clap's message without its `error:` prefix and usage tips.
pub fn clap_reason(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// The effective value of every setting as text, with its source, for
/// `--check-config`: the last of the layers that set it, else its default.
pub fn effective(
    cmd: &ClapCommand,
    layers: &[Layered],
    flags: &clap::ArgMatches,
) -> BTreeMap<String, (Option<String>, String)> {
    let mut out = BTreeMap::new();
    for (arg, key, _) in settings(cmd) {
        if key == "config" {
            continue;
        }
        let id = arg.get_id().as_str();
        let from_flag = flags.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        let entry = if from_flag {
            let raw = flags
                .get_raw(id)
                .and_then(|mut v| v.next_back())
                .map(|v| v.to_string_lossy().into_owned());
            (raw, Source::Flag.describe())
        } else if let Some(l) = layers.iter().rev().find(|l| l.key == key) {
            (Some(l.value.clone()), l.source.describe())
        } else {
            let default = arg
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned());
            (default, "the default".to_owned())
        };
        out.insert(key, entry);
    }
    out
}
