//! `tcpresetd` as a service: the configuration file read, raw sockets checked, the daemon started
//! on this host, the control socket bound, readiness and watchdog pings for systemd, SIGHUP
//! reloads, the metrics file, the reset interface watch, and a clean stop on SIGTERM or SIGINT.
use super::control::{self, BindError};
use super::daemon::{self, Daemon};
use super::inject::{InjectError, Injector};
use super::metrics;
use super::rules_file::RulesFile;
use super::sensor::HostSensor;
use crate::cli::daemon::DaemonArgs;
use crate::config::{self, Config, ConfigError};
use crate::time::WallClock;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// What kept the service from running.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("reading the configuration {path}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("tcpresetd needs raw sockets to inject RSTs")]
    RawSockets(#[source] InjectError),
    #[error("starting the tokio runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Start(#[from] daemon::StartError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("installing the {0} handler")]
    Signal(&'static str, #[source] std::io::Error),
}

/// Reads the configuration: an explicit path must exist; the default may be absent.
pub fn load_config(path: Option<&Path>) -> Result<Config, ServiceError> {
    let (path, explicit) = match path {
        Some(p) => (p.to_owned(), true),
        None => (PathBuf::from(config::DEFAULT_PATH), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Config::parse(&path.display().to_string(), &text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Config::default()),
        Err(source) => Err(ServiceError::ReadConfig { path, source }),
    }
}

/// Runs the daemon with `config` (the file with `args` applied) until SIGTERM or SIGINT.
pub fn run(args: &DaemonArgs, config: Config) -> Result<(), ServiceError> {
    Injector::new()
        .prepare("lo")
        .map_err(ServiceError::RawSockets)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServiceError::Runtime)?;
    runtime.block_on(async {
        let rules_file = RulesFile::new(&config.state_dir);
        let daemon = Daemon::start(
            &config,
            Arc::new(HostSensor),
            Arc::new(WallClock),
            Some(rules_file),
        )?;
        let listener = control::bind(&config.socket, &config.socket_group)?;
        tracing::info!(socket = %config.socket.display(), "tcpresetd ready");
        let status = format!("listening on {}", config.socket.display());
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&status),
        ]);
        let background = [
            tokio::spawn(watchdog()),
            tokio::spawn(reload_on_hup(args.clone(), Arc::clone(&daemon))),
            tokio::spawn(write_metrics(
                config.metrics_file.clone(),
                Arc::clone(&daemon),
            )),
            tokio::spawn(watch_interfaces(Arc::clone(&daemon))),
        ];
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| ServiceError::Signal("SIGTERM", e))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| ServiceError::Signal("SIGINT", e))?;
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
async fn reload_on_hup(args: DaemonArgs, daemon: Arc<Daemon>) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload needs a restart");
        return;
    };
    while hup.recv().await.is_some() {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
        let status = match load_config(args.config.as_deref()) {
            Ok(c) => {
                let config = args.apply(c);
                let d = Arc::clone(&daemon);
                let _ = tokio::task::spawn_blocking(move || d.reload(&config)).await;
                "configuration reloaded".to_owned()
            }
            Err(e) => {
                let e = one_line(&e);
                tracing::error!("configuration not reloaded, keeping the old one: {e}");
                format!("configuration not reloaded, keeping the old one: {e}")
            }
        };
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&status),
        ]);
    }
}

/// An error and its causes on one line, as `tcpresetd: error:` prints them.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

/// Looks at the interfaces every [`daemon::RESET_IF_PROBE_EVERY`] (a poll, not netlink events:
/// one `getifaddrs` per tick serves both watchers): the daemon logs each change of a reset
/// interface, its captures reopen their sockets when one returns, and tracking follows the
/// sniff ports.
async fn watch_interfaces(daemon: Arc<Daemon>) {
    let mut tick = tokio::time::interval(daemon::RESET_IF_PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let d = Arc::clone(&daemon);
        let _ = tokio::task::spawn_blocking(move || d.watch_interfaces(d.now())).await;
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
        let text = metrics::render(&daemon.stats(daemon.now()));
        if let Err(e) = metrics::write_atomically(&path, &text) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the metrics file");
        }
    }
}
