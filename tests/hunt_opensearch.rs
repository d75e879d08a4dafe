//! The OpenSearch backend: the shipped reset playbook becomes a `_search` request, and a canned
//! response for the same records gives exactly the payload the local backend computes.

use serde_json::{json, Value as Json};
use tcpreset::playbook::io::load::load;
use tcpreset::playbook::io::local::LocalBackend;
use tcpreset::playbook::record::format::Format;
use tcpreset::playbook::search::backend::mapping::Mapping;
use tcpreset::playbook::search::backend::opensearch::{
    payload_from_response, search_request, Cluster, Index, OpenSearchBackend,
};
use tcpreset::playbook::search::backend::Backend;
use tcpreset::playbook::search::{SearchSpec, Window};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn window() -> Window {
    let to: chrono::DateTime<chrono::Utc> = "2025-06-02T10:05:00Z".parse().unwrap();
    Window {
        from_micros: (to - chrono::TimeDelta::minutes(5)).timestamp_micros(),
        to_micros: to.timestamp_micros(),
    }
}

/// The search of `playbook`'s query alone (no calculation, no watchlist) over [`window`].
fn query_only(
    playbook: &tcpreset::playbook::spec::Playbook,
    max_filtered: usize,
) -> SearchSpec<'_> {
    SearchSpec {
        fields: &playbook.fields,
        query: playbook.query.as_ref(),
        calcs: &[],
        watchlists: &[],
        window: window(),
        max_filtered,
    }
}

fn record(t: u32, src: &str, sid: u64, sig: &str) -> Json {
    json!({"timestamp": format!("2025-06-02T10:01:{t:02}.000000+0000"), "flow_id": 60 + t, "in_iface": "eth1", "event_type": "alert", "src_ip": src,
           "src_port": 40060 + t, "dest_ip": "192.168.1.40", "dest_port": 80, "proto": "TCP",
           "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 1, "signature": sig, "category": "Attempted Administrator Privilege Gain", "severity": 1}})
}

/// What OpenSearch answers for `tests/data/hunt/alerts.eve.json` indexed as-is.
fn canned_response() -> Json {
    let log4j = "ET EXPLOIT Apache log4j RCE Attempt";
    json!({
        "took": 3, "timed_out": false,
        "hits": {"total": {"value": 4, "relation": "eq"}, "max_score": null, "hits": [
            {"_index": "suricata-2025.06.02", "_id": "a", "_score": null, "_source": record(0, "203.0.113.5", 2024897, log4j), "sort": [1]},
            {"_index": "suricata-2025.06.02", "_id": "b", "_score": null, "_source": record(1, "203.0.113.5", 2024897, log4j), "sort": [2]},
            {"_index": "suricata-2025.06.02", "_id": "c", "_score": null, "_source": record(2, "203.0.113.6", 2024897, log4j), "sort": [3]},
            {"_index": "suricata-2025.06.02", "_id": "d", "_score": null, "_source": record(3, "198.51.100.23", 2027865, "ET MALWARE Cobalt Strike Beacon"), "sort": [4]}]},
        "aggregations": {"find_unique_engid": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
            {"key": 2024897, "doc_count": 3, "find_unique_srcip": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
                {"key": "203.0.113.5", "doc_count": 2}, {"key": "203.0.113.6", "doc_count": 1}]}},
            {"key": 2027865, "doc_count": 1, "find_unique_srcip": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
                {"key": "198.51.100.23", "doc_count": 1}]}}]}}
    })
}

fn index(format: Format, mapping: &Mapping) -> Index<'_> {
    Index {
        format,
        mapping,
        time_field: None,
    }
}

/// A cluster that maps nothing and answers the canned response.
struct Canned;

impl Cluster for Canned {
    fn mapping(&self, index: &str) -> Result<Json, String> {
        assert_eq!(index, "suricata-*");
        Ok(json!({}))
    }

    fn search(&self, index: &str, body: &Json) -> Result<Json, String> {
        assert_eq!(index, "suricata-*");
        assert!(body.get("aggs").is_some());
        Ok(canned_response())
    }
}

#[test]
fn request_and_response_give_the_in_process_payload() {
    let playbook = load(std::path::Path::new(&format!(
        "{ROOT}/playbooks/reset-after-high-severity-alerts.yaml"
    )))
    .unwrap();
    let spec = SearchSpec {
        fields: &playbook.fields,
        query: playbook.query.as_ref(),
        calcs: &playbook.calcs,
        watchlists: &[],
        window: window(),
        max_filtered: 100,
    };

    let request = search_request(&spec, &index(Format::Suricata, &Mapping::default())).unwrap();
    assert_eq!(request["size"], 100);
    assert_eq!(request["track_total_hits"], true);
    assert_eq!(request["sort"], json!([{"timestamp": "asc"}]));
    assert_eq!(
        request["query"]["bool"]["filter"],
        json!([
            {"range": {"timestamp": {"gte": "2025-06-02T10:00:00.000000Z", "lt": "2025-06-02T10:05:00.000000Z", "format": "strict_date_optional_time"}}},
            {"bool": {"filter": [{"term": {"event_type": "alert"}}, {"range": {"alert.severity": {"lte": 1.0}}}]}}
        ])
    );
    assert_eq!(
        request["aggs"],
        json!({"find_unique_engid": {
            "terms": {"field": "alert.signature_id", "size": 10, "order": [{"_count": "desc"}, {"_key": "asc"}]},
            "aggs": {"find_unique_srcip": {"terms": {"field": "src_ip", "size": 100, "order": [{"_count": "desc"}, {"_key": "asc"}]}}}}})
    );

    let opensearch = OpenSearchBackend {
        index: "suricata-*".into(),
        format: Format::Suricata,
        time_field: None,
        cluster: Canned,
    };
    let remote = opensearch.search(&spec).unwrap();
    let local = LocalBackend {
        base_dir: format!("{ROOT}/tests/data/hunt").into(),
        paths: vec!["alerts.eve.json".into()],
        format: None,
        threads: 2,
    }
    .search(&spec)
    .unwrap();
    assert_eq!(remote.payload.to_json(), local.payload.to_json());
    assert_eq!(
        remote.payload.to_json()["aggregations"]["find_unique_engid"]["buckets"][0]["engid"],
        2024897
    );
}

#[test]
fn derived_states_become_native_terms() {
    let text = "name: s\nschedule: {interval_minutes: 30}\nsource: {paths: [x]}\nquery: {field: state, is: HalfOpened}\n";
    let playbook = tcpreset::playbook::spec::check::parse_playbook(text).unwrap();
    let spec = query_only(&playbook, 0);
    let zeek = search_request(&spec, &index(Format::Zeek, &Mapping::default())).unwrap();
    assert_eq!(
        zeek["query"]["bool"]["filter"][1],
        json!({"terms": {"conn_state": ["S0", "RSTOS0", "SH"]}})
    );
    let eve = search_request(&spec, &index(Format::Suricata, &Mapping::default())).unwrap();
    assert_eq!(
        eve["query"]["bool"]["filter"][1]["bool"]["should"],
        json!([{"term": {"tcp.state": "syn_sent"}}, {"term": {"tcp.state": "syn_recv"}}])
    );
}

#[test]
fn a_timed_out_or_partly_failed_search_is_an_error_not_a_payload() {
    let text = "name: s\nschedule: {interval_minutes: 30}\nsource: {paths: [x]}\nquery: {field: srcip, is: 192.0.2.1}\n";
    let playbook = tcpreset::playbook::spec::check::parse_playbook(text).unwrap();
    let spec = query_only(&playbook, 10);
    let mapping = Mapping::default();
    let index = index(Format::Suricata, &mapping);
    let ok = json!({"timed_out": false, "_shards": {"total": 2, "failed": 0}, "hits": {"total": {"value": 0}, "hits": []}});
    assert_eq!(
        payload_from_response(&spec, &index, &ok)
            .unwrap()
            .total_hits,
        0
    );
    let mut timed_out = ok.clone();
    timed_out["timed_out"] = json!(true);
    let e = payload_from_response(&spec, &index, &timed_out)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("timed out") && e.contains("nothing was acted on"),
        "{e}"
    );
    let mut failed = ok.clone();
    failed["_shards"] =
        json!({"total": 2, "failed": 1, "failures": [{"reason": {"reason": "disk gone"}}]});
    let e = payload_from_response(&spec, &index, &failed)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 shard(s) of the index failed (disk gone)"),
        "{e}"
    );
    let e = payload_from_response(&spec, &index, &json!({"ok": true}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no hits.total"), "{e}");
}

#[test]
fn ip_fields_take_cidr_terms_and_group_through_their_keyword_subfield_or_are_refused() {
    let text = "name: s\nschedule: {interval_minutes: 30}\nsource: {paths: [x]}\nquery: {all: [{field: srcip, within: [10.0.0.0/8]}, {field: dstip, within: [fc00::/7]}]}\ncalculations: [{name: src, type: top, field: srcip, size: 5}]\n";
    let playbook = tcpreset::playbook::spec::check::parse_playbook(text).unwrap();
    let spec = SearchSpec {
        fields: &playbook.fields,
        query: playbook.query.as_ref(),
        calcs: &playbook.calcs,
        watchlists: &[],
        window: window(),
        max_filtered: 0,
    };
    let typed = |src: Json| {
        Mapping::from_response(&json!({"suricata": {"mappings": {"properties": {
            "timestamp": {"type": "date"}, "src_ip": src, "dest_ip": {"type": "keyword"}}}}}))
    };
    let mapping = typed(json!({"type": "ip", "fields": {"keyword": {"type": "keyword"}}}));
    let request = search_request(&spec, &index(Format::Suricata, &mapping)).unwrap();
    assert_eq!(
        request["query"]["bool"]["filter"][1]["bool"]["filter"],
        json!([
            {"bool": {"should": [{"term": {"src_ip": "10.0.0.0/8"}}], "minimum_should_match": 1}},
            {"bool": {"should": [{"regexp": {"dest_ip": {"value": "f[cd][0-9a-f][0-9a-f]:[0-9a-f:.]*"}}}], "minimum_should_match": 1}}
        ])
    );
    assert_eq!(request["aggs"]["src"]["terms"]["field"], "src_ip.keyword");
    let mapping = typed(json!({"type": "ip"}));
    let e = search_request(&spec, &index(Format::Suricata, &mapping))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("grouping by `src_ip`, mapped as `ip`") && e.contains("IPv6 compressed"),
        "{e}"
    );
}
