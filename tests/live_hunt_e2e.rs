//! Issue 5's end-to-end test: real logs (Suricata EVE and Zeek conn.log, written here) go
//! through playbooks whose Run Script renders `tcpreset` lines, run over SSH against a real
//! `sshd` in the sensor namespace; `tcpresetd` registers the rules and the offending hosts' live
//! connections die on both ends.
mod lab;
mod playbooks;

use lab::sshd::{keygen, Sshd};
use lab::{require_root, scratch, Lab, CLIENT, OTHER};
use std::path::{Path, PathBuf};

/// `sshd` on 127.0.0.1:2222 inside the sensor namespace (the seed's connector logs in to the
/// sensor itself).
fn start_sshd(lab: &Lab) -> Sshd {
    let dir = scratch(lab, "ssh");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("id_ed25519");
    keygen(&key);
    Sshd::start(&lab.ns("sen"), &dir, "127.0.0.1", 2222, &lab.socket, &key)
}

fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+0000")
        .to_string()
}

/// High-severity Suricata alerts from the client, as the EVE log has them.
fn write_eve(path: &Path) {
    let mut text = String::new();
    for (i, (src, sev)) in [(CLIENT, 1), (CLIENT, 1), ("10.77.0.9", 3)]
        .iter()
        .enumerate()
    {
        text.push_str(&format!(
            "{{\"timestamp\":\"{}\",\"flow_id\":{i},\"event_type\":\"alert\",\"src_ip\":\"{src}\",\"src_port\":4000{i},\
             \"dest_ip\":\"10.77.0.2\",\"dest_port\":80,\"proto\":\"TCP\",\"alert\":{{\"action\":\"allowed\",\"gid\":1,\
             \"signature_id\":2024897,\"rev\":1,\"signature\":\"ET EXPLOIT test\",\"category\":\"x\",\"severity\":{sev}}}}}\n",
            now_rfc3339()
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// A Zeek conn.log (TSV) in which the other host leaves five connections half-opened.
fn write_conn_log(path: &Path) {
    let ts = chrono::Utc::now().timestamp();
    let mut text = String::from(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n\
         #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\n\
         #types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\n",
    );
    for i in 0..5 {
        text.push_str(&format!(
            "{ts}.000000\tC{i:017}\t{OTHER}\t{}\t10.77.0.2\t{}\ttcp\t-\t0.1\t0\t0\tS0\n",
            41000 + i,
            20 + i
        ));
    }
    text.push_str(&format!(
        "{ts}.000000\tCX\t{CLIENT}\t42000\t10.77.0.2\t80\ttcp\t-\t1.0\t10\t10\tSF\n"
    ));
    std::fs::write(path, text).unwrap();
}

fn ssh_target(sshd: &Sshd) -> String {
    format!(
        "{{ssh: {{host: 127.0.0.1, port: 2222, user: root, identity_file: {}, known_hosts_file: {}, persist: 5s}}}}",
        sshd.key.display(),
        sshd.known_hosts.display()
    )
}

fn write_playbooks(lab: &Lab, sshd: &Sshd) -> (PathBuf, PathBuf) {
    let eve = scratch(lab, "eve.json");
    let conn = scratch(lab, "conn.log");
    write_eve(&eve);
    write_conn_log(&conn);
    let tcpreset = env!("CARGO_BIN_EXE_tcpreset");
    let alerts = scratch(lab, "alerts.yaml");
    std::fs::write(
        &alerts,
        playbooks::seed_reset(
            &format!(
                "name: reset after high-severity alerts\nschedule: {{interval_minutes: 5}}\n\
                 source: {{paths: [{}]}}",
                eve.display()
            ),
            None,
            &ssh_target(sshd),
            tcpreset,
        ),
    )
    .unwrap();
    let half_open = scratch(lab, "half-open.yaml");
    std::fs::write(
        &half_open,
        format!(
            "name: half-opened sessions\nschedule: {{interval_minutes: 5}}\n\
             source: {{paths: [{conn}]}}\nquery: {{field: state, is: HalfOpened}}\n\
             calculations: [{{name: sources, type: top, field: srcip, by: count, size: 100}}]\n\
             conditions: [{{name: three or more, type: compare_list, comparison: at_least_one, list: result_counts, of: sources, operator: greater_or_equal, value: 3}}]\n\
             actions:\n  - name: isolate\n    trigger: three or more\n    for_each: matches\n    run_script:\n      \
             target: {target}\n      commands: {{tcpreset: {tcpreset}}}\n      \
             script: \"tcpreset half-open -i eth1 -o eth0 -h {{{{srcip}}}} -d 120\"\n",
            conn = conn.display(),
            target = ssh_target(sshd),
        ),
    )
    .unwrap();
    (alerts, half_open)
}

fn hunt(lab: &Lab, playbook: &Path) -> Vec<String> {
    vec![
        "ip".into(),
        "netns".into(),
        "exec".into(),
        lab.ns("sen"),
        env!("CARGO_BIN_EXE_tcpreset-hunt").into(),
        "run".into(),
        playbook.display().to_string(),
    ]
}

#[test]
fn playbooks_over_ssh_kill_the_offending_hosts_connections() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("hunt");
    lab.start_daemon(&[]);
    let sshd = start_sshd(&lab);
    let (alerts, half_open) = write_playbooks(&lab, &sshd);

    // Suricata alerts of 10.77.0.1: its live chat connection dies on both ends.
    let report = lab.trial("cli", 7201, "chat", &hunt(&lab, &alerts));
    lab.assert_killed(&report, "");
    let rules = lab.rules();
    assert_eq!(rules.len(), 1, "one line per (engid, srcip): {rules:?}");
    assert_eq!(
        (rules[0]["engid"].as_str(), rules[0]["host"].as_str()),
        (Some("2024897"), Some(CLIENT))
    );
    assert!((170.0..=180.0).contains(&rules[0]["seconds_left"].as_f64().unwrap()));

    // Zeek half-opened sessions of 10.77.0.3: its connection dies too.
    let report = lab.trial("oth", 7202, "chat", &hunt(&lab, &half_open));
    lab.assert_killed(&report, "");
    let hosts: Vec<String> = lab
        .rules()
        .iter()
        .map(|r| r["host"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hosts, [CLIENT, OTHER]);
}
