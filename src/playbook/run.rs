//! Running a playbook (I/O edge): load it, read its watchlists and logs, evaluate its conditions,
//! and carry out (or, in a dry run, describe) its actions. Everything decided here comes from the
//! pure modules; this file only moves bytes.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value as Json};

use super::actions::{ActionKind, Plan, RunContext};
use super::command::Target;
use super::engine::local::LocalEngine;
use super::engine::Engine;
use super::exec;
use super::search::{SearchSpec, Window};
use super::status::{ActionOutcome, ActionStatus, ConditionStatus, SearchStatus, Status};
use super::validate::{parse_playbook, Problem};
use super::watchlist::Watchlist;
use super::Playbook;

/// A playbook file that could not be loaded: every problem, with the file and line.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.lines().join("\n"))]
pub struct CheckError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl CheckError {
    pub fn lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| {
                if p.line > 0 {
                    format!("{}:{}: {}", self.file, p.line, p.message)
                } else {
                    format!("{}: {}", self.file, p.message)
                }
            })
            .collect()
    }
}

/// Reads and checks a playbook file.
pub fn load(path: &Path) -> Result<Playbook, CheckError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CheckError {
        file: file.clone(),
        problems: vec![Problem {
            line: 0,
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    parse_playbook(&text).map_err(|problems| CheckError { file, problems })
}

#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub dry_run: bool,
    pub threads: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            dry_run: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs `playbook` (loaded from `path`) for the run scheduled at `scheduled`, at wall time `now`.
pub fn run_playbook(
    path: &Path,
    playbook: &Playbook,
    scheduled: DateTime<Utc>,
    now: DateTime<Utc>,
    options: RunOptions,
) -> Status {
    let mut status = Status {
        file: path.display().to_string(),
        playbook: Some(playbook.name.clone()),
        execution_time: Some(now),
        scheduled_time: Some(scheduled),
        ..Status::default()
    };
    let dir = base_dir(path);
    let watchlists = match load_watchlists(&dir, playbook) {
        Ok(w) => w,
        Err(e) => {
            status.error = Some(e);
            return status;
        }
    };
    let lookback = playbook.schedule.lookback_at(scheduled);
    let window = Window {
        from_micros: (scheduled - lookback).timestamp_micros(),
        to_micros: scheduled.timestamp_micros(),
    };
    let spec = SearchSpec {
        fields: &playbook.fields,
        query: playbook.query.as_ref(),
        calcs: &playbook.calcs,
        watchlists: &watchlists,
        window,
        max_filtered: playbook.source.max_filtered,
    };
    let engine = LocalEngine {
        base_dir: dir.clone(),
        paths: playbook.source.paths.clone(),
        format: playbook.source.format,
        threads: options.threads,
    };
    let output = match engine.search(&spec) {
        Ok(o) => o,
        Err(e) => {
            status.error = Some(e.to_string());
            return status;
        }
    };
    let stats = &output.stats;
    status.search = Some(SearchStatus {
        window_from: Some(scheduled - lookback),
        window_to: Some(scheduled),
        hits: output.payload.total_hits,
        sources: output.sources.clone(),
        records: stats.records,
        malformed: stats.malformed,
        without_timestamp: stats.without_timestamp,
        outside_window: stats.outside_window,
        examples: stats.examples.clone(),
    });
    let root = json!({ "ctx": {
        "payload": output.payload.to_json(),
        "execution_time": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "trigger": { "scheduled_time": scheduled.to_rfc3339_opts(SecondsFormat::Millis, true), "triggered_time": now.to_rfc3339_opts(SecondsFormat::Millis, true) },
        "metadata": { "name": playbook.name },
    }});
    let outcomes: Vec<_> = playbook
        .conditions
        .iter()
        .map(|c| c.evaluate(&root["ctx"]["payload"], &watchlists))
        .collect();
    status.conditions = outcomes
        .iter()
        .map(|o| ConditionStatus {
            name: o.name.clone(),
            met: o.met,
            matches: o.matches.len(),
        })
        .collect();
    status.muted = playbook.schedule.mute.is_some_and(|m| m.active(now));
    let run = RunContext {
        root: &root,
        playbook: &playbook.name,
        now,
    };
    for action in &playbook.actions {
        let kind = match action.kind {
            ActionKind::RunScript { .. } => "run_script",
            ActionKind::Webhook { .. } => "webhook",
            ActionKind::CreateAlert { .. } => "create_alert",
        };
        let record = |outcome, output| ActionStatus {
            name: action.name.clone(),
            kind: kind.into(),
            outcome,
            output,
        };
        let Some(outcome) = outcomes
            .iter()
            .find(|o| o.name == action.trigger)
            .filter(|o| o.met)
        else {
            status
                .actions
                .push(record(ActionOutcome::NotTriggered, Vec::new()));
            continue;
        };
        if status.muted || action.mute.is_some_and(|m| m.active(now)) {
            status
                .actions
                .push(record(ActionOutcome::Muted, Vec::new()));
            continue;
        }
        let plan = action.plan(run, outcome);
        let (outcome, output) = if options.dry_run {
            describe(&plan, &dir)
        } else {
            carry_out(&plan, &action.kind, &dir, now, lookback)
        };
        status.actions.push(record(outcome, output));
    }
    status
}

fn load_watchlists(dir: &Path, playbook: &Playbook) -> Result<Vec<Watchlist>, String> {
    playbook
        .watchlists
        .iter()
        .map(|w| {
            let path = dir.join(&w.file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "cannot read watchlist `{}` at {}: {e}",
                    w.name,
                    path.display()
                )
            })?;
            Watchlist::parse(&w.name, &w.key, &text)
                .map_err(|e| format!("watchlist `{}` ({}): {e}", w.name, path.display()))
        })
        .collect()
}

fn refused_lines(refused: &[super::command::Refusal]) -> impl Iterator<Item = String> + '_ {
    refused
        .iter()
        .map(|r| format!("REFUSED {:?}: {}", r.line, r.reason))
}

/// What a dry run prints for a plan.
fn describe(plan: &Plan, dir: &Path) -> (ActionOutcome, Vec<String>) {
    let mut out = Vec::new();
    match plan {
        Plan::RunScript {
            target,
            lines,
            refused,
        } => {
            for line in lines {
                out.push(match target {
                    Target::Local => format!(
                        "would run locally: {} {}",
                        line.program,
                        line.args.join(" ")
                    ),
                    Target::Ssh(ssh) => format!(
                        "would run over ssh: ssh {}",
                        ssh.ssh_args(line)
                            .iter()
                            .map(|a| super::command::shell_quote(a))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                });
            }
            out.extend(refused_lines(refused));
        }
        Plan::Webhook {
            url,
            bodies,
            refused,
        } => {
            out.extend(bodies.iter().map(|b| {
                format!(
                    "would POST to http://{}:{}{}: {b}",
                    url.host, url.port, url.path
                )
            }));
            out.extend(refused_lines(refused));
        }
        Plan::CreateAlert { file, alerts } => {
            out.extend(
                alerts
                    .iter()
                    .map(|a| format!("would append to {}: {a}", dir.join(file).display())),
            );
        }
    }
    (ActionOutcome::DryRun, out)
}

/// Carries a plan out and reports each step.
fn carry_out(
    plan: &Plan,
    kind: &ActionKind,
    dir: &Path,
    now: DateTime<Utc>,
    lookback: TimeDelta,
) -> (ActionOutcome, Vec<String>) {
    let mut out = Vec::new();
    let mut failures = 0;
    let mut successes = 0;
    match (plan, kind) {
        (
            Plan::RunScript {
                target,
                lines,
                refused,
            },
            ActionKind::RunScript { timeout, .. },
        ) => {
            failures += refused.len();
            out.extend(refused_lines(refused));
            for line in lines {
                let (ok, report) = exec::run_line(target, line, *timeout);
                if ok {
                    successes += 1
                } else {
                    failures += 1
                }
                out.push(report);
            }
        }
        (
            Plan::Webhook {
                url,
                bodies,
                refused,
            },
            ActionKind::Webhook {
                headers, timeout, ..
            },
        ) => {
            failures += refused.len();
            out.extend(refused_lines(refused));
            for body in bodies {
                match exec::post_json(url, headers, body, *timeout) {
                    Ok(status) => {
                        successes += 1;
                        out.push(format!(
                            "POST http://{}:{}{} -> {status}",
                            url.host, url.port, url.path
                        ));
                    }
                    Err(e) => {
                        failures += 1;
                        out.push(format!(
                            "POST http://{}:{}{} failed: {e}",
                            url.host, url.port, url.path
                        ));
                    }
                }
            }
        }
        (Plan::CreateAlert { file, alerts }, ActionKind::CreateAlert { dedup, .. }) => {
            let path = dir.join(file);
            match exec::write_alerts(&path, alerts.clone(), dedup.as_ref(), now, lookback) {
                Ok(folded) => {
                    successes += 1;
                    out.push(format!(
                        "{} alert(s) to {} ({} folded into earlier identical alerts)",
                        alerts.len(),
                        path.display(),
                        folded
                    ));
                }
                Err(e) => {
                    failures += 1;
                    out.push(format!("cannot write alerts to {}: {e}", path.display()));
                }
            }
        }
        _ => unreachable!("a plan comes from its action's kind"),
    }
    let outcome = match (failures, successes) {
        (0, _) => ActionOutcome::Succeeded,
        (_, 0) => ActionOutcome::Failed,
        _ => ActionOutcome::Partial,
    };
    (outcome, out)
}

/// A status for a file that did not load.
pub fn invalid_status(path: &Path, error: &CheckError, now: DateTime<Utc>) -> Status {
    Status {
        file: path.display().to_string(),
        execution_time: Some(now),
        validation: error.lines(),
        ..Status::default()
    }
}

/// The status file of a playbook file: `STATUS_DIR/<file name>.json`.
pub fn status_path(status_dir: &Path, playbook_file: &Path) -> PathBuf {
    let name = playbook_file
        .file_name()
        .map_or_else(|| "playbook".into(), |n| n.to_string_lossy().to_string());
    status_dir.join(format!("{name}.json"))
}

/// Writes a status file atomically.
pub fn write_status(status_dir: &Path, status: &Status) -> std::io::Result<()> {
    std::fs::create_dir_all(status_dir)?;
    let path = status_path(status_dir, Path::new(&status.file));
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, path)
}

/// Reads every status file in `status_dir`, sorted by file name.
pub fn read_statuses(status_dir: &Path) -> std::io::Result<Vec<Status>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(status_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let status: Status = serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", f.display()),
            )
        })?;
        out.push(status);
    }
    Ok(out)
}

/// The JSON of a status for `--json` output.
pub fn status_json(status: &Status) -> Json {
    serde_json::to_value(status).unwrap_or(Json::Null)
}
