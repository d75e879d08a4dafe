//! Without root: which interfaces the daemon tracks (captures without a rule) on a fake sensor:
//! the automatic sniff ports from start, following the interfaces as they change, interfaces a
//! rule named kept and restored after a restart, and the note on a rule whose interface was
//! captured too briefly.
mod fake;

use fake::{ask, line, FakeSensor, Server};
use std::time::Duration;
use tcpreset::interfaces::Link;
use tcpreset::proto::{Response, StatsView};

fn add(sniff_if: &str, host: &str) -> String {
    line(&format!(
        r#""op":"add","engid":"ids","sniff_if":"{sniff_if}","reset_if":"eth0","host":"{host}","seconds":"600""#
    ))
}

async fn stats(c: &mut fake::Conn) -> StatsView {
    match ask(c, &line(r#""op":"stats""#)).await {
        Response::Stats { stats } => stats,
        other => panic!("no stats: {other:?}"),
    }
}

fn tracked_since(answer: &Response) -> Option<f64> {
    match answer {
        Response::Added {
            tracked_since_unix, ..
        } => *tracked_since_unix,
        other => panic!("not added: {other:?}"),
    }
}

#[tokio::test]
async fn auto_tracks_the_sniff_ports_from_start_and_follows_them() {
    let server = Server::start("track = \"auto\"\n", FakeSensor::lab()).await;
    let sensor = &server.sensor;
    // eth1 and eth3 have no address; eth0 has one, eth2 is down, lo is loopback.
    assert_eq!(sensor.opened(), ["eth1", "eth3"]);
    let mut c = server.connect().await;
    let s = stats(&mut c).await;
    let tracked: Vec<(&str, bool)> = s
        .interfaces
        .iter()
        .map(|i| (i.iface.as_str(), i.tracked))
        .collect();
    assert_eq!(tracked, [("eth1", true), ("eth3", true)]);
    assert!(s.interfaces.iter().all(|i| i.since_unix > 1.0e9), "{s:?}");

    // eth2 comes up, eth3 gets an address, a new port eth5 appears.
    sensor.set_link(
        "eth2",
        Some(Link {
            up: true,
            running: true,
            ..sensor.link("eth2")
        }),
    );
    let eth3 = Link {
        addrs: vec!["10.9.0.3".parse().unwrap()],
        ..sensor.link("eth3")
    };
    sensor.set_link("eth3", Some(eth3));
    sensor.set_link(
        "eth5",
        Some(Link {
            ifindex: 9,
            ..sensor.link("eth1")
        }),
    );
    server.daemon.watch_interfaces(server.daemon.now());
    assert_eq!(sensor.opened(), ["eth1", "eth3", "eth2", "eth5"]);
    assert_eq!(sensor.closed(), ["eth3"]);

    // A capture a live rule needs is never stopped, even once tracking no longer wants it.
    assert!(matches!(
        ask(&mut c, &add("eth1", "10.77.0.1")).await,
        Response::Added { .. }
    ));
    let eth1 = Link {
        addrs: vec!["10.9.0.1".parse().unwrap()],
        ..sensor.link("eth1")
    };
    sensor.set_link("eth1", Some(eth1));
    sensor.set_link("eth5", None);
    server.daemon.watch_interfaces(server.daemon.now());
    assert_eq!(sensor.closed(), ["eth3", "eth5"]);
    let s = stats(&mut c).await;
    let eth1 = s.interfaces.iter().find(|i| i.iface == "eth1").unwrap();
    assert!(eth1.tracked, "named by a rule, so kept tracked: {eth1:?}");
    server.stop(c).await;
}

#[tokio::test]
async fn a_sniff_port_that_cannot_be_captured_is_tried_again_only_once_it_changes() {
    let sensor = FakeSensor::lab();
    sensor.fail_open("eth3");
    let server = Server::start("track = \"auto\"\n", sensor.clone()).await;
    assert_eq!(sensor.opened(), ["eth1"]);
    server.daemon.watch_interfaces(server.daemon.now());
    server.daemon.watch_interfaces(server.daemon.now());
    assert_eq!(sensor.tried(), ["eth1", "eth3"], "not every half second");
    sensor.set_link(
        "eth3",
        Some(Link {
            ifindex: 11,
            ..sensor.link("eth3")
        }),
    );
    server.daemon.watch_interfaces(server.daemon.now());
    assert_eq!(
        sensor.tried(),
        ["eth1", "eth3", "eth3"],
        "recreated: tried again"
    );
    let c = server.connect().await;
    server.stop(c).await;
}

#[tokio::test]
async fn an_interface_a_rule_named_stays_tracked_and_comes_back_after_a_restart() {
    let config = "track = [\"eth3\"]\n";
    let server = Server::start(config, FakeSensor::lab()).await;
    assert_eq!(server.sensor.opened(), ["eth3"]);
    let mut c = server.connect().await;
    ask(&mut c, &add("eth1", "10.77.0.1")).await;
    let flushed = ask(&mut c, &line(r#""op":"flush""#)).await;
    assert!(
        matches!(flushed, Response::Flushed { count: 1 }),
        "{flushed:?}"
    );
    assert!(server.sensor.closed().is_empty(), "eth1 stays tracked");
    let saved = std::fs::read_to_string(server.state_dir().join("tracked.json")).unwrap();
    assert_eq!(saved.trim(), r#"["eth1"]"#);
    let dir = server.stop_keeping_files(c).await;

    let sensor = FakeSensor::lab();
    let server = Server::start_in(dir, config, sensor.clone()).await;
    assert_eq!(sensor.opened(), ["eth3", "eth1"], "tracked again at once");
    let c = server.connect().await;
    server.stop(c).await;

    // `track = []` turns tracking off: a capture lives only as long as its rules.
    let server = Server::start("track = []\n", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    ask(&mut c, &add("eth1", "10.77.0.1")).await;
    ask(&mut c, &line(r#""op":"flush""#)).await;
    assert_eq!(server.sensor.closed(), ["eth1"]);
    server.stop(c).await;
}

#[tokio::test(start_paused = true)]
async fn a_rule_on_a_briefly_captured_interface_says_since_when() {
    let server = Server::start(
        "track = \"auto\"\nflow_idle_seconds = 60\n",
        FakeSensor::lab(),
    )
    .await;
    let mut c = server.connect().await;
    let since = tracked_since(&ask(&mut c, &add("eth1", "10.77.0.1")).await)
        .expect("captured for less than flow_idle_seconds");
    let started = server.daemon.now().as_secs_f64();
    assert!((started - since).abs() < 1.0, "{since} vs {started}");
    drop(c);
    tokio::time::advance(Duration::from_secs(61)).await;
    // A new connection: the server closes one idle for that long.
    let mut c = server.connect().await;
    assert_eq!(
        tracked_since(&ask(&mut c, &add("eth1", "10.77.0.2")).await),
        None,
        "tracked for longer than flow_idle_seconds: every open connection is known"
    );
    server.stop(c).await;
}
