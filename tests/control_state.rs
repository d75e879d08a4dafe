//! The rules across restarts, in-process: a change that cannot be saved is refused (and the
//! stats say so), a state directory that cannot be used stops the start, and saved rules come
//! back only through the checks of a new rule.
mod fake;

use fake::{ask, line, FakeSensor, Server};
use std::sync::Arc;
use tcpreset::config::Config;
use tcpreset::io::daemon::Daemon;
use tcpreset::io::rules_file::RulesFile;
use tcpreset::proto::{ErrorKind, Response, RuleView, StatsView};
use tcpreset::time::WallClock;

fn add(engid: &str, host: &str) -> String {
    line(&format!(
        r#""op":"add","engid":"{engid}","sniff_if":"eth1","reset_if":"eth0","host":"{host}","seconds":"600""#
    ))
}

async fn list(c: &mut fake::Conn) -> Vec<String> {
    let Response::Rules { rules } = ask(c, &line(r#""op":"list""#)).await else {
        panic!("no list")
    };
    let mut rules: Vec<String> = rules
        .iter()
        .map(|r: &RuleView| format!("{} {}", r.engid, r.host))
        .collect();
    rules.sort();
    rules
}

async fn stats(c: &mut fake::Conn) -> StatsView {
    match ask(c, &line(r#""op":"stats""#)).await {
        Response::Stats { stats } => stats,
        other => panic!("no stats: {other:?}"),
    }
}

#[tokio::test]
async fn a_change_that_cannot_be_saved_is_refused_and_nothing_comes_back_wrong() {
    let server = Server::start("", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    ask(&mut c, &add("kept", "10.77.0.1")).await;
    ask(&mut c, &add("cancel-me", "10.77.0.2")).await;
    // Something takes the place of the journal: no change can be written, nor a new journal.
    let file = server.state_dir().join("rules.journal");
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    for request in [
        add("new", "10.77.0.3"),
        add("kept", "10.77.0.1"),
        line(r#""op":"cancel","engid":"cancel-me","host":"10.77.0.2""#),
        line(r#""op":"flush""#),
    ] {
        let Response::Error { kind, message } = ask(&mut c, &request).await else {
            panic!("{request} was not refused")
        };
        assert_eq!(kind, ErrorKind::Unavailable);
        let dir = server.state_dir().display().to_string();
        assert!(
            message.contains("the change was not made") && message.contains(&dir),
            "{message}"
        );
    }
    assert_eq!(
        list(&mut c).await,
        ["cancel-me 10.77.0.2", "kept 10.77.0.1"]
    );
    let p = stats(&mut c).await.persistence;
    assert!(p.error.is_some() && p.failing_since_unix.is_some(), "{p:?}");
    assert_eq!(p.failures, 4);
    // Fixed: changes go through again, the stats say so, and a restart brings back exactly
    // what was acknowledged.
    std::fs::remove_dir(&file).unwrap();
    let answer = ask(
        &mut c,
        &line(r#""op":"cancel","engid":"cancel-me","host":"10.77.0.2""#),
    )
    .await;
    assert!(matches!(answer, Response::Cancelled { .. }), "{answer:?}");
    let p = stats(&mut c).await.persistence;
    assert_eq!(p.error, None);
    let dir = server.stop_keeping_files(c).await;
    let server = Server::start_in(dir, "", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    assert_eq!(list(&mut c).await, ["kept 10.77.0.1"]);
    server.stop(c).await;
}

#[test]
fn the_daemon_refuses_to_start_with_a_state_directory_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules.json")).unwrap();
    let config = Config::default();
    let started = Daemon::start(
        &config,
        FakeSensor::lab(),
        Arc::new(WallClock),
        Some(RulesFile::new(dir.path())),
    );
    let e = started.err().expect("refused to start").to_string();
    assert!(
        e.contains(&format!(
            "state directory {} is unusable",
            dir.path().display()
        )) && e.contains("refuses to run"),
        "{e}"
    );
}

#[tokio::test]
async fn saved_rules_come_back_only_through_the_checks_of_a_new_rule() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let now = tcpreset::time::Instant::now().as_micros();
    let created = now - 1_000_000;
    let expires = now + 600_000_000;
    let rule = |engid: &str, host: &str, sniff: &str, expires: u64| {
        format!(
            r#"{{"engid":"{engid}","host":"{host}","port":null,"sniff_if":"{sniff}","reset_if":"eth0","created":{created},"expires":{expires}}}"#
        )
    };
    let rules = [
        rule("good", "10.77.0.1", "eth1", expires),
        rule("mapped", "::ffff:10.77.0.2", "eth1", expires),
        rule("own", "10.77.0.254", "eth1", expires),
        rule("protected", "192.0.2.9", "eth1", expires),
        rule("unknown-if", "10.77.0.3", "eth9", expires),
        rule("forever", "10.77.0.4", "eth1", u64::MAX),
        rule("bad engid", "10.77.0.5", "eth1", expires),
    ];
    let text = format!(r#"{{"version":1,"rules":[{}]}}"#, rules.join(","));
    std::fs::write(state.join("rules.json"), text).unwrap();
    let server = Server::start_in(dir, "protected = [\"192.0.2.0/24\"]\n", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    assert_eq!(list(&mut c).await, ["good 10.77.0.1", "mapped 10.77.0.2"]);
    let saved = std::fs::read_to_string(server.state_dir().join("rules.json")).unwrap();
    assert!(
        !saved.contains("forever") && !saved.contains("unknown-if"),
        "{saved}"
    );
    server.stop(c).await;
}
