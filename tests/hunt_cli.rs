//! `tcpreset-hunt` as a user runs it: check, run (dry and real, with hostile log values), schedule
//! and status.

mod playbooks;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_tcpreset-hunt");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn hunt(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn shipped(name: &str) -> String {
    format!("{ROOT}/playbooks/{name}")
}

#[test]
fn check_accepts_the_shipped_playbooks_and_reports_file_line_and_fix() {
    let names = [
        "half-opened-sessions.yaml",
        "port-usage-threshold.yaml",
        "internal-to-external-scan.yaml",
        "failed-logins.yaml",
        "reset-after-high-severity-alerts.yaml",
    ];
    let files: Vec<String> = names.iter().map(|n| shipped(n)).collect();
    let out = hunt(
        &files
            .iter()
            .map(String::as_str)
            .fold(vec!["check"], |mut v, f| {
                v.push(f);
                v
            }),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).matches(": ok (").count(), 5);

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: bad\nschedule:\n  interval_minutes: 5\nsource:\n  paths: [x]\nquery:\n  field: dstport\n  greater: five\n").unwrap();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        "name: typo\nschedule:\n  interval_minute: 5\nsource:\n  paths: [x]\n",
    )
    .unwrap();
    let out = hunt(&["check", bad.to_str().unwrap(), typo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:7: field `dstport`: `greater` needs a number",
            bad.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:3:", typo.display()))
            && err.contains("unknown field `interval_minute`"),
        "{err}"
    );
    assert!(err.contains("expected one of interval_minutes"), "{err}");
}

#[test]
fn dry_run_prints_the_seed_tcpreset_lines_over_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let text_pb = std::fs::read_to_string(shipped("reset-after-high-severity-alerts.yaml"))
        .unwrap()
        .replace(
            "/var/log/suricata/eve.json",
            &format!("{ROOT}/tests/data/hunt/alerts.eve.json"),
        );
    let pb = dir.path().join("reset.yaml");
    std::fs::write(&pb, text_pb).unwrap();
    let out = hunt(&[
        "run",
        pb.to_str().unwrap(),
        "--dry-run",
        "--now",
        "2025-06-02T10:05:00Z",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("hits: 4"), "{stdout}");
    for line in [
        "'tcpreset 2024897 -i eth1 -o eth0 -h 203.0.113.5 -d 180'",
        "'tcpreset 2024897 -i eth1 -o eth0 -h 203.0.113.6 -d 180'",
        "'tcpreset 2027865 -i eth1 -o eth0 -h 198.51.100.23 -d 180'",
    ] {
        assert!(stdout.contains(line), "{line} missing in {stdout}");
    }
    assert!(
        stdout.contains("-o BatchMode=yes -o StrictHostKeyChecking=yes"),
        "{stdout}"
    );
}

/// A playbook that resets every source of `events.ndjson`, running a recorder for `tcpreset`.
fn recorder_setup(dir: &Path, sources: &[&str]) -> PathBuf {
    let recorder = playbooks::argv_recorder(dir);
    let events: String = sources.iter().map(|s| format!("{}\n", serde_json::json!({"timestamp": "2025-06-02T10:00:00Z", "event_name": "c2", "srcip": s}))).collect();
    std::fs::write(dir.join("events.ndjson"), events).unwrap();
    let head = "name: recorder\nschedule: {interval_minutes: 60}\nsource: {paths: [events.ndjson]}";
    let playbook = playbooks::per_source_reset(head, "test-engine", None, &recorder);
    let path = dir.join("recorder.yaml");
    std::fs::write(&path, playbook).unwrap();
    path
}

#[test]
fn run_executes_allowed_lines_without_a_shell_and_refuses_hostile_values() {
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("pwned");
    let hostile = format!("$(touch {})", pwned.display());
    let sources = [
        "10.0.0.1",
        "1.2.3.4; rm -rf /",
        "1.2.3.4\ntcpreset x -i eth1 -o eth0 -h 8.8.8.8 -d 86400",
        &hostile,
        "2001:db8::7",
        "10.0.0.1' -p '22",
    ];
    let pb = recorder_setup(dir.path(), &sources);
    let out = hunt(&["run", pb.to_str().unwrap(), "--now", "2025-06-02T10:30:00Z"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "refused lines make the run fail: {stdout}"
    );
    let argv = std::fs::read_to_string(dir.path().join("argv.log")).unwrap();
    let mut lines: Vec<&str> = argv.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "test-engine|-i|eth1|-o|eth0|-h|10.0.0.1|-d|60|",
            "test-engine|-i|eth1|-o|eth0|-h|2001:db8::7|-d|60|"
        ]
    );
    assert_eq!(stdout.matches("REFUSED").count(), 4, "{stdout}");
    assert!(stdout.contains("Partial"), "{stdout}");
    assert!(!pwned.exists());

    let dry = hunt(&[
        "run",
        pb.to_str().unwrap(),
        "--now",
        "2025-06-02T10:30:00Z",
        "--dry-run",
        "--json",
    ]);
    let status: Json = serde_json::from_slice(&dry.stdout).unwrap();
    let output = status["actions"][0]["output"].as_array().unwrap();
    assert_eq!(
        output
            .iter()
            .filter(|l| l.as_str().unwrap().starts_with("would run locally"))
            .count(),
        2
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("argv.log"))
            .unwrap()
            .lines()
            .count(),
        2,
        "a dry run runs nothing"
    );
}

#[test]
fn schedule_runs_each_playbook_and_a_broken_one_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let books = dir.path().join("playbooks");
    std::fs::create_dir(&books).unwrap();
    let good = recorder_setup(&books, &["10.0.0.1"]);
    let text_pb = std::fs::read_to_string(&good).unwrap().replace(
        "{interval_minutes: 60}",
        "{interval_minutes: 60, lookback: 36500days}",
    );
    std::fs::write(&good, text_pb).unwrap();
    std::fs::write(
        books.join("broken.yaml"),
        "name: broken\nschedule: {interval_minutes: 0}\nsource: {paths: []}\n",
    )
    .unwrap();
    let status_dir = dir.path().join("status");
    let mut child = Command::new(BIN)
        .args([
            "schedule",
            books.to_str().unwrap(),
            "--status-dir",
            status_dir.to_str().unwrap(),
            "--first-run-now",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !(status_dir.join("recorder.yaml.json").exists()
        && status_dir.join("broken.yaml.json").exists())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no status files"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "schedule exits cleanly on SIGTERM: {exit:?}"
    );

    let out = hunt(&[
        "status",
        "--status-dir",
        status_dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "one playbook is invalid");
    let list: Json = serde_json::from_slice(&out.stdout).unwrap();
    let broken = &list[0];
    assert!(
        broken["validation"][0]
            .as_str()
            .unwrap()
            .contains("interval_minutes"),
        "{broken}"
    );
    let good = &list[1];
    assert_eq!(good["playbook"], "recorder");
    assert_eq!(good["search"]["hits"], 1);
    assert_eq!(good["actions"][0]["outcome"], "succeeded");
    assert!(good["actions"][0]["output"][0]
        .as_str()
        .unwrap()
        .contains("tcpreset test-engine"));
    let human = text(&hunt(&["status", "--status-dir", status_dir.to_str().unwrap()]).stdout);
    assert!(
        human.contains("recorder") && human.contains("invalid:"),
        "{human}"
    );
}

#[test]
fn a_dry_run_exits_as_the_run_would_when_every_line_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("refused.yaml");
    std::fs::write(
        &book,
        format!("name: refused\nschedule: {{interval_minutes: 60}}\nsource: {{paths: ['{ROOT}/tests/data/hunt/alerts.eve.json']}}\nconditions:\n  - {{name: any, type: compare_value, operator: greater, value: 0}}\nactions:\n  - name: reset\n    trigger: any\n    run_script:\n      target: local\n      script: 'rm -rf /tmp/nothing'\n"),
    )
    .unwrap();
    let book = book.to_str().unwrap();
    let at = "2025-06-02T10:05:00Z";
    let dry = hunt(&["run", "--dry-run", "--now", at, book]);
    assert_eq!(dry.status.code(), Some(1), "{}", text(&dry.stdout));
    assert!(
        text(&dry.stdout).contains("REFUSED"),
        "{}",
        text(&dry.stdout)
    );
    let real = hunt(&["run", "--now", at, book]);
    assert_eq!(
        real.status.code(),
        dry.status.code(),
        "{}",
        text(&real.stdout)
    );
}

#[test]
fn typos_empty_globs_caps_and_empty_substitutions_are_said_out_loud() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("typo.yaml");
    let write = |query: &str| {
        std::fs::write(
            &book,
            format!("name: typo\nschedule: {{interval_minutes: 60}}\nsource: {{paths: ['{ROOT}/tests/data/hunt/alerts.eve.json', 'rotated-*.json'], max_filtered: 2}}\nquery: {query}\nconditions:\n  - {{name: any, type: compare_value, operator: greater_or_equal, value: 0}}\nactions:\n  - name: reset\n    trigger: any\n    for_each: filtered\n    run_script:\n      target: local\n      script: 'tcpreset {{{{engid}}}} -i eth1 -o eth0 -h {{{{srcip}}}} -p {{{{dstportt}}}} -d 60'\n"),
        )
        .unwrap();
    };
    let at = "2025-06-02T10:05:00Z";
    write("{field: srcipp, is: 203.0.113.7}");
    let out = hunt(&["run", "--dry-run", "--now", at, book.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("note: `source.paths`: `rotated-*.json` matched no file"),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: field `srcipp` is in none of the"),
        "{stdout}"
    );

    write("{field: event_type, is: alert}");
    let out = hunt(&[
        "run",
        "--dry-run",
        "--payload",
        "--now",
        at,
        book.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "every line is refused: {stdout}"
    );
    assert!(
        stdout.contains(
            "`filtered` holds the first 2 of 6 matching records (source.max_filtered: 2)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("-p  -d 60\": {{dstportt}} has no value in the action's context"),
        "{stdout}"
    );
    let payload: Json = serde_json::from_str(&stdout[stdout.find("\n{").unwrap()..]).unwrap();
    assert_eq!(payload["payload"]["hits"]["total"]["value"], 6);
    assert_eq!(
        payload["payload"]["filtered"][0]["srcip"], "203.0.113.5",
        "{payload}"
    );
}

#[test]
fn now_without_an_offset_says_it_needs_z_or_an_offset() {
    let out = hunt(&[
        "run",
        "--now",
        "2025-06-02T10:05:00",
        &shipped("failed-logins.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("end it with `Z` (UTC) or an offset"), "{err}");
}

#[test]
fn check_warns_of_fields_the_declared_format_lacks_and_run_takes_a_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("typo.yaml");
    std::fs::write(
        &book,
        format!("name: typo\nschedule: {{interval_minutes: 60}}\nsource: {{paths: ['{ROOT}/tests/data/hunt/half-opened.conn.log'], format: zeek}}\nquery: {{field: srcipp, is: 10.0.0.66}}\n"),
    )
    .unwrap();
    let book = book.to_str().unwrap();
    let out = hunt(&["check", book]);
    assert_eq!(out.status.code(), Some(0), "a warning does not refuse");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{book}:4: warning: field `srcipp` is not a field of Zeek conn.log records"
        )),
        "{err}"
    );
    let at = "2025-06-02T10:05:00Z";
    let one = hunt(&[
        "run",
        "--dry-run",
        "--json",
        "--threads",
        "1",
        "--now",
        at,
        book,
    ]);
    let all = hunt(&["run", "--dry-run", "--json", "--now", at, book]);
    let hits = |o: &Output| -> Json {
        serde_json::from_slice::<Json>(&o.stdout).unwrap()["search"]["records"].clone()
    };
    assert_eq!(hits(&one), hits(&all));
    assert!(hits(&one).as_u64() > Some(0), "{}", text(&one.stdout));
    let zero = hunt(&["run", "--threads", "0", "--now", at, book]);
    assert_eq!(zero.status.code(), Some(2), "{}", text(&zero.stderr));
}
