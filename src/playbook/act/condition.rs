//! Conditions: Compare Value on the total hits, Compare List over a calculation's results, and the
//! rows (chains of buckets) that actions iterate over.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::playbook::search::query::CmpOp;
use crate::playbook::search::watchlist::Watchlist;

/// One result of a calculation: the buckets from the outermost group down to it. Shared, since
/// the results of one parent bucket all hold it (with every subgroup inside it).
pub type Row = Vec<Arc<Json>>;

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub name: String,
    pub kind: ConditionKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConditionKind {
    /// `ctx.payload.hits.total.value OP value`.
    TotalHits { op: CmpOp, value: f64 },
    /// At least one (or all) of a calculation's results `OP` a threshold.
    List(CompareList),
}

/// Compare List: the results of the calculation named by `chain` (outermost first).
#[derive(Debug, Clone, PartialEq)]
pub struct CompareList {
    /// All results must hold (at least one otherwise).
    pub all: bool,
    /// Compare the results' counts (their ranking values otherwise).
    pub counts: bool,
    pub chain: Vec<String>,
    /// The calculation is a metric.
    pub metric: bool,
    pub op: CmpOp,
    pub threshold: Threshold,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    Value(f64),
    /// Per result: the column of the watchlist row whose key is the result's key.
    Watchlist {
        index: usize,
        column: String,
    },
}

/// Whether a condition was met, and for Compare List which results matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub name: String,
    pub met: bool,
    #[serde(skip)]
    pub matches: Vec<Row>,
}

impl Condition {
    /// Evaluates the condition on `ctx.payload`.
    pub fn evaluate(&self, payload: &Json, watchlists: &[Watchlist]) -> Outcome {
        let (met, matches) = match &self.kind {
            ConditionKind::TotalHits { op, value } => {
                let total = payload["hits"]["total"]["value"].as_f64().unwrap_or(0.0);
                (op.holds(total, *value), Vec::new())
            }
            ConditionKind::List(list) => {
                let rows = rows(&payload["aggregations"], &list.chain, list.metric);
                let mut matches = Vec::new();
                for (mut row, value) in rows {
                    let limit = match &list.threshold {
                        Threshold::Value(v) => Some(*v),
                        Threshold::Watchlist { index, column } => {
                            let key = row.last().map(|b| key_text(&b["key"])).unwrap_or_default();
                            let found = watchlists[*index].row_json(&key);
                            let limit = found
                                .as_ref()
                                .and_then(|r| r[column].as_str())
                                .and_then(|s| s.trim().parse().ok());
                            if let Some(found) = found {
                                row.push(Arc::new(json!({ "watchlist": found })));
                            }
                            limit
                        }
                    };
                    let value = if list.counts {
                        value.count
                    } else {
                        value.value
                    };
                    if let (Some(v), Some(limit)) = (value, limit) {
                        if list.op.holds(v, limit) {
                            matches.push(row);
                            continue;
                        }
                    }
                    if list.all {
                        return Outcome {
                            name: self.name.clone(),
                            met: false,
                            matches: Vec::new(),
                        };
                    }
                }
                (!matches.is_empty(), matches)
            }
        };
        Outcome {
            name: self.name.clone(),
            met,
            matches,
        }
    }
}

fn key_text(key: &Json) -> String {
    match key {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The count and ranking value of one result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResultValue {
    pub count: Option<f64>,
    pub value: Option<f64>,
}

/// The results of the calculation at the end of `chain` (names from the outermost group). For a
/// group, each bucket is a result; for a metric, its value in each parent bucket (or once).
pub fn rows(aggregations: &Json, chain: &[String], metric: bool) -> Vec<(Row, ResultValue)> {
    let mut out = Vec::new();
    walk(aggregations, chain, metric, &mut Vec::new(), &mut out);
    out
}

fn walk(
    node: &Json,
    chain: &[String],
    metric: bool,
    frames: &mut Row,
    out: &mut Vec<(Row, ResultValue)>,
) {
    let Some((name, rest)) = chain.split_first() else {
        return;
    };
    let agg = &node[name.as_str()];
    if rest.is_empty() && metric {
        let value = agg["value"].as_f64();
        out.push((frames.clone(), ResultValue { count: None, value }));
        return;
    }
    for bucket in agg["buckets"].as_array().into_iter().flatten() {
        frames.push(Arc::new(bucket.clone()));
        if rest.is_empty() {
            let count = bucket["doc_count"].as_f64();
            let value = bucket.get("metric").map_or(count, |m| m["value"].as_f64());
            out.push((frames.clone(), ResultValue { count, value }));
        } else {
            walk(bucket, rest, metric, frames, out);
        }
        frames.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Json {
        json!({"hits": {"total": {"value": 7}}, "aggregations": {
            "by_src": {"buckets": [
                {"key": "10.0.0.1", "srcip": "10.0.0.1", "doc_count": 5, "by_port": {"buckets": [
                    {"key": 22, "dstport": 22, "doc_count": 4}, {"key": 23, "dstport": 23, "doc_count": 1}]}, "bytes": {"value": 900}},
                {"key": "10.0.0.2", "srcip": "10.0.0.2", "doc_count": 2, "by_port": {"buckets": [
                    {"key": 22, "dstport": 22, "doc_count": 2}]}, "bytes": {"value": 10}}]}}})
    }

    fn list(
        all: bool,
        counts: bool,
        chain: &[&str],
        metric: bool,
        op: CmpOp,
        threshold: Threshold,
    ) -> Condition {
        let chain = chain.iter().map(|s| s.to_string()).collect();
        Condition {
            name: "c".into(),
            kind: ConditionKind::List(CompareList {
                all,
                counts,
                chain,
                metric,
                op,
                threshold,
            }),
        }
    }

    #[test]
    fn compare_value_on_total_hits() {
        let c = Condition {
            name: "many".into(),
            kind: ConditionKind::TotalHits {
                op: CmpOp::GreaterOrEqual,
                value: 7.0,
            },
        };
        assert!(c.evaluate(&payload(), &[]).met);
        let c = Condition {
            name: "many".into(),
            kind: ConditionKind::TotalHits {
                op: CmpOp::Greater,
                value: 7.0,
            },
        };
        assert!(!c.evaluate(&payload(), &[]).met);
    }

    #[test]
    fn compare_list_at_least_one_and_all_over_nested_results() {
        let out = list(
            false,
            true,
            &["by_src", "by_port"],
            false,
            CmpOp::GreaterOrEqual,
            Threshold::Value(2.0),
        )
        .evaluate(&payload(), &[]);
        assert!(out.met);
        assert_eq!(out.matches.len(), 2);
        assert_eq!(out.matches[1][0]["srcip"], "10.0.0.2");
        assert_eq!(out.matches[1][1]["dstport"], 22);
        assert!(
            !list(
                true,
                true,
                &["by_src", "by_port"],
                false,
                CmpOp::GreaterOrEqual,
                Threshold::Value(2.0)
            )
            .evaluate(&payload(), &[])
            .met
        );
        assert!(
            list(
                true,
                false,
                &["by_src", "bytes"],
                true,
                CmpOp::Greater,
                Threshold::Value(5.0)
            )
            .evaluate(&payload(), &[])
            .met
        );
        assert!(
            !list(
                true,
                false,
                &["nothing"],
                false,
                CmpOp::Greater,
                Threshold::Value(0.0)
            )
            .evaluate(&payload(), &[])
            .met
        );
    }

    #[test]
    fn thresholds_from_a_watchlist_row_per_result() {
        let w = Watchlist::parse("ports", "port", "port,threshold,name\n22,3,SSH\n").unwrap();
        let c = list(
            false,
            true,
            &["by_src", "by_port"],
            false,
            CmpOp::Greater,
            Threshold::Watchlist {
                index: 0,
                column: "threshold".into(),
            },
        );
        let out = c.evaluate(&payload(), &[w]);
        assert!(out.met);
        assert_eq!(out.matches.len(), 1);
        assert_eq!(out.matches[0][2]["watchlist"]["name"], "SSH");
    }
}
