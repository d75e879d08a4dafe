//! A `_search` response read back into the `ctx.payload` the local engine builds: hits, the
//! earliest records, and every aggregation with the sensor's keys (Suricata's `proto` lower-cased,
//! booleans as booleans, integral numbers as integers); a calculation over a field the format
//! lacks is filled in as the sensor fills it.

use serde_json::{json, Map, Value as Json};

use super::mapping::Kind;
use super::opensearch::{native_field, Index};
use super::BackendError;
use crate::playbook::record::format::{Accessor, FieldPlan};
use crate::playbook::record::value::number_json;
use crate::playbook::search::calc::{metric_json, Calc, CalcState};
use crate::playbook::search::evaluator::Payload;
use crate::playbook::search::SearchSpec;

/// The payload of a `_search` response, shaped exactly as the local backend shapes it. A response
/// that did not search every shard, or timed out, is an error: a run never acts on part of it.
pub fn payload_from_response(
    spec: &SearchSpec<'_>,
    index: &Index<'_>,
    response: &Json,
) -> Result<Payload, BackendError> {
    if response["timed_out"] == true {
        return Err(BackendError::Backend("the cluster timed out before it searched every document (`timed_out: true`); nothing was acted on; raise the cluster's search timeout or shorten the lookback".into()));
    }
    if let Some(failed) = response["_shards"]["failed"].as_u64().filter(|n| *n > 0) {
        let reason = response["_shards"]["failures"][0]["reason"]["reason"]
            .as_str()
            .unwrap_or("no reason given");
        return Err(BackendError::Backend(format!("{failed} shard(s) of the index failed ({reason}); nothing was acted on, as the results would be partial")));
    }
    let total_hits = response["hits"]["total"]["value"]
        .as_u64()
        .or_else(|| response["hits"]["total"].as_u64())
        .ok_or_else(|| {
            BackendError::Backend(
                "the response has no hits.total; is the URL an OpenSearch/Elasticsearch cluster?"
                    .into(),
            )
        })?;
    let filtered = response["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| h["_source"].clone())
        .collect();
    let plan = FieldPlan::new(index.format, spec.fields);
    let mut aggregations = Map::new();
    for calc in spec.calcs {
        aggregations.insert(
            calc.name().to_string(),
            agg_from_response(calc, &plan, index, &response["aggregations"][calc.name()]),
        );
    }
    Ok(Payload {
        total_hits,
        filtered,
        aggregations,
    })
}

fn field_of(calc: &Calc) -> usize {
    match calc {
        Calc::Terms(t) => t.field,
        Calc::Metric(m) => m.field,
    }
}

fn agg_from_response(calc: &Calc, plan: &FieldPlan, index: &Index<'_>, agg: &Json) -> Json {
    if matches!(plan.accessors[field_of(calc)], Accessor::Absent) {
        let calcs = std::slice::from_ref(calc);
        return CalcState::new(calcs)
            .finish(calcs)
            .remove(calc.name())
            .unwrap_or_default();
    }
    let Calc::Terms(t) = calc else {
        return metric_json(agg["value"].as_f64());
    };
    let lower = matches!(plan.accessors[t.field], Accessor::LowerCase(_));
    let boolean =
        native_field(plan, t.field).is_some_and(|p| index.mapping.field(p).kind == Kind::Boolean);
    let buckets: Vec<Json> = agg["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let key = match (&b["key"], &b["key_as_string"]) {
                (_, Json::String(s)) if boolean => Json::Bool(s == "true"),
                (Json::String(s), _) if lower => Json::String(s.to_ascii_lowercase()),
                (k, _) => normalize_number(k),
            };
            let mut obj = Map::new();
            obj.insert("key".into(), key.clone());
            obj.insert("doc_count".into(), b["doc_count"].clone());
            obj.insert(t.field_name.clone(), key);
            if t.rank_by.is_some() {
                obj.insert("metric".into(), metric_json(b["metric"]["value"].as_f64()));
            }
            for sub in &t.subgroups {
                obj.insert(
                    sub.name().to_string(),
                    agg_from_response(sub, plan, index, &b[sub.name()]),
                );
            }
            Json::Object(obj)
        })
        .collect();
    json!({ "buckets": buckets, "sum_other_doc_count": agg["sum_other_doc_count"].as_u64().unwrap_or(0) })
}

/// Integral floats print as integers, as the local backend prints them.
fn normalize_number(v: &Json) -> Json {
    match v.as_f64() {
        Some(n) if v.is_number() => number_json(n),
        _ => v.clone(),
    }
}
