//! Issue 9's live tests of containment as deployed: with the shipped configuration and no
//! `--track`, the daemon tracks the sniff port from its start, so an idle connection set up
//! before any rule dies at once; an interface a rule named is tracked again right after a
//! restart; a rule on an interface captured only just now says so on its success line.
mod lab;

use lab::{require_root, Lab, CLIENT};
use nix::sys::signal::Signal;
use std::time::Duration;

const SHIPPED: &str = include_str!("../config/tcpresetd.toml");

fn rule(lab: &Lab, engid: &str) -> Vec<String> {
    lab.tcpreset_argv(&[engid, "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "60"])
}

/// Whether the daemon captures `iface` as tracked (not only for a rule), from `stats --json`.
fn tracked(lab: &Lab, iface: &str) -> bool {
    lab.stats()["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["iface"] == iface && i["tracked"] == true)
}

#[test]
fn the_shipped_configuration_kills_an_idle_connection_set_up_before_any_rule() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("ctidle");
    lab.write_config(SHIPPED);
    lab.start_daemon(&[]);
    // eth1 has no address of its own (eth0 has): tracked from start, eth0 not.
    assert_eq!(lab.capturing(), ["eth1"], "{}", lab.daemon_log());
    assert!(tracked(&lab, "eth1"));
    let report = lab.trial("cli", 9101, "idle", &rule(&lab, "c2"));
    lab.assert_killed(&report, "idle, default configuration: ");
}

#[test]
fn an_interface_a_rule_named_is_tracked_again_at_once_after_a_restart() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("ctkeep");
    // Only eth0 is listed: eth1 is tracked because a rule names it, not by the configuration.
    lab.write_config("track = [\"eth0\"]\n");
    lab.start_daemon(&[]);
    assert!(!lab.capturing().contains(&"eth1".to_owned()));
    let out = lab.tcpreset(&["ids", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "60"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lab.tcpreset(&["flush"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        tracked(&lab, "eth1"),
        "kept after its rules end: {}",
        lab.stats()
    );

    lab.signal_daemon(Signal::SIGKILL);
    lab.start_daemon(&[]);
    assert!(
        tracked(&lab, "eth1"),
        "tracked at start: {}",
        lab.daemon_log()
    );
    // A connection set up after the restart and idle before the rule dies at once.
    let report = lab.trial("cli", 9102, "idle", &rule(&lab, "c2"));
    lab.assert_killed(&report, "idle after a restart: ");
}

#[test]
fn a_rule_on_an_interface_captured_just_now_says_since_when() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("ctnote");
    lab.write_config("track = []\n");
    lab.start_daemon(&[]);
    let out = lab.tcpreset(&["ids", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "60"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with("reset added: ")
            && line.contains("; note: eth1 was captured only from ")
            && line
                .trim_end()
                .ends_with("connections silent since before then die when they next send"),
        "{line}"
    );
    let since = lab.stats()["interfaces"][0]["since_unix"].as_f64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - since) < 10.0, "captured since {since}, now {now}");

    // Tracked for longer than flow_idle_seconds: the table knows every open connection.
    lab.signal_daemon(Signal::SIGTERM);
    let _ = lab.wait_daemon(Duration::from_secs(5));
    lab.write_config("flow_idle_seconds = 1\n");
    lab.start_daemon(&[]);
    std::thread::sleep(Duration::from_millis(1500));
    let out = lab.tcpreset(&["ids", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "60"]);
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !line.contains("note:"), "{line}");
}

#[test]
fn with_log_format_ecs_each_end_reset_is_an_ecs_document_with_its_community_id() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("ctecs");
    lab.write_config(&format!("{SHIPPED}\nlog_format = \"ecs\"\n"));
    lab.start_daemon(&[]);
    let report = lab.trial("cli", 9104, "chat", &rule(&lab, "c2"));
    lab.assert_killed(&report, "");
    std::thread::sleep(Duration::from_millis(200));
    let log = lab.daemon_log();
    let docs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let resets: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| d["event"]["action"] == "tcp-reset")
        .collect();
    assert_eq!(resets.len(), 2, "one per end:\n{log}");
    let endpoint = |d: &serde_json::Value, side: &str| {
        let ip: std::net::IpAddr = d[side]["ip"].as_str().unwrap().parse().unwrap();
        (ip, d[side]["port"].as_u64().unwrap() as u16)
    };
    for d in &resets {
        assert_eq!(d["rule"]["id"], "c2", "{d}");
        assert_eq!(
            d["event"]["type"],
            serde_json::json!(["denied", "end"]),
            "{d}"
        );
        assert_eq!(d["observer"]["ingress"]["interface"]["name"], "eth1", "{d}");
        assert_eq!(d["observer"]["egress"]["interface"]["name"], "eth0", "{d}");
        let id = tcpreset::community_id::tcp_v1(endpoint(d, "source"), endpoint(d, "destination"));
        assert_eq!(d["network"]["community_id"].as_str(), id.as_deref(), "{d}");
    }
    assert_eq!(
        resets[0]["network"]["community_id"],
        resets[1]["network"]["community_id"]
    );
    let ports = [
        endpoint(resets[0], "destination").1,
        endpoint(resets[1], "destination").1,
    ];
    assert!(ports.contains(&9104), "{ports:?}");
}
