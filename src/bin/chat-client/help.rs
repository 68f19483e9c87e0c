//! The menu and the `help` text, generated from the command table so they
//! can never disagree with what the parser accepts.

use super::command::{Spec, COMMANDS};
use super::style::Style;

/// The original client's numbered menu, shown before login.
pub fn menu(style: &Style) -> Vec<String> {
    let rule = style.dim("========================");
    vec![
        rule.clone(),
        format!(" {} login", style.bold("1.")),
        format!(" {} register", style.bold("2.")),
        format!(" {} quit", style.bold("3.")),
        rule,
        style.dim("(or type login:id:password, register:name:password, help)"),
    ]
}

/// The `help` text: the commands that work now, in aligned columns.
///
/// Before login that is the login commands; after login it is everything
/// but `register` and `login`.
pub fn help(logged_in: bool, style: &Style) -> Vec<String> {
    let usable: Vec<&Spec> = COMMANDS
        .iter()
        .filter(|s| s.after_login == logged_in || matches!(s.name, "help" | "quit"))
        .collect();
    let width = usable.iter().map(|s| s.usage().len()).max().unwrap_or(0);
    let mut lines = vec![style.bold(if logged_in {
        "commands:"
    } else {
        "commands (log in for more):"
    })];
    for s in usable {
        lines.push(format!("  {:<width$}  {}", s.usage(), style.dim(s.about)));
    }
    if logged_in {
        lines.push(style.dim("  (a message may contain ':'; fid/gid: a user's or group's id, or its name from refresh)"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_aligned_and_depends_on_login() {
        let before = help(false, &Style::plain());
        assert!(before
            .iter()
            .any(|l| l.starts_with("  login:id-or-name:password  ")));
        assert!(!before.iter().any(|l| l.contains("groupChat")));
        let after = help(true, &Style::plain());
        assert!(!after.iter().any(|l| l.contains("register")));
        let desc_columns: Vec<usize> = COMMANDS
            .iter()
            .filter_map(|s| {
                let head = format!("  {}  ", s.usage());
                let line = after.iter().find(|l| l.starts_with(&head))?;
                line.find(s.about)
            })
            .collect();
        assert_eq!(desc_columns.len(), after.len() - 2, "{after:#?}");
        assert!(desc_columns.windows(2).all(|w| w[0] == w[1]), "{after:#?}");
    }
}
