//! The cluster backend against the local engine: the shared Zeek and Suricata logs are loaded
//! into an in-memory OpenSearch-compatible server (`osmem-server`, `pip install osmem-server`)
//! with keyword-mapped strings, and every shipped playbook plus the test playbooks below run
//! through both engines, which must give the same `ctx.payload`, conditions and rendered actions.
//! Tests the translation refuses show the refusal; cluster errors are one line each.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};
use tcpreset::playbook::act::status::Status;
use tcpreset::playbook::io::http::{HttpClient, Method};
use tcpreset::playbook::io::local::LocalBackend;
use tcpreset::playbook::io::run::{run_playbook, RunOptions};
use tcpreset::playbook::record::format::Format;
use tcpreset::playbook::search::backend::Backend;
use tcpreset::playbook::search::{SearchSpec, Window};
use tcpreset::playbook::spec::check::parse_playbook;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The osmem-server binary: `$OSMEM_SERVER_BIN`, `osmem-server` on PATH, or the one the
/// Python package bundles.
fn osmem_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("OSMEM_SERVER_BIN") {
        return bin.into();
    }
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v osmem-server"])
        .output()
    {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !path.is_empty() {
            return path.into();
        }
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import osmem_server; print(osmem_server.resolve_binary())",
        ])
        .output()
        .expect("python3 runs");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !path.is_empty(),
        "osmem-server is not installed: run `pip install osmem-server` (scripts/test.sh does)"
    );
    path.into()
}

/// A server on a free port of 127.0.0.1; it exits when its stdin closes (on drop).
struct Osmem {
    child: Child,
    url: String,
}

impl Drop for Osmem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Osmem {
    let mut child = Command::new(osmem_binary())
        .args(["--addr", "127.0.0.1:0", "--no-ja"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("osmem-server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Json = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
    Osmem {
        child,
        url: ready["url"].as_str().unwrap().to_string(),
    }
}

fn client() -> HttpClient {
    HttpClient::new(Duration::from_secs(60), None).unwrap()
}

fn shared(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(format!("{ROOT}/../shared/data/{dir}"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Every record of `files` with a timestamp, as the local engine keeps it in `filtered`, in its
/// order (time, then file and line).
fn records(files: &[PathBuf], format: Format) -> Vec<Json> {
    let fields = vec!["timestamp".to_string()];
    let spec = SearchSpec {
        fields: &fields,
        query: None,
        calcs: &[],
        watchlists: &[],
        window: Window {
            from_micros: 0,
            to_micros: i64::MAX,
        },
        max_filtered: 1_000_000,
    };
    LocalBackend {
        base_dir: PathBuf::new(),
        paths: files.iter().map(|f| f.display().to_string()).collect(),
        format: Some(format),
        threads: 2,
    }
    .search(&spec)
    .unwrap()
    .payload
    .filtered
}

/// Strings as `keyword`, numbers as `double` (a dynamic `float` rounds Zeek's durations), the
/// time field as a `date`.
fn create_and_load(os: &Osmem, index: &str, time: Json, docs: &[Json]) {
    create_and_load_as(os, index, time, docs, true)
}

/// As [`create_and_load`], or with strings mapped the way a cluster's dynamic mapping does it
/// (`text` with a `keyword` subfield) when `keyword` is false.
fn create_and_load_as(os: &Osmem, index: &str, time: Json, docs: &[Json], keyword: bool) {
    let c = client();
    let strings = if keyword {
        json!([{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}])
    } else {
        json!([])
    };
    let mut mapping = json!({"mappings": {
        "dynamic_templates": [
            {"integers": {"match_mapping_type": "long", "mapping": {"type": "double"}}},
            {"fractions": {"match_mapping_type": "double", "mapping": {"type": "double"}}}],
        "properties": time}});
    let templates = mapping["mappings"]["dynamic_templates"]
        .as_array_mut()
        .unwrap();
    templates.splice(0..0, strings.as_array().unwrap().iter().cloned());
    let reply = c
        .send(
            Method::Put,
            &format!("{}/{index}", os.url),
            &[],
            Some(&mapping.to_string()),
        )
        .unwrap();
    assert!(reply.is_success(), "{}", reply.body);
    for chunk in docs.chunks(2000) {
        let mut body = String::new();
        for doc in chunk {
            body += &format!("{{\"index\":{{\"_index\":\"{index}\"}}}}\n{doc}\n");
        }
        let reply = c
            .send(
                Method::Post,
                &format!("{}/_bulk?refresh=true", os.url),
                &[("Content-Type", "application/x-ndjson")],
                Some(&body),
            )
            .unwrap();
        let answer: Json = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            answer["errors"],
            false,
            "{}",
            &reply.body[..reply.body.len().min(2000)]
        );
    }
}

type Loaded = (Osmem, Vec<PathBuf>, Vec<PathBuf>);

/// The server with `zeek`, `suricata` and `suricata_text` indices holding the shared logs,
/// started once for every test of this file (it exits with the test process, as its stdin
/// closes).
fn loaded() -> &'static Loaded {
    static SERVER: std::sync::OnceLock<Loaded> = std::sync::OnceLock::new();
    SERVER.get_or_init(load)
}

fn load() -> Loaded {
    let os = start();
    let zeek: Vec<PathBuf> = shared("zeek")
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("masked-ts"))
        .collect();
    let suricata = shared("suricata");
    let z = records(&zeek, Format::Zeek);
    let s = records(&suricata, Format::Suricata);
    assert!(z.len() > 1000 && s.len() > 1000, "{} {}", z.len(), s.len());
    create_and_load(
        &os,
        "zeek",
        json!({"ts": {"type": "date", "format": "epoch_second"}}),
        &z,
    );
    create_and_load(&os, "suricata", json!({"timestamp": {"type": "date"}}), &s);
    let time = json!({"timestamp": {"type": "date"}});
    create_and_load_as(&os, "suricata_text", time, &s, false);
    (os, zeek, suricata)
}

/// `text` with its `schedule:` and `source:` blocks replaced: a lookback over every log.
fn with_source(text: &str, source: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with("schedule:") || line.starts_with("source:") {
            skipping = true;
            continue;
        }
        if skipping && (line.starts_with(' ') || line.is_empty()) {
            continue;
        }
        skipping = false;
        out += line;
        out.push('\n');
    }
    format!("{out}schedule: {{interval_minutes: 5, lookback: 20000days}}\nsource: {source}\n")
}

fn scheduled() -> DateTime<Utc> {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

fn run(dir: &Path, name: &str, text: &str) -> Status {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let playbook = parse_playbook(text).unwrap_or_else(|p| panic!("{name}: {p:?}\n{text}"));
    run_playbook(
        &path,
        &playbook,
        scheduled(),
        scheduled(),
        RunOptions {
            dry_run: true,
            threads: 2,
        },
    )
}

/// Runs `text` over the files and over the index; returns both statuses.
fn both(
    os: &Osmem,
    dir: &Path,
    text: &str,
    files: &[PathBuf],
    format: &str,
    index: &str,
) -> (Status, Status) {
    let paths: Vec<String> = files
        .iter()
        .map(|f| format!("\"{}\"", f.display()))
        .collect();
    let local = run(
        dir,
        "local.yaml",
        &with_source(
            text,
            &format!("{{paths: [{}], format: {format}}}", paths.join(", ")),
        ),
    );
    let cluster = run(
        dir,
        "cluster.yaml",
        &with_source(
            text,
            &format!(
                "{{format: {format}, opensearch: {{url: \"{}\", index: {index}}}}}",
                os.url
            ),
        ),
    );
    (local, cluster)
}

fn assert_same(label: &str, local: &Status, cluster: &Status) {
    assert_eq!(local.error, None, "{label}: local failed");
    assert_eq!(cluster.error, None, "{label}: cluster failed");
    let payload = |s: &Status| s.payload.as_ref().unwrap()["payload"].clone();
    let (l, c) = (payload(local), payload(cluster));
    if l != c {
        for key in ["hits", "filtered_total", "aggregations"] {
            assert_eq!(l[key], c[key], "{label}: {key} differs");
        }
        let (lf, cf) = (
            l["filtered"].as_array().unwrap(),
            c["filtered"].as_array().unwrap(),
        );
        for (i, (a, b)) in lf.iter().zip(cf).enumerate() {
            assert_eq!(a, b, "{label}: filtered[{i}] differs");
        }
    }
    let json = |s: &Status| serde_json::to_value((&s.conditions, &s.actions)).unwrap();
    assert_eq!(
        json(local),
        json(cluster),
        "{label}: conditions or actions differ"
    );
    let request = cluster.payload.as_ref().unwrap()["request"].clone();
    assert!(request["query"].is_object(), "{label}: no request recorded");
}

/// The test playbooks: each operator the translation treats specially, on the logs' fields.
const ZEEK_TESTS: &[(&str, &str)] = &[
    ("absent field under is_not and exists: false, grouped by", "query: {all: [{field: engid, is_not: 5}, {field: engid, exists: false}]}\ncalculations:\n  - {name: by_engid, type: top, field: engid, by: count, size: 10}\n  - {name: ports, type: top, field: dstport, by: count, size: 5, subgroups: [{name: sum_bytes, type: metric, field: orig_bytes, operation: sum}]}\n"),
    ("within on keyword addresses, v4 and v6", "query: {all: [{field: srcip, within: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 2001:470::/32]}, {not: {field: dstip, within: [10.0.0.0/8, fc00::/7, fe80::/10]}}]}\ncalculations:\n  - {name: src, type: top, field: srcip, by: count, size: 20}\n"),
    ("contains, in, between, greater on numbers", "query: {all: [{field: history, contains: S}, {field: proto, in: [tcp, udp]}, {field: dstport, between: [1, 1024]}, {field: duration, greater: 0.001}]}\ncalculations:\n  - {name: pairs, type: top, field: dstip, by: count, size: 5, subgroups: [{name: src, type: top, field: srcip, by: count, size: 3}]}\n  - {name: max_duration, type: metric, field: duration, operation: maximum}\n  - {name: peers, type: metric, field: srcip, operation: unique_count}\n"),
    ("exists on a plain field", "query: {field: service, exists: true}\ncalculations:\n  - {name: services, type: top, field: service, by: count, size: 10}\n"),
];
const SURICATA_TESTS: &[(&str, &str)] = &[
    ("proto lower-cased, nested groups ranked by a metric", "query: {all: [{field: proto, is: tcp}, {field: src_port, greater_or_equal: 1024}]}\ncalculations:\n  - {name: protos, type: top, field: proto, by: count, size: 5}\n  - {name: sigs, type: top, field: engid, by: count, size: 10, subgroups: [{name: src, type: top, field: srcip, by: count, size: 3}]}\n  - {name: busiest, type: top, field: dest_port, by: sum, of: flow.bytes_toserver, size: 5}\n"),
    ("state derived from tcp.state", "query: {not: {field: state, is: HalfOpened}}\ncalculations:\n  - {name: kinds, type: top, field: event_type, by: count, size: 10}\n"),
];

fn test_playbook(name: &str, body: &str) -> String {
    format!("name: \"{name}\"\nschedule: {{interval_minutes: 5}}\nsource: {{paths: [x]}}\n{body}")
}

#[test]
fn every_playbook_gives_the_same_payload_and_actions_on_both_engines() {
    let (os, zeek, suricata) = loaded();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        format!("{ROOT}/playbooks/port-thresholds.csv"),
        dir.path().join("port-thresholds.csv"),
    )
    .unwrap();
    // `suricata_text`: strings as `text` with a `.keyword` subfield, as dynamic mapping does.
    let shipped: &[(&str, &[&str])] = &[
        (
            "half-opened-sessions.yaml",
            &["zeek", "suricata", "suricata_text"],
        ),
        ("internal-to-external-scan.yaml", &["zeek"]),
        ("port-usage-threshold.yaml", &["zeek"]),
        (
            "reset-after-high-severity-alerts.yaml",
            &["suricata", "suricata_text"],
        ),
    ];
    let mut compared = 0;
    for (file, formats) in shipped {
        let text = std::fs::read_to_string(format!("{ROOT}/playbooks/{file}")).unwrap();
        for index in *formats {
            let (files, format) = if *index == "zeek" {
                (&zeek, "zeek")
            } else {
                (&suricata, "suricata")
            };
            let (local, cluster) = both(os, dir.path(), &text, files, format, index);
            assert_same(&format!("{file} on {index}"), &local, &cluster);
            compared += 1;
        }
    }
    let runs = [
        ("zeek", "zeek", ZEEK_TESTS, &zeek),
        ("suricata", "suricata", SURICATA_TESTS, &suricata),
        ("suricata", "suricata_text", SURICATA_TESTS, &suricata),
    ];
    for (format, index, tests, files) in runs {
        for (name, body) in tests {
            let text = test_playbook(name, body);
            let (local, cluster) = both(os, dir.path(), &text, files, format, index);
            assert!(
                local.search.as_ref().unwrap().hits > 0,
                "{name}: the test matches nothing"
            );
            assert_same(&format!("{name} on {index}"), &local, &cluster);
            compared += 1;
        }
    }
    assert_eq!(compared, 7 + ZEEK_TESTS.len() + 2 * SURICATA_TESTS.len());
}

/// One HTTP answer to the first request on a free port, as a 401 from a cluster would come.
fn answer_once(response: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let _ = s.write_all(response.as_bytes());
        }
    });
    url
}

#[test]
fn refused_translations_and_cluster_errors_are_one_line_each() {
    let (os, zeek, _) = loaded();
    let dir = tempfile::tempdir().unwrap();
    let error = |body: &str, source: String| {
        let text = with_source(&test_playbook("refused", body), &source);
        let status = run(dir.path(), "refused.yaml", &text);
        assert!(
            status.actions.iter().all(|a| a.output.is_empty()),
            "acted: {status:?}"
        );
        status
            .error
            .unwrap_or_else(|| panic!("no error for {body}"))
    };
    let cluster = |index: &str| {
        format!(
            "{{format: zeek, opensearch: {{url: \"{}\", index: {index}}}}}",
            os.url
        )
    };
    let refusals = [
        (
            "query: {field: history, greater: 0}",
            "`greater` on `history`, mapped as `keyword`",
        ),
        (
            "query: {field: dstport, contains: \"80\"}",
            "`contains` on `id.resp_p`, mapped as `double`",
        ),
        (
            "query: {field: tunnel_parents, exists: true}",
            "`exists` on Zeek's set `tunnel_parents`",
        ),
        (
            "calculations: [{name: t, type: top, field: ts, size: 3}]",
            "grouping by `ts`, mapped as `date`",
        ),
        (
            "calculations: [{name: s, type: metric, field: history, operation: sum}]",
            "`sum` of `history`, mapped as `keyword`",
        ),
    ];
    for (body, expected) in refusals {
        let e = error(body, cluster("zeek"));
        assert!(
            e.starts_with("cannot translate the search for OpenSearch: ") && e.contains(expected),
            "{body}: {e}"
        );
        assert!(!e.contains('\n'), "{e}");
        // The local engine runs the same search.
        let paths: Vec<String> = zeek
            .iter()
            .map(|f| format!("\"{}\"", f.display()))
            .collect();
        let text = with_source(
            &test_playbook("local", body),
            &format!("{{paths: [{}], format: zeek}}", paths.join(", ")),
        );
        assert_eq!(run(dir.path(), "local.yaml", &text).error, None, "{body}");
    }
    let body = "query: {field: proto, is: tcp}";
    let e = error(body, cluster("no-such-index"));
    assert!(e.contains("the index does not exist (HTTP 404"), "{e}");
    let unauthorized = answer_once("HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    std::fs::write(dir.path().join("os.pw"), "s3cret-pw\n").unwrap();
    let e = error(body, format!("{{format: zeek, opensearch: {{url: \"{unauthorized}\", index: zeek, auth: {{basic: {{user: hunt, password_file: os.pw}}}}}}}}"));
    assert!(e.contains("refused the credentials (HTTP 401"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let e = error(
        body,
        format!("{{format: zeek, opensearch: {{url: \"{refused_url}\", index: zeek}}}}"),
    );
    assert!(e.contains("refused the connection"), "{e}");
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let e = error(
        body,
        format!(
            "{{format: zeek, opensearch: {{url: \"http://{}\", index: zeek, timeout: 1s}}}}",
            silent.local_addr().unwrap()
        ),
    );
    assert!(e.contains("no answer within 1 s (timeout)"), "{e}");
    // A query the server rejects (a time field that is not a date is caught before sending;
    // here the server's own 400): the `regexp` on a double field.
    let reply = client()
        .send(
            Method::Post,
            &format!("{}/zeek/_search", os.url),
            &[],
            Some(r#"{"query":{"wildcard":{"id.resp_p":{"value":"*8*"}}}}"#),
        )
        .unwrap();
    assert_eq!(reply.status, 400);
    let line = tcpreset::playbook::io::cluster::cluster_error(&reply);
    assert!(
        line.starts_with("the cluster refused the query (HTTP 400 Bad Request, "),
        "{line}"
    );
    // Zeek's `ts` must be a date.
    create_and_load(
        os,
        "zeek-ts-double",
        json!({"ts": {"type": "double"}}),
        &[json!({"ts": 1.5, "proto": "tcp"})],
    );
    let e = error(body, cluster("zeek-ts-double"));
    assert!(
        e.contains("the time field `ts` is mapped as `double`") && e.contains("epoch_second"),
        "{e}"
    );
}
