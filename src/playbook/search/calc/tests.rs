//! Tests of the calculations: nested Top shaped like Elasticsearch, Bottom by a metric, ties.

use super::*;

fn terms(name: &str, field: usize, field_name: &str, size: usize, subgroups: Vec<Calc>) -> Calc {
    Calc::Terms(Terms {
        name: name.into(),
        field,
        field_name: field_name.into(),
        bottom: false,
        rank_by: None,
        size,
        subgroups,
    })
}

fn push_all(calcs: &[Calc], state: &mut CalcState, records: &[(&str, &str, f64)]) {
    for (engid, srcip, bytes) in records {
        let rec = [
            Val::Str((*engid).into()),
            Val::Str((*srcip).into()),
            Val::Num(*bytes),
        ];
        state.push(calcs, &|f| rec.get(f).cloned());
    }
}

#[test]
fn nested_top_is_shaped_like_elasticsearch() {
    let calcs = vec![
        terms(
            "find_unique_engid",
            0,
            "engid",
            10,
            vec![terms("find_unique_srcip", 1, "srcip", 1, vec![])],
        ),
        Calc::Metric(Metric {
            name: "bytes".into(),
            op: MetricOp::Sum,
            field: 2,
            field_name: "bytes".into(),
        }),
    ];
    let records = [
        ("2001219", "10.0.0.1", 10.0),
        ("2001219", "10.0.0.1", 5.0),
        ("2001219", "10.0.0.2", 1.0),
        ("2", "10.0.0.9", 1.0),
    ];
    let mut a = CalcState::new(&calcs);
    push_all(&calcs, &mut a, &records[..2]);
    let mut b = CalcState::new(&calcs);
    push_all(&calcs, &mut b, &records[2..]);
    a.merge(b);
    let out = Json::Object(a.finish(&calcs));
    assert_eq!(
        out,
        json!({
            "find_unique_engid": {"sum_other_doc_count": 0, "buckets": [
                {"key": "2001219", "doc_count": 3, "engid": "2001219",
                 "find_unique_srcip": {"sum_other_doc_count": 1, "buckets": [{"key": "10.0.0.1", "doc_count": 2, "srcip": "10.0.0.1"}]}},
                {"key": "2", "doc_count": 1, "engid": "2",
                 "find_unique_srcip": {"sum_other_doc_count": 0, "buckets": [{"key": "10.0.0.9", "doc_count": 1, "srcip": "10.0.0.9"}]}}
            ]},
            "bytes": {"value": 17}
        })
    );
}

#[test]
fn bottom_by_metric_and_unique_count() {
    let by_avg = Metric {
        name: "metric".into(),
        op: MetricOp::Average,
        field: 2,
        field_name: "bytes".into(),
    };
    let uniq = Calc::Metric(Metric {
        name: "engines".into(),
        op: MetricOp::UniqueCount,
        field: 0,
        field_name: "engid".into(),
    });
    let calcs = vec![Calc::Terms(Terms {
        name: "low".into(),
        field: 1,
        field_name: "srcip".into(),
        bottom: true,
        rank_by: Some(by_avg),
        size: 2,
        subgroups: vec![uniq],
    })];
    let mut s = CalcState::new(&calcs);
    push_all(
        &calcs,
        &mut s,
        &[
            ("a", "x", 10.0),
            ("b", "x", 20.0),
            ("a", "y", 1.0),
            ("a", "z", 100.0),
        ],
    );
    let out = Json::Object(s.finish(&calcs));
    let buckets = &out["low"]["buckets"];
    assert_eq!(buckets[0]["key"], "y");
    assert_eq!(buckets[0]["metric"]["value"], 1);
    assert_eq!(buckets[1]["key"], "x");
    assert_eq!(buckets[1]["metric"]["value"], 15);
    assert_eq!(buckets[1]["engines"]["value"], 2);
    assert_eq!(out["low"]["sum_other_doc_count"], 1);
    assert_eq!(Calc::find(&calcs, "engines").unwrap().0, ["low", "engines"]);
}

#[test]
fn ties_break_by_key_and_numbers_stay_numbers() {
    let calcs = vec![terms("ports", 0, "dstport", 10, vec![])];
    let mut s = CalcState::new(&calcs);
    for port in [443.0, 22.0, 443.0, 22.0, 8080.0] {
        let rec = [Val::Num(port)];
        s.push(&calcs, &|f| rec.get(f).cloned());
    }
    let out = Json::Object(s.finish(&calcs));
    let keys: Vec<&Json> = out["ports"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["dstport"])
        .collect();
    assert_eq!(keys, [&json!(22), &json!(443), &json!(8080)]);
}
