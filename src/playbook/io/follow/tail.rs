//! Following log files as they grow (I/O edge): each poll reads only the bytes written since
//! the last one and hands them on as whole lines, across the rotations real sensors do.
//!
//! A file is known by its identity (device and inode), not its name, so that:
//! - rename + create (Suricata on SIGHUP, logrotate `create`): the renamed file is read to its
//!   end (the writer may still append until it reopens), then closed once it has stopped
//!   growing for [`DRAIN_GRACE`]; the new file is read from its start;
//! - deleted and recreated: the same, the deleted file being read to its end through its
//!   descriptor;
//! - `copytruncate`: the same file shrinks below what was read; it is read again from its start
//!   (and said so: lines written between the copy and the truncation are the rotated copy's);
//! - a file that does not exist yet is read from its start when it appears;
//! - a partial last line is kept until its line break arrives (or the file is closed).
//!
//! No line is handed on twice, and none is lost, as long as the writer does not write past the
//! old size of a truncated file before the next poll (inotify makes that poll immediate).

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a rotated-away file must have stopped growing before it is closed.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// The most bytes read from one file in one poll; more waits for the next poll.
pub const MOST_PER_POLL: usize = 16 << 20;
/// The longest line kept while waiting for its line break; a longer one is dropped (and said).
pub const LONGEST_LINE: usize = 16 << 20;

/// Whole lines read from one file: `bytes` ends with a line break (unless the file was closed
/// on a partial last line); its first line is line `first_line` (from 1) of `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub id: FileId,
    pub name: String,
    pub first_line: u64,
    pub bytes: Vec<u8>,
}

/// A file's identity: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// One open file: where it is read to, the partial line after that, its lines so far.
struct Open {
    file: File,
    /// The name it was last seen under.
    name: String,
    /// Bytes read from it (whole lines and the partial line).
    offset: u64,
    partial: Vec<u8>,
    /// Line breaks read so far.
    lines: u64,
    last_growth: Instant,
    /// A line longer than [`LONGEST_LINE`] is being skipped to its line break.
    skipping: bool,
}

/// What a name of `source.paths` currently refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameState {
    pub path: PathBuf,
    pub id: Option<FileId>,
    /// Why it is not being read (missing, not a regular file, unreadable).
    pub trouble: Option<String>,
    pub rotations: u64,
}

/// The files behind a set of names (plain paths; globs are resolved by the caller each poll).
#[derive(Default)]
pub struct Tails {
    names: Vec<NameState>,
    open: HashMap<FileId, Open>,
}

/// What a poll read and what the user should know.
#[derive(Debug, Default)]
pub struct Polled {
    pub chunks: Vec<Chunk>,
    /// `path: what happened` (a rotation, a truncation, a file gone or not a file).
    pub notes: Vec<String>,
    /// A file had more than [`MOST_PER_POLL`] new bytes: poll again at once.
    pub more: bool,
}

impl Tails {
    /// Follows `paths`: names no longer listed are dropped (their files are read to their end
    /// like rotated ones), new names are followed from the start of their file.
    pub fn set_names(&mut self, paths: &[PathBuf]) {
        self.names.retain(|n| paths.contains(&n.path));
        for p in paths {
            if !self.names.iter().any(|n| &n.path == p) {
                self.names.push(NameState {
                    path: p.clone(),
                    ..NameState::default()
                });
            }
        }
    }

    /// The names followed and their state.
    pub fn names(&self) -> &[NameState] {
        &self.names
    }

    /// Where file `id` is read to: bytes and lines.
    pub fn position(&self, id: FileId) -> Option<(u64, u64)> {
        self.open.get(&id).map(|o| (o.offset, o.lines))
    }

    /// Reads what is new in every followed file. Files no name refers to any more are read
    /// first (they hold the older records), then each name's file.
    pub fn poll(&mut self, now: Instant) -> Polled {
        let mut polled = Polled::default();
        for i in 0..self.names.len() {
            self.check_name(i, now, &mut polled.notes);
        }
        let named: Vec<FileId> = self.names.iter().filter_map(|n| n.id).collect();
        let mut ids: Vec<FileId> = self.open.keys().copied().collect();
        // Rotated-away files first, then in the order of the names.
        ids.sort_by_key(|id| named.iter().position(|n| n == id).map_or(0, |p| p + 1));
        for id in ids {
            let rotated_away = !named.contains(&id);
            let open = self.open.get_mut(&id).expect("listed");
            read_new(open, id, now, &mut polled);
            if rotated_away && open.last_growth + DRAIN_GRACE <= now {
                let mut open = self.open.remove(&id).expect("listed");
                close(&mut open, id, &mut polled);
            }
        }
        polled
    }

    /// Looks at what name `i` refers to now, and opens, rotates or marks it.
    fn check_name(&mut self, i: usize, now: Instant, notes: &mut Vec<String>) {
        let path = self.names[i].path.clone();
        let shown = path.display().to_string();
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(m) => {
                let why = if m.is_dir() {
                    "is a directory, not a log file; name the file the logs are written to"
                } else {
                    "is not a regular file"
                };
                self.lose_name(i, why.to_string(), notes);
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.lose_name(
                    i,
                    "does not exist (yet); it is read from its start when it appears".into(),
                    notes,
                );
                return;
            }
            Err(e) => {
                self.lose_name(i, format!("cannot be read: {e}"), notes);
                return;
            }
        };
        let id = FileId::of(&meta);
        let name = &mut self.names[i];
        if name.id == Some(id) {
            let open = self.open.get_mut(&id).expect("a named file is open");
            if meta.len() < open.offset {
                notes.push(format!("{shown}: shrank from {} to {} bytes (copytruncate?); reading it again from its start", open.offset, meta.len()));
                open.offset = 0;
                open.partial.clear();
                open.lines = 0;
                open.skipping = false;
                name.rotations += 1;
            }
            return;
        }
        if let Some(old) = name.id {
            name.rotations += 1;
            notes.push(format!(
                "{shown}: rotated (a new file under the name); the old one is read to its end"
            ));
            self.mark_rotated_away(old);
        }
        if self.open.contains_key(&id) {
            // Already open under another name (a rename within the followed names).
            self.names[i].id = Some(id);
            self.names[i].trouble = None;
            return;
        }
        match File::open(&path) {
            Ok(file) => {
                self.open.insert(
                    id,
                    Open {
                        file,
                        name: shown.clone(),
                        offset: 0,
                        partial: Vec::new(),
                        lines: 0,
                        last_growth: now,
                        skipping: false,
                    },
                );
                self.names[i].id = Some(id);
                if self.names[i].trouble.take().is_some() {
                    notes.push(format!(
                        "{shown}: is readable now; reading it from its start"
                    ));
                }
            }
            Err(e) => self.lose_name(i, format!("cannot be opened: {e}"), notes),
        }
    }

    /// Names file `id` as rotated away in what is reported of it from now on.
    fn mark_rotated_away(&mut self, id: FileId) {
        if let Some(open) = self.open.get_mut(&id) {
            open.name += " (rotated away)";
        }
    }

    /// Name `i` no longer refers to a readable file; said once per change of reason.
    fn lose_name(&mut self, i: usize, why: String, notes: &mut Vec<String>) {
        let name = &mut self.names[i];
        if let Some(old) = name.id.take() {
            name.rotations += 1;
            self.mark_rotated_away(old);
        }
        let name = &mut self.names[i];
        if name.trouble.as_ref() != Some(&why) {
            notes.push(format!("{}: {why}", name.path.display()));
            name.trouble = Some(why);
        }
    }
}

/// Reads `open` from its offset to its end (at most [`MOST_PER_POLL`]), handing on whole lines.
fn read_new(open: &mut Open, id: FileId, now: Instant, polled: &mut Polled) {
    let mut buf = vec![0u8; 1 << 16];
    let mut fresh = Vec::new();
    loop {
        if fresh.len() >= MOST_PER_POLL {
            polled.more = true;
            break;
        }
        match open
            .file
            .read_at(&mut buf, open.offset + fresh.len() as u64)
        {
            Ok(0) => break,
            Ok(n) => fresh.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                polled
                    .notes
                    .push(format!("{}: read failed: {e}; retrying", open.name));
                break;
            }
        }
    }
    if fresh.is_empty() {
        return;
    }
    open.last_growth = now;
    open.offset += fresh.len() as u64;
    let mut data = std::mem::take(&mut open.partial);
    data.extend_from_slice(&fresh);
    let mut data = &data[..];
    if open.skipping {
        match memchr::memchr(b'\n', data) {
            Some(i) => {
                open.skipping = false;
                open.lines += 1;
                data = &data[i + 1..];
            }
            None => return,
        }
    }
    let whole = memchr::memrchr(b'\n', data).map_or(0, |i| i + 1);
    if whole > 0 {
        let first_line = open.lines + 1;
        open.lines += crate::playbook::record::batch::line_breaks(&data[..whole]);
        polled.chunks.push(Chunk {
            id,
            name: open.name.clone(),
            first_line,
            bytes: data[..whole].to_vec(),
        });
    }
    let rest = &data[whole..];
    if rest.len() > LONGEST_LINE {
        polled.notes.push(format!(
            "{}:{}: a line longer than {} MiB, skipped",
            open.name,
            open.lines + 1,
            LONGEST_LINE >> 20
        ));
        open.skipping = true;
    } else {
        open.partial = rest.to_vec();
    }
}

/// Closes a rotated-away file: a partial last line left in it is handed on as it is.
fn close(open: &mut Open, id: FileId, polled: &mut Polled) {
    if open.partial.is_empty() {
        return;
    }
    polled.notes.push(format!(
        "{}:{}: the file was rotated away with a last line that has no line break; reading it as it is",
        open.name,
        open.lines + 1
    ));
    polled.chunks.push(Chunk {
        id,
        name: open.name.clone(),
        first_line: open.lines + 1,
        bytes: std::mem::take(&mut open.partial),
    });
}

/// The names behind `patterns` (relative ones against `base_dir`): plain paths as they are,
/// globs expanded (sorted), so that a file appearing under a glob is followed.
pub fn expand(base_dir: &Path, patterns: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in patterns {
        let full = base_dir.join(p);
        if p.contains(['*', '?', '[']) {
            let mut found: Vec<PathBuf> = glob::glob(&full.to_string_lossy())
                .map(|m| m.filter_map(Result::ok).filter(|f| f.is_file()).collect())
                .unwrap_or_default();
            found.sort();
            out.extend(found);
        } else {
            out.push(full);
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
