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

/// One result of a plan, as a plan of its own, with its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: ResultKey,
    pub plan: Plan,
}

impl Suppressor {
    /// Splits `plan` into one plan per result and drops those acted on within the span (and
    /// repeats of one result in the plan); the
    /// refusals of the plan come back as a plan with no step (never suppressed: they are
    /// reported each time). Returns the items to carry out and how many were suppressed.
    pub fn split(
        &self,
        action: usize,
        plan: Plan,
        now: DateTime<Utc>,
    ) -> (Vec<Item>, Option<Plan>, usize) {
        let (items, refused) = items(plan);
        let before = items.len();
        let mut seen = HashSet::new();
        let fresh: Vec<Item> = items
            .into_iter()
            .filter(|i| {
                seen.insert(i.key.clone())
                    && self
                        .until
                        .get(&(action, i.key.clone()))
                        .is_none_or(|until| *until <= now)
            })
            .collect();
        let suppressed = before - fresh.len();
        (fresh, refused, suppressed)
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

/// The results of a plan, one plan each, and its refusals as a plan with no step.
fn items(plan: Plan) -> (Vec<Item>, Option<Plan>) {
    match plan {
        Plan::RunScript {
            target,
            lines,
            refused,
        } => {
            let refused = (!refused.is_empty()).then(|| Plan::RunScript {
                target: target.clone(),
                lines: Vec::new(),
                refused,
            });
            let items = lines
                .into_iter()
                .map(|line| Item {
                    key: ResultKey::Line(line.line.clone()),
                    plan: Plan::RunScript {
                        target: target.clone(),
                        lines: vec![line],
                        refused: Vec::new(),
                    },
                })
                .collect();
            (items, refused)
        }
        Plan::Webhook {
            url,
            bodies,
            refused,
        } => {
            let refused = (!refused.is_empty()).then(|| Plan::Webhook {
                url: url.clone(),
                bodies: Vec::new(),
                refused,
            });
            let items = bodies
                .into_iter()
                .map(|body| Item {
                    key: hash(&serde_json::from_str(&body).unwrap_or(Json::String(body.clone()))),
                    plan: Plan::Webhook {
                        url: url.clone(),
                        bodies: vec![body],
                        refused: Vec::new(),
                    },
                })
                .collect();
            (items, refused)
        }
        Plan::CreateAlert { file, alerts } => {
            let items = alerts
                .into_iter()
                .map(|alert| Item {
                    key: hash(&alert),
                    plan: Plan::CreateAlert {
                        file: file.clone(),
                        alerts: vec![alert],
                    },
                })
                .collect();
            (items, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::act::command::{CheckedLine, Refusal, Target};
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn line(text: &str) -> CheckedLine {
        CheckedLine {
            line: text.into(),
            program: "tcpreset".into(),
            args: text.split(' ').skip(1).map(str::to_string).collect(),
        }
    }

    fn script(lines: &[&str], refused: usize) -> Plan {
        Plan::RunScript {
            target: Target::Local,
            lines: lines.iter().map(|l| line(l)).collect(),
            refused: (0..refused)
                .map(|_| Refusal {
                    line: "rm -rf /".into(),
                    reason: "not allowed".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_line_acted_on_is_suppressed_for_the_span_and_failures_retry_sooner() {
        let mut s = Suppressor::default();
        let now = t("2025-06-02T10:00:00Z");
        let span = TimeDelta::seconds(180);
        let (items, refused, suppressed) =
            s.split(0, script(&["tcpreset a", "tcpreset b"], 1), now);
        assert_eq!((items.len(), suppressed), (2, 0));
        assert_eq!(refused.unwrap().refusals(), 1);
        s.acted(0, items[0].key.clone(), now, span, true);
        s.acted(0, items[1].key.clone(), now, span, false);
        // Another action's identical line is its own result.
        assert_eq!(s.split(1, script(&["tcpreset a"], 0), now).0.len(), 1);
        let later = now + TimeDelta::seconds(10);
        let (items, _, suppressed) = s.split(
            0,
            script(&["tcpreset a", "tcpreset b", "tcpreset c"], 0),
            later,
        );
        assert_eq!(suppressed, 2);
        assert_eq!(items[0].key, ResultKey::Line("tcpreset c".into()));
        // The failed line is tried again after RETRY_AFTER_FAILURE, the other after the span.
        let retry = now + RETRY_AFTER_FAILURE;
        let (items, _, _) = s.split(0, script(&["tcpreset a", "tcpreset b"], 0), retry);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].key, ResultKey::Line("tcpreset b".into()));
        assert_eq!(
            s.split(0, script(&["tcpreset a"], 0), now + span).0.len(),
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
        let (items, _, _) = s.split(0, plan(vec![body("10:00", "h1")]), now);
        s.acted(0, items[0].key.clone(), now, TimeDelta::minutes(3), true);
        let (items, _, suppressed) =
            s.split(0, plan(vec![body("10:01", "h1"), body("10:01", "h2")]), now);
        assert_eq!((items.len(), suppressed), (1, 1));
        let alert =
            |ts: i64| json!({"timestamp": ts, "alert_type": "x", "result": {"srcip": "h1"}});
        let alerts = Plan::CreateAlert {
            file: "a.json".into(),
            alerts: vec![alert(1), alert(2)],
        };
        let (items, _, suppressed) = s.split(2, alerts, now);
        assert_eq!((items.len(), suppressed), (1, 1));
    }
}
