//! Where the daemon's log goes: `tracing` to stderr, as text or JSON lines, filtered by
//! `RUST_LOG` (default `info`).
use std::io::IsTerminal;

/// Installs the global subscriber; call once, before anything logs.
pub fn init(json: bool) {
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
