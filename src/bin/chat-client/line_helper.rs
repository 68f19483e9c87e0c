//! Line-editing help for the interactive prompt: Tab completes a command
//! name, and while the name is being typed its syntax is shown dimmed after
//! the cursor (`chat` → `chat:fid:message`).

use std::borrow::Cow;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hint, Hinter};
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::command::{Spec, COMMANDS};

/// The rustyline helper. `color` dims the syntax hint with ANSI codes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineHelper {
    pub color: bool,
}

/// The commands whose name starts with `prefix`, ignoring case.
fn matching(prefix: &str) -> impl Iterator<Item = &'static Spec> + '_ {
    COMMANDS.iter().filter(move |s| {
        s.name.len() >= prefix.len() && s.name[..prefix.len()].eq_ignore_ascii_case(prefix)
    })
}

impl Completer for LineHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let typed = &line[..pos];
        if typed.contains(':') || typed.starts_with(char::is_whitespace) {
            return Ok((pos, Vec::new()));
        }
        let candidates = matching(typed)
            .map(|s| Pair {
                display: s.usage(),
                replacement: if s.args.is_empty() {
                    s.name.to_owned()
                } else {
                    format!("{}:", s.name)
                },
            })
            .collect();
        Ok((0, candidates))
    }
}

/// The rest of a command's syntax, shown after the cursor. It is only a
/// reminder: accepting it would insert placeholders, so it completes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageHint(String);

impl Hint for UsageHint {
    fn display(&self) -> &str {
        &self.0
    }

    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for LineHelper {
    type Hint = UsageHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<UsageHint> {
        if pos != line.len() || line.is_empty() || line.contains(':') {
            return None;
        }
        let exact = matching(line).find(|s| s.name.len() == line.len());
        let spec = exact.or_else(|| {
            let mut found = matching(line);
            let first = found.next()?;
            found.next().is_none().then_some(first)
        })?;
        let rest = format!("{}{}", &spec.name[line.len()..], spec.args);
        (!rest.is_empty()).then_some(UsageHint(rest))
    }
}

impl Highlighter for LineHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }
}

impl Validator for LineHelper {}

impl Helper for LineHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_command_names_ignoring_case() {
        let names: Vec<&str> = matching("GROUP").map(|s| s.name).collect();
        assert_eq!(names, ["groupChat", "groupMembers"]);
        assert_eq!(matching("zz").count(), 0);
    }
}
