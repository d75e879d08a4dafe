//! Rules whose host a reload made protected: suspended (left out of the captures' snapshots,
//! see `matcher` in `captures.rs`), marked in `tcpreset list`, logged, and resumed if the host
//! stops being protected before they expire.
use super::{audit, Daemon};
use crate::config::Cidr;
use crate::proto::RuleView;
use crate::rules::Rule;
use crate::time::Instant;

impl Daemon {
    /// A rule as listed: suspended while its host is protected.
    pub(super) fn view(&self, rule: &Rule, now: Instant) -> RuleView {
        let protected = &self
            .settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .protected;
        RuleView {
            suspended: suspension(protected, rule),
            ..RuleView::of(rule, now)
        }
    }

    /// Logs each rule a change of the protected networks suspends or resumes.
    pub(super) fn log_suspensions(&self, before: &[Cidr], after: &[Cidr]) {
        for rule in self.lock().table.iter() {
            match (suspension(before, rule), suspension(after, rule)) {
                (None, Some(why)) => {
                    tracing::warn!(engid = %rule.key.engid, host = %rule.key.host, port = ?rule.key.port, "rule {why}");
                }
                (Some(_), None) => audit(rule, "rule resumed: its host is no longer protected"),
                _ => {}
            }
        }
    }
}

/// Why `rule` is suspended under `protected`, if it is.
fn suspension(protected: &[Cidr], rule: &Rule) -> Option<String> {
    protected
        .iter()
        .find(|c| c.contains(rule.key.host))
        .map(|net| format!("suspended: host {} is protected ({net}) since the configuration was reloaded; it is not reset until it is no longer protected or the rule is cancelled", rule.key.host))
}
