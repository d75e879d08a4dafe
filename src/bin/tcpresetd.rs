//! `tcpresetd`: the reset daemon (foreground), or `--replay` for deterministic offline runs.
use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tcpreset::flows;
use tcpreset::io::daemon::{Config, Daemon};
use tcpreset::io::{control, inject::Injector, replay};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

/// Resets the TCP connections of hosts named by rules, seen on a monitoring interface.
#[derive(Parser, Debug)]
#[command(name = "tcpresetd", version)]
struct Args {
    /// Control socket path.
    #[arg(long, env = "TCPRESET_SOCKET", default_value = control::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Capture this sniff interface from the start, even with no rule, so that connections
    /// opened before a rule are known and silent ones die at once (repeatable).
    #[arg(long, value_name = "IFACE")]
    track: Vec<String>,
    /// Most TCP flows tracked per sniff interface (0: no tracking).
    #[arg(long, value_name = "N", default_value_t = flows::DEFAULT_MAX_FLOWS)]
    max_flows: usize,
    /// Seconds after which a tracked flow with no traffic is forgotten.
    #[arg(long, value_name = "SECONDS", default_value_t = flows::DEFAULT_IDLE.as_secs())]
    flow_idle: u64,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Replay this capture instead of sniffing (needs --rules and --inject-to).
    #[arg(long, value_name = "IN.pcap", requires_all = ["rules", "inject_to"])]
    replay: Option<PathBuf>,
    /// Rules for --replay: a JSON array of {engid, host, port, start, seconds}.
    #[arg(long, value_name = "RULES.json", requires = "replay")]
    rules: Option<PathBuf>,
    /// Where --replay writes the RSTs it would inject, as Ethernet frames.
    #[arg(long, value_name = "OUT.pcap", requires = "replay")]
    inject_to: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_json);
    let result = match (&args.replay, &args.rules, &args.inject_to) {
        (Some(input), Some(rules), Some(output)) => run_replay(input, rules, output),
        _ => run_daemon(
            &args.socket,
            Config {
                track: args.track.clone(),
                max_flows: args.max_flows,
                flow_idle: Duration::from_secs(args.flow_idle),
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpresetd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run_replay(input: &Path, rules: &Path, output: &Path) -> Result<()> {
    let s = replay::run(input, rules, output)?;
    println!(
        "replayed {} frames ({} not TCP or not parsed, {} matched a rule); wrote {} RSTs to {}",
        s.counters.frames,
        s.counters.skipped,
        s.counters.matched,
        s.rsts,
        output.display()
    );
    Ok(())
}

fn run_daemon(socket: &Path, config: Config) -> Result<()> {
    Injector::new()
        .prepare("lo")
        .context("tcpresetd needs raw sockets to inject RSTs")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let daemon = Daemon::start(config).context("starting the tracked captures")?;
        let listener = bind(socket)?;
        tracing::info!(socket = %socket.display(), "tcpresetd ready");
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        };
        control::serve(listener, daemon, shutdown).await;
        let _ = std::fs::remove_file(socket);
        tracing::info!("tcpresetd stopped");
        Ok(())
    })
}

/// Binds the control socket, replacing a stale one but never a live daemon's.
fn bind(socket: &Path) -> Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the socket directory {}", dir.display()))?;
    }
    if socket.exists() {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            bail!(
                "another tcpresetd is already serving {}; stop it first or pass another --socket",
                socket.display()
            );
        }
        std::fs::remove_file(socket)
            .with_context(|| format!("removing the stale socket {}", socket.display()))?;
    }
    let listener = UnixListener::bind(socket)
        .with_context(|| format!("binding the control socket {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting the mode of {}", socket.display()))?;
    Ok(listener)
}
