//! The one record pipeline every log format goes through: the reading thread fills blocks from
//! the file and a [`Splitter`] cuts them into batches of whole records; a pool of workers parses
//! the batches with a [`BatchParser`] into one [`Evaluator`] each; at the end the evaluators are
//! merged, line numbers are counted from the batches' line breaks, and the first malformed
//! records are named by file and line.
//!
//! Memory stays bounded by the blocks in flight (`2 × threads`, of [`BLOCK`] bytes unless a
//! record is longer, up to [`LONGEST_RECORD`]) and by the number of groups. A longer line is
//! skipped (it reads as a blank line) and reported as a malformed record.

use std::io::{BufRead, ErrorKind};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;

use crate::playbook::record::batch::{BatchParser, RecordSink, Splitter};
use crate::playbook::record::format::FieldPlan;
use crate::playbook::record::value::Val;
use crate::playbook::search::evaluator::{Evaluator, ReadStats};
use crate::playbook::search::SearchSpec;

/// The size of a block read at once.
pub const BLOCK: usize = 1 << 20;
/// The longest record read: a block grows to hold one record up to this size.
pub const LONGEST_RECORD: usize = 16 << 20;

/// A block's memory: `bytes[..len]` holds the data, the rest is filled but unused, so that the
/// buffer can be read into again as it is (a fresh 1 MiB allocation costs page faults and zeroing
/// in the kernel; a cleared `Vec` would be zeroed again before a safe read).
struct Buf {
    bytes: Vec<u8>,
    len: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            bytes: vec![0; BLOCK],
            len: 0,
        }
    }

    fn data(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The reading side: a file and the bytes read from it but not yet in a batch.
struct Blocks<'r> {
    reader: &'r mut dyn BufRead,
    carry: Buf,
    end: bool,
    /// The last batch returned starts with a blank line that stands for a skipped, too long one.
    skipped_long_line: bool,
}

impl Blocks<'_> {
    /// The next batch: whole records only, in `spare`'s or the carry's memory, with its cut.
    fn next<S: Splitter>(
        &mut self,
        splitter: &mut S,
        spare: Buf,
    ) -> std::io::Result<Option<(Buf, S::Cut)>> {
        let mut block = std::mem::replace(&mut self.carry, spare);
        let mut want = BLOCK.max(block.len);
        self.skipped_long_line = false;
        loop {
            self.fill(&mut block, want)?;
            if block.len == 0 && self.end {
                return Ok(None);
            }
            if let Some((n, cut)) = splitter.split(block.data(), self.end) {
                let rest = n..block.len;
                self.carry.len = rest.len();
                if self.carry.bytes.len() < rest.len() {
                    self.carry.bytes.resize(rest.len(), 0);
                }
                self.carry.bytes[..rest.len()].copy_from_slice(&block.bytes[rest]);
                block.len = n;
                return Ok(Some((block, cut)));
            }
            // Not one whole record yet: read on, twice as far, up to the longest record.
            want = block.bytes.len() * 2;
            if want > LONGEST_RECORD {
                if !S::LINES {
                    return Err(std::io::Error::new(
                        ErrorKind::InvalidData,
                        format!("a record is longer than {} MiB, the most one may hold; write the log as NDJSON (one record a line) instead", LONGEST_RECORD >> 20),
                    ));
                }
                self.skip_line(&mut block)?;
                self.skipped_long_line = true;
                want = BLOCK.max(block.len);
                continue;
            }
            block.bytes.resize(want, 0);
        }
    }

    /// Drops the line `block` starts with, reading through its line break in `block`'s memory,
    /// and leaves a blank line in its place (so lines keep their numbers) and what followed.
    fn skip_line(&mut self, block: &mut Buf) -> std::io::Result<()> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', block.data()) {
                block.bytes.copy_within(i..block.len, 0);
                block.len -= i;
                return Ok(());
            }
            if self.end {
                block.len = 0;
                return Ok(());
            }
            block.len = 0;
            self.fill(block, BLOCK)?;
        }
    }

    /// Reads until `block` holds `want` bytes or the input ends.
    fn fill(&mut self, block: &mut Buf, want: usize) -> std::io::Result<()> {
        while block.len < want && !self.end {
            // Reads as large as this bypass the reader's own buffer (a copy less).
            match self.reader.read(&mut block.bytes[block.len..want]) {
                Ok(0) => self.end = true,
                Ok(n) => block.len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// What a worker saw besides the records it passed on: the line breaks of each batch it read,
/// and where (batch, line in the batch) and why records were malformed, for the first few.
#[derive(Default)]
struct Tally {
    breaks: Vec<(u64, u64)>,
    malformed: Vec<(u64, u64, String)>,
}

/// A worker's [`RecordSink`] for one batch: the one place records reach an evaluator.
struct Sink<'w, 'p> {
    ev: &'w mut Evaluator<'p>,
    malformed: &'w mut Vec<(u64, u64, String)>,
    file: u32,
    batch: u64,
}

impl RecordSink for Sink<'_, '_> {
    #[inline]
    fn record<'a>(
        &mut self,
        plan: &FieldPlan,
        slots: &[Option<Val<'a>>],
        ordinal: u64,
        source: impl FnOnce() -> Json,
    ) {
        let position = (self.file, self.batch << 32 | ordinal);
        self.ev.push(plan, slots, position, source);
    }

    fn prefiltered(&mut self) {
        self.ev.stats.records += 1;
        self.ev.stats.prefiltered += 1;
    }

    fn malformed(&mut self, line: u64, why: impl FnOnce() -> String) {
        self.ev.stats.malformed += 1;
        if self.malformed.len() < ReadStats::MAX_EXAMPLES {
            self.malformed.push((self.batch, line, why()));
        }
    }
}

/// One file through the pipeline: `make_parser` gets the first batch (to detect the format
/// from) and gives the parser for all of them. `file` orders this file's records among the
/// others'; `name` names it in the malformed examples.
pub fn search_file<'p, S, P>(
    reader: &mut dyn BufRead,
    mut splitter: S,
    make_parser: impl FnOnce(&[u8], &S::Cut) -> P,
    spec: &SearchSpec<'p>,
    file: u32,
    name: &str,
    threads: usize,
) -> std::io::Result<Evaluator<'p>>
where
    S: Splitter,
    P: BatchParser<Cut = S::Cut>,
{
    let mut blocks = Blocks {
        reader,
        carry: Buf::new(),
        end: false,
        skipped_long_line: false,
    };
    let Some((first, first_cut)) = blocks.next(&mut splitter, Buf::new())? else {
        return Ok(Evaluator::new(*spec));
    };
    // The batches that start with a skipped, too long line.
    let mut long_lines = Vec::new();
    if blocks.skipped_long_line {
        long_lines.push(0);
    }
    let parser = make_parser(first.data(), &first_cut);
    let threads = threads.max(1);
    let (tx, rx) = sync_channel::<(u64, Buf, S::Cut)>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    // Parsed blocks come back to be read into again (unless a long record grew them), all of
    // them: at most `threads * 2` queued, one per worker, and the reader's block and carry.
    let (spare_tx, spare) = sync_channel::<Buf>(threads * 3 + 2);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                let spare_tx = spare_tx.clone();
                let parser = &parser;
                scope.spawn(move || {
                    let mut ev = Evaluator::new(*spec);
                    let mut tally = Tally::default();
                    while let Ok((batch, block, cut)) = {
                        rx.lock()
                            .map(|r| r.recv())
                            .unwrap_or_else(|p| p.into_inner().recv())
                    } {
                        let mut sink = Sink {
                            ev: &mut ev,
                            malformed: &mut tally.malformed,
                            file,
                            batch,
                        };
                        let breaks = parser.parse(block.data(), &cut, &mut sink);
                        tally.breaks.push((batch, breaks));
                        if block.bytes.len() <= 2 * BLOCK {
                            let _ = spare_tx.try_send(block);
                        }
                    }
                    (ev, tally)
                })
            })
            .collect();
        let mut result = Ok(());
        let mut next = Some((first, first_cut));
        let mut batch = 0u64;
        while let Some((block, cut)) = next {
            if tx.send((batch, block, cut)).is_err() {
                break;
            }
            batch += 1;
            let buf = spare.try_recv().unwrap_or_else(|_| Buf::new());
            next = match blocks.next(&mut splitter, buf) {
                Ok(n) => {
                    if blocks.skipped_long_line {
                        long_lines.push(batch);
                    }
                    n
                }
                Err(e) => {
                    result = Err(e);
                    None
                }
            };
        }
        drop(tx);
        let mut total: Option<Evaluator<'p>> = None;
        let mut tally = Tally::default();
        for worker in workers {
            let (ev, t) = worker.join().expect("a search worker panicked");
            match &mut total {
                Some(total) => total.merge(ev),
                None => total = Some(ev),
            }
            tally.breaks.extend(t.breaks);
            tally.malformed.extend(t.malformed);
        }
        let mut total = total.expect("at least one worker");
        total.stats.malformed += long_lines.len() as u64;
        tally.malformed.extend(long_lines.into_iter().map(|batch| {
            let why = format!("a line longer than {} MiB, skipped", LONGEST_RECORD >> 20);
            (batch, 0, why)
        }));
        name_malformed(&mut total.stats, tally, name);
        result.map(|()| total)
    })
}

/// Turns the workers' (batch, line in batch) of malformed records into `name:line: why`, in
/// file order, now that every batch's line breaks are known.
fn name_malformed(stats: &mut ReadStats, mut tally: Tally, name: &str) {
    tally.breaks.sort_unstable();
    let first_lines: Vec<u64> = tally
        .breaks
        .iter()
        .scan(1, |next, (_, breaks)| {
            let first = *next;
            *next += breaks;
            Some(first)
        })
        .collect();
    tally
        .malformed
        .sort_unstable_by_key(|(batch, line, _)| (*batch, *line));
    let room = ReadStats::MAX_EXAMPLES.saturating_sub(stats.examples.len());
    for (batch, line, why) in tally.malformed.into_iter().take(room) {
        let line = first_lines[batch as usize] + line;
        stats.examples.push(format!("{name}:{line}: {why}"));
    }
}
