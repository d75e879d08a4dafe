//! Running a playbook (I/O edge): read its watchlists and logs, evaluate its conditions, and
//! carry out (or, in a dry run, describe) its actions. Everything decided here comes from the
//! pure modules; this file only moves bytes.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::json;

use super::cluster;
use super::load::load_watchlists;
use super::{exec, ssh};
use crate::playbook::act::action::{Action, ActionKind, ForEach, Plan, RunContext};
use crate::playbook::act::command::{CheckedLine, Refusal};
use crate::playbook::act::fleet::{dispatch, SshTarget, Target};
use crate::playbook::act::status::{
    ActionOutcome, ActionStatus, ConditionStatus, HostStatus, SearchStatus, Status,
};
use crate::playbook::search::backend::SearchOutput;
use crate::playbook::search::watchlist::Watchlist;
use crate::playbook::search::{SearchSpec, Window};
use crate::playbook::spec::Playbook;

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
    let output = match cluster::search(&playbook.source, &dir, options.threads, &spec) {
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
        notes: search_notes(playbook, &output),
    });
    let mut carry = |_: usize, action: &Action, plan: Plan| {
        carry_plan(&plan, action, &dir, now, lookback, options.dry_run)
    };
    let evaluation = Evaluation {
        playbook,
        watchlists: &watchlists,
        output: &output,
        scheduled,
        now,
    };
    conclude(&mut status, &evaluation, &mut carry);
    status
}

/// A search's output and what the conditions and actions need besides it.
pub(crate) struct Evaluation<'e> {
    pub playbook: &'e Playbook,
    pub watchlists: &'e [Watchlist],
    pub output: &'e SearchOutput,
    pub scheduled: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// What became of a plan: the action's outcome, one output line per step, each sensor's status.
pub(crate) type Carried = (ActionOutcome, Vec<String>, Vec<HostStatus>);

/// What is done with an action's plan (the action's index, the action, its plan): carried out
/// or, in a dry run, described; a real-time follower first drops what it has already done.
pub(crate) type Carry<'c> = dyn FnMut(usize, &Action, Plan) -> Carried + 'c;

/// Carries `plan` of `action` out or, in a dry run, describes it: Run Script over SSH goes to
/// every sensor (or the routed one), the rest runs here.
pub(crate) fn carry_plan(
    plan: &Plan,
    action: &Action,
    dir: &Path,
    now: DateTime<Utc>,
    lookback: TimeDelta,
    dry_run: bool,
) -> Carried {
    match (plan, &action.kind) {
        (
            Plan::RunScript {
                target: Target::Ssh(target),
                lines,
                refused,
            },
            ActionKind::RunScript { timeout, .. },
        ) => over_ssh(target, lines, refused, dir, *timeout, dry_run),
        _ if dry_run => {
            // Refusals count as in a real run, so a dry run exits as the run would.
            let outcome = match plan.refusals() {
                0 => ActionOutcome::DryRun,
                _ if plan.steps() == 0 => ActionOutcome::Failed,
                _ => ActionOutcome::Partial,
            };
            (outcome, plan.describe(dir), Vec::new())
        }
        _ => {
            let (outcome, output) = carry_out(plan, &action.kind, dir, now, lookback);
            (outcome, output, Vec::new())
        }
    }
}

/// Evaluates the conditions over a search's output and hands each triggered, unmuted action's
/// plan to `carry`, recording it all in `status`.
pub(crate) fn conclude(status: &mut Status, e: &Evaluation<'_>, carry: &mut Carry<'_>) {
    let (playbook, output, now, scheduled) = (e.playbook, e.output, e.now, e.scheduled);
    let root = json!({ "ctx": {
        "payload": output.payload.to_json(),
        "execution_time": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "trigger": { "scheduled_time": scheduled.to_rfc3339_opts(SecondsFormat::Millis, true), "triggered_time": now.to_rfc3339_opts(SecondsFormat::Millis, true) },
        "metadata": { "name": playbook.name },
    }});
    status.payload = Some(json!({
        "payload": root["ctx"]["payload"],
        "request": output.request,
    }));
    let capped = filtered_cap_note(playbook, output);
    let outcomes: Vec<_> = playbook
        .conditions
        .iter()
        .map(|c| c.evaluate(&root["ctx"]["payload"], e.watchlists))
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
    status.actions.clear();
    let run = RunContext {
        root: &root,
        playbook: &playbook.name,
        now,
    };
    for (index, action) in playbook.actions.iter().enumerate() {
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
            hosts: Vec::new(),
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
        let (outcome, mut output, hosts) = carry(index, action, plan);
        if let (ForEach::Filtered, Some(note)) = (&action.for_each, &capped) {
            output.insert(0, format!("note: {note}"));
        }
        status.actions.push(ActionStatus {
            hosts,
            ..record(outcome, output)
        });
    }
}

/// What the user should know of the search: its backend's notes, fields that no record of the
/// window had (likely misspelt), and `filtered` cut at `source.max_filtered`.
pub(crate) fn search_notes(playbook: &Playbook, output: &SearchOutput) -> Vec<String> {
    let mut notes = output.notes.clone();
    let s = &output.stats;
    let examined = s
        .records
        .saturating_sub(s.without_timestamp + s.outside_window + s.prefiltered);
    if examined > 0 {
        for (field, name) in playbook.fields.iter().enumerate().take(64).skip(1) {
            if s.fields_seen & (1 << field) == 0 {
                notes.push(format!("field `{name}` is in none of the {examined} records of the window; check its name (0 hits may come from it)"));
            }
        }
    }
    notes.extend(filtered_cap_note(playbook, output));
    notes
}

/// Said when `filtered` holds fewer records than matched.
fn filtered_cap_note(playbook: &Playbook, output: &SearchOutput) -> Option<String> {
    let kept = output.payload.filtered.len() as u64;
    let hits = output.payload.total_hits;
    (playbook.source.max_filtered > 0 && hits > kept).then(|| {
        format!(
            "`filtered` holds the first {kept} of {hits} matching records (source.max_filtered: {}); raise it to act on more",
            playbook.source.max_filtered
        )
    })
}

/// A Run Script over SSH, carried out or (`dry_run`) described: the lines, each checked once,
/// go to every sensor (or the one `route_by` names), the sensors in parallel; the output has the
/// refusals and notes, each sensor its own status.
fn over_ssh(
    target: &SshTarget,
    lines: &[CheckedLine],
    refused: &[Refusal],
    dir: &Path,
    timeout: std::time::Duration,
    dry_run: bool,
) -> (ActionOutcome, Vec<String>, Vec<HostStatus>) {
    let mut out: Vec<String> = refused.iter().map(Refusal::report).collect();
    let sensors = match ssh::sensors(dir, target) {
        Ok(s) => s,
        Err(e) => {
            out.push(format!("no line was run: {e}"));
            return (ActionOutcome::Failed, out, Vec::new());
        }
    };
    let (jobs, unrouted) = dispatch(&sensors, lines);
    out.extend(unrouted.iter().map(Refusal::report));
    let refusals = refused.len() + unrouted.len();
    let steps: usize = jobs.iter().map(|j| j.lines.len()).sum();
    if dry_run {
        let control = match ssh::control_path(target) {
            Ok(c) => c.map(|(_, dir)| dir),
            Err(e) => {
                out.push(format!(
                    "note: every line would make its own SSH connection: {e}"
                ));
                None
            }
        };
        out.extend(
            jobs.iter()
                .flat_map(|j| j.describe(target, control.as_deref(), timeout)),
        );
        let outcome = match (refusals, steps) {
            (0, _) => ActionOutcome::DryRun,
            (_, 0) => ActionOutcome::Failed,
            _ => ActionOutcome::Partial,
        };
        return (outcome, out, Vec::new());
    }
    let control = ssh::control_dir(target).unwrap_or_else(|e| {
        out.push(format!(
            "note: every line makes its own SSH connection: {e}"
        ));
        None
    });
    let hosts = ssh::run_jobs(target, &jobs, timeout, control.as_deref());
    let (mut failed, mut ran) = (refusals, 0);
    for h in &hosts {
        match h.outcome {
            ActionOutcome::Succeeded => ran += 1,
            ActionOutcome::Partial => (ran, failed) = (ran + 1, failed + 1),
            ActionOutcome::Failed => failed += 1,
            _ => {}
        }
    }
    let outcome = match (failed, ran) {
        (0, _) => ActionOutcome::Succeeded,
        (_, 0) => ActionOutcome::Failed,
        _ => ActionOutcome::Partial,
    };
    (outcome, out, hosts)
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
            out.extend(refused.iter().map(Refusal::report));
            debug_assert_eq!(target, &Target::Local, "ssh plans go to over_ssh");
            for line in lines {
                let (ok, report) = exec::run_local(line, *timeout);
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
            out.extend(refused.iter().map(Refusal::report));
            for body in bodies {
                match exec::post_json(url, headers, body, *timeout) {
                    Ok(status) => {
                        successes += 1;
                        out.push(format!("POST {url} -> {status}"));
                    }
                    Err(e) => {
                        failures += 1;
                        out.push(format!("POST {url} failed: {e}"));
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
