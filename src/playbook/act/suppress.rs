//! Suppression for real-time playbooks: a result an action has acted on (one Run Script line,
//! one Webhook body, one alert) is not acted on again within the action's `suppress` span, so
//! a follower that evaluates on every batch acts once per new result, not once per record.
//!
//! A result's key is the rendered line for Run Script; for Webhook bodies and alerts it is the
//! Create Alert deduplication hash (the JSON without the fields that always differ, such as
//! times), so a body that renders `ctx.execution_time` is still the same result.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value as Json;

use super::action::Plan;
use super::dedup::dedup_hash;

/// How long a result that failed waits before it is tried again, if the suppression is longer.
pub const RETRY_AFTER_FAILURE: TimeDelta = TimeDelta::seconds(30);

/// The results acted on, per action index, and until when they are suppressed.
#[derive(Debug, Default)]
pub struct Suppressor {
    until: HashMap<(usize, ResultKey), DateTime<Utc>>,
}

/// What identifies one result of an action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResultKey {
    Line(String),
    Hash(u64),
}

impl Suppressor {
    /// Drops from `plan` the results acted on within their span (and repeats of one result in
    /// the plan); its refusals stay (they are reported each time). Returns the plan of what is
    /// left, the keys of its results and how many were dropped.
    pub fn split(
        &self,
        action: usize,
        plan: Plan,
        now: DateTime<Utc>,
    ) -> (Plan, Vec<ResultKey>, usize) {
        let mut seen = HashSet::new();
        let mut keys = Vec::new();
        let mut suppressed = 0;
        let mut keep = |key: ResultKey| {
            let fresh = seen.insert(key.clone())
                && self
                    .until
                    .get(&(action, key.clone()))
                    .is_none_or(|until| *until <= now);
            if fresh {
                keys.push(key);
            } else {
                suppressed += 1;
            }
            fresh
        };
        let plan = match plan {
            Plan::RunScript {
                target,
                lines,
                refused,
            } => Plan::RunScript {
                target,
                lines: lines
                    .into_iter()
                    .filter(|l| {
                        let sensor = l.sensor.as_deref().unwrap_or("");
                        keep(ResultKey::Line(format!("{sensor}\t{}", l.line)))
                    })
                    .collect(),
                refused,
            },
            Plan::Webhook {
                url,
                bodies,
                refused,
            } => Plan::Webhook {
                url,
                bodies: bodies
                    .into_iter()
                    .filter(|b| {
                        let body = serde_json::from_str(b).unwrap_or(Json::String(b.clone()));
                        keep(hash(&body))
                    })
                    .collect(),
                refused,
            },
            Plan::CreateAlert { file, alerts } => Plan::CreateAlert {
                file,
                alerts: alerts.into_iter().filter(|a| keep(hash(a))).collect(),
            },
        };
        (plan, keys, suppressed)
    }

    /// Records that action `action` acted on `key` at `now`: suppressed for `span`, or, if it
    /// failed, for at most [`RETRY_AFTER_FAILURE`] (so an unreachable target is tried again).
    pub fn acted(
        &mut self,
        action: usize,
        key: ResultKey,
        now: DateTime<Utc>,
        span: TimeDelta,
        ok: bool,
    ) {
        let span = if ok {
            span
        } else {
            span.min(RETRY_AFTER_FAILURE)
        };
        self.until.insert((action, key), now + span);
    }

    /// Forgets results whose suppression ended by `now`, so memory stays bounded by the span.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        self.until.retain(|_, until| *until > now);
    }

    /// The results currently suppressed.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

fn hash(body: &Json) -> ResultKey {
    ResultKey::Hash(dedup_hash(body, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::act::command::{CheckedLine, Refusal};
    use crate::playbook::act::fleet::Target;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn script(lines: &[&str], refused: usize) -> Plan {
        Plan::RunScript {
            target: Target::Local,
            lines: lines
                .iter()
                .map(|l| CheckedLine {
                    line: l.to_string(),
                    program: "tcpreset".into(),
                    args: l.split(' ').skip(1).map(str::to_string).collect(),
                    sensor: None,
                })
                .collect(),
            refused: (0..refused)
                .map(|_| Refusal {
                    line: "rm -rf /".into(),
                    reason: "not allowed".into(),
                })
                .collect(),
        }
    }

    fn line(key: &ResultKey) -> String {
        match key {
            ResultKey::Line(l) => l.trim_start().to_string(),
            ResultKey::Hash(h) => h.to_string(),
        }
    }

    #[test]
    fn a_line_acted_on_is_suppressed_for_the_span_and_failures_retry_sooner() {
        let mut s = Suppressor::default();
        let now = t("2025-06-02T10:00:00Z");
        let span = TimeDelta::seconds(180);
        let (plan, keys, suppressed) = s.split(0, script(&["tcpreset a", "tcpreset b"], 1), now);
        assert_eq!((plan.steps(), plan.refusals(), suppressed), (2, 1, 0));
        s.acted(0, keys[0].clone(), now, span, true);
        s.acted(0, keys[1].clone(), now, span, false);
        // Another action's identical line is its own result.
        assert_eq!(s.split(1, script(&["tcpreset a"], 0), now).0.steps(), 1);
        let later = now + TimeDelta::seconds(10);
        let (plan, keys, suppressed) = s.split(
            0,
            script(&["tcpreset a", "tcpreset b", "tcpreset c"], 0),
            later,
        );
        assert_eq!((plan.steps(), suppressed), (1, 2));
        assert_eq!(line(&keys[0]), "tcpreset c");
        // The failed line is tried again after RETRY_AFTER_FAILURE, the other after the span.
        let retry = now + RETRY_AFTER_FAILURE;
        let (_, keys, _) = s.split(0, script(&["tcpreset a", "tcpreset b"], 0), retry);
        assert_eq!(keys.iter().map(line).collect::<Vec<_>>(), ["tcpreset b"]);
        assert_eq!(
            s.split(0, script(&["tcpreset a"], 0), now + span).0.steps(),
            1
        );
        s.expire(now + span);
        assert!(s.is_empty());
    }

    #[test]
    fn bodies_and_alerts_differing_only_in_times_are_one_result() {
        let mut s = Suppressor::default();
        let now = t("2025-06-02T10:00:00Z");
        let body =
            |time: &str, host: &str| format!(r#"{{"host":"{host}","execution_time":"{time}"}}"#);
        let plan = |bodies: Vec<String>| Plan::Webhook {
            url: crate::playbook::act::action::HttpUrl::parse("http://127.0.0.1:9/x").unwrap(),
            bodies,
            refused: Vec::new(),
        };
        let (_, keys, _) = s.split(0, plan(vec![body("10:00", "h1")]), now);
        s.acted(0, keys[0].clone(), now, TimeDelta::minutes(3), true);
        let (p, _, suppressed) =
            s.split(0, plan(vec![body("10:01", "h1"), body("10:01", "h2")]), now);
        assert_eq!((p.steps(), suppressed), (1, 1));
        let alert =
            |ts: i64| json!({"timestamp": ts, "alert_type": "x", "result": {"srcip": "h1"}});
        let alerts = Plan::CreateAlert {
            file: "a.json".into(),
            alerts: vec![alert(1), alert(2)],
        };
        let (p, keys, suppressed) = s.split(2, alerts, now);
        assert_eq!((keys.len(), suppressed), (1, 1));
        assert!(matches!(p, Plan::CreateAlert { alerts, .. } if alerts.len() == 1));
    }
}
