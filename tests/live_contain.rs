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
