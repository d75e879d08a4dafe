//! The journal file (`rules.journal` beside `rules.json`): changes appended as lines, made durable
//! by group commit (one `fdatasync` acknowledges every line written before it), emptied once a
//! snapshot holds them.
//!
//! A writer appends its line (under the daemon's table lock, so lines are in the table's order)
//! and gets a [`Ticket`]; it then waits, without that lock, until a sync covers its line. The
//! first waiter to find no sync running starts one for everything written so far; the others
//! wait for it, so N concurrent changes cost about one sync, not N. A sync that fails fails
//! every line it was to cover, and the journal takes no line until a new snapshot replaces it
//! ([`Journal::reset`]); the lines that failed are then undone by the daemon.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Where a line lies in the journal's sequence: 1 for the first line ever written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// An append-only journal with group commit.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    state: Mutex<State>,
    synced: Condvar,
    /// Tests: the next sync fails as a disk's would.
    #[cfg(test)]
    fail_sync: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct State {
    file: Option<Arc<File>>,
    /// The (device, inode) the path named when the file was opened: appending to a file that
    /// was replaced or removed would be lost at the next start.
    identity: (u64, u64),
    /// The last line written, and the last one known on disk.
    written: u64,
    synced: u64,
    /// Lines in the file now (for compaction).
    lines: u64,
    syncing: bool,
    /// Bumped by [`Journal::reset`]: a sync started before it says nothing of the new file.
    generation: u64,
    /// Why the journal takes no line, until the next reset.
    broken: Option<String>,
    /// Ranges of lines (first, last) whose sync failed; their writers are told.
    failed: Vec<(u64, u64)>,
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl Journal {
    /// `rules.journal` in `dir`; nothing is opened until [`Journal::reset`].
    pub fn new(dir: &Path) -> Self {
        Journal {
            path: dir.join("rules.journal"),
            state: Mutex::new(State {
                file: None,
                identity: (0, 0),
                written: 0,
                synced: 0,
                lines: 0,
                syncing: false,
                generation: 0,
                broken: Some("not opened yet".into()),
                failed: Vec::new(),
            }),
            synced: Condvar::new(),
            #[cfg(test)]
            fail_sync: Default::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The journal's text, if there is a file (at start, before the first reset).
    pub fn read(&self) -> io::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Empties the journal once a snapshot holding every line written so far is on disk (and
    /// opens it, or creates it again if it was removed or replaced): every line written is then
    /// durable, except those whose sync had failed.
    pub fn reset(&self) -> io::Result<()> {
        let mut s = self.lock();
        let opened = (|| {
            let reuse = s.file.as_ref().filter(|_| {
                std::fs::symlink_metadata(&self.path).is_ok_and(|m| identity(&m) == s.identity)
            });
            let file = match reuse {
                Some(file) => Arc::clone(file),
                None => Arc::new(
                    OpenOptions::new()
                        .append(true)
                        .create(true)
                        .open(&self.path)?,
                ),
            };
            file.set_len(0)?;
            file.sync_all()?;
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            let id = identity(&file.metadata()?);
            Ok::<_, io::Error>((file, id))
        })();
        match opened {
            Ok((file, id)) => {
                s.file = Some(file);
                s.identity = id;
                s.synced = s.written;
                s.lines = 0;
                s.generation += 1;
                s.broken = None;
                drop(s);
                self.synced.notify_all();
                Ok(())
            }
            Err(e) => {
                s.broken = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Why the journal takes no line (a failed write or sync, a replaced file), if it does not.
    pub fn broken(&self) -> Option<String> {
        self.lock().broken.clone()
    }

    /// Lines in the file since the last reset.
    pub fn lines(&self) -> u64 {
        self.lock().lines
    }

    /// Whether the sync meant to put the line of `ticket` on disk failed.
    pub fn failed(&self, ticket: Ticket) -> bool {
        let s = self.lock();
        s.failed.iter().any(|&(a, b)| (a..=b).contains(&ticket.0))
    }

    /// The last line known to be on disk.
    pub fn durable(&self) -> Ticket {
        Ticket(self.lock().synced)
    }

    /// Appends `line` (with its newline); durable once [`Journal::wait`] says so.
    pub fn append(&self, line: &str) -> io::Result<Ticket> {
        let mut s = self.lock();
        if let Some(why) = &s.broken {
            return Err(io::Error::other(format!("the journal is unusable: {why}")));
        }
        let same = std::fs::symlink_metadata(&self.path).is_ok_and(|m| identity(&m) == s.identity);
        if !same {
            let why = format!("{} was removed or replaced", self.path.display());
            s.broken = Some(why.clone());
            return Err(io::Error::other(why));
        }
        let file = Arc::clone(
            s.file
                .as_ref()
                .expect("a journal that is not broken is open"),
        );
        if let Err(e) = (&*file).write_all(line.as_bytes()) {
            // Part of the line may be there: the next reset empties the file.
            s.broken = Some(e.to_string());
            return Err(e);
        }
        s.written += 1;
        s.lines += 1;
        Ok(Ticket(s.written))
    }

    /// Waits until the line of `ticket` is on disk; the error is that of the sync that failed
    /// to put it there.
    pub fn wait(&self, ticket: Ticket) -> io::Result<()> {
        let mut s = self.lock();
        loop {
            if s.failed.iter().any(|&(a, b)| (a..=b).contains(&ticket.0)) {
                let why = s.broken.clone().unwrap_or_else(|| "the sync failed".into());
                return Err(io::Error::other(why));
            }
            if s.synced >= ticket.0 {
                return Ok(());
            }
            if s.syncing {
                s = self.synced.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead a sync for every line written so far.
            s.syncing = true;
            let (target, generation) = (s.written, s.generation);
            let file = s.file.clone();
            drop(s);
            let result = match file {
                Some(file) => self.sync(&file),
                None => Err(io::Error::other("the journal is not open")),
            };
            s = self.lock();
            s.syncing = false;
            if s.generation == generation {
                match result {
                    Ok(()) => s.synced = s.synced.max(target),
                    Err(e) => {
                        let range = (s.synced + 1, s.written);
                        s.failed.push(range);
                        if s.failed.len() > 64 {
                            s.failed.remove(0);
                        }
                        s.broken = Some(format!("syncing {}: {e}", self.path.display()));
                    }
                }
            }
            self.synced.notify_all();
        }
    }
}

impl Journal {
    /// Tests: the next sync fails with EIO.
    #[cfg(test)]
    pub(crate) fn fail_next_sync(&self) {
        self.fail_sync
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    #[cfg(not(test))]
    fn sync(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    #[cfg(test)]
    fn sync(&self, file: &File) -> io::Result<()> {
        if self
            .fail_sync
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_durable_once_waited_for_and_a_reset_empties_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        assert!(j.append("early\n").is_err(), "not opened yet");
        j.reset().unwrap();
        let a = j.append("a\n").unwrap();
        let b = j.append("b\n").unwrap();
        assert!(a < b);
        j.wait(b).unwrap();
        j.wait(a).unwrap();
        assert_eq!(j.durable(), b);
        assert_eq!(j.read().unwrap().as_deref(), Some("a\nb\n"));
        assert_eq!(j.lines(), 2);
        j.reset().unwrap();
        assert_eq!((j.read().unwrap().as_deref(), j.lines()), (Some(""), 0));
        let c = j.append("c\n").unwrap();
        j.wait(c).unwrap();
        assert_eq!(j.read().unwrap().as_deref(), Some("c\n"));
    }

    #[test]
    fn concurrent_writers_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let j = Arc::new(Journal::new(dir.path()));
        j.reset().unwrap();
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let j = Arc::clone(&j);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let ticket = j.append(&format!("{t} {i}\n")).unwrap();
                        j.wait(ticket).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = j.read().unwrap().unwrap();
        assert_eq!(text.lines().count(), 800);
    }

    #[test]
    fn a_failed_sync_fails_every_line_it_covered_until_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        j.reset().unwrap();
        let ok = j.append("ok\n").unwrap();
        j.wait(ok).unwrap();
        let a = j.append("a\n").unwrap();
        let b = j.append("b\n").unwrap();
        j.fail_sync.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(j.wait(a).is_err());
        assert!(j.wait(b).is_err(), "b was written before the failed sync");
        assert!(j.failed(a) && j.failed(b) && !j.failed(ok));
        assert_eq!(j.durable(), ok);
        let e = j.append("c\n").unwrap_err().to_string();
        assert!(
            e.contains("unusable") && e.contains("Input/output error"),
            "{e}"
        );
        // A snapshot holds the table; the reset makes the journal usable, and the failed
        // lines stay failed for whoever still waits on them.
        j.reset().unwrap();
        assert!(j.wait(b).is_err());
        let d = j.append("d\n").unwrap();
        j.wait(d).unwrap();
    }

    #[test]
    fn a_replaced_file_takes_no_line_until_a_reset_makes_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        j.reset().unwrap();
        std::fs::remove_file(j.path()).unwrap();
        std::fs::create_dir(j.path()).unwrap();
        let e = j.append("x\n").unwrap_err().to_string();
        assert!(e.contains("removed or replaced"), "{e}");
        assert!(j.append("y\n").is_err(), "broken until a reset");
        assert!(j.reset().is_err(), "a directory in its place");
        std::fs::remove_dir(j.path()).unwrap();
        j.reset().unwrap();
        let t = j.append("z\n").unwrap();
        j.wait(t).unwrap();
        assert_eq!(j.read().unwrap().as_deref(), Some("z\n"));
    }
}
