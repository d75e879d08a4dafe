//! Run Script safety: rendered scripts are split into lines and words, the command must be allowed,
//! every argument must fit the command's schema, and words are quoted for a remote shell.
//!
//! Values substituted into a script come from logs an attacker can write to, so a value that
//! carries whitespace or control characters (a newline, `1.2.3.4; rm -rf /`) refuses its whole
//! line: it can neither add words nor start a new line.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::template::Piece;
use crate::syntax;

/// A line that passed every check: run `program` with `args`, no shell involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedLine {
    pub line: String,
    pub program: String,
    pub args: Vec<String>,
}

/// A line that was refused, and why. It is never run, not even in part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub line: String,
    pub reason: String,
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
            Piece::Value { text, name, .. } => {
                let (line, taint) = lines.last_mut().expect("never empty");
                if taint.is_none() {
                    if let Some(bad) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
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
    })
}

/// `tcpreset [add] ENGID -i IF -o IF -h HOST [-p PORT] -d SECONDS`, `tcpreset list [--json]`,
/// `tcpreset cancel ENGID -h HOST [-p PORT]`, `tcpreset flush`.
pub fn check_tcpreset(args: &[String]) -> Result<(), String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["list"] | ["list", "--json"] | ["flush"] => Ok(()),
        ["list" | "flush", ..] => Err(format!("unexpected arguments after `{}`", words[0])),
        ["cancel", engid, rest @ ..] => {
            check_engid(engid)?;
            check_options(rest, &["-h"], &["-p"])
        }
        ["add", engid, rest @ ..] | [engid, rest @ ..] => {
            check_engid(engid)?;
            check_options(rest, &["-i", "-o", "-h", "-d"], &["-p"])
        }
        [] => Err("missing ENGID; expected `tcpreset ENGID -i SNIFF_IF -o RESET_IF -h HOST [-p PORT] -d SECONDS`".into()),
    }
}

fn check_options(words: &[&str], required: &[&str], optional: &[&str]) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let flag = words[i];
        if !required.contains(&flag) && !optional.contains(&flag) {
            return Err(format!(
                "unexpected word `{flag}`; expected one of {:?}",
                [required, optional].concat()
            ));
        }
        if seen.contains(&flag) {
            return Err(format!("`{flag}` is given twice"));
        }
        seen.push(flag);
        let value = words
            .get(i + 1)
            .ok_or_else(|| format!("`{flag}` needs a value"))?;
        match flag {
            "-i" | "-o" => check_interface(value)?,
            "-h" => check_host(value)?,
            "-p" => syntax::port(value).map(drop).map_err(|e| e.to_string())?,
            "-d" => syntax::seconds(value)
                .map(drop)
                .map_err(|e| e.to_string())?,
            _ => unreachable!("flags are filtered above"),
        }
        i += 2;
    }
    match required.iter().find(|f| !seen.contains(f)) {
        Some(missing) => Err(format!("missing required `{missing}`")),
        None => Ok(()),
    }
}

/// ENGID as the daemon accepts it ([`crate::syntax::engid`]), and not starting with `-`, which
/// the `tcpreset` command line would read as an option.
pub fn check_engid(word: &str) -> Result<(), String> {
    if word.starts_with('-') {
        return Err(format!("ENGID `{word}` must not start with -"));
    }
    syntax::engid(word).map(drop).map_err(|e| e.to_string())
}

/// Interface names as the daemon accepts them, and not starting with `-`.
pub fn check_interface(word: &str) -> Result<(), String> {
    if word.starts_with('-') {
        return Err(format!("interface `{word}` must not start with -"));
    }
    syntax::interface(word).map(drop).map_err(|e| e.to_string())
}

pub fn check_host(word: &str) -> Result<(), String> {
    syntax::host(word).map(drop).map_err(|e| e.to_string())
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

/// Where a Run Script action runs its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Local,
    Ssh(SshTarget),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_file: Option<String>,
    pub known_hosts_file: Option<String>,
}

impl SshTarget {
    /// Checks the fields so none can be read by `ssh` as an option.
    pub fn check(&self) -> Result<(), String> {
        let host_ok = self.host.parse::<IpAddr>().is_ok()
            || (!self.host.starts_with('-')
                && !self.host.is_empty()
                && self
                    .host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b)));
        if !host_ok {
            return Err(format!(
                "ssh host `{}` must be an IP address or a host name",
                self.host
            ));
        }
        let user_ok = !self.user.starts_with('-')
            && !self.user.is_empty()
            && self
                .user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !user_ok {
            return Err(format!(
                "ssh user `{}` must be letters, digits, . _ -",
                self.user
            ));
        }
        Ok(())
    }

    /// The `ssh` argv that runs one checked line: batch mode (no prompts), host keys checked,
    /// and the remote command built from shell-quoted words.
    pub fn ssh_args(&self, line: &CheckedLine) -> Vec<String> {
        let mut args: Vec<String> = [
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
        ]
        .map(String::from)
        .to_vec();
        if let Some(known) = &self.known_hosts_file {
            args.extend(["-o".into(), format!("UserKnownHostsFile={known}")]);
        }
        if let Some(key) = &self.identity_file {
            args.extend([
                "-o".into(),
                "IdentitiesOnly=yes".into(),
                "-i".into(),
                key.clone(),
            ]);
        }
        args.extend([
            "-p".into(),
            self.port.to_string(),
            "-l".into(),
            self.user.clone(),
            "--".into(),
            self.host.clone(),
        ]);
        let remote: Vec<String> = std::iter::once(&line.program)
            .chain(&line.args)
            .map(|w| shell_quote(w))
            .collect();
        args.push(remote.join(" "));
        args
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
