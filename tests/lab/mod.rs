//! The live-test harness: a namespace lab per test, the real daemon in its sensor, the real
//! client, and the `tcpreset-lab` peer. Everything is torn down on drop, even on failure.
#![allow(dead_code)]

pub mod sshd;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const CLIENT: &str = "10.77.0.1";
pub const SERVER: &str = "10.77.0.2";
pub const OTHER: &str = "10.77.0.3";
pub const CLIENT6: &str = "fd77::1";
pub const SERVER6: &str = "fd77::2";
/// The second segment's hosts (`scripts/lab.sh up NAME --second-segment`).
pub const CLIENT2: &str = "10.78.0.1";
pub const SERVER2: &str = "10.78.0.2";
pub const OTHER2: &str = "10.78.0.3";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Live tests need root. Without it they fail, unless TCPRESET_SKIP_LIVE=1 says to skip.
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("TCPRESET_SKIP_LIVE").is_some_and(|v| v == "1") {
        eprintln!("skipped: not root and TCPRESET_SKIP_LIVE=1");
        return false;
    }
    panic!("live tests need root (namespaces, libpcap, raw sockets): run as root, or set TCPRESET_SKIP_LIVE=1 to skip them");
}

/// One lab: namespaces `NAME-{sw,cli,srv,oth,sen}` and, once started, a daemon in NAME-sen.
pub struct Lab {
    pub name: String,
    pub socket: PathBuf,
    daemon: Option<Child>,
    log: PathBuf,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// Builds a lab with a name unique to this test process.
    pub fn up(tag: &str) -> Lab {
        Lab::up_with(tag, &[])
    }

    /// [`Lab::up`] with `scripts/lab.sh up` options (`--tagged`, `--second-segment`). The
    /// name starts with `$TCPRESET_LAB_PREFIX`, if set (for runs that share a machine).
    pub fn up_with(tag: &str, options: &[&str]) -> Lab {
        let prefix = std::env::var("TCPRESET_LAB_PREFIX").unwrap_or_default();
        let name = format!(
            "{prefix}{tag}{}x{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("tcpreset-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            socket: dir.join("tcpresetd.sock"),
            log: dir.join("tcpresetd.log"),
            name,
            daemon: None,
        };
        let status = Command::new(root().join("scripts/lab.sh"))
            .args(["up", &lab.name])
            .args(options)
            .status()
            .expect("scripts/lab.sh runs");
        assert!(status.success(), "scripts/lab.sh up {} failed", lab.name);
        lab
    }

    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.name)
    }

    /// Starts `tcpresetd` in the sensor with `extra` arguments and waits until it serves.
    pub fn start_daemon(&mut self, extra: &[&str]) {
        self.start_daemon_env(extra, &[]);
    }

    /// [`Lab::start_daemon`] with environment variables for the daemon.
    pub fn start_daemon_env(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        let config = scratch(self, "tcpresetd.toml");
        if !config.exists() {
            self.write_config("");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("sen"),
                env!("CARGO_BIN_EXE_tcpresetd"),
            ])
            .arg("--socket")
            .arg(&self.socket)
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(scratch(self, "state"))
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tcpresetd starts");
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "tcpresetd did not come up:\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes this lab's configuration file (the daemon reads it at start and on SIGHUP).
    pub fn write_config(&self, text: &str) {
        std::fs::write(scratch(self, "tcpresetd.toml"), text).unwrap();
    }

    /// The daemon's process id.
    pub fn daemon_pid(&self) -> i32 {
        self.daemon.as_ref().expect("daemon started").id() as i32
    }

    /// Sends `signal` to the daemon; with SIGKILL, waits for it to die.
    pub fn signal_daemon(&mut self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.daemon_pid()), signal).unwrap();
        if signal == nix::sys::signal::Signal::SIGKILL {
            let mut d = self.daemon.take().unwrap();
            d.wait().unwrap();
        }
    }

    /// Waits up to `timeout` for the daemon to exit; its status, if it did.
    pub fn wait_daemon(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let d = self.daemon.as_mut()?;
        while Instant::now() < deadline {
            if let Some(status) = d.try_wait().ok().flatten() {
                self.daemon = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `tcpreset` command line, run in the sensor with this lab's socket.
    pub fn tcpreset_argv(&self, args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = [
            "ip",
            "netns",
            "exec",
            &self.ns("sen"),
            env!("CARGO_BIN_EXE_tcpreset"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("--socket".into());
        v.push(self.socket.display().to_string());
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    /// One request line straight to the daemon's socket, bypassing the client's own checks.
    pub fn ask(&self, line: &str) -> String {
        use std::io::{BufRead, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        let mut answer = String::new();
        std::io::BufReader::new(&s).read_line(&mut answer).unwrap();
        answer
    }

    /// Runs `tcpreset` in the sensor.
    pub fn tcpreset(&self, args: &[&str]) -> Output {
        let argv = self.tcpreset_argv(args);
        Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("tcpreset runs")
    }

    /// `tcpreset stats --json`.
    pub fn stats(&self) -> Value {
        let out = self.tcpreset(&["stats", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The interfaces the daemon captures on, from `tcpreset stats --json`.
    pub fn capturing(&self) -> Vec<String> {
        self.stats()["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["iface"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `tcpreset list --json`.
    pub fn rules(&self) -> Vec<Value> {
        let out = self.tcpreset(&["list", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn peer(&self, args: &[String]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tcpreset-lab"));
        c.args(args);
        c
    }

    /// `SUB --client-ns .. --server-ns .. --server ADDR:PORT`.
    fn peer_args(&self, sub: &str, route: Route<'_>) -> Vec<String> {
        vec![
            sub.into(),
            "--client-ns".into(),
            self.ns(route.client),
            "--server-ns".into(),
            self.ns(route.server),
            "--server".into(),
            server_addr(route.addr, route.port),
        ]
    }

    /// Asserts that a trial's connection died on both ends; on failure shows the report,
    /// `context` and the daemon's log.
    pub fn assert_killed(&self, report: &Value, context: &str) {
        assert_eq!(
            report["killed_both"],
            true,
            "{context}{report:#}\n{}",
            self.daemon_log()
        );
    }

    /// Asserts whether a connection attempt was established.
    pub fn assert_established(&self, attempt: &Value, established: bool) {
        assert_eq!(
            attempt["established"],
            established,
            "{attempt:#}\n{}",
            self.daemon_log()
        );
    }

    /// The peer's arguments for a connection along `route` in `mode`.
    fn trial_args(&self, route: Route<'_>, mode: &str) -> Vec<String> {
        let mut args = self.peer_args("trial", route);
        args.extend(["--mode".into(), mode.into()]);
        args
    }

    /// A connection client -> the server's port in `mode`; runs `run` once traffic flows.
    pub fn trial(&self, client: &str, port: u16, mode: &str, run: &[String]) -> Value {
        self.trial_to(Route::to_server(client, port), mode, run)
    }

    /// A connection along `route` in `mode`; runs `run` once traffic flows.
    pub fn trial_to(&self, route: Route<'_>, mode: &str, run: &[String]) -> Value {
        let mut args = self.trial_args(route, mode);
        if !run.is_empty() {
            args.push("--run".into());
            args.extend(run.iter().cloned());
        }
        let out = self.peer(&args).output().expect("tcpreset-lab runs");
        parse_report(&out)
    }

    /// Starts a connection client -> server:port that holds for `hold_ms`; returns once it is up.
    pub fn hold(&self, client: &str, port: u16, mode: &str, hold_ms: u64) -> Holder {
        self.hold_to(Route::to_server(client, port), mode, hold_ms)
    }

    /// [`Lab::hold`] along `route`.
    pub fn hold_to(&self, route: Route<'_>, mode: &str, hold_ms: u64) -> Holder {
        let mut args = self.trial_args(route, mode);
        args.extend(["--hold-ms".into(), hold_ms.to_string()]);
        let mut child = self
            .peer(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpreset-lab runs");
        let mut err = child.stderr.take().unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        use std::io::Read;
        while !String::from_utf8_lossy(&seen).contains("READY") {
            match err.read(&mut byte) {
                Ok(1) => seen.push(byte[0]),
                _ => panic!(
                    "holder died before READY: {}",
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
        Holder { child }
    }

    /// One connection attempt client -> server:port against a fresh listener.
    pub fn connect(&self, client: &str, port: u16) -> Value {
        let args = self.peer_args("connect", Route::to_server(client, port));
        let out = self.peer(&args).output().expect("tcpreset-lab runs");
        parse_report(&out)
    }
}

/// Where a lab connection goes: from namespace `client` to `addr:port`, listening in namespace
/// `server` (namespace names without the lab's prefix).
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub client: &'a str,
    pub server: &'a str,
    pub addr: &'a str,
    pub port: u16,
}

impl<'a> Route<'a> {
    /// From `client` to the lab's server.
    pub fn to_server(client: &'a str, port: u16) -> Self {
        Route {
            client,
            server: "srv",
            addr: SERVER,
            port,
        }
    }
}

fn server_addr(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn parse_report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "tcpreset-lab printed nothing: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut v: Value = serde_json::from_str(line).expect("a JSON report");
    v["stderr"] = Value::String(String::from_utf8_lossy(&out.stderr).into_owned());
    v
}

/// A connection held open in the background.
pub struct Holder {
    child: Child,
}

impl Holder {
    /// Waits for the holder's report.
    pub fn report(self) -> Value {
        let out = self.child.wait_with_output().expect("holder finishes");
        parse_report(&out)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(d.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(3);
            while d.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = Command::new(root().join("scripts/lab.sh"))
            .args(["down", &self.name])
            .status();
        if let Some(dir) = self.socket.parent() {
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// The path of a file in this lab's scratch directory.
pub fn scratch(lab: &Lab, file: &str) -> PathBuf {
    lab.socket.parent().unwrap_or(Path::new("/tmp")).join(file)
}

/// tcpdump on the sensor's reset interface, printing every RST the sensor sends.
pub struct RstWatch {
    child: Child,
}

impl RstWatch {
    /// Starts watching; returns once tcpdump listens.
    pub fn start(lab: &Lab) -> RstWatch {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns("sen"),
                "tcpdump",
                "-nn",
                "-l",
                "-Q",
                "out",
                "-i",
                "eth0",
            ])
            .arg("tcp[tcpflags] & tcp-rst != 0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump runs");
        let mut said = std::io::BufReader::new(child.stderr.take().unwrap());
        wait_for_line(&mut said, "listening", "tcpdump");
        RstWatch { child }
    }

    /// Stops watching; the RSTs seen, one line each.
    pub fn stop(self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let out = self.child.wait_with_output().expect("tcpdump stops");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// `tcpreset-lab mirror` in a `--tagged` lab: copies br0's frames onto the sensor's eth1 with
/// `vlans` as tags (one id: 802.1Q, two: QinQ). It stops when dropped.
pub struct Mirror {
    child: Option<Child>,
    stderr: std::io::BufReader<std::process::ChildStderr>,
}

impl Mirror {
    /// Starts copying; returns once the fixture's sockets are bound.
    pub fn start(lab: &Lab, vlans: &[u16]) -> Mirror {
        let ids: Vec<String> = vlans.iter().map(u16::to_string).collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tcpreset-lab"))
            .args([
                "mirror",
                "--ns",
                &lab.ns("sw"),
                "--from",
                "br0",
                "--to",
                "mirror",
            ])
            .args(["--vlan", &ids.join(",")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpreset-lab mirror runs");
        let mut said = std::io::BufReader::new(child.stderr.take().unwrap());
        wait_for_line(&mut said, "READY", "the mirror");
        Mirror {
            child: Some(child),
            stderr: said,
        }
    }

    /// Stops copying; the fixture's counters (`frames`, `tcp_frames`, `send_errors`).
    pub fn stop(mut self) -> Value {
        use std::io::Read;
        let mut child = self.child.take().unwrap();
        drop(child.stdin.take());
        let mut stdout = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        let mut stderr = Vec::new();
        self.stderr.read_to_end(&mut stderr).unwrap();
        let status = child.wait().expect("the mirror stops");
        parse_report(&Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// Writes a capture of `n` SYN segments to `path`; `syn(i)` gives the i-th one's addresses,
/// ports and sequence number (its `kind` and `ack` are ignored).
pub fn write_syns(path: &Path, n: u16, syn: impl Fn(u16) -> tcpreset::wire::Forged) {
    let mut save = pcap::Capture::dead(pcap::Linktype::ETHERNET)
        .unwrap()
        .savefile(path)
        .unwrap();
    for i in 0..n {
        let seg = tcpreset::wire::Forged {
            kind: tcpreset::wire::Kind::Probe,
            ack: Some(0),
            ..syn(i)
        };
        let mut buf = [0u8; 128];
        let len = seg.emit_frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], &mut buf);
        buf[14 + 20 + 13] = 0x02; // SYN instead of ACK (the sniffer does not check checksums)
        let header = pcap::PacketHeader {
            ts: libc::timeval {
                tv_sec: 1,
                tv_usec: i64::from(i),
            },
            caplen: len as u32,
            len: len as u32,
        };
        save.write(&pcap::Packet::new(&header, &buf[..len]));
    }
    save.flush().unwrap();
}

/// Reads `from` until a line contains `needle`; panics if `who` ends first.
fn wait_for_line(from: &mut impl std::io::BufRead, needle: &str, who: &str) {
    let mut line = String::new();
    while !line.contains(needle) {
        line.clear();
        let n = from.read_line(&mut line).unwrap();
        assert!(n > 0, "{who} ended before printing {needle}");
    }
}
