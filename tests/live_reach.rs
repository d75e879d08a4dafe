//! Issue 3's live tests: IPv6 chat and idle connections, and a transfer at full speed in both
//! directions at once (scripts/bench-kill.sh -m bulk-both measures it over many trials).
mod lab;

use lab::{require_root, Lab, Route, CLIENT, CLIENT6, SERVER6};

/// From the lab's client to its server's IPv6 address.
fn v6(port: u16) -> Route<'static> {
    Route {
        addr: SERVER6,
        ..Route::to_server("cli", port)
    }
}

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
    let report = lab.trial_to(v6(7101), "chat", &rule(&lab, CLIENT6));
    lab.assert_killed(&report, "");
}

#[test]
fn ipv6_idle_connection_dies_at_once() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("sixidle");
    lab.start_daemon(&["--track", "eth1"]);
    let report = lab.trial_to(v6(7102), "idle", &rule(&lab, CLIENT6));
    lab.assert_killed(&report, "");
}

#[test]
fn bulk_both_ways_at_once_is_reset_on_both_ends() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("both");
    lab.start_daemon(&[]);
    // Both ends' numbers move every microsecond: each RST lands only if no segment slips in
    // ahead of it, so the daemon answers every segment it sees (paced) until both ends are gone.
    let report = lab.trial("cli", 7103, "bulk-both", &rule(&lab, CLIENT));
    lab.assert_killed(&report, "a full-speed two-way transfer survived: ");
}
