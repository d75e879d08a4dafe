//! The schedule loop (I/O edge): watches a directory of playbooks, runs each on its schedule and
//! writes its status; a real-time playbook gets a follower thread instead, restarted when its
//! file changes. A playbook that fails to load or panics only affects its own status.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::follow::follow_playbook;
use super::load::load;
use super::run::{run_playbook, RunOptions};
use super::status_store::write_status;
use crate::playbook::act::status::Status;
use crate::playbook::spec::Playbook;

struct Entry {
    modified: Option<SystemTime>,
    playbook: Option<Playbook>,
    next_run: Option<DateTime<Utc>>,
    /// The follower thread of a real-time playbook.
    follower: Option<Follower>,
}

/// A real-time playbook's follower thread and the flag that stops it.
struct Follower {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Follower {
    fn start(path: &Path, playbook: &Playbook, status_dir: &Path) -> std::io::Result<Follower> {
        let stop = Arc::new(AtomicBool::new(false));
        let (path, playbook, status_dir) = (
            path.to_path_buf(),
            playbook.clone(),
            status_dir.to_path_buf(),
        );
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("follow {}", playbook.name))
            .spawn(move || {
                let followed = catch_unwind(AssertUnwindSafe(|| {
                    follow_playbook(&path, &playbook, &status_dir, &flag)
                }));
                if followed.is_err() {
                    tracing::error!(playbook = %playbook.name, "the follower panicked; the playbook is stopped (a bug, please report it)");
                }
            })?;
        Ok(Follower { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Options of [`schedule_dir`].
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    pub status_dir: PathBuf,
    /// Run every valid playbook once at start, then follow the schedules.
    pub first_run_now: bool,
    pub run: RunOptions,
}

/// The playbook files of a directory: `*.yaml` and `*.yml`, sorted.
pub fn playbook_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs the playbooks of `dir` on their schedules until `stop` is set.
pub fn schedule_dir(
    dir: &Path,
    options: &ScheduleOptions,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut entries: BTreeMap<PathBuf, Entry> = BTreeMap::new();
    let mut first = options.first_run_now;
    while !stop.load(Ordering::Relaxed) {
        let now = Utc::now();
        let files = match playbook_files(dir) {
            Ok(f) => f,
            Err(e) => {
                stop_followers(entries);
                return Err(e);
            }
        };
        let (kept, gone): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut entries)
            .into_iter()
            .partition(|(path, _)| files.contains(path));
        entries = kept;
        stop_followers(gone);
        for path in files {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if entries.get(&path).is_some_and(|e| e.modified == modified) {
                continue;
            }
            if let Some(follower) = entries.remove(&path).and_then(|e| e.follower) {
                follower.stop();
            }
            let entry = match load(&path) {
                Ok(p) if p.schedule.is_realtime() => {
                    tracing::info!(file = %path.display(), playbook = %p.name, "loaded real-time playbook");
                    let follower = if p.enabled {
                        match Follower::start(&path, &p, &options.status_dir) {
                            Ok(f) => Some(f),
                            Err(e) => {
                                tracing::error!(playbook = %p.name, "cannot start its follower thread: {e}");
                                None
                            }
                        }
                    } else {
                        None
                    };
                    Entry {
                        modified,
                        next_run: None,
                        playbook: Some(p),
                        follower,
                    }
                }
                Ok(p) => {
                    let next_run = if first {
                        Some(now)
                    } else {
                        next_run_after(&p, now)
                    };
                    tracing::info!(file = %path.display(), playbook = %p.name, next_run = ?next_run, "loaded playbook");
                    Entry {
                        modified,
                        next_run: next_run.filter(|_| p.enabled),
                        playbook: Some(p),
                        follower: None,
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), "invalid playbook: {e}");
                    save(&options.status_dir, &Status::invalid(&path, &e, now));
                    Entry {
                        modified,
                        playbook: None,
                        next_run: None,
                        follower: None,
                    }
                }
            };
            entries.insert(path, entry);
        }
        first = false;
        for (path, entry) in entries.iter_mut() {
            let (Some(playbook), Some(due)) = (&entry.playbook, entry.next_run) else {
                continue;
            };
            if due > now {
                continue;
            }
            let status = run_once(path, playbook, due, now, options.run);
            save(&options.status_dir, &status);
            entry.next_run = next_run_after(playbook, now.max(due));
        }
        let next = entries.values().filter_map(|e| e.next_run).min();
        let wait = next
            .map_or(Duration::from_secs(1), |n| {
                (n - Utc::now()).to_std().unwrap_or_default()
            })
            .min(Duration::from_secs(1));
        std::thread::sleep(wait.max(Duration::from_millis(50)));
    }
    stop_followers(entries);
    Ok(())
}

/// Stops the followers of `entries` and waits for them (each writes its last status).
fn stop_followers(entries: BTreeMap<PathBuf, Entry>) {
    let followers: Vec<Follower> = entries.into_values().filter_map(|e| e.follower).collect();
    for f in &followers {
        f.stop.store(true, Ordering::Relaxed);
    }
    for f in followers {
        f.stop();
    }
}

/// Runs one scheduled run, turning skip windows and panics into a status.
fn run_once(
    path: &Path,
    playbook: &Playbook,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    options: RunOptions,
) -> Status {
    if let Some(reason) = playbook.schedule.skipped(due) {
        return Status {
            file: path.display().to_string(),
            playbook: Some(playbook.name.clone()),
            scheduled_time: Some(due),
            execution_time: Some(now),
            skipped: Some(reason),
            ..Status::default()
        };
    }
    match catch_unwind(AssertUnwindSafe(|| run_playbook(path, playbook, due, now, options))) {
        Ok(status) => {
            tracing::info!(playbook = %playbook.name, ok = status.is_ok(), "ran playbook");
            status
        }
        Err(_) => Status {
            file: path.display().to_string(),
            playbook: Some(playbook.name.clone()),
            execution_time: Some(now),
            error: Some("the run panicked; this is a bug in tcpreset-hunt, please report it with the playbook".into()),
            ..Status::default()
        },
    }
}

/// The playbook's next run after `t`; none, and an error logged, if computing it panics (a bug
/// that then stops this playbook only).
fn next_run_after(playbook: &Playbook, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    catch_unwind(AssertUnwindSafe(|| playbook.schedule.next_after(t)))
        .map_err(|_| {
            tracing::error!(playbook = %playbook.name, "computing the next run panicked; the playbook is stopped (a bug, please report it)");
        })
        .ok()
}

fn save(status_dir: &Path, status: &Status) {
    if let Err(e) = write_status(status_dir, status) {
        tracing::error!(dir = %status_dir.display(), "cannot write status: {e}");
    }
}
