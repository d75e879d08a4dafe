//! Reading a playbook file and its watchlists from disk.

use std::path::Path;

use crate::playbook::search::watchlist::Watchlist;
use crate::playbook::spec::check::parse_playbook;
use crate::playbook::spec::{CheckError, Playbook, Problem};

/// Reads and checks a playbook file.
pub fn load(path: &Path) -> Result<Playbook, CheckError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CheckError {
        file: file.clone(),
        problems: vec![Problem {
            line: 0,
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    // A bug in a check must cost this playbook only, never the scheduler or the other files.
    let checked = std::panic::catch_unwind(|| parse_playbook(&text)).unwrap_or_else(|_| {
        Err(vec![Problem {
            line: 0,
            message: "checking this playbook panicked; this is a bug in tcpreset-hunt, please report it with the playbook".into(),
        }])
    });
    checked.map_err(|problems| CheckError { file, problems })
}

/// Reads and parses the watchlists of `playbook`, relative to `dir`.
pub fn load_watchlists(dir: &Path, playbook: &Playbook) -> Result<Vec<Watchlist>, String> {
    playbook
        .watchlists
        .iter()
        .map(|w| {
            let path = dir.join(&w.file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "cannot read watchlist `{}` at {}: {e}",
                    w.name,
                    path.display()
                )
            })?;
            Watchlist::parse(&w.name, &w.key, &text)
                .map_err(|e| format!("watchlist `{}` ({}): {e}", w.name, path.display()))
        })
        .collect()
}
