//! Where a follower's parser puts the records of new lines: into the [`HitWindow`], counted,
//! and each bad one (not JSON, no timestamp) into the [`Problems`] with its file and line.

use std::collections::VecDeque;

use serde_json::Value as Json;

use crate::playbook::act::status::RealtimeStatus;
use crate::playbook::record::batch::RecordSink;
use crate::playbook::record::format::FieldPlan;
use crate::playbook::record::value::Val;
use crate::playbook::search::window::{HitWindow, Offer};
use crate::playbook::search::SearchSpec;

/// The records a follower has read since it started, by what became of them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub records: u64,
    pub hits: u64,
    pub malformed: u64,
    pub without_timestamp: u64,
    /// Older than the window when read.
    pub old: u64,
    pub prefiltered: u64,
    /// Hits dropped because the window was full.
    pub dropped: u64,
}

/// The latest problems (at most [`RealtimeStatus::MAX_PROBLEMS`]) and how many there were;
/// each is logged too, the first hundred and then one in a thousand.
#[derive(Debug, Default)]
pub struct Problems {
    latest: VecDeque<String>,
    pub total: u64,
}

impl Problems {
    pub fn push(&mut self, problem: String) {
        self.total += 1;
        if self.total <= 100 || self.total.is_multiple_of(1000) {
            tracing::warn!(total = self.total, "{problem}");
        }
        if self.latest.len() == RealtimeStatus::MAX_PROBLEMS {
            self.latest.pop_front();
        }
        self.latest.push_back(problem);
    }

    /// Pushes `problem` unless it is the latest one already.
    pub fn push_once(&mut self, problem: String) {
        if self.latest.back() != Some(&problem) {
            self.push(problem);
        }
    }

    pub fn latest(&self) -> Vec<String> {
        self.latest.iter().cloned().collect()
    }
}

/// One chunk's records into the window: lines are numbered from `first_line` of `name`.
pub struct WindowSink<'s, 'p> {
    pub window: &'s mut HitWindow,
    pub spec: &'s SearchSpec<'p>,
    pub now_micros: i64,
    pub counts: &'s mut Counts,
    pub problems: &'s mut Problems,
    pub name: &'s str,
    pub first_line: u64,
}

impl RecordSink for WindowSink<'_, '_> {
    fn record<'a>(
        &mut self,
        plan: &FieldPlan,
        slots: &[Option<Val<'a>>],
        ordinal: u64,
        source: impl FnOnce() -> Json,
    ) {
        self.counts.records += 1;
        match self
            .window
            .offer(self.spec, plan, slots, self.now_micros, source)
        {
            Offer::Hit => self.counts.hits += 1,
            Offer::NoMatch => {}
            Offer::Old => self.counts.old += 1,
            Offer::Full => {
                self.counts.dropped += 1;
                if self.counts.dropped.is_power_of_two() {
                    self.problems.push(format!(
                        "{}:{}: the window holds {} hits, the most it keeps; {} hits dropped so far (results are computed without them): narrow the query or shorten the lookback",
                        self.name,
                        self.first_line + ordinal,
                        HitWindow::MOST_HITS,
                        self.counts.dropped
                    ));
                }
            }
            Offer::NoTimestamp => {
                self.counts.without_timestamp += 1;
                self.problems.push(format!(
                    "{}:{}: the record has no timestamp (or one that does not parse); it is skipped",
                    self.name,
                    self.first_line + ordinal
                ));
            }
        }
    }

    fn prefiltered(&mut self) {
        self.counts.records += 1;
        self.counts.prefiltered += 1;
    }

    fn malformed(&mut self, line: u64, why: impl FnOnce() -> String) {
        self.counts.malformed += 1;
        self.problems.push(format!(
            "{}:{}: {}",
            self.name,
            self.first_line + line,
            why()
        ));
    }
}
