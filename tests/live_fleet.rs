//! Issue 14's many-sensors test: three sensor labs, each with its own segment, `tcpresetd` and
//! `sshd`, reached from a management namespace; a fourth sensor of the inventory is dead (its
//! address drops everything). One playbook run kills the offending host's connections on the
//! two sensors where it has some, registers the rule on the third, shows the fourth failed after
//! its own timeout, and delays nobody else; a routed run reaches only the sensor a record names.
mod lab;
mod playbooks;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lab::sshd::{keygen, Sshd};
use lab::{require_root, scratch, Lab, CLIENT, OTHER};
use serde_json::Value as Json;

/// The per-sensor timeout of the playbooks.
const TIMEOUT_S: u64 = 6;

/// The management namespace: a veth to each sensor (10.99.I.1 here, 10.99.I.2 there) and a
/// link that drops everything sent to the dead sensor 10.99.9.2.
struct Mgmt {
    ns: String,
}

impl Mgmt {
    fn up(name: &str, labs: &[Lab]) -> Mgmt {
        let mgmt = Mgmt { ns: name.into() };
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().unwrap().success();
            assert!(ok, "ip {args:?}");
        };
        ip(&["netns", "add", &mgmt.ns]);
        ip(&["-n", &mgmt.ns, "link", "set", "lo", "up"]);
        for (i, lab) in labs.iter().enumerate() {
            let (here, there) = (format!("m{i}"), lab.ns("sen"));
            ip(&[
                "link", "add", &here, "netns", &mgmt.ns, "type", "veth", "peer", "name", "mgmt",
                "netns", &there,
            ]);
            ip(&[
                "-n",
                &mgmt.ns,
                "addr",
                "add",
                &format!("10.99.{i}.1/24"),
                "dev",
                &here,
            ]);
            ip(&[
                "-n",
                &there,
                "addr",
                "add",
                &format!("10.99.{i}.2/24"),
                "dev",
                "mgmt",
            ]);
            ip(&["-n", &mgmt.ns, "link", "set", &here, "up"]);
            ip(&["-n", &there, "link", "set", "mgmt", "up"]);
        }
        // Frames to the dead sensor go to a MAC address nobody has: dropped, never answered.
        ip(&[
            "-n", &mgmt.ns, "link", "add", "dead", "type", "veth", "peer", "name", "void",
        ]);
        ip(&["-n", &mgmt.ns, "addr", "add", "10.99.9.1/24", "dev", "dead"]);
        ip(&["-n", &mgmt.ns, "link", "set", "void", "up"]);
        ip(&["-n", &mgmt.ns, "link", "set", "dead", "up"]);
        ip(&[
            "-n",
            &mgmt.ns,
            "neigh",
            "add",
            "10.99.9.2",
            "lladdr",
            "02:00:00:00:09:02",
            "dev",
            "dead",
            "nud",
            "permanent",
        ]);
        mgmt
    }
}

impl Drop for Mgmt {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn eve(path: &Path, records: &[(&str, &str)]) {
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+0000");
    let text: String = records
        .iter()
        .enumerate()
        .map(|(i, (sensor, src))| {
            format!(
                "{{\"timestamp\":\"{ts}\",\"flow_id\":{i},\"event_type\":\"alert\",\"host\":\"{sensor}\",\"src_ip\":\"{src}\",\
                 \"src_port\":4000{i},\"dest_ip\":\"10.77.0.2\",\"dest_port\":80,\"proto\":\"TCP\",\"alert\":{{\"action\":\"allowed\",\
                 \"gid\":1,\"signature_id\":2024897,\"rev\":1,\"signature\":\"ET EXPLOIT test\",\"category\":\"x\",\"severity\":1}}}}\n"
            )
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

/// A playbook: one `tcpreset` line per (sensor, source) of the alerts, to every sensor of the
/// inventory, or (`route: true`) only to the sensor a record names.
fn playbook(dir: &Path, name: &str, engid: &str, key: &Path, known: &Path, route: bool) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\nschedule: {{interval_minutes: 5}}\nsource: {{paths: [{name}.eve.json]}}\n\
             query: {{field: event_type, is: alert}}\n\
             calculations: [{{name: by_sensor, type: top, field: host, by: count, size: 10, subgroups: [{{name: by_src, type: top, field: srcip, by: count, size: 10}}]}}]\n\
             conditions: [{{name: any, type: compare_value, operator: greater, value: 0}}]\n\
             actions:\n  - name: reset\n    trigger: any\n    for_each: by_src\n    run_script:\n      \
             target: {{ssh: {{inventory: sensors.yaml, user: root, identity_file: {key}, known_hosts_file: {known}, persist: 5s}}}}\n      \
             timeout: {TIMEOUT_S}s\n{route}      commands: {{tcpreset: {tcpreset}}}\n      \
             script: \"tcpreset {engid} -i eth1 -o eth0 -h {{{{srcip}}}} -d 120\"\n",
            route = if route { "      route_by: host\n" } else { "" },
            key = key.display(),
            known = known.display(),
            tcpreset = env!("CARGO_BIN_EXE_tcpreset"),
        ),
    )
    .unwrap();
    path
}

fn hunt(mgmt: &Mgmt, playbook: &Path, status_dir: &Path) -> (Json, Duration) {
    playbooks::run_first_action(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &mgmt.ns,
                env!("CARGO_BIN_EXE_tcpreset-hunt"),
                "run",
            ])
            .arg(playbook)
            .arg("--json")
            .arg("--status-dir")
            .arg(status_dir),
    )
}

use playbooks::host_status as host;

fn hosts_with_rules(lab: &Lab, engid: &str) -> Vec<String> {
    lab.rules()
        .iter()
        .filter(|r| r["engid"] == engid)
        .map(|r| r["host"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn one_playbook_resets_the_host_on_every_sensor_that_sees_it() {
    if !require_root() {
        return;
    }
    let mut labs = [Lab::up("fla"), Lab::up("flb"), Lab::up("flc")];
    for lab in &mut labs {
        lab.start_daemon(&[]);
    }
    let mgmt = Mgmt::up(&format!("{}-mgt", labs[0].name), &labs);
    let dir = scratch(&labs[0], "fleet");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("id_ed25519");
    keygen(&key);
    let sshds: Vec<Sshd> = labs
        .iter()
        .enumerate()
        .map(|(i, lab)| {
            let addr = format!("10.99.{i}.2");
            Sshd::start(
                &lab.ns("sen"),
                &scratch(lab, "ssh"),
                &addr,
                22,
                &lab.socket,
                &key,
            )
        })
        .collect();
    let known = dir.join("known_hosts");
    std::fs::write(
        &known,
        sshds
            .iter()
            .map(|s| s.known_host.as_str())
            .collect::<String>(),
    )
    .unwrap();
    std::fs::write(
        dir.join("sensors.yaml"),
        "sensor-a: 10.99.0.2\nsensor-b: 10.99.1.2\nsensor-c: 10.99.2.2\nsensor-0: 10.99.9.2\n",
    )
    .unwrap();
    let status_dir = dir.join("status");

    // Sensor a saw the client attack; it chats on sensors a and b; on c only another host talks.
    eve(&dir.join("all.eve.json"), &[("sensor-a", CLIENT)]);
    let all = playbook(&dir, "all", "fleet-1", &key, &known, false);
    let hold_ms = 2000 + TIMEOUT_S * 1000 + 3000;
    let on_a = labs[0].hold("cli", 7401, "chat", hold_ms);
    let on_b = labs[1].hold("cli", 7402, "chat", hold_ms);
    let bystander = labs[2].hold("oth", 7403, "chat", hold_ms);
    let (action, took) = hunt(&mgmt, &all, &status_dir);

    // The dead sensor costs its own timeout, not more, and nobody waits for it.
    assert!(
        took < Duration::from_secs(TIMEOUT_S + 3),
        "{took:?} {action:#}"
    );
    for sensor in ["sensor-a", "sensor-b", "sensor-c"] {
        let h = host(&action, sensor);
        assert_eq!(h["outcome"], "succeeded", "{h:#}");
        assert!(
            h["elapsed_ms"].as_u64().unwrap() < TIMEOUT_S * 1000,
            "{h:#}"
        );
        assert!(h["output"][0].as_str().unwrap().contains("-> ok"), "{h:#}");
    }
    let dead = host(&action, "sensor-0");
    assert_eq!(dead["outcome"], "failed", "{dead:#}");
    assert!(
        dead["output"][0].as_str().unwrap().contains("timed out"),
        "{dead:#}"
    );
    assert_eq!(action["outcome"], "partial");
    for (lab, holder) in labs[..2].iter().zip([on_a, on_b]) {
        let report = holder.report();
        lab.assert_killed(&report, "the client's connection on its sensor: ");
        // Killed while the dead sensor (first in the inventory) was still being waited for.
        let ms = report["client"]["ms"].as_f64().unwrap();
        assert!(ms < (TIMEOUT_S * 1000) as f64, "{report:#}");
    }
    let spared = bystander.report();
    assert_eq!(spared["survived"], true, "{spared:#}");
    for lab in &labs {
        assert_eq!(hosts_with_rules(lab, "fleet-1"), [CLIENT]);
    }
    let shown = Command::new(env!("CARGO_BIN_EXE_tcpreset-hunt"))
        .args(["status", "--status-dir"])
        .arg(&status_dir)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    for line in [
        "sensor sensor-a (10.99.0.2:22): Succeeded",
        "sensor sensor-c (10.99.2.2:22): Succeeded",
        "sensor sensor-0 (10.99.9.2:22): Failed",
    ] {
        assert!(shown.contains(line), "{line} missing in {shown}");
    }

    // Routed: each line only where its record was seen; an unknown sensor name goes nowhere.
    eve(
        &dir.join("routed.eve.json"),
        &[("sensor-b", OTHER), ("sensor-z", CLIENT)],
    );
    let routed = playbook(&dir, "routed", "fleet-2", &key, &known, true);
    let (action, _) = hunt(&mgmt, &routed, &status_dir);
    assert_eq!(hosts_with_rules(&labs[1], "fleet-2"), [OTHER]);
    assert!(hosts_with_rules(&labs[0], "fleet-2").is_empty());
    assert!(hosts_with_rules(&labs[2], "fleet-2").is_empty());
    assert_eq!(host(&action, "sensor-b")["outcome"], "succeeded");
    assert_eq!(host(&action, "sensor-0")["outcome"], "not_triggered");
    assert!(
        action["output"]
            .to_string()
            .contains("routed to sensor `sensor-z`"),
        "{action:#}"
    );
    drop(sshds);
}
