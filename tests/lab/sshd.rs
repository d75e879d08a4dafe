//! `sshd` in a lab namespace, accepting one generated client key for root, with a daemon's socket
//! in the sessions' environment (as a sensor deploys it: the playbook logs in and runs
//! `tcpreset`). It stops when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Generates an ed25519 key pair at `path` (and `path.pub`), no passphrase.
pub fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs (apt-get install openssh-client)");
    assert!(status.success());
}

pub struct Sshd {
    child: Child,
    ns: String,
    pub addr: String,
    pub port: u16,
    /// The client key it accepts.
    pub key: PathBuf,
    /// A known_hosts file with this server's key.
    pub known_hosts: PathBuf,
    /// The known_hosts line of this server.
    pub known_host: String,
}

impl Sshd {
    /// Starts `sshd` in namespace `ns` on `addr:port`, files in `dir`, accepting `key` (a private
    /// key made by [`keygen`]), sessions told `TCPRESET_SOCKET=socket`; returns once it answers.
    pub fn start(ns: &str, dir: &Path, addr: &str, port: u16, socket: &Path, key: &Path) -> Sshd {
        std::fs::create_dir_all(dir).unwrap();
        let host_key = dir.join("host_key");
        keygen(&host_key);
        let mut public = key.as_os_str().to_owned();
        public.push(".pub");
        std::fs::copy(&public, dir.join("authorized_keys")).unwrap();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let known_host = match port {
            22 => format!("{addr} {host_pub}"),
            _ => format!("[{addr}]:{port} {host_pub}"),
        };
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, &known_host).unwrap();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress {addr}:{port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPidFile {pid}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nSetEnv TCPRESET_SOCKET={sock}\n",
                hk = host_key.display(),
                ak = dir.join("authorized_keys").display(),
                pid = dir.join("sshd.pid").display(),
                sock = socket.display(),
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts (apt-get install openssh-server)");
        let sshd = Sshd {
            child,
            ns: ns.to_string(),
            addr: addr.to_string(),
            port,
            key: key.to_path_buf(),
            known_hosts,
            known_host,
        };
        // Wait until it answers: one real login that runs `true`.
        for _ in 0..100 {
            if sshd.login(&["true"]).status.success() {
                return sshd;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sshd in {ns} does not accept the generated key");
    }

    /// Logs in from the server's own namespace and runs `command`.
    pub fn login(&self, command: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "ssh", "-o", "BatchMode=yes"])
            .args(["-o", "ControlMaster=no", "-o", "ControlPath=none", "-o"])
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg("-i")
            .arg(&self.key)
            .args(["-p", &self.port.to_string(), "-l", "root", &self.addr])
            .args(command)
            .output()
            .unwrap()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
