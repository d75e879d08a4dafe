//! Records in batches, the one shape every log format takes: the reading thread cuts the bytes
//! into batches of whole records ([`Splitter`]), a worker reads each batch ([`BatchParser`]) and
//! hands every record, skipped line and malformed record to a [`RecordSink`].
//!
//! Positions are relative to the batch, so that workers need not know where it sits in the file:
//! a record has an ordinal in its batch, a malformed record the number of line breaks before it
//! in the batch, and a batch the number of line breaks it holds. The sink's owner turns these
//! into line numbers.

use serde_json::Value as Json;

use super::format::FieldPlan;
use super::value::Val;

/// Where a worker puts what it reads from a batch.
pub trait RecordSink {
    /// One record: field `id` is `plan.get(id, slots)`. `ordinal` orders it in its batch;
    /// `source` prints it whole, and is called only if it is kept.
    fn record<'a>(
        &mut self,
        plan: &FieldPlan,
        slots: &[Option<Val<'a>>],
        ordinal: u64,
        source: impl FnOnce() -> Json,
    );

    /// A line skipped unparsed, because it lacks a text the query requires.
    fn prefiltered(&mut self);

    /// A record that could not be read, `line` line breaks after the start of its batch; `why`
    /// is asked only for the first few.
    fn malformed(&mut self, line: u64, why: impl FnOnce() -> String);
}

/// Cuts a log into batches on the reading thread, in order.
pub trait Splitter {
    /// What a worker needs to know about a batch besides its bytes.
    type Cut: Send;

    /// How much of `data` (the bytes not yet in a batch) holds only whole records, and the cut.
    /// At the `end` of the input everything is taken. `None`, while more input may follow:
    /// not one record is whole yet; read more and ask again (nothing has changed).
    fn split(&mut self, data: &[u8], end: bool) -> Option<(usize, Self::Cut)>;

    /// Whether a record never spans a line break, so that a record too long to read can be
    /// skipped to the next line break and read on from there.
    const LINES: bool = true;
}

/// Reads one batch on a worker thread.
pub trait BatchParser: Sync {
    type Cut: Send;

    /// Passes every record of `batch` to `sink`; returns the number of line breaks in it.
    fn parse(&self, batch: &[u8], cut: &Self::Cut, sink: &mut impl RecordSink) -> u64;
}

/// The length of the part of `data` that ends with a whole line (all of it at the `end`).
pub fn whole_lines(data: &[u8], end: bool) -> Option<usize> {
    if end {
        return Some(data.len());
    }
    memchr::memrchr(b'\n', data).map(|i| i + 1)
}

/// The lines of a batch with their number in it (from 0), without their line break. A final
/// line without a line break is a line too.
pub fn lines(batch: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let body = batch.strip_suffix(b"\n").unwrap_or(batch);
    (!batch.is_empty())
        .then(|| body.split(|b| *b == b'\n'))
        .into_iter()
        .flatten()
        .zip(0..)
        .map(|(line, n)| (n, line))
}

/// The number of line breaks in `bytes`.
pub fn line_breaks(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_end_at_the_last_line_break() {
        assert_eq!(whole_lines(b"a\nb\nc", false), Some(4));
        assert_eq!(whole_lines(b"abc", false), None);
        assert_eq!(whole_lines(b"abc", true), Some(3));
        assert_eq!(whole_lines(b"", true), Some(0));
    }

    #[test]
    fn lines_are_numbered_and_a_last_line_needs_no_break() {
        let got: Vec<(u64, &[u8])> = lines(b"a\n\nb\nc").collect();
        assert_eq!(got, [(0, &b"a"[..]), (1, b""), (2, b"b"), (3, b"c")]);
        assert_eq!(lines(b"a\n").count(), 1);
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"\n").count(), 1);
        assert_eq!(line_breaks(b"a\n\nb\nc"), 3);
    }
}
