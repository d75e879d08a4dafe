//! Playbook fixtures shared by the hunt tests: a recorder that stands in for `tcpreset`, the
//! reset playbooks they run, and a fleet action's status per sensor.
#![allow(dead_code)]

use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// Writes `dir/record-argv.sh`, which appends its arguments (each followed by `|`) as one line
/// to `dir/argv.log`; returns its path.
pub fn argv_recorder(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let recorder = dir.join("record-argv.sh");
    let log = dir.join("argv.log");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s|' \"$a\"; done >> {log}\necho >> {log}\n",
        log = log.display()
    );
    std::fs::write(&recorder, script).unwrap();
    std::fs::set_permissions(&recorder, std::fs::Permissions::from_mode(0o755)).unwrap();
    recorder
}

/// A playbook that resets every source it finds: `head` gives its name, schedule, source and
/// query lines; a Top 100 `by_src` on `srcip`, and one local
/// `tcpreset ENGID -i eth1 -o eth0 -h SRCIP -d 60` per bucket, run by `tcpreset` (with the
/// action's `suppress` when given).
pub fn per_source_reset(
    head: &str,
    engid: &str,
    suppress: Option<&str>,
    tcpreset: &Path,
) -> String {
    let suppress = suppress.map_or(String::new(), |s| format!("    suppress: {s}\n"));
    format!(
        r#"{head}
calculations:
  - {{name: by_src, type: top, field: srcip, size: 100}}
conditions:
  - {{name: hits, type: compare_value, operator: greater, value: 0}}
actions:
  - name: reset
    trigger: hits
{suppress}    run_script:
      target: local
      commands: {{tcpreset: {tcpreset}}}
      script: |
        {{{{#ctx.payload.aggregations.by_src.buckets}}}}
        tcpreset {engid} -i eth1 -o eth0 -h {{{{srcip}}}} -d 60
        {{{{/ctx.payload.aggregations.by_src.buckets}}}}
"#,
        tcpreset = tcpreset.display()
    )
}

/// The product documentation's reset playbook: Suricata alerts of severity 1, Top 10 `engid`
/// with a Top 100 `srcip` in each, and the seed's line
/// `tcpreset {{engid}} -i eth1 -o eth0 -h {{srcip}} -d 180` per hit, run on `target` with
/// `tcpreset`. `head` gives its name, schedule and source lines.
pub fn seed_reset(head: &str, suppress: Option<&str>, target: &str, tcpreset: &str) -> String {
    let suppress = suppress.map_or(String::new(), |s| format!("    suppress: {s}\n"));
    format!(
        "{head}\n\
         query: {{all: [{{field: event_type, is: alert}}, {{field: alert.severity, less_or_equal: 1}}]}}\n\
         calculations:\n  - {{name: find_unique_engid, type: top, field: engid, by: count, size: 10,\n     \
         subgroups: [{{name: find_unique_srcip, type: top, field: srcip, by: count, size: 100}}]}}\n\
         conditions: [{{name: any, type: compare_value, operator: greater, value: 0}}]\n\
         actions:\n  - name: TCP Reset\n    trigger: any\n{suppress}    run_script:\n      target: {target}\n      \
         commands: {{tcpreset: {tcpreset}}}\n      script: |\n        \
         {{{{#ctx.payload.aggregations.find_unique_engid.buckets}}}}\n        \
         {{{{#find_unique_srcip.buckets}}}}\n        \
         tcpreset {{{{engid}}}} -i eth1 -o eth0 -h {{{{srcip}}}} -d 180\n        \
         {{{{/find_unique_srcip.buckets}}}}\n        \
         {{{{/ctx.payload.aggregations.find_unique_engid.buckets}}}}\n"
    )
}

/// Runs `tcpreset-hunt run ... --json` as `command`; returns its first action's status and how
/// long the run took.
pub fn run_first_action(command: &mut std::process::Command) -> (Json, std::time::Duration) {
    let started = std::time::Instant::now();
    let out = command.output().unwrap();
    let took = started.elapsed();
    let status: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (status["actions"][0].clone(), took)
}

/// The status of a fleet action on `sensor`.
pub fn host_status<'a>(action: &'a Json, sensor: &str) -> &'a Json {
    action["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["sensor"] == sensor)
        .unwrap_or_else(|| panic!("no status for {sensor}: {action:#}"))
}
