//! The streaming evaluator: records pass through the time window, the query and the
//! calculations into an [`Evaluator`], which [`Evaluator::finish`]es as the `ctx.payload` every
//! backend must produce, with the counts of what was read.

use std::collections::BinaryHeap;

use serde::Serialize;
use serde_json::{json, Map, Value as Json};

use super::calc::CalcState;
use super::{SearchSpec, TIMESTAMP_FIELD};
use crate::playbook::record::format::{record_bindings, FieldPlan};
use crate::playbook::record::time::parse_timestamp_micros;
use crate::playbook::record::value::Val;

/// Counts of records that were read but not searched, reported in the status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReadStats {
    pub records: u64,
    pub malformed: u64,
    pub without_timestamp: u64,
    pub outside_window: u64,
    /// NDJSON lines not parsed because they lack a text the query requires (see
    /// [`super::prefilter`]); malformed lines among them are not noticed.
    pub prefiltered: u64,
    /// The first few malformed records: `file:line: why`.
    pub examples: Vec<String>,
    /// Bit `f` is set once a record of the window had field `f` (fields past 63 count as
    /// seen): a field no record has is likely misspelt.
    pub fields_seen: u64,
}

impl ReadStats {
    pub const MAX_EXAMPLES: usize = 5;

    pub fn merge(&mut self, other: ReadStats) {
        self.records += other.records;
        self.malformed += other.malformed;
        self.without_timestamp += other.without_timestamp;
        self.outside_window += other.outside_window;
        self.prefiltered += other.prefiltered;
        self.fields_seen |= other.fields_seen;
        let room = Self::MAX_EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }
}

/// The result of a search, before it is printed as `ctx.payload`.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub total_hits: u64,
    /// The `_source` of the earliest matching records, at most `max_filtered`.
    pub filtered: Vec<Json>,
    pub aggregations: Map<String, Json>,
}

impl Payload {
    /// `ctx.payload` as the templates and conditions see it. Each of `filtered` holds the record
    /// as `_source` and its fields by native and canonical name, so that
    /// `{{#ctx.payload.filtered}}{{srcip}}{{/ctx.payload.filtered}}` reads them directly.
    pub fn to_json(&self) -> Json {
        let filtered: Vec<Json> = self.filtered.iter().map(record_bindings).collect();
        json!({
            "hits": { "total": { "value": self.total_hits } },
            "filtered_total": filtered.len(),
            "filtered": filtered,
            "aggregations": self.aggregations,
        })
    }
}

/// Where a record was read: file index and line, which orders equal timestamps.
pub type Position = (u32, u64);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    timestamp: i64,
    position: Position,
    source: JsonOrd,
}

/// JSON that sorts as equal, so the heap orders candidates by time and position only.
#[derive(Debug)]
struct JsonOrd(Json);

impl PartialEq for JsonOrd {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for JsonOrd {}
impl PartialOrd for JsonOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for JsonOrd {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// Accumulates matching records. Workers that read different parts of the logs each own one and
/// [`Evaluator::merge`] them at the end.
#[derive(Debug)]
pub struct Evaluator<'p> {
    spec: SearchSpec<'p>,
    calc: CalcState,
    total_hits: u64,
    filtered: BinaryHeap<Candidate>,
    pub stats: ReadStats,
}

impl<'p> Evaluator<'p> {
    pub fn new(spec: SearchSpec<'p>) -> Evaluator<'p> {
        Evaluator {
            spec,
            calc: CalcState::new(spec.calcs),
            total_hits: 0,
            filtered: BinaryHeap::new(),
            stats: ReadStats::default(),
        }
    }

    /// Offers one record; `source` prints it whole, and is called only if it is kept in `filtered`.
    pub fn push<'a>(
        &mut self,
        plan: &FieldPlan,
        slots: &[Option<Val<'a>>],
        position: Position,
        source: impl FnOnce() -> Json,
    ) {
        self.stats.records += 1;
        let get = |field: usize| plan.get(field, slots);
        let Some(timestamp) = get(TIMESTAMP_FIELD)
            .as_ref()
            .and_then(parse_timestamp_micros)
        else {
            self.stats.without_timestamp += 1;
            return;
        };
        let window = self.spec.window;
        if timestamp < window.from_micros || timestamp >= window.to_micros {
            self.stats.outside_window += 1;
            return;
        }
        let fields = plan.accessors.len().min(64);
        let all = if fields == 64 {
            u64::MAX
        } else {
            (1 << fields) - 1
        };
        if self.stats.fields_seen & all != all {
            // Until every field has been seen once: a few records at the start of most runs.
            for field in 0..fields {
                if self.stats.fields_seen & (1 << field) == 0 && get(field).is_some() {
                    self.stats.fields_seen |= 1 << field;
                }
            }
        }
        if let Some(query) = self.spec.query {
            if !query.matches(&get, self.spec.watchlists) {
                return;
            }
        }
        self.total_hits += 1;
        self.calc.push(self.spec.calcs, &get);
        self.offer(timestamp, position, source);
    }

    fn offer(&mut self, timestamp: i64, position: Position, source: impl FnOnce() -> Json) {
        if self.spec.max_filtered == 0 {
            return;
        }
        if self.filtered.len() == self.spec.max_filtered {
            let latest = self.filtered.peek().expect("heap is full");
            if (timestamp, position) >= (latest.timestamp, latest.position) {
                return;
            }
            self.filtered.pop();
        }
        self.filtered.push(Candidate {
            timestamp,
            position,
            source: JsonOrd(source()),
        });
    }

    pub fn merge(&mut self, other: Evaluator<'_>) {
        self.total_hits += other.total_hits;
        self.calc.merge(other.calc);
        self.stats.merge(other.stats);
        for c in other.filtered {
            self.offer(c.timestamp, c.position, || c.source.0);
        }
    }

    pub fn finish(self) -> (Payload, ReadStats) {
        let filtered = self
            .filtered
            .into_sorted_vec()
            .into_iter()
            .map(|c| c.source.0)
            .collect();
        let payload = Payload {
            total_hits: self.total_hits,
            filtered,
            aggregations: self.calc.finish(self.spec.calcs),
        };
        (payload, self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::record::format::Format;
    use crate::playbook::record::value::Literal;
    use crate::playbook::search::query::{Query, Test};
    use crate::playbook::search::Window;

    #[test]
    fn window_query_and_filtered_cap() {
        let fields = vec!["timestamp".to_string(), "srcip".to_string()];
        let query = Query::Test {
            field: 1,
            test: Test::IsNot(Literal::Str("10.0.0.9".into())),
        };
        let spec = SearchSpec {
            fields: &fields,
            query: Some(&query),
            calcs: &[],
            watchlists: &[],
            window: Window {
                from_micros: 0,
                to_micros: 100,
            },
            max_filtered: 2,
        };
        let plan = FieldPlan::new(Format::Ndjson, &fields);
        let mut a = Evaluator::new(spec);
        let mut b = Evaluator::new(spec);
        let recs: [(Option<f64>, &str); 6] = [
            (Some(50e-6), "10.0.0.1"),
            (Some(10e-6), "10.0.0.2"),
            (None, "x"),
            (Some(1.0), "late"),
            (Some(5e-6), "10.0.0.9"),
            (Some(20e-6), "10.0.0.3"),
        ];
        for (i, (ts, ip)) in recs.iter().enumerate() {
            let slots = vec![ts.map(Val::Num), Some(Val::Str((*ip).into()))];
            let ev = if i % 2 == 0 { &mut a } else { &mut b };
            ev.push(&plan, &slots, (0, i as u64), || json!({ "srcip": ip }));
        }
        a.merge(b);
        let (payload, stats) = a.finish();
        assert_eq!(payload.total_hits, 3);
        assert_eq!(
            payload.filtered,
            [json!({"srcip": "10.0.0.2"}), json!({"srcip": "10.0.0.3"})]
        );
        assert_eq!(
            (stats.records, stats.without_timestamp, stats.outside_window),
            (6, 1, 1)
        );
        let ctx = payload.to_json();
        assert_eq!(ctx["hits"]["total"]["value"], 3);
        assert_eq!(ctx["filtered_total"], 2);
        assert_eq!(ctx["filtered"][0]["_source"]["srcip"], "10.0.0.2");
    }
}
