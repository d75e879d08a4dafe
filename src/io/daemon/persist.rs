//! Durability of the rule table: every change is saved before it is made (one that cannot be
//! saved is refused, the answer names the state directory and the fix), the state comes back
//! at start through the same checks as a new rule, and its health is in `tcpreset stats`.
use super::{audit, Daemon};
use crate::interfaces::{IfaceError, Links};
use crate::proto::PersistenceView;
use crate::rules::RuleTable;
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

impl Daemon {
    /// Saves the table as it will be once `change` is made; the error is the message of the
    /// [`crate::proto::ErrorKind::Unavailable`] answer that refuses the change.
    pub(super) fn save_change(
        &self,
        table: &RuleTable,
        change: Change<'_>,
        now: Instant,
    ) -> Result<(), String> {
        let Some(file) = &self.rules_file else {
            return Ok(());
        };
        let result = file.save(&saved::to_json_after(table, change));
        let mut d = self.durability.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                d.saves += 1;
                if let Some((_, since)) = d.failing.take() {
                    tracing::info!(path = %file.path().display(), failing_for_secs = now.saturating_since(since).as_secs(), "the rules are saved again");
                }
                Ok(())
            }
            Err(e) => {
                d.failures += 1;
                let dir = file
                    .path()
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let message = format!(
                    "cannot save the rules to {} ({e}): the change was not made, since it would not survive a restart; make the state directory {dir} writable by tcpresetd (a full disk, a read-only mount, a rules.json that is not a file), then retry; 'tcpreset stats' shows whether saving works",
                    file.path().display()
                );
                if d.failing.is_none() {
                    tracing::error!(path = %file.path().display(), error = %e, "cannot save the rules; changes are refused until saving works");
                }
                let since = d.failing.as_ref().map_or(now, |(_, since)| *since);
                d.failing = Some((e.to_string(), since));
                Err(message)
            }
        }
    }

    /// Saves the table as it is (after expiry or a reload); a failure is logged and shown in
    /// the stats (the rules dropped are dropped for good either way).
    pub(super) fn save_table(&self, table: &RuleTable, now: Instant) {
        let _ = self.save_change(table, Change::Nothing, now);
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
        let loaded = match file.read() {
            Ok(None) => saved::Loaded::default(),
            Ok(Some(text)) => match saved::from_json(&text, now) {
                Ok(loaded) => loaded,
                Err(e) => {
                    let aside = file.move_aside(now.as_micros() / 1_000_000);
                    tracing::error!(
                        path = %file.path().display(), error = %e, moved_to = ?aside.ok(),
                        "the saved rules are unreadable; moved aside, starting with none"
                    );
                    saved::Loaded::default()
                }
            },
            Err(e) => return Err(unusable(format!("reading {}: {e}", file.path().display()))),
        };
        for (index, reason) in &loaded.refused {
            tracing::error!(path = %file.path().display(), index, "saved rule {index} refused: {reason}");
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
        if let Err(message) = self.save_change(&registry.table, Change::Nothing, now) {
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
