//! The local backend on files larger than one read block: line numbers, lines longer than a
//! block, gzip, the literal prefilter (escaped values still match), and equal results per thread
//! count.

use std::io::Write;

mod search;

use tcpreset::playbook::search::backend::SearchOutput;

const PLAYBOOK: &str = "name: t\nschedule: {interval_minutes: 5}\nsource: {paths: [x]}\nquery:\n  all:\n    - {field: event_type, is: alert}\n    - {field: alert.severity, less_or_equal: 2}\ncalculations:\n  - name: e\n    type: top\n    field: engid\n    subgroups:\n      - {name: s, type: top, field: srcip, size: 3}\n";

/// The same without the text prefilter: every line is parsed, straight from its block.
const PLAYBOOK_UNFILTERED: &str = "name: t\nschedule: {interval_minutes: 5}\nsource: {paths: [x]}\nquery:\n  all:\n    - {field: alert.severity, less_or_equal: 2}\ncalculations:\n  - name: e\n    type: top\n    field: engid\n    subgroups:\n      - {name: s, type: top, field: srcip, size: 3}\n";

fn search(dir: &std::path::Path, file: &str, threads: usize) -> SearchOutput {
    search_with(PLAYBOOK, dir, file, threads)
}

fn search_with(playbook: &str, dir: &std::path::Path, file: &str, threads: usize) -> SearchOutput {
    search::search(playbook, dir, &[file], threads, 5).unwrap()
}

#[test]
fn big_files_keep_line_numbers_and_results_across_blocks_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    let mut expected_hits = 0;
    for i in 0..40_000u32 {
        let line = match i {
            25_000 => "{\"event_type\":\"alert\",\"broken\": ".to_string(),
            30_000 => format!("{{\"timestamp\":\"2025-06-02T10:00:00Z\",\"event_type\":\"\\u0061lert\",\"src_ip\":\"10.9.9.9\",\"alert\":{{\"signature_id\":7,\"severity\":1}},\"pad\":\"{}\"}}", "x".repeat(1_500_000)),
            _ if i % 3 == 0 => format!("{{\"timestamp\":\"2025-06-02T10:00:00Z\",\"event_type\":\"flow\",\"src_ip\":\"10.0.0.{}\",\"flow\":{{\"alerted\":false}}}}", i % 7),
            _ => format!("{{\"timestamp\":\"2025-06-02T10:00:{:02}Z\",\"event_type\":\"alert\",\"src_ip\":\"10.0.{}.{}\",\"alert\":{{\"signature_id\":{},\"severity\":{}}}}}", i % 60, i % 5, i % 11, i % 4, 1 + i % 3),
        };
        if i == 30_000 || (i != 25_000 && i % 3 == 1) {
            expected_hits += 1;
        }
        text += &line;
        text.push('\n');
    }
    std::fs::write(dir.path().join("big.ndjson"), &text).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.path().join("big.ndjson.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();

    let one = search(dir.path(), "big.ndjson", 1);
    assert_eq!(one.stats.records, 39_999);
    assert_eq!(one.stats.malformed, 1);
    assert!(
        one.stats.examples[0].contains("big.ndjson:25001:"),
        "{:?}",
        one.stats.examples
    );
    assert!(
        one.stats.prefiltered > 13_000,
        "flow lines are skipped unparsed: {:?}",
        one.stats
    );
    assert_eq!(
        one.payload.total_hits, expected_hits,
        "the escaped \\u0061lert still matches"
    );
    for threads in [2, 4] {
        let many = search(dir.path(), "big.ndjson", threads);
        assert_eq!(many.payload, one.payload);
        assert_eq!(
            (
                many.stats.records,
                many.stats.malformed,
                many.stats.prefiltered
            ),
            (one.stats.records, 1, one.stats.prefiltered)
        );
    }
    let gz = search(dir.path(), "big.ndjson.gz", 2);
    assert_eq!(gz.payload, one.payload);
    assert_eq!(
        gz.stats.examples,
        one.stats
            .examples
            .iter()
            .map(|e| e.replace("big.ndjson", "big.ndjson.gz"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn malformed_examples_name_their_lines_in_order_whatever_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    let bad = [3u32, 40_000, 40_002, 77_777, 120_000, 150_000];
    for i in 1..=160_000u32 {
        if bad.contains(&i) {
            text.extend_from_slice(match i % 3 {
                0 => b"{\"event_type\":\"alert\",\"x\":01}".as_slice(),
                1 => b"{\"event_type\":\"alert\",\"x\":\"\xff\"}".as_slice(),
                _ => b"{\"event_type\":\"alert\",".as_slice(),
            });
        } else {
            text.extend_from_slice(format!("{{\"timestamp\":\"2025-06-02T10:00:00Z\",\"event_type\":\"alert\",\"src_ip\":\"10.0.0.{}\",\"alert\":{{\"signature_id\":1,\"severity\":1}}}}", i % 9).as_bytes());
        }
        text.push(b'\n');
    }
    std::fs::write(dir.path().join("bad.ndjson"), &text).unwrap();
    for playbook in [PLAYBOOK, PLAYBOOK_UNFILTERED] {
        let one = search_with(playbook, dir.path(), "bad.ndjson", 1);
        assert_eq!(one.stats.malformed, 6);
        assert_eq!(one.payload.total_hits, 160_000 - 6);
        let lines: Vec<&str> = one
            .stats
            .examples
            .iter()
            .map(|e| e.split(':').nth(1).unwrap())
            .collect();
        assert_eq!(lines, ["3", "40000", "40002", "77777", "120000"]);
        assert!(
            one.stats.examples[1].ends_with("not UTF-8"),
            "{:?}",
            one.stats.examples
        );
        for threads in [2, 3] {
            let many = search_with(playbook, dir.path(), "bad.ndjson", threads);
            assert_eq!(many.stats, one.stats);
            assert_eq!(many.payload, one.payload);
        }
    }
}

#[test]
fn unfiltered_reads_keep_line_numbers_long_lines_and_odd_endings() {
    let dir = tempfile::tempdir().unwrap();
    let good = |i: u32| {
        format!("{{\"timestamp\":\"2025-06-02T10:00:{:02}Z\",\"event_type\":\"alert\",\"src_ip\":\"10.0.0.{}\",\"alert\":{{\"signature_id\":{},\"severity\":1}}}}", i % 60, i % 7, i % 5)
    };
    let mut text = String::new();
    let mut hits = 0;
    for i in 0..30_000u32 {
        let line = match i {
            100 => format!("{}\r", good(i)),
            101 => format!("{}  \t", good(i)),
            102 => String::new(),
            103 => "   ".to_string(),
            104 => format!("{} x", good(i)),
            105 => format!("{{\"pad\":\"{}\",{}", "y".repeat(2_000_000), &good(i)[1..]),
            106 => format!("{{\"a\":\"\\u00e9\",{}", &good(i)[1..]),
            107 => format!("{{\"a\":\"é\",{}", &good(i)[1..]),
            _ => good(i),
        };
        hits += u64::from(!matches!(i, 102..=104));
        text += &line;
        text.push('\n');
    }
    text += &good(7);
    hits += 1;
    std::fs::write(dir.path().join("odd.ndjson"), &text).unwrap();
    let one = search_with(PLAYBOOK_UNFILTERED, dir.path(), "odd.ndjson", 1);
    assert_eq!(one.payload.total_hits, hits);
    assert_eq!(one.stats.malformed, 1);
    assert!(
        one.stats.examples[0].contains("odd.ndjson:105: trailing characters"),
        "{:?}",
        one.stats.examples
    );
    let filtered = search(dir.path(), "odd.ndjson", 2);
    assert_eq!(filtered.payload, one.payload);
    for threads in [2, 4] {
        let many = search_with(PLAYBOOK_UNFILTERED, dir.path(), "odd.ndjson", threads);
        assert_eq!(many.payload, one.payload);
        assert_eq!(many.stats, one.stats);
    }
}

/// Zeek: half-opened connections by source, then destination port.
const ZEEK_PLAYBOOK: &str = "name: t\nschedule: {interval_minutes: 5}\nsource: {paths: [x]}\nquery: {field: state, is: HalfOpened}\ncalculations:\n  - name: s\n    type: top\n    field: srcip\n    size: 5\n    subgroups:\n      - {name: p, type: top, field: dstport, size: 3}\n";

#[test]
fn zeek_tsv_over_many_batches_and_two_headers_reads_alike_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let states = ["SF", "S0", "REJ", "SH", "RSTOS0", "S1"];
    let mut text = String::from("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tconn_state\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\n");
    let mut line = 7;
    let mut hits = 0;
    let mut cut_off = 0;
    for i in 0..60_000u32 {
        line += 1;
        let state = states[i as usize % states.len()];
        if i == 30_000 {
            cut_off = line;
            text += "1748858400.000000\tCx\t10.0.0.1\t40000\n";
            continue;
        }
        hits += u64::from(matches!(state, "S0" | "SH" | "RSTOS0"));
        text += &format!(
            "{}.{:06}\tC{i}\t10.0.{}.{}\t{}\t192.168.1.{}\t{}\ttcp\t{state}\n",
            1_748_858_400 + i / 10,
            i % 1_000_000,
            i % 3,
            i % 7,
            40_000 + i % 20_000,
            i % 5,
            [22, 80, 443, 3389][i as usize % 4],
        );
    }
    // A second log after the first, its columns in another order.
    text += "#close\t2025-06-02-12-00-00\n#fields\tconn_state\tts\tid.resp_p\tid.orig_h\n#types\tstring\ttime\tport\taddr\n";
    for i in 0..10_000u32 {
        let state = states[i as usize % states.len()];
        hits += u64::from(matches!(state, "S0" | "SH" | "RSTOS0"));
        text += &format!(
            "{state}\t1748900000.{i:06}\t{}\t10.9.9.{}\n",
            22 + i % 2,
            i % 3
        );
    }
    assert!(text.len() > 3 * (1 << 20), "several batches");
    std::fs::write(dir.path().join("conn.log"), &text).unwrap();

    let one = search_with(ZEEK_PLAYBOOK, dir.path(), "conn.log", 1);
    assert_eq!(one.stats.records, 60_000 - 1 + 10_000);
    assert_eq!(one.stats.malformed, 1);
    assert_eq!(
        one.stats.examples,
        [format!(
            "{}:{cut_off}: record has fewer columns than #fields (cut off?)",
            dir.path().join("conn.log").display()
        )]
    );
    assert_eq!(one.payload.total_hits, hits);
    let sources = one.payload.aggregations["s"]["buckets"].as_array().unwrap();
    assert!(
        sources.iter().any(|b| b["key"] == "10.9.9.1"),
        "the second header's columns are read: {sources:?}"
    );
    for threads in [2, 4] {
        let many = search_with(ZEEK_PLAYBOOK, dir.path(), "conn.log", threads);
        assert_eq!(many.payload, one.payload);
        assert_eq!(many.stats, one.stats);
    }
}

#[test]
fn json_arrays_over_many_batches_read_as_ndjson_reads_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let (mut array, mut ndjson) = (String::from("[\n"), String::new());
    let mut bad_line = 0;
    for i in 0..20_000u32 {
        if i > 0 {
            array += ",\n";
        }
        if i == 12_345 {
            bad_line = array.matches('\n').count() + 1;
            array += "  {\"event_type\": \"alert\",\n   \"x\": 01}";
            ndjson += "{\"event_type\":\"alert\",\"x\":01}\n";
            continue;
        }
        let record = serde_json::json!({
            "timestamp": format!("2025-06-02T10:00:{:02}Z", i % 60),
            "event_type": if i % 3 == 0 { "flow" } else { "alert" },
            "src_ip": format!("10.0.{}.{}", i % 5, i % 11),
            "alert": {"signature_id": i % 4, "severity": 1 + i % 3, "signature": "a \"quoted\" name"},
        });
        array += &serde_json::to_string_pretty(&record).unwrap();
        ndjson += &record.to_string();
        ndjson.push('\n');
    }
    array += "\n]\n";
    assert!(array.len() > 3 * (1 << 20), "several batches");
    std::fs::write(dir.path().join("eve.json"), &array).unwrap();
    std::fs::write(dir.path().join("eve.ndjson"), &ndjson).unwrap();

    let lines = search_with(PLAYBOOK_UNFILTERED, dir.path(), "eve.ndjson", 2);
    let one = search_with(PLAYBOOK_UNFILTERED, dir.path(), "eve.json", 1);
    assert_eq!(one.payload, lines.payload);
    assert_eq!((one.stats.records, one.stats.malformed), (19_999, 1));
    assert_eq!(one.stats.examples.len(), 1);
    assert!(
        one.stats.examples[0].contains(&format!("eve.json:{bad_line}: invalid number")),
        "{:?}",
        one.stats.examples
    );
    for threads in [2, 4] {
        let many = search_with(PLAYBOOK_UNFILTERED, dir.path(), "eve.json", threads);
        assert_eq!(many.payload, one.payload);
        assert_eq!(many.stats, one.stats);
    }

    // Cut off in the middle of an element: the records before it count, the rest is malformed.
    std::fs::write(dir.path().join("cut.json"), &array[..array.len() / 2]).unwrap();
    let cut = search_with(PLAYBOOK_UNFILTERED, dir.path(), "cut.json", 2);
    assert!(cut.stats.records > 9_000, "{:?}", cut.stats);
    assert_eq!(cut.stats.malformed, 2, "{:?}", cut.stats.examples);
    assert!(
        cut.stats.examples[1].ends_with("the JSON array is not closed with `]` (cut off?)"),
        "{:?}",
        cut.stats.examples
    );
}
