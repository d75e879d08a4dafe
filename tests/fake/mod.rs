//! The in-process harness: a fake [`Sensor`] whose interfaces the test sets and whose captures
//! record the rule snapshots they get, a clock on tokio's (pausable) time, and a control server
//! on a socket in a temporary directory.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tcpreset::config::Config;
use tcpreset::interfaces::{IfaceError, Link, Links};
use tcpreset::io::capture::{CaptureError, CaptureOptions, CaptureStats};
use tcpreset::io::control::{self, ServeLimits};
use tcpreset::io::daemon::Daemon;
use tcpreset::io::inject::InjectError;
use tcpreset::io::rules_file::RulesFile;
use tcpreset::io::sensor::{RunningCapture, Sensor};
use tcpreset::proto::Response;
use tcpreset::rules::Matcher;
use tcpreset::time::{Clock, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the fake captures saw: which opened and closed, and each one's latest rules.
#[derive(Default)]
struct Record {
    /// Every open asked for, successful or not.
    tried: Vec<String>,
    opened: Vec<String>,
    closed: Vec<String>,
    matchers: BTreeMap<String, Arc<Matcher>>,
}

/// A held capture open: told when it is entered, waits for the release.
struct Hold {
    entered: Option<oneshot::Sender<()>>,
    release: mpsc::Receiver<()>,
}

pub struct FakeSensor {
    links: Mutex<Links>,
    record: Arc<Mutex<Record>>,
    failing: Mutex<BTreeSet<String>>,
    hold: Mutex<Option<Hold>>,
    entered: Mutex<Option<oneshot::Receiver<()>>>,
}

fn link(ifindex: u32, up: bool, addrs: &[&str]) -> Link {
    Link {
        ifindex,
        up,
        running: up,
        loopback: ifindex == 1,
        enslaved: false,
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
    }
}

impl FakeSensor {
    /// The lab's sensor: `lo`; `eth0` resets (10.77.0.254/24, fd77::fe); `eth1` and `eth3` sniff
    /// (no address); `eth2` is down.
    pub fn lab() -> Arc<FakeSensor> {
        Self::with_links(
            [
                ("lo", link(1, true, &["127.0.0.1", "::1"])),
                (
                    "eth0",
                    link(2, true, &["10.77.0.254", "fd77::fe", "fe80::2"]),
                ),
                ("eth1", link(3, true, &[])),
                ("eth2", link(4, false, &[])),
                ("eth3", link(5, true, &[])),
            ]
            .into_iter()
            .map(|(n, l)| (n.to_owned(), l))
            .collect::<Links>()
            .with_v4_subnet("eth0", "10.77.0.254".parse().unwrap(), 24),
        )
    }

    pub fn with_links(links: Links) -> Arc<FakeSensor> {
        Arc::new(FakeSensor {
            links: Mutex::new(links),
            record: Arc::default(),
            failing: Mutex::default(),
            hold: Mutex::default(),
            entered: Mutex::default(),
        })
    }

    /// Sets (or, with `None`, removes) interface `name`, as if the kernel had changed it.
    pub fn set_link(&self, name: &str, link: Option<Link>) {
        let mut links = self.links.lock().unwrap();
        let mut all: BTreeMap<String, Link> = links
            .iter()
            .map(|(n, l)| (n.to_owned(), l.clone()))
            .collect();
        match link {
            Some(l) => all.insert(name.to_owned(), l),
            None => all.remove(name),
        };
        *links = all.into_iter().collect();
    }

    /// Interface `name` as the sensor has it now.
    pub fn link(&self, name: &str) -> Link {
        self.links.lock().unwrap().get(name).expect("known").clone()
    }

    /// Opening a capture on `iface` fails as libpcap's activation would.
    pub fn fail_open(&self, iface: &str) {
        self.failing.lock().unwrap().insert(iface.to_owned());
    }

    /// The next capture open blocks until the returned sender is used.
    pub fn hold_next_open(&self) -> mpsc::Sender<()> {
        let (tx, release) = mpsc::channel();
        let (entered, told) = oneshot::channel();
        *self.hold.lock().unwrap() = Some(Hold {
            entered: Some(entered),
            release,
        });
        *self.entered.lock().unwrap() = Some(told);
        tx
    }

    /// Waits until the held open has begun.
    pub async fn wait_for_held_open(&self) {
        let told = self
            .entered
            .lock()
            .unwrap()
            .take()
            .expect("an open is held");
        told.await.unwrap();
    }

    pub fn tried(&self) -> Vec<String> {
        self.record.lock().unwrap().tried.clone()
    }

    pub fn opened(&self) -> Vec<String> {
        self.record.lock().unwrap().opened.clone()
    }

    pub fn closed(&self) -> Vec<String> {
        self.record.lock().unwrap().closed.clone()
    }

    /// The hosts of the rules the capture on `iface` holds now.
    pub fn rule_hosts(&self, iface: &str) -> Vec<String> {
        let record = self.record.lock().unwrap();
        let matcher = record.matchers.get(iface).expect("a capture");
        matcher
            .host_ports()
            .iter()
            .map(|(h, _)| h.to_string())
            .collect()
    }
}

impl Sensor for FakeSensor {
    fn links(&self) -> Result<Links, IfaceError> {
        Ok(self.links.lock().unwrap().clone())
    }

    fn prepare_reset(&self, _reset_if: &str) -> Result<(), InjectError> {
        Ok(())
    }

    fn open_capture(
        &self,
        iface: &str,
        matcher: Arc<Matcher>,
        _options: CaptureOptions,
    ) -> Result<Box<dyn RunningCapture>, CaptureError> {
        let hold = self.hold.lock().unwrap().take();
        if let Some(mut hold) = hold {
            let _ = hold.entered.take().unwrap().send(());
            hold.release.recv().unwrap();
        }
        self.record.lock().unwrap().tried.push(iface.to_owned());
        if self.failing.lock().unwrap().contains(iface) {
            return Err(CaptureError::new("pcap_activate", iface, "No such device"));
        }
        let mut record = self.record.lock().unwrap();
        record.opened.push(iface.to_owned());
        record.matchers.insert(iface.to_owned(), matcher);
        Ok(Box::new(FakeCapture {
            iface: iface.to_owned(),
            record: Arc::clone(&self.record),
            stats: CaptureStats::default(),
        }))
    }
}

struct FakeCapture {
    iface: String,
    record: Arc<Mutex<Record>>,
    stats: CaptureStats,
}

impl RunningCapture for FakeCapture {
    fn update(&self, matcher: Arc<Matcher>) {
        let mut record = self.record.lock().unwrap();
        record.matchers.insert(self.iface.clone(), matcher);
    }

    fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    fn is_running(&self) -> bool {
        true
    }
}

impl Drop for FakeCapture {
    fn drop(&mut self) {
        let mut record = self.record.lock().unwrap();
        record.closed.push(self.iface.clone());
        record.matchers.remove(&self.iface);
    }
}

/// The wall clock at start, moved on by tokio's clock: a paused test runtime moves it too.
struct TokioClock {
    base: Instant,
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        self.base + self.start.elapsed()
    }
}

/// A request line of protocol version 1 with `body`'s fields.
pub fn line(body: &str) -> String {
    format!(r#"{{"v":1,{body}}}"#)
}

/// One client connection.
pub struct Conn {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl Conn {
    fn of(stream: UnixStream) -> Conn {
        let (read, write) = stream.into_split();
        Conn {
            lines: BufReader::new(read).lines(),
            write,
        }
    }
}

/// Sends `request` and reads the answer.
pub async fn ask(conn: &mut Conn, request: &str) -> Response {
    conn.send(request.as_bytes()).await;
    conn.send(b"\n").await;
    conn.answer().await
}

impl Conn {
    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.unwrap();
    }

    /// Reads the next answer.
    pub async fn answer(&mut self) -> Response {
        let answer = self.lines.next_line().await.unwrap().expect("an answer");
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
    }
}

/// Whether the server closes `conn` (within 5 s, on tokio's clock).
pub async fn closed_by_server(conn: &mut Conn) -> bool {
    let next = tokio::time::timeout(Duration::from_secs(5), conn.lines.next_line()).await;
    matches!(next, Ok(Ok(None)))
}

/// The daemon and its control server.
pub struct Server {
    pub sensor: Arc<FakeSensor>,
    pub daemon: Arc<Daemon>,
    pub config: Config,
    dir: tempfile::TempDir,
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves with the configuration `text`; the test's own user is allowed unless `text`
    /// says who is.
    pub async fn start(text: &str, sensor: Arc<FakeSensor>) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), text, sensor).await
    }

    /// [`Server::start`] in `dir`, with the rules file a server before left there.
    pub async fn start_in(dir: tempfile::TempDir, text: &str, sensor: Arc<FakeSensor>) -> Server {
        Self::start_limited(dir, text, sensor, ServeLimits::default()).await
    }

    /// [`Server::start_in`] with the control socket's `limits`.
    pub async fn start_limited(
        dir: tempfile::TempDir,
        text: &str,
        sensor: Arc<FakeSensor>,
        limits: ServeLimits,
    ) -> Server {
        let mut text = text.to_owned();
        if !text.contains("track") {
            // Captures open and close with the rules unless a test asks for tracking.
            text.push_str("track = []\n");
        }
        if !text.contains("allowed_users") {
            text.push_str(&format!(
                "allowed_users = [\"{}\"]\n",
                nix::unistd::geteuid()
            ));
        }
        let mut config = Config::parse("test.toml", &text).unwrap();
        config.socket = dir.path().join("tcpresetd.sock");
        config.state_dir = dir.path().join("state");
        let clock = TokioClock {
            base: Instant::now(),
            start: tokio::time::Instant::now(),
        };
        let rules_file = RulesFile::new(&config.state_dir);
        let daemon = Daemon::start(&config, sensor.clone(), Arc::new(clock), Some(rules_file))
            .expect("the daemon starts");
        let listener = control::bind(&config.socket, "tcpreset-test-no-such-group").unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(control::serve_with(
            listener,
            Arc::clone(&daemon),
            shutdown,
            limits,
        ));
        Server {
            sensor,
            daemon,
            socket: config.socket.clone(),
            config,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A server whose socket anyone may open, so that only the daemon's own check stands.
    pub async fn start_open(text: &str) -> Server {
        use std::os::unix::fs::PermissionsExt;
        let server = Self::start(text, FakeSensor::lab()).await;
        for (path, mode) in [(server.dir.path(), 0o755), (server.socket.as_path(), 0o666)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        server
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub async fn connect(&self) -> Conn {
        Conn::of(UnixStream::connect(&self.socket).await.unwrap())
    }

    /// Connects as a user that is not root: uid and gid 65534 when the test runs as root (from
    /// a thread whose own credentials the raw syscalls change; glibc's wrappers would change the
    /// whole process's), the test's own user otherwise.
    pub async fn connect_as_user(&self) -> Conn {
        let socket = self.socket.clone();
        let stream = std::thread::spawn(move || connect_as_nobody(&socket))
            .join()
            .unwrap();
        stream.set_nonblocking(true).unwrap();
        Conn::of(UnixStream::from_std(stream).unwrap())
    }

    /// Signals shutdown; the handle completes when `serve` has returned.
    pub fn begin_stop(&mut self) -> JoinHandle<()> {
        let _ = self.stop.take().expect("running").send(());
        self.task.take().expect("running")
    }

    /// Closes `conn`, shuts down and waits for `serve` to return.
    pub async fn stop(mut self, conn: Conn) {
        drop(conn);
        self.begin_stop().await.unwrap();
    }

    /// [`Server::stop`], keeping the directory for the next server.
    pub async fn stop_keeping_files(mut self, conn: Conn) -> tempfile::TempDir {
        drop(conn);
        self.begin_stop().await.unwrap();
        self.dir
    }
}

/// The uid [`Server::connect_as_user`] connects as.
pub fn user_uid() -> u32 {
    match nix::unistd::geteuid().as_raw() {
        0 => 65534,
        uid => uid,
    }
}

fn connect_as_nobody(socket: &Path) -> std::os::unix::net::UnixStream {
    if nix::unistd::geteuid().is_root() {
        // SAFETY: plain credential syscalls on this thread only; their results are checked.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()),
                0
            );
            assert_eq!(libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534), 0);
            assert_eq!(libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534), 0);
        }
    }
    std::os::unix::net::UnixStream::connect(socket).unwrap()
}
