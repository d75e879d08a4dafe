//! Frames → `Segment::parse` and the replay engine; every forged segment must re-parse as what it
//! claims, with IP and TCP checksums that an independent RFC 1071 sum accepts.
//!
//! Input: byte 0 picks the link type, byte 1 the rule set and flow tracking, then frames as
//! `[len_hi, len_lo, gap_ms]` followed by `len` bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;
use std::time::Duration;
use tcpreset::flows::{FlowBudget, FlowTable};
use tcpreset::replay::{Replayer, TimedRule};
use tcpreset::rules::RuleKey;
use tcpreset::time::Instant;
use tcpreset::wire::{Kind, LinkType, Segment};

const LINKS: [i32; 5] = [1, 101, 113, 276, 0];

fn frames(mut data: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut ts = 1_700_000_000_000_000u64;
    while let [hi, lo, gap, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        ts += u64::from(*gap) * 1000;
        out.push((ts, &rest[..len]));
        data = &rest[len..];
    }
    out
}

/// RFC 1071 over the concatenation of `parts`.
fn internet_sum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut acc: u64 = 0;
    for c in bytes.chunks(2) {
        acc += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn check_forged(o: &tcpreset::reset::Outgoing) {
    let mut buf = [0u8; 128];
    let n = o.forged.emit_frame(o.src_mac, o.dst_mac, &mut buf);
    assert!(n > 0, "forged segment not emitted: {:?}", o.forged);
    let frame = &buf[..n];
    let seg = Segment::parse(LinkType::Ethernet, frame).expect("forged frame re-parses");
    assert_eq!((seg.src, seg.dst), (o.forged.src, o.forged.dst));
    assert_eq!(
        (seg.src_port, seg.dst_port),
        (o.forged.src_port, o.forged.dst_port)
    );
    assert_eq!((seg.seq, seg.payload_len), (o.forged.seq, 0));
    assert_eq!(seg.flags.rst(), o.forged.kind == Kind::Rst);
    let ip = &frame[14..];
    let (pseudo, tcp) = match (seg.src, seg.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            assert_eq!(internet_sum(&[&ip[..20]]), 0, "IPv4 header checksum");
            let tcp = &ip[20..];
            let len = (tcp.len() as u16).to_be_bytes();
            (
                [&s.octets()[..], &d.octets()[..], &[0, 6], &len].concat(),
                tcp,
            )
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let tcp = &ip[40..];
            let len = (tcp.len() as u32).to_be_bytes();
            (
                [&s.octets()[..], &d.octets()[..], &len, &[0, 0, 0, 6]].concat(),
                tcp,
            )
        }
        _ => unreachable!("families checked by emit_frame"),
    };
    assert_eq!(
        internet_sum(&[&pseudo, tcp]),
        0,
        "TCP checksum of {:?}",
        o.forged
    );
}

fuzz_target!(|data: &[u8]| {
    let [link, mode, rest @ ..] = data else {
        return;
    };
    let Some(link) = LinkType::from_linktype(LINKS[usize::from(*link) % LINKS.len()]) else {
        return;
    };
    let frames = frames(rest);
    // Rules for the hosts the capture talks about, so that fuzzed frames match some.
    let mut rules: Vec<TimedRule> = Vec::new();
    for (i, (_, f)) in frames.iter().enumerate() {
        let Ok(seg) = Segment::parse(link, f) else {
            continue;
        };
        if rules.len() >= 4 {
            break;
        }
        let host = if mode & 1 == 0 { seg.dst } else { seg.src };
        let port = (mode & 2 != 0).then_some(seg.dst_port);
        rules.push(TimedRule {
            start: Duration::from_millis(u64::from(mode >> 4) * 100 * i as u64),
            key: RuleKey {
                engid: "fuzz".into(),
                host,
                port,
            },
            duration: Duration::from_secs(u64::from(mode >> 2 & 3) + 1),
        });
    }
    rules.sort_by_key(|r| r.start);
    let mut replayer = Replayer::new(link, rules);
    if mode & 0x08 != 0 {
        replayer = replayer.with_flows(FlowTable::new(FlowBudget::new(64), Duration::from_secs(5)));
    }
    let mut emit = |_: Instant, o: &tcpreset::reset::Outgoing| check_forged(o);
    for (ts, f) in &frames {
        replayer.on_frame(Instant::from_micros(*ts), f, &mut emit);
    }
    replayer.finish(&mut emit);
    let c = replayer.counters();
    assert_eq!(c.frames, frames.len() as u64);
});
