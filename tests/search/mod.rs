//! The shared helper of the hunt tests: one playbook's query and calculations run by the local
//! backend over files, with no time window.

use std::path::Path;

use tcpreset::playbook::io::local::LocalBackend;
use tcpreset::playbook::search::backend::{Backend, BackendError, SearchOutput};
use tcpreset::playbook::search::{SearchSpec, Window};
use tcpreset::playbook::spec::check::parse_playbook;

/// Searches `paths` (relative to `dir`) with the query and calculations of `playbook`, keeping at
/// most `max_filtered` records.
pub fn search(
    playbook: &str,
    dir: &Path,
    paths: &[&str],
    threads: usize,
    max_filtered: usize,
) -> Result<SearchOutput, BackendError> {
    let pb = parse_playbook(playbook).unwrap_or_else(|p| panic!("{p:?}"));
    let spec = SearchSpec {
        fields: &pb.fields,
        query: pb.query.as_ref(),
        calcs: &pb.calcs,
        watchlists: &[],
        window: Window {
            from_micros: 0,
            to_micros: i64::MAX,
        },
        max_filtered,
    };
    LocalBackend {
        base_dir: dir.into(),
        paths: paths.iter().map(|p| p.to_string()).collect(),
        format: None,
        threads,
    }
    .search(&spec)
}
