//! `tcpreset --help`, generated from the clap definitions of the command line (one definition
//! for the parser, the help, the man page and the completions).
use clap::{ArgAction, Command};

const ABOUT: &str = "tcpreset: register, list and cancel TCP resets on this sensor";

const PROSE: &str = "\
While a rule lives, every TCP session of HOST (with -p, only sessions between HOST and PORT)
seen on SNIFF_IF is reset on both ends by RSTs sent through RESET_IF.";

const EXIT_CODES: &str = "\
exit codes: 0 done, 1 unexpected failure, 2 bad or missing argument, 3 interface check failed,
4 daemon not reachable or not allowed, 5 daemon refused the request";

/// The help text: a usage line per form, every argument once with its clap help, exit codes.
/// `add_line` is the verb-less form playbooks use, `verb_line` the one with a verb.
pub fn render(add_line: &Command, verb_line: &Command) -> String {
    let name = add_line.get_name();
    let mut usage = vec![format!("{name} {}", synopsis(add_line))];
    let mut table: Vec<(String, String)> = Vec::new();
    collect(add_line, &mut table);
    for verb in verb_line.get_subcommands() {
        let line = format!(
            "{name} {} {} {}",
            synopsis(verb_line),
            verb.get_name(),
            synopsis(verb)
        );
        usage.push(line.trim_end().to_owned());
        collect(verb, &mut table);
    }
    let width = table.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let usage: String = usage.iter().map(|u| format!("  {u}\n")).collect();
    let args: String = table
        .iter()
        .map(|(k, help)| format!("  {k:width$}{help}\n"))
        .collect();
    format!("{ABOUT}\n\nusage:\n{usage}\n{PROSE}\n\n{args}\n{EXIT_CODES}\n")
}

/// `ARG`, `-i ARG` or `--long ARG` for one argument (a flag has no value).
fn form(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|v| v.to_string());
    let flag = match (arg.get_short(), arg.get_long()) {
        (Some(s), _) => Some(format!("-{s}")),
        (None, Some(l)) => Some(format!("--{l}")),
        (None, None) => None,
    };
    let takes_value = !matches!(arg.get_action(), ArgAction::SetTrue);
    match (flag, value) {
        (Some(flag), Some(value)) if takes_value => format!("{flag} {value}"),
        (Some(flag), _) => flag,
        (None, value) => value.unwrap_or_else(|| arg.get_id().to_string()),
    }
}

/// The arguments of one form, optional ones in brackets.
fn synopsis(cmd: &Command) -> String {
    cmd.get_arguments()
        .map(|arg| {
            let form = form(arg);
            if arg.is_required_set() {
                form
            } else {
                format!("[{form}]")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Adds the arguments of `cmd` not yet in `table`, with their help as a lower-case phrase.
fn collect(cmd: &Command, table: &mut Vec<(String, String)>) {
    for arg in cmd.get_arguments() {
        let form = form(arg);
        if table.iter().any(|(k, _)| *k == form) {
            continue;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        table.push((form, phrase(&help)));
    }
}

/// "Monitoring interface." -> "monitoring interface"; "IPv4 or ..." keeps its capitals.
fn phrase(help: &str) -> String {
    let help = help.trim_end_matches('.');
    let mut chars = help.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if second.is_lowercase() => first
            .to_lowercase()
            .chain(help[first.len_utf8()..].chars())
            .collect(),
        _ => help.to_owned(),
    }
}
