//! `tcpreset-hunt schedule` following a real-time playbook's EVE file, through inotify, as a
//! user runs it: a file that appears after the start, a burst that is one evaluation, results
//! acted on once (suppression), bad lines named by file and line, a rotation and a partial line.

mod playbooks;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_tcpreset-hunt");

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn alert(host: &str) -> String {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+0000");
    format!(
        r#"{{"timestamp":"{now}","flow_id":1,"in_iface":"eth1","event_type":"alert","src_ip":"{host}","src_port":40000,"dest_ip":"192.168.1.40","dest_port":80,"proto":"TCP","alert":{{"action":"allowed","gid":1,"signature_id":2024897,"rev":1,"signature":"ET EXPLOIT Apache log4j RCE Attempt","category":"Attempted Administrator Privilege Gain","severity":1}}}}"#
    ) + "\n"
}

fn flow(i: usize) -> String {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+0000");
    format!(
        r#"{{"timestamp":"{now}","flow_id":{i},"event_type":"flow","src_ip":"10.1.{}.{}","src_port":5000,"dest_ip":"192.168.1.40","dest_port":443,"proto":"TCP","flow":{{"pkts_toserver":3,"state":"closed"}}}}"#,
        i / 250 % 250,
        i % 250
    ) + "\n"
}

fn status(dir: &Path) -> Json {
    let text = std::fs::read_to_string(dir.join("realtime.yaml.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Json::Null)
}

/// Waits until `test` holds for the status, or fails with `what` and the last status.
fn wait_for(dir: &Path, what: &str, test: impl Fn(&Json) -> bool) -> Json {
    let started = Instant::now();
    loop {
        let s = status(dir);
        if test(&s) {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}; last status: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn recorded(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("argv.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_recorded(dir: &Path, n: usize) -> Vec<String> {
    let started = Instant::now();
    while recorded(dir).len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {n} lines run: {:?}",
            recorded(dir)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    recorded(dir)
}

/// `tcpreset-hunt schedule BOOKS --status-dir STATUS`, its output dropped.
fn schedule(books: &std::path::Path, status_dir: &std::path::Path) -> std::process::Child {
    Command::new(BIN)
        .args(["schedule", books.to_str().unwrap(), "--status-dir"])
        .arg(status_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn follows_an_eve_file_acts_once_per_result_and_survives_rotation_and_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let books = d.join("playbooks");
    let logs = d.join("logs");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::create_dir_all(&logs).unwrap();
    let recorder = playbooks::argv_recorder(d);
    let eve = logs.join("eve.json");
    let head = format!(
        "name: realtime\nschedule: {{realtime: {{lookback: 10m}}}}\n\
         source: {{paths: ['{}'], format: suricata}}\nquery: {{field: event_type, is: alert}}",
        eve.display()
    );
    std::fs::write(
        books.join("realtime.yaml"),
        playbooks::per_source_reset(&head, "rt-test", Some("180s"), &recorder),
    )
    .unwrap();
    let status_dir = d.join("status");
    let mut child = schedule(&books, &status_dir);

    // The file does not exist yet: said, and read from its start once it appears.
    wait_for(&status_dir, "the missing file to be reported", |s| {
        s["realtime"]["files"][0]["state"]
            .as_str()
            .is_some_and(|t| t.contains("does not exist"))
    });
    append(&eve, "");
    wait_for(&status_dir, "the file to be found", |s| {
        s["realtime"]["files"][0]["state"].is_null() && s["realtime"]["evaluations"].is_u64()
    });
    let before = status(&status_dir)["realtime"]["evaluations"]
        .as_u64()
        .unwrap();

    // A burst of 10,000 lines, one of them an alert, written at once: one evaluation.
    let mut burst: Vec<String> = (0..9_999).map(flow).collect();
    burst.insert(5_000, alert("203.0.113.5"));
    append(&eve, &burst.concat());
    let run = wait_recorded(d, 1);
    assert_eq!(run, ["rt-test|-i|eth1|-o|eth0|-h|203.0.113.5|-d|60|"]);
    let s = wait_for(&status_dir, "the burst to be read", |s| {
        s["realtime"]["records_read"] == 10_000
    });
    assert_eq!(
        s["realtime"]["evaluations"].as_u64().unwrap() - before,
        1,
        "{s:#}"
    );
    // Only the hit is kept in the window, not the 10,000 records.
    assert_eq!(s["realtime"]["window_records"], 1, "{s:#}");

    // The same host again: the same line, suppressed; a new host: acted on.
    append(&eve, &alert("203.0.113.5"));
    wait_for(&status_dir, "the repeat to be suppressed", |s| {
        s["realtime"]["suppressed"].as_u64() >= Some(1)
    });
    append(&eve, &alert("203.0.113.6"));
    let run = wait_recorded(d, 2);
    assert_eq!(run[1], "rt-test|-i|eth1|-o|eth0|-h|203.0.113.6|-d|60|");

    // Bad lines are named by file and line; the follower goes on.
    append(
        &eve,
        "{\"event_type\":\"alert\" but not json\n{\"event_type\":\"alert\",\"src_ip\":\"203.0.113.66\"}\n",
    );
    let s = wait_for(&status_dir, "the bad lines to be reported", |s| {
        s["realtime"]["problems"].to_string().contains(":10004:")
    });
    let problems = s["realtime"]["problems"].to_string();
    let name = eve.display().to_string();
    assert!(problems.contains(&format!("{name}:10003:")), "{problems}");
    assert!(
        problems.contains(&format!("{name}:10004: the record has no timestamp")),
        "{problems}"
    );

    // Rotation (rename + create, as Suricata does on SIGHUP): nothing lost, nothing twice.
    std::fs::rename(&eve, logs.join("eve.json.1")).unwrap();
    append(&logs.join("eve.json.1"), &alert("203.0.113.7"));
    append(&eve, &alert("203.0.113.8"));
    let run = wait_recorded(d, 4);
    assert!(run[2..].contains(&"rt-test|-i|eth1|-o|eth0|-h|203.0.113.7|-d|60|".to_string()));
    assert!(run[2..].contains(&"rt-test|-i|eth1|-o|eth0|-h|203.0.113.8|-d|60|".to_string()));

    // A partial last line waits for its line break.
    let line = alert("203.0.113.9");
    let (head, tail) = line.split_at(line.len() / 2);
    append(&eve, head);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(recorded(d).len(), 4);
    append(&eve, tail);
    let run = wait_recorded(d, 5);
    assert_eq!(run[4], "rt-test|-i|eth1|-o|eth0|-h|203.0.113.9|-d|60|");

    let out = Command::new(BIN)
        .args(["status", "--status-dir"])
        .arg(&status_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("real time: "), "{text}");
    assert!(text.contains("evaluations"), "{text}");
    assert!(text.contains("1 rotations"), "{text}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(recorded(d).len(), 5, "nothing acted on twice");
}

/// The problems `check` reports for a playbook text, one string each.
fn problems(text: &str) -> Vec<String> {
    match tcpreset::playbook::spec::check::parse_playbook(text) {
        Ok(_) => Vec::new(),
        Err(p) => p.into_iter().map(|p| p.message).collect(),
    }
}

#[test]
fn the_realtime_schedule_and_suppress_are_checked() {
    let book = |schedule: &str, suppress: &str| {
        format!("name: x\nschedule: {schedule}\nsource: {{paths: [eve.json]}}\nconditions:\n  - {{name: c, type: compare_value, operator: greater, value: 0}}\nactions:\n  - name: a\n    trigger: c\n{suppress}    create_alert: {{file: a.json, alert_type: x}}\n")
    };
    let ok = tcpreset::playbook::spec::check::parse_playbook(&book(
        "{realtime: {lookback: 10m}}",
        "    suppress: 3m\n",
    ))
    .unwrap();
    assert!(ok.schedule.is_realtime());
    assert_eq!(ok.schedule.lookback, Some(chrono::TimeDelta::minutes(10)));
    assert_eq!(ok.actions[0].suppress, Some(chrono::TimeDelta::minutes(3)));
    let got = problems(&book("{realtime: {}}", ""));
    assert!(got[0].contains("lookback"), "{got:?}");
    let got = problems(&book("{realtime: {lookback: 10m}, lookback: 5m}", ""));
    assert!(got[0].contains("inside it"), "{got:?}");
    let got = problems(&book(
        "{realtime: {lookback: 10m}, interval_minutes: 5}",
        "",
    ));
    assert!(got[0].contains("exactly one of"), "{got:?}");
    let got = problems(&book("{interval_minutes: 5}", "    suppress: 3m\n"));
    assert!(got[0].contains("real-time playbooks only"), "{got:?}");
    let got = problems(&book("{realtime: {lookback: 10m}}", "    suppress: soon\n"));
    assert!(got[0].contains("`suppress`"), "{got:?}");
}

#[test]
fn an_unreachable_target_is_reported_and_the_follower_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let books = d.join("playbooks");
    std::fs::create_dir_all(&books).unwrap();
    let eve = d.join("eve.json");
    std::fs::write(&eve, "").unwrap();
    // Nothing listens on port 1 of 127.0.0.1: ssh fails at once.
    std::fs::write(
        books.join("realtime.yaml"),
        format!(
            "name: realtime\nschedule: {{realtime: {{lookback: 10m}}}}\nsource: {{paths: ['{}'], format: suricata}}\n\
             query: {{field: event_type, is: alert}}\n\
             calculations: [{{name: by_src, type: top, field: srcip, size: 100}}]\n\
             conditions: [{{name: hits, type: compare_value, operator: greater, value: 0}}]\n\
             actions:\n  - name: reset\n    trigger: hits\n    for_each: by_src\n    run_script:\n      \
             target: {{ssh: {{host: 127.0.0.1, port: 1, user: root}}}}\n      \
             script: 'tcpreset rt-test -i eth1 -o eth0 -h {{{{srcip}}}} -d 60'\n",
            eve.display()
        ),
    )
    .unwrap();
    let status_dir = d.join("status");
    let mut child = schedule(&books, &status_dir);
    wait_for(&status_dir, "the follower to start", |s| {
        s["realtime"]["evaluations"].is_u64()
    });
    append(&eve, &alert("203.0.113.5"));
    let s = wait_for(&status_dir, "the failure to be reported", |s| {
        s["actions"][0]["outcome"] == "failed"
    });
    // The failed lines are in the action's output or its sensor's status.
    let output = s["actions"][0].to_string();
    assert!(output.contains("203.0.113.5"), "{output}");
    // The follower goes on: the next alert is read and tried.
    append(&eve, &alert("203.0.113.6"));
    let s = wait_for(&status_dir, "the next record to be read", |s| {
        s["realtime"]["records_read"] == 2 && s["actions"][0]["outcome"] == "failed"
    });
    assert!(s["actions"][0].to_string().contains("203.0.113.6"), "{s:#}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
}
