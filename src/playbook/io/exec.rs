//! Carrying out action plans (I/O edge): run a checked command line without a shell (locally, or
//! the system `ssh` for [`super::ssh`]), POST a JSON body over HTTP/1.1, write alert files.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value as Json;

use crate::playbook::act::action::{Dedup, HttpUrl};
use crate::playbook::act::command::CheckedLine;
use crate::playbook::act::dedup;

/// Runs one checked line on this host and reports `(succeeded, what happened)`.
pub fn run_local(line: &CheckedLine, timeout: Duration) -> (bool, String) {
    let mut command = Command::new(&line.program);
    command.args(&line.args);
    match run_command(command, timeout) {
        Ok(done) => done.report("[local]", &line.line),
        Err(e) => (
            false,
            format!(
                "[local] {}: cannot start `{}`: {e}; check that it is installed and on PATH",
                line.line, line.program
            ),
        ),
    }
}

/// How a command ended: its exit status (or why there is none) and what it printed.
#[derive(Debug)]
pub struct Finished {
    pub status: Result<ExitStatus, String>,
    /// Standard output and error, trimmed, joined by ` | `.
    pub output: String,
}

impl Finished {
    /// `(succeeded, "[where] line -> ok output")`.
    pub fn report(&self, where_: &str, line: &str) -> (bool, String) {
        let (ok, result) = match &self.status {
            Ok(s) if s.success() => (true, "ok".to_string()),
            Ok(s) => (false, s.to_string()),
            Err(e) => (false, e.clone()),
        };
        let text = format!("{where_} {line} -> {result} {}", self.output);
        (ok, text.trim_end().to_string())
    }
}

/// The most of each output stream kept; the rest is read and dropped.
const OUTPUT_CAP: u64 = 16 * 1024;

/// Runs `command` without a shell, its stdin empty, for at most `timeout` (then it is killed with
/// its whole process group, so no child it started holds its output open). The outputs are read
/// while it runs, so a chatty command cannot fill a pipe and hang.
pub fn run_command(mut command: Command, timeout: Duration) -> std::io::Result<Finished> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn()?;
    let readers = [
        child.stdout.take().map(|s| read_capped(Box::new(s))),
        child.stderr.take().map(|s| read_capped(Box::new(s))),
    ];
    let started = Instant::now();
    let mut nap = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= timeout => {
                let group = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "timed out after {:.1}s and was killed",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => {
                std::thread::sleep(nap.min(timeout.saturating_sub(started.elapsed())));
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            Err(e) => break Err(format!("wait failed: {e}")),
        }
    };
    let texts: Vec<String> = readers
        .into_iter()
        .flatten()
        .map(|r| r.join().unwrap_or_default())
        .collect();
    let output = texts
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    Ok(Finished { status, output })
}

fn read_capped(mut from: Box<dyn Read + Send>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = (&mut from).take(OUTPUT_CAP).read_to_end(&mut kept);
        let _ = std::io::copy(&mut from, &mut std::io::sink());
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// POSTs a JSON body; returns the status line of a 2xx response, or why it failed.
pub fn post_json(
    url: &HttpUrl,
    headers: &BTreeMap<String, String>,
    body: &str,
    timeout: Duration,
) -> Result<String, String> {
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .next()
        .ok_or("no address")?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let host = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let mut request = format!("POST {} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", url.path, body.len());
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    request += "\r\n";
    request += body;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send failed: {e}"))?;
    let mut response = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or("").to_string();
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(c) if (200..300).contains(&c) => Ok(status_line),
        Some(_) => Err(format!("the receiver answered `{status_line}`")),
        None => Err("no HTTP response".into()),
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
