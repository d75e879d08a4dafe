//! The rules file (`rules.json` in the state directory): written atomically on every change, read back at start, moved aside if bad.
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `rules.json` under the state directory.
#[derive(Debug, Clone)]
pub struct RulesFile {
    path: PathBuf,
}

impl RulesFile {
    pub fn new(dir: &Path) -> Self {
        RulesFile {
            path: dir.join("rules.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `text`: a temporary file, fsync, rename, fsync of the directory,
    /// so a crash leaves either the old or the new state, never a mix.
    pub fn save(&self, text: &str) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        File::open(dir)?.sync_all()
    }

    /// The saved text, if there is a file.
    pub fn read(&self) -> io::Result<Option<String>> {
        match fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves a bad file aside as `rules.json.corrupt-UNIXSECONDS` and returns the new name.
    pub fn move_aside(&self, unix_secs: u64) -> io::Result<PathBuf> {
        let aside = self
            .path
            .with_extension(format!("json.corrupt-{unix_secs}"));
        fs::rename(&self.path, &aside)?;
        Ok(aside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_read_and_move_aside() {
        let dir = tempfile::tempdir().unwrap();
        let f = RulesFile::new(&dir.path().join("sub"));
        assert_eq!(f.read().unwrap(), None);
        f.save("one").unwrap();
        f.save("two").unwrap();
        assert_eq!(f.read().unwrap().as_deref(), Some("two"));
        assert!(!f.path().with_extension("json.tmp").exists());
        let aside = f.move_aside(42).unwrap();
        assert!(aside.ends_with("rules.json.corrupt-42"));
        assert_eq!(f.read().unwrap(), None);
    }
}
