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
