//! `sshd` in a lab's sensor namespace, as the documentation deploys the playbooks' Run Script
//! target: 127.0.0.1:2222, one generated key for root, the lab's socket in the sessions'
//! environment.

use super::{scratch, Lab};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `sshd` on 127.0.0.1:2222 inside the sensor namespace, accepting one generated key for root,
/// with the lab's socket in the sessions' environment (the seed's connector logs in to the
/// sensor itself).
pub struct Sshd {
    child: Child,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

impl Sshd {
    pub fn start(lab: &Lab) -> Sshd {
        let dir = scratch(lab, "ssh");
        std::fs::create_dir_all(&dir).unwrap();
        let (host_key, key) = (dir.join("host_key"), dir.join("id_ed25519"));
        keygen(&host_key);
        keygen(&key);
        std::fs::copy(dir.join("id_ed25519.pub"), dir.join("authorized_keys")).unwrap();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:2222 {host_pub}")).unwrap();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:2222\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPidFile {pid}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nSetEnv TCPRESET_SOCKET={sock}\n",
                hk = host_key.display(),
                ak = dir.join("authorized_keys").display(),
                pid = dir.join("sshd.pid").display(),
                sock = lab.socket.display(),
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns("sen"),
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
            ])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts (apt-get install openssh-server)");
        let sshd = Sshd {
            child,
            key,
            known_hosts,
        };
        // Wait until it answers: one real login that runs `true`.
        for _ in 0..100 {
            if sshd.login(lab, &["true"]).status.success() {
                return sshd;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sshd in the sensor does not accept the generated key");
    }

    pub fn login(&self, lab: &Lab, command: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns("sen"),
                "ssh",
                "-o",
                "BatchMode=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-i"])
            .arg(&self.key)
            .args(["-p", "2222", "-l", "root", "127.0.0.1"])
            .args(command)
            .output()
            .unwrap()
    }

    /// The playbook `target:` that logs in to this sshd.
    pub fn target(&self) -> String {
        format!(
            "{{ssh: {{host: 127.0.0.1, port: 2222, user: root, identity_file: {}, known_hosts_file: {}}}}}",
            self.key.display(),
            self.known_hosts.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
