//! Carrying out action plans (I/O edge): run a checked command line without a shell (locally or
//! through the system `ssh`), POST a JSON body over HTTP(S), write alert files.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value as Json;

use crate::playbook::act::action::{Dedup, HttpUrl};
use crate::playbook::act::command::{CheckedLine, Target};
use crate::playbook::act::dedup;
use crate::playbook::io::http::{HttpClient, Method};

/// Runs one checked line and reports `(succeeded, what happened)`.
pub fn run_line(target: &Target, line: &CheckedLine, timeout: Duration) -> (bool, String) {
    let mut command = match target {
        Target::Local => {
            let mut c = Command::new(&line.program);
            c.args(&line.args);
            c
        }
        Target::Ssh(ssh) => {
            let mut c = Command::new("ssh");
            c.args(ssh.ssh_args(line));
            c
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let where_ = match target {
        Target::Local => "local".to_string(),
        Target::Ssh(s) => format!("ssh {}@{}:{}", s.user, s.host, s.port),
    };
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let program = if matches!(target, Target::Local) {
                line.program.as_str()
            } else {
                "ssh"
            };
            return (false, format!("[{where_}] {}: cannot start `{program}`: {e}; check that it is installed and on PATH", line.line));
        }
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "timed out after {}s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => break Err(format!("wait failed: {e}")),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    let output = [stdout.trim(), stderr.trim()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" | ");
    match status {
        Ok(s) if s.success() => (
            true,
            format!("[{where_}] {} -> ok {output}", line.line)
                .trim_end()
                .to_string(),
        ),
        Ok(s) => (
            false,
            format!("[{where_}] {} -> {s} {output}", line.line)
                .trim_end()
                .to_string(),
        ),
        Err(e) => (false, format!("[{where_}] {} -> {e}", line.line)),
    }
}

/// POSTs a JSON body (over TLS with certificate checks for `https://`); returns the status
/// line of a 2xx response, or why it failed.
pub fn post_json(
    url: &HttpUrl,
    headers: &BTreeMap<String, String>,
    body: &str,
    timeout: Duration,
) -> Result<String, String> {
    let client = HttpClient::new(timeout, None).map_err(|e| e.to_string())?;
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reply = client
        .send(Method::Post, &url.to_string(), &headers, Some(body))
        .map_err(|e| e.to_string())?;
    if reply.is_success() {
        Ok(reply.status_line())
    } else {
        Err(format!("the receiver answered `{}`", reply.status_line()))
    }
}

/// Appends alerts to an NDJSON file, or with deduplication rewrites it with repeats folded in.
/// Returns how many alerts were folded into earlier ones.
pub fn write_alerts(
    path: &Path,
    alerts: Vec<Json>,
    dedup: Option<&Dedup>,
    now: DateTime<Utc>,
    lookback: TimeDelta,
) -> std::io::Result<usize> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let Some(dedup) = dedup else {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        for alert in alerts {
            writeln!(file, "{alert}")?;
        }
        return Ok(0);
    };
    let existing: Vec<Json> = match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("line {} is not JSON ({e}); fix or move the file", i + 1),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let (all, folded) = dedup::apply(
        existing,
        alerts,
        now,
        dedup.window.unwrap_or(lookback),
        &dedup.fields,
    );
    let tmp = path.with_extension("tmp");
    let mut text = String::new();
    for alert in all {
        text += &alert.to_string();
        text.push('\n');
    }
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)?;
    Ok(folded)
}
