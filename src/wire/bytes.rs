//! Big-endian numbers at a field's place in a buffer: the one way every view reads them.
use core::ops::Range;

/// The `u16` in `b[at]` (a two-byte field's range); panics if `b` is shorter, which the views'
/// `new_checked` rules out.
pub(crate) fn be16(b: &[u8], at: Range<usize>) -> u16 {
    u16::from_be_bytes([b[at.start], b[at.start + 1]])
}

/// The `u32` in `b[at]` (a four-byte field's range).
pub(crate) fn be32(b: &[u8], at: Range<usize>) -> u32 {
    let s = at.start;
    u32::from_be_bytes([b[s], b[s + 1], b[s + 2], b[s + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_network_order() {
        let b = [0x12, 0x34, 0x56, 0x78, 0x9a];
        assert_eq!(be16(&b, 1..3), 0x3456);
        assert_eq!(be32(&b, 1..5), 0x3456_789a);
    }
}
