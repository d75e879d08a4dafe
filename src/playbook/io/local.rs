//! The local backend (I/O edge): searches log files on this machine, plain or gzip, NDJSON,
//! JSON arrays or Zeek TSV, each through the one [`pipeline`](super::pipeline) with its format's
//! splitter and parser. A file's format is the playbook's `source.format`, or is detected from
//! its first records.

use std::path::{Path, PathBuf};

use super::files::{layout, open_log, resolve, Layout};
use super::pipeline::search_file;
use crate::playbook::record::format::{FieldPlan, Format};
use crate::playbook::record::json_array::{self, ArrayParser, ArraySplitter};
use crate::playbook::record::ndjson::{self, NdjsonParser, NdjsonSplitter};
use crate::playbook::record::zeek::{ZeekParser, ZeekSplitter};
use crate::playbook::search::backend::{Backend, BackendError, SearchOutput};
use crate::playbook::search::evaluator::Evaluator;
use crate::playbook::search::SearchSpec;

/// Searches files on this machine.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    /// Relative paths and globs are resolved against this directory (the playbook's).
    pub base_dir: PathBuf,
    pub paths: Vec<String>,
    /// `None`: detect each file's format from its first records.
    pub format: Option<Format>,
    pub threads: usize,
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> BackendError {
    BackendError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl LocalBackend {
    /// Searches one file, the `index`-th.
    fn search_one<'p>(
        &self,
        path: &Path,
        index: usize,
        spec: &SearchSpec<'p>,
    ) -> std::io::Result<Evaluator<'p>> {
        let mut reader = open_log(path)?;
        let file = u32::try_from(index).unwrap_or(u32::MAX);
        let name = path.display().to_string();
        // `srcip.keyword` names the text field `srcip` in logs (the suffix is a cluster's).
        let names: Vec<String> = spec
            .fields
            .iter()
            .map(|f| f.strip_suffix(".keyword").unwrap_or(f).to_string())
            .collect();
        let plan = |format: Format| FieldPlan::new(format, &names);
        let threads = self.threads;
        match layout(&mut reader)? {
            None => Ok(Evaluator::new(*spec)),
            Some(Layout::ZeekTsv) => {
                let format = self.format.unwrap_or(Format::Zeek);
                let parser = |_: &[u8], _: &_| ZeekParser { plan: plan(format) };
                search_file(
                    &mut reader,
                    ZeekSplitter::default(),
                    parser,
                    spec,
                    file,
                    &name,
                    threads,
                )
            }
            Some(Layout::JsonArray) => {
                let parser = |first: &[u8], pieces: &Vec<_>| {
                    let format = self
                        .format
                        .unwrap_or_else(|| json_array::detect_format(first, pieces));
                    ArrayParser::new(plan(format))
                };
                search_file(
                    &mut reader,
                    ArraySplitter::default(),
                    parser,
                    spec,
                    file,
                    &name,
                    threads,
                )
            }
            Some(Layout::Ndjson) => {
                let parser = |first: &[u8], _: &()| {
                    let format = self.format.unwrap_or_else(|| ndjson::detect_format(first));
                    NdjsonParser::new(plan(format), spec.query)
                };
                search_file(
                    &mut reader,
                    NdjsonSplitter,
                    parser,
                    spec,
                    file,
                    &name,
                    threads,
                )
            }
        }
    }
}

impl Backend for LocalBackend {
    fn search(&self, spec: &SearchSpec<'_>) -> Result<SearchOutput, BackendError> {
        let (files, empty_globs) = resolve(&self.base_dir, &self.paths)?;
        let mut total = Evaluator::new(*spec);
        for (index, path) in files.iter().enumerate() {
            let found = self
                .search_one(path, index, spec)
                .map_err(|e| read_err(path, e))?;
            total.merge(found);
        }
        let (payload, stats) = total.finish();
        Ok(SearchOutput {
            payload,
            stats,
            sources: files.iter().map(|f| f.display().to_string()).collect(),
            notes: empty_globs
                .iter()
                .map(|g| format!("`source.paths`: `{g}` matched no file"))
                .collect(),
            request: None,
        })
    }
}
