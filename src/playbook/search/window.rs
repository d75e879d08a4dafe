//! The sliding window of a real-time playbook: the records of the lookback that matched the
//! query, each holding only the fields the playbook reads (and its whole record while
//! `filtered` may show it), evaluated into the same `ctx.payload` a scheduled run gives.
//!
//! A record that does not match the query is counted and dropped as it is read, so memory is
//! bounded by the hits of the window, not by the file. An evaluation replays the hits kept (not
//! the records read) through an [`Evaluator`]; the query is a test of one record, so the
//! payload is the one a scheduled run over the same window would compute.

use std::collections::VecDeque;

use serde_json::Value as Json;

use super::evaluator::{Evaluator, Payload, Position};
use super::{SearchSpec, Window, TIMESTAMP_FIELD};
use crate::playbook::record::format::{Accessor, FieldPlan, Format};
use crate::playbook::record::time::parse_timestamp_micros;
use crate::playbook::record::value::Val;

/// What became of a record offered to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// It matched and is kept.
    Hit,
    /// It did not match the query.
    NoMatch,
    /// Its timestamp is older than the window.
    Old,
    /// It has no timestamp (or one that does not parse).
    NoTimestamp,
    /// It matched, but the window already holds [`HitWindow::MOST_HITS`] hits: dropped.
    Full,
}

struct Hit {
    timestamp: i64,
    position: Position,
    values: Box<[Option<Val<'static>>]>,
    source: Option<Json>,
}

/// The hits of the lookback window, oldest first by arrival.
pub struct HitWindow {
    lookback_micros: i64,
    keep_source: bool,
    hits: VecDeque<Hit>,
    /// Reads field `f` of a kept hit from its slot `f`.
    own_plan: FieldPlan,
    /// Bytes held by the kept values and records, roughly.
    bytes: usize,
    next_position: u64,
    most_hits: usize,
    /// Bit `f`: a record of the window had field `f` (as [`super::evaluator::ReadStats`]).
    pub fields_seen: u64,
}

impl HitWindow {
    /// The most hits a window keeps (a query that matches most records of a busy log, or no
    /// query at all, over a long lookback); more are dropped and counted.
    pub const MOST_HITS: usize = 1_000_000;

    /// A window of `lookback_micros` over a playbook of `fields` fields; `keep_source` keeps each
    /// hit's whole record for `filtered` (when `source.max_filtered` is not 0).
    pub fn new(fields: usize, lookback_micros: i64, keep_source: bool) -> HitWindow {
        HitWindow {
            lookback_micros,
            keep_source,
            hits: VecDeque::new(),
            own_plan: FieldPlan {
                format: Format::Ndjson,
                paths: Vec::new(),
                accessors: (0..fields).map(Accessor::Slot).collect(),
            },
            bytes: 0,
            next_position: 0,
            most_hits: Self::MOST_HITS,
            fields_seen: 0,
        }
    }

    /// The same window keeping at most `most_hits` hits.
    pub fn with_most_hits(mut self, most_hits: usize) -> HitWindow {
        self.most_hits = most_hits;
        self
    }

    /// The window of an evaluation at `now_micros`: from `now - lookback`, with no end (a
    /// record stamped ahead of the follower's clock is in it).
    pub fn window_at(&self, now_micros: i64) -> Window {
        Window {
            from_micros: now_micros.saturating_sub(self.lookback_micros),
            to_micros: i64::MAX,
        }
    }

    /// Offers one record read at `now_micros`: its fields are `plan.get(id, slots)`.
    pub fn offer<'a>(
        &mut self,
        spec: &SearchSpec<'_>,
        plan: &FieldPlan,
        slots: &[Option<Val<'a>>],
        now_micros: i64,
        source: impl FnOnce() -> Json,
    ) -> Offer {
        let get = |field: usize| plan.get(field, slots);
        let Some(timestamp) = get(TIMESTAMP_FIELD)
            .as_ref()
            .and_then(parse_timestamp_micros)
        else {
            return Offer::NoTimestamp;
        };
        if timestamp < self.window_at(now_micros).from_micros {
            return Offer::Old;
        }
        let fields = self.own_plan.accessors.len();
        for field in 0..fields.min(64) {
            if self.fields_seen & (1 << field) == 0 && get(field).is_some() {
                self.fields_seen |= 1 << field;
            }
        }
        if let Some(query) = spec.query {
            if !query.matches(&get, spec.watchlists) {
                return Offer::NoMatch;
            }
        }
        if self.hits.len() >= self.most_hits {
            return Offer::Full;
        }
        let values: Box<[Option<Val<'static>>]> =
            (0..fields).map(|f| get(f).map(Val::into_owned)).collect();
        let source = self.keep_source.then(source);
        self.bytes += hit_bytes(&values, source.as_ref());
        self.hits.push_back(Hit {
            timestamp,
            position: (0, self.next_position),
            values,
            source,
        });
        self.next_position += 1;
        Offer::Hit
    }

    /// Drops the hits older than the window at `now_micros`; returns how many.
    pub fn expire(&mut self, now_micros: i64) -> usize {
        let from = self.window_at(now_micros).from_micros;
        let before = self.hits.len();
        let mut freed = 0;
        self.hits.retain(|h| {
            let keep = h.timestamp >= from;
            if !keep {
                freed += hit_bytes(&h.values, h.source.as_ref());
            }
            keep
        });
        self.bytes -= freed;
        before - self.hits.len()
    }

    /// The hits kept.
    pub fn len(&self) -> usize {
        self.hits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// The memory the kept hits hold, roughly, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The payload over the hits kept, as a search of `spec` (whose window should be
    /// [`HitWindow::window_at`] the evaluation's time) would give it.
    pub fn evaluate(&self, spec: &SearchSpec<'_>) -> Payload {
        let mut ev = Evaluator::new(*spec);
        for hit in &self.hits {
            ev.push(&self.own_plan, &hit.values, hit.position, || {
                hit.source.clone().unwrap_or(Json::Null)
            });
        }
        ev.finish().0
    }
}

/// The bytes a hit holds, roughly: its slots, strings and record.
fn hit_bytes(values: &[Option<Val<'static>>], source: Option<&Json>) -> usize {
    let slots = std::mem::size_of_val(values) + std::mem::size_of::<Hit>();
    let strings: usize = values
        .iter()
        .map(|v| match v {
            Some(Val::Str(s)) => s.len(),
            Some(Val::Json(j)) => json_bytes(j),
            _ => 0,
        })
        .sum();
    slots + strings + source.map_or(0, json_bytes)
}

fn json_bytes(j: &Json) -> usize {
    match j {
        Json::String(s) => 24 + s.len(),
        Json::Array(items) => 24 + items.iter().map(json_bytes).sum::<usize>(),
        Json::Object(map) => {
            24 + map
                .iter()
                .map(|(k, v)| 24 + k.len() + json_bytes(v))
                .sum::<usize>()
        }
        _ => 16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::record::value::Literal;
    use crate::playbook::search::calc::{Calc, Metric, MetricOp};
    use crate::playbook::search::query::{Query, Test};
    use serde_json::json;

    fn spec<'p>(
        fields: &'p [String],
        query: Option<&'p Query>,
        calcs: &'p [Calc],
        window: Window,
    ) -> SearchSpec<'p> {
        SearchSpec {
            fields,
            query,
            calcs,
            watchlists: &[],
            window,
            max_filtered: 10,
        }
    }

    #[test]
    fn keeps_hits_of_the_window_only_and_evaluates_them_like_a_search() {
        let fields = vec!["timestamp".to_string(), "srcip".to_string()];
        let query = Query::Test {
            field: 1,
            test: Test::IsNot(Literal::Str("10.0.0.9".into())),
        };
        let calcs = vec![Calc::Metric(Metric {
            name: "n".into(),
            op: MetricOp::UniqueCount,
            field: 1,
            field_name: "srcip".into(),
        })];
        let plan = FieldPlan::new(Format::Ndjson, &fields);
        let second = 1_000_000;
        let mut w = HitWindow::new(fields.len(), 60 * second, true);
        let now = 1_000 * second;
        let s = spec(&fields, Some(&query), &calcs, w.window_at(now));
        let mut offer = |ts: Option<f64>, ip: &str| {
            let slots = vec![ts.map(Val::Num), Some(Val::Str(ip.to_string().into()))];
            w.offer(&s, &plan, &slots, now, || json!({ "srcip": ip }))
        };
        assert_eq!(offer(Some(990.0), "10.0.0.1"), Offer::Hit);
        assert_eq!(offer(Some(995.0), "10.0.0.9"), Offer::NoMatch);
        assert_eq!(offer(Some(900.0), "10.0.0.2"), Offer::Old);
        assert_eq!(offer(None, "10.0.0.3"), Offer::NoTimestamp);
        assert_eq!(offer(Some(999.0), "10.0.0.4"), Offer::Hit);
        assert_eq!(w.len(), 2);
        assert!(w.bytes() > 0);
        let payload = w.evaluate(&s);
        assert_eq!(payload.total_hits, 2);
        assert_eq!(payload.aggregations["n"]["value"], 2);
        assert_eq!(payload.filtered[0]["srcip"], "10.0.0.1");
        // 55 s later the first hit (at 990 s) has left the 60 s window, the second (999 s) has not.
        assert_eq!(w.expire(now + 55 * second), 1);
        let later = spec(
            &fields,
            Some(&query),
            &calcs,
            w.window_at(now + 55 * second),
        );
        let payload = w.evaluate(&later);
        assert_eq!(payload.total_hits, 1);
        assert_eq!(payload.filtered, [json!({"srcip": "10.0.0.4"})]);
        assert_eq!(w.expire(now + 100 * second), 1);
        assert!(w.is_empty());
        assert_eq!(w.bytes(), 0);
    }

    #[test]
    fn a_full_window_drops_further_hits_and_says_so() {
        let fields = vec!["timestamp".to_string()];
        let plan = FieldPlan::new(Format::Ndjson, &fields);
        let mut w = HitWindow::new(1, 60_000_000, false).with_most_hits(2);
        let s = spec(&fields, None, &[], w.window_at(0));
        let slots = vec![Some(Val::Num(0.0))];
        let offers: Vec<Offer> = (0..3)
            .map(|_| w.offer(&s, &plan, &slots, 0, || Json::Null))
            .collect();
        assert_eq!(offers, [Offer::Hit, Offer::Hit, Offer::Full]);
        assert_eq!(w.evaluate(&s).total_hits, 2);
    }
}
