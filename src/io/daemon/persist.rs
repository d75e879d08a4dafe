//! Durability of the rule table: every change is a line of the journal, acknowledged once the
//! line is on disk (one that cannot be saved is undone and refused, the answer names the state
//! directory and the fix); a snapshot replaces the journal when it grows; the state comes back
//! at start through the same checks as a new rule, and its health is in `tcpreset stats`.
use super::{audit, Daemon, Registry};
use crate::interfaces::{IfaceError, Links};
use crate::io::journal::Ticket;
use crate::io::rules_file::RulesFile;
use crate::proto::PersistenceView;
use crate::rules::RuleTable;
use crate::rules::{Rule, RuleKey};
use crate::saved::{self, Change, Restored};
use crate::time::Instant;
use std::path::PathBuf;

/// How saving the rules has gone.
#[derive(Debug, Default)]
pub(super) struct Durability {
    saves: u64,
    failures: u64,
    /// The error of the last save, if it failed, and since when saves fail.
    failing: Option<(String, Instant)>,
}

/// Why the daemon cannot start: its state cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the state directory {dir} is unusable ({detail}); tcpresetd refuses to run without saving its rules. Make it a directory tcpresetd can write (state_dir in the configuration, StateDirectory= in the unit; move away a rules.json that is not a file) and start again")]
pub struct StateError {
    pub dir: PathBuf,
    pub detail: String,
}

/// How to take a change back whose line did not reach the disk.
#[derive(Debug)]
pub(super) enum Undo {
    /// An upsert: the rule of `key` as it was before, if there was one.
    Upsert(RuleKey, Option<Rule>),
    /// A cancel or a flush: the rules it removed.
    PutBack(Vec<Rule>),
}

/// Journal lines beyond which the next change first writes a snapshot and empties the journal:
/// this many, or twice the table, whichever is more.
const COMPACT_AFTER: u64 = 4096;

impl Daemon {
    /// Writes the journal line of `change`, about to be made to the table (under its lock, so
    /// lines are in the table's order): a snapshot replaces a journal grown too long, or one
    /// that failed. The error is the message of the
    /// [`crate::proto::ErrorKind::Unavailable`] answer that refuses the change, unmade.
    pub(super) fn journal(
        &self,
        registry: &mut Registry,
        change: Change<'_>,
        now: Instant,
    ) -> Result<Option<Ticket>, String> {
        let (Some(file), Some(journal)) = (&self.rules_file, &self.journal) else {
            return Ok(None);
        };
        self.undo_failed(registry);
        let long = journal.lines() > COMPACT_AFTER.max(2 * registry.table.len() as u64);
        if long || journal.broken().is_some() {
            self.snapshot(&registry.table, now)?;
        }
        let line = saved::journal_line(&registry.table, change);
        journal
            .append(&line)
            .map_err(|e| {
                self.failed(file.path(), &e.to_string(), now);
                self.refusal(file, &e.to_string())
            })
            .map(Some)
    }

    /// Waits, without the table's lock, until the change of `ticket` is on disk. If it cannot
    /// be, the change (and any other whose line failed with it) is undone and the error is the
    /// message of the answer that refuses it.
    pub(super) fn durable(&self, ticket: Option<Ticket>, now: Instant) -> Result<(), String> {
        let (Some(ticket), Some(file), Some(journal)) = (ticket, &self.rules_file, &self.journal)
        else {
            return Ok(());
        };
        match journal.wait(ticket) {
            Ok(()) => {
                self.saved(now);
                Ok(())
            }
            Err(e) => {
                self.failed(journal.path(), &e.to_string(), now);
                let mut registry = self.lock();
                self.undo_failed(&mut registry);
                self.commit(registry);
                Err(self.refusal(file, &e.to_string()))
            }
        }
    }

    /// Takes back, newest first, the changes whose journal line failed to reach the disk, and
    /// forgets those that reached it.
    pub(super) fn undo_failed(&self, registry: &mut Registry) {
        let Some(journal) = &self.journal else {
            return;
        };
        while let Some((ticket, _)) = registry.pending.back() {
            if !journal.failed(*ticket) {
                break;
            }
            let (_, undo) = registry.pending.pop_back().expect("looked at above");
            match undo {
                Undo::Upsert(key, before) => {
                    let now_rule = registry.table.cancel(&key);
                    if let Some(rule) = &now_rule {
                        audit(rule, "rule change undone: it could not be saved");
                    }
                    if let Some(rule) = before {
                        registry.table.put_back(rule);
                    }
                }
                Undo::PutBack(rules) => {
                    for rule in rules {
                        audit(&rule, "rule removal undone: it could not be saved");
                        registry.table.put_back(rule);
                    }
                }
            }
        }
        let durable = journal.durable();
        while registry
            .pending
            .front()
            .is_some_and(|(ticket, _)| *ticket <= durable && !journal.failed(*ticket))
        {
            registry.pending.pop_front();
        }
    }

    /// Writes the table as it is to `rules.json` and empties the journal; the error is the
    /// message of an answer that refuses a change.
    fn snapshot(&self, table: &RuleTable, now: Instant) -> Result<(), String> {
        let (Some(file), Some(journal)) = (&self.rules_file, &self.journal) else {
            return Ok(());
        };
        let result = file
            .save(&saved::to_json(table))
            .map_err(|e| (file.path().to_path_buf(), e))
            .and_then(|()| {
                journal
                    .reset()
                    .map_err(|e| (journal.path().to_path_buf(), e))
            });
        match result {
            Ok(()) => {
                self.saved(now);
                Ok(())
            }
            Err((path, e)) => {
                self.failed(&path, &e.to_string(), now);
                Err(self.refusal(file, &format!("{}: {e}", path.display())))
            }
        }
    }

    fn refusal(&self, file: &RulesFile, error: &str) -> String {
        let dir = file
            .path()
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        format!(
            "cannot save the rules in {dir} ({error}): the change was not made, since it would not survive a restart; make the state directory {dir} writable by tcpresetd (a full disk, a read-only mount, a rules.json or rules.journal that is not a file), then retry; 'tcpreset stats' shows whether saving works"
        )
    }

    fn saved(&self, now: Instant) {
        let mut d = self.durability.lock().unwrap_or_else(|p| p.into_inner());
        d.saves += 1;
        if let Some((_, since)) = d.failing.take() {
            tracing::info!(
                failing_for_secs = now.saturating_since(since).as_secs(),
                "the rules are saved again"
            );
        }
    }

    fn failed(&self, path: &std::path::Path, error: &str, now: Instant) {
        let mut d = self.durability.lock().unwrap_or_else(|p| p.into_inner());
        d.failures += 1;
        if d.failing.is_none() {
            tracing::error!(path = %path.display(), error, "cannot save the rules; changes are refused until saving works");
        }
        let since = d.failing.as_ref().map_or(now, |(_, since)| *since);
        d.failing = Some((error.to_owned(), since));
    }

    /// Writes a snapshot of the table as it is (after a reload, at shutdown), so the journal
    /// starts empty; a failure is logged and shown in the stats.
    pub fn checkpoint(&self) {
        let now = self.now();
        let mut registry = self.lock();
        self.undo_failed(&mut registry);
        let _ = self.snapshot(&registry.table, now);
        registry.pending.clear();
    }

    /// How saving goes, for `tcpreset stats`.
    pub(super) fn persistence(&self) -> PersistenceView {
        let d = self.durability.lock().unwrap_or_else(|p| p.into_inner());
        PersistenceView {
            state_file: self
                .rules_file
                .as_ref()
                .map(|f| f.path().display().to_string()),
            saves: d.saves,
            failures: d.failures,
            error: d.failing.as_ref().map(|(e, _)| e.clone()),
            failing_since_unix: d.failing.as_ref().map(|(_, since)| since.as_secs_f64()),
        }
    }

    /// Puts the saved rules back, each through the checks of a new rule; one refused is logged
    /// and left out, the others kept. The state is then saved, so a state directory that
    /// cannot be written stops the start.
    pub(super) fn restore(&self, now: Instant) -> Result<(), StateError> {
        let Some(file) = &self.rules_file else {
            return Ok(());
        };
        let unusable = |detail: String| StateError {
            dir: file.path().parent().map(PathBuf::from).unwrap_or_default(),
            detail,
        };
        let journal_text = match self.journal.as_ref().map(|j| (j.path(), j.read())) {
            None => String::new(),
            Some((_, Ok(text))) => text.unwrap_or_default(),
            Some((path, Err(e))) => {
                return Err(unusable(format!("reading {}: {e}", path.display())))
            }
        };
        let snapshot = match file.read() {
            Ok(text) => text,
            Err(e) => return Err(unusable(format!("reading {}: {e}", file.path().display()))),
        };
        let loaded = match saved::load(snapshot.as_deref(), &journal_text, now) {
            Ok(loaded) => loaded,
            Err(e) => {
                let aside = file.move_aside(now.as_micros() / 1_000_000);
                tracing::error!(
                    path = %file.path().display(), error = %e, moved_to = ?aside.ok(),
                    "the saved rules are unreadable; moved aside, starting with the journal's changes alone"
                );
                saved::load(None, &journal_text, now).unwrap_or_default()
            }
        };
        for (place, reason) in &loaded.refused {
            tracing::error!(path = %file.path().display(), place, "saved rule refused ({place}): {reason}");
        }
        if loaded.unfinished {
            tracing::warn!("the journal ended in an unfinished line (a change cut off by a stop, never acknowledged); left out");
        }
        let links = self.sensor.links();
        let mut registry = self.lock();
        let mut refused = loaded.refused.len();
        let mut admitted = Vec::new();
        for r in loaded.rules {
            match self.check_restored(&registry.table, links.as_ref(), &r, now) {
                Ok(()) => admitted.push(r),
                Err(reason) => {
                    refused += 1;
                    tracing::error!(engid = %r.spec.key.engid, host = %r.spec.key.host, port = ?r.spec.key.port, "saved rule refused: {reason}");
                }
            }
        }
        drop(registry);
        for r in &admitted {
            if let Err(e) = self.ensure_capture(&r.spec.sniff_if) {
                tracing::error!(error = %e, "restored rule cannot capture yet");
            }
        }
        registry = self.lock();
        for r in admitted {
            let key = r.spec.key.clone();
            registry.table.restore(r.spec, r.created, r.expires);
            if let Some(rule) = registry.table.get(&key) {
                audit(rule, "rule restored");
            }
        }
        tracing::info!(
            restored = registry.table.len(),
            expired = loaded.expired,
            refused,
            "saved rules loaded"
        );
        if let Err(message) = self.snapshot(&registry.table, now) {
            return Err(unusable(message));
        }
        self.commit(registry);
        Ok(())
    }

    /// A saved rule passes what a new one must: the policy (protected hosts and the sensor's
    /// own addresses, limits) and interfaces that exist.
    fn check_restored(
        &self,
        table: &RuleTable,
        links: Result<&Links, &IfaceError>,
        r: &Restored,
        now: Instant,
    ) -> Result<(), String> {
        self.admission(table, &r.spec, now)
            .map_err(|e| e.to_string())?;
        let links = links.map_err(|e| e.to_string())?;
        for name in [&r.spec.sniff_if, &r.spec.reset_if] {
            if links.get(name).is_none() {
                return Err(format!("interface '{name}' does not exist on this sensor"));
            }
        }
        Ok(())
    }
}
