//! The product documentation's template examples, verbatim, over the test logs (issue 12): a
//! Run for each over `filtered` and a `{{#ctx.payload.filtered}}` section read the current
//! record's fields by canonical name (`srcip`, `engid`), by native name, and through `_source.`
//! (Zeek's dotted keys too).

use std::path::Path;

use chrono::{DateTime, Utc};
use tcpreset::playbook::act::status::{ActionOutcome, Status};
use tcpreset::playbook::io::load::load;
mod search;

use tcpreset::playbook::io::run::{run_playbook, RunOptions};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs a dry run of a playbook over one test log at 10:05 on the logs' day.
fn dry_run(log: &str, for_each: &str, script: &str) -> Status {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name: docs\nschedule: {{interval_minutes: 60}}\nsource: {{paths: ['{ROOT}/tests/data/hunt/{log}']}}\nconditions:\n  - {{name: any, type: compare_value, operator: greater, value: 0}}\nactions:\n  - name: reset\n    trigger: any\n    for_each: {for_each}\n    run_script:\n      target: local\n      script: |\n        {}\n",
        script.replace('\n', "\n        ")
    );
    let path = dir.path().join("docs.yaml");
    std::fs::write(&path, text).unwrap();
    let playbook = load(&path).unwrap();
    let now: DateTime<Utc> = "2025-06-02T10:05:00Z".parse().unwrap();
    let options = RunOptions {
        dry_run: true,
        threads: 1,
    };
    let status = run_playbook(Path::new(&path), &playbook, now, now, options);
    assert!(status.error.is_none(), "{status:?}");
    status
}

fn lines(status: &Status) -> Vec<String> {
    let action = &status.actions[0];
    assert_eq!(action.outcome, ActionOutcome::DryRun, "{action:?}");
    action.output.clone()
}

#[test]
fn the_tcp_reset_line_runs_for_each_filtered_record_by_canonical_names() {
    let status = dry_run(
        "alerts.eve.json",
        "filtered",
        "tcpreset {{engid}} -i eth1 -o eth0 -h {{srcip}} -d 180",
    );
    let got = lines(&status);
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(
        got.contains(
            &"would run locally: tcpreset 2001219 -i eth1 -o eth0 -h 203.0.113.7 -d 180".into()
        ),
        "{got:?}"
    );
    assert!(
        got.iter()
            .all(|l| l.starts_with("would run locally: tcpreset ")),
        "{got:?}"
    );
}

#[test]
fn a_filtered_section_reads_canonical_native_and_source_names() {
    let section = dry_run(
        "alerts.eve.json",
        "run",
        "{{#ctx.payload.filtered}}tcpreset {{engid}} -i eth1 -o eth0 -h {{src_ip}} -p {{dstport}} -d {{_source.alert.severity}}0\n{{/ctx.payload.filtered}}",
    );
    let got = lines(&section);
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(
        got.contains(
            &"would run locally: tcpreset 2001219 -i eth1 -o eth0 -h 203.0.113.7 -p 80 -d 20"
                .into()
        ),
        "{got:?}"
    );
}

#[test]
fn zeek_records_read_through_source_with_their_dotted_keys() {
    let status = dry_run(
        "half-opened.conn.log",
        "filtered",
        "tcpreset zeek -i eth1 -o eth0 -h {{_source.id.orig_h}} -p {{dstport}} -d 60",
    );
    let got = lines(&status);
    assert!(
        got.contains(
            &"would run locally: tcpreset zeek -i eth1 -o eth0 -h 10.0.0.66 -p 22 -d 60".into()
        ),
        "{got:?}"
    );
    assert!(
        got.iter().all(|l| l.starts_with("would run locally: ")),
        "{got:?}"
    );
}

#[test]
fn a_keyword_suffix_names_the_text_field_in_local_logs() {
    let text = "name: kw\nschedule: {interval_minutes: 60}\nsource: {paths: [x]}\ncalculations:\n  - {name: by_src, type: top, field: srcip.keyword, size: 10}\n";
    let dir = format!("{ROOT}/tests/data/hunt");
    let out = search::search(text, Path::new(&dir), &["alerts.eve.json"], 1, 0).unwrap();
    let buckets = &out.payload.aggregations["by_src"]["buckets"];
    assert_eq!(buckets.as_array().map(Vec::len), Some(5), "{buckets}");
    assert!(buckets.to_string().contains("203.0.113.7"), "{buckets}");
    assert_eq!(
        buckets[0]["srcip"], "203.0.113.5",
        "a bucket binds `srcip`: {buckets}"
    );
}
