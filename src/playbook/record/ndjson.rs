//! NDJSON batches: whole lines, one record each, read by the [`json`](super::json) extractor.
//!
//! With a [`Prefilter`], a line without the texts the query requires is counted and skipped
//! unparsed. Without one, each record is read straight from the batch: the extractor finds where
//! its line ends, so the line is not searched for its line break first.

use serde_json::Value as Json;

use super::batch::{whole_lines, BatchParser, RecordSink, Splitter};
use super::format::{detect_json_format, FieldPlan, Format};
use super::json::paths::PathTree;
use super::json::{parse_json_bytes, parse_json_record};
use crate::playbook::search::prefilter::Prefilter;
use crate::playbook::search::query::Query;

/// Cuts NDJSON after its last whole line.
#[derive(Debug, Default)]
pub struct NdjsonSplitter;

impl Splitter for NdjsonSplitter {
    type Cut = ();

    fn split(&mut self, data: &[u8], end: bool) -> Option<(usize, ())> {
        whole_lines(data, end).map(|n| (n, ()))
    }
}

/// The format of NDJSON whose first batch is `batch`: from the first of its first ten lines that
/// parses.
pub fn detect_format(batch: &[u8]) -> Format {
    batch
        .split(|b| *b == b'\n')
        .take(10)
        .find_map(|l| serde_json::from_slice::<Json>(l).ok())
        .map_or(Format::Ndjson, |r| detect_json_format(&r))
}

/// Reads NDJSON batches into the fields of one plan.
pub struct NdjsonParser {
    plan: FieldPlan,
    tree: PathTree,
    prefilter: Prefilter,
}

impl NdjsonParser {
    /// Reads the fields of `plan`, skipping lines that cannot match `query`.
    pub fn new(plan: FieldPlan, query: Option<&Query>) -> NdjsonParser {
        NdjsonParser {
            tree: PathTree::new(&plan.paths),
            prefilter: Prefilter::new(query, &plan),
            plan,
        }
    }
}

/// A record whole, for `filtered`.
fn source(line: &[u8]) -> Json {
    serde_json::from_slice(line).unwrap_or(Json::Null)
}

impl BatchParser for NdjsonParser {
    type Cut = ();

    fn parse(&self, batch: &[u8], _: &(), sink: &mut impl RecordSink) -> u64 {
        let mut slots = vec![None; self.plan.paths.len()];
        let mut start = 0;
        let mut line = 0u64;
        while start < batch.len() {
            let this_line = line;
            let rest = &batch[start..];
            line += 1;
            slots.iter_mut().for_each(|s| *s = None);
            if self.prefilter.is_empty() {
                if let Some(end) = parse_json_record(rest, &self.tree, &mut slots) {
                    start += end + 1;
                    let raw = &rest[..end];
                    sink.record(&self.plan, &slots, this_line, || source(raw));
                    continue;
                }
                slots.iter_mut().for_each(|s| *s = None);
            }
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            start += end + 1;
            let raw = &rest[..end];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if !self.prefilter.may_match(raw) {
                sink.prefiltered();
                continue;
            }
            match parse_json_bytes(raw, &self.tree, &mut slots) {
                Ok(()) => sink.record(&self.plan, &slots, this_line, || source(raw)),
                Err(e) => sink.malformed(this_line, || e.to_string()),
            }
        }
        // The last line of the input may lack its line break.
        line - u64::from(batch.last().is_some_and(|b| *b != b'\n'))
    }
}
