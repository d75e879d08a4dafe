//! TCP headers (RFC 9293): the view, flags, and sequence-number arithmetic.
use super::bytes::{be16, be32};
use super::{checksum, Error, Result};

pub const HEADER_LEN: usize = 20;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// The TCP control bits of byte 13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIN: Flags = Flags(0x01);
    pub const SYN: Flags = Flags(0x02);
    pub const RST: Flags = Flags(0x04);
    pub const PSH: Flags = Flags(0x08);
    pub const ACK: Flags = Flags(0x10);

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn fin(self) -> bool {
        self.contains(Flags::FIN)
    }

    pub fn syn(self) -> bool {
        self.contains(Flags::SYN)
    }

    pub fn rst(self) -> bool {
        self.contains(Flags::RST)
    }

    pub fn ack(self) -> bool {
        self.contains(Flags::ACK)
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// Sequence numbers live modulo 2^32 (RFC 9293 section 3.4).
pub fn seq_add(seq: u32, n: u32) -> u32 {
    seq.wrapping_add(n)
}

/// `a` comes after `b` in sequence space (within half the space).
pub fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

view!(
    /// A view of a TCP header.
    Packet
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks that the fixed header is there and the data offset is sane. Options may be cut
    /// short by the snap length: we never read them.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet::with_header(buffer, HEADER_LEN)?;
        if p.header_len() < HEADER_LEN {
            return Err(Error::Malformed);
        }
        Ok(p)
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn src_port(&self) -> u16 {
        be16(self.data(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.data(), field::DST_PORT)
    }

    pub fn seq(&self) -> u32 {
        be32(self.data(), field::SEQ)
    }

    pub fn ack(&self) -> u32 {
        be32(self.data(), field::ACK)
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::DATA_OFF] >> 4) * 4
    }

    pub fn flags(&self) -> Flags {
        Flags(self.data()[field::FLAGS])
    }

    pub fn window(&self) -> u16 {
        be16(self.data(), field::WINDOW)
    }

    pub fn checksum(&self) -> u16 {
        be16(self.data(), field::CHECKSUM)
    }

    /// Verifies the checksum of a whole segment given the pseudo-header sum.
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        checksum::finish(checksum::combine(pseudo, checksum::sum(self.data()))) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes a 20-byte header with no options and no payload, the checksum included.
    pub fn emit_header(&mut self, h: &HeaderRepr, pseudo: u32) {
        let b = &mut self.buffer.as_mut()[..HEADER_LEN];
        b[field::SRC_PORT].copy_from_slice(&h.src_port.to_be_bytes());
        b[field::DST_PORT].copy_from_slice(&h.dst_port.to_be_bytes());
        b[field::SEQ].copy_from_slice(&h.seq.to_be_bytes());
        b[field::ACK].copy_from_slice(&h.ack.to_be_bytes());
        b[field::DATA_OFF] = (HEADER_LEN as u8 / 4) << 4;
        b[field::FLAGS] = h.flags.0;
        b[field::WINDOW].copy_from_slice(&h.window.to_be_bytes());
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        b[field::URGENT].copy_from_slice(&[0, 0]);
        let sum = checksum::finish(checksum::combine(pseudo, checksum::sum(b)));
        b[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    }
}

/// The fields of an option-less header we emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    pub window: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The TCP header of a Linux SYN 10.77.0.1:40000 -> 10.77.0.2:5001, with
    // options (MSS, SACK permitted, timestamps, window scale).
    const SYN: [u8; 40] = [
        0x9c, 0x40, 0x13, 0x89, 0x1b, 0x5d, 0x3a, 0x8c, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x9d, 0x1c,
        0x57, 0x45, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    #[test]
    fn reads_fields() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 5001));
        assert_eq!(p.seq(), 0x1b5d3a8c);
        assert_eq!(p.header_len(), 40);
        assert!(p.flags().syn() && !p.flags().ack() && !p.flags().rst());
        assert_eq!(p.window(), 64240);
    }

    #[test]
    fn rejects_short_and_bad_offsets() {
        assert_eq!(
            Packet::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut b = SYN;
        b[12] = 0x40;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn sequence_arithmetic_wraps() {
        assert_eq!(seq_add(u32::MAX, 1), 0);
        assert_eq!(seq_add(u32::MAX - 1, 10), 8);
        assert!(seq_after(3, u32::MAX - 2));
        assert!(!seq_after(u32::MAX - 2, 3));
        assert!(!seq_after(7, 7));
    }
}
