//! Issue 3's live test of tagged sniffed traffic: the sensor's sniff port carries only 802.1Q
//! (or QinQ) frames, and a real connection through the hub still dies on both ends, an idle one
//! (learned by the flow table from tagged frames) too.
//!
//! This kernel has no 802.1Q support, so the lab is built `--tagged` (the sniff port is not on
//! the hub) and `tcpreset-lab mirror` copies the hub's frames onto it with the tags added. The
//! daemon still injects its RSTs untagged through its reset interface, as on a real sensor.
mod lab;

use lab::{require_root, Lab, Mirror, CLIENT};
use serde_json::Value;

/// A connection in `mode` while the mirror copies the hub with `vlans`, cut by a rule on the
/// client: it must die on both ends. The trial's report and the mirror's counters.
fn killed_through_the_mirror(lab: &Lab, vlans: &[u16], port: u16, mode: &str) -> (Value, Value) {
    let mirror = Mirror::start(lab, vlans);
    let rule = lab.tcpreset_argv(&["vlan", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "60"]);
    let report = lab.trial("cli", port, mode, &rule);
    let copied = mirror.stop();
    assert_eq!(
        report["killed_both"],
        true,
        "{report:#}\n{copied:#}\n{}",
        lab.daemon_log()
    );
    (report, copied)
}

fn tagged_connection_dies(tag: &str, vlans: &[u16], port: u16) {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up_with(tag, &["--tagged"]);
    lab.start_daemon(&[]);
    let (report, copied) = killed_through_the_mirror(&lab, vlans, port, "chat");
    assert_eq!(report["client"]["error"], "ECONNRESET", "{report:#}");
    assert_eq!(report["server"]["error"], "ECONNRESET", "{report:#}");
    assert!(copied["tcp_frames"].as_u64().unwrap() > 0, "{copied:#}");
    assert_eq!(copied["send_errors"], 0, "{copied:#}");
    let stats = lab.stats();
    let eth1 = &stats["interfaces"][0];
    assert_eq!(eth1["iface"], "eth1", "{stats:#}");
    assert!(eth1["matched"].as_u64().unwrap() > 0, "{stats:#}");

    // With the mirror gone the sniff port is silent: the rule still lives, and a new connection
    // of its host now survives, so the kill above came from the tagged copies alone.
    assert_eq!(lab.rules().len(), 1);
    let attempt = lab.connect("cli", port + 1);
    lab.assert_established(&attempt, true);
}

#[test]
fn dot1q_tagged_connection_is_reset_on_both_ends() {
    tagged_connection_dies("dot1q", &[100], 7201);
}

#[test]
fn qinq_tagged_connection_is_reset_on_both_ends() {
    tagged_connection_dies("qinq", &[100, 200], 7203);
}

#[test]
fn qinq_tagged_idle_connection_dies_at_once() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up_with("qinqidle", &["--tagged"]);
    lab.start_daemon(&["--track", "eth1"]);
    killed_through_the_mirror(&lab, &[100, 200], 7205, "idle");
}
