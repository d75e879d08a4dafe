//! The same search against OpenSearch/Elasticsearch: a playbook's query, window and calculations
//! become one `_search` request body, and its response becomes the `ctx.payload` the in-process
//! backend would give. The transport is a parameter (an HTTP client in deployments, a canned
//! response in tests).

use chrono::{DateTime, SecondsFormat};
use serde_json::{json, Map, Value as Json};

use super::{Backend, BackendError, SearchOutput};
use crate::playbook::record::format::{suricata_state, zeek_state, Accessor, FieldPlan, Format};
use crate::playbook::record::value::{number_json, Literal, Val};
use crate::playbook::search::calc::{metric_json, Calc, Metric};
use crate::playbook::search::evaluator::{Payload, ReadStats};
use crate::playbook::search::query::{CmpOp, Query, Test};
use crate::playbook::search::{SearchSpec, TIMESTAMP_FIELD};

const ZEEK_STATES: &[&str] = &[
    "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH",
];
const SURICATA_TCP_STATES: &[&str] = &[
    "none",
    "syn_sent",
    "syn_recv",
    "established",
    "fin_wait1",
    "fin_wait2",
    "time_wait",
    "last_ack",
    "close_wait",
    "closing",
    "closed",
];

/// Searches an index whose documents are logs of `format`, through `transport` (request body in,
/// response body out).
pub struct OpenSearchBackend<T> {
    pub index: String,
    pub format: Format,
    pub transport: T,
}

impl<T: Fn(&str, &Json) -> Result<Json, String>> Backend for OpenSearchBackend<T> {
    fn search(&self, spec: &SearchSpec<'_>) -> Result<SearchOutput, BackendError> {
        let request = search_request(spec, self.format)?;
        let response = (self.transport)(&self.index, &request).map_err(BackendError::Backend)?;
        let payload = payload_from_response(spec, &response)?;
        Ok(SearchOutput {
            payload,
            // The cluster does not say which fields its documents carry.
            stats: ReadStats {
                fields_seen: u64::MAX,
                ..ReadStats::default()
            },
            sources: vec![self.index.clone()],
            notes: Vec::new(),
            request: Some(request),
        })
    }
}

fn translate_err(msg: String) -> BackendError {
    BackendError::Translate(msg)
}

/// The `_search` request body for a search over documents of `format`.
pub fn search_request(spec: &SearchSpec<'_>, format: Format) -> Result<Json, BackendError> {
    let plan = FieldPlan::new(format, spec.fields);
    let ts_field = native_field(&plan, TIMESTAMP_FIELD)
        .ok_or_else(|| translate_err("the format has no timestamp field".into()))?;
    let iso = |micros: i64| {
        DateTime::from_timestamp_micros(micros)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
    };
    let mut filter = vec![
        json!({ "range": { ts_field: { "gte": iso(spec.window.from_micros), "lt": iso(spec.window.to_micros), "format": "strict_date_optional_time" } } }),
    ];
    if let Some(q) = spec.query {
        filter.push(query_dsl(q, &plan, spec)?);
    }
    let mut aggs = Map::new();
    for calc in spec.calcs {
        aggs.insert(calc.name().to_string(), agg_dsl(calc, &plan)?);
    }
    Ok(json!({
        "size": spec.max_filtered,
        "track_total_hits": true,
        "sort": [{ ts_field: "asc" }],
        "query": { "bool": { "filter": filter } },
        "aggs": aggs,
    }))
}

fn native_field(plan: &FieldPlan, field: usize) -> Option<&str> {
    match plan.accessors[field] {
        Accessor::Slot(i) | Accessor::LowerCase(i) => Some(&plan.paths[i]),
        _ => None,
    }
}

fn lit(l: &Literal) -> Json {
    l.to_json()
}

fn not(q: Json) -> Json {
    json!({ "bool": { "must_not": [q] } })
}

fn any(list: Vec<Json>) -> Json {
    json!({ "bool": { "should": list, "minimum_should_match": 1 } })
}

fn query_dsl(q: &Query, plan: &FieldPlan, spec: &SearchSpec<'_>) -> Result<Json, BackendError> {
    Ok(match q {
        Query::All(list) => {
            json!({ "bool": { "filter": list.iter().map(|q| query_dsl(q, plan, spec)).collect::<Result<Vec<_>, _>>()? } })
        }
        Query::Any(list) => any(list
            .iter()
            .map(|q| query_dsl(q, plan, spec))
            .collect::<Result<Vec<_>, _>>()?),
        Query::Not(q) => not(query_dsl(q, plan, spec)?),
        Query::Test { field, test } => match &plan.accessors[*field] {
            Accessor::Slot(i) => test_dsl(&plan.paths[*i], test, false, spec),
            Accessor::LowerCase(i) => test_dsl(&plan.paths[*i], test, true, spec),
            Accessor::ZeekState(i) => {
                let codes: Vec<&str> = ZEEK_STATES
                    .iter()
                    .copied()
                    .filter(|c| {
                        test.matches(Some(&Val::Str(zeek_state(c).into())), spec.watchlists)
                    })
                    .collect();
                json!({ "terms": { plan.paths[*i].as_str(): codes } })
            }
            Accessor::SuricataState { tcp_state, tcp_rst } => {
                let (state, rst) = (
                    plan.paths[*tcp_state].as_str(),
                    plan.paths[*tcp_rst].as_str(),
                );
                let holds = |code: &str, r: bool| {
                    test.matches(
                        Some(&Val::Str(suricata_state(code, r).into())),
                        spec.watchlists,
                    )
                };
                let mut options = Vec::new();
                for code in SURICATA_TCP_STATES {
                    match (holds(code, false), holds(code, true)) {
                        (true, true) => options.push(json!({ "term": { state: code } })),
                        (false, true) => options.push(json!({ "bool": { "filter": [{ "term": { state: code } }, { "term": { rst: true } }] } })),
                        (true, false) => options.push(json!({ "bool": { "filter": [{ "term": { state: code } }], "must_not": [{ "term": { rst: true } }] } })),
                        (false, false) => {}
                    }
                }
                any(options)
            }
            Accessor::Absent => json!({ "match_none": {} }),
        },
    })
}

fn test_dsl(f: &str, test: &Test, case_insensitive: bool, spec: &SearchSpec<'_>) -> Json {
    let term = |v: Json| {
        if case_insensitive {
            json!({ "term": { f: { "value": v, "case_insensitive": true } } })
        } else {
            json!({ "term": { f: v } })
        }
    };
    let range = |op: &str, v: f64| json!({ "range": { f: { op: v } } });
    match test {
        Test::Is(l) => term(lit(l)),
        Test::IsNot(l) => not(term(lit(l))),
        Test::In(list) if case_insensitive => any(list.iter().map(|l| term(lit(l))).collect()),
        Test::In(list) => json!({ "terms": { f: list.iter().map(lit).collect::<Vec<_>>() } }),
        Test::Within(nets) => any(nets
            .iter()
            .map(|n| json!({ "term": { f: format!("{}/{}", n.addr, n.prefix) } }))
            .collect()),
        Test::Contains(s) => {
            let escaped: String = s
                .chars()
                .flat_map(|c| {
                    if matches!(c, '*' | '?' | '\\') {
                        vec!['\\', c]
                    } else {
                        vec![c]
                    }
                })
                .collect();
            json!({ "wildcard": { f: { "value": format!("*{escaped}*") } } })
        }
        Test::Exists(true) => json!({ "exists": { "field": f } }),
        Test::Exists(false) => not(json!({ "exists": { "field": f } })),
        Test::Compare(CmpOp::Equals, v) => term(json!(v)),
        Test::Compare(CmpOp::NotEquals, v) => not(term(json!(v))),
        Test::Compare(CmpOp::Greater, v) => range("gt", *v),
        Test::Compare(CmpOp::GreaterOrEqual, v) => range("gte", *v),
        Test::Compare(CmpOp::Less, v) => range("lt", *v),
        Test::Compare(CmpOp::LessOrEqual, v) => range("lte", *v),
        Test::Between(lo, hi) => json!({ "range": { f: { "gte": lo, "lte": hi } } }),
        Test::InWatchlist(i) => json!({ "terms": { f: spec.watchlists[*i].keys() } }),
    }
}

fn metric_dsl(m: &Metric, plan: &FieldPlan) -> Result<Json, BackendError> {
    let f = native_field(plan, m.field).ok_or_else(|| translate_err(format!("`{}` is derived on the sensor and cannot be computed by OpenSearch; use the native field", m.field_name)))?;
    Ok(json!({ m.op.es_name(): { "field": f } }))
}

fn agg_dsl(calc: &Calc, plan: &FieldPlan) -> Result<Json, BackendError> {
    match calc {
        Calc::Metric(m) => metric_dsl(m, plan),
        Calc::Terms(t) => {
            let f = native_field(plan, t.field).ok_or_else(|| translate_err(format!("`{}` is derived on the sensor and cannot be grouped by OpenSearch; group by the native field", t.field_name)))?;
            let dir = if t.bottom { "asc" } else { "desc" };
            let rank = if t.rank_by.is_some() {
                "metric"
            } else {
                "_count"
            };
            let mut aggs = Map::new();
            if let Some(m) = &t.rank_by {
                aggs.insert("metric".into(), metric_dsl(m, plan)?);
            }
            for sub in &t.subgroups {
                aggs.insert(sub.name().to_string(), agg_dsl(sub, plan)?);
            }
            let mut body = json!({ "terms": { "field": f, "size": t.size, "order": [{ rank: dir }, { "_key": "asc" }] } });
            if !aggs.is_empty() {
                body["aggs"] = Json::Object(aggs);
            }
            Ok(body)
        }
    }
}

/// The payload of a `_search` response, shaped exactly as the local backend shapes it.
pub fn payload_from_response(
    spec: &SearchSpec<'_>,
    response: &Json,
) -> Result<Payload, BackendError> {
    let total_hits = response["hits"]["total"]["value"]
        .as_u64()
        .or_else(|| response["hits"]["total"].as_u64())
        .ok_or_else(|| BackendError::Backend("the response has no hits.total".into()))?;
    let filtered = response["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| h["_source"].clone())
        .collect();
    let mut aggregations = Map::new();
    for calc in spec.calcs {
        aggregations.insert(
            calc.name().to_string(),
            agg_from_response(calc, &response["aggregations"][calc.name()]),
        );
    }
    Ok(Payload {
        total_hits,
        filtered,
        aggregations,
    })
}

fn agg_from_response(calc: &Calc, agg: &Json) -> Json {
    match calc {
        Calc::Metric(_) => metric_json(agg["value"].as_f64()),
        Calc::Terms(t) => {
            let buckets: Vec<Json> = agg["buckets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    let key = normalize_number(&b["key"]);
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
                            agg_from_response(sub, &b[sub.name()]),
                        );
                    }
                    Json::Object(obj)
                })
                .collect();
            json!({ "buckets": buckets, "sum_other_doc_count": agg["sum_other_doc_count"].as_u64().unwrap_or(0) })
        }
    }
}

/// Integral floats print as integers, as the local backend prints them.
fn normalize_number(v: &Json) -> Json {
    match v.as_f64() {
        Some(n) if v.is_number() => number_json(n),
        _ => v.clone(),
    }
}
