//! The in-process engine (I/O edge): streams log files (plain or gzip; NDJSON, JSON arrays, Zeek
//! TSV) through the evaluator. NDJSON is cut into blocks that worker threads parse in parallel;
//! memory stays bounded by the blocks in flight and the number of groups.

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
use crate::playbook::parse::{fill_from_json, parse_json_line, PathTree, ZeekHeader};
use crate::playbook::search::{Evaluator, SearchSpec};
use crate::playbook::source::{detect_json_format, FieldPlan, Format};

const BLOCK: usize = 1 << 20;

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
                let matches = glob::glob(&text).map_err(|e| EngineError::Glob { pattern: p.clone(), reason: e.to_string() })?;
                let mut found: Vec<PathBuf> = matches.filter_map(Result::ok).filter(|f| f.is_file()).collect();
                found.sort();
                files.extend(found);
            } else if full.is_file() {
                files.push(full);
            } else {
                return Err(EngineError::Read { path: text, reason: "no such file".into() });
            }
        }
        Ok(files)
    }
}

fn read_err(path: &Path, e: impl fmt::Display) -> EngineError {
    EngineError::Read { path: path.display().to_string(), reason: e.to_string() }
}

/// Opens a file, decompressing gzip (by its magic bytes, whatever the name).
pub fn open_log(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    let mut file = BufReader::with_capacity(BLOCK, File::open(path)?);
    let gz = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz { Box::new(BufReader::with_capacity(BLOCK, MultiGzDecoder::new(file))) } else { Box::new(file) })
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
                Some(b'#') => read_zeek_tsv(reader, spec, self.format.unwrap_or(Format::Zeek), file_no, &name, &mut total).map_err(|e| read_err(path, e))?,
                Some(b'[') => read_json_array(reader, spec, self.format, file_no, &name, &mut total).map_err(|e| read_err(path, e))?,
                Some(_) => {
                    let ev = read_ndjson(reader, spec, self.format, file_no, &name, self.threads.max(1)).map_err(|e| read_err(path, e))?;
                    total.merge(ev);
                }
            }
        }
        let (payload, stats) = total.finish();
        Ok(SearchOutput { payload, stats, sources: files.iter().map(|f| f.display().to_string()).collect() })
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

fn read_zeek_tsv<'p>(mut reader: Box<dyn BufRead + Send>, spec: &SearchSpec<'p>, format: Format, file: u32, name: &str, ev: &mut Evaluator<'p>) -> std::io::Result<()> {
    let plan = FieldPlan::new(format, spec.fields);
    let mut header = ZeekHeader { set_separator: ",".into(), empty_field: "(empty)".into(), unset_field: "-".into(), ..ZeekHeader::default() };
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
            ev.stats.malformed(|| format!("{name}:{line_no}: not UTF-8"));
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
            ev.stats.malformed(|| format!("{name}:{line_no}: data before the #fields header"));
        } else if header.parse_line(line, &columns, &mut slots) {
            ev.push(&plan, &slots, (file, line_no), || header.to_json(line));
        } else {
            ev.stats.malformed(|| format!("{name}:{line_no}: record has fewer columns than #fields (cut off?)"));
        }
    }
}

fn read_json_array<'p>(reader: Box<dyn BufRead + Send>, spec: &SearchSpec<'p>, format: Option<Format>, file: u32, name: &str, ev: &mut Evaluator<'p>) -> std::io::Result<()> {
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
                let plan = plan.get_or_insert_with(|| FieldPlan::new(self.format.unwrap_or_else(|| detect_json_format(&record)), self.spec.fields));
                let mut slots = vec![None; plan.paths.len()];
                fill_from_json(&record, &plan.paths, &mut slots);
                self.ev.push(plan, &slots, (self.file, index), || record.clone());
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
    Elements { spec, format, file, ev }
        .deserialize(&mut de)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{name}: {e}")))
}

/// A block of whole lines and the number of its first line.
type Block = (u64, Vec<u8>);


fn read_ndjson<'p>(mut reader: Box<dyn BufRead + Send>, spec: &SearchSpec<'p>, format: Option<Format>, file: u32, name: &str, threads: usize) -> std::io::Result<Evaluator<'p>> {
    let mut first = read_block(&mut reader, Vec::new())?;
    let format = format.unwrap_or_else(|| {
        first.split(|b| *b == b'\n').take(10).find_map(|l| serde_json::from_slice::<Json>(l).ok()).map_or(Format::Ndjson, |r| detect_json_format(&r))
    });
    let plan = FieldPlan::new(format, spec.fields);
    let tree = PathTree::new(&plan.paths);
    let (tx, rx) = sync_channel::<Block>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                let (plan, tree) = (&plan, &tree);
                scope.spawn(move || {
                    let mut ev = Evaluator::new(*spec);
                    while let Ok((line_no, block)) = { rx.lock().map(|r| r.recv()).unwrap_or_else(|p| p.into_inner().recv()) } {
                        parse_block(&block, line_no, plan, tree, file, name, &mut ev);
                    }
                    ev
                })
            })
            .collect();
        let mut line_no = 1u64;
        let mut result = Ok(());
        loop {
            let block = std::mem::take(&mut first);
            if block.is_empty() {
                break;
            }
            let lines = block.iter().filter(|b| **b == b'\n').count() as u64;
            let carry = Vec::with_capacity(BLOCK);
            if tx.send((line_no, block)).is_err() {
                break;
            }
            line_no += lines;
            match read_block(&mut reader, carry) {
                Ok(next) => first = next,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(tx);
        let mut evaluators = workers.into_iter().map(|w| w.join().expect("a search worker panicked"));
        let mut total = evaluators.next().expect("at least one worker");
        evaluators.for_each(|ev| total.merge(ev));
        result.map(|()| total)
    })
}

/// Reads about [`BLOCK`] bytes ending at a line break (or at the end of the input).
fn read_block(reader: &mut Box<dyn BufRead + Send>, mut block: Vec<u8>) -> std::io::Result<Vec<u8>> {
    block.clear();
    (&mut *reader).take(BLOCK as u64).read_to_end(&mut block)?;
    if block.last().is_some_and(|b| *b != b'\n') {
        reader.read_until(b'\n', &mut block)?;
    }
    Ok(block)
}

fn parse_block(block: &[u8], first_line: u64, plan: &FieldPlan, tree: &PathTree, file: u32, name: &str, ev: &mut Evaluator<'_>) {
    let mut slots = Vec::with_capacity(plan.paths.len());
    for (i, raw) in block.split(|b| *b == b'\n').enumerate() {
        let line_no = first_line + i as u64;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            ev.stats.malformed(|| format!("{name}:{line_no}: not UTF-8"));
            continue;
        };
        slots.clear();
        slots.resize(plan.paths.len(), None);
        match parse_json_line(text, tree, &mut slots) {
            Ok(()) => ev.push(plan, &slots, (file, line_no), || serde_json::from_str(text).unwrap_or(Json::Null)),
            Err(e) => ev.stats.malformed(|| format!("{name}:{line_no}: {e}")),
        }
    }
}
