//! The in-process engine (I/O edge): streams log files (plain or gzip; NDJSON, JSON arrays, Zeek
//! TSV) through the evaluator. NDJSON is cut into blocks that worker threads parse in parallel;
//! memory stays bounded by the blocks in flight and the number of groups.
//!
//! NDJSON lines are prefiltered: when the query requires `field is "text"` (at its top level),
//! a matching record must contain `"text"` verbatim unless it uses a JSON escape, so a line with
//! neither is counted and skipped unparsed. Without such a text every record is parsed, straight
//! from its block (the extractor finds where its line ends).

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value as Json;

use super::{Engine, EngineError, SearchOutput};
use crate::playbook::parse::{
    fill_from_json, parse_json_bytes, parse_json_record, PathTree, ZeekHeader,
};
use crate::playbook::query::{Query, Test};
use crate::playbook::search::{Evaluator, ReadStats, SearchSpec};
use crate::playbook::source::{detect_json_format, Accessor, FieldPlan, Format};
use crate::playbook::value::Literal;

const BLOCK: usize = 1 << 20;
const BUFFER: usize = 64 << 10;

/// Searches files on this machine.
#[derive(Debug, Clone)]
pub struct LocalEngine {
    /// Relative paths and globs are resolved against this directory (the playbook's).
    pub base_dir: PathBuf,
    pub paths: Vec<String>,
    /// `None`: detect each file's format from its first record.
    pub format: Option<Format>,
    pub threads: usize,
}

impl LocalEngine {
    /// The files named by `paths`, globs expanded (in sorted order). A named file that does not
    /// exist is an error; a glob that matches nothing is not.
    pub fn files(&self) -> Result<Vec<PathBuf>, EngineError> {
        let mut files = Vec::new();
        for p in &self.paths {
            let full = self.base_dir.join(p);
            let text = full.to_string_lossy().to_string();
            if p.contains(['*', '?', '[']) {
                let matches = glob::glob(&text).map_err(|e| EngineError::Glob {
                    pattern: p.clone(),
                    reason: e.to_string(),
                })?;
                let mut found: Vec<PathBuf> = matches
                    .filter_map(Result::ok)
                    .filter(|f| f.is_file())
                    .collect();
                found.sort();
                files.extend(found);
            } else if full.is_file() {
                files.push(full);
            } else {
                return Err(EngineError::Read {
                    path: text,
                    reason: "no such file".into(),
                });
            }
        }
        Ok(files)
    }
}

fn read_err(path: &Path, e: impl fmt::Display) -> EngineError {
    EngineError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Opens a file, decompressing gzip (by its magic bytes, whatever the name).
pub fn open_log(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    // Small buffers: NDJSON blocks are read straight into their own memory, bypassing them.
    let mut file = BufReader::with_capacity(BUFFER, File::open(path)?);
    let gz = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::with_capacity(BUFFER, MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

impl Engine for LocalEngine {
    fn search(&self, spec: &SearchSpec<'_>) -> Result<SearchOutput, EngineError> {
        let files = self.files()?;
        let mut total = Evaluator::new(*spec);
        for (index, path) in files.iter().enumerate() {
            let mut reader = open_log(path).map_err(|e| read_err(path, e))?;
            let first = first_byte(&mut reader).map_err(|e| read_err(path, e))?;
            let file_no = u32::try_from(index).unwrap_or(u32::MAX);
            let name = path.display().to_string();
            match first {
                None => {}
                Some(b'#') => read_zeek_tsv(
                    reader,
                    spec,
                    self.format.unwrap_or(Format::Zeek),
                    file_no,
                    &name,
                    &mut total,
                )
                .map_err(|e| read_err(path, e))?,
                Some(b'[') => {
                    read_json_array(reader, spec, self.format, file_no, &name, &mut total)
                        .map_err(|e| read_err(path, e))?
                }
                Some(_) => {
                    let ev = read_ndjson(
                        reader,
                        spec,
                        self.format,
                        file_no,
                        &name,
                        self.threads.max(1),
                    )
                    .map_err(|e| read_err(path, e))?;
                    total.merge(ev);
                }
            }
        }
        let (payload, stats) = total.finish();
        Ok(SearchOutput {
            payload,
            stats,
            sources: files.iter().map(|f| f.display().to_string()).collect(),
        })
    }
}

/// The first byte that is not whitespace, without consuming anything else.
fn first_byte(reader: &mut Box<dyn BufRead + Send>) -> std::io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => return Ok(Some(buf[i])),
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

fn read_zeek_tsv<'p>(
    mut reader: Box<dyn BufRead + Send>,
    spec: &SearchSpec<'p>,
    format: Format,
    file: u32,
    name: &str,
    ev: &mut Evaluator<'p>,
) -> std::io::Result<()> {
    let plan = FieldPlan::new(format, spec.fields);
    let mut header = ZeekHeader {
        set_separator: ",".into(),
        empty_field: "(empty)".into(),
        unset_field: "-".into(),
        ..ZeekHeader::default()
    };
    let mut columns = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line_no += 1;
        let Ok(line) = std::str::from_utf8(&buf) else {
            ev.stats
                .malformed(|| format!("{name}:{line_no}: not UTF-8"));
            continue;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            continue;
        }
        if header.read_line(line) {
            columns = header.column_slots(&plan.paths);
            continue;
        }
        let mut slots = vec![None; plan.paths.len()];
        if header.fields.is_empty() {
            ev.stats
                .malformed(|| format!("{name}:{line_no}: data before the #fields header"));
        } else if header.parse_line(line, &columns, &mut slots) {
            ev.push(&plan, &slots, (file, line_no), || header.to_json(line));
        } else {
            ev.stats.malformed(|| {
                format!("{name}:{line_no}: record has fewer columns than #fields (cut off?)")
            });
        }
    }
}

fn read_json_array<'p>(
    reader: Box<dyn BufRead + Send>,
    spec: &SearchSpec<'p>,
    format: Option<Format>,
    file: u32,
    name: &str,
    ev: &mut Evaluator<'p>,
) -> std::io::Result<()> {
    struct Elements<'e, 'p, 's> {
        spec: &'s SearchSpec<'p>,
        format: Option<Format>,
        file: u32,
        ev: &'e mut Evaluator<'p>,
    }
    impl<'de> Visitor<'de> for Elements<'_, '_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON array of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut plan: Option<FieldPlan> = None;
            let mut index = 0u64;
            while let Some(record) = seq.next_element::<Json>()? {
                index += 1;
                let plan = plan.get_or_insert_with(|| {
                    FieldPlan::new(
                        self.format.unwrap_or_else(|| detect_json_format(&record)),
                        self.spec.fields,
                    )
                });
                let mut slots = vec![None; plan.paths.len()];
                fill_from_json(&record, &plan.paths, &mut slots);
                self.ev
                    .push(plan, &slots, (self.file, index), || record.clone());
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Elements<'_, '_, '_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    Elements {
        spec,
        format,
        file,
        ev,
    }
    .deserialize(&mut de)
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{name}: {e}")))
}

/// A block of whole lines and its index in the file.
type Block = (u64, Buf);

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

/// What a worker saw besides the records it passed on: the lines of each block it read, and
/// where (block, line in the block) and why lines were malformed, for the first few.
#[derive(Default)]
struct Tally {
    lines: Vec<(u64, u64)>,
    malformed: Vec<(u64, u64, String)>,
}

fn read_ndjson<'p>(
    mut reader: Box<dyn BufRead + Send>,
    spec: &SearchSpec<'p>,
    format: Option<Format>,
    file: u32,
    name: &str,
    threads: usize,
) -> std::io::Result<Evaluator<'p>> {
    let mut first = Buf::new();
    let mut carry = read_block(&mut reader, &mut first, Buf::new())?;
    let format = format.unwrap_or_else(|| {
        first
            .data()
            .split(|b| *b == b'\n')
            .take(10)
            .find_map(|l| serde_json::from_slice::<Json>(l).ok())
            .map_or(Format::Ndjson, |r| detect_json_format(&r))
    });
    let plan = FieldPlan::new(format, spec.fields);
    let tree = PathTree::new(&plan.paths);
    let needles = required_texts(spec.query, &plan);
    let (tx, rx) = sync_channel::<Block>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    // Parsed blocks come back to be read into again (unless a long line grew them), all of them:
    // at most `threads * 2` queued, one per worker, and the reader's block and carry.
    let (spare_tx, spare) = sync_channel::<Buf>(threads * 3 + 2);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                let spare_tx = spare_tx.clone();
                let (plan, tree, needles) = (&plan, &tree, &needles);
                scope.spawn(move || {
                    let mut ev = Evaluator::new(*spec);
                    let mut tally = Tally::default();
                    while let Ok((index, block)) = {
                        rx.lock()
                            .map(|r| r.recv())
                            .unwrap_or_else(|p| p.into_inner().recv())
                    } {
                        let reader = BlockReader {
                            plan,
                            tree,
                            needles,
                            file,
                        };
                        let lines =
                            reader.parse(block.data(), index, &mut ev, &mut tally.malformed);
                        tally.lines.push((index, lines));
                        if block.bytes.len() <= 2 * BLOCK {
                            let _ = spare_tx.try_send(block);
                        }
                    }
                    (ev, tally)
                })
            })
            .collect();
        let mut result = Ok(());
        let mut block = first;
        let mut index = 0u64;
        while block.len > 0 {
            if tx.send((index, block)).is_err() {
                break;
            }
            index += 1;
            block = carry;
            let next = spare.try_recv().unwrap_or_else(|_| Buf::new());
            match read_block(&mut reader, &mut block, next) {
                Ok(rest) => carry = rest,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
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
            tally.lines.extend(t.lines);
            tally.malformed.extend(t.malformed);
        }
        let mut total = total.expect("at least one worker");
        // Line numbers of the malformed examples, now that every block's lines are counted.
        tally.lines.sort_unstable();
        let first_lines: Vec<u64> = tally
            .lines
            .iter()
            .scan(1, |next, (_, lines)| {
                let first = *next;
                *next += lines;
                Some(first)
            })
            .collect();
        tally
            .malformed
            .sort_unstable_by_key(|(index, line, _)| (*index, *line));
        let room = ReadStats::MAX_EXAMPLES.saturating_sub(total.stats.examples.len());
        for (index, line, why) in tally.malformed.into_iter().take(room) {
            let line = first_lines[index as usize] + line;
            total.stats.examples.push(format!("{name}:{line}: {why}"));
        }
        result.map(|()| total)
    })
}

/// Reads up to [`BLOCK`] bytes into `block` (after the carry it already holds) and cuts it after
/// its last line break; the bytes after the cut go to the start of `next`, which is returned to be
/// the next block. At the end of the input the block keeps everything and `next` is empty.
fn read_block(
    reader: &mut Box<dyn BufRead + Send>,
    block: &mut Buf,
    mut next: Buf,
) -> std::io::Result<Buf> {
    next.len = 0;
    while block.len < BLOCK {
        // Reads as large as this bypass the reader's own buffer (a copy less).
        match reader.read(&mut block.bytes[block.len..BLOCK]) {
            Ok(0) => return Ok(next),
            Ok(n) => block.len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    match memchr::memrchr(b'\n', block.data()) {
        Some(i) => {
            let rest = i + 1..block.len;
            next.bytes[..rest.len()].copy_from_slice(&block.bytes[rest.clone()]);
            next.len = rest.len();
            block.len = i + 1;
        }
        // One line longer than a block: read on to its end.
        None => {
            block.bytes.truncate(block.len);
            reader.read_until(b'\n', &mut block.bytes)?;
            block.len = block.bytes.len();
        }
    }
    Ok(next)
}

/// The quoted texts a record must contain to match `query`: one per `field is "text"` test at its
/// top level on a field read verbatim from the JSON (not numbers, booleans or derived fields).
fn required_texts(query: Option<&Query>, plan: &FieldPlan) -> Vec<memchr::memmem::Finder<'static>> {
    let tests: Vec<&Query> = match query {
        Some(Query::All(list)) => list.iter().collect(),
        Some(q) => vec![q],
        None => Vec::new(),
    };
    tests
        .into_iter()
        .filter_map(|q| match q {
            Query::Test {
                field,
                test: Test::Is(Literal::Str(text)),
            } if matches!(plan.accessors[*field], Accessor::Slot(_)) => Some(text),
            _ => None,
        })
        .filter(|text| {
            let plain = text
                .chars()
                .all(|c| c != '"' && c != '\\' && !c.is_control());
            let scalar_like = text.trim().parse::<f64>().is_ok()
                || matches!(text.as_str(), "true" | "false")
                || text.starts_with(['{', '['])
                || text.is_empty();
            plain && !scalar_like
        })
        .map(|text| memchr::memmem::Finder::new(format!("\"{text}\"").as_bytes()).into_owned())
        .collect()
}

/// A record whole, for `filtered`.
fn source(line: &[u8]) -> Json {
    serde_json::from_slice(line).unwrap_or(Json::Null)
}

/// What a worker needs to read blocks of one file.
struct BlockReader<'a> {
    plan: &'a FieldPlan,
    tree: &'a PathTree,
    needles: &'a [memchr::memmem::Finder<'static>],
    file: u32,
}

impl BlockReader<'_> {
    fn may_match(&self, line: &[u8]) -> bool {
        self.needles.is_empty()
            || memchr::memchr(b'\\', line).is_some()
            || self.needles.iter().all(|n| n.find(line).is_some())
    }

    /// Passes the records of block `index` to `ev`, noting the first few malformed lines (by
    /// their number in the block, from 0) in `malformed`. Returns the number of line breaks.
    ///
    /// A record's position is its block and its line in the block, which sort as line numbers
    /// do: the reader does not count lines, so that it only reads.
    fn parse(
        &self,
        block: &[u8],
        index: u64,
        ev: &mut Evaluator<'_>,
        malformed: &mut Vec<(u64, u64, String)>,
    ) -> u64 {
        let mut slots = vec![None; self.plan.paths.len()];
        let mut start = 0;
        let mut line = 0u64;
        while start < block.len() {
            let this_line = line;
            let position = (self.file, index << 32 | this_line);
            let rest = &block[start..];
            line += 1;
            slots.iter_mut().for_each(|s| *s = None);
            // Without a prefilter, the record is read straight from the block: its line ends
            // where the extractor finds the line break.
            if self.needles.is_empty() {
                if let Some(end) = parse_json_record(rest, self.tree, &mut slots) {
                    start += end + 1;
                    let raw = &rest[..end];
                    ev.push(self.plan, &slots, position, || source(raw));
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
            if !self.may_match(raw) {
                ev.stats.records += 1;
                ev.stats.prefiltered += 1;
                continue;
            }
            match parse_json_bytes(raw, self.tree, &mut slots) {
                Ok(()) => ev.push(self.plan, &slots, position, || source(raw)),
                Err(e) => {
                    ev.stats.malformed += 1;
                    if malformed.len() < ReadStats::MAX_EXAMPLES {
                        malformed.push((index, this_line, e.to_string()));
                    }
                }
            }
        }
        // The last line of the file may lack its line break.
        line - u64::from(block.last().is_some_and(|b| *b != b'\n'))
    }
}
