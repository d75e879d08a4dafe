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
use crate::playbook::record::value::Val;

/// Deeper nesting falls back to `serde_json`, which counts its own limit of 128 on the values it
/// visits (but not on those it skips): below this depth both agree.
pub(super) const MAX_DEPTH: usize = 100;

/// The fast path cannot vouch for the line; parse it with `serde_json`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Fallback;

type Step<T = ()> = Result<T, Fallback>;

mod cursor;

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
