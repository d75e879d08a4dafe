//! Adding a rule: the policy first (no syscall), then the interfaces and the reset path
//! through the [`Sensor`](super::Sensor), the capture, and the change made durable before the
//! answer.
use super::persist::Undo;
use super::{audit, error, Daemon};
use crate::admit::{admit, Admission, Limits, Refusal};
use crate::proto::{ErrorKind, Response, RuleView};
use crate::rules::{RuleSpec, RuleTable};
use crate::saved::Change;
use crate::time::Instant;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

impl Daemon {
    /// Counts and logs a refused rule; the answer says why.
    pub(super) fn refuse(
        &self,
        spec: &RuleSpec,
        kind: ErrorKind,
        counter: &AtomicU64,
        message: String,
    ) -> Response {
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            engid = %spec.key.engid, host = %spec.key.host, port = ?spec.key.port,
            "rule refused: {message}"
        );
        error(kind, message)
    }

    pub(super) fn refuse_by_policy(&self, spec: &RuleSpec, refusal: Refusal) -> Response {
        let (kind, counter) = match refusal {
            Refusal::Protected { .. } => (ErrorKind::Protected, &self.refusals.protected),
            Refusal::MaxSeconds { .. } => (ErrorKind::Limit, &self.refusals.max_seconds),
            Refusal::MaxRules { .. } => (ErrorKind::Limit, &self.refusals.max_rules),
        };
        self.refuse(spec, kind, counter, refusal.to_string())
    }

    /// The policy's answer for `spec` at `now`.
    pub(super) fn admission(
        &self,
        table: &RuleTable,
        spec: &RuleSpec,
        now: Instant,
    ) -> Result<Admission, Refusal> {
        let settings = self.settings.read().unwrap_or_else(|p| p.into_inner());
        admit(
            spec,
            table,
            &Limits::of(&settings.config),
            &settings.protected,
            now,
        )
    }

    pub(super) fn add(&self, spec: RuleSpec, now: Instant) -> Response {
        // The policy first: it needs no syscall.
        if let Err(refusal) = self.admission(&self.lock().table, &spec, now) {
            return self.refuse_by_policy(&spec, refusal);
        }
        let checked = self.sensor.links().and_then(|links| {
            links.check_rule(&spec.sniff_if, &spec.reset_if, Some(spec.key.host))?;
            Ok(links)
        });
        let links = match checked {
            Ok(links) => links,
            Err(e) => {
                let counter = &self.refusals.interface;
                return self.refuse(&spec, ErrorKind::Interface, counter, e.to_string());
            }
        };
        if let Err(e) = self.sensor.prepare_reset(&spec.reset_if) {
            return error(ErrorKind::Unavailable, e.to_string());
        }
        loop {
            if let Err(e) = self.ensure_capture(&spec.sniff_if) {
                return error(ErrorKind::Unavailable, e.to_string());
            }
            let mut registry = self.lock();
            // A rule whose deadline has come goes first, so a key registered again is new.
            let expired = registry.table.expire_until(now);
            for rule in &expired {
                audit(rule, "rule expired");
            }
            let admission = match self.admission(&registry.table, &spec, now) {
                Ok(admission) => admission,
                Err(refusal) => {
                    if !expired.is_empty() {
                        self.commit(registry);
                    }
                    return self.refuse_by_policy(&spec, refusal);
                }
            };
            if !registry.captures.contains_key(spec.sniff_if.as_str()) {
                // Closed meanwhile by a request that left it no rule: open it again.
                continue;
            }
            let change = Change::Upsert { spec: &spec, now };
            let ticket = match self.journal(&mut registry, change, now) {
                Ok(t) => t,
                Err(e) => {
                    self.commit(registry);
                    return error(ErrorKind::Unavailable, e);
                }
            };
            let before = registry.table.get(&spec.key).cloned();
            // A refresh that keeps the interfaces reaches the captures through the rule's
            // shared deadline: no new snapshot.
            let same_place = before
                .as_ref()
                .is_some_and(|b| b.sniff_if == spec.sniff_if && b.reset_if == spec.reset_if);
            if let Some(t) = ticket {
                registry
                    .pending
                    .push_back((t, Undo::Upsert(spec.key.clone(), before)));
            }
            let refreshed = admission == Admission::Refresh;
            let since = registry
                .captures
                .get(spec.sniff_if.as_str())
                .map(|o| o.since);
            let sniff_if = spec.sniff_if.to_string();
            let (_, rule) = registry.table.upsert(spec, now);
            let rule = rule.clone();
            let view = RuleView::of(&rule, now);
            if same_place {
                drop(registry);
                self.changed.notify_one();
            } else {
                self.commit(registry);
            }
            if let Err(e) = self.durable(ticket, now) {
                return error(ErrorKind::Unavailable, e);
            }
            audit(
                &rule,
                if refreshed {
                    "rule refreshed"
                } else {
                    "rule added"
                },
            );
            self.remember(&sniff_if);
            // Watched from now on, so a later outage is compared with how it was (its IPv6 address).
            self.observe_these(&links, &BTreeSet::from([rule.reset_if.to_string()]), now);
            return Response::Added {
                rule: view,
                refreshed,
                tracked_since_unix: self.tracked_too_briefly(since, now),
            };
        }
    }

    /// When the capture that a new rule uses started, if that is too recent for its flow table
    /// to know every open connection (less than `flow_idle_seconds` ago: older silent flows are
    /// forgotten anyway); `None` when it knows them all or tracks no flows.
    pub(super) fn tracked_too_briefly(&self, since: Option<Instant>, now: Instant) -> Option<f64> {
        let config = self.settings().config;
        let since = since?;
        (config.max_flows > 0 && now.saturating_since(since) < config.flow_idle())
            .then(|| since.as_secs_f64())
    }
}
