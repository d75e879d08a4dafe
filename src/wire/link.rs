//! Link layers a capture may deliver, and how to reach the IP header inside each.
use super::bytes::be16;
use super::ethernet::{self, Frame};
use super::{Error, Result};

/// The link types of captures we read (libpcap's DLT/LINKTYPE numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1), with optional 802.1Q/QinQ tags.
    Ethernet,
    /// LINKTYPE_RAW (101; DLT_RAW 12 and 14 on some systems): the frame is an IP packet.
    RawIp,
    /// LINKTYPE_LINUX_SLL (113): Linux "cooked" capture, 16-byte header.
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276): Linux cooked capture v2, 20-byte header.
    LinuxSll2,
    /// LINKTYPE_NULL (0): BSD loopback, a 4-byte address family in host order.
    Null,
}

impl LinkType {
    pub fn from_linktype(value: i32) -> Option<LinkType> {
        match value {
            1 => Some(LinkType::Ethernet),
            12 | 14 | 101 => Some(LinkType::RawIp),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            0 => Some(LinkType::Null),
            _ => None,
        }
    }
}

/// What the link layer tells about a frame: MAC addresses and VLAN tags where present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct L2 {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// VLAN ids, outermost first; 0 where there is no tag.
    pub vlans: [u16; ethernet::MAX_TAGS],
}

/// A frame with its link layer removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub l2: L2,
    /// 4 or 6.
    pub ip_version: u8,
    /// Offset of the IP header in the frame.
    pub offset: usize,
}

/// Finds the IP packet inside `frame`.
pub fn strip_link(link: LinkType, frame: &[u8]) -> Result<Link> {
    let (l2, ethertype, offset) = match link {
        LinkType::Ethernet => {
            let f = Frame::new_checked(frame)?;
            let (vlans, ethertype, offset) = f.untag()?;
            let l2 = L2 {
                src_mac: f.src(),
                dst_mac: f.dst(),
                vlans,
            };
            (l2, ethertype, offset)
        }
        LinkType::RawIp => {
            let version = frame.first().ok_or(Error::Truncated)? >> 4;
            return ip_at(L2::default(), version, 0);
        }
        LinkType::LinuxSll => {
            let head = frame.get(..16).ok_or(Error::Truncated)?;
            (L2::default(), be16(head, 14..16), 16)
        }
        LinkType::LinuxSll2 => {
            let head = frame.get(..20).ok_or(Error::Truncated)?;
            (L2::default(), be16(head, 0..2), 20)
        }
        LinkType::Null => {
            let head = frame.get(..4).ok_or(Error::Truncated)?;
            // The family is in the capturing host's byte order: accept both.
            let family = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            let family = if family > 0xffff {
                family.swap_bytes()
            } else {
                family
            };
            let ethertype = match family {
                2 => ethernet::ETHERTYPE_IPV4,
                10 | 24 | 28 | 30 => ethernet::ETHERTYPE_IPV6,
                _ => return Err(Error::Unsupported),
            };
            (L2::default(), ethertype, 4)
        }
    };
    match ethertype {
        ethernet::ETHERTYPE_IPV4 => ip_at(l2, 4, offset),
        ethernet::ETHERTYPE_IPV6 => ip_at(l2, 6, offset),
        _ => Err(Error::Unsupported),
    }
}

fn ip_at(l2: L2, ip_version: u8, offset: usize) -> Result<Link> {
    match ip_version {
        4 | 6 => Ok(Link {
            l2,
            ip_version,
            offset,
        }),
        _ => Err(Error::Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooked_capture() {
        // A Linux SLL header for an outgoing IPv4 packet.
        let mut frame = vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
        frame.push(0x45);
        let link = strip_link(LinkType::LinuxSll, &frame).unwrap();
        assert_eq!((link.ip_version, link.offset), (4, 16));
        frame[14] = 0x08;
        frame[15] = 0x06; // ARP
        assert_eq!(
            strip_link(LinkType::LinuxSll, &frame),
            Err(Error::Unsupported)
        );
    }

    #[test]
    fn raw_ip_reads_the_version_nibble() {
        assert_eq!(strip_link(LinkType::RawIp, &[0x60]).unwrap().ip_version, 6);
        assert_eq!(
            strip_link(LinkType::RawIp, &[0x50]),
            Err(Error::Unsupported)
        );
        assert_eq!(strip_link(LinkType::RawIp, &[]), Err(Error::Truncated));
    }

    #[test]
    fn null_loopback_either_byte_order() {
        let le = [2, 0, 0, 0, 0x45];
        let be = [0, 0, 0, 2, 0x45];
        assert_eq!(strip_link(LinkType::Null, &le).unwrap().offset, 4);
        assert_eq!(strip_link(LinkType::Null, &be).unwrap().ip_version, 4);
    }
}
