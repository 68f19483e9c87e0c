//! Where the client's text goes.
//!
//! Both threads print: the reader thread shows replies and incoming
//! messages, the input thread shows help and its own complaints. An
//! [`Output`] is shared by both.
//!
//! - [`Plain`] (non-interactive mode): replies and messages to standard
//!   output, one per line, flushed at once so a script sees each line as it
//!   happens; the client's own complaints to standard error.
//! - [`Printer`] (interactive mode): everything through rustyline's
//!   `ExternalPrinter`, which prints above the prompt and redraws the line
//!   being typed, so an incoming message never breaks it.

use parking_lot::Mutex;
use std::io::Write;

/// A sink for lines of text, shared by the reader and input threads.
pub trait Output: Send + Sync {
    /// A reply or an incoming message.
    fn line(&self, text: &str);
    /// A note from the client itself: a usage error, a warning.
    fn note(&self, text: &str);

    /// Several replies at once, kept together.
    fn lines(&self, lines: &[String]) {
        for l in lines {
            self.line(l);
        }
    }
}

/// Standard output for replies, standard error for notes.
#[derive(Debug, Default)]
pub struct Plain;

impl Output for Plain {
    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (a script that stopped reading) is no reason to
        // crash; the lost connection or EOF ends the client soon enough.
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }

    fn note(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }

    fn lines(&self, lines: &[String]) {
        let mut out = std::io::stdout().lock();
        let mut result = Ok(());
        for l in lines {
            result = result.and_then(|()| writeln!(out, "{l}"));
        }
        let _ = result.and_then(|()| out.flush());
    }
}

/// rustyline's external printer: prints above the prompt.
pub struct Printer {
    printer: Mutex<Box<dyn rustyline::ExternalPrinter + Send>>,
}

impl Printer {
    /// Wraps a printer made by `Editor::create_external_printer`.
    pub fn new(printer: Box<dyn rustyline::ExternalPrinter + Send>) -> Printer {
        Printer {
            printer: Mutex::new(printer),
        }
    }
}

impl Output for Printer {
    fn line(&self, text: &str) {
        self.lines(&[text.to_owned()]);
    }

    fn note(&self, text: &str) {
        self.line(text);
    }

    fn lines(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        if let Err(e) = self.printer.lock().print(text.clone()) {
            // The terminal went away; say it somewhere rather than nowhere.
            eprintln!("{text}(cannot print above the prompt: {e})");
        }
    }
}
