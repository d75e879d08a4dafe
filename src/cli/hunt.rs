//! `tcpreset-hunt`'s command line (here, not in the binary, so man pages can be generated from it).
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Where `schedule` writes and `status` reads each playbook's last status.
pub const DEFAULT_STATUS_DIR: &str = "/var/lib/tcpreset-hunt";

/// Run threat-hunting playbooks over sensor logs (Suricata EVE, Zeek, NDJSON) and act on what
/// they find: run `tcpreset` lines locally or over SSH, post webhooks, append alerts.
#[derive(Parser, Debug)]
#[command(
    name = "tcpreset-hunt",
    version,
    about = "Run threat-hunting playbooks over sensor logs"
)]
pub struct HuntArgs {
    #[command(subcommand)]
    pub command: HuntCommand,
}

/// What `tcpreset-hunt` is asked to do.
#[derive(Subcommand, Debug)]
pub enum HuntCommand {
    /// Validate playbook files; print each problem with its file and line.
    Check {
        /// Playbook files (YAML).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run one playbook now.
    Run {
        /// The playbook file (YAML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print what each action would do instead of doing it.
        #[arg(long)]
        dry_run: bool,
        /// Run as if the time were this (RFC 3339); the lookback window ends here.
        #[arg(long, value_name = "TIME", value_parser = parse_now)]
        now: Option<DateTime<Utc>>,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
        /// Also print `ctx.payload` as the conditions and templates saw it (and the request sent
        /// to a cluster), as JSON after the status.
        #[arg(long)]
        payload: bool,
        /// Also write the status here, as the scheduler does.
        #[arg(long, value_name = "DIR")]
        status_dir: Option<PathBuf>,
        /// Threads that parse the logs (default: one per core).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: Option<u16>,
    },
    /// Run a directory of playbooks on their schedules until stopped (SIGINT/SIGTERM).
    Schedule {
        /// Directory of playbooks (*.yaml, *.yml), reloaded when a file changes.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Where each playbook's last status is written.
        #[arg(long, value_name = "DIR", env = "TCPRESET_HUNT_STATUS_DIR", default_value = DEFAULT_STATUS_DIR)]
        status_dir: PathBuf,
        /// Run every playbook once at start, then follow the schedules.
        #[arg(long)]
        first_run_now: bool,
    },
    /// Show the last status of each scheduled playbook.
    Status {
        /// Where `schedule` writes the statuses.
        #[arg(long, value_name = "DIR", env = "TCPRESET_HUNT_STATUS_DIR", default_value = DEFAULT_STATUS_DIR)]
        status_dir: PathBuf,
        /// Print the statuses as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `--now`: an RFC 3339 time, its offset included.
fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!("`{text}` is not an RFC 3339 time with its offset; end it with `Z` (UTC) or an offset, such as 2025-06-02T10:05:00Z or 2025-06-02T12:05:00+02:00")
        })
}
