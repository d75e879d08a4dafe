//! Issue 10's live tests: a state directory that cannot save refuses changes (exit code 5, the
//! fix named) and stops the next start; a daemon at its file descriptor limit backs off on the
//! failing `accept()` with one log line and serves again once clients leave.
mod lab;

use lab::{require_root, scratch, Lab, CLIENT};
use nix::sys::signal::Signal;
use std::os::unix::net::UnixStream;
use std::process::{Command, Output};
use std::time::Duration;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_state_directory_that_cannot_save_refuses_changes_and_the_next_start() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("hstate");
    lab.start_daemon(&[]);
    let add = |lab: &Lab, engid: &str| {
        lab.tcpreset(&[engid, "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "120"])
    };
    assert!(add(&lab, "kept").status.success());
    let state = scratch(&lab, "state");
    std::fs::remove_file(state.join("rules.journal")).unwrap();
    std::fs::create_dir(state.join("rules.journal")).unwrap();
    let out = add(&lab, "lost");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("the change was not made")
            && message.contains(&state.display().to_string()),
        "{message}"
    );
    let out = lab.tcpreset(&["stats"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("rules saved: FAILING since"), "{text}");
    let rules = lab.rules();
    assert_eq!(
        rules.len(),
        1,
        "only the acknowledged rule lives: {rules:?}"
    );
    lab.signal_daemon(Signal::SIGKILL);
    let config = scratch(&lab, "tcpresetd.toml");
    let start = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("sen"),
            env!("CARGO_BIN_EXE_tcpresetd"),
        ])
        .arg("--socket")
        .arg(&lab.socket)
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        !start.status.success(),
        "it started with an unusable state directory"
    );
    let message = stderr(&start);
    assert!(
        message.contains(&format!(
            "the state directory {} is unusable",
            state.display()
        )),
        "{message}"
    );
}

/// The daemon's CPU time (user + system), in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn at_its_descriptor_limit_the_daemon_backs_off_and_serves_again() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("hfd");
    lab.start_daemon(&[]);
    let pid = lab.daemon_pid().to_string();
    let limited = Command::new("prlimit")
        .args(["--nofile=96:96", "--pid", &pid])
        .status()
        .unwrap();
    assert!(limited.success());
    // More idle clients than descriptors: accept() fails with EMFILE for the rest.
    let idle: Vec<UnixStream> = (0..200)
        .map(|_| UnixStream::connect(&lab.socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(lab.daemon_pid());
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(lab.daemon_pid()) - before;
    assert!(
        spent < 50,
        "{spent} ticks in 2 s while accept() fails: no back-off"
    );
    let log = lab.daemon_log();
    assert_eq!(
        log.matches("accept on the control socket fails").count(),
        1,
        "one line per episode:\n{}",
        &log[log.len().saturating_sub(3000)..]
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(1500));
    let out = lab.tcpreset(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(lab
        .daemon_log()
        .contains("control socket accepts connections again"));
}
