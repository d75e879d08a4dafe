//! tcpreset's build tools, run as `cargo xtask COMMAND` (alias in `.cargo/config.toml`).
//!
//! - `docs OUT_DIR`: man pages and shell completions generated from the clap definitions;
//! - `captures OUT.pcap RULES.json [...]`: the synthetic capture and rules of the benchmarks;
//! - `stage --destdir DIR [--prefix /usr]`: the release binaries, man pages, unit, sysusers
//!   snippet, configuration, playbooks and docs in their installed layout, the one tree that
//!   `scripts/install.sh` and the `.deb` (`scripts/build-deb.sh`) both install.
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod captures;
mod docs;
mod stage;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "tcpreset's build tools")]
struct Args {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write the man pages (OUT_DIR/man/) and completions (OUT_DIR/completions/{bash,zsh,fish}/).
    Docs {
        /// Directory to write into (created if missing).
        out_dir: PathBuf,
    },
    /// Write a synthetic capture of many interleaved TCP flows and a rules file for it.
    Captures(captures::Spec),
    /// Build the release binaries and stage every installed file under DESTDIR.
    Stage(stage::Layout),
}

fn main() -> Result<()> {
    match Args::parse().command {
        Task::Docs { out_dir } => {
            docs::write(&out_dir)?;
            println!("wrote man pages and completions to {}", out_dir.display());
        }
        Task::Captures(spec) => captures::write(&spec)?,
        Task::Stage(layout) => {
            let files = stage::stage(&layout)?;
            println!("staged {files} files in {}", layout.destdir.display());
        }
    }
    Ok(())
}
