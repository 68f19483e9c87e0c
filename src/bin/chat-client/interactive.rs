//! Interactive mode: standard input is a terminal.
//!
//! Before login the original's numbered menu (1 login, 2 register, 3 quit)
//! and the typed commands both work; after login the prompt names the
//! account (`alice(5)> `). rustyline gives line editing, history, Tab
//! completion of command names and a syntax hint; incoming messages are
//! printed above the line being typed. Passwords are asked for without
//! echo and never enter the history.

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};
use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::chat_client::{ChatClient, Flow};
use super::command::{self, Account, Command};
use super::connection::Connection;
use super::help;
use super::line_helper::LineHelper;
use super::options::Options;
use super::output::{Output, Plain, Printer};
use super::style::Style;
use super::terminal::{self, SavedMode};

type LineEditor = Editor<LineHelper, DefaultHistory>;

/// Runs the interactive client on `conn` until the user quits (exit 0) or
/// the connection is lost (exit 1).
pub fn run(conn: Connection, options: &Options) -> ExitCode {
    match session(conn, options) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chat-client: terminal error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn session(conn: Connection, options: &Options) -> io::Result<ExitCode> {
    let style = Style::for_stdout();
    let saved = SavedMode::of_stdin();
    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(1000)
        .map_err(io::Error::other)?
        .build();
    let mut editor = LineEditor::with_config(config).map_err(io::Error::other)?;
    editor.set_helper(Some(LineHelper { color: style.color }));
    let out: Arc<dyn Output> = match editor.create_external_printer() {
        Ok(printer) => Arc::new(Printer::new(Box::new(printer))),
        Err(_) => Arc::new(Plain),
    };
    let client = ChatClient::start(
        conn,
        out,
        style,
        (options.reply_timeout, options.log),
        options.on_lost(
            options.reconnect.unwrap_or(true),
            Box::new(move |closed| {
                // The input thread is inside rustyline, in raw mode: undo that and
                // bracketed paste before leaving, as rustyline's own cleanup would.
                if let Some(saved) = saved {
                    saved.restore();
                }
                print!("\x1b[?2004l");
                eprintln!("\r\nchat-client: connection lost: {closed}");
                std::process::exit(1);
            }),
        ),
    )?;
    client
        .output()
        .line(&style.dim(&format!("connected to {}", options.addr)));
    client.output().lines(&help::menu(&style));
    loop {
        let line = match editor.readline(&prompt(&client)) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                client
                    .output()
                    .note(&style.dim("(type quit, or press Ctrl-D, to leave)"));
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(io::Error::other(e)),
        };
        match handle(&mut editor, &client, &line)? {
            Flow::Continue => {}
            Flow::Quit => break,
            Flow::Lost => return Ok(ExitCode::FAILURE),
        }
    }
    Ok(match client.leave(Duration::ZERO) {
        Flow::Lost => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

/// `alice(5)> ` once logged in, `chat> ` before; `alice(5) [2 pending]> `
/// while messages sent wait for the server's SEND_ACK.
fn prompt(client: &ChatClient) -> String {
    let pending = match client.state().pending() {
        0 => String::new(),
        n => client.style().dim(&format!(" [{n} pending]")),
    };
    match client.state().user() {
        Some(u) => format!(
            "{}{pending}> ",
            client.style().bold(&format!("{}({})", u.name, u.uid))
        ),
        None => "chat> ".to_owned(),
    }
}

/// One line typed at the prompt: a menu number before login, or a command.
fn handle(editor: &mut LineEditor, client: &ChatClient, line: &str) -> io::Result<Flow> {
    let out = client.output();
    let style = client.style();
    let logged_in = client.state().user().is_some();
    let command = match (logged_in, line.trim()) {
        (false, "1") => menu_login(editor)?,
        (false, "2") => menu_register(editor)?,
        (false, "3") => Some(Command::Quit),
        (_, typed) => match command::parse(typed) {
            Ok(Some(command)) => {
                let _ = editor.add_history_entry(history_text(typed, &command));
                ask_missing_password(command)?
            }
            Ok(None) => None,
            Err(e) => {
                out.note(&style.error(&format!("error: {e}")));
                None
            }
        },
    };
    let Some(command) = command else {
        return Ok(Flow::Continue);
    };
    let flow = client.run(&command);
    if command == Command::Logout && client.state().user().is_none() {
        out.lines(&help::menu(style));
    }
    Ok(flow)
}

/// Menu item 1: the account, then the password (hidden).
fn menu_login(editor: &mut LineEditor) -> io::Result<Option<Command>> {
    let account = match editor.readline("account id or name: ") {
        Ok(a) if !a.trim().is_empty() => a.trim().to_owned(),
        Ok(_) | Err(ReadlineError::Interrupted | ReadlineError::Eof) => return Ok(None),
        Err(e) => return Err(io::Error::other(e)),
    };
    let account = match account.parse::<i64>() {
        Ok(id) if id > 0 => Account::Id(id),
        _ => Account::Name(account),
    };
    ask_missing_password(Command::Login {
        account,
        password: None,
    })
}

/// Menu item 2: the name, then the password twice (hidden).
fn menu_register(editor: &mut LineEditor) -> io::Result<Option<Command>> {
    let name = match editor.readline("new user name: ") {
        Ok(n) if !n.trim().is_empty() => n.trim().to_owned(),
        Ok(_) | Err(ReadlineError::Interrupted | ReadlineError::Eof) => return Ok(None),
        Err(e) => return Err(io::Error::other(e)),
    };
    ask_missing_password(Command::Register {
        name,
        password: None,
    })
}

/// Asks for the password of a login or register that left it out; a
/// register asks twice. `None` when the user cancelled or mistyped.
fn ask_missing_password(command: Command) -> io::Result<Option<Command>> {
    Ok(Some(match command {
        Command::Login {
            account,
            password: None,
        } => {
            let Some(password) = terminal::read_password("password: ")? else {
                return Ok(None);
            };
            Command::Login {
                account,
                password: Some(password),
            }
        }
        Command::Register {
            name,
            password: None,
        } => {
            let Some(first) = terminal::read_password("password: ")? else {
                return Ok(None);
            };
            let Some(again) = terminal::read_password("password again: ")? else {
                return Ok(None);
            };
            if first != again || first.is_empty() {
                eprintln!("the passwords differ or are empty; nothing was sent");
                return Ok(None);
            }
            Command::Register {
                name,
                password: Some(first),
            }
        }
        other => other,
    }))
}

/// What goes into the history for a typed line: the line itself, except
/// that a password typed into `login:` or `register:` is left out.
fn history_text(typed: &str, command: &Command) -> String {
    match command {
        Command::Login { .. } | Command::Register { .. } => {
            let mut fields = typed.splitn(3, ':');
            let name = fields.next().unwrap_or_default();
            let who = fields.next().unwrap_or_default();
            format!("{name}:{who}")
        }
        _ => typed.to_owned(),
    }
}
