//! Replay of real kernel captures (tests/data, made by scripts/make-captures.sh): the exact RSTs,
//! checked field by field against the sniffed segments as pnet reads them.
mod replay;

use pnet_packet::tcp::TcpFlags;
use replay::{check_probe, check_rst, is_probe, seen_segments, test_data, Rst, Seen};
use std::net::IpAddr;
use std::time::Duration;
use tcpreset::time::Instant;

fn rules(host: &str, port: Option<u16>, start: f64, seconds: u64) -> String {
    let port = port.map_or("null".to_owned(), |p| p.to_string());
    format!(
        r#"[{{"engid":"t","host":"{host}","port":{port},"start":{start},"seconds":{seconds}}}]"#
    )
}

fn replay(file: &str, rules: &str) -> Vec<(Instant, Rst)> {
    replay::replay(&test_data(file), rules)
        .into_iter()
        .map(|(t, f)| (t, check_rst(&f)))
        .collect()
}

/// The two RSTs a segment calls for, computed here from RFC 9293 and RFC 5961 by hand.
fn expected(s: &Seen) -> [Rst; 2] {
    let syn_fin = u32::from(s.has(TcpFlags::SYN)) + u32::from(s.has(TcpFlags::FIN));
    let end = s.seq.wrapping_add(s.len + syn_fin);
    let acks = s.has(TcpFlags::ACK);
    [
        Rst {
            src: s.src,
            dst: s.dst,
            sport: s.sport,
            dport: s.dport,
            seq: end,
            ack: acks.then_some(s.ack),
        },
        Rst {
            src: s.dst,
            dst: s.src,
            sport: s.dport,
            dport: s.sport,
            seq: if acks { s.ack } else { 0 },
            ack: Some(end),
        },
    ]
}

#[test]
fn a_syn_is_refused_on_both_ends() {
    let seen = seen_segments(&test_data("chat-v4.pcap"));
    let (t0, syn) = &seen[0];
    assert_eq!(syn.flags, TcpFlags::SYN, "the capture starts with the SYN");
    let out = replay("chat-v4.pcap", &rules("10.77.0.1", None, 0.0, 60));
    assert_eq!(out[0], (*t0, expected(syn)[0]));
    assert_eq!(out[1], (*t0, expected(syn)[1]));
    // Bare RST to the listener at isn+1; RST+ACK acking the SYN to the client.
    assert_eq!(
        (out[0].1.seq, out[0].1.ack),
        (syn.seq.wrapping_add(1), None)
    );
    assert_eq!(
        (out[1].1.seq, out[1].1.ack),
        (0, Some(syn.seq.wrapping_add(1)))
    );
    // The SYN-ACK follows within microseconds: pacing holds its numbers back a millisecond and
    // then sends the freshest, which every later segment's numbers match.
    assert!(seen[1].1.has(TcpFlags::SYN) && seen[1].1.has(TcpFlags::ACK));
    assert!(
        out[2].0 >= *t0 + Duration::from_millis(1),
        "{:?}",
        &out[..3]
    );
}

#[test]
fn mid_connection_rsts_are_exact_and_stop_at_expiry() {
    let file = "chat-v4.pcap";
    let seen = seen_segments(&test_data(file));
    let first = seen[0].0;
    let start = first + Duration::from_millis(300);
    let end = start + Duration::from_secs(1);
    let out = replay(file, &rules("10.77.0.1", None, 0.3, 1));
    let (t, seg) = seen.iter().find(|(t, _)| *t >= start).unwrap();
    assert_eq!(&out[..2], &[(*t, expected(seg)[0]), (*t, expected(seg)[1])]);
    assert!(
        out.iter().all(|(at, _)| *at >= start && *at < end),
        "an RST outside the rule's life"
    );
    assert!(
        seen.iter().any(|(t, _)| *t > end),
        "the capture must go on after expiry"
    );
    // Every RST is one that some sniffed segment calls for.
    for (at, rst) in &out {
        assert!(
            seen.iter()
                .any(|(t, s)| t <= at && expected(s).contains(rst)),
            "{rst:?} at {at:?} answers no segment"
        );
    }
}

#[test]
fn port_rule_touches_only_that_port_of_that_host() {
    let out = replay(
        "two-hosts-v4.pcap",
        &rules("10.77.0.1", Some(5001), 0.0, 60),
    );
    assert!(!out.is_empty());
    let host: IpAddr = "10.77.0.1".parse().unwrap();
    for (_, r) in &out {
        assert!(r.src == host || r.dst == host, "{r:?}");
        assert!(r.sport == 5001 || r.dport == 5001, "{r:?}");
    }
    let out = replay("two-hosts-v4.pcap", &rules("10.77.0.9", None, 0.0, 60));
    assert!(
        out.is_empty(),
        "no RST for a host that is not in the capture"
    );
}

#[test]
fn ipv6_rsts_are_exact() {
    let seen = seen_segments(&test_data("chat-v6.pcap"));
    let out = replay("chat-v6.pcap", &rules("fd77::1", None, 0.0, 60));
    let (t0, syn) = &seen[0];
    assert!(syn.src.is_ipv6());
    assert_eq!(
        &out[..2],
        &[(*t0, expected(syn)[0]), (*t0, expected(syn)[1])]
    );
}

#[test]
fn bulk_pacing_sends_few_rsts_never_repeats_and_keeps_the_freshest() {
    let file = "bulk-v4.pcap";
    let seen = seen_segments(&test_data(file));
    let data = seen.iter().filter(|(_, s)| s.len > 0).count();
    assert!(data > 100, "a bulk capture, {data} data segments");
    let out = replay(file, &rules("10.77.0.2", None, 0.0, 60));
    let span = seen.last().unwrap().0.saturating_since(seen[0].0);
    // At most one RST per end per millisecond, plus the first of each end.
    let bound = 2 * (span.as_millis() as usize + 2) * 2;
    assert!(
        out.len() <= bound && out.len() < data / 2,
        "{} RSTs for {data} segments over {span:?}",
        out.len()
    );
    for end in [("10.77.0.1", 40002u16), ("10.77.0.2", 5002)] {
        let ip: IpAddr = end.0.parse().unwrap();
        let toward: Vec<_> = out
            .iter()
            .filter(|(_, r)| r.dst == ip && r.dport == end.1)
            .collect();
        for w in toward.windows(2) {
            let gap = w[1].0.saturating_since(w[0].0);
            assert!(
                gap >= Duration::from_millis(1),
                "RSTs toward {ip} {gap:?} apart"
            );
            assert!(w[1].1.seq != w[0].1.seq || gap >= Duration::from_millis(50));
        }
    }
    // The last RST toward the receiver carries the end of the last data segment before it.
    let (at, last) = out
        .iter()
        .rev()
        .find(|(_, r)| r.dst.to_string() == "10.77.0.2")
        .unwrap();
    let (_, seg) = seen
        .iter()
        .rev()
        .find(|(t, s)| t <= at && s.dst.to_string() == "10.77.0.2")
        .unwrap();
    assert_eq!(last.seq, expected(seg)[0].seq);
}

#[test]
fn each_end_is_probed_check_after_its_last_rst() {
    use tcpreset::reset::{CHECK, MAX_CHECKS};
    let file = "bulk-v4.pcap";
    let all = replay::replay_all(&test_data(file), &rules("10.77.0.2", None, 0.0, 60));
    let (probes, rsts): (Vec<_>, Vec<_>) = all.iter().partition(|(_, f)| is_probe(f));
    let rsts: Vec<(Instant, Rst)> = rsts.iter().map(|(t, f)| (*t, check_rst(f))).collect();
    let probes: Vec<(Instant, Rst)> = probes.iter().map(|(t, f)| (*t, check_probe(f))).collect();
    for end in [("10.77.0.1", 40002u16), ("10.77.0.2", 5002)] {
        let ip: IpAddr = end.0.parse().unwrap();
        let toward = |v: &[(Instant, Rst)]| -> Vec<(Instant, Rst)> {
            v.iter()
                .filter(|(_, r)| r.dst == ip && r.dport == end.1)
                .copied()
                .collect()
        };
        let (rsts, probes) = (toward(&rsts), toward(&probes));
        assert!(
            (1..=usize::from(MAX_CHECKS)).contains(&probes.len()),
            "{} probes toward {ip}",
            probes.len()
        );
        for (at, probe) in &probes {
            // Each probe follows the last RST toward its end by CHECK, from the same peer,
            // with that RST's numbers moved out of the window.
            let (sent, rst) = rsts.iter().rev().find(|(t, _)| t <= at).unwrap();
            assert_eq!(*at, *sent + CHECK, "{probe:?} after {rst:?}");
            assert_eq!(probe.seq, rst.seq.wrapping_add(1 << 30));
            assert_eq!(
                (probe.src, probe.sport, probe.ack),
                (rst.src, rst.sport, rst.ack)
            );
        }
        let (last, _) = rsts.last().unwrap();
        assert_eq!(
            probes.last().unwrap().0,
            *last + CHECK,
            "the last RST is checked"
        );
    }
}

#[test]
fn the_daemon_binary_writes_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    let rules_file = dir.path().join("rules.json");
    std::fs::write(&rules_file, rules("10.77.0.1", None, 0.3, 1)).unwrap();
    let out_file = dir.path().join("out.pcap");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tcpresetd"))
        .arg("--replay")
        .arg(test_data("chat-v4.pcap"))
        .arg("--rules")
        .arg(&rules_file)
        .arg("--inject-to")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let (_, written) = replay::read_pcap(&out_file);
    let expected = replay::replay_all(
        &test_data("chat-v4.pcap"),
        &rules("10.77.0.1", None, 0.3, 1),
    );
    assert!(!written.is_empty());
    assert_eq!(written, expected);
}
