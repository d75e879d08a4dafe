//! The same search against OpenSearch/Elasticsearch: a playbook's query, window and calculations
//! become one `_search` request body, shaped by the index's [`Mapping`], and its response becomes
//! the `ctx.payload` the in-process backend would give. Where a field's type cannot answer a test
//! as the sensor would, the translation refuses it by name instead of sending a query that
//! silently differs. The transport is a [`Cluster`] (HTTP in deployments, canned JSON in tests).

use serde_json::{json, Map, Value as Json};

use super::dsl::{any, ip_regexp, match_all, match_none, not};
use super::mapping::{FieldType, Kind, Mapping};
pub use super::response::payload_from_response;
use super::{Backend, BackendError, SearchOutput};
use crate::playbook::record::format::{suricata_state, zeek_state, Accessor, FieldPlan, Format};
use crate::playbook::record::value::{number_json, Literal, Val};
use crate::playbook::search::calc::{Calc, Metric, MetricOp};
use crate::playbook::search::evaluator::ReadStats;
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
/// Zeek `conn.log` fields that are sets: an empty one is `(empty)` on the sensor (present) and
/// `[]` in an index (missing).
const ZEEK_SET_FIELDS: &[&str] = &["tunnel_parents"];

/// What the backend asks of a cluster: an index's `_mapping`, and one `_search`.
pub trait Cluster {
    fn mapping(&self, index: &str) -> Result<Json, String>;
    fn search(&self, index: &str, body: &Json) -> Result<Json, String>;
}

/// Searches an index (or pattern) whose documents are logs of `format`.
pub struct OpenSearchBackend<C> {
    pub index: String,
    pub format: Format,
    /// `None`: the format's timestamp field.
    pub time_field: Option<String>,
    pub cluster: C,
}

/// What the translation needs to know of the index.
#[derive(Debug, Clone, Copy)]
pub struct Index<'a> {
    pub format: Format,
    pub mapping: &'a Mapping,
    pub time_field: Option<&'a str>,
}

impl<C: Cluster> Backend for OpenSearchBackend<C> {
    fn search(&self, spec: &SearchSpec<'_>) -> Result<SearchOutput, BackendError> {
        let mapping = Mapping::from_response(
            &self
                .cluster
                .mapping(&self.index)
                .map_err(BackendError::Backend)?,
        );
        let index = Index {
            format: self.format,
            mapping: &mapping,
            time_field: self.time_field.as_deref(),
        };
        let request = search_request(spec, &index)?;
        let response = self
            .cluster
            .search(&self.index, &request)
            .map_err(BackendError::Backend)?;
        let payload = payload_from_response(spec, &index, &response)?;
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

fn refuse(msg: String) -> BackendError {
    BackendError::Translate(msg)
}

/// The `_search` request body for a search over `index`.
pub fn search_request(spec: &SearchSpec<'_>, index: &Index<'_>) -> Result<Json, BackendError> {
    let plan = FieldPlan::new(index.format, spec.fields);
    let ts = time_field(&plan, index)?;
    let iso = |micros: i64| {
        chrono::DateTime::from_timestamp_micros(micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    };
    let mut filter = vec![
        json!({ "range": { ts.as_str(): { "gte": iso(spec.window.from_micros), "lt": iso(spec.window.to_micros), "format": "strict_date_optional_time" } } }),
    ];
    if let Some(q) = spec.query {
        filter.push(query_dsl(q, &plan, index, spec)?);
    }
    let mut aggs = Map::new();
    for calc in spec.calcs {
        if let Some(agg) = agg_dsl(calc, &plan, index)? {
            aggs.insert(calc.name().to_string(), agg);
        }
    }
    Ok(json!({
        "size": spec.max_filtered,
        "track_total_hits": true,
        "sort": [{ ts.as_str(): "asc" }],
        "query": { "bool": { "filter": filter } },
        "aggs": aggs,
    }))
}

/// The window's field; it must be a `date` for the range to mean time.
fn time_field(plan: &FieldPlan, index: &Index<'_>) -> Result<String, BackendError> {
    let path = match index.time_field {
        Some(f) => f.to_string(),
        None => native_field(plan, TIMESTAMP_FIELD)
            .ok_or_else(|| refuse("the format has no timestamp field".into()))?
            .to_string(),
    };
    let ty = index.mapping.field(&path);
    match ty.kind {
        Kind::Date | Kind::Unmapped => Ok(path),
        _ => Err(refuse(format!(
            "the time field `{path}` is mapped as `{}`; the lookback window is a date range, so map it as `date` (Zeek's `ts`: {{\"type\": \"date\", \"format\": \"epoch_second\"}}) or name a date field in `source.opensearch.time_field`",
            ty.name
        ))),
    }
}

pub(super) fn native_field(plan: &FieldPlan, field: usize) -> Option<&str> {
    match plan.accessors[field] {
        Accessor::Slot(i) | Accessor::LowerCase(i) => Some(&plan.paths[i]),
        _ => None,
    }
}

/// The path that holds the field's exact values: its keyword subfield for text.
fn exact_path(path: &str, ty: &FieldType) -> Result<String, BackendError> {
    match (&ty.kind, &ty.keyword) {
        (Kind::Text, Some(kw)) => Ok(kw.clone()),
        (Kind::Text, None) => Err(refuse(format!("`{path}` is a text field without a keyword subfield, so its exact values cannot be matched or grouped; map it as `keyword` or add `fields: {{keyword: {{type: keyword}}}}`"))),
        _ => Ok(path.to_string()),
    }
}

fn query_dsl(
    q: &Query,
    plan: &FieldPlan,
    index: &Index<'_>,
    spec: &SearchSpec<'_>,
) -> Result<Json, BackendError> {
    let all = |list: &[Query]| {
        list.iter()
            .map(|q| query_dsl(q, plan, index, spec))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match q {
        Query::All(list) => json!({ "bool": { "filter": all(list)? } }),
        Query::Any(list) => any(all(list)?),
        Query::Not(q) => not(query_dsl(q, plan, index, spec)?),
        Query::Test { field, test } => match &plan.accessors[*field] {
            Accessor::Slot(i) => test_dsl(&plan.paths[*i], test, false, index, spec)?,
            Accessor::LowerCase(i) => test_dsl(&plan.paths[*i], test, true, index, spec)?,
            Accessor::ZeekState(i) => {
                let codes: Vec<&str> = ZEEK_STATES
                    .iter()
                    .copied()
                    .filter(|c| {
                        test.matches(Some(&Val::Str(zeek_state(c).into())), spec.watchlists)
                    })
                    .collect();
                let path = &plan.paths[*i];
                json!({ "terms": { exact_path(path, &index.mapping.field(path))?: codes } })
            }
            Accessor::SuricataState { tcp_state, tcp_rst } => {
                let state_path = &plan.paths[*tcp_state];
                let state = exact_path(state_path, &index.mapping.field(state_path))?;
                let rst = plan.paths[*tcp_rst].as_str();
                let holds = |code: &str, r: bool| {
                    test.matches(
                        Some(&Val::Str(suricata_state(code, r).into())),
                        spec.watchlists,
                    )
                };
                let mut options = Vec::new();
                for code in SURICATA_TCP_STATES {
                    let is = json!({ "term": { state.as_str(): code } });
                    match (holds(code, false), holds(code, true)) {
                        (true, true) => options.push(is),
                        (false, true) => options.push(json!({ "bool": { "filter": [is, { "term": { rst: true } }] } })),
                        (true, false) => options.push(json!({ "bool": { "filter": [is], "must_not": [{ "term": { rst: true } }] } })),
                        (false, false) => {}
                    }
                }
                any(options)
            }
            // A field this format never has: the test holds on every record or on none, as it
            // does on the sensor (`is_not` and `exists: false` hold).
            Accessor::Absent if test.matches(None, spec.watchlists) => match_all(),
            Accessor::Absent => match_none(),
        },
    })
}

/// A literal as the field's type stores it; `None` when no value of that type can equal it.
fn typed(l: &Literal, ty: &FieldType) -> Option<Json> {
    match ty.kind {
        Kind::Numeric => l.as_f64().map(number_json),
        Kind::Boolean => match l {
            Literal::Bool(b) => Some(Json::Bool(*b)),
            Literal::Str(s) if s == "true" || s == "false" => Some(Json::Bool(s == "true")),
            _ => None,
        },
        Kind::Ip => match l {
            Literal::Str(s) if s.parse::<std::net::IpAddr>().is_ok() => {
                Some(Json::from(s.as_str()))
            }
            _ => None,
        },
        _ => Some(l.to_json()),
    }
}

fn test_dsl(
    native: &str,
    test: &Test,
    case_insensitive: bool,
    index: &Index<'_>,
    spec: &SearchSpec<'_>,
) -> Result<Json, BackendError> {
    let ty = index.mapping.field(native);
    let path = exact_path(native, &ty)?;
    let f = path.as_str();
    let term = |v: Json| {
        if case_insensitive && v.is_string() {
            json!({ "term": { f: { "value": v, "case_insensitive": true } } })
        } else {
            json!({ "term": { f: v } })
        }
    };
    let one_of = |values: Vec<Json>| match values.len() {
        0 => match_none(),
        1 => term(values.into_iter().next().unwrap_or_default()),
        _ if case_insensitive => any(values.into_iter().map(term).collect()),
        _ => json!({ "terms": { f: values } }),
    };
    let words = matches!(ty.kind, Kind::Keyword | Kind::Text);
    let op_name = |t: &Test| match t {
        Test::Compare(CmpOp::Greater, _) => "greater",
        Test::Compare(CmpOp::GreaterOrEqual, _) => "greater_or_equal",
        Test::Compare(CmpOp::Less, _) => "less",
        Test::Compare(CmpOp::LessOrEqual, _) => "less_or_equal",
        Test::Between(..) => "between",
        Test::Contains(_) => "contains",
        _ => "this test",
    };
    let range = |bounds: Json| -> Result<Json, BackendError> {
        match ty.kind {
            Kind::Numeric | Kind::Unmapped => Ok(json!({ "range": { f: bounds } })),
            _ => Err(refuse(format!(
                "`{}` on `{native}`, mapped as `{}`: the cluster would compare it as {}, the sensor compares numbers; compare a numeric field, or map this one as a number",
                op_name(test), ty.name, if words { "text (\"S\" > \"0\")" } else { "its own type" }
            ))),
        }
    };
    Ok(match test {
        Test::Is(l) => one_of(typed(l, &ty).into_iter().collect()),
        Test::IsNot(l) => not(one_of(typed(l, &ty).into_iter().collect())),
        Test::In(list) => one_of(list.iter().filter_map(|l| typed(l, &ty)).collect()),
        Test::InWatchlist(i) => one_of(
            spec.watchlists[*i]
                .keys()
                .iter()
                .filter_map(|k| typed(&Literal::Str(k.to_string()), &ty))
                .collect(),
        ),
        Test::Within(nets) => match ty.kind {
            Kind::Ip => any(nets
                .iter()
                .map(|n| json!({ "term": { f: format!("{}/{}", n.addr, n.prefix) } }))
                .collect()),
            Kind::Keyword | Kind::Text => any(nets
                .iter()
                .map(|n| {
                    ip_regexp(n)
                        .map(|re| json!({ "regexp": { f: { "value": re } } }))
                        .map_err(|why| refuse(format!("`within` {}/{} on `{native}`, mapped as `{}`: {why}", n.addr, n.prefix, ty.name)))
                })
                .collect::<Result<Vec<_>, _>>()?),
            // No number, date or boolean reads as an address on the sensor.
            Kind::Numeric | Kind::Date | Kind::Boolean | Kind::Unmapped => match_none(),
            Kind::Other(_) => return Err(refuse(format!("`within` on `{native}`, mapped as `{}`: map it as `ip` or `keyword`", ty.name))),
        },
        Test::Contains(s) => match ty.kind {
            Kind::Keyword | Kind::Text => {
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
            Kind::Unmapped => match_none(),
            _ => return Err(refuse(format!(
                "`contains` on `{native}`, mapped as `{}`: the cluster matches text patterns only in keyword fields (it answers 400); use `is`, `in` or `between`, or map the field as `keyword`",
                ty.name
            ))),
        },
        Test::Exists(want) => {
            if index.format == Format::Zeek && ZEEK_SET_FIELDS.contains(&native) {
                return Err(refuse(format!("`exists` on Zeek's set `{native}`: the sensor counts an empty set (`(empty)`) as present, an index stores it as `[]`, which is missing; test its elements with `is` or `contains` instead")));
            }
            let e = json!({ "exists": { "field": f } });
            if *want {
                e
            } else {
                not(e)
            }
        }
        Test::Compare(CmpOp::Equals, v) => one_of(typed(&Literal::Num(*v), &ty).into_iter().collect()),
        Test::Compare(CmpOp::NotEquals, v) => not(one_of(typed(&Literal::Num(*v), &ty).into_iter().collect())),
        Test::Compare(CmpOp::Greater, v) => range(json!({ "gt": v }))?,
        Test::Compare(CmpOp::GreaterOrEqual, v) => range(json!({ "gte": v }))?,
        Test::Compare(CmpOp::Less, v) => range(json!({ "lt": v }))?,
        Test::Compare(CmpOp::LessOrEqual, v) => range(json!({ "lte": v }))?,
        Test::Between(lo, hi) => range(json!({ "gte": lo, "lte": hi }))?,
    })
}

fn metric_dsl(
    m: &Metric,
    plan: &FieldPlan,
    index: &Index<'_>,
) -> Result<Option<Json>, BackendError> {
    if matches!(plan.accessors[m.field], Accessor::Absent) {
        return Ok(None);
    }
    let native = native_field(plan, m.field).ok_or_else(|| refuse(format!("`{}` is derived on the sensor and cannot be computed by OpenSearch; use the native field", m.field_name)))?;
    let ty = index.mapping.field(native);
    let numeric = matches!(ty.kind, Kind::Numeric | Kind::Unmapped);
    if m.op != MetricOp::UniqueCount && !numeric {
        return Err(refuse(format!("`{}` of `{}`, mapped as `{}`: the cluster computes it only over numeric fields; map the field as a number", m.op.es_name(), m.field_name, ty.name)));
    }
    let f = exact_path(native, &ty)?;
    Ok(Some(json!({ m.op.es_name(): { "field": f } })))
}

/// The aggregation of a calculation; `None` for one over a field the format lacks, which the
/// backend fills in as the sensor does (no buckets, no value).
fn agg_dsl(calc: &Calc, plan: &FieldPlan, index: &Index<'_>) -> Result<Option<Json>, BackendError> {
    let t = match calc {
        Calc::Metric(m) => return metric_dsl(m, plan, index),
        Calc::Terms(t) => t,
    };
    if matches!(plan.accessors[t.field], Accessor::Absent) {
        return Ok(None);
    }
    let native = native_field(plan, t.field).ok_or_else(|| refuse(format!("`{}` is derived on the sensor and cannot be grouped by OpenSearch; group by the native field", t.field_name)))?;
    let ty = index.mapping.field(native);
    let f = match (&ty.kind, &ty.keyword) {
        (Kind::Ip, Some(kw)) => kw.clone(),
        (Kind::Ip, None) => return Err(refuse(format!("grouping by `{native}`, mapped as `ip`: the cluster sorts such keys as numbers and prints IPv6 compressed, so groups and `{{{{{}}}}}` would differ from the sensor's; map it as `keyword` or add a keyword subfield", t.field_name))),
        (Kind::Date, _) => return Err(refuse(format!("grouping by `{native}`, mapped as `date`: the cluster's keys are epoch milliseconds, the sensor's the logged text; group by another field"))),
        _ => exact_path(native, &ty)?,
    };
    let dir = if t.bottom { "asc" } else { "desc" };
    let rank = if t.rank_by.is_some() {
        "metric"
    } else {
        "_count"
    };
    let mut aggs = Map::new();
    if let Some(m) = &t.rank_by {
        match metric_dsl(m, plan, index)? {
            Some(agg) => aggs.insert("metric".into(), agg),
            None => return Err(refuse(format!("ranking `{}` by `{}`, a field this format lacks, ranks nothing; rank by count or by a field of the log", t.name, m.field_name))),
        };
    }
    for sub in &t.subgroups {
        if let Some(agg) = agg_dsl(sub, plan, index)? {
            aggs.insert(sub.name().to_string(), agg);
        }
    }
    let mut body = json!({ "terms": { "field": f, "size": t.size, "order": [{ rank: dir }, { "_key": "asc" }] } });
    if !aggs.is_empty() {
        body["aggs"] = Json::Object(aggs);
    }
    Ok(Some(body))
}
