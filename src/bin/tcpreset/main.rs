//! `tcpreset`: registers, lists and cancels resets with `tcpresetd` over its Unix socket.
mod print;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tcpreset::cli::{self, exit, Command};
use tcpreset::io::control::{self, ClientError};
use tcpreset::io::iface;
use tcpreset::proto::{ErrorKind, Request, Response};

const TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env_socket = std::env::var_os("TCPRESET_SOCKET").map(PathBuf::from);
    let inv = match cli::parse(&args, env_socket) {
        Ok(inv) => inv,
        Err(e) => return fail(exit::USAGE, &e.to_string()),
    };
    let socket = inv
        .socket
        .unwrap_or_else(|| PathBuf::from(control::DEFAULT_SOCKET));
    let (request, json) = match inv.command {
        Command::Help => return out(cli::help().trim_end()),
        Command::Add(add) => {
            // A host that is not an address was refused by the parse above (exit 2).
            let host = add.host.parse().ok();
            if let Err(e) = iface::check_rule(&add.sniff_if, &add.reset_if, host) {
                return fail(exit::INTERFACE, &e.to_string());
            }
            (Request::Add(add), false)
        }
        Command::List { json } => (Request::List, json),
        Command::Cancel(key) => (Request::Cancel(key), false),
        Command::Flush => (Request::Flush, false),
        Command::Stats { json } => (Request::Stats, json),
        Command::Show { show, json } => (Request::Show(show), json),
    };
    let response = match control::call(&socket, request, TIMEOUT) {
        Ok(r) => r,
        Err(e) => {
            let code = match e {
                ClientError::NotRunning(_) | ClientError::PermissionDenied(_) => exit::DAEMON,
                _ => exit::INTERNAL,
            };
            return fail(code, &e.to_string());
        }
    };
    let text = match response {
        Response::Added {
            rule,
            refreshed,
            tracked_since_unix,
        } => {
            let verb = if refreshed { "refreshed" } else { "added" };
            let note = tracked_since_unix
                .map(|since| {
                    print::captured_since_note(
                        &rule.sniff_if,
                        since,
                        rule.expires_unix - rule.seconds_left,
                    )
                })
                .unwrap_or_default();
            format!("reset {verb}: {}{note}", print::describe(&rule))
        }
        Response::Rules { rules } if json => print::json(&rules),
        Response::Rules { rules } => print::rules(&rules),
        Response::Cancelled { rule } => format!("reset cancelled: {}", print::describe(&rule)),
        Response::Flushed { count } => format!("flushed {count} reset rule(s)"),
        Response::Stats { stats } if json => print::json(&stats),
        Response::Stats { stats } => print::stats(&stats),
        Response::Shown { rules } if json => print::json(&rules),
        Response::Shown { rules } => print::shown(&rules),
        Response::Error { kind, message } => {
            let code = match kind {
                ErrorKind::Interface => exit::INTERFACE,
                ErrorKind::Unauthorized => exit::DAEMON,
                _ => exit::REFUSED,
            };
            return fail(code, &format!("tcpresetd refused: {message}"));
        }
    };
    out(&text)
}

/// Prints to stdout; a closed pipe (`tcpreset list | head`) is not an error.
fn out(text: &str) -> ExitCode {
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            fail(exit::INTERNAL, &format!("writing to stdout: {e}"))
        }
        _ => ExitCode::SUCCESS,
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("tcpreset: error: {message}");
    ExitCode::from(code)
}
