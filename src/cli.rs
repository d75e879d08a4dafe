//! The client's command line, parsed without touching the system (so every error is testable).
//!
//! `tcpreset ENGID -i SNIFF_IF -o RESET_IF -h HOST [-p PORT] -d SECONDS` is a contract: playbooks
//! paste it verbatim. The verbs `add`, `list`, `cancel` and `flush` sit beside it; an engid that
//! is itself one of those words is registered with `tcpreset add WORD ...`.
use crate::proto::{AddRequest, KeyRequest, ShowRequest};
use crate::syntax::{self, Invalid};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// The exit codes of `tcpreset`, documented in the README.
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// An unexpected failure (I/O on the socket, a malformed answer).
    pub const INTERNAL: u8 = 1;
    /// A missing or invalid argument.
    pub const USAGE: u8 = 2;
    /// An interface is unknown, down, or (reset interface) has no IP address.
    pub const INTERFACE: u8 = 3;
    /// The daemon is not running or its socket refused us (permissions).
    pub const DAEMON: u8 = 4;
    /// The daemon refused the request (its own checks, an unknown rule, a capture it could not open).
    pub const REFUSED: u8 = 5;
}

pub const USAGE: &str =
    "usage: tcpreset ENGID -i SNIFF_IF -o RESET_IF -h HOST [-p PORT] -d SECONDS";

/// `tcpreset --help`: generated from the clap definitions below.
pub fn help() -> String {
    use clap::CommandFactory;
    help::render(&AddLine::command(), &VerbLine::command())
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Add(AddRequest),
    List { json: bool },
    Cancel(KeyRequest),
    Flush,
    Stats { json: bool },
    Show { show: ShowRequest, json: bool },
    Help,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub socket: Option<PathBuf>,
    pub command: Command,
}

/// A usage error: one line that names the problem and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("{0} (see tcpreset --help)")]
    Arguments(String),
    #[error(transparent)]
    Value(#[from] Invalid),
}

#[derive(Parser, Debug)]
#[command(
    name = "tcpreset",
    disable_help_flag = true,
    disable_version_flag = true
)]
struct AddLine {
    /// Control socket (default /run/tcpreset/tcpresetd.sock, or $TCPRESET_SOCKET).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(flatten)]
    rule: RuleArgs,
}

#[derive(Args, Debug)]
struct RuleArgs {
    /// Detection engine id, 1-64 of A-Z a-z 0-9 . _ : -
    #[arg(value_name = "ENGID", allow_hyphen_values = false)]
    engid: String,
    /// Monitoring interface (must exist, be up and have carrier; needs no IP address).
    #[arg(short = 'i', value_name = "SNIFF_IF")]
    sniff_if: String,
    /// Interface the RSTs leave through (must be up and have an IP address).
    #[arg(short = 'o', value_name = "RESET_IF")]
    reset_if: String,
    /// IPv4 or IPv6 address of the host to isolate.
    #[arg(short = 'h', value_name = "HOST")]
    host: String,
    /// Only sessions where either port is PORT (1-65535).
    #[arg(short = 'p', value_name = "PORT")]
    port: Option<String>,
    /// How long the rule lives, 1-86400; registering it again refreshes it.
    #[arg(short = 'd', value_name = "SECONDS")]
    seconds: String,
}

#[derive(Parser, Debug)]
#[command(
    name = "tcpreset",
    disable_help_flag = true,
    disable_version_flag = true
)]
struct VerbLine {
    /// Control socket (default /run/tcpreset/tcpresetd.sock, or $TCPRESET_SOCKET).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand, Debug)]
#[command(disable_help_subcommand = true)]
enum Verb {
    /// Register a reset rule (the same as the line without a verb; needed for an engid that is
    /// itself a verb).
    Add(RuleArgs),
    /// List the live rules: engid, host, port, interfaces, seconds left, matches, RSTs.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Cancel the rule with this engid, host and port.
    Cancel {
        /// Detection engine id of the rule.
        #[arg(value_name = "ENGID")]
        engid: String,
        /// Host of the rule.
        #[arg(short = 'h', value_name = "HOST")]
        host: String,
        /// Port of the rule, if it has one.
        #[arg(short = 'p', value_name = "PORT")]
        port: Option<String>,
    },
    /// Cancel every rule.
    Flush,
    /// Show capture counters per interface (kernel drops too), RSTs sent, caps hit, uptime.
    Stats {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Show the connection ends each matching rule has reset, and when.
    Show {
        /// Only rules with this engid.
        #[arg(value_name = "ENGID")]
        engid: Option<String>,
        /// Only rules for this host.
        #[arg(short = 'h', value_name = "HOST")]
        host: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

const VERBS: [&str; 6] = ["add", "list", "cancel", "flush", "stats", "show"];

/// Parses `args` (without the program name). `socket_env` is `$TCPRESET_SOCKET`.
pub fn parse(args: &[String], socket_env: Option<PathBuf>) -> Result<Invocation, UsageError> {
    if args.iter().any(|a| a == "--help") || args.first().is_some_and(|a| a == "help") {
        return Ok(Invocation {
            socket: None,
            command: Command::Help,
        });
    }
    if args.is_empty() {
        return Err(UsageError::Arguments(format!("no arguments; {USAGE}")));
    }
    let argv = std::iter::once("tcpreset".to_owned()).chain(args.iter().cloned());
    let (socket, command) = if first_word(args).is_some_and(|w| VERBS.contains(&w)) {
        let line = VerbLine::try_parse_from(argv).map_err(one_line)?;
        let command = match line.verb {
            Verb::Add(rule) => Command::Add(rule.into_request()?),
            Verb::List { json } => Command::List { json },
            Verb::Cancel { engid, host, port } => {
                let key = KeyRequest { engid, host, port };
                key.to_key()?;
                Command::Cancel(key)
            }
            Verb::Flush => Command::Flush,
            Verb::Stats { json } => Command::Stats { json },
            Verb::Show { engid, host, json } => {
                if let Some(e) = &engid {
                    syntax::engid(e)?;
                }
                if let Some(h) = &host {
                    syntax::host(h)?;
                }
                Command::Show {
                    show: ShowRequest { engid, host },
                    json,
                }
            }
        };
        (line.socket, command)
    } else {
        let line = AddLine::try_parse_from(argv).map_err(one_line)?;
        (line.socket, Command::Add(line.rule.into_request()?))
    };
    Ok(Invocation {
        socket: socket.or(socket_env),
        command,
    })
}

/// The first argument that is not `--socket` or its value.
fn first_word(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--socket" {
            it.next();
        } else if !a.starts_with("--socket=") {
            return Some(a);
        }
    }
    None
}

impl RuleArgs {
    fn into_request(self) -> Result<AddRequest, UsageError> {
        let req = AddRequest {
            engid: self.engid,
            sniff_if: self.sniff_if,
            reset_if: self.reset_if,
            host: self.host,
            port: self.port,
            seconds: self.seconds,
        };
        req.to_spec()?;
        Ok(req)
    }
}

/// Turns clap's multi-line error into one line that says what is wrong and how to fix it.
fn one_line(e: clap::Error) -> UsageError {
    let args = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        _ => String::new(),
    };
    let message = match e.kind() {
        ErrorKind::MissingRequiredArgument => format!("missing {args}; {USAGE}"),
        ErrorKind::UnknownArgument => format!("unknown argument '{args}'; {USAGE}"),
        ErrorKind::ArgumentConflict => format!("{args} given twice; give each option once"),
        ErrorKind::InvalidValue | ErrorKind::NoEquals => format!("{args} needs a value; {USAGE}"),
        ErrorKind::InvalidSubcommand | ErrorKind::MissingSubcommand => {
            format!("unknown command; {USAGE}")
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            format!("{}; {USAGE}", first.trim_start_matches("error: "))
        }
    };
    UsageError::Arguments(message)
}

/// The client's command line as one clap command, for man pages and completions.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    VerbLine::command()
        .about("Register, list and cancel TCP resets on this sensor")
        .after_long_help(help())
}

pub mod daemon;
mod help;
pub mod hunt;
#[cfg(test)]
mod tests;
