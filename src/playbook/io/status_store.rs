//! The status files: `STATUS_DIR/<playbook file name>.json`, written atomically by the
//! scheduler (and `run --status-dir`), read by `tcpreset-hunt status`.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::playbook::act::status::Status;

/// The status file of a playbook file: `STATUS_DIR/<file name>.json`.
pub fn status_path(status_dir: &Path, playbook_file: &Path) -> PathBuf {
    let name = playbook_file
        .file_name()
        .map_or_else(|| "playbook".into(), |n| n.to_string_lossy().to_string());
    status_dir.join(format!("{name}.json"))
}

/// Writes a status file atomically.
pub fn write_status(status_dir: &Path, status: &Status) -> std::io::Result<()> {
    std::fs::create_dir_all(status_dir)?;
    let path = status_path(status_dir, Path::new(&status.file));
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, path)
}

/// Reads every status file in `status_dir`, sorted by file name.
pub fn read_statuses(status_dir: &Path) -> std::io::Result<Vec<Status>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(status_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let status: Status = serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", f.display()),
            )
        })?;
        out.push(status);
    }
    Ok(out)
}

/// The JSON of a status for `--json` output.
pub fn status_json(status: &Status) -> Json {
    serde_json::to_value(status).unwrap_or(Json::Null)
}
