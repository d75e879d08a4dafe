//! Each shipped playbook, on a small log where it fires and on one where it does not.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tcpreset::playbook::act::status::{ActionOutcome, Status};
use tcpreset::playbook::io::load::load;
use tcpreset::playbook::io::run::{run_playbook, RunOptions};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn now() -> DateTime<Utc> {
    at("10:30")
}

/// A time on 2025-06-02, the day of the test logs (which start at 10:00 UTC).
fn at(hh_mm: &str) -> DateTime<Utc> {
    format!("2025-06-02T{hh_mm}:00Z").parse().unwrap()
}

/// Copies a shipped playbook into `dir`, reading `logs` and writing alerts into `dir`.
fn prepare(playbook: &str, logs: &[&str], dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(format!("{ROOT}/playbooks/{playbook}")).unwrap();
    let logs: Vec<String> = logs
        .iter()
        .map(|l| format!("{ROOT}/tests/data/hunt/{l}"))
        .collect();
    let text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("  paths: [") {
                format!("  paths: [{}]", logs.join(", "))
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "/var/lib/tcpreset-hunt/alerts.ndjson",
            &dir.join("alerts.ndjson").display().to_string(),
        );
    std::fs::copy(
        format!("{ROOT}/playbooks/port-thresholds.csv"),
        dir.join("port-thresholds.csv"),
    )
    .unwrap();
    let path = dir.join(playbook);
    std::fs::write(&path, text).unwrap();
    path
}

fn run(playbook: &str, logs: &[&str], dry_run: bool) -> (Status, tempfile::TempDir) {
    run_at(playbook, logs, dry_run, now())
}

fn run_at(
    playbook: &str,
    logs: &[&str],
    dry_run: bool,
    now: DateTime<Utc>,
) -> (Status, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = prepare(playbook, logs, dir.path());
    let pb = load(&path).unwrap();
    let status = run_playbook(
        &path,
        &pb,
        now,
        now,
        RunOptions {
            dry_run,
            threads: 2,
        },
    );
    assert!(status.error.is_none(), "{status:?}");
    assert_eq!(status.search.as_ref().unwrap().malformed, 0);
    (status, dir)
}

fn alerts(dir: &Path) -> Vec<Json> {
    match std::fs::read_to_string(dir.join("alerts.ndjson")) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn half_opened_sessions_fires_per_source_from_zeek_and_suricata() {
    let (status, dir) = run(
        "half-opened-sessions.yaml",
        &["half-opened.conn.log", "half-opened.eve.json"],
        false,
    );
    assert!(status.conditions[0].met);
    assert_eq!(status.actions[0].outcome, ActionOutcome::Succeeded);
    let sources: Vec<Json> = alerts(dir.path())
        .iter()
        .map(|a| a["result"]["srcip"].clone())
        .collect();
    assert_eq!(sources, ["10.0.0.66", "10.0.0.77"]);
    // The five S0 of 10.0.0.8 are before the 30-minute window.
    assert_eq!(status.search.unwrap().outside_window, 5);

    let (status, dir) = run(
        "half-opened-sessions.yaml",
        &["half-opened-quiet.conn.log"],
        false,
    );
    assert!(!status.conditions[0].met);
    assert_eq!(status.actions[0].outcome, ActionOutcome::NotTriggered);
    assert!(alerts(dir.path()).is_empty());
}

#[test]
fn half_opened_alerts_are_deduplicated_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepare(
        "half-opened-sessions.yaml",
        &["half-opened.conn.log"],
        dir.path(),
    );
    let pb = load(&path).unwrap();
    for minutes in [0, 10] {
        let at = now() + chrono::TimeDelta::minutes(minutes);
        run_playbook(&path, &pb, now(), at, RunOptions::default());
    }
    let all = alerts(dir.path());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["ath_deduplication"]["repeat_count"], 2);
    assert_eq!(
        all[0]["ath_deduplication"]["last_time_utc"],
        "2025-06-02 10:40:00 UTC"
    );
}

#[test]
fn port_usage_above_the_watchlist_threshold() {
    let (status, dir) = run_at(
        "port-usage-threshold.yaml",
        &["port-usage.conn.json"],
        false,
        at("10:05"),
    );
    assert!(status.conditions[0].met);
    let all = alerts(dir.path());
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["result"]["dstport"], 23);
    assert_eq!(all[0]["result"]["doc_count"], 6);
    assert_eq!(all[0]["result"]["watchlist"]["name"], "Telnet");
    // Port 8443 is not in the watchlist, so its 30 connections are not even searched.
    assert_eq!(status.search.unwrap().hits, 16);

    let (status, _) = run_at(
        "port-usage-threshold.yaml",
        &["port-usage-quiet.conn.json"],
        false,
        at("10:05"),
    );
    assert!(!status.conditions[0].met);
}

#[test]
fn internal_to_external_scan() {
    let (status, dir) = run("internal-to-external-scan.yaml", &["scan.conn.log"], false);
    assert!(status.conditions[0].met);
    let all = alerts(dir.path());
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["result"]["srcip"], "10.1.1.5");
    assert_eq!(all[0]["result"]["doc_count"], 12);
    assert_eq!(all[0]["result"]["distinct_ports"]["value"], 12);

    let (status, dir) = run(
        "internal-to-external-scan.yaml",
        &["scan-quiet.conn.log"],
        false,
    );
    assert!(!status.conditions[0].met);
    assert!(alerts(dir.path()).is_empty());
}

/// Accepts `n` HTTP requests and returns their bodies.
fn receive(listener: TcpListener, n: usize) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        (0..n)
            .map(|_| {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .unwrap();
                String::from_utf8(body).unwrap()
            })
            .collect()
    })
}

#[test]
fn failed_logins_with_three_nested_subgroups_post_webhooks() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = receive(listener, 4);
    let dir = tempfile::tempdir().unwrap();
    let path = prepare("failed-logins.yaml", &["logins.ndjson"], dir.path());
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:8088", &format!("127.0.0.1:{port}"));
    std::fs::write(&path, text).unwrap();
    let status = run_playbook(
        &path,
        &load(&path).unwrap(),
        at("10:10"),
        at("10:10"),
        RunOptions::default(),
    );
    assert_eq!(
        status.actions[0].outcome,
        ActionOutcome::Succeeded,
        "{status:?}"
    );
    let mut bodies: Vec<Json> = server
        .join()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    bodies.sort_by_key(|b| b.to_string());
    let expected = [
        r#"{"srcip": "198.51.100.1", "host": "10.2.0.1", "username": "admin", "attempts": 1, "total": 5}"#,
        r#"{"srcip": "198.51.100.1", "host": "10.2.0.1", "username": "root", "attempts": 2, "total": 5}"#,
        r#"{"srcip": "198.51.100.1", "host": "10.2.0.2", "username": "root", "attempts": 1, "total": 5}"#,
        r#"{"srcip": "198.51.100.2", "host": "10.2.0.1", "username": "oracle", "attempts": 1, "total": 5}"#,
    ];
    let mut expected: Vec<Json> = expected
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    expected.sort_by_key(|b| b.to_string());
    assert_eq!(bodies, expected);

    let (status, _) = run_at(
        "failed-logins.yaml",
        &["logins-quiet.ndjson"],
        true,
        at("10:10"),
    );
    assert!(!status.conditions[0].met);
}

#[test]
fn reset_after_high_severity_alerts_renders_the_seed_script() {
    let (status, _) = run_at(
        "reset-after-high-severity-alerts.yaml",
        &["alerts.eve.json"],
        true,
        at("10:05"),
    );
    assert!(status.conditions[0].met);
    let action = &status.actions[0];
    assert_eq!(action.outcome, ActionOutcome::DryRun);
    // The control directory depends on the user and the network namespace.
    let ssh = "would run over ssh on sensor 127.0.0.1 (127.0.0.1:22): ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o ControlMaster=auto -o ControlPath=";
    let rest = "/%C -o ControlPersist=600 -o UserKnownHostsFile=/etc/tcpreset-hunt/known_hosts -o IdentitiesOnly=yes -i /etc/tcpreset-hunt/id_ed25519 -p 22 -l tcpreset -- 127.0.0.1";
    let lines = [
        "'tcpreset 2024897 -i eth1 -o eth0 -h 203.0.113.5 -d 180'",
        "'tcpreset 2024897 -i eth1 -o eth0 -h 203.0.113.6 -d 180'",
        "'tcpreset 2027865 -i eth1 -o eth0 -h 198.51.100.23 -d 180'",
    ];
    assert_eq!(action.output.len(), lines.len(), "{:#?}", action.output);
    for (out, line) in action.output.iter().zip(lines) {
        assert!(out.starts_with(ssh), "{out}");
        assert!(out.ends_with(&format!("{rest} {line}")), "{out}");
    }
    let (status, _) = run_at(
        "reset-after-high-severity-alerts.yaml",
        &["alerts-quiet.eve.json"],
        true,
        at("10:05"),
    );
    assert!(!status.conditions[0].met);
    assert_eq!(status.actions[0].outcome, ActionOutcome::NotTriggered);
}
