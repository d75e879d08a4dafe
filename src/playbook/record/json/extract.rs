//! The extractor behind [`super::parse_json_bytes`] and [`super::parse_json_record`]: one pass over
//! the bytes of an NDJSON record that compares each key of the objects it walks with the
//! [`PathTree`], reads the planned values and skips the rest without allocating. Strings are found
//! through [`scan`]'s masks of 64 bytes at a time, so skipping one costs the same whatever its
//! length.
//!
//! It is at least as strict as `serde_json`: whatever it accepts, `serde_json` accepts with the same
//! slots. Anything it is not sure of (a malformed line, a top level that is not an object, an
//! escaped key, nesting deeper than [`MAX_DEPTH`], a lone escaped surrogate, a number that may
//! be out of `f64`'s range, a number that is not a plain integer where the
//! seeded visitor would parse it) is a [`Fallback`]: the caller then parses the line with
//! `serde_json`, whose result (or error message) is authoritative. Values captured whole, escaped
//! strings and non-integer numbers are read by `serde_json` from their own slice of the line, with
//! the same visitor as the full parse.
//!
//! Read from a block of lines, the last window of a record may hold the start of the next line;
//! a bad escape there only sends the record to the fallback, whose answer is the same.

use std::borrow::Cow;

use serde::de::DeserializeSeed;

use super::fallback::ValSeed;
use super::paths::{lookup_json, PathTree};
use super::scan;
use crate::playbook::record::value::Val;

/// Deeper nesting falls back to `serde_json`, which counts its own limit of 128 on the values it
/// visits (but not on those it skips): below this depth both agree.
pub(super) const MAX_DEPTH: usize = 100;

/// A number with at most this many digits before its point is within `f64`'s range (10^300 <
/// 1.8 × 10^308) whatever its fraction.
const MAX_INTEGER_DIGITS: usize = 300;

/// The fast path cannot vouch for the line; parse it with `serde_json`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Fallback;

type Step<T = ()> = Result<T, Fallback>;

/// Fills `slots` (which start empty) from the record at the start of `text`, which must end its
/// line: after the object only spaces, tabs and carriage returns may come before the line break
/// or the end of `text`. Returns the length of the line (up to the line break) and whether the
/// line is ASCII: the strings it keeps are checked to be UTF-8, the rest only for being ASCII.
/// On [`Fallback`] some slots may be filled.
pub(super) fn extract<'de>(
    text: &'de [u8],
    tree: &PathTree,
    slots: &mut [Option<Val<'de>>],
) -> Result<(usize, bool), Fallback> {
    let mut cur = Cursor::new(text)?;
    if cur.ws() != b'{' {
        return Err(Fallback);
    }
    cur.object(tree, slots, 1)?;
    let end = match cur.ws() {
        0 if cur.pos == text.len() => cur.pos,
        b'\n' => cur.pos,
        _ => return Err(Fallback),
    };
    // Outside strings a valid line is ASCII, and the windows of every string were loaded; bytes
    // of the current window past the line are another line's.
    let rel = end - cur.win;
    let last = match rel {
        0..64 => cur.highs & ((1 << rel) - 1),
        _ => cur.highs,
    };
    Ok((end, cur.high | last == 0))
}

struct Cursor<'de> {
    bytes: &'de [u8],
    pos: usize,
    /// Start of the 64-byte window the masks below describe (a multiple of 64).
    win: usize,
    /// Quotes in the window that open or close a string (not escaped).
    quotes: u64,
    /// Backslashes in the window that escape the byte after them.
    escapes: u64,
    /// Bytes below 0x20 in the window.
    controls: u64,
    /// The first byte of the next window is escaped.
    carry: bool,
    /// Bytes of 0x80 and above in the window.
    highs: u64,
    /// Bytes of 0x80 and above in the windows before the current one.
    high: u64,
}

impl<'de> Cursor<'de> {
    fn new(bytes: &'de [u8]) -> Step<Cursor<'de>> {
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
    fn load(&mut self, win: usize) -> Step {
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
    fn escapes(&mut self, masks: scan::Masks) -> Step {
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
    fn check_escape(&self, at: usize) -> Step {
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
    fn hex4(&self, at: usize) -> Option<u16> {
        let hex = self.bytes.get(at..at + 4)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    }

    /// The low surrogate escaped at `at` (its `u`) directly follows an escaped high surrogate:
    /// `\uD8xx` before it, whose backslash escapes (an odd run of backslashes ends there).
    fn after_high_surrogate(&self, at: usize) -> Step {
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
    fn peek(&self) -> u8 {
        self.bytes.get(self.pos).copied().unwrap_or(0)
    }

    /// Skips whitespace but line breaks (a record is one line) and returns the next byte (0 at
    /// the end).
    #[inline(always)]
    fn ws(&mut self) -> u8 {
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
    fn string(&mut self) -> Step<bool> {
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
    fn number(&mut self) -> Step<Option<usize>> {
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
    fn integer(&self, start: usize) -> Option<f64> {
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
    fn digits(&mut self) {
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

    fn some_digits(&mut self) -> Step {
        if !self.peek().is_ascii_digit() {
            return Err(Fallback);
        }
        self.digits();
        Ok(())
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Step {
        if self.bytes.get(self.pos..self.pos + word.len()) != Some(word) {
            return Err(Fallback);
        }
        self.pos += word.len();
        Ok(())
    }

    /// Skips the value at the cursor, checking its syntax. Strings and numbers, the usual
    /// values, are handled inline.
    #[inline(always)]
    fn skip(&mut self, depth: usize, first: u8) -> Step {
        match first {
            b'"' => {
                self.pos += 1;
                self.string()?;
            }
            b'-' | b'0'..=b'9' => {
                self.number()?;
            }
            _ => self.skip_other(depth, first)?,
        }
        Ok(())
    }

    fn skip_other(&mut self, depth: usize, first: u8) -> Step {
        match first {
            b'{' => self.skip_object(depth + 1),
            b'[' => self.skip_array(depth + 1),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => Err(Fallback),
        }
    }

    /// Moves past the opening bracket of a container at `depth`, and past `close` too if the
    /// container is empty: whether it has members.
    #[inline(always)]
    fn open(&mut self, depth: usize, close: u8) -> Step<bool> {
        if depth > MAX_DEPTH {
            return Err(Fallback);
        }
        self.pos += 1;
        if self.ws() == close {
            self.pos += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// Moves past the opening quote of an object member's key.
    #[inline(always)]
    fn key_quote(&mut self) -> Step {
        if self.ws() != b'"' {
            return Err(Fallback);
        }
        self.pos += 1;
        Ok(())
    }

    fn skip_object(&mut self, depth: usize) -> Step {
        if !self.open(depth, b'}')? {
            return Ok(());
        }
        loop {
            self.key_quote()?;
            self.string()?;
            let first = self.colon()?;
            self.skip(depth, first)?;
            if self.after_member(b'}')? {
                return Ok(());
            }
        }
    }

    fn skip_array(&mut self, depth: usize) -> Step {
        if !self.open(depth, b']')? {
            return Ok(());
        }
        loop {
            let first = self.ws();
            self.skip(depth, first)?;
            if self.after_member(b']')? {
                return Ok(());
            }
        }
    }

    /// After a key: the colon and the whitespace up to the value, whose first byte it returns.
    #[inline(always)]
    fn colon(&mut self) -> Step<u8> {
        if self.ws() != b':' {
            return Err(Fallback);
        }
        self.pos += 1;
        Ok(self.ws())
    }

    /// After a member: a comma (false: another follows) or the closing `close` (true).
    #[inline(always)]
    fn after_member(&mut self, close: u8) -> Step<bool> {
        match self.ws() {
            b',' => {
                self.pos += 1;
                Ok(false)
            }
            b if b == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(Fallback),
        }
    }

    /// Walks an object whose keys are looked up in `node` (the seeded visitor's `visit_map`).
    fn object(&mut self, node: &PathTree, slots: &mut [Option<Val<'de>>], depth: usize) -> Step {
        if !self.open(depth, b'}')? {
            return Ok(());
        }
        loop {
            self.key_quote()?;
            let start = self.pos;
            // Keys are decoded by the visitor; an escaped one is left to serde_json.
            if self.string()? {
                return Err(Fallback);
            }
            let key = &self.bytes[start..self.pos - 1];
            let first = self.colon()?;
            match node.find_bytes(key) {
                None => self.skip(depth, first)?,
                Some(child) => match child.slot {
                    Some(slot) => {
                        if let Some(value) = self.value(depth, first, &mut slots[slot])? {
                            if let (Val::Json(json), false) = (&value, child.inner.is_empty()) {
                                for (path, slot) in &child.inner {
                                    slots[*slot] = lookup_json(json, path).map(Val::from_json);
                                }
                            }
                            slots[slot] = Some(value);
                        }
                    }
                    None => self.descend(child, slots, depth, first)?,
                },
            }
            if self.after_member(b'}')? {
                return Ok(());
            }
        }
    }

    /// The value of a key with planned paths below it: an object is walked; anything else yields
    /// nothing, but is read the way the seeded visitor reads it (strings and numbers in full).
    fn descend(
        &mut self,
        node: &PathTree,
        slots: &mut [Option<Val<'de>>],
        depth: usize,
        first: u8,
    ) -> Step {
        match first {
            b'{' => self.object(node, slots, depth + 1),
            b'"' => {
                self.pos += 1;
                match self.string()? {
                    true => Err(Fallback),
                    false => Ok(()),
                }
            }
            b'-' | b'0'..=b'9' => match self.number()? {
                Some(start) if self.integer(start).is_some() => Ok(()),
                _ => Err(Fallback),
            },
            _ => self.skip(depth, first),
        }
    }

    /// Reads the value at the cursor as a [`Val`] (the seeded visitor's `ValSeed`). Scalars go
    /// straight into `slot`; a value read by `serde_json` is returned instead (for the caller to
    /// look inside it before it is stored).
    #[inline(always)]
    fn value(
        &mut self,
        depth: usize,
        first: u8,
        slot: &mut Option<Val<'de>>,
    ) -> Step<Option<Val<'de>>> {
        let start = self.pos;
        match first {
            b'"' => {
                self.pos += 1;
                if !self.string()? {
                    let text = self.text(start + 1, self.pos - 1)?;
                    *slot = Some(Val::Str(Cow::Borrowed(text)));
                    return Ok(None);
                }
            }
            b'-' | b'0'..=b'9' => {
                if let Some(n) = self.number()?.and_then(|digits| self.integer(digits)) {
                    *slot = Some(Val::Num(n));
                    return Ok(None);
                }
            }
            b't' => {
                self.literal(b"true")?;
                *slot = Some(Val::Bool(true));
                return Ok(None);
            }
            b'f' => {
                self.literal(b"false")?;
                *slot = Some(Val::Bool(false));
                return Ok(None);
            }
            b'n' => {
                self.literal(b"null")?;
                *slot = Some(Val::Null);
                return Ok(None);
            }
            _ => self.skip_other(depth, first)?,
        }
        self.by_serde(start).map(Some)
    }

    /// The bytes from `start` to `end` (within or just after the current window) as text.
    #[inline(always)]
    fn text(&self, start: usize, end: usize) -> Step<&'de str> {
        let bytes = &self.bytes[start..end];
        let (from, to) = (start.wrapping_sub(self.win), end.wrapping_sub(self.win));
        if from <= to && to <= 64 {
            let span = 1u64
                .checked_shl((to - from) as u32)
                .map_or(u64::MAX, |b| b - 1);
            if self.highs.checked_shr(from as u32).unwrap_or(0) & span == 0 {
                debug_assert!(bytes.is_ascii());
                // SAFETY: the window's mask has no byte of 0x80 or above in `bytes` (the mask is
                // computed from these very bytes), so they are ASCII, which is valid UTF-8.
                return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
            }
        }
        std::str::from_utf8(bytes).map_err(|_| Fallback)
    }

    /// Reads the value from `start` to the cursor with `serde_json`.
    #[cold]
    fn by_serde(&self, start: usize) -> Step<Val<'de>> {
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).map_err(|_| Fallback)?;
        let mut de = serde_json::Deserializer::from_str(text);
        let value = ValSeed.deserialize(&mut de).map_err(|_| Fallback)?;
        de.end().map_err(|_| Fallback)?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests;
