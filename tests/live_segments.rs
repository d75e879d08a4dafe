//! Issue 3's live test of several sniff interfaces: rules name different ones, each capture
//! acts only on its own rules, and captures open and close as rules come and go.
//!
//! The lab is built `--second-segment`: the sensor sniffs hub br0 on eth1 (reset via eth0) and
//! hub br1 on eth2 (reset via eth3, 10.78.0.254).
mod lab;

use lab::{require_root, Lab, Route, CLIENT, CLIENT2, OTHER2, SERVER2};

/// From a host of segment 2 to its server.
fn segment2(client: &'static str, port: u16) -> Route<'static> {
    Route {
        client,
        server: "sv2",
        addr: SERVER2,
        port,
    }
}

fn add(lab: &Lab, engid: &str, sniff: &str, reset: &str, host: &str) {
    let out = lab.tcpreset(&[engid, "-i", sniff, "-o", reset, "-h", host, "-d", "60"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_sniff_interfaces_apply_their_own_rules() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up_with("segs", &["--second-segment"]);
    // Tracking off: captures open and close with the rules.
    lab.write_config("track = []\n");
    lab.start_daemon(&[]);
    assert!(lab.capturing().is_empty(), "{}", lab.daemon_log());

    // A segment-2 host named only in a rule for eth1. Its reset interface reaches segment 2,
    // so only the per-interface matching keeps its connection there alive.
    add(&lab, "seg1-only", "eth1", "eth3", OTHER2);
    assert_eq!(lab.capturing(), ["eth1"]);
    let bystander = lab.hold_to(segment2("ot2", 7302), "chat", 1500);

    let rule_a = lab.tcpreset_argv(&[
        "rule-a", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "60",
    ]);
    let report = lab.trial("cli", 7300, "chat", &rule_a);
    lab.assert_killed(&report, "segment 1: ");
    let rule_b = lab.tcpreset_argv(&[
        "rule-b", "-i", "eth2", "-o", "eth3", "-h", CLIENT2, "-d", "60",
    ]);
    let report = lab.trial_to(segment2("cl2", 7301), "chat", &rule_b);
    lab.assert_killed(&report, "segment 2: ");
    assert_eq!(lab.capturing(), ["eth1", "eth2"]);

    let spared = bystander.report();
    assert_eq!(spared["survived"], true, "{spared:#}\n{}", lab.daemon_log());

    let out = lab.tcpreset(&["cancel", "rule-b", "-h", CLIENT2]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lab.capturing(), ["eth1"], "{}", lab.daemon_log());
    let out = lab.tcpreset(&["flush"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lab.capturing().is_empty(), "{}", lab.daemon_log());
}
