//! The terminal, through termios: reading a password without echo, and
//! putting the terminal back as it was when the client must exit abruptly.
//!
//! rustyline owns the terminal while a line is being edited (raw mode).
//! When the server goes away the reader thread ends the process at once;
//! [`SavedMode::restore`] then undoes rustyline's raw mode, which its own
//! cleanup (skipped by `process::exit`) would have done.

use std::io::{self, Write};
use std::os::fd::RawFd;

const STDIN: RawFd = libc::STDIN_FILENO;

/// A terminal's settings, captured to be restored later.
#[derive(Clone, Copy)]
pub struct SavedMode {
    termios: libc::termios,
}

impl SavedMode {
    /// The current settings of standard input, or `None` when it is not a
    /// terminal.
    pub fn of_stdin() -> Option<SavedMode> {
        // SAFETY: `tcgetattr` fills the zeroed struct we own, or fails
        // (returning -1) without touching it.
        unsafe {
            let mut termios: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(STDIN, &mut termios) == 0).then_some(SavedMode { termios })
        }
    }

    /// Puts standard input back in these settings. Safe to call from any
    /// thread; failures are ignored (there is nothing better to do).
    pub fn restore(&self) {
        // SAFETY: a valid termios struct, read earlier from this terminal.
        unsafe {
            libc::tcsetattr(STDIN, libc::TCSANOW, &self.termios);
        }
    }
}

/// Restores the saved settings when dropped, so every exit path of
/// [`read_password`] (including a panic) turns echo back on.
struct Restore(SavedMode);

impl Drop for Restore {
    fn drop(&mut self) {
        self.0.restore();
    }
}

/// Shows `prompt` and reads a line from the terminal without echoing it.
///
/// Editing keys work as in a shell: Backspace deletes a character, Ctrl-U
/// the whole line. Ctrl-C, Ctrl-D on an empty line and end of input cancel
/// (`Ok(None)`). Signals are held off while reading, so Ctrl-C cannot kill
/// the client with echo turned off.
///
/// # Errors
///
/// When standard input is not a terminal or cannot be read.
pub fn read_password(prompt: &str) -> io::Result<Option<String>> {
    let saved = SavedMode::of_stdin().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "standard input is not a terminal",
        )
    })?;
    let mut quiet = saved.termios;
    quiet.c_lflag &= !(libc::ECHO | libc::ICANON | libc::ISIG);
    quiet.c_cc[libc::VMIN] = 1;
    quiet.c_cc[libc::VTIME] = 0;
    let mut out = io::stdout();
    write!(out, "{prompt}")?;
    out.flush()?;
    let _restore = Restore(saved);
    // SAFETY: a valid termios struct derived from the terminal's own.
    if unsafe { libc::tcsetattr(STDIN, libc::TCSAFLUSH, &quiet) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let result = read_hidden_line();
    writeln!(out)?;
    result
}

/// Reads bytes one at a time (so nothing after the newline is consumed and
/// lost to rustyline) until Enter.
fn read_hidden_line() -> io::Result<Option<String>> {
    let mut line: Vec<u8> = Vec::new();
    loop {
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into `byte`, which we own.
        let n = unsafe { libc::read(STDIN, (&mut byte as *mut u8).cast(), 1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        match (n, byte) {
            (0, _) | (_, 0x03) => return Ok(None),
            (_, 0x04) if line.is_empty() => return Ok(None),
            (_, b'\r' | b'\n') => return Ok(Some(String::from_utf8_lossy(&line).into_owned())),
            (_, 0x7f | 0x08) => pop_char(&mut line),
            (_, 0x15) => line.clear(),
            (_, b) if b < 0x20 => {}
            (_, b) => line.push(b),
        }
    }
}

/// Removes the last UTF-8 character: its continuation bytes, then its lead.
fn pop_char(line: &mut Vec<u8>) {
    while let Some(b) = line.pop() {
        if b & 0xC0 != 0x80 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pop_char;

    #[test]
    fn backspace_removes_a_whole_character() {
        let mut line = "aé你".as_bytes().to_vec();
        pop_char(&mut line);
        assert_eq!(line, "aé".as_bytes());
        pop_char(&mut line);
        assert_eq!(line, b"a");
        pop_char(&mut line);
        pop_char(&mut line);
        assert!(line.is_empty());
    }
}
