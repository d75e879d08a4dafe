//! [`Forged`]: a segment we forge (a RST, or an ACK that makes an endpoint reveal its numbers)
//! and how to emit it as an IP packet or an Ethernet frame.
use super::ethernet::{self, Frame};
use super::{checksum, ipv4, ipv6, tcp, Flags};
use std::net::IpAddr;

/// Length of an IPv4 RST: IP header and an option-less TCP header.
pub const RST_V4_LEN: usize = ipv4::HEADER_LEN + tcp::HEADER_LEN;
/// Length of an IPv6 RST.
pub const RST_V6_LEN: usize = ipv6::HEADER_LEN + tcp::HEADER_LEN;

/// What a forged segment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A RST (RST+ACK when it carries an acknowledgment number).
    Rst,
    /// A bare ACK outside the receiver's window: the receiver answers with an ACK that carries
    /// the exact numbers it expects (RFC 9293 3.10.7.4), which the reset path then uses.
    Probe,
}

/// A segment to forge: addresses and ports as on the wire toward `dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forged {
    pub kind: Kind,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// The acknowledgment number; a RST without one is a bare RST.
    pub ack: Option<u32>,
}

impl Forged {
    /// Bytes of the IP packet, or 0 when `src` and `dst` are of different families.
    pub fn ip_len(&self) -> usize {
        match (self.src, self.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => RST_V4_LEN,
            (IpAddr::V6(_), IpAddr::V6(_)) => RST_V6_LEN,
            _ => 0,
        }
    }

    fn header(&self) -> tcp::HeaderRepr {
        let (flags, ack) = match (self.kind, self.ack) {
            (Kind::Rst, Some(ack)) => (Flags::RST | Flags::ACK, ack),
            (Kind::Rst, None) => (Flags::RST, 0),
            (Kind::Probe, ack) => (Flags::ACK, ack.unwrap_or(0)),
        };
        tcp::HeaderRepr {
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq: self.seq,
            ack,
            flags,
            window: 0,
        }
    }

    /// Writes the IP packet into `buf` and returns its length (0 if it does not fit or the
    /// address families differ).
    pub fn emit_ip(&self, buf: &mut [u8]) -> usize {
        let len = self.ip_len();
        if len == 0 || buf.len() < len {
            return 0;
        }
        let tcp_len = tcp::HEADER_LEN as u16;
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                ipv4::Packet::new_unchecked(&mut buf[..]).emit_header(src, dst, tcp_len);
                let pseudo = checksum::pseudo_v4(src, dst, ipv4::PROTOCOL_TCP, tcp_len.into());
                tcp::Packet::new_unchecked(&mut buf[ipv4::HEADER_LEN..len])
                    .emit_header(&self.header(), pseudo);
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                ipv6::Packet::new_unchecked(&mut buf[..]).emit_header(src, dst, tcp_len);
                let pseudo = checksum::pseudo_v6(src, dst, ipv6::NEXT_HEADER_TCP, tcp_len.into());
                tcp::Packet::new_unchecked(&mut buf[ipv6::HEADER_LEN..len])
                    .emit_header(&self.header(), pseudo);
            }
            _ => return 0,
        }
        len
    }

    /// Writes an Ethernet frame (no VLAN tag) carrying the RST and returns its length.
    pub fn emit_frame(&self, src_mac: [u8; 6], dst_mac: [u8; 6], buf: &mut [u8]) -> usize {
        if buf.len() < ethernet::HEADER_LEN {
            return 0;
        }
        let (head, rest) = buf.split_at_mut(ethernet::HEADER_LEN);
        let n = self.emit_ip(rest);
        if n == 0 {
            return 0;
        }
        let mut f = Frame::new_unchecked(head);
        f.set_src(src_mac);
        f.set_dst(dst_mac);
        f.set_ethertype(if self.src.is_ipv4() {
            ethernet::ETHERTYPE_IPV4
        } else {
            ethernet::ETHERTYPE_IPV6
        });
        ethernet::HEADER_LEN + n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{LinkType, Segment};

    fn rst_v4() -> Forged {
        Forged {
            kind: Kind::Rst,
            src: "10.77.0.1".parse().unwrap(),
            dst: "10.77.0.2".parse().unwrap(),
            src_port: 40000,
            dst_port: 5001,
            seq: 0x1b5d3a8d,
            ack: Some(0x8a9f0001),
        }
    }

    /// Known-good bytes, cross-checked with tcpdump -vv ("cksum 0x0ae0 (correct)").
    const RST_V4_BYTES: [u8; 40] = [
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x26, 0x34, 0x0a, 0x4d, 0x00,
        0x01, 0x0a, 0x4d, 0x00, 0x02, 0x9c, 0x40, 0x13, 0x89, 0x1b, 0x5d, 0x3a, 0x8d, 0x8a, 0x9f,
        0x00, 0x01, 0x50, 0x14, 0x00, 0x00, 0x0a, 0xe0, 0x00, 0x00,
    ];

    #[test]
    fn ipv4_rst_matches_known_bytes() {
        let mut buf = [0u8; 64];
        let n = rst_v4().emit_ip(&mut buf);
        assert_eq!(&buf[..n], &RST_V4_BYTES[..]);
    }

    #[test]
    fn emitted_rsts_parse_back_with_valid_checksums() {
        for repr in [
            rst_v4(),
            Forged {
                src: "fd77::2".parse().unwrap(),
                dst: "fd77::1".parse().unwrap(),
                ack: None,
                ..rst_v4()
            },
        ] {
            let mut buf = [0u8; 128];
            let n = repr.emit_frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], &mut buf);
            let seg = Segment::parse(LinkType::Ethernet, &buf[..n]).unwrap();
            assert_eq!((seg.src, seg.dst), (repr.src, repr.dst));
            assert_eq!((seg.seq, seg.payload_len), (repr.seq, 0));
            assert!(seg.flags.rst());
            assert_eq!(seg.flags.ack(), repr.ack.is_some());
            assert_eq!(seg.l2.dst_mac, [2, 0, 0, 0, 0, 2]);
            let ip = &buf[14..n];
            let (pseudo, tcp_at) = match (repr.src, repr.dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    assert!(ipv4::Packet::new_checked(ip).unwrap().verify_checksum());
                    (checksum::pseudo_v4(s, d, 6, 20), 20)
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => (checksum::pseudo_v6(s, d, 6, 20), 40),
                _ => unreachable!(),
            };
            assert!(tcp::Packet::new_checked(&ip[tcp_at..])
                .unwrap()
                .verify_checksum(pseudo));
        }
    }

    #[test]
    fn probe_is_a_bare_ack() {
        let probe = Forged {
            kind: Kind::Probe,
            ..rst_v4()
        };
        let mut buf = [0u8; 64];
        let n = probe.emit_ip(&mut buf);
        let seg = Segment::parse(LinkType::RawIp, &buf[..n]).unwrap();
        assert_eq!(seg.flags, Flags::ACK);
        assert_eq!((seg.seq, seg.ack), (probe.seq, 0x8a9f0001));
    }

    #[test]
    fn mixed_families_and_short_buffers_emit_nothing() {
        let mixed = Forged {
            dst: "fd77::1".parse().unwrap(),
            ..rst_v4()
        };
        assert_eq!(mixed.emit_ip(&mut [0u8; 64]), 0);
        assert_eq!(rst_v4().emit_ip(&mut [0u8; 39]), 0);
    }
}
