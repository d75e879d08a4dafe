//! Real-time playbooks (I/O edge): a follower thread per playbook whose schedule is
//! `realtime: {lookback: ...}`. It waits on inotify (through `notify`) for its source files'
//! directories, reads only the new bytes ([`tail`]), keeps the hits of the lookback in a
//! [`HitWindow`], and evaluates the conditions and actions once per batch of new records (a
//! burst of lines read in one go is one evaluation). Each action acts once per result within
//! its `suppress` span ([`Suppressor`]). Bad input is reported with its file and line in the
//! status and the log, and the follower goes on.
//!
//! - [`tail`]: following files across rotations, whole lines only.
//! - [`sink`]: records of new lines into the window, bad ones into the problems.

pub mod sink;
pub mod tail;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use notify::{RecursiveMode, Watcher};

use self::sink::{Counts, Problems, WindowSink};
use self::tail::{expand, FileId, Tails};
use super::load::load_watchlists;
use super::run::{carry_plan, conclude, search_notes, Carry, Evaluation};
use super::status_store::write_status;
use crate::playbook::act::action::{Action, Plan};
use crate::playbook::act::status::{
    ActionOutcome, FollowedFile, RealtimeStatus, SearchStatus, Status, TimedAction,
};
use crate::playbook::act::suppress::{Suppressor, RETRY_AFTER_FAILURE};
use crate::playbook::record::batch::BatchParser;
use crate::playbook::record::format::{FieldPlan, Format};
use crate::playbook::record::ndjson::{self, NdjsonParser};
use crate::playbook::search::backend::SearchOutput;
use crate::playbook::search::evaluator::ReadStats;
use crate::playbook::search::watchlist::Watchlist;
use crate::playbook::search::window::HitWindow;
use crate::playbook::search::SearchSpec;
use crate::playbook::spec::Playbook;

/// How often a follower looks at its files without an event (a missed event, a directory
/// created later, a rotated file to close), and writes its status if it changed.
pub const TICK: Duration = Duration::from_secs(1);
/// How long a follower keeps reading while new events keep coming before it evaluates, so a
/// burst is one evaluation but a steady stream still gets evaluated.
pub const MOST_BATCHING: Duration = Duration::from_millis(20);

/// Follows the real-time playbook `playbook` (loaded from `path`) until `stop` is set, writing
/// its status into `status_dir`.
pub fn follow_playbook(path: &Path, playbook: &Playbook, status_dir: &Path, stop: &AtomicBool) {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut status = Status {
        file: path.display().to_string(),
        playbook: Some(playbook.name.clone()),
        ..Status::default()
    };
    let watchlists = match load_watchlists(&dir, playbook) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(playbook = %playbook.name, "cannot follow: {e}");
            status.error = Some(e);
            save(status_dir, &status);
            return;
        }
    };
    let mut follower = Follower::new(path, playbook, &watchlists);
    let (tx, rx) = channel();
    let mut watcher = match notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            follower.problems.push(format!(
                "cannot watch for changes ({e}); reading every {} s instead",
                TICK.as_secs()
            ));
            None
        }
    };
    let mut watched: Vec<PathBuf> = Vec::new();
    tracing::info!(playbook = %playbook.name, "following in real time");
    let mut last_write = Instant::now() - TICK;
    while !stop.load(Ordering::Relaxed) {
        if let Some(w) = watcher.as_mut() {
            watch_dirs(
                w,
                &follower.watch_dirs(),
                &mut watched,
                &mut follower.problems,
            );
        }
        let acted = follower.step(&rx, &mut status);
        if acted || follower.dirty && last_write.elapsed() >= TICK {
            follower.fill_status(&mut status);
            save(status_dir, &status);
            follower.dirty = false;
            last_write = Instant::now();
        }
        wait(&rx, TICK);
    }
    follower.fill_status(&mut status);
    save(status_dir, &status);
}

/// Waits for an event or `timeout`; events are consumed by the next read.
fn wait(rx: &Receiver<notify::Result<notify::Event>>, timeout: Duration) {
    match rx.recv_timeout(timeout) {
        Ok(_) | Err(RecvTimeoutError::Timeout) => {}
        Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
    }
}

/// Watches each directory in `dirs` not yet watched; one that cannot be watched (it does not
/// exist yet) is said once and tried again at the next tick.
fn watch_dirs(
    watcher: &mut impl Watcher,
    dirs: &[PathBuf],
    watched: &mut Vec<PathBuf>,
    problems: &mut Problems,
) {
    for d in dirs {
        if watched.contains(d) {
            continue;
        }
        match watcher.watch(d, RecursiveMode::NonRecursive) {
            Ok(()) => watched.push(d.clone()),
            Err(e) => problems.push_once(format!(
                "{}: cannot watch ({e}); looking every {} s until it can",
                d.display(),
                TICK.as_secs()
            )),
        }
    }
}

/// The state of one followed playbook.
struct Follower<'p> {
    playbook: &'p Playbook,
    watchlists: &'p [Watchlist],
    dir: PathBuf,
    names: Vec<String>,
    tails: Tails,
    window: HitWindow,
    lookback: chrono::TimeDelta,
    /// The parser of each format met, and the format of each file.
    parsers: Vec<(Format, NdjsonParser)>,
    formats: HashMap<FileId, Format>,
    counts: Counts,
    problems: Problems,
    suppressor: Suppressor,
    realtime: RealtimeStatus,
    /// The status changed since it was last written.
    dirty: bool,
}

impl<'p> Follower<'p> {
    fn new(path: &Path, playbook: &'p Playbook, watchlists: &'p [Watchlist]) -> Follower<'p> {
        let lookback = playbook
            .schedule
            .lookback
            .expect("a real-time schedule has a lookback");
        Follower {
            playbook,
            watchlists,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            // `srcip.keyword` names the text field `srcip` in logs (the suffix is a cluster's).
            names: playbook
                .fields
                .iter()
                .map(|f| f.strip_suffix(".keyword").unwrap_or(f).to_string())
                .collect(),
            tails: Tails::default(),
            window: HitWindow::new(
                playbook.fields.len(),
                lookback.num_microseconds().unwrap_or(i64::MAX),
                playbook.source.max_filtered > 0,
            ),
            lookback,
            parsers: Vec::new(),
            formats: HashMap::new(),
            counts: Counts::default(),
            problems: Problems::default(),
            suppressor: Suppressor::default(),
            realtime: RealtimeStatus {
                since: Some(Utc::now()),
                ..RealtimeStatus::default()
            },
            dirty: true,
        }
    }

    /// The directories to watch: each path's parent up to its first glob character.
    fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .playbook
            .source
            .paths
            .iter()
            .map(|p| {
                let full = self.dir.join(p);
                let mut d = full.parent().map(Path::to_path_buf).unwrap_or_default();
                while d.to_string_lossy().contains(['*', '?', '[']) {
                    d = d.parent().map(Path::to_path_buf).unwrap_or_default();
                }
                d
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    fn spec(&self, now: DateTime<Utc>) -> SearchSpec<'p> {
        SearchSpec {
            fields: &self.playbook.fields,
            query: self.playbook.query.as_ref(),
            calcs: &self.playbook.calcs,
            watchlists: self.watchlists,
            window: self.window.window_at(now.timestamp_micros()),
            max_filtered: self.playbook.source.max_filtered,
        }
    }

    /// Reads what is new (while events keep coming, up to [`MOST_BATCHING`]) and evaluates if
    /// the window changed. Returns whether an action was carried out.
    fn step(&mut self, rx: &Receiver<notify::Result<notify::Event>>, status: &mut Status) -> bool {
        let started = Instant::now();
        let mut added = 0;
        loop {
            while rx.try_recv().is_ok() {}
            let now = Utc::now();
            self.tails
                .set_names(&expand(&self.dir, &self.playbook.source.paths));
            let polled = self.tails.poll(Instant::now());
            for note in polled.notes {
                self.problems.push(note);
                self.dirty = true;
            }
            for chunk in polled.chunks {
                added +=
                    self.read_chunk(chunk.id, &chunk.name, chunk.first_line, &chunk.bytes, now);
            }
            let pending = rx.try_recv().is_ok();
            if !(polled.more || pending) || started.elapsed() >= MOST_BATCHING {
                break;
            }
        }
        let now = Utc::now();
        let expired = self.window.expire(now.timestamp_micros());
        self.suppressor.expire(now);
        if added == 0 && expired == 0 && self.realtime.evaluations > 0 {
            return false;
        }
        self.evaluate(status, now)
    }

    /// Reads one chunk of whole lines of file `id` into the window; returns the hits added.
    fn read_chunk(
        &mut self,
        id: FileId,
        name: &str,
        first_line: u64,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> u64 {
        let format = *self.formats.entry(id).or_insert_with(|| {
            self.playbook
                .source
                .format
                .unwrap_or_else(|| ndjson::detect_format(bytes))
        });
        let index = match self.parsers.iter().position(|(f, _)| *f == format) {
            Some(i) => i,
            None => {
                let plan = FieldPlan::new(format, &self.names);
                self.parsers.push((
                    format,
                    NdjsonParser::new(plan, self.playbook.query.as_ref()),
                ));
                self.parsers.len() - 1
            }
        };
        let spec = self.spec(now);
        let before = self.counts.hits;
        let mut sink = WindowSink {
            window: &mut self.window,
            spec: &spec,
            now_micros: now.timestamp_micros(),
            counts: &mut self.counts,
            problems: &mut self.problems,
            name,
            first_line,
        };
        self.parsers[index].1.parse(bytes, &(), &mut sink);
        self.dirty = true;
        self.counts.hits - before
    }

    /// Evaluates the window and acts; returns whether an action was carried out.
    fn evaluate(&mut self, status: &mut Status, now: DateTime<Utc>) -> bool {
        let started = Instant::now();
        let spec = self.spec(now);
        let payload = self.window.evaluate(&spec);
        let output = SearchOutput {
            payload,
            stats: ReadStats {
                records: self.counts.records,
                malformed: self.counts.malformed,
                without_timestamp: self.counts.without_timestamp,
                outside_window: self.counts.old,
                prefiltered: self.counts.prefiltered,
                examples: Vec::new(),
                fields_seen: self.window.fields_seen,
            },
            sources: self
                .tails
                .names()
                .iter()
                .map(|n| n.path.display().to_string())
                .collect(),
            notes: Vec::new(),
            request: None,
        };
        let from = now - self.lookback;
        status.execution_time = Some(now);
        status.scheduled_time = Some(now);
        status.search = Some(SearchStatus {
            window_from: Some(from),
            window_to: Some(now),
            hits: output.payload.total_hits,
            sources: output.sources.clone(),
            records: self.counts.records,
            malformed: self.counts.malformed,
            without_timestamp: self.counts.without_timestamp,
            outside_window: self.counts.old,
            examples: self.problems.latest(),
            notes: search_notes(self.playbook, &output),
        });
        let dir = self.dir.clone();
        let lookback = self.lookback;
        let suppressor = &mut self.suppressor;
        let mut suppressed_total = 0u64;
        let mut acting = Duration::ZERO;
        let mut carry = |index: usize, action: &Action, plan: Plan| {
            let began = Instant::now();
            let span = action.suppress.unwrap_or(lookback);
            let (plan, keys, suppressed) = suppressor.split(index, plan, now);
            suppressed_total += suppressed as u64;
            let (outcome, mut out, hosts) = if plan.steps() == 0 && suppressed > 0 {
                let failed = plan.refusals() > 0;
                let outcome = if failed {
                    ActionOutcome::Failed
                } else {
                    ActionOutcome::Suppressed
                };
                (outcome, plan.describe(&dir), Vec::new())
            } else {
                carry_plan(&plan, action, &dir, now, lookback, false)
            };
            let ok = outcome == ActionOutcome::Succeeded;
            for key in keys {
                suppressor.acted(index, key, now, span, ok);
            }
            if suppressed > 0 {
                out.push(format!(
                    "{suppressed} result(s) suppressed: acted on within the last {} (`suppress`; one that failed is tried again after {} s)",
                    humantime::format_duration(span.to_std().unwrap_or_default()),
                    RETRY_AFTER_FAILURE.num_seconds()
                ));
            }
            acting += began.elapsed();
            (outcome, out, hosts)
        };
        let evaluation = Evaluation {
            playbook: self.playbook,
            watchlists: self.watchlists,
            output: &output,
            scheduled: now,
            now,
        };
        let carry: &mut Carry<'_> = &mut carry;
        conclude(status, &evaluation, carry);
        status.payload = None;
        self.realtime.suppressed += suppressed_total;
        self.realtime.evaluations += 1;
        self.realtime.last_evaluation = Some(now);
        self.realtime.last_evaluation_micros =
            started.elapsed().saturating_sub(acting).as_micros() as u64;
        let mut acted = false;
        for a in &status.actions {
            if matches!(
                a.outcome,
                ActionOutcome::Succeeded | ActionOutcome::Partial | ActionOutcome::Failed
            ) {
                acted = true;
                tracing::info!(playbook = %self.playbook.name, action = %a.name, outcome = ?a.outcome, "acted: {}", a.output.join("; "));
                self.realtime.recent_actions.push(TimedAction {
                    time: now,
                    action: a.clone(),
                });
            }
        }
        let excess = self
            .realtime
            .recent_actions
            .len()
            .saturating_sub(RealtimeStatus::MAX_RECENT_ACTIONS);
        self.realtime.recent_actions.drain(..excess);
        self.dirty = true;
        acted
    }

    /// Puts the follower's counters into `status`.
    fn fill_status(&self, status: &mut Status) {
        let mut r = self.realtime.clone();
        r.records_read = self.counts.records;
        r.window_records = self.window.len() as u64;
        r.window_bytes = self.window.bytes() as u64;
        r.problems = self.problems.latest();
        r.problems_total = self.problems.total;
        r.files = self
            .tails
            .names()
            .iter()
            .map(|n| {
                let (offset, lines) =
                    n.id.and_then(|id| self.tails.position(id))
                        .unwrap_or_default();
                FollowedFile {
                    path: n.path.display().to_string(),
                    offset,
                    lines,
                    rotations: n.rotations,
                    state: n.trouble.clone(),
                }
            })
            .collect();
        status.realtime = Some(r);
    }
}

fn save(status_dir: &Path, status: &Status) {
    if let Err(e) = write_status(status_dir, status) {
        tracing::error!(dir = %status_dir.display(), "cannot write status: {e}");
    }
}
