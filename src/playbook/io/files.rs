//! Log files on this machine: the paths and globs of `source.paths`, opening a file (gzip is
//! decompressed, found by its magic bytes whatever the name), and what its first byte says the
//! layout is.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::playbook::search::backend::BackendError;

/// Small buffers: batches are read straight into their own memory, bypassing them.
const BUFFER: usize = 64 << 10;

/// The files named by `paths` (relative ones against `base_dir`), globs expanded in sorted
/// order, and the globs that matched no file. A named file that does not exist is an error; a
/// glob that matches nothing is not (logs rotate), but it is reported.
pub fn resolve(
    base_dir: &Path,
    paths: &[String],
) -> Result<(Vec<PathBuf>, Vec<String>), BackendError> {
    let mut files = Vec::new();
    let mut empty_globs = Vec::new();
    for p in paths {
        let full = base_dir.join(p);
        let text = full.to_string_lossy().to_string();
        if p.contains(['*', '?', '[']) {
            let matches = glob::glob(&text).map_err(|e| BackendError::Glob {
                pattern: p.clone(),
                reason: e.to_string(),
            })?;
            let mut found: Vec<PathBuf> = matches
                .filter_map(Result::ok)
                .filter(|f| f.is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                empty_globs.push(p.clone());
            }
            files.extend(found);
        } else if full.is_file() {
            files.push(full);
        } else {
            return Err(BackendError::Read {
                path: text,
                reason: not_a_log_file(&full),
            });
        }
    }
    Ok((files, empty_globs))
}

/// Why `path`, which is not a regular file, cannot be read as a log.
fn not_a_log_file(path: &Path) -> String {
    use std::os::unix::fs::FileTypeExt;
    let kind = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return "no such file".into(),
        Err(e) => return format!("cannot be read: {e}"),
        Ok(m) => m.file_type(),
    };
    let what = if kind.is_dir() {
        "a directory; name its files, or a glob such as DIR/*.json"
    } else if kind.is_fifo() {
        "a FIFO (named pipe), not a log file; name the file the logs are written to"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device, not a log file"
    } else if kind.is_socket() {
        "a socket, not a log file"
    } else {
        "not a regular file"
    };
    format!("is {what}")
}

/// Opens a file, decompressing gzip (by its magic bytes, whatever the name).
pub fn open_log(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    let mut file = BufReader::with_capacity(BUFFER, File::open(path)?);
    let gz = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::with_capacity(BUFFER, MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// How a log file's records are laid out, from its first byte that is not whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `#`: Zeek TSV with its header.
    ZeekTsv,
    /// `[`: one JSON array of records.
    JsonArray,
    /// Anything else: one JSON record a line.
    Ndjson,
}

/// The layout of what `reader` holds, skipping leading whitespace and nothing else; `None` for
/// nothing but whitespace.
pub fn layout(reader: &mut dyn BufRead) -> std::io::Result<Option<Layout>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                return Ok(Some(match buf[i] {
                    b'#' => Layout::ZeekTsv,
                    b'[' => Layout::JsonArray,
                    _ => Layout::Ndjson,
                }))
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}
