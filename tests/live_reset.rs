//! Issue 2's live tests: the real daemon and client in a namespace lab kill real connections.
mod lab;

use lab::{require_root, Lab, CLIENT, SERVER};
use serde_json::Value;

fn killed(report: &Value) -> bool {
    report["killed_both"] == true
}

fn rule(lab: &Lab, engid: &str, host: &str, port: Option<u16>, secs: u32) -> Vec<String> {
    let mut args = vec![
        engid.to_string(),
        "-i".into(),
        "eth1".into(),
        "-o".into(),
        "eth0".into(),
        "-h".into(),
        host.into(),
    ];
    if let Some(p) = port {
        args.extend(["-p".into(), p.to_string()]);
    }
    args.extend(["-d".into(), secs.to_string()]);
    lab.tcpreset_argv(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn chat_connection_is_reset_on_both_ends() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("chat");
    lab.start_daemon(&[]);
    let report = lab.trial("cli", 5001, "chat", &rule(&lab, "ids-1", CLIENT, None, 60));
    assert!(killed(&report), "{report:#}\n{}", lab.daemon_log());
    assert_eq!(report["client"]["error"], "ECONNRESET", "{report:#}");
    assert_eq!(report["server"]["error"], "ECONNRESET", "{report:#}");
    let rules = lab.rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["engid"], "ids-1");
    assert!(
        rules[0]["segments_matched"].as_u64().unwrap() > 0,
        "{rules:?}"
    );
    assert!(rules[0]["rsts_sent"].as_u64().unwrap() >= 2, "{rules:?}");
}

#[test]
fn bulk_transfer_is_reset_on_both_ends() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("bulk");
    lab.start_daemon(&[]);
    let report = lab.trial(
        "cli",
        5002,
        "bulk",
        &rule(&lab, "ids-2", SERVER, Some(5002), 60),
    );
    assert!(killed(&report), "{report:#}\n{}", lab.daemon_log());
}

#[test]
fn port_rule_spares_the_hosts_other_ports_and_other_hosts() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("port");
    lab.start_daemon(&[]);
    let same_host_other_port = lab.hold("cli", 6000, "chat", 1500);
    let other_host = lab.hold("oth", 6001, "chat", 1500);
    let report = lab.trial(
        "cli",
        5003,
        "chat",
        &rule(&lab, "ids-3", CLIENT, Some(5003), 60),
    );
    assert!(killed(&report), "{report:#}\n{}", lab.daemon_log());
    let spared = same_host_other_port.report();
    assert_eq!(spared["survived"], true, "{spared:#}");
    let spared = other_host.report();
    assert_eq!(spared["survived"], true, "{spared:#}");
}

#[test]
fn other_hosts_survive_a_host_rule() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("other");
    lab.start_daemon(&[]);
    let bystander = lab.hold("oth", 6002, "chat", 1500);
    let report = lab.trial("cli", 5004, "chat", &rule(&lab, "ids-4", CLIENT, None, 60));
    assert!(killed(&report), "{report:#}");
    let spared = bystander.report();
    assert_eq!(spared["survived"], true, "{spared:#}\n{}", lab.daemon_log());
}

#[test]
fn new_connections_fail_while_the_rule_lives_and_work_after_expiry() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("expiry");
    lab.start_daemon(&[]);
    let out = lab.tcpreset(&["ids-5", "-i", "eth1", "-o", "eth0", "-h", CLIENT, "-d", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attempt = lab.connect("cli", 5005);
    lab.assert_established(&attempt, false);
    std::thread::sleep(std::time::Duration::from_millis(2300));
    let rules = lab.rules();
    assert!(
        rules.is_empty(),
        "the rule should have expired: {rules:?}\n{}",
        lab.daemon_log()
    );
    let attempt = lab.connect("cli", 5005);
    lab.assert_established(&attempt, true);
}

#[test]
fn idle_connection_dies_without_any_traffic() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("idle");
    lab.start_daemon(&["--track", "eth1"]);
    let report = lab.trial("cli", 5006, "idle", &rule(&lab, "c2", CLIENT, None, 60));
    assert!(killed(&report), "{report:#}\n{}", lab.daemon_log());
}
