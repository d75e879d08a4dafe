//! The parser against the shared captures, checked with the facts their SOURCES.md records
//! (counted there with tcpdump and a second parser): tags, link types, IPv6, RST counts.
mod replay;

use replay::{read_pcap, shared_pcaps};
use std::collections::BTreeSet;
use tcpreset::wire::Segment;

#[derive(Debug, Default)]
struct Tally {
    frames: usize,
    tcp: usize,
    ipv6: usize,
    rst: usize,
    vlans: BTreeSet<[u16; 2]>,
}

fn tally(name: &str) -> Tally {
    let (link, frames) = read_pcap(&shared_pcaps().join(name));
    let mut t = Tally {
        frames: frames.len(),
        ..Tally::default()
    };
    for (_, f) in &frames {
        if let Ok(s) = Segment::parse(link, f) {
            t.tcp += 1;
            t.ipv6 += usize::from(s.src.is_ipv6());
            t.rst += usize::from(s.flags.rst());
            t.vlans.insert(s.l2.vlans);
        }
    }
    t
}

#[test]
fn vlan_tags_single_and_qinq() {
    let t = tally("ndpi_mongodb.pcap");
    assert_eq!((t.frames, t.tcp), (27, 27));
    assert_eq!(t.vlans, BTreeSet::from([[50, 0], [100, 0], [300, 0]]));
    let t = tally("ndpi_ja3_lots_of_cipher_suites.pcap");
    assert_eq!((t.frames, t.tcp, t.rst), (11, 11, 1));
    assert_eq!(t.vlans, BTreeSet::from([[93, 258]]));
}

#[test]
fn ipv6_inside_vlan_and_mixed_tagging() {
    let t = tally("suricata-verify_bug-814.pcap");
    assert_eq!((t.frames, t.tcp, t.ipv6), (7, 7, 7));
    assert_eq!(t.vlans, BTreeSet::from([[1111, 0]]));
    let t = tally("ndpi_smtp-starttls.pcap");
    assert_eq!((t.frames, t.tcp, t.ipv6), (69, 69, 33));
    assert_eq!(t.vlans, BTreeSet::from([[0, 0], [125, 0]]));
}

#[test]
fn ipv6_with_rsts_and_other_link_types() {
    let t = tally("ndpi_reddit.pcap");
    assert_eq!((t.frames, t.tcp, t.ipv6, t.rst), (1942, 1942, 1942, 72));
    let t = tally("ndpi_ethereum.pcap");
    assert_eq!((t.frames, t.rst), (2000, 419));
    let t = tally("pcapplusplus_raw_ip.pcap");
    assert_eq!(t.frames, 100);
    assert!(t.tcp > 0 && t.ipv6 > 0 && t.ipv6 < t.tcp, "{t:?}");
    let t = tally("ndpi_KakaoTalk_chat.pcap");
    assert_eq!(t.frames, 347);
    assert!(t.tcp > 0 && t.rst >= 4, "{t:?}");
}

#[test]
fn scans_parse_with_arp_skipped() {
    let t = tally("zeek_nmap-vsn.pcap");
    assert_eq!(t.frames, 547);
    // 503 ARP and some DNS; `tcpdump -r zeek_nmap-vsn.pcap tcp` counts 32.
    assert_eq!(t.tcp, 32);
    let t = tally("ndpi_synscan.pcap");
    assert_eq!(t.frames, 2011);
    assert!(t.tcp >= 1994 + 12 + 5, "{t:?}");
}
