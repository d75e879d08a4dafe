//! Watchlists: CSV tables keyed by one column (a key cell may list several keys, `"22,2222"`).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value as Json;

/// A parsed watchlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watchlist {
    pub name: String,
    rows: HashMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WatchlistError {
    #[error("line {line}: unterminated quoted cell; close the quote or remove it")]
    Unterminated { line: usize },
    #[error("the key column `{key}` is not in the header ({header}); set `key:` to one of those columns")]
    NoKeyColumn { key: String, header: String },
    #[error("the file is empty; a watchlist needs a header line and rows")]
    Empty,
}

impl Watchlist {
    /// Parses CSV text with a header line. Cells may be quoted with `"` (a doubled `""` is a quote).
    pub fn parse(name: &str, key: &str, text: &str) -> Result<Watchlist, WatchlistError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or(WatchlistError::Empty)?;
        let header = split_csv(header).ok_or(WatchlistError::Unterminated { line: 1 })?;
        let key_col =
            header
                .iter()
                .position(|h| h == key)
                .ok_or_else(|| WatchlistError::NoKeyColumn {
                    key: key.to_string(),
                    header: header.join(", "),
                })?;
        let mut rows = HashMap::new();
        for (i, line) in lines {
            let cells = split_csv(line).ok_or(WatchlistError::Unterminated { line: i + 1 })?;
            let row: BTreeMap<String, String> =
                header.iter().cloned().zip(cells.iter().cloned()).collect();
            for k in cells.get(key_col).map_or("", String::as_str).split(',') {
                rows.entry(k.trim().to_string())
                    .or_insert_with(|| row.clone());
            }
        }
        Ok(Watchlist {
            name: name.to_string(),
            rows,
        })
    }

    /// Every key, sorted (for translating `in_watchlist` into a search request).
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.rows.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    pub fn row(&self, key: &str) -> Option<&BTreeMap<String, String>> {
        self.rows.get(key)
    }

    /// The row as JSON, for templates (`{{watchlist.severity}}`).
    pub fn row_json(&self, key: &str) -> Option<Json> {
        self.row(key).map(|r| {
            Json::Object(
                r.iter()
                    .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                    .collect(),
            )
        })
    }
}

fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            (',', false) => cells.push(std::mem::take(&mut cell).trim().to_string()),
            (c, _) => cell.push(c),
        }
    }
    if quoted {
        return None;
    }
    cells.push(cell.trim().to_string());
    Some(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_by_each_listed_key() {
        let text =
            "port,protocol,threshold,name\n\"22,2222\",tcp,100,SSH\n3389,tcp,5,\"RDP, remote\"\n";
        let w = Watchlist::parse("ports", "port", text).unwrap();
        assert_eq!(w.row("2222").unwrap()["threshold"], "100");
        assert_eq!(w.row("22").unwrap()["name"], "SSH");
        assert_eq!(w.row("3389").unwrap()["name"], "RDP, remote");
        assert!(w.row("80").is_none());
        assert_eq!(w.row_json("3389").unwrap()["threshold"], "5");
        assert!(matches!(
            Watchlist::parse("x", "nope", text),
            Err(WatchlistError::NoKeyColumn { .. })
        ));
        assert_eq!(
            Watchlist::parse("x", "a", "a\n\"open\n"),
            Err(WatchlistError::Unterminated { line: 2 })
        );
    }
}
