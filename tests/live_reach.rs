//! Issue 3's live tests: IPv6, both directions at full speed, idle connections.
mod lab;

use lab::{require_root, Lab, CLIENT, CLIENT6, SERVER6};

fn rule(lab: &Lab, host: &str) -> Vec<String> {
    lab.tcpreset_argv(&["ids", "-i", "eth1", "-o", "eth0", "-h", host, "-d", "60"])
}

#[test]
fn ipv6_chat_is_reset_on_both_ends() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("six");
    lab.start_daemon(&[]);
    let report = lab.trial_to("cli", "srv", SERVER6, 7101, "chat", &rule(&lab, CLIENT6));
    assert_eq!(
        report["killed_both"],
        true,
        "{report:#}\n{}",
        lab.daemon_log()
    );
}

#[test]
fn ipv6_idle_connection_dies_at_once() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("sixidle");
    lab.start_daemon(&["--track", "eth1"]);
    let report = lab.trial_to("cli", "srv", SERVER6, 7102, "idle", &rule(&lab, CLIENT6));
    assert_eq!(
        report["killed_both"],
        true,
        "{report:#}\n{}",
        lab.daemon_log()
    );
}

#[test]
fn bulk_both_ways_at_once_is_reset_on_both_ends() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("both");
    lab.start_daemon(&[]);
    // Both ends' numbers move every microsecond, so each RST is a guess that lands only when
    // no segment slips in while it travels; one trial in about twenty outlives its budget of
    // guesses (see BENCHMARKS.md). Two trials must not both fail.
    let mut reports = Vec::new();
    for port in [7103, 7104] {
        let report = lab.trial("cli", port, "bulk-both", &rule(&lab, CLIENT));
        let killed = report["killed_both"] == true;
        reports.push(report);
        if killed {
            return;
        }
        lab.tcpreset(&["flush"]);
    }
    panic!(
        "two full-speed two-way transfers survived: {reports:#?}\n{}",
        lab.daemon_log()
    );
}
