//! Hostile playbooks and logs (issue 10, item 5 and its messages): every bound is checked at
//! `check` time with a message that names it, a huge line costs one line, not the run's memory,
//! and a path that is not a log file says what it is.

use std::io::Write;

mod search;

use tcpreset::playbook::search::backend::{BackendError, SearchOutput};
use tcpreset::playbook::spec::check::parse_playbook;

/// A playbook with `schedule_extra` under `schedule:` and `field` in its query.
fn playbook(schedule_extra: &str, field: &str, path: &str) -> String {
    format!(
        "name: t\nschedule:\n  interval_minutes: 5\n{schedule_extra}source: {{paths: ['{path}']}}\nquery: {{field: {field}, is: a}}\n"
    )
}

/// The problems `check` reports, one string each.
fn problems(text: &str) -> Vec<String> {
    match parse_playbook(text) {
        Ok(_) => Vec::new(),
        Err(p) => p.into_iter().map(|p| p.message).collect(),
    }
}

#[test]
fn a_mute_past_the_end_of_time_is_refused_at_check() {
    let got = problems(&playbook(
        "  mute: {from: \"9999-12-31T23:59:59Z\", for: 99999999999h}\n",
        "event_name",
        "x",
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("mute `for`") && got[0].contains("at most 36525 days"),
        "{got:?}"
    );
    // The longest mute is fine even from the last second RFC 3339 can write.
    let ok = problems(&playbook(
        "  mute: {from: \"9999-12-31T23:59:59Z\", for: 36525days}\n",
        "event_name",
        "x",
    ));
    assert!(ok.is_empty(), "{ok:?}");
}

#[test]
fn a_lookback_of_500000_years_is_refused_at_check() {
    let got = problems(&playbook("  lookback: 500000y\n", "event_name", "x"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("`lookback`") && got[0].contains("too long"),
        "{got:?}"
    );
    assert!(problems(&playbook("  lookback: 36525days\n", "event_name", "x")).is_empty());
}

#[test]
fn a_field_with_many_dots_is_refused_before_any_path_is_built() {
    let dotted = vec!["a"; 29].join(".");
    let started = std::time::Instant::now();
    let got = problems(&playbook("", &dotted, "x"));
    assert!(
        started.elapsed().as_secs() < 2,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("28 dots") && got[0].contains("at most 8"),
        "{got:?}"
    );
    assert!(problems(&playbook("", "source.geo.location.lat", "x")).is_empty());
}

#[test]
fn a_glob_with_more_than_one_double_star_is_refused_at_check() {
    let got = problems(&playbook("", "event_name", "/**/**/**/**/*.json"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("more than one `**`"), "{got:?}");
    assert!(problems(&playbook("", "event_name", "/var/log/**/*.json")).is_empty());
}

fn search(dir: &std::path::Path, path: &str) -> Result<SearchOutput, BackendError> {
    search::search(&playbook("", "event_name", path), dir, &[path], 2, 5)
}

#[test]
fn a_line_longer_than_the_longest_record_is_skipped_and_reported_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("x.ndjson")).unwrap();
    let record = r#"{"event_name":"a","timestamp":"2025-06-02T10:00:00Z"}"#;
    writeln!(f, "{record}").unwrap();
    write!(f, "{{\"event_name\":\"a\",\"pad\":\"").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..40 {
        f.write_all(&chunk).unwrap();
    }
    writeln!(f, "\"}}").unwrap();
    writeln!(f, "{record}").unwrap();
    drop(f);
    let out = search(dir.path(), "x.ndjson").unwrap();
    assert_eq!(out.payload.total_hits, 2);
    assert_eq!(out.stats.malformed, 1);
    let example = &out.stats.examples[0];
    assert!(
        example.ends_with("x.ndjson:2: a line longer than 16 MiB, skipped"),
        "{example}"
    );
}

#[test]
fn a_directory_a_fifo_or_a_device_in_source_paths_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    nix::unistd::mkfifo(
        &dir.path().join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    for (path, says) in [
        ("logs", "is a directory"),
        ("pipe", "is a FIFO"),
        ("/dev/zero", "is a device"),
        ("missing.json", "no such file"),
    ] {
        let Err(e) = search(dir.path(), path) else {
            panic!("{path}: accepted");
        };
        let e = e.to_string();
        assert!(e.contains(says), "{path}: {e}");
    }
}

#[test]
fn a_record_serde_json_cannot_hold_is_malformed_never_a_hit_without_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("{}1{}", "[".repeat(129), "]".repeat(129));
    let lines = [
        r#"{"event_name":"a","srcip":"10.0.0.1","timestamp":"2025-06-02T10:00:00Z"}"#.to_string(),
        r#"{"event_name":"a","srcip":"10.0.0.2","timestamp":"2025-06-02T10:00:01Z","x":1e400}"#
            .to_string(),
        r#"{"event_name":"a","srcip":"10.0.0.3","timestamp":"2025-06-02T10:00:02Z","y":"\ud800"}"#
            .to_string(),
        format!(
            r#"{{"event_name":"a","srcip":"10.0.0.4","timestamp":"2025-06-02T10:00:03Z","z":{deep}}}"#
        ),
    ];
    std::fs::write(dir.path().join("x.ndjson"), lines.join("\n") + "\n").unwrap();
    let out = search(dir.path(), "x.ndjson").unwrap();
    assert_eq!(out.payload.total_hits, 1);
    assert_eq!(out.stats.malformed, 3, "{:?}", out.stats.examples);
    let kept: Vec<_> = out
        .payload
        .filtered
        .iter()
        .map(|r| r["srcip"].clone())
        .collect();
    assert_eq!(kept, ["10.0.0.1"]);
}
