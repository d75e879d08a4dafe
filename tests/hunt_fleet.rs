//! A Run Script to many sensors, without root: `tcpreset-hunt run` with a stand-in `ssh` on PATH
//! that answers per host (one fine, one on another port, one that hangs, one that refuses the
//! connection), so the parallel work, the per-sensor timeout, routing and the per-host status
//! are checked exactly. `tests/live_fleet.rs` does it with real `sshd`s.

mod playbooks;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_tcpreset-hunt");

/// The stand-in: logs `host|remote command|ControlPath option` to `ssh.log`, then acts by host.
const FAKE_SSH: &str = r#"#!/bin/sh
log="$(dirname "$0")/ssh.log"
control=none
while [ $# -gt 2 ]; do
    case "$1" in
        -o) case "$2" in ControlPath=*) control="${2#ControlPath=}";; esac; shift 2 ;;
        --) shift; break ;;
        *) shift ;;
    esac
done
host=$1 remote=$2
echo "$host|$remote|$control" >> "$log"
case $host in
    10.9.0.3|10.9.0.6) sleep 30 ;;
    10.9.0.4) echo "ssh: connect to host $host port 22: Connection refused" >&2; exit 255 ;;
    *) echo "rule added on $host" ;;
esac
"#;

fn setup(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("ssh"), FAKE_SSH).unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(bin.join("ssh"))
        .status()
        .unwrap();
    let ts = "2025-06-02T10:20:00.000000+0000";
    let eve: String = [
        ("10.0.0.1", "sensor-a"),
        ("10.0.0.2", "sensor-b"),
        ("10.0.0.1", "sensor-a"),
        ("10.0.0.7", "sensor-x"),
        ("10.0.0.8 -p 1", "sensor-b"),
    ]
    .iter()
    .map(|(ip, host)| {
        format!(
            "{{\"timestamp\":\"{ts}\",\"event_type\":\"alert\",\"host\":\"{host}\",\"src_ip\":\"{ip}\",\"dest_ip\":\"10.0.0.99\",\"alert\":{{\"signature_id\":7,\"severity\":1}}}}\n"
        )
    })
    .collect();
    std::fs::write(dir.join("eve.json"), eve).unwrap();
}

fn playbook(dir: &Path, name: &str, for_each: &str, target: &str, extra: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "name: {name}\nschedule: {{interval_minutes: 5}}\nsource: {{paths: [eve.json]}}\n\
             query: {{field: event_type, is: alert}}\n\
             calculations: [{{name: by_host, type: top, field: host, by: count, size: 10, subgroups: [{{name: by_src, type: top, field: srcip, by: count, size: 10}}]}}]\n\
             conditions: [{{name: any, type: compare_value, operator: greater, value: 0}}]\n\
             actions:\n  - name: reset\n    trigger: any\n    for_each: {for_each}\n    run_script:\n      \
             target: {{ssh: {target}}}\n      timeout: 2s\n{extra}      \
             script: \"tcpreset e1 -i eth1 -o eth0 -h {{{{srcip}}}} -d 60\"\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn run(dir: &Path, playbook: &str, dry: bool) -> (Json, Duration) {
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut args = vec!["run", playbook, "--now", "2025-06-02T10:21:00Z", "--json"];
    if dry {
        args.push("--dry-run");
    }
    playbooks::run_first_action(
        Command::new(BIN)
            .args(&args)
            .env("PATH", path)
            .env("XDG_RUNTIME_DIR", dir),
    )
}

fn log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("bin/ssh.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

use playbooks::host_status as host;

#[test]
fn every_sensor_in_parallel_each_within_its_timeout_and_each_reported() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let pb = playbook(
        tmp.path(),
        "broadcast.yaml",
        "by_src",
        "{hosts: [10.9.0.3, 10.9.0.1, \"10.9.0.2:2222\", 10.9.0.6, 10.9.0.4], user: tcpreset}",
        "",
    );
    let (action, took) = run(tmp.path(), &pb, false);
    // The two hanging sensors cost their own 2 s timeout, at once, not 4 s, 30 s or the others'.
    assert!(took < Duration::from_millis(3800), "{took:?} {action:#}");
    assert_eq!(action["outcome"], "partial", "{action:#}");
    // The hostile value is refused once, before any sensor got it.
    let output = action["output"].to_string();
    assert_eq!(output.matches("REFUSED").count(), 1, "{action:#}");
    let lines = log(tmp.path());
    assert!(lines.iter().all(|l| !l.contains("-p 1")), "{lines:?}");
    for (sensor, port) in [("10.9.0.1", 22), ("10.9.0.2", 2222)] {
        let h = host(
            &action,
            &format!("{sensor}{}", if port == 22 { "" } else { ":2222" }),
        );
        assert_eq!(h["outcome"], "succeeded", "{h:#}");
        assert_eq!(h["address"], format!("{sensor}:{port}"));
        assert_eq!(h["output"].as_array().unwrap().len(), 3, "{h:#}");
        assert!(h["output"][0]
            .as_str()
            .unwrap()
            .contains("-> ok rule added on"));
        assert!(h["elapsed_ms"].as_u64().unwrap() < 1500, "{h:#}");
        assert_eq!(lines.iter().filter(|l| l.starts_with(sensor)).count(), 3);
    }
    let slow = host(&action, "10.9.0.3");
    assert_eq!(slow["outcome"], "failed");
    let slow_out = slow["output"].as_array().unwrap();
    assert!(slow_out[0]
        .as_str()
        .unwrap()
        .contains("timed out after 2.0s"));
    assert!(slow_out[1]
        .as_str()
        .unwrap()
        .contains("not run: the sensor's timeout"));
    let refused = host(&action, "10.9.0.4");
    assert_eq!(refused["outcome"], "failed");
    let refused_out = refused["output"].as_array().unwrap();
    assert!(refused_out[0]
        .as_str()
        .unwrap()
        .contains("Connection refused"));
    assert!(refused_out[1]
        .as_str()
        .unwrap()
        .contains("not run: ssh failed on an earlier line"));
    // One try at the refusing sensor, then none: its other lines would fail the same way.
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("10.9.0.4")).count(),
        1
    );
    // Connections are shared through a private directory under XDG_RUNTIME_DIR.
    let control = lines[0].rsplit('|').next().unwrap();
    let dir = tmp.path().join("tcpreset-ssh");
    assert!(control.starts_with(dir.to_str().unwrap()), "{control}");
    assert!(control.ends_with("/%C"), "{control}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn parallel_bounds_how_many_sensors_are_worked_on_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let pb = playbook(
        tmp.path(),
        "one-at-a-time.yaml",
        "by_src",
        "{hosts: [10.9.0.3, 10.9.0.6], user: tcpreset, parallel: 1}",
        "",
    );
    let (action, took) = run(tmp.path(), &pb, false);
    assert!(
        took >= Duration::from_secs(4),
        "one after the other: {took:?} {action:#}"
    );
    assert_eq!(action["outcome"], "failed");
}

#[test]
fn routing_sends_each_result_only_to_the_sensor_that_saw_it() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    std::fs::write(
        tmp.path().join("sensors.yaml"),
        "sensor-a: 10.9.0.1\nsensor-b: \"10.9.0.2:2222\"\nsensor-c: 10.9.0.5\n",
    )
    .unwrap();
    let pb = playbook(
        tmp.path(),
        "routed.yaml",
        "filtered",
        "{inventory: sensors.yaml, user: tcpreset, persist: 0s}",
        "      route_by: host\n",
    );
    let (dry, _) = run(tmp.path(), &pb, true);
    assert!(log(tmp.path()).is_empty(), "a dry run runs nothing");
    let dry_out = dry["output"].to_string();
    assert!(
        dry_out
            .contains("would run over ssh on sensor sensor-a (10.9.0.1:22): ssh -o BatchMode=yes"),
        "{dry:#}"
    );
    assert!(
        dry_out.contains("-- 10.9.0.1 'tcpreset e1 -i eth1 -o eth0 -h 10.0.0.1 -d 60'"),
        "{dry:#}"
    );
    let (action, _) = run(tmp.path(), &pb, false);
    let lines = log(tmp.path());
    let to = |host: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("{host}|")))
            .map(|l| l.split('|').nth(1).unwrap().to_string())
            .collect()
    };
    assert_eq!(
        to("10.9.0.1"),
        ["tcpreset e1 -i eth1 -o eth0 -h 10.0.0.1 -d 60"; 2],
        "{lines:?}"
    );
    assert_eq!(
        to("10.9.0.2"),
        ["tcpreset e1 -i eth1 -o eth0 -h 10.0.0.2 -d 60"]
    );
    assert!(to("10.9.0.5").is_empty());
    assert!(
        lines.iter().all(|l| l.ends_with("|none")),
        "persist: 0s shares nothing: {lines:?}"
    );
    // sensor-x is in no inventory: refused and said, never tried as a host.
    assert!(lines.iter().all(|l| !l.contains("sensor-x")), "{lines:?}");
    let output = action["output"].to_string();
    assert!(output.contains("routed to sensor `sensor-x`"), "{action:#}");
    assert!(output.contains("values must be single words"), "{action:#}");
    assert_eq!(action["outcome"], "partial");
    assert_eq!(host(&action, "sensor-c")["outcome"], "not_triggered");
    assert_eq!(host(&action, "sensor-b")["outcome"], "succeeded");
}

#[test]
fn a_target_is_checked_before_any_run() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    for (target, extra, error) in [
        ("{hosts: [], user: u}", "", "exactly one of"),
        ("{host: a, hosts: [b], user: u}", "", "exactly one of"),
        (
            "{hosts: [a, \"-oProxyCommand=x\"], user: u}",
            "",
            "must be an IP address",
        ),
        ("{hosts: [a, a], user: u}", "", "twice"),
        ("{hosts: [a], user: u, parallel: 0}", "", "parallel"),
        ("{hosts: [a], user: u, persist: soon}", "", "not a duration"),
        (
            "{hosts: [a], user: u}",
            "      route_by: \"{{host}}\"\n",
            "names a field",
        ),
    ] {
        let pb = playbook(tmp.path(), "bad.yaml", "by_src", target, extra);
        let out = Command::new(BIN).args(["check", &pb]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{target} must be refused");
        assert!(err.contains(error), "{target}: {err}");
    }
}

/// The README's example of "Many sensors over SSH", verbatim: the action, the calculation and
/// the inventory, dry-run over the alerts of `setup`.
#[test]
fn the_readme_example_routes_as_documented() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("### Many sensors over SSH").unwrap()..];
    let blocks: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .take(2)
        .map(|b| &b[..b.find("```").unwrap()])
        .collect();
    let calc = section
        .split_once("with the calculation `")
        .and_then(|(_, rest)| rest.split_once("` (Suricata"))
        .unwrap()
        .0
        .replace('\n', " ");
    std::fs::write(tmp.path().join("sensors.yaml"), blocks[1]).unwrap();
    let pb = tmp.path().join("readme.yaml");
    std::fs::write(
        &pb,
        format!(
            "name: readme\nschedule: {{interval_minutes: 5}}\nsource: {{paths: [eve.json]}}\n\
             query: {{field: event_type, is: alert}}\ncalculations: [{calc}]\n\
             conditions: [{{name: any, type: compare_value, operator: greater, value: 0}}]\n{}",
            blocks[0]
        ),
    )
    .unwrap();
    let (action, _) = run(tmp.path(), pb.to_str().unwrap(), true);
    let out: Vec<&str> = action["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let on = |sensor: &str| -> Vec<String> {
        out.iter()
            .filter(|l| l.starts_with(&format!("would run over ssh on sensor {sensor} ")))
            .map(|l| l.rsplit(" -- ").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        on("sensor-a"),
        ["10.99.0.2 'tcpreset high-severity -i eth1 -o eth0 -h 10.0.0.1 -d 180'"],
        "{out:#?}"
    );
    assert_eq!(
        on("sensor-b"),
        ["10.99.1.2 'tcpreset high-severity -i eth1 -o eth0 -h 10.0.0.2 -d 180'"]
    );
    assert!(
        out.contains(&"sensor sensor-c ([fd00::7]:22): no line for this sensor"),
        "{out:#?}"
    );
    assert!(out
        .iter()
        .any(|l| l.contains("routed to sensor `sensor-x`")));
    assert_eq!(action["outcome"], "partial");
}
