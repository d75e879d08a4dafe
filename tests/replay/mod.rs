//! Shared helpers of the replay tests: read captures, replay them, check RSTs independently.
#![allow(dead_code)]

use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::{self, TcpFlags, TcpPacket};
use pnet_packet::Packet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use tcpreset::replay::{parse_rules, Replayer};
use tcpreset::time::Instant;
use tcpreset::wire::LinkType;

/// `../shared/data/pcap`, beside the repository.
pub fn shared_pcaps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/pcap")
}

/// `tests/data`.
pub fn test_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Frames of a capture with their timestamps.
pub fn read_pcap(path: &Path) -> (LinkType, Vec<(Instant, Vec<u8>)>) {
    let mut cap =
        pcap::Capture::from_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let link = LinkType::from_linktype(cap.get_datalink().0).expect("a link type we read");
    let mut frames = Vec::new();
    while let Ok(p) = cap.next_packet() {
        let ts = Instant::from_timeval(p.header.ts.tv_sec, p.header.ts.tv_usec);
        frames.push((ts, p.data.to_vec()));
    }
    (link, frames)
}

/// Replays a capture under `rules_json`; returns the RST frames with their times (the probes
/// that check ends after their RSTs left out: see [`replay_all`]).
pub fn replay(path: &Path, rules_json: &str) -> Vec<(Instant, Vec<u8>)> {
    let mut out = replay_all(path, rules_json);
    out.retain(|(_, f)| !is_probe(f));
    out
}

/// Whether an Ethernet frame we wrote is a probe (a bare ACK), not a RST.
pub fn is_probe(frame: &[u8]) -> bool {
    let eth = EthernetPacket::new(frame).expect("ethernet");
    let ip_payload = match eth.get_ethertype() {
        EtherTypes::Ipv4 => Ipv4Packet::new(eth.payload())
            .expect("ipv4")
            .payload()
            .to_vec(),
        EtherTypes::Ipv6 => Ipv6Packet::new(eth.payload())
            .expect("ipv6")
            .payload()
            .to_vec(),
        other => panic!("not IP: {other}"),
    };
    TcpPacket::new(&ip_payload).expect("tcp").get_flags() == TcpFlags::ACK
}

/// Replays a capture under `rules_json`; returns every frame it would inject, with its time.
pub fn replay_all(path: &Path, rules_json: &str) -> Vec<(Instant, Vec<u8>)> {
    let (link, frames) = read_pcap(path);
    let mut r = Replayer::new(link, parse_rules(rules_json).expect("rules"));
    let mut out = Vec::new();
    let mut emit = |at: Instant, o: &tcpreset::reset::Outgoing| {
        let mut buf = [0u8; 128];
        let n = o.forged.emit_frame(o.src_mac, o.dst_mac, &mut buf);
        assert!(n > 0);
        out.push((at, buf[..n].to_vec()));
    };
    for (ts, f) in &frames {
        r.on_frame(*ts, f, &mut emit);
    }
    r.finish(&mut emit);
    out
}

/// A RST as an independent parser (pnet) reads it, checksums verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rst {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: Option<u32>,
}

/// Parses an Ethernet frame holding one of our RSTs with pnet, checking every checksum and
/// that it is a bare RST or RST+ACK with no payload.
pub fn check_rst(frame: &[u8]) -> Rst {
    let (rst, flags) = check_forged(frame);
    assert!(
        flags == TcpFlags::RST || flags == TcpFlags::RST | TcpFlags::ACK,
        "flags {flags:#x}"
    );
    rst
}

/// Parses an Ethernet frame holding one of our probes (a bare ACK, no payload), checksums
/// checked; its numbers are returned as a [`Rst`]'s.
pub fn check_probe(frame: &[u8]) -> Rst {
    let (probe, flags) = check_forged(frame);
    assert_eq!(flags, TcpFlags::ACK, "flags {flags:#x}");
    probe
}

/// Parses a frame we wrote with pnet, checking every checksum and that it has no payload.
fn check_forged(frame: &[u8]) -> (Rst, u8) {
    let eth = EthernetPacket::new(frame).expect("ethernet");
    let (src, dst, tcp_bytes, sum) = match eth.get_ethertype() {
        EtherTypes::Ipv4 => {
            let ip = Ipv4Packet::new(eth.payload()).expect("ipv4");
            assert_eq!(
                ip.get_checksum(),
                pnet_packet::ipv4::checksum(&ip),
                "IPv4 checksum"
            );
            assert_eq!(usize::from(ip.get_total_length()), eth.payload().len());
            let t = TcpPacket::new(ip.payload()).expect("tcp");
            let sum = tcp::ipv4_checksum(&t, &ip.get_source(), &ip.get_destination());
            (
                IpAddr::V4(ip.get_source()),
                IpAddr::V4(ip.get_destination()),
                ip.payload().to_vec(),
                sum,
            )
        }
        EtherTypes::Ipv6 => {
            let ip = Ipv6Packet::new(eth.payload()).expect("ipv6");
            assert_eq!(
                usize::from(ip.get_payload_length()) + 40,
                eth.payload().len()
            );
            let t = TcpPacket::new(ip.payload()).expect("tcp");
            let sum = tcp::ipv6_checksum(&t, &ip.get_source(), &ip.get_destination());
            (
                IpAddr::V6(ip.get_source()),
                IpAddr::V6(ip.get_destination()),
                ip.payload().to_vec(),
                sum,
            )
        }
        other => panic!("not IP: {other}"),
    };
    let t = TcpPacket::new(&tcp_bytes).expect("tcp");
    assert_eq!(t.get_checksum(), sum, "TCP checksum");
    let flags = t.get_flags();
    assert!(t.payload().is_empty());
    let forged = Rst {
        src,
        dst,
        sport: t.get_source(),
        dport: t.get_destination(),
        seq: t.get_sequence(),
        ack: (flags & TcpFlags::ACK != 0).then(|| t.get_acknowledgement()),
    };
    (forged, flags)
}

/// A sniffed TCP segment as pnet reads it (independently of the crate's own parser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub len: u32,
}

impl Seen {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// The TCP segments of an Ethernet capture, parsed by pnet.
pub fn seen_segments(path: &Path) -> Vec<(Instant, Seen)> {
    let (_, frames) = read_pcap(path);
    let mut out = Vec::new();
    for (ts, f) in frames {
        let eth = EthernetPacket::new(&f).expect("ethernet");
        let (src, dst, ip_payload_len, tcp_bytes) = match eth.get_ethertype() {
            EtherTypes::Ipv4 => {
                let ip = Ipv4Packet::new(eth.payload()).expect("ipv4");
                let hl = u32::from(ip.get_header_length()) * 4;
                let len = u32::from(ip.get_total_length()) - hl;
                (
                    IpAddr::V4(ip.get_source()),
                    IpAddr::V4(ip.get_destination()),
                    len,
                    ip.payload().to_vec(),
                )
            }
            EtherTypes::Ipv6 => {
                let ip = Ipv6Packet::new(eth.payload()).expect("ipv6");
                let len = u32::from(ip.get_payload_length());
                (
                    IpAddr::V6(ip.get_source()),
                    IpAddr::V6(ip.get_destination()),
                    len,
                    ip.payload().to_vec(),
                )
            }
            _ => continue,
        };
        let t = TcpPacket::new(&tcp_bytes).expect("tcp");
        out.push((
            ts,
            Seen {
                src,
                dst,
                sport: t.get_source(),
                dport: t.get_destination(),
                seq: t.get_sequence(),
                ack: t.get_acknowledgement(),
                flags: t.get_flags(),
                len: ip_payload_len - u32::from(t.get_data_offset()) * 4,
            },
        ));
    }
    out
}
