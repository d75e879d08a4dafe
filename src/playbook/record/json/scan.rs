//! Classifies 64 bytes of a line at once for the fast path: where its quotes, backslashes,
//! control characters and non-ASCII bytes are, one bit per byte (bit `i` is byte `i`). SSE2
//! (part of every x86_64) does 16 bytes per step; elsewhere a plain loop gives the same masks.
//! (AVX2 was tried: no faster here, the masks are a small part of the work.)

/// One bit per byte of a 64-byte window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Masks {
    pub quote: u64,
    pub backslash: u64,
    /// Bytes below 0x20, which JSON strings may not hold raw.
    pub control: u64,
    /// Bytes of 0x80 and above (parts of multi-byte UTF-8 sequences).
    pub high: u64,
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn classify(chunk: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut masks = Masks::default();
    for (i, part) in chunk.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of every x86_64 CPU; the unaligned load reads the 16 bytes of
        // `part` and nothing else.
        let [quote, backslash, control, high] = unsafe {
            let v = _mm_loadu_si128(part.as_ptr().cast());
            [
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
                // v <= 0x1f (unsigned) exactly when min(v, 0x1f) == v.
                _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v),
                // The movemask of a byte is its top bit.
                v,
            ]
            .map(|m| u64::from(_mm_movemask_epi8(m) as u16) << (16 * i))
        };
        masks.quote |= quote;
        masks.backslash |= backslash;
        masks.control |= control;
        masks.high |= high;
    }
    masks
}

/// Eight bytes at once: a mask whose lowest set bit is in the byte of the first that is not an
/// ASCII digit (bit 8i + k for byte i), 0 if all eight are digits. Bits for bytes after the
/// first non-digit may be wrong (a carry out of a byte of 0xFA and above reaches the next byte);
/// only the lowest set bit is meant.
#[inline(always)]
pub(super) fn non_digits(bytes: &[u8; 8]) -> u64 {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    let x = u64::from_le_bytes(*bytes);
    // A digit is 0x30..=0x39: its high nibble is 3, and stays 3 after adding 6.
    ((x & HIGH) ^ THREES) | ((x.wrapping_add(SIXES) & HIGH) ^ THREES)
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn classify(chunk: &[u8; 64]) -> Masks {
    classify_bytes(chunk)
}

/// The masks byte by byte: the portable version and the reference for the SIMD one.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub(super) fn classify_bytes(chunk: &[u8; 64]) -> Masks {
    let mut masks = Masks::default();
    for (i, &b) in chunk.iter().enumerate() {
        masks.quote |= u64::from(b == b'"') << i;
        masks.backslash |= u64::from(b == b'\\') << i;
        masks.control |= u64::from(b < 0x20) << i;
        masks.high |= u64::from(b >= 0x80) << i;
    }
    masks
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn eight_byte_digit_runs_end_at_the_first_non_digit(
            bytes in prop::collection::vec(
                prop_oneof![4 => b'0'..=b'9', 1 => Just(b'/'), 1 => Just(b':'), 1 => Just(0xfa), 1 => Just(0xff), 1 => any::<u8>()],
                8,
            ),
        ) {
            let chunk: [u8; 8] = bytes.clone().try_into().unwrap();
            let first = bytes.iter().position(|b| !b.is_ascii_digit());
            let mask = non_digits(&chunk);
            prop_assert_eq!((mask != 0).then(|| mask.trailing_zeros() as usize / 8), first);
        }

        #[test]
        fn simd_and_bytewise_masks_agree(
            bytes in prop::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), Just(0x1f), Just(0x20), Just(0x80), Just(0xff), any::<u8>()],
                64,
            ),
        ) {
            let chunk: [u8; 64] = bytes.try_into().unwrap();
            prop_assert_eq!(classify(&chunk), classify_bytes(&chunk));
        }
    }
}
