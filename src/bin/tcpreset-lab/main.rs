//! `tcpreset-lab`: the test peer shared by the live tests, the demo and the kill benchmark.
//!
//! It enters the lab's network namespaces itself (a thread calls `setns` before it opens its
//! socket), sets up a real TCP connection between a client and a server namespace, drives a
//! traffic pattern over it, and reports as one JSON line what each end saw and when:
//!
//! - `trial ... --run CMD...`: connect, start the traffic, launch CMD, and measure from the launch
//!   until each end sees its first socket error (or `--timeout-ms`).
//! - `trial ...` without `--run`: connect, print `READY` to stderr, hold for `--hold-ms`, then
//!   report whether the connection survived.
//! - `connect ...`: one connection attempt to a listener it opens itself; reports whether the
//!   connection was established and still alive `--hold-ms` later.
//! - `mirror ...`: copies a bridge's frames onto a sniff interface with VLAN tags added
//!   (see [`mirror`]).
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use nix::sched::{setns, CloneFlags};
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod mirror;
mod register;

#[derive(Parser)]
#[command(name = "tcpreset-lab")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Trial(TrialArgs),
    Connect(ConnectArgs),
    Mirror(mirror::MirrorArgs),
    Register(register::RegisterArgs),
}

#[derive(clap::Args)]
struct Ends {
    /// Network namespace of the client (under /run/netns).
    #[arg(long)]
    client_ns: String,
    /// Network namespace of the server.
    #[arg(long)]
    server_ns: String,
    /// Address the server listens on.
    #[arg(long)]
    server: SocketAddr,
    /// Local address (and port) the client binds to.
    #[arg(long)]
    client_bind: Option<SocketAddr>,
}

#[derive(clap::Args)]
struct TrialArgs {
    #[command(flatten)]
    ends: Ends,
    #[arg(long, value_enum, default_value_t = Mode::Chat)]
    mode: Mode,
    /// Give up waiting for both ends to see an error after this long.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Without --run: how long to hold the connection before reporting.
    #[arg(long, default_value_t = 1000)]
    hold_ms: u64,
    /// The command to launch once traffic flows (e.g. the tcpreset line).
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    run: Vec<String>,
}

#[derive(clap::Args)]
struct ConnectArgs {
    #[command(flatten)]
    ends: Ends,
    #[arg(long, default_value_t = 300)]
    hold_ms: u64,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Mode {
    /// 1 byte every 10 ms each way.
    Chat,
    /// The client writes as fast as it can; the server reads.
    Bulk,
    /// Both write as fast as they can.
    BulkBoth,
    /// Connected, then silent.
    Idle,
}

fn main() {
    let args = Args::parse();
    let result = match args.command {
        Cmd::Trial(t) => trial(t),
        Cmd::Connect(c) => connect(c),
        Cmd::Mirror(m) => mirror::run(m),
        Cmd::Register(r) => register::run_all(r),
    };
    match result {
        Ok(ok) => std::process::exit(if ok { 0 } else { 1 }),
        Err(e) => {
            eprintln!("tcpreset-lab: error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Runs `f` on a thread inside network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).context("setns")?;
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?
}

/// Connects a client to a fresh listener; returns (client, server) sockets.
fn pair(ends: &Ends) -> Result<(TcpStream, TcpStream)> {
    let server = ends.server;
    let listener = in_netns(&ends.server_ns, move || TcpListener::bind(server))?
        .with_context(|| format!("listening on {server}"))?;
    let bind = ends.client_bind;
    let client = in_netns(&ends.client_ns, move || -> std::io::Result<TcpStream> {
        let domain = if server.is_ipv4() {
            socket2::Domain::IPV4
        } else {
            socket2::Domain::IPV6
        };
        let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        if let Some(b) = bind {
            s.set_reuse_address(true)?;
            s.bind(&b.into())?;
        }
        s.connect_timeout(&server.into(), Duration::from_secs(2))?;
        Ok(s.into())
    })?
    .with_context(|| format!("connecting to {server}"))?;
    let (accepted, _) = listener.accept().context("accepting")?;
    Ok((client, accepted))
}

/// The first error an end saw, and when.
#[derive(Default, Clone)]
struct Outcome {
    error: Option<(String, Instant)>,
}

fn kind(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ECONNRESET) => "ECONNRESET".into(),
        Some(libc::EPIPE) => "EPIPE".into(),
        Some(libc::ECONNREFUSED) => "ECONNREFUSED".into(),
        Some(libc::ETIMEDOUT) => "ETIMEDOUT".into(),
        _ => format!("{:?}", e.kind()),
    }
}

struct End {
    outcome: Arc<Mutex<Outcome>>,
    stream: TcpStream,
}

impl End {
    fn start(stream: TcpStream, writes: Option<Duration>, stop: &Arc<AtomicBool>) -> Result<End> {
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        // The first error wins, except that a reset seen by one thread beats an EOF seen by the
        // other: after a RST, whichever of read and write runs first takes the error
        // (ECONNRESET) and the other sees a plain end of stream.
        let record = |o: &Arc<Mutex<Outcome>>, what: String| {
            let mut o = o.lock().expect("outcome lock");
            match &mut o.error {
                None => o.error = Some((what, Instant::now())),
                Some((first, _)) if first == "EOF" && what != "EOF" => *first = what,
                Some(_) => {}
            }
        };
        let mut reader = stream.try_clone()?;
        let (o, s) = (Arc::clone(&outcome), Arc::clone(stop));
        thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => {
                        if !s.load(Ordering::Relaxed) {
                            record(&o, "EOF".into());
                        }
                        return;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        if !s.load(Ordering::Relaxed) {
                            record(&o, kind(&e));
                        }
                        return;
                    }
                }
            }
        });
        if let Some(pause) = writes {
            let mut writer = stream.try_clone()?;
            let (o, s) = (Arc::clone(&outcome), Arc::clone(stop));
            thread::spawn(move || {
                let chunk = vec![b'x'; if pause.is_zero() { 1 << 16 } else { 1 }];
                while !s.load(Ordering::Relaxed) {
                    if let Err(e) = writer.write_all(&chunk) {
                        if !s.load(Ordering::Relaxed) {
                            record(&o, kind(&e));
                        }
                        return;
                    }
                    if !pause.is_zero() {
                        thread::sleep(pause);
                    }
                }
            });
        }
        Ok(End { outcome, stream })
    }

    fn error(&self) -> Option<(String, Instant)> {
        self.outcome.lock().expect("outcome lock").error.clone()
    }
}

fn trial(t: TrialArgs) -> Result<bool> {
    let (client, server) = pair(&t.ends)?;
    let stop = Arc::new(AtomicBool::new(false));
    let every = |p: Duration| Some(p);
    let (cw, sw) = match t.mode {
        Mode::Chat => (
            every(Duration::from_millis(10)),
            every(Duration::from_millis(10)),
        ),
        Mode::Bulk => (every(Duration::ZERO), None),
        Mode::BulkBoth => (every(Duration::ZERO), every(Duration::ZERO)),
        Mode::Idle => (None, None),
    };
    let ends = [
        End::start(client, cw, &stop)?,
        End::start(server, sw, &stop)?,
    ];
    // Let the traffic pattern settle before anything happens.
    thread::sleep(Duration::from_millis(100));
    eprintln!("READY");
    let launched = Instant::now();
    let mut status = None;
    let deadline = if t.run.is_empty() {
        launched + Duration::from_millis(t.hold_ms)
    } else {
        let out = std::process::Command::new(&t.run[0])
            .args(&t.run[1..])
            .output()
            .with_context(|| format!("running {:?}", t.run))?;
        std::io::stderr().write_all(&out.stdout)?;
        std::io::stderr().write_all(&out.stderr)?;
        status = out.status.code();
        launched + Duration::from_millis(t.timeout_ms)
    };
    while Instant::now() < deadline {
        if !t.run.is_empty() && ends.iter().all(|e| e.error().is_some()) {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let report = |e: &End| match e.error() {
        Some((what, at)) => json!({
            "error": what,
            "ms": at.saturating_duration_since(launched).as_secs_f64() * 1e3,
        }),
        None => json!({"error": null, "ms": null}),
    };
    let reset = |e: &End| {
        e.error()
            .is_some_and(|(what, _)| what == "ECONNRESET" || what == "EPIPE")
    };
    let killed_both = reset(&ends[0]) && reset(&ends[1]);
    let survived = ends.iter().all(|e| e.error().is_none());
    println!(
        "{}",
        json!({
            "mode": t.mode.to_possible_value().map(|v| v.get_name().to_owned()),
            "client": report(&ends[0]),
            "server": report(&ends[1]),
            "killed_both": killed_both,
            "survived": survived,
            "run_status": status,
        })
    );
    for e in &ends {
        let _ = e.stream.shutdown(Shutdown::Both);
    }
    Ok(if t.run.is_empty() {
        survived
    } else {
        killed_both
    })
}

fn connect(c: ConnectArgs) -> Result<bool> {
    let result = pair(&c.ends);
    let (established, error) = match result {
        Ok((client, server)) => {
            thread::sleep(Duration::from_millis(c.hold_ms));
            // A connection reset meanwhile shows as an error on a read that does not block.
            client.set_nonblocking(true)?;
            let mut b = [0u8; 1];
            let err = match (&client).read(&mut b) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                Ok(0) => Some("EOF".to_owned()),
                Ok(_) => None,
                Err(e) => Some(kind(&e)),
            };
            drop(server);
            (err.is_none(), err)
        }
        Err(e) => {
            let what = e
                .chain()
                .find_map(|c| c.downcast_ref::<std::io::Error>())
                .map_or_else(|| format!("{e:#}"), kind);
            (false, Some(what))
        }
    };
    println!("{}", json!({"established": established, "error": error}));
    if error
        .as_deref()
        .is_some_and(|e| e.starts_with("setns") || e.contains("netns"))
    {
        bail!("could not enter the namespaces");
    }
    Ok(established)
}
