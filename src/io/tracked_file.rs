//! The tracked interfaces file (`tracked.json` in the state directory): every sniff interface a
//! rule has named, so that a restart captures it again at once. Written atomically.
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `tracked.json` under the state directory.
#[derive(Debug, Clone)]
pub struct TrackedFile {
    path: PathBuf,
}

impl TrackedFile {
    pub fn new(dir: &Path) -> Self {
        TrackedFile {
            path: dir.join("tracked.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `names` (a temporary file in the same directory, fsync, rename,
    /// fsync of the directory), so a crash leaves the old set or the new one.
    pub fn save(&self, names: &BTreeSet<String>) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(&mut tmp, names)?;
        tmp.write_all(b"\n")?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        File::open(dir)?.sync_all()
    }

    /// The saved set: empty when there is no file; an unreadable one is an error that says so.
    pub fn load(&self) -> io::Result<BTreeSet<String>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(e),
        };
        serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_the_set() {
        let dir = tempfile::tempdir().unwrap();
        let f = TrackedFile::new(&dir.path().join("state"));
        assert!(f.load().unwrap().is_empty());
        let names: BTreeSet<String> = ["eth1".to_owned(), "eth2".to_owned()].into();
        f.save(&names).unwrap();
        f.save(&names).unwrap();
        assert_eq!(f.load().unwrap(), names);
        let left: Vec<_> = fs::read_dir(f.path().parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
        fs::write(f.path(), "not json").unwrap();
        let e = f.load().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
