//! Issue 4's live tests: state across kill -9, authorization, protected hosts, the rate cap,
//! reload, readiness, and a corrupt state file.
mod lab;

use lab::{require_root, scratch, Lab, RstWatch, CLIENT, SERVER};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Output};
use std::time::Duration;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn rule_line(lab: &Lab, host: &str, secs: &str) -> Vec<String> {
    lab.tcpreset_argv(&["ids", "-i", "eth1", "-o", "eth0", "-h", host, "-d", secs])
}

fn stats(lab: &Lab) -> Value {
    let out = lab.tcpreset(&["stats", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn rules_survive_kill_9_with_their_time_left() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("persist");
    lab.start_daemon(&[]);
    let out = lab.tcpreset(&["ids", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "120"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(Duration::from_secs(1));
    lab.signal_daemon(Signal::SIGKILL);
    lab.start_daemon(&[]);
    let rules = lab.rules();
    assert_eq!(rules.len(), 1, "{}", lab.daemon_log());
    let left = rules[0]["seconds_left"].as_f64().unwrap();
    assert!(
        (115.0..119.5).contains(&left),
        "{left} s left after a restart"
    );
    // The restored rule holds with no new registration: the capture of its sniff interface is
    // open from the start (track = "auto"), so a new connection is cut at its handshake.
    let attempt = lab.connect("cli", 7001);
    lab.assert_established(&attempt, false);
}

#[test]
fn a_corrupt_state_file_is_moved_aside() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("corrupt");
    let state = scratch(&lab, "state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("rules.json"), "{ this is not json").unwrap();
    lab.start_daemon(&[]);
    assert!(lab.rules().is_empty());
    let aside: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rules.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(lab.daemon_log().contains("unreadable; moved aside"));
}

#[test]
fn unauthorized_users_are_refused_until_allowed_and_reload_keeps_rules() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("auth");
    lab.start_daemon(&[]);
    let out = lab.tcpreset(&["ids", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "300"]);
    assert!(out.status.success());
    // Let anyone reach the socket file, so that only the daemon's own check stands.
    for p in [lab.socket.parent().unwrap(), lab.socket.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let socket = lab.socket.clone();
    let as_nobody = || {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_tcpreset"))
            .arg("--socket")
            .arg(&socket)
            .arg("list")
            .output()
            .unwrap()
    };
    let out = as_nobody();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("uid 65534") && stderr(&out).contains("usermod -aG"),
        "{}",
        stderr(&out)
    );
    assert!(
        lab.daemon_log().contains("refused"),
        "the daemon logs the refusal"
    );
    assert_eq!(stats(&lab)["caps"]["refused_unauthorized"], 1);
    // Allow uid 65534 in the configuration and reload: the rule is still there.
    lab.write_config("allowed_users = [\"65534\"]\n");
    lab.signal_daemon(Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    let out = as_nobody();
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        lab.daemon_log()
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(CLIENT),
        "the rule survived the reload"
    );
}

#[test]
fn protected_hosts_are_refused_and_never_sent_a_rst() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("protect");
    lab.write_config(&format!("protected = [\"{SERVER}/32\"]\n"));
    lab.start_daemon(&[]);
    let out = lab.tcpreset(&["ids", "-i", "eth1", "-o", "eth0", "-h", SERVER, "-d", "30"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("is protected"), "{}", stderr(&out));
    // The sensor's own address is protected without being configured.
    let out = lab.tcpreset(&[
        "ids",
        "-i",
        "eth1",
        "-o",
        "eth0",
        "-h",
        "10.77.0.254",
        "-d",
        "30",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // A rule on the client: RSTs go to the client only, never to the protected server.
    let watch = RstWatch::start(&lab);
    let report = lab.trial("cli", 7002, "chat", &rule_line(&lab, CLIENT, "30"));
    let lines = watch.stop().join("\n");
    assert_eq!(report["client"]["error"], "ECONNRESET", "{report:#}");
    assert!(
        lines.contains("> 10.77.0.1."),
        "RSTs to the client:\n{lines}\n{}",
        lab.daemon_log()
    );
    assert!(
        !lines.contains("> 10.77.0.2."),
        "a RST went to the protected server:\n{lines}"
    );
    assert!(stats(&lab)["caps"]["protected_skipped"].as_u64().unwrap() > 0);
}

#[test]
fn readiness_is_sent_to_notify_socket() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("notify");
    let path = scratch(&lab, "notify.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    lab.start_daemon_env(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let mut buf = [0u8; 256];
    let n = listener.recv(&mut buf).expect("a notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
}

/// A capture of `n` SYNs from 10.77.0.1 (ports 10000..) to 10.77.0.2:9, each a new connection
/// attempt that calls for two RSTs.
fn syn_flood(path: &std::path::Path, n: u16) {
    lab::write_syns(path, n, |i| tcpreset::wire::Forged {
        kind: tcpreset::wire::Kind::Probe,
        src: CLIENT.parse().unwrap(),
        dst: SERVER.parse().unwrap(),
        src_port: 10_000 + i,
        dst_port: 9,
        seq: 1000 * u32::from(i),
        ack: None,
    });
}

#[test]
fn the_rate_cap_holds_under_a_flood() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("flood");
    lab.write_config("rst_rate = 50\n");
    lab.start_daemon(&[]);
    let out = lab.tcpreset(&["ids", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "60"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let flood = scratch(&lab, "flood.pcap");
    syn_flood(&flood, 2000);
    let watch = RstWatch::start(&lab);
    let started = std::time::Instant::now();
    let replay = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("sen"),
            "tcpreplay",
            "-q",
            "--topspeed",
            "-i",
            "eth1",
        ])
        .arg(&flood)
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", stderr(&replay));
    std::thread::sleep(Duration::from_millis(500));
    let sent = watch.stop().len();
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = 50.0 + 50.0 * elapsed;
    assert!(
        sent >= 40,
        "the cap lets the first second's worth through: {sent}"
    );
    assert!(
        (sent as f64) <= allowed + 5.0,
        "{sent} RSTs in {elapsed:.2} s with rst_rate = 50"
    );
    let s = stats(&lab);
    assert!(s["caps"]["rate_limited"].as_u64().unwrap() > 3000, "{s:#}");
    assert!(lab.daemon_log().contains("RST rate cap reached"));
}

#[test]
fn show_stats_metrics_json_logs_and_a_clean_stop() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("observe");
    let metrics = scratch(&lab, "tcpreset.prom");
    lab.write_config(&format!("metrics_file = \"{}\"\n", metrics.display()));
    lab.start_daemon(&["--log-json"]);
    let report = lab.trial("cli", 7003, "chat", &rule_line(&lab, CLIENT, "60"));
    assert_eq!(report["killed_both"], true, "{report:#}");

    let out = lab.tcpreset(&["show", "ids", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let resets = shown[0]["resets"].as_array().unwrap();
    let ends: Vec<&str> = resets.iter().map(|r| r["end"].as_str().unwrap()).collect();
    assert!(
        ends.iter().any(|e| e.starts_with("10.77.0.1:")),
        "{shown:#}"
    );
    assert!(ends.contains(&"10.77.0.2:7003"), "both sides: {shown:#}");
    let out = lab.tcpreset(&["show", "-h", CLIENT]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("10.77.0.2:7003"));

    let s = stats(&lab);
    assert_eq!(s["rules_active"], 1);
    assert!(s["connection_ends_reset"].as_u64().unwrap() >= 2, "{s:#}");
    let eth1 = &s["interfaces"][0];
    assert_eq!(eth1["iface"], "eth1");
    assert!(eth1["pcap_received"].as_u64().is_some());
    let out = lab.tcpreset(&["stats"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("DROPPED"));

    // The metrics file is written at start and every 10 s.
    let text = std::fs::read_to_string(&metrics).expect("metrics file written");
    assert!(
        text.contains("# TYPE tcpreset_rsts_sent_total counter"),
        "{text}"
    );

    // Every log line is JSON, and the audit line of the rule carries its fields.
    let log = lab.daemon_log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["fields"]["event"] == "rule added" && l["fields"]["engid"] == "ids"));
    assert!(lines
        .iter()
        .any(|l| l["fields"]["message"] == "connection reset"));

    // SIGTERM: the daemon exits 0, removes its socket and keeps the rule on disk.
    lab.signal_daemon(Signal::SIGTERM);
    let status = lab
        .wait_daemon(Duration::from_secs(5))
        .expect("tcpresetd stops on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(!lab.socket.exists(), "socket removed on SIGTERM");
    let saved = std::fs::read_to_string(scratch(&lab, "state").join("rules.json")).unwrap();
    assert!(saved.contains("\"engid\": \"ids\""), "{saved}");
}
