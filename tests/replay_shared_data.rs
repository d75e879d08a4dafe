//! Every capture under ../shared/data/pcap replays without error, and every RST it yields is
//! well formed (checked by pnet, an independent parser) and aimed at the rule's host's flows.
mod replay;

use replay::{check_rst, read_pcap, shared_pcaps};
use std::collections::HashMap;
use std::net::IpAddr;
use tcpreset::wire::Segment;

/// The host with the most non-RST TCP segments in a capture, and the seconds from the first
/// frame to its first segment (some captures span days, beyond a rule's longest life).
fn busiest_host(path: &std::path::Path) -> Option<(IpAddr, f64)> {
    let (link, frames) = read_pcap(path);
    let start = frames.first()?.0;
    let mut counts: HashMap<IpAddr, (usize, f64)> = HashMap::new();
    for (ts, f) in &frames {
        if let Ok(s) = Segment::parse(link, f) {
            if !s.flags.rst() {
                let offset = ts.saturating_since(start).as_secs_f64();
                counts.entry(s.src).or_insert((0, offset)).0 += 1;
            }
        }
    }
    counts
        .into_iter()
        .max_by_key(|(ip, (n, _))| (*n, *ip))
        .map(|(ip, (_, offset))| (ip, offset))
}

#[test]
fn every_shared_capture_replays_and_yields_valid_rsts() {
    let mut files: Vec<_> = std::fs::read_dir(shared_pcaps())
        .expect("../shared/data/pcap is beside the repository")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the shared captures, found {files:?}"
    );
    let mut with_tcp = 0;
    for path in files {
        let Some((host, start)) = busiest_host(&path) else {
            // A capture without a parseable TCP segment (e.g. Teredo-only) must still replay.
            let out = replay::replay(
                &path,
                r#"[{"engid":"t","host":"192.0.2.1","seconds":86400}]"#,
            );
            assert!(out.is_empty(), "{}", path.display());
            continue;
        };
        with_tcp += 1;
        let rules = format!(r#"[{{"engid":"t","host":"{host}","start":{start},"seconds":86400}}]"#);
        let out = replay::replay(&path, &rules);
        assert!(!out.is_empty(), "{}: no RSTs for {host}", path.display());
        for (_, frame) in &out {
            let rst = check_rst(frame);
            assert!(
                rst.src == host || rst.dst == host,
                "{}: {rst:?}",
                path.display()
            );
        }
    }
    assert!(with_tcp >= 10, "only {with_tcp} captures had TCP");
}
