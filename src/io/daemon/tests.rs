//! The daemon with a sensor that captures nothing: a journal sync that fails undoes exactly the
//! changes it was to make durable, refuses them, and the next start agrees with what was said.
use super::Daemon;
use crate::config::Config;
use crate::interfaces::{IfaceError, Links};
use crate::io::capture::{CaptureError, CaptureOptions, CaptureStats};
use crate::io::inject::InjectError;
use crate::io::rules_file::RulesFile;
use crate::io::sensor::{RunningCapture, Sensor};
use crate::proto::{parse_request, ErrorKind, Response};
use crate::rules::Matcher;
use crate::time::WallClock;
use std::sync::Arc;

struct Quiet;

struct Nothing(CaptureStats);

impl RunningCapture for Nothing {
    fn update(&self, _: Arc<Matcher>) {}
    fn stats(&self) -> &CaptureStats {
        &self.0
    }
    fn is_running(&self) -> bool {
        true
    }
}

impl Sensor for Quiet {
    fn links(&self) -> Result<Links, IfaceError> {
        let link = crate::interfaces::up_link;
        Ok([
            ("eth0".to_owned(), link(2, &["10.77.0.254"])),
            ("eth1".to_owned(), link(3, &[])),
        ]
        .into_iter()
        .collect())
    }
    fn prepare_reset(&self, _: &str) -> Result<(), InjectError> {
        Ok(())
    }
    fn open_capture(
        &self,
        _: &str,
        _: Arc<Matcher>,
        _: CaptureOptions,
    ) -> Result<Box<dyn RunningCapture>, CaptureError> {
        Ok(Box::new(Nothing(CaptureStats::default())))
    }
}

fn start(dir: &std::path::Path) -> Arc<Daemon> {
    let config = Config::parse("test.toml", "track = []\n").unwrap();
    Daemon::start(
        &config,
        Arc::new(Quiet),
        Arc::new(WallClock),
        Some(RulesFile::new(dir)),
    )
    .expect("starts")
}

fn ask(d: &Daemon, body: &str) -> Response {
    d.handle(
        parse_request(&format!("{{\"v\":1,{body}}}")).unwrap(),
        d.now(),
    )
}

fn add(d: &Daemon, host: &str, seconds: u64) -> Response {
    ask(
        d,
        &format!(
            r#""op":"add","engid":"ids","sniff_if":"eth1","reset_if":"eth0","host":"{host}","seconds":"{seconds}""#
        ),
    )
}

/// (host, seconds left rounded) of each rule, in key order.
fn rules(d: &Daemon) -> Vec<(String, u64)> {
    let Response::Rules { rules } = ask(d, r#""op":"list""#) else {
        panic!("no list")
    };
    rules
        .iter()
        .map(|r| {
            (
                r.host.clone(),
                (r.seconds_left / 100.0).round() as u64 * 100,
            )
        })
        .collect()
}

#[test]
fn a_failed_sync_undoes_and_refuses_its_changes_and_a_restart_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    assert!(matches!(add(&d, "10.9.0.1", 600), Response::Added { .. }));
    assert!(matches!(add(&d, "10.9.0.2", 600), Response::Added { .. }));
    let before = rules(&d);
    assert_eq!(before.len(), 2);
    let changes = [
        r#""op":"add","engid":"ids","sniff_if":"eth1","reset_if":"eth0","host":"10.9.0.3","seconds":"600""#,
        r#""op":"add","engid":"ids","sniff_if":"eth1","reset_if":"eth0","host":"10.9.0.1","seconds":"3600""#,
        r#""op":"cancel","engid":"ids","host":"10.9.0.2""#,
        r#""op":"flush""#,
    ];
    for change in changes {
        d.journal.as_ref().unwrap().fail_next_sync();
        let answer = ask(&d, change);
        let Response::Error { kind, message } = &answer else {
            panic!("a failed sync acknowledged {change}: {answer:?}")
        };
        assert_eq!(*kind, ErrorKind::Unavailable, "{change}");
        assert!(message.contains("the change was not made"), "{message}");
        assert_eq!(rules(&d), before, "{change} was not undone");
    }
    // The disk works again: the next change is made (after a snapshot replaced the journal).
    let answer = ask(&d, changes[2]);
    assert!(matches!(answer, Response::Cancelled { .. }), "{answer:?}");
    let stats = d.stats(d.now()).persistence;
    assert_eq!((stats.failures, stats.error), (4, None));
    // What a restart reads is what was acknowledged: 10.9.0.1 with its 600 s, nothing else.
    let again = start(dir.path());
    assert_eq!(rules(&again), [("10.9.0.1".to_owned(), 600)]);
}
