//! Planning actions: Run Script lines and their routes, webhook bodies, alerts, URLs.

use serde_json::json;

use super::*;
use crate::playbook::act::command::default_allow_list;

fn root() -> Json {
    json!({"ctx": {"execution_time": "2025-06-02T10:00:00Z", "payload": {
        "hits": {"total": {"value": 3}},
        "filtered_total": 3,
        "filtered": [{"_source": {"srcip": "10.0.0.1", "dest_ip": "8.8.8.8"}}, {"_source": {"srcip": "10.0.0.1", "dest_ip": "8.8.8.8"}}, {"_source": {"srcip": "10.0.0.2\"x", "dest_ip": "1.1.1.1"}}],
        "aggregations": {"by_src": {"buckets": [{"key": "10.0.0.1", "srcip": "10.0.0.1", "doc_count": 2}, {"key": "10.0.0.2", "srcip": "10.0.0.2", "doc_count": 1}]}}}}})
}

fn action(for_each: ForEach, kind: ActionKind) -> Action {
    Action {
        name: "a".into(),
        trigger: "c".into(),
        for_each,
        mute: None,
        suppress: None,
        kind,
    }
}

fn outcome() -> Outcome {
    Outcome {
        name: "c".into(),
        met: true,
        matches: vec![vec![Arc::new(json!({"srcip": "10.0.0.9", "doc_count": 9}))]],
    }
}

fn run(root: &Json) -> RunContext<'_> {
    RunContext {
        root,
        playbook: "pb",
        now: "2025-06-02T10:00:00Z".parse().unwrap(),
    }
}

#[test]
fn run_script_for_each_calc_result() {
    let script = Template::parse("tcpreset e1 -i eth1 -o eth0 -h {{srcip}} -d 60").unwrap();
    let kind = ActionKind::RunScript {
        target: Target::Local,
        script,
        commands: default_allow_list(),
        timeout: Duration::from_secs(5),
        route_by: None,
    };
    let r = root();
    let Plan::RunScript { lines, refused, .. } = action(
        ForEach::Calc {
            chain: vec!["by_src".into()],
            metric: false,
        },
        kind.clone(),
    )
    .plan(run(&r), &outcome()) else {
        panic!()
    };
    assert_eq!(
        lines.iter().map(|l| l.args[6].as_str()).collect::<Vec<_>>(),
        ["10.0.0.1", "10.0.0.2"]
    );
    assert!(refused.is_empty());
    let Plan::RunScript { lines, .. } =
        action(ForEach::Matches, kind.clone()).plan(run(&r), &outcome())
    else {
        panic!()
    };
    assert_eq!(lines[0].args[6], "10.0.0.9");
    let Plan::RunScript { lines, refused, .. } =
        action(ForEach::Filtered, kind).plan(run(&r), &outcome())
    else {
        panic!()
    };
    assert_eq!((lines.len(), refused.len()), (2, 1));
}

#[test]
fn route_by_names_each_lines_sensor_or_refuses_the_line() {
    let script = Template::parse("tcpreset e1 -i eth1 -o eth0 -h {{srcip}} -d 60").unwrap();
    let kind = |field: &str| ActionKind::RunScript {
        target: Target::Local,
        script: script.clone(),
        commands: default_allow_list(),
        timeout: Duration::from_secs(5),
        route_by: Some(field.into()),
    };
    let r = json!({"ctx": {"payload": {"filtered": [
        {"_source": {"srcip": "10.0.0.1", "host": "sensor-a"}},
        {"_source": {"srcip": "10.0.0.2", "host": 7}},
        {"_source": {"srcip": "10.0.0.3"}},
        {"_source": {"srcip": "10.0.0.4", "host": ""}}]}}});
    let Plan::RunScript { lines, refused, .. } =
        action(ForEach::Filtered, kind("host")).plan(run(&r), &outcome())
    else {
        panic!()
    };
    let sensors: Vec<_> = lines.iter().map(|l| l.sensor.as_deref()).collect();
    assert_eq!(sensors, [Some("sensor-a"), Some("7")]);
    assert_eq!(refused.len(), 2);
    assert!(refused[0].reason.contains("found nothing"), "{refused:?}");
    assert!(refused[1].reason.contains("found \"\""), "{refused:?}");
    assert!(refused[0].line.contains("10.0.0.3"));
}

#[test]
fn webhook_bodies_are_json_escaped_and_sent_once_each() {
    let body =
        Template::parse("{\"ip\": \"{{srcip}}\", \"hits\": {{ctx.payload.hits.total.value}}}")
            .unwrap();
    let kind = ActionKind::Webhook {
        url: HttpUrl::parse("http://127.0.0.1:9/hook").unwrap(),
        body,
        headers: BTreeMap::new(),
        timeout: Duration::from_secs(5),
    };
    let r = root();
    let Plan::Webhook {
        bodies, refused, ..
    } = action(ForEach::Filtered, kind).plan(run(&r), &outcome())
    else {
        panic!()
    };
    assert_eq!(
        bodies,
        [
            "{\"ip\": \"10.0.0.1\", \"hits\": 3}",
            "{\"ip\": \"10.0.0.2\\\"x\", \"hits\": 3}"
        ]
    );
    assert!(refused.is_empty());
}

#[test]
fn create_alert_per_result_or_combined() {
    let kind = |combine| ActionKind::CreateAlert {
        file: "a.ndjson".into(),
        alert_type: "scan".into(),
        severity: 50,
        fidelity: 80,
        combine,
        dedup: None,
    };
    let r = root();
    let chain = ForEach::Calc {
        chain: vec!["by_src".into()],
        metric: false,
    };
    let Plan::CreateAlert { alerts, .. } =
        action(chain.clone(), kind(false)).plan(run(&r), &outcome())
    else {
        panic!()
    };
    assert_eq!(alerts.len(), 2);
    assert_eq!(
        alerts[0]["result"],
        json!({"srcip": "10.0.0.1", "doc_count": 2})
    );
    assert_eq!(alerts[0]["ath_info"]["playbook"], "pb");
    assert_eq!(alerts[0]["timestamp_utc"], "2025-06-02 10:00:00 UTC");
    let Plan::CreateAlert { alerts, .. } = action(chain, kind(true)).plan(run(&r), &outcome())
    else {
        panic!()
    };
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["result_count"], 2);
}

#[test]
fn urls() {
    assert_eq!(
        HttpUrl::parse("http://10.0.0.5:8080/a?b=c").unwrap(),
        HttpUrl {
            https: false,
            host: "10.0.0.5".into(),
            port: 8080,
            path: "/a?b=c".into()
        }
    );
    assert_eq!(HttpUrl::parse("http://example.org").unwrap().port, 80);
    let tls = HttpUrl::parse("https://[2001:db8::1]/hook").unwrap();
    assert_eq!((tls.https, tls.port), (true, 443));
    assert_eq!(tls.to_string(), "https://[2001:db8::1]:443/hook");
    assert!(HttpUrl::parse("ftp://x").is_err());
}
