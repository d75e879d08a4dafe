//! Issue 13's end-to-end test: `tcpreset-hunt schedule` follows a real-time playbook's EVE file
//! in the sensor; `tcpresetd` and `sshd` run there as the documentation deploys them. A chat
//! connection and an idle connection of the offending host are up; one real-format Suricata
//! alert line for that host is appended to the EVE file, and both ends of both connections
//! must see the reset.
mod lab;
mod playbooks;

use lab::sshd::{keygen, Sshd};
use lab::{require_root, scratch, Lab, CLIENT};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One alert as Suricata writes it to eve.json (all of its usual fields), for `src`.
fn alert_line(src: &str, signature_id: u32) -> String {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+0000");
    format!(
        "{{\"timestamp\":\"{now}\",\"flow_id\":1822543207741036,\"in_iface\":\"eth1\",\"event_type\":\"alert\",\
         \"src_ip\":\"{src}\",\"src_port\":41234,\"dest_ip\":\"10.77.0.2\",\"dest_port\":7302,\"proto\":\"TCP\",\
         \"pkt_src\":\"wire/pcap\",\"community_id\":\"1:Xb2hK3eaTN2qkRQXOFuPm1c9xRk=\",\"alert\":{{\"action\":\"allowed\",\
         \"gid\":1,\"signature_id\":{signature_id},\"rev\":1,\"signature\":\"ET EXPLOIT Apache log4j RCE Attempt (http ldap) (Outbound)\",\
         \"category\":\"Attempted Administrator Privilege Gain\",\"severity\":1,\"metadata\":{{\"cve\":[\"CVE_2021_44228\"]}}}},\
         \"app_proto\":\"http\",\"direction\":\"to_server\",\"flow\":{{\"pkts_toserver\":4,\"pkts_toclient\":3,\
         \"bytes_toserver\":420,\"bytes_toclient\":300,\"start\":\"{now}\",\"src_ip\":\"{src}\",\"dest_ip\":\"10.77.0.2\",\
         \"src_port\":41234,\"dest_port\":7302}}}}"
    )
}

/// The seed's playbook (reset after high-severity alerts), following `eve` in real time.
fn write_playbook(dir: &Path, eve: &Path, target: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let tcpreset = env!("CARGO_BIN_EXE_tcpreset");
    std::fs::write(
        dir.join("realtime.yaml"),
        playbooks::seed_reset(
            &format!(
                "name: reset after high-severity alerts, real time\n\
                 schedule: {{realtime: {{lookback: 10m}}}}\n\
                 source: {{paths: [{}], format: suricata}}",
                eve.display()
            ),
            Some("180s"),
            target,
            tcpreset,
        ),
    )
    .unwrap();
}

/// `tcpreset-hunt schedule` in the sensor, once its follower has read the (empty) EVE file.
struct Hunt {
    child: Child,
}

impl Hunt {
    fn start(lab: &Lab, books: &Path, status: &Path) -> Hunt {
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("sen")])
            .arg(env!("CARGO_BIN_EXE_tcpreset-hunt"))
            .arg("schedule")
            .arg(books)
            .arg("--status-dir")
            .arg(status)
            .env("TCPRESET_SOCKET", &lab.socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let file = status.join("realtime.yaml.json");
        while !std::fs::read_to_string(&file).is_ok_and(|t| t.contains("\"evaluations\": 1")) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the follower did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Hunt { child }
    }
}

impl Drop for Hunt {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// The command the trial runs: append `line` to `eve` (one write).
fn append(eve: &Path, line: &str) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("printf '%s\\n' '{line}' >> '{}'", eve.display()),
    ]
}

#[test]
fn an_alert_line_written_to_eve_json_resets_chat_and_idle_connections_over_ssh() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("rt-");
    lab.start_daemon(&["--track", "eth1"]);
    let dir = scratch(&lab, "ssh");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("id_ed25519");
    keygen(&key);
    let sshd = Sshd::start(&lab.ns("sen"), &dir, "127.0.0.1", 2222, &lab.socket, &key);
    let target = format!(
        "{{ssh: {{host: 127.0.0.1, port: 2222, user: root, identity_file: {}, known_hosts_file: {}}}}}",
        sshd.key.display(),
        sshd.known_hosts.display()
    );
    let eve: PathBuf = scratch(&lab, "eve.json");
    std::fs::write(&eve, "").unwrap();
    let books = scratch(&lab, "playbooks");
    write_playbook(&books, &eve, &target);
    let status = scratch(&lab, "status");
    let _hunt = Hunt::start(&lab, &books, &status);

    let idle = lab.hold("cli", 7301, "idle", 5000);
    let chat = lab.trial(
        "cli",
        7302,
        "chat",
        &append(&eve, &alert_line(CLIENT, 2034647)),
    );
    lab.assert_killed(&chat, "chat: ");
    let idle = idle.report();
    lab.assert_killed(&idle, "idle: ");
    let rules = lab.rules();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(
        (rules[0]["engid"].as_str(), rules[0]["host"].as_str()),
        (Some("2034647"), Some(CLIENT))
    );
    let text = std::fs::read_to_string(status.join("realtime.yaml.json")).unwrap();
    assert!(text.contains("\"outcome\": \"succeeded\""), "{text}");
    eprintln!(
        "alert written -> both ends reset: chat {} / {} ms",
        chat["client"]["ms"], chat["server"]["ms"]
    );
}
