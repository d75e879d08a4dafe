//! `tcpreset-hunt`: check, run and schedule threat-hunting playbooks, and show their last status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Utc;
use clap::Parser;
use tcpreset::cli::hunt::{HuntArgs, HuntCommand};
use tcpreset::playbook::io::load::load;
use tcpreset::playbook::io::run::{run_playbook, RunOptions};
use tcpreset::playbook::io::scheduler::{schedule_dir, ScheduleOptions};
use tcpreset::playbook::io::status_store::{read_statuses, status_json, write_status};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(HuntArgs::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tcpreset-hunt: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Returns whether everything went well.
fn run(args: HuntArgs) -> Result<bool> {
    match args.command {
        HuntCommand::Check { files } => check(&files),
        HuntCommand::Run {
            file,
            dry_run,
            now,
            json,
            payload,
            status_dir,
            threads,
        } => {
            let playbook = match load(&file) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(false);
                }
            };
            let now = now.unwrap_or_else(Utc::now);
            let defaults = RunOptions::default();
            let options = RunOptions {
                dry_run,
                threads: threads.map_or(defaults.threads, usize::from),
            };
            let status = run_playbook(&file, &playbook, now, now, options);
            if let Some(dir) = status_dir {
                write_status(&dir, &status)
                    .with_context(|| format!("cannot write the status to {}", dir.display()))?;
            }
            if json {
                let mut out = status_json(&status);
                if payload {
                    out["payload"] = status.payload.clone().unwrap_or_default();
                }
                print_out(&format!("{}\n", serde_json::to_string_pretty(&out)?))?;
            } else {
                print_out(&status.summary())?;
                if let (true, Some(p)) = (payload, &status.payload) {
                    print_out(&format!("{}\n", serde_json::to_string_pretty(p)?))?;
                }
            }
            Ok(status.is_ok())
        }
        HuntCommand::Schedule {
            dir,
            status_dir,
            first_run_now,
        } => {
            let stop = Arc::new(AtomicBool::new(false));
            watch_signals(Arc::clone(&stop))?;
            let options = ScheduleOptions {
                status_dir,
                first_run_now,
                run: RunOptions::default(),
            };
            schedule_dir(&dir, &options, &stop)
                .with_context(|| format!("cannot read the playbook directory {}", dir.display()))?;
            Ok(true)
        }
        HuntCommand::Status { status_dir, json } => show_status(&status_dir, json),
    }
}

fn check(files: &[PathBuf]) -> Result<bool> {
    let mut ok = true;
    for file in files {
        match load(file) {
            Ok(p) => {
                print_out(&format!("{}: ok ({})\n", file.display(), p.name))?;
                for w in &p.warnings {
                    eprintln!("{}:{}: warning: {}", file.display(), w.line, w.message);
                }
            }
            Err(e) => {
                ok = false;
                eprintln!("{e}");
            }
        }
    }
    Ok(ok)
}

fn show_status(dir: &Path, json: bool) -> Result<bool> {
    let statuses = read_statuses(dir).with_context(|| {
        format!(
            "cannot read statuses in {}; is `tcpreset-hunt schedule` writing there (--status-dir)?",
            dir.display()
        )
    })?;
    if json {
        let list: Vec<_> = statuses.iter().map(status_json).collect();
        print_out(&format!("{}\n", serde_json::to_string_pretty(&list)?))?;
    } else if statuses.is_empty() {
        print_out(&format!(
            "no playbook has run yet (status directory {})\n",
            dir.display()
        ))?;
    } else {
        for s in &statuses {
            print_out(&s.summary())?;
        }
    }
    Ok(statuses.iter().all(|s| s.is_ok()))
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn print_out(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Sets `stop` on SIGINT or SIGTERM.
fn watch_signals(stop: Arc<AtomicBool>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                stop.store(true, Ordering::Relaxed);
            });
        })?;
    Ok(())
}
