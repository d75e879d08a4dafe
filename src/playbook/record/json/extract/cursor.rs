//! The cursor's lexical half: it loads the line 64 bytes at a time as [`scan`]'s masks (quotes,
//! escapes, control and high bytes), and reads whitespace, strings, numbers and literals. The
//! structure (objects, arrays, the paths) is [`super`]'s.
use super::{Cursor, Fallback, Step};
use crate::playbook::record::json::scan;

/// A number with at most this many digits before its point is within `f64`'s range (10^300 <
/// 1.8 × 10^308) whatever its fraction.
const MAX_INTEGER_DIGITS: usize = 300;

impl<'de> Cursor<'de> {
    pub(super) fn new(bytes: &'de [u8]) -> Step<Cursor<'de>> {
        let mut cur = Cursor {
            bytes,
            pos: 0,
            win: 0,
            quotes: 0,
            escapes: 0,
            controls: 0,
            carry: false,
            highs: 0,
            high: 0,
        };
        cur.load(0)?;
        Ok(cur)
    }

    /// Classifies the window at `win`. Windows are loaded in order, as an escape can reach into
    /// the next one.
    #[inline]
    pub(super) fn load(&mut self, win: usize) -> Step {
        let len = self.bytes.len();
        let masks = if let Some(chunk) = self.bytes.get(win..win + 64) {
            scan::classify(chunk.try_into().expect("64 bytes"))
        } else if win >= len && win > 0 {
            return Err(Fallback);
        } else if len >= 64 {
            // The last 64 bytes, shifted so that bit 0 is `win` (a string still open at the end
            // then asks for the next window, and there is none).
            let tail = scan::classify(self.bytes[len - 64..].try_into().expect("64 bytes"));
            let shift = win + 64 - len;
            scan::Masks {
                quote: tail.quote >> shift,
                backslash: tail.backslash >> shift,
                control: tail.control >> shift,
                high: tail.high >> shift,
            }
        } else {
            // Short lines: zeros past the end read as control characters.
            let mut chunk = [0u8; 64];
            chunk[..len].copy_from_slice(self.bytes);
            scan::classify(&chunk)
        };
        self.win = win;
        self.controls = masks.control;
        self.high |= self.highs;
        self.highs = masks.high;
        if masks.backslash == 0 && !self.carry {
            self.quotes = masks.quote;
            self.escapes = 0;
            return Ok(());
        }
        self.escapes(masks)
    }

    /// Which backslashes of the window escape the byte after them, and which quotes they escape.
    /// Every escape is checked here, in strings or not: in a valid line all backslashes are in
    /// strings, where escapes count from the string's start as they do here.
    #[cold]
    pub(super) fn escapes(&mut self, masks: scan::Masks) -> Step {
        let mut escaped = u64::from(self.carry);
        let mut pending = masks.backslash & !escaped;
        let mut escapes = 0;
        self.carry = false;
        while pending != 0 {
            let i = pending.trailing_zeros();
            escapes |= 1 << i;
            pending &= pending - 1;
            if i == 63 {
                self.carry = true;
            } else {
                escaped |= 1 << (i + 1);
                pending &= !(1 << (i + 1));
            }
            self.check_escape(self.win + i as usize + 1)?;
        }
        self.quotes = masks.quote & !escaped;
        self.escapes = escapes;
        Ok(())
    }

    /// The byte at `at` follows an escaping backslash. `\u` takes four hex digits, and a
    /// surrogate only as half of a pair (as `serde_json::Value` reads it).
    #[cold]
    pub(super) fn check_escape(&self, at: usize) -> Step {
        match self.bytes.get(at) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(()),
            Some(b'u') => match self.hex4(at + 1).ok_or(Fallback)? {
                0xD800..=0xDBFF => match (self.bytes.get(at + 5..at + 7), self.hex4(at + 7)) {
                    (Some(b"\\u"), Some(0xDC00..=0xDFFF)) => Ok(()),
                    _ => Err(Fallback),
                },
                0xDC00..=0xDFFF => self.after_high_surrogate(at),
                _ => Ok(()),
            },
            _ => Err(Fallback),
        }
    }

    /// The four hex digits at `at` as a UTF-16 unit.
    pub(super) fn hex4(&self, at: usize) -> Option<u16> {
        let hex = self.bytes.get(at..at + 4)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    }

    /// The low surrogate escaped at `at` (its `u`) directly follows an escaped high surrogate:
    /// `\uD8xx` before it, whose backslash escapes (an odd run of backslashes ends there).
    pub(super) fn after_high_surrogate(&self, at: usize) -> Step {
        let Some(start) = at.checked_sub(7) else {
            return Err(Fallback);
        };
        let high =
            self.bytes[start + 1] == b'u' && matches!(self.hex4(start + 2), Some(0xD800..=0xDBFF));
        let run = self.bytes[..=start]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        if high && run % 2 == 1 {
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// The byte at the cursor; 0 at the end (never valid there in JSON).
    #[inline(always)]
    pub(super) fn peek(&self) -> u8 {
        self.bytes.get(self.pos).copied().unwrap_or(0)
    }

    /// Skips whitespace but line breaks (a record is one line) and returns the next byte (0 at
    /// the end).
    #[inline(always)]
    pub(super) fn ws(&mut self) -> u8 {
        let b = self.peek();
        if b > b' ' {
            return b;
        }
        // One space, as most writers put after `:` and `,`.
        if b == b' ' {
            let next = self.bytes.get(self.pos + 1).copied().unwrap_or(0);
            if next > b' ' {
                self.pos += 1;
                return next;
            }
        }
        loop {
            match self.peek() {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b => return b,
            }
        }
    }

    /// After the opening quote of a string: moves past its closing quote and returns whether it
    /// has escapes. Control characters in it are refused.
    #[inline(always)]
    pub(super) fn string(&mut self) -> Step<bool> {
        let mut escaped = false;
        loop {
            let rel = self.pos - self.win;
            if rel >= 64 {
                self.load(self.win + 64)?;
                continue;
            }
            let from = u64::MAX << rel;
            let quotes = self.quotes & from;
            // The bytes from the cursor up to the closing quote (or the window's end).
            let inside = from & (quotes & quotes.wrapping_neg()).wrapping_sub(1);
            if self.controls & inside != 0 {
                return Err(Fallback);
            }
            escaped |= self.escapes & inside != 0;
            if quotes != 0 {
                self.pos = self.win + quotes.trailing_zeros() as usize + 1;
                return Ok(escaped);
            }
            self.pos = self.win + 64;
        }
    }

    /// At a number: moves past it, checking its syntax. Returns the start of its digits when it
    /// is a plain integer (no fraction or exponent). A number that may be out of `f64`'s range
    /// (more than [`MAX_INTEGER_DIGITS`] digits before the point, exponent included) is left
    /// to `serde_json`, which refuses one that is.
    #[inline(always)]
    pub(super) fn number(&mut self) -> Step<Option<usize>> {
        if self.peek() == b'-' {
            self.pos += 1;
        }
        let start = self.pos;
        match self.peek() {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(),
            _ => return Err(Fallback),
        }
        let digits_before_point = self.pos - start;
        if digits_before_point > MAX_INTEGER_DIGITS {
            return Err(Fallback);
        }
        let mut plain = true;
        if self.peek() == b'.' {
            self.pos += 1;
            self.some_digits()?;
            plain = false;
        }
        if matches!(self.peek(), b'e' | b'E') {
            self.pos += 1;
            let negative = match self.peek() {
                b'+' => {
                    self.pos += 1;
                    false
                }
                b'-' => {
                    self.pos += 1;
                    true
                }
                _ => false,
            };
            let digits = self.pos;
            self.some_digits()?;
            let exponent = &self.bytes[digits..self.pos];
            let magnitude = exponent
                .iter()
                .take(4)
                .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
            if exponent.len() > 3
                || (!negative && digits_before_point + magnitude > MAX_INTEGER_DIGITS)
            {
                return Err(Fallback);
            }
            plain = false;
        }
        Ok(plain.then_some(start))
    }

    /// The value of the plain integer whose digits run from `start` to the cursor, if it has at
    /// most 19 digits (which `serde_json` reads exactly as a `u64` or `i64`).
    #[inline]
    pub(super) fn integer(&self, start: usize) -> Option<f64> {
        let digits = &self.bytes[start..self.pos];
        if digits.len() > 19 {
            return None;
        }
        let n = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        // `-0` is -0.0 in serde_json too; other negatives go through i64 with the same rounding.
        let negative = start > 0 && self.bytes[start - 1] == b'-';
        Some(if negative { -(n as f64) } else { n as f64 })
    }

    /// Moves past the ASCII digits at the cursor, eight at a time while eight remain.
    #[inline(always)]
    pub(super) fn digits(&mut self) {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let mut n = 0;
        while let Some(chunk) = rest.get(n..n + 8) {
            match scan::non_digits(chunk.try_into().expect("8 bytes")) {
                0 => n += 8,
                mask => {
                    self.pos += n + mask.trailing_zeros() as usize / 8;
                    return;
                }
            }
        }
        self.pos += n + rest[n..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len() - n);
    }

    pub(super) fn some_digits(&mut self) -> Step {
        if !self.peek().is_ascii_digit() {
            return Err(Fallback);
        }
        self.digits();
        Ok(())
    }

    #[inline]
    pub(super) fn literal(&mut self, word: &[u8]) -> Step {
        if self.bytes.get(self.pos..self.pos + word.len()) != Some(word) {
            return Err(Fallback);
        }
        self.pos += word.len();
        Ok(())
    }
}
