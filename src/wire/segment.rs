//! [`Segment`]: the owned summary of one sniffed TCP segment that the decision needs.
use super::{ipv4, ipv6, strip_link, tcp, Error, Flags, LinkType, Result, L2};
use std::net::IpAddr;

/// The fields of a sniffed TCP segment that reset decisions use.
///
/// Checksums of sniffed segments are not verified: a sensor often sees segments whose checksum
/// the sender's NIC fills in later (offload), and a bad checksum changes nothing we decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub l2: L2,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    pub window: u16,
    /// Payload bytes on the wire (from the IP length, not the captured length).
    pub payload_len: u32,
}

impl Segment {
    /// Parses a captured frame of the given link type.
    pub fn parse(link: LinkType, frame: &[u8]) -> Result<Segment> {
        let l = strip_link(link, frame)?;
        let ip = &frame[l.offset..];
        let (src, dst, tcp_bytes, tcp_len) = match l.ip_version {
            4 => {
                let p = ipv4::Packet::new_checked(ip)?;
                if p.protocol() != ipv4::PROTOCOL_TCP || p.is_fragment() {
                    return Err(Error::Unsupported);
                }
                let hl = p.header_len();
                let len = usize::from(p.total_len()) - hl;
                (IpAddr::V4(p.src()), IpAddr::V4(p.dst()), &ip[hl..], len)
            }
            _ => {
                let p = ipv6::Packet::new_checked(ip)?;
                let (next, offset, len) = p.upper_layer()?;
                if next != ipv6::NEXT_HEADER_TCP {
                    return Err(Error::Unsupported);
                }
                (IpAddr::V6(p.src()), IpAddr::V6(p.dst()), &ip[offset..], len)
            }
        };
        let t = tcp::Packet::new_checked(tcp_bytes)?;
        let payload_len = tcp_len
            .checked_sub(t.header_len())
            .ok_or(Error::Malformed)? as u32;
        Ok(Segment {
            l2: l.l2,
            src,
            dst,
            src_port: t.src_port(),
            dst_port: t.dst_port(),
            seq: t.seq(),
            ack: t.ack(),
            flags: t.flags(),
            window: t.window(),
            payload_len,
        })
    }

    /// Sequence space the segment occupies: payload plus one for SYN and one for FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload_len + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }

    /// The sequence number the receiver expects next once this segment has arrived.
    pub fn seq_end(&self) -> u32 {
        tcp::seq_add(self.seq, self.seq_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A captured frame: 10.77.0.1:40000 -> 10.77.0.2:5001, ACK+PSH, 5 bytes "hello".
    fn data_frame() -> Vec<u8> {
        let mut f = vec![
            0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // ethernet
            0x45, 0x00, 0x00, 0x2d, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 10, 77, 0, 1,
            10, 77, 0, 2, // ipv4, total length 45
            0x9c, 0x40, 0x13, 0x89, 0xff, 0xff, 0xff, 0xfe, 0x00, 0x00, 0x10, 0x00, 0x50, 0x18,
            0x01, 0xf5, 0x00, 0x00, 0x00, 0x00, // tcp
        ];
        f.extend_from_slice(b"hello");
        f
    }

    #[test]
    fn parses_a_data_segment() {
        let s = Segment::parse(LinkType::Ethernet, &data_frame()).unwrap();
        assert_eq!(s.src, "10.77.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((s.src_port, s.dst_port), (40000, 5001));
        assert_eq!(s.payload_len, 5);
        assert_eq!(s.l2.src_mac, [2, 0, 0, 0, 0, 1]);
        // 0xfffffffe + 5 wraps.
        assert_eq!(s.seq_end(), 3);
    }

    #[test]
    fn payload_length_comes_from_the_ip_header_not_the_capture() {
        let f = data_frame();
        let s = Segment::parse(LinkType::Ethernet, &f[..f.len() - 5]).unwrap();
        assert_eq!(s.payload_len, 5);
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        let mut f = data_frame();
        f[23] = 17; // UDP
        assert_eq!(
            Segment::parse(LinkType::Ethernet, &f),
            Err(Error::Unsupported)
        );
        let mut f = data_frame();
        f[17] = 30; // IP total length shorter than IP + TCP headers
        assert_eq!(
            Segment::parse(LinkType::Ethernet, &f),
            Err(Error::Malformed)
        );
        let f = data_frame();
        assert_eq!(
            Segment::parse(LinkType::Ethernet, &f[..40]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn every_prefix_of_a_frame_is_handled() {
        let f = data_frame();
        for n in 0..f.len() {
            let _ = Segment::parse(LinkType::Ethernet, &f[..n]);
            let _ = Segment::parse(LinkType::RawIp, &f[14..14 + n.min(f.len() - 14)]);
        }
    }

    #[test]
    fn ipv6_extension_claiming_more_than_was_captured_is_truncated() {
        // A 68-byte frame: Ethernet, IPv6 (payload length 2048), hop-by-hop with header
        // length 255 (2,048 bytes claimed), then 6 bytes. This once panicked on a slice.
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        f.extend_from_slice(&[0x60, 0, 0, 0, 0x08, 0x00, 0, 64]);
        f.extend_from_slice(&[0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&[6, 255, 0, 0, 0, 0, 0, 0]);
        f.resize(68, 0);
        assert_eq!(
            Segment::parse(LinkType::Ethernet, &f),
            Err(Error::Truncated)
        );
    }
}
