//! IPv6 headers (RFC 8200) and the extension headers we walk past to reach TCP.
use super::bytes::be16;
use super::{Error, Result};
use std::net::Ipv6Addr;

pub const HEADER_LEN: usize = 40;
pub const NEXT_HEADER_TCP: u8 = 6;

const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const AUTH: u8 = 51;
const DEST_OPTS: u8 = 60;
/// Extension headers we walk through before giving up.
const MAX_EXTENSIONS: usize = 8;

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

view!(
    /// A view of an IPv6 packet.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet::with_header(buffer, HEADER_LEN)?;
        if p.buffer.as_ref()[0] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        Ok(p)
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn payload_len(&self) -> u16 {
        be16(self.data(), field::LENGTH)
    }

    pub fn next_header(&self) -> u8 {
        self.data()[field::NXT_HDR]
    }

    pub fn hop_limit(&self) -> u8 {
        self.data()[field::HOP_LIMIT]
    }

    pub fn src(&self) -> Ipv6Addr {
        let b: [u8; 16] = self.data()[field::SRC].try_into().expect("16 bytes");
        Ipv6Addr::from(b)
    }

    pub fn dst(&self) -> Ipv6Addr {
        let b: [u8; 16] = self.data()[field::DST].try_into().expect("16 bytes");
        Ipv6Addr::from(b)
    }

    /// Walks the extension headers to the upper-layer protocol: its number, its offset from the
    /// start of the IPv6 header and its length on the wire. Non-first fragments are unsupported.
    pub fn upper_layer(&self) -> Result<(u8, usize, usize)> {
        let data = self.data();
        let end = HEADER_LEN + usize::from(self.payload_len());
        let mut next = self.next_header();
        let mut offset = HEADER_LEN;
        for _ in 0..MAX_EXTENSIONS {
            let len = match next {
                HOP_BY_HOP | ROUTING | DEST_OPTS => {
                    let h = data.get(offset..offset + 2).ok_or(Error::Truncated)?;
                    (usize::from(h[1]) + 1) * 8
                }
                AUTH => {
                    let h = data.get(offset..offset + 2).ok_or(Error::Truncated)?;
                    (usize::from(h[1]) + 2) * 4
                }
                FRAGMENT => {
                    let h = data.get(offset..offset + 8).ok_or(Error::Truncated)?;
                    // Fragment offset or More Fragments: only an atomic fragment is whole.
                    if be16(h, 2..4) & 0xfff9 != 0 {
                        return Err(Error::Unsupported);
                    }
                    8
                }
                _ => {
                    return if offset > end {
                        Err(Error::Malformed)
                    } else if offset > data.len() {
                        // The headers claim more bytes than were captured.
                        Err(Error::Truncated)
                    } else {
                        Ok((next, offset, end - offset))
                    };
                }
            };
            next = data[offset];
            offset += len;
        }
        Err(Error::Unsupported)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes a 40-byte header with no extension headers.
    pub fn emit_header(&mut self, src: Ipv6Addr, dst: Ipv6Addr, payload_len: u16) {
        let b = &mut self.buffer.as_mut()[..HEADER_LEN];
        b[field::VER_TC_FLOW].copy_from_slice(&[0x60, 0, 0, 0]);
        b[field::LENGTH].copy_from_slice(&payload_len.to_be_bytes());
        b[field::NXT_HDR] = NEXT_HEADER_TCP;
        b[field::HOP_LIMIT] = 64;
        b[field::SRC].copy_from_slice(&src.octets());
        b[field::DST].copy_from_slice(&dst.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(next: u8, payload_len: u16) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        Packet::new_unchecked(&mut b[..]).emit_header(
            "fd77::1".parse().unwrap(),
            "fd77::2".parse().unwrap(),
            payload_len,
        );
        b[6] = next;
        b
    }

    #[test]
    fn plain_tcp() {
        let b = header(NEXT_HEADER_TCP, 20);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap(), (6, 40, 20));
        assert_eq!(p.src(), "fd77::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.hop_limit(), 64);
    }

    #[test]
    fn walks_hop_by_hop_and_atomic_fragment() {
        let mut b = header(HOP_BY_HOP, 8 + 8 + 20);
        b.extend_from_slice(&[FRAGMENT, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, 8 bytes
        b.extend_from_slice(&[NEXT_HEADER_TCP, 0, 0, 0, 0, 0, 0, 1]); // atomic fragment
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap(), (6, 56, 20));
    }

    #[test]
    fn non_first_fragment_is_unsupported() {
        let mut b = header(FRAGMENT, 8 + 20);
        b.extend_from_slice(&[NEXT_HEADER_TCP, 0, 0, 0x10, 0, 0, 0, 1]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::Unsupported));
    }

    #[test]
    fn extension_longer_than_the_capture_is_truncated() {
        // Hop-by-hop claiming (255 + 1) * 8 bytes, within the claimed payload, in a 68-byte frame.
        let mut b = header(HOP_BY_HOP, 2048);
        b.extend_from_slice(&[NEXT_HEADER_TCP, 255, 0, 0, 0, 0, 0, 0]);
        b.resize(68, 0);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::Truncated));
    }

    #[test]
    fn extension_past_the_end_is_truncated() {
        let b = header(HOP_BY_HOP, 8);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::Truncated));
        assert_eq!(Packet::new_checked(&b[..39]).unwrap_err(), Error::Truncated);
    }
}
