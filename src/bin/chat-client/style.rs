//! Colours and safe text for the terminal.
//!
//! [`Style`] adds ANSI colours only when they are enabled (standard output is
//! a terminal and `NO_COLOR` is not set), so piped output stays plain.
//! [`clean`] makes text from the network safe to print: a peer must not be
//! able to move the cursor or recolour the screen with escape sequences in
//! a chat message, nor break the one-message-per-line output with a newline.

use std::borrow::Cow;
use std::io::IsTerminal;

/// Whether to colour output, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours on or off.
    pub color: bool,
}

impl Style {
    /// Colours when standard output is a terminal and `NO_COLOR` is unset or
    /// empty (see no-color.org).
    pub fn for_stdout() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    /// No colours at all (the tests' style; the program picks with
    /// [`for_stdout`](Self::for_stdout)).
    #[cfg(test)]
    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Something that went wrong.
    pub fn error(&self, s: &str) -> String {
        self.paint("1;31", s)
    }

    /// A request that succeeded.
    pub fn ok(&self, s: &str) -> String {
        self.paint("32", s)
    }

    /// The head of a one-to-one message.
    pub fn chat(&self, s: &str) -> String {
        self.paint("1;36", s)
    }

    /// The head of a group message.
    pub fn group(&self, s: &str) -> String {
        self.paint("1;35", s)
    }

    /// Secondary text: times, hints.
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    /// Emphasis: names, headings.
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }

    /// `online` in green or `offline` dimmed.
    pub fn state(&self, online: bool) -> String {
        if online {
            self.paint("32", "online")
        } else {
            self.dim("offline")
        }
    }
}

/// `s` with every control character written out: `\n`, `\r`, `\t` as such,
/// others as `\u{1b}`. Text without control characters is borrowed as is.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_control_characters_only() {
        assert!(matches!(clean("héllo: 你好"), Cow::Borrowed(_)));
        assert_eq!(clean("a\nb\tc\x1b[2J"), "a\\nb\\tc\\u{1b}[2J");
    }

    #[test]
    fn plain_style_adds_nothing() {
        let p = Style::plain();
        assert_eq!(p.error("x"), "x");
        assert_eq!(p.state(true), "online");
        assert_eq!(Style { color: true }.ok("x"), "\x1b[32mx\x1b[0m");
    }
}
