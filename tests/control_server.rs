//! The control server in-process, without root: `control::serve` on a Unix socket in a temporary
//! directory, the daemon on a fake [`Sensor`] (interfaces as the test sets them, captures that
//! only record their rule snapshots), requests as raw protocol lines.
mod fake;

use fake::{ask, line, FakeSensor, Server};
use std::time::Duration;
use tcpreset::proto::{ErrorKind, Response, StatsView};

/// `{"v":1,"op":"add",...}` for engid `ids` on eth1/eth0.
fn add(host: &str, seconds: u64) -> String {
    line(&format!(
        r#""op":"add","engid":"ids","sniff_if":"eth1","reset_if":"eth0","host":"{host}","seconds":"{seconds}""#
    ))
}

async fn stats(c: &mut fake::Conn) -> StatsView {
    match ask(c, &line(r#""op":"stats""#)).await {
        Response::Stats { stats } => stats,
        other => panic!("no stats: {other:?}"),
    }
}

fn refused(answer: &Response) -> (ErrorKind, String) {
    match answer {
        Response::Error { kind, message } => (*kind, message.clone()),
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn add_refresh_list_show_cancel_flush_and_stats() {
    let server = Server::start("", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    let Response::Added {
        rule, refreshed, ..
    } = ask(&mut c, &add("10.77.0.1", 60)).await
    else {
        panic!("not added")
    };
    assert!(!refreshed);
    assert_eq!(
        (rule.host.as_str(), rule.sniff_if.as_str()),
        ("10.77.0.1", "eth1")
    );
    assert!((59.0..=60.0).contains(&rule.seconds_left), "{rule:?}");
    // The capture on eth1 opened once and holds the rule's host.
    assert_eq!(server.sensor.opened(), ["eth1"]);
    assert_eq!(server.sensor.rule_hosts("eth1"), ["10.77.0.1"]);

    let Response::Added {
        rule, refreshed, ..
    } = ask(&mut c, &add("10.77.0.1", 120)).await
    else {
        panic!("not refreshed")
    };
    assert!(refreshed && rule.seconds_left > 119.0, "{rule:?}");
    ask(&mut c, &add("10.77.0.3", 60)).await;
    let Response::Rules { rules } = ask(&mut c, &line(r#""op":"list""#)).await else {
        panic!("no list")
    };
    let hosts: Vec<&str> = rules.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(hosts, ["10.77.0.1", "10.77.0.3"], "one rule per key");

    let show = line(r#""op":"show","engid":"ids","host":"10.77.0.3""#);
    let Response::Shown { rules } = ask(&mut c, &show).await else {
        panic!("nothing shown")
    };
    assert_eq!(rules.len(), 1);
    assert!(rules[0].resets.is_empty() && rules[0].ends_reset == 0);
    let show = line(r#""op":"show","engid":"other""#);
    assert_eq!(refused(&ask(&mut c, &show).await).0, ErrorKind::NotFound);

    let stats = stats(&mut c).await;
    assert_eq!(stats.rules_active, 2);
    let ifaces: Vec<&str> = stats.interfaces.iter().map(|i| i.iface.as_str()).collect();
    assert_eq!(ifaces, ["eth1"]);
    let reset: Vec<(&str, &str)> = stats
        .reset_interfaces
        .iter()
        .map(|r| (r.iface.as_str(), r.state.as_str()))
        .collect();
    assert_eq!(reset, [("eth0", "ready")]);

    let cancel = line(r#""op":"cancel","engid":"ids","host":"10.77.0.1""#);
    let Response::Cancelled { rule } = ask(&mut c, &cancel).await else {
        panic!("not cancelled")
    };
    assert_eq!(rule.host, "10.77.0.1");
    let (kind, message) = refused(&ask(&mut c, &cancel).await);
    assert_eq!(kind, ErrorKind::NotFound, "{message}");
    assert_eq!(server.sensor.rule_hosts("eth1"), ["10.77.0.3"]);
    assert_eq!(
        ask(&mut c, &line(r#""op":"flush""#)).await,
        Response::Flushed { count: 1 }
    );
    // No rule needs the capture any more: it is closed.
    assert_eq!(server.sensor.closed(), ["eth1"]);
    server.stop(c).await;
}

#[tokio::test]
async fn max_rules_and_max_seconds_refuse_and_are_counted() {
    let server = Server::start("max_rules = 2\nmax_seconds = 100\n", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    let (kind, message) = refused(&ask(&mut c, &add("10.77.0.1", 101)).await);
    assert_eq!(kind, ErrorKind::Limit);
    assert_eq!(
        message,
        "-d 101 is longer than this sensor allows (max_seconds = 100); ask for at most 100 seconds"
    );
    for host in ["10.77.0.1", "10.77.0.2"] {
        assert!(matches!(
            ask(&mut c, &add(host, 100)).await,
            Response::Added { .. }
        ));
    }
    let (kind, message) = refused(&ask(&mut c, &add("10.77.0.3", 10)).await);
    assert_eq!(kind, ErrorKind::Limit);
    assert!(message.starts_with("2 rules are alive, the most this sensor allows (max_rules)"));
    // A refresh adds no rule: it passes.
    let Response::Added { refreshed, .. } = ask(&mut c, &add("10.77.0.2", 50)).await else {
        panic!("refresh refused")
    };
    assert!(refreshed);
    let stats = stats(&mut c).await;
    assert_eq!(
        (stats.caps.refused_max_rules, stats.caps.refused_max_seconds),
        (1, 1)
    );
    server.stop(c).await;
}

#[tokio::test]
async fn protected_hosts_and_the_sensors_own_addresses_are_refused() {
    let server = Server::start("protected = [\"10.9.0.0/16\"]\n", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    for (host, net) in [
        ("10.9.3.4", "10.9.0.0/16"),
        ("10.77.0.254", "10.77.0.254/32"),
        ("fd77::fe", "fd77::fe/128"),
    ] {
        let (kind, message) = refused(&ask(&mut c, &add(host, 60)).await);
        assert_eq!(kind, ErrorKind::Protected, "{host}");
        assert!(
            message.contains(&format!("host {host} is protected ({net}")),
            "{message}"
        );
    }
    let stats = stats(&mut c).await;
    assert_eq!(stats.caps.refused_protected, 3);
    assert!(
        server.sensor.opened().is_empty(),
        "refused before any capture"
    );
    server.stop(c).await;
}

#[tokio::test]
async fn bad_values_and_bad_lines_are_refused_as_bad_requests() {
    let server = Server::start("", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    let field = |name: &str, value: &str| {
        let fields = [
            ("engid", "ids"),
            ("sniff_if", "eth1"),
            ("reset_if", "eth0"),
            ("host", "10.77.0.1"),
            ("seconds", "60"),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!(r#""{k}":"{}""#, if *k == name { value } else { v }))
            .collect();
        line(&format!(r#""op":"add",{}"#, body.join(",")))
    };
    for (request, says) in [
        (field("engid", "a b"), "ENGID 'a b'"),
        (field("engid", "-e"), "ENGID '-e'"),
        (field("host", "0.0.0.0"), "is the unspecified address"),
        (field("host", "ff02::1"), "is a multicast group"),
        (field("host", "255.255.255.255"), "is the broadcast address"),
        (field("sniff_if", "lo"), "interface 'lo' is the loopback"),
        (field("host", "host.example"), "HOST 'host.example'"),
        (field("seconds", "0"), "SECONDS '0'"),
        (field("seconds", "86401"), "SECONDS '86401'"),
        (field("sniff_if", "eth1/x"), "interface name 'eth1/x'"),
        (
            line(r#""op":"cancel","engid":"ids","host":"10.77.0.1","port":"0""#),
            "PORT '0'",
        ),
        (line(r#""op":"explode""#), "malformed request"),
        (
            format!(
                "{},\"prt\":\"443\"}}",
                &field("engid", "ids")[..field("engid", "ids").len() - 1]
            ),
            "unknown field `prt`",
        ),
        (r#"{"v":-1,"op":"list"}"#.to_owned(), "-1 is negative"),
        (r#"{"v":2,"op":"list"}"#.to_owned(), "protocol version 2"),
        ("not json".to_owned(), "request is not JSON"),
        ("x".repeat(17 * 1024), "request longer than"),
    ] {
        let answer = ask(&mut c, &request).await;
        let (kind, message) = refused(&answer);
        assert_eq!(kind, ErrorKind::BadRequest, "{message}");
        assert!(message.contains(says), "{says}: {message}");
    }
    server.stop(c).await;
}

#[tokio::test]
async fn interfaces_are_checked_by_the_daemon_and_capture_failures_reported() {
    let sensor = FakeSensor::lab();
    sensor.fail_open("eth3");
    let server = Server::start("", sensor).await;
    let mut c = server.connect().await;
    let rule = |sniff: &str, reset: &str, host: &str| {
        line(&format!(
            r#""op":"add","engid":"e","sniff_if":"{sniff}","reset_if":"{reset}","host":"{host}","seconds":"60""#
        ))
    };
    for (request, says) in [
        (
            rule("eth9", "eth0", "10.77.0.1"),
            "sniff interface 'eth9' does not exist",
        ),
        (
            rule("eth2", "eth0", "10.77.0.1"),
            "sniff interface 'eth2' is down",
        ),
        (
            rule("eth1", "eth1", "10.77.0.1"),
            "reset interface 'eth1' has no IP address",
        ),
        (
            rule("eth1", "eth0", "10.77.0.255"),
            "HOST 10.77.0.255 is the broadcast address of 10.77.0.0/24 on eth0",
        ),
        (rule("eth1", "eth0", "2001:db8::1"), ""),
    ] {
        let answer = ask(&mut c, &request).await;
        if says.is_empty() {
            assert!(matches!(answer, Response::Added { .. }), "{answer:?}");
            continue;
        }
        let (kind, message) = refused(&answer);
        assert_eq!(kind, ErrorKind::Interface, "{message}");
        assert!(message.contains(says), "{says}: {message}");
    }
    let (kind, message) = refused(&ask(&mut c, &rule("eth3", "eth0", "10.77.0.1")).await);
    assert_eq!(kind, ErrorKind::Unavailable);
    assert!(
        message.contains("pcap_activate on sniff interface 'eth3'"),
        "{message}"
    );
    let stats = stats(&mut c).await;
    assert_eq!((stats.caps.refused_interface, stats.rules_active), (4, 1));
    server.stop(c).await;
}

#[tokio::test(start_paused = true)]
async fn rules_expire_on_time_on_a_paused_clock() {
    let server = Server::start("", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    ask(&mut c, &add("10.77.0.1", 5)).await;
    ask(&mut c, &add("10.77.0.2", 3600)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let Response::Rules { rules } = ask(&mut c, &line(r#""op":"list""#)).await else {
        panic!("no list")
    };
    assert_eq!(rules.len(), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let Response::Rules { rules } = ask(&mut c, &line(r#""op":"list""#)).await else {
        panic!("no list")
    };
    let hosts: Vec<&str> = rules.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(hosts, ["10.77.0.2"], "expired after 5 s");
    assert_eq!(server.sensor.rule_hosts("eth1"), ["10.77.0.2"]);
    // What a restart would read: the expired rule is not there.
    let read = |name: &str| std::fs::read_to_string(server.state_dir().join(name)).ok();
    let journal = read("rules.journal").unwrap_or_default();
    let loaded =
        tcpreset::saved::load(read("rules.json").as_deref(), &journal, server.daemon.now())
            .unwrap();
    let hosts: Vec<String> = loaded
        .rules
        .iter()
        .map(|r| r.spec.key.host.to_string())
        .collect();
    assert_eq!(hosts, ["10.77.0.2"], "{journal}");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    // Idle that long, the connection was closed: a new one.
    let mut c = server.connect().await;
    let Response::Rules { rules } = ask(&mut c, &line(r#""op":"list""#)).await else {
        panic!("no list")
    };
    assert!(rules.is_empty());
    assert_eq!(server.sensor.closed(), ["eth1"]);
    server.stop(c).await;
}

#[tokio::test]
async fn rules_come_back_from_the_rules_file() {
    let server = Server::start("", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    ask(&mut c, &add("10.77.0.1", 600)).await;
    let dir = server.stop_keeping_files(c).await;
    let server = Server::start_in(dir, "", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    let Response::Rules { rules } = ask(&mut c, &line(r#""op":"list""#)).await else {
        panic!("no list")
    };
    assert_eq!(rules.len(), 1);
    assert!(rules[0].seconds_left > 590.0, "{:?}", rules[0]);
    assert_eq!(
        server.sensor.opened(),
        ["eth1"],
        "its capture opened at start"
    );
    server.stop(c).await;
}

#[tokio::test]
async fn peers_not_on_the_allow_list_are_refused_until_a_reload_allows_them() {
    let server = Server::start_open("allowed_users = []\nallowed_groups = []\n").await;
    let list = line(r#""op":"list""#);
    let mut c = server.connect_as_user().await;
    let (kind, message) = refused(&ask(&mut c, &list).await);
    assert_eq!(kind, ErrorKind::Unauthorized);
    let uid = fake::user_uid();
    assert!(
        message.contains(&format!("(uid {uid},")) && message.contains("allowed_users"),
        "{message}"
    );
    let stats = server.daemon.stats(server.daemon.now());
    assert_eq!(stats.caps.refused_unauthorized, 1);
    let mut config = server.config.clone();
    config.allowed_users = vec![uid.to_string()];
    server.daemon.reload(&config);
    let mut c = server.connect_as_user().await;
    assert_eq!(ask(&mut c, &list).await, Response::Rules { rules: vec![] });
    server.stop(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_request_in_flight_and_closes_idle_connections() {
    let sensor = FakeSensor::lab();
    let release = sensor.hold_next_open();
    let mut server = Server::start("", sensor).await;
    let mut idle = server.connect().await;
    let mut busy = server.connect().await;
    let pending = tokio::spawn(async move {
        let answer = ask(&mut busy, &add("10.77.0.1", 60)).await;
        (answer, busy)
    });
    server.sensor.wait_for_held_open().await;
    let stopped = server.begin_stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!stopped.is_finished(), "a request is in flight");
    release.send(()).unwrap();
    let (answer, _busy) = pending.await.unwrap();
    assert!(matches!(answer, Response::Added { .. }), "{answer:?}");
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("serve returns once the request is answered")
        .unwrap();
    assert!(
        fake::closed_by_server(&mut idle).await,
        "idle connection closed"
    );
}

#[tokio::test]
async fn rules_of_a_host_protected_by_a_reload_are_suspended_and_listed_so() {
    let server = Server::start("", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    ask(&mut c, &add("10.77.0.1", 600)).await;
    ask(&mut c, &add("10.77.0.2", 600)).await;
    let mut config = server.config.clone();
    config.protected = vec!["10.77.0.0/31".parse().unwrap()];
    server.daemon.reload(&config);
    // Its capture no longer applies the rule; the peers of a protected host are spared too.
    assert_eq!(server.sensor.rule_hosts("eth1"), ["10.77.0.2"]);
    let Response::Rules { rules } = ask(&mut c, &line(r#""op":"list""#)).await else {
        panic!("no list")
    };
    let suspended = |host: &str| {
        rules
            .iter()
            .find(|r| r.host == host)
            .and_then(|r| r.suspended.clone())
    };
    let why = suspended("10.77.0.1").expect("suspended");
    assert!(why.contains("10.77.0.0/31"), "{why}");
    assert_eq!(suspended("10.77.0.2"), None);
    // No longer protected: it applies again.
    server.daemon.reload(&server.config);
    let mut hosts = server.sensor.rule_hosts("eth1");
    hosts.sort();
    assert_eq!(hosts, ["10.77.0.1", "10.77.0.2"]);
    server.stop(c).await;
}
