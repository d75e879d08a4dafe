//! `tcpresetd`: the reset daemon (foreground), or `--replay` for deterministic offline runs.
use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tcpreset::cli::daemon::DaemonArgs;

/// mimalloc: loading 100,000 rules and freeing them costs a third of what glibc's malloc does,
/// and the capture threads' short-lived buffers stay thread-local.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (the same index in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Returns freed memory to the system at once instead of after 10 ms: a flow table that grows
/// to a million flows frees its old, smaller arrays as it goes, and they must not add to the peak.
/// mimalloc's own `MIMALLOC_PURGE_DELAY`, when set, still wins.
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an option value; mimalloc is linked as the allocator.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
}
use tcpreset::config::{self, Config};
use tcpreset::flows::FlowTable;
use tcpreset::io::daemon::{self, Daemon};
use tcpreset::io::rules_file::RulesFile;
use tcpreset::io::{auth, control, inject::Injector, metrics, replay_files};
use tcpreset::time::Instant;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    let args = DaemonArgs::parse();
    let result = match (&args.replay, &args.rules, &args.inject_to) {
        (Some(input), Some(rules), Some(output)) => {
            init_logging(args.log_json);
            // Replay tracks flows only when asked to (--max-flows N).
            let flows = args
                .max_flows
                .filter(|n| *n > 0)
                .map(|n| FlowTable::new(n, Config::default().flow_idle()));
            run_replay(input, rules, output, flows)
        }
        _ => load_config(args.config.as_deref()).and_then(|c| {
            let config = args.apply(c);
            init_logging(config.log_json);
            run_daemon(&args, config)
        }),
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

/// Reads the configuration: an explicit path must exist; the default may be absent.
fn load_config(path: Option<&Path>) -> Result<Config> {
    let (path, explicit) = match path {
        Some(p) => (p.to_owned(), true),
        None => (PathBuf::from(config::DEFAULT_PATH), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Config::parse(&path.display().to_string(), &text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Config::default()),
        Err(e) => Err(e).with_context(|| format!("reading the configuration {}", path.display())),
    }
}

fn run_replay(input: &Path, rules: &Path, output: &Path, flows: Option<FlowTable>) -> Result<()> {
    let s = replay_files::run(input, rules, output, flows)?;
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

fn run_daemon(args: &DaemonArgs, config: Config) -> Result<()> {
    Injector::new()
        .prepare("lo")
        .context("tcpresetd needs raw sockets to inject RSTs")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let state = RulesFile::new(&config.state_dir);
        let daemon =
            Daemon::start(&config, Some(state)).context("starting the tracked captures")?;
        let listener = bind(&config.socket, &config.socket_group)?;
        tracing::info!(socket = %config.socket.display(), "tcpresetd ready");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let background = [
            tokio::spawn(watchdog()),
            tokio::spawn(reload_on_hup(
                args.config.clone(),
                args.clone(),
                Arc::clone(&daemon),
            )),
            tokio::spawn(write_metrics(
                config.metrics_file.clone(),
                Arc::clone(&daemon),
            )),
            tokio::spawn(watch_reset_interfaces(Arc::clone(&daemon))),
        ];
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        };
        control::serve(listener, daemon, shutdown).await;
        for task in background {
            task.abort();
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        let _ = std::fs::remove_file(&config.socket);
        tracing::info!("tcpresetd stopped");
        Ok(())
    })
}

/// Pings systemd's watchdog at half its interval, if it asked for pings.
async fn watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tick.tick().await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
    }
}

/// SIGHUP re-reads the configuration; a bad file is logged and the old one kept.
async fn reload_on_hup(path: Option<PathBuf>, overrides: DaemonArgs, daemon: Arc<Daemon>) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload needs a restart");
        return;
    };
    while hup.recv().await.is_some() {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
        match load_config(path.as_deref()) {
            Ok(c) => {
                let config = overrides.apply(c);
                let d = Arc::clone(&daemon);
                let _ = tokio::task::spawn_blocking(move || d.reload(&config)).await;
            }
            Err(e) => tracing::error!("configuration not reloaded, keeping the old one: {e:#}"),
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}

/// Probes the rules' reset interfaces every [`daemon::RESET_IF_PROBE_EVERY`]; the daemon logs
/// each change and its captures reopen their sockets when an interface returns.
async fn watch_reset_interfaces(daemon: Arc<Daemon>) {
    let mut tick = tokio::time::interval(daemon::RESET_IF_PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let d = Arc::clone(&daemon);
        let _ = tokio::task::spawn_blocking(move || d.watch_reset_interfaces(Instant::now())).await;
    }
}

/// Rewrites the Prometheus text file every 10 seconds.
async fn write_metrics(path: Option<PathBuf>, daemon: Arc<Daemon>) {
    let Some(path) = path else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        let text = metrics::render(&daemon.stats(Instant::now()));
        if let Err(e) = metrics::write_atomically(&path, &text) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the metrics file");
        }
    }
}

/// Binds the control socket, replacing a stale one but never a live daemon's; the directory
/// and the socket belong to `group` (mode 0750 and 0660) so its members may connect.
fn bind(socket: &Path, group: &str) -> Result<UnixListener> {
    let gid = auth::group_gid(group);
    if gid.is_none() {
        tracing::warn!("group '{group}' does not exist: only root can use the socket (create it, or set socket_group)");
    }
    if let Some(dir) = socket.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the socket directory {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
                .with_context(|| format!("setting the mode of {}", dir.display()))?;
            if let Some(gid) = gid {
                nix::unistd::chown(dir, None, Some(gid))
                    .with_context(|| format!("giving {} to group {group}", dir.display()))?;
            }
        }
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
    if let Some(gid) = gid {
        nix::unistd::chown(socket, None, Some(gid))
            .with_context(|| format!("giving {} to group {group}", socket.display()))?;
    }
    Ok(listener)
}
