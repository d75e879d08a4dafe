//! IPv4 headers (RFC 791).
use super::bytes::be16;
use super::{checksum, Error, Result};
use std::net::Ipv4Addr;

pub const PROTOCOL_TCP: u8 = 6;
pub const HEADER_LEN: usize = 20;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

view!(
    /// A view of an IPv4 packet.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the version and that the header fits. The payload may be cut short by the
    /// capture's snap length; [`Packet::total_len`] still tells the length on the wire.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet::with_header(buffer, HEADER_LEN)?;
        let data = p.buffer.as_ref();
        if p.version() != 4 {
            return Err(Error::Malformed);
        }
        let hl = p.header_len();
        if hl < HEADER_LEN || usize::from(p.total_len()) < hl {
            return Err(Error::Malformed);
        }
        if data.len() < hl {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.data()[field::VER_IHL] >> 4
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::VER_IHL] & 0x0f) * 4
    }

    pub fn total_len(&self) -> u16 {
        be16(self.data(), field::LENGTH)
    }

    /// True for every fragment but a whole packet (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        be16(self.data(), field::FLG_OFF) & 0x3fff != 0
    }

    pub fn ttl(&self) -> u8 {
        self.data()[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.data()[field::PROTOCOL]
    }

    pub fn src(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.data()[field::SRC].try_into().expect("4 bytes");
        Ipv4Addr::from(b)
    }

    pub fn dst(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.data()[field::DST].try_into().expect("4 bytes");
        Ipv4Addr::from(b)
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::finish(checksum::sum(&self.data()[..self.header_len()])) == 0
    }

    /// The bytes after the header that the buffer holds (possibly fewer than on the wire).
    pub fn payload(&self) -> &[u8] {
        let end = usize::from(self.total_len()).min(self.data().len());
        &self.data()[self.header_len()..end.max(self.header_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes a 20-byte header without options, the checksum included.
    pub fn emit_header(&mut self, src: Ipv4Addr, dst: Ipv4Addr, payload_len: u16) {
        let b = &mut self.buffer.as_mut()[..HEADER_LEN];
        b[field::VER_IHL] = 0x45;
        b[field::TOS] = 0;
        b[field::LENGTH].copy_from_slice(&(HEADER_LEN as u16 + payload_len).to_be_bytes());
        b[field::IDENT].copy_from_slice(&[0, 0]);
        // Don't Fragment: a RST is never fragmented.
        b[field::FLG_OFF].copy_from_slice(&[0x40, 0]);
        b[field::TTL] = 64;
        b[field::PROTOCOL] = PROTOCOL_TCP;
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        b[field::SRC].copy_from_slice(&src.octets());
        b[field::DST].copy_from_slice(&dst.octets());
        let sum = checksum::finish(checksum::sum(b));
        b[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The IPv4 header of a SYN 10.77.0.1 -> 10.77.0.2 as Linux sends it (checksum computed
    // independently with a reference RFC 1071 sum).
    const SYN_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x3c, 0x5e, 0x4b, 0x40, 0x00, 0x40, 0x06, 0xc7, 0xd4, 0x0a, 0x4d, 0x00,
        0x01, 0x0a, 0x4d, 0x00, 0x02,
    ];

    #[test]
    fn reads_a_real_header() {
        let p = Packet::new_checked(&SYN_HEADER[..]).unwrap();
        assert_eq!(p.src(), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 77, 0, 2));
        assert_eq!((p.total_len(), p.protocol(), p.ttl()), (60, 6, 64));
        assert!(!p.is_fragment());
        assert!(p.verify_checksum());
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(
            Packet::new_checked(&SYN_HEADER[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut b = SYN_HEADER;
        b[0] = 0x44; // IHL 4 words
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        let mut b = SYN_HEADER;
        b[0] = 0x65;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        let mut b = SYN_HEADER;
        b[3] = 10; // total length shorter than the header
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn emitted_header_has_a_valid_checksum() {
        let mut b = [0u8; 20];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.emit_header(Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 2), 20);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.total_len(), 40);
    }
}
