//! The last status of a playbook: validation, the search, each condition and each action's
//! outcome and output. Written as JSON by the scheduler and shown by `tcpreset-hunt status`.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::playbook::spec::CheckError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub file: String,
    pub playbook: Option<String>,
    pub execution_time: Option<DateTime<Utc>>,
    pub scheduled_time: Option<DateTime<Utc>>,
    /// Empty when the playbook is valid; otherwise `line: problem` entries.
    pub validation: Vec<String>,
    /// Why the run did not happen (skip window, disabled).
    pub skipped: Option<String>,
    pub muted: bool,
    pub search: Option<SearchStatus>,
    /// A failure that stopped the run (unreadable logs or watchlists).
    pub error: Option<String>,
    pub conditions: Vec<ConditionStatus>,
    pub actions: Vec<ActionStatus>,
    /// A real-time playbook's follower: what it has read, its window and what it has done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime: Option<RealtimeStatus>,
    /// `ctx.payload` as the conditions and templates saw it, and the request sent to a cluster;
    /// shown by `run --payload`, never stored.
    #[serde(skip)]
    pub payload: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchStatus {
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    pub hits: u64,
    pub sources: Vec<String>,
    pub records: u64,
    pub malformed: u64,
    pub without_timestamp: u64,
    pub outside_window: u64,
    pub examples: Vec<String>,
    /// What the user should know of the search: a glob that matched no file, a field no record
    /// had, `filtered` cut at `source.max_filtered`.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionStatus {
    pub name: String,
    pub met: bool,
    pub matches: usize,
}

/// What became of one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    NotTriggered,
    Muted,
    DryRun,
    Succeeded,
    /// Some lines or bodies were refused or failed; the others ran.
    Partial,
    Failed,
    /// Real-time: every result was acted on within the action's `suppress` span.
    Suppressed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionStatus {
    pub name: String,
    pub kind: String,
    pub outcome: ActionOutcome,
    /// One entry per command, request or alert: what was done and what came back. Over SSH:
    /// the refusals and notes; each sensor's lines are in `hosts`.
    pub output: Vec<String>,
    /// A Run Script over SSH: what became of each sensor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostStatus>,
}

/// What one sensor of a Run Script did with its lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    pub sensor: String,
    /// `host:port`.
    pub address: String,
    /// `not_triggered` when no line was for this sensor.
    pub outcome: ActionOutcome,
    pub elapsed_ms: u64,
    /// One entry per line: the line, `ok` or the exit status, and what it printed.
    pub output: Vec<String>,
}

/// A real-time playbook's follower since it started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RealtimeStatus {
    pub since: Option<DateTime<Utc>>,
    pub records_read: u64,
    /// Records kept in the lookback window (those that matched the query), and their memory.
    pub window_records: u64,
    pub window_bytes: u64,
    pub evaluations: u64,
    pub last_evaluation: Option<DateTime<Utc>>,
    /// How long the last evaluation took (the window's payload, conditions, rendering and
    /// suppression; not carrying the actions out), in µs.
    pub last_evaluation_micros: u64,
    /// Results not acted on again because they were within their action's `suppress` span.
    pub suppressed: u64,
    /// Each followed file: where it is read, how many lines, its rotations.
    pub files: Vec<FollowedFile>,
    /// Bad input and file trouble, `file:line: why`, the latest last (at most
    /// [`RealtimeStatus::MAX_PROBLEMS`]), and how many there were in all.
    pub problems: Vec<String>,
    pub problems_total: u64,
    /// The actions carried out lately (not those that were suppressed), the latest last.
    pub recent_actions: Vec<TimedAction>,
}

impl RealtimeStatus {
    pub const MAX_PROBLEMS: usize = 20;
    pub const MAX_RECENT_ACTIONS: usize = 20;
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FollowedFile {
    pub path: String,
    /// Bytes of the current file read so far (whole lines).
    pub offset: u64,
    /// Lines of the current file read so far.
    pub lines: u64,
    pub rotations: u64,
    /// Why the file is not being read right now (missing, a directory, unreadable).
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedAction {
    pub time: DateTime<Utc>,
    #[serde(flatten)]
    pub action: ActionStatus,
}

impl Status {
    /// The status of a file that did not load.
    pub fn invalid(path: &Path, error: &CheckError, now: DateTime<Utc>) -> Status {
        Status {
            file: path.display().to_string(),
            execution_time: Some(now),
            validation: error.lines(),
            ..Status::default()
        }
    }

    /// True when nothing went wrong: valid, searched, and no action failed or refused anything.
    pub fn is_ok(&self) -> bool {
        self.validation.is_empty()
            && self.error.is_none()
            && self
                .actions
                .iter()
                .all(|a| !matches!(a.outcome, ActionOutcome::Partial | ActionOutcome::Failed))
    }

    /// A short human summary, several lines.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} ({})\n",
            self.playbook.as_deref().unwrap_or("?"),
            self.file
        );
        if let Some(t) = self.execution_time {
            out += &format!("  ran at {}\n", t.to_rfc3339());
        }
        for v in &self.validation {
            out += &format!("  invalid: {v}\n");
        }
        if let Some(s) = &self.skipped {
            out += &format!("  skipped: {s}\n");
        }
        if let Some(e) = &self.error {
            out += &format!("  error: {e}\n");
        }
        if let Some(s) = &self.search {
            out += &format!("  hits: {} (records read {}, malformed {}, without timestamp {}, outside window {})\n", s.hits, s.records, s.malformed, s.without_timestamp, s.outside_window);
            for e in &s.examples {
                out += &format!("    malformed: {e}\n");
            }
            for n in &s.notes {
                out += &format!("  note: {n}\n");
            }
        }
        for c in &self.conditions {
            out += &format!(
                "  condition {}: {}\n",
                c.name,
                if c.met { "met" } else { "not met" }
            );
        }
        if let Some(r) = &self.realtime {
            out += &r.summary();
        }
        if self.muted {
            out += "  muted: no actions run\n";
        }
        for a in &self.actions {
            out += &format!("  action {} ({}): {:?}\n", a.name, a.kind, a.outcome);
            for line in &a.output {
                out += &format!("    {line}\n");
            }
            for h in &a.hosts {
                out += &format!(
                    "    sensor {} ({}): {:?} in {} ms\n",
                    h.sensor, h.address, h.outcome, h.elapsed_ms
                );
                for line in &h.output {
                    out += &format!("      {line}\n");
                }
            }
        }
        out
    }
}

impl RealtimeStatus {
    /// The follower's part of [`Status::summary`].
    fn summary(&self) -> String {
        let mut out = format!(
            "  real time: {} records read, {} in the window ({} KiB), {} evaluations (last {} µs{}), {} results suppressed\n",
            self.records_read,
            self.window_records,
            self.window_bytes.div_ceil(1024),
            self.evaluations,
            self.last_evaluation_micros,
            self.last_evaluation
                .map(|t| format!(" at {}", t.to_rfc3339()))
                .unwrap_or_default(),
            self.suppressed
        );
        for f in &self.files {
            out += &format!(
                "    following {}: {} lines, byte {}, {} rotations{}\n",
                f.path,
                f.lines,
                f.offset,
                f.rotations,
                f.state
                    .as_ref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            );
        }
        if self.problems_total > 0 {
            out += &format!("    {} problems, the latest:\n", self.problems_total);
            for p in &self.problems {
                out += &format!("      {p}\n");
            }
        }
        for a in &self.recent_actions {
            out += &format!(
                "    {} action {}: {:?}: {}\n",
                a.time.to_rfc3339(),
                a.action.name,
                a.action.outcome,
                a.action.output.join("; ")
            );
        }
        out
    }
}
