//! A playbook as its author wrote it and as the rest of the pipeline uses it: the YAML file
//! ([`model`]) goes through every check ([`check`]) and comes out as a [`Playbook`], or as every
//! problem with its line and what is expected instead.

pub mod check;
pub mod model;

use crate::playbook::act::action::Action;
use crate::playbook::act::condition::Condition;
use crate::playbook::record::format::Format;
use crate::playbook::schedule::Schedule;
use crate::playbook::search::calc::Calc;
use crate::playbook::search::query::Query;

/// A checked playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub schedule: Schedule,
    pub source: Source,
    pub watchlists: Vec<WatchlistSpec>,
    /// Every field the playbook reads, by id; id 0 is `timestamp`.
    pub fields: Vec<String>,
    pub query: Option<Query>,
    pub calcs: Vec<Calc>,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    /// What `check` reports without refusing the playbook: names its declared format's records
    /// do not carry (a sensor may add fields the format does not list).
    pub warnings: Vec<Problem>,
}

/// Where the records come from. Relative paths are relative to the playbook file.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub paths: Vec<String>,
    /// `None`: detected per file.
    pub format: Option<Format>,
    pub max_filtered: usize,
    /// Search this cluster instead of `paths`.
    pub opensearch: Option<OpenSearchSource>,
}

/// `source.opensearch`, checked. Secrets are named (a file or a variable), never held here.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSearchSource {
    /// `http(s)://host[:port][/prefix]`, without a trailing `/` and without user information.
    pub url: String,
    pub index: String,
    /// `None`: the format's own timestamp field (`timestamp`, Zeek's `ts`).
    pub time_field: Option<String>,
    pub auth: Auth,
    /// Trust only the certificates of this PEM file (relative to the playbook file).
    pub ca_file: Option<String>,
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Basic { user: String, password: Secret },
    ApiKey(Secret),
}

/// Where a credential is read at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Secret {
    /// A file (relative to the playbook file); its content, trimmed, is the secret.
    File(String),
    /// An environment variable of the runner.
    Env(String),
}

/// A CSV watchlist to load: its name, file, and the column whose values are its keys.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchlistSpec {
    pub name: String,
    pub file: String,
    pub key: String,
}

/// One problem in a playbook file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub message: String,
}

/// A playbook file that could not be loaded: every problem, with the file and line.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.lines().join("\n"))]
pub struct CheckError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl CheckError {
    pub fn lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| {
                if p.line > 0 {
                    format!("{}:{}: {}", self.file, p.line, p.message)
                } else {
                    format!("{}: {}", self.file, p.message)
                }
            })
            .collect()
    }
}
