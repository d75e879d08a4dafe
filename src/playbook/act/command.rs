//! Run Script safety: rendered scripts are split into lines and words, the command must be allowed,
//! every argument must fit the command's grammar and policy, and words are quoted for a remote
//! shell or passed to `ssh` so that none can be read as an option.
//!
//! Values substituted into a script come from logs an attacker can write to, so a value that
//! carries whitespace or control characters (a newline, `1.2.3.4; rm -rf /`) refuses its whole
//! line: it can neither add words nor start a new line.

use std::collections::BTreeMap;

use serde::Serialize;

use super::template::Piece;
use crate::cli::{self, Command};

/// A line that passed every check: run `program` with `args`, no shell involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedLine {
    pub line: String,
    pub program: String,
    pub args: Vec<String>,
    /// With `route_by`: the sensor the line's record or result names; it goes only there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
}

/// A line that was refused, and why. It is never run, not even in part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub line: String,
    pub reason: String,
}

impl Refusal {
    /// The refusal as a line of a run's output.
    pub fn report(&self) -> String {
        format!("REFUSED {:?}: {}", self.line, self.reason)
    }
}

/// The commands a script may run: first word → program (path) to execute for it.
pub type AllowList = BTreeMap<String, String>;

/// The commands whose argument schema is built in (`commands:` may only allow these).
pub const KNOWN_COMMANDS: &[&str] = &["tcpreset"];

/// The allow list when a playbook does not set `commands:`.
pub fn default_allow_list() -> AllowList {
    BTreeMap::from([("tcpreset".to_string(), "tcpreset".to_string())])
}

/// Splits a rendered script into lines and checks each one.
pub fn check_script(pieces: &[Piece], allowed: &AllowList) -> Vec<Result<CheckedLine, Refusal>> {
    let mut lines: Vec<(String, Option<String>)> = vec![(String::new(), None)];
    for piece in pieces {
        match piece {
            Piece::Text(text) => {
                let mut parts = text.split('\n');
                lines
                    .last_mut()
                    .expect("never empty")
                    .0
                    .push_str(parts.next().unwrap_or(""));
                for part in parts {
                    lines.push((part.to_string(), None));
                }
            }
            Piece::Value {
                text,
                name,
                missing,
                ..
            } => {
                let (line, taint) = lines.last_mut().expect("never empty");
                if taint.is_none() {
                    if let Some(missing) = missing {
                        let place = match &missing.section {
                            Some(section) => format!("in section {{{{#{section}}}}}"),
                            None => "in the action's context (ctx, and the record or result of for_each)".into(),
                        };
                        *taint = Some(format!("{{{{{name}}}}} has no value {place}; name a field that is bound there (tcpreset-hunt run --dry-run --payload shows what is)"));
                    } else if text.is_empty() {
                        *taint = Some(format!("{{{{{name}}}}} is empty; a value must be one word"));
                    } else if let Some(bad) =
                        text.chars().find(|c| c.is_whitespace() || c.is_control())
                    {
                        *taint = Some(format!("the value of {{{{{name}}}}} ({text:?}) contains {bad:?}; values must be single words"));
                    }
                }
                line.push_str(text);
            }
        }
    }
    lines
        .into_iter()
        .filter(|(line, _)| !line.trim().is_empty())
        .map(|(line, taint)| match taint {
            Some(reason) => Err(Refusal {
                line: line.trim().to_string(),
                reason,
            }),
            None => check_line(line.trim(), allowed),
        })
        .collect()
}

/// Checks one line of words against the allow list and the command's schema.
pub fn check_line(line: &str, allowed: &AllowList) -> Result<CheckedLine, Refusal> {
    let refuse = |reason: String| Refusal {
        line: line.to_string(),
        reason,
    };
    let mut words = line.split_whitespace();
    let command = words.next().ok_or_else(|| refuse("empty line".into()))?;
    let program = allowed.get(command).ok_or_else(|| {
        refuse(format!(
            "`{command}` is not an allowed command (allowed: {})",
            allowed.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let args: Vec<String> = words.map(str::to_string).collect();
    match command {
        "tcpreset" => check_tcpreset(&args).map_err(refuse)?,
        other => {
            return Err(refuse(format!(
                "`{other}` has no argument schema; only {KNOWN_COMMANDS:?} can be allowed"
            )))
        }
    }
    Ok(CheckedLine {
        line: line.to_string(),
        program: program.clone(),
        args,
        sensor: None,
    })
}

/// A `tcpreset` line as the client itself parses it ([`cli::parse`], so the line a playbook runs
/// and the one the client reads follow one grammar), then the playbook's policy: only the verbs
/// that register or cancel rules, or list them (`add`, which may be left out, `list`, `cancel`,
/// `flush`), no `--socket` (the line talks to the daemon of the host it runs on), and no
/// interface that starts with `-` (an engid never does: [`crate::syntax::engid`]). An engid
/// named like a verb needs the explicit `add`: without it the line is the verb's, and refused.
pub fn check_tcpreset(args: &[String]) -> Result<(), String> {
    let invocation = cli::parse(args, None).map_err(|e| e.to_string())?;
    if invocation.socket.is_some() {
        return Err("`--socket` is not allowed: a playbook's line uses the daemon's own socket on the host it runs on".into());
    }
    match &invocation.command {
        Command::Add(add) => {
            not_an_option("interface", &add.sniff_if)?;
            not_an_option("interface", &add.reset_if)
        }
        Command::List { .. } | Command::Flush | Command::Cancel(_) => Ok(()),
        Command::Stats { .. } | Command::Show { .. } | Command::Help => Err(format!(
            "`{}` is not a command a playbook may run; use `tcpreset ENGID -i SNIFF_IF -o RESET_IF -h HOST [-p PORT] -d SECONDS`, or list, cancel or flush",
            args.join(" ")
        )),
    }
}

/// A value (given after `--`) that starts with `-`, which other tools would read as an option.
fn not_an_option(what: &str, word: &str) -> Result<(), String> {
    match word.starts_with('-') {
        true => Err(format!("{what} `{word}` must not start with -")),
        false => Ok(()),
    }
}

/// Quotes a word for a POSIX shell (the remote side of `ssh` always runs one).
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@%+=,-".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::playbook::act::template::Template;

    const SCRIPT: &str =
        "{{#rows}}\ntcpreset {{engid}} -i eth1 -o eth0 -h {{srcip}} -d 180\n{{/rows}}";

    fn run(rows: serde_json::Value) -> Vec<Result<CheckedLine, Refusal>> {
        let data = json!({ "rows": rows });
        check_script(
            &Template::parse(SCRIPT).unwrap().render(&[&data]),
            &default_allow_list(),
        )
    }

    #[test]
    fn good_lines_pass_with_their_words() {
        let out = run(
            json!([{"engid": "2001219", "srcip": "10.0.0.1"}, {"engid": "ids:7", "srcip": "fe80::1"}]),
        );
        let ok: Vec<_> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            ok[0].args,
            ["2001219", "-i", "eth1", "-o", "eth0", "-h", "10.0.0.1", "-d", "180"]
        );
        assert_eq!(ok[0].program, "tcpreset");
        assert_eq!(ok[1].args[6], "fe80::1");
    }

    #[test]
    fn hostile_values_refuse_their_line_and_only_their_line() {
        let hostile = [
            "1.2.3.4; rm -rf /",
            "1.2.3.4\ntcpreset x -i eth1 -o eth0 -h 8.8.8.8 -d 86400",
            "$(reboot)",
            "1.2.3.4'",
            "\"1.2.3.4\"",
            "`id`",
            "1.2.3.4|sh",
            "1.2.3.4 -p 22",
            "1.2.3.4\r",
            "1.2.3.4\u{0}",
        ];
        for value in hostile {
            let out =
                run(json!([{"engid": "e1", "srcip": value}, {"engid": "e1", "srcip": "10.0.0.2"}]));
            assert_eq!(out.len(), 2, "{value:?} must not add lines: {out:?}");
            assert!(out[0].is_err(), "{value:?} must be refused: {out:?}");
            assert!(out[1].is_ok(), "the good line still runs");
        }
        let out = run(json!([{"engid": "$(id)", "srcip": "10.0.0.1"}]));
        assert!(out[0].as_ref().unwrap_err().reason.contains("ENGID"));
        let out = run(json!([{"engid": "-oProxyCommand=x", "srcip": "10.0.0.1"}]));
        assert!(out[0].is_err());
    }

    #[test]
    fn schema_rules() {
        let check = |line: &str| check_line(line, &default_allow_list());
        assert!(check("tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -p 443 -d 60").is_ok());
        assert!(check("tcpreset add e -i eth1 -o eth0 -h ::1 -d 86400").is_ok());
        assert!(check("tcpreset list --json").is_ok());
        assert!(check("tcpreset cancel e -h 10.0.0.1 -p 22").is_ok());
        assert!(check("tcpreset flush").is_ok());
        for bad in [
            "rm -rf /",
            "tcpreset e -i eth1 -o eth0 -h 10.0.0.1",
            "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d 0",
            "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d 86401",
            "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d +5",
            "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -p 0 -d 5",
            "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -p 65536 -d 5",
            "tcpreset e -i .. -o eth0 -h 10.0.0.1 -d 5",
            "tcpreset e -i averyveryverylongname -o eth0 -h 10.0.0.1 -d 5",
            "tcpreset e -i eth1 -o eth0 -h 10.0.0.300 -d 5",
            "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d 5 -d 6",
            "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d 5 --force",
            "tcpreset list extra",
            "tcpreset",
            &format!(
                "tcpreset {} -i eth1 -o eth0 -h 10.0.0.1 -d 5",
                "e".repeat(65)
            ),
        ] {
            assert!(check(bad).is_err(), "{bad} must be refused");
        }
        let e = check("rm -rf /").unwrap_err();
        assert!(e.reason.contains("not an allowed command"), "{e:?}");
    }

    #[test]
    fn lines_follow_the_clients_grammar_then_the_playbook_policy() {
        let check = |line: &str| check_line(line, &default_allow_list());
        let client = |line: &str| {
            let words: Vec<String> = line.split_whitespace().skip(1).map(String::from).collect();
            cli::parse(&words, None)
        };
        // The client's grammar: options in any order, `add` before an engid that is a verb.
        for good in [
            "tcpreset -i eth1 -o eth0 -h 10.0.0.1 -d 60 e1",
            "tcpreset add list -i eth1 -o eth0 -h 10.0.0.1 -d 60",
            "tcpreset cancel e1 -p 22 -h 10.0.0.1",
        ] {
            assert!(check(good).is_ok(), "{good}: {:?}", check(good));
        }
        // Lines the client would run that a playbook may not.
        for (line, why) in [
            (
                "tcpreset --socket /tmp/s e -i eth1 -o eth0 -h 10.0.0.1 -d 5",
                "--socket",
            ),
            ("tcpreset --socket=/tmp/s list", "--socket"),
            ("tcpreset stats --json", "not a command a playbook may run"),
            (
                "tcpreset show e1 -h 10.0.0.1",
                "not a command a playbook may run",
            ),
            (
                "tcpreset e -i eth1 --help",
                "not a command a playbook may run",
            ),
            ("tcpreset help", "not a command a playbook may run"),
        ] {
            assert!(client(line).is_ok(), "the client accepts {line}");
            let e = check(line).unwrap_err();
            assert!(e.reason.contains(why), "{line}: {e:?}");
        }
        // What the client refuses is refused with its message, which names the bad word.
        for (line, word) in [
            (
                "tcpreset e -i eth1 -o eth0 -h 10.0.0.300 -d 5",
                "10.0.0.300",
            ),
            (
                "tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -d 5 --force",
                "--force",
            ),
            ("tcpreset e -i eth1 -o eth0 -h 10.0.0.1 -p 0 -d 5", "'0'"),
            ("tcpreset list extra", "extra"),
            ("tcpreset -i eth1 -o eth0 -h 10.0.0.1 -d 5 -- -e", "'-e'"),
            ("tcpreset e -i eth1 -o eth0 -h 224.0.0.1 -d 5", "multicast"),
            ("tcpreset e -i eth1 -o eth0 -h :: -d 5", "unspecified"),
            (
                "tcpreset e -i lo -o eth0 -h 10.0.0.1 -d 5",
                "'lo' is the loopback",
            ),
            ("tcpreset cancel -h 10.0.0.1 -- -e", "'-e'"),
        ] {
            let e = check(line).unwrap_err();
            assert_eq!(e.reason, client(line).unwrap_err().to_string());
            assert!(e.reason.contains(word), "{line}: {e:?}");
        }
    }

    #[test]
    fn an_engid_named_like_a_verb_is_refused_unless_the_add_is_explicit() {
        let check = |line: &str| check_line(line, &default_allow_list());
        for verb in ["help", "list", "stats", "show", "cancel", "flush"] {
            let implicit = format!("tcpreset {verb} -i eth1 -o eth0 -h 10.0.0.1 -d 60");
            assert!(check(&implicit).is_err(), "{implicit} is the verb's line");
            let explicit = format!("tcpreset add {verb} -i eth1 -o eth0 -h 10.0.0.1 -d 60");
            assert!(
                check(&explicit).is_ok(),
                "{explicit}: {:?}",
                check(&explicit)
            );
        }
    }

    #[test]
    fn remote_words_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("10.0.0.1"), "10.0.0.1");
        assert_eq!(shell_quote("fe80::1"), "fe80::1");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(id)"), "'$(id)'");
        assert_eq!(shell_quote(""), "''");
    }
}
