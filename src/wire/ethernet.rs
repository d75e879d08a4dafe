//! Ethernet II frames and their 802.1Q / 802.1ad (QinQ) tags.
use super::bytes::be16;
use super::{Error, Result};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// C-tag (802.1Q), S-tag (802.1ad) and the pre-standard QinQ S-tag.
pub const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// Tags we look through before giving up on a frame.
pub const MAX_TAGS: usize = 2;

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const HEADER_LEN: usize = 14;
    pub const TAG_LEN: usize = 4;
}

pub const HEADER_LEN: usize = field::HEADER_LEN;

view!(
    /// A view of an Ethernet II frame.
    Frame
);

impl<T: AsRef<[u8]>> Frame<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        Frame::with_header(buffer, field::HEADER_LEN)
    }

    pub fn dst(&self) -> [u8; 6] {
        self.buffer.as_ref()[field::DST]
            .try_into()
            .expect("6 bytes")
    }

    pub fn src(&self) -> [u8; 6] {
        self.buffer.as_ref()[field::SRC]
            .try_into()
            .expect("6 bytes")
    }

    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Walks the VLAN tags: the VLAN ids outermost first (0 where absent), the inner ethertype
    /// and the offset of the payload.
    pub fn untag(&self) -> Result<([u16; MAX_TAGS], u16, usize)> {
        let data = self.buffer.as_ref();
        let mut ethertype = self.ethertype();
        let mut offset = field::HEADER_LEN;
        let mut tags = [0u16; MAX_TAGS];
        let mut n = 0;
        while ETHERTYPE_VLAN.contains(&ethertype) {
            if n == MAX_TAGS {
                return Err(Error::Unsupported);
            }
            let tag = data
                .get(offset..offset + field::TAG_LEN)
                .ok_or(Error::Truncated)?;
            tags[n] = be16(tag, 0..2) & 0x0fff;
            ethertype = be16(tag, 2..4);
            offset += field::TAG_LEN;
            n += 1;
        }
        Ok((tags, ethertype, offset))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac);
    }

    pub fn set_src(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac);
    }

    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A QinQ frame head: S-tag 100 (0x88a8), C-tag 200 (0x8100), then IPv4.
    const QINQ: [u8; 22] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xa8, 0x00, 0x64, 0x81,
        0x00, 0x00, 0xc8, 0x08, 0x00,
    ];

    #[test]
    fn walks_two_tags() {
        let f = Frame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(f.untag().unwrap(), ([100, 200], ETHERTYPE_IPV4, 22));
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn truncated_tag_is_an_error() {
        let f = Frame::new_checked(&QINQ[..16]).unwrap();
        assert_eq!(f.untag(), Err(Error::Truncated));
        assert!(Frame::new_checked(&QINQ[..13]).is_err());
    }

    #[test]
    fn three_tags_are_unsupported() {
        let mut b = QINQ.to_vec();
        b.splice(20..20, [0x81, 0x00, 0x00, 0x01]);
        assert_eq!(
            Frame::new_checked(&b[..]).unwrap().untag(),
            Err(Error::Unsupported)
        );
    }
}
