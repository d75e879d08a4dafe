//! The client's checks and exit codes against real interfaces, and the daemon's own checks of
//! what arrives on its socket.
mod lab;

use lab::{require_root, Lab, CLIENT};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Command, Output};

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn interface_checks_and_exit_codes() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("cli");
    // Before the daemon runs: a valid line gets exit 4 naming the socket and the fix.
    let out = lab.tcpreset(&["e1", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "5"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains(&lab.socket.display().to_string()));
    assert!(stderr(&out).contains("tcpresetd is not running"));
    lab.start_daemon(&[]);

    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["e1", "-i", "eth9", "-o", "eth0", "-h", CLIENT, "-d", "5"],
            3,
            "sniff interface 'eth9' does not exist",
        ),
        (
            &["e1", "-i", "eth1", "-o", "eth1", "-h", CLIENT, "-d", "5"],
            3,
            "reset interface 'eth1' has no IP address",
        ),
        (
            &["e1", "-i", "eth1", "-o", "lo", "-h", "fd77::1", "-d", "5"],
            2,
            "interface 'lo' is the loopback",
        ),
        (
            &["e1", "-i", "eth1", "-o", "eth0", "-h", "nothost", "-d", "5"],
            2,
            "HOST 'nothost'",
        ),
        (
            &["e1", "-i", "eth1", "-o", "eth0", "-h", CLIENT],
            2,
            "missing -d <SECONDS>",
        ),
        (
            &["cancel", "e1", "-h", CLIENT],
            5,
            "no rule e1 for host 10.77.0.1",
        ),
    ];
    for (args, want_code, want) in cases {
        let out = lab.tcpreset(args);
        assert_eq!(code(&out), *want_code, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).lines().count(),
            1,
            "one line: {}",
            stderr(&out)
        );
    }

    let status = Command::new("ip")
        .args(["-n", &lab.ns("sen"), "link", "set", "eth1", "down"])
        .status()
        .unwrap();
    assert!(status.success());
    let out = lab.tcpreset(&["e1", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "5"]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out)
            .contains("sniff interface 'eth1' is down; bring it up with 'ip link set eth1 up'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn refresh_cancel_and_flush() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("ops");
    lab.start_daemon(&[]);
    let add = |secs: &str| {
        lab.tcpreset(&[
            "e1", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-p", "22", "-d", secs,
        ])
    };
    let out = add("30");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout)
        .starts_with("reset added: engid e1 host 10.77.0.1 (port 22)"));
    let out = add("600");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("reset refreshed:"));
    let rules = lab.rules();
    assert_eq!(rules.len(), 1, "a refresh adds no duplicate");
    assert!(rules[0]["seconds_left"].as_f64().unwrap() > 590.0);
    assert_eq!(rules[0]["port"], 22);
    let out = lab.tcpreset(&[
        "add", "e2", "-i", "eth1", "-o", "eth0", "-h", "fd77::1", "-d", "30",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = lab.tcpreset(&["cancel", "e1", "-h", CLIENT, "-p", "22"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lab.rules().len(), 1);
    let out = lab.tcpreset(&["flush"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "flushed 1 reset rule(s)"
    );
    assert!(lab.rules().is_empty());
    let out = lab.tcpreset(&["list"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no active resets"
    );
}

#[test]
fn the_daemon_checks_every_request_and_survives_garbage() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("api");
    lab.start_daemon(&[]);
    let ask = |line: &str| lab.ask(line);
    for (line, want) in [
        ("garbage", "not JSON"),
        (r#"{"v":9,"op":"list"}"#, "protocol version 9"),
        (
            r#"{"v":1,"op":"add","engid":"e;rm","sniff_if":"eth1","reset_if":"eth0","host":"10.77.0.1","seconds":"5"}"#,
            "ENGID 'e;rm'",
        ),
        (
            r#"{"v":1,"op":"add","engid":"e","sniff_if":"eth1","reset_if":"eth0","host":"10.77.0.1","seconds":"999999"}"#,
            "SECONDS '999999'",
        ),
        (
            r#"{"v":1,"op":"add","engid":"e","sniff_if":"eth1","reset_if":"eth1","host":"10.77.0.1","seconds":"5"}"#,
            "has no IP address",
        ),
        (
            r#"{"v":1,"op":"add","engid":"e","sniff_if":"eth1","reset_if":"lo","host":"fd77::1","seconds":"5"}"#,
            "interface 'lo' is the loopback",
        ),
    ] {
        let answer = ask(line);
        assert!(
            answer.contains(r#""status":"error""#) && answer.contains(want),
            "{line} -> {answer}"
        );
    }
    // A request line far too long, and a connection that closes mid-line.
    let huge = format!(
        "{{\"v\":1,\"op\":\"list\",\"x\":\"{}\"}}",
        "a".repeat(100_000)
    );
    assert!(ask(&huge).contains("longer than"));
    drop(
        UnixStream::connect(&lab.socket)
            .unwrap()
            .write_all(b"{\"v\":1,"),
    );
    // Still serving.
    assert!(lab.rules().is_empty());
}
