//! Every real Zeek and Suricata log in `../shared/data` is read without error, with the record
//! counts and states that `../shared/data/SOURCES.md` documents.

use std::path::PathBuf;

use tcpreset::playbook::io::local::LocalBackend;
use tcpreset::playbook::search::backend::{Backend, SearchOutput};
use tcpreset::playbook::search::calc::{Calc, Terms};
use tcpreset::playbook::search::{SearchSpec, Window};

const FIELDS: &[&str] = &[
    "timestamp",
    "srcip",
    "dstip",
    "srcport",
    "dstport",
    "proto",
    "state",
    "engid",
    "event_name",
];

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel)
}

/// Reads one file with every canonical field grouped by `state` (and `proto`), all time.
fn read(rel: &str) -> SearchOutput {
    let fields: Vec<String> = FIELDS.iter().map(|s| s.to_string()).collect();
    let group = |name: &str, field: usize| {
        Calc::Terms(Terms {
            name: name.into(),
            field,
            field_name: FIELDS[field].into(),
            bottom: false,
            rank_by: None,
            size: 100,
            subgroups: vec![],
        })
    };
    let calcs = vec![group("states", 6), group("protos", 5), group("engids", 7)];
    let spec = SearchSpec {
        fields: &fields,
        query: None,
        calcs: &calcs,
        watchlists: &[],
        window: Window {
            from_micros: i64::MIN,
            to_micros: i64::MAX,
        },
        max_filtered: 3,
    };
    let path = shared(rel);
    let backend = LocalBackend {
        base_dir: path.parent().unwrap().into(),
        paths: vec![path.file_name().unwrap().to_string_lossy().into()],
        format: None,
        threads: 2,
    };
    backend
        .search(&spec)
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn count(out: &SearchOutput, agg: &str, key: &str) -> u64 {
    out.payload.aggregations[agg]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["key"] == key)
        .map_or(0, |b| b["doc_count"].as_u64().unwrap())
}

#[test]
fn every_shared_log_is_read_without_error() {
    let mut seen = 0;
    for dir in ["zeek", "suricata"] {
        for entry in std::fs::read_dir(shared(dir)).unwrap() {
            let rel = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
            let out = read(&rel);
            seen += 1;
            let stats = &out.stats;
            assert!(stats.records > 0, "{rel}: no records");
            let expected_malformed = u64::from(rel.ends_with("rita_truncated_conn.log"));
            assert_eq!(
                stats.malformed, expected_malformed,
                "{rel}: {:?}",
                stats.examples
            );
            let expected_no_ts = if rel.contains("masked-ts") {
                stats.records
            } else {
                0
            };
            assert_eq!(stats.without_timestamp, expected_no_ts, "{rel}");
            assert_eq!(
                out.payload.total_hits,
                stats.records - stats.without_timestamp,
                "{rel}"
            );
            assert!(out.payload.filtered.len() <= 3);
        }
    }
    assert_eq!(seen, 15);
}

#[test]
fn record_counts_and_states_match_sources_md() {
    let wrccdc = read("zeek/brimdata-zed_wrccdc2018_conn.log");
    assert_eq!(wrccdc.stats.records, 92);
    // S0 x56 + RSTOS0 x6 are half-opened; RSTR x6 + RSTRH x1 were reset by the responder.
    assert_eq!(count(&wrccdc, "states", "HalfOpened"), 62);
    assert_eq!(count(&wrccdc, "states", "ResponderReset"), 7);
    assert_eq!(count(&wrccdc, "states", "Rejected"), 5);
    assert_eq!(count(&wrccdc, "states", "OriginatorReset"), 18);

    let zat = read("zeek/zat_conn.log");
    assert_eq!(
        (
            zat.stats.records,
            count(&zat, "protos", "tcp"),
            count(&zat, "protos", "udp"),
            count(&zat, "protos", "icmp")
        ),
        (360, 115, 225, 20)
    );
    assert_eq!(count(&zat, "states", "HalfOpened"), 158);

    assert_eq!(read("zeek/zat_conn_date_issue.log").stats.records, 3);
    assert_eq!(
        count(
            &read("zeek/zat_conn_date_issue.log"),
            "states",
            "HalfOpened"
        ),
        2
    );
    assert_eq!(read("zeek/zat_conn.json.log").stats.records, 50);
    assert_eq!(
        read("zeek/rita_missing-host_conn.01-02.log").stats.records,
        2102
    );
    let gz = read("zeek/rita_proxy-rolling_conn.16-17.log.gz");
    assert_eq!(
        (gz.stats.records, count(&gz, "states", "Closed")),
        (7260, 6127)
    );
    assert_eq!(read("zeek/rita_truncated_conn.log").stats.records, 58);
    let teredo = read("zeek/zeek-btest_tunnels-teredo_conn.masked-ts.log");
    assert_eq!(teredo.stats.records, 21);

    let eve = read("suricata/ahihi8z8z-suricata_eve.json");
    assert_eq!(eve.stats.records, 1374);
    assert_eq!(count(&eve, "protos", "tcp"), 540);
    assert_eq!(
        count(&eve, "states", "Closed") + count(&eve, "states", "Reset"),
        65
    );
    for (array, ndjson, n) in [
        (
            "fh_wrccdc-2018_alerts-only.json",
            "fh_wrccdc-2018_alerts.eve.ndjson",
            207,
        ),
        (
            "fh_honeypot-2018_alerts-only.json",
            "fh_honeypot-2018_alerts.eve.ndjson",
            44,
        ),
    ] {
        let a = read(&format!("suricata/{array}"));
        let b = read(&format!("suricata/{ndjson}"));
        assert_eq!(a.stats.records, n);
        assert_eq!(
            a.payload, b.payload,
            "{array} and {ndjson} hold the same records"
        );
    }
    assert_eq!(
        count(
            &read("suricata/fh_wrccdc-2018_alerts.eve.ndjson"),
            "engids",
            "2001219"
        ),
        0,
        "engid keys are numbers"
    );
}

#[test]
fn the_same_connections_in_tsv_and_json_give_the_same_results() {
    let tsv = read("zeek/rita_open-conns-closed_conn.log");
    let json = read("zeek/rita_json-with-all-fields_open_conn.json.log");
    assert_eq!(tsv.stats.records, 59);
    assert_eq!(tsv.payload.total_hits, json.payload.total_hits);
    assert_eq!(tsv.payload.aggregations, json.payload.aggregations);
    assert_eq!(count(&tsv, "states", "Rejected"), 5);
}
