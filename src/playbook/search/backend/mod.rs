//! The search backend interface behind which query and calculations run, so a playbook gives the
//! same `ctx.payload` whether its logs are files on the sensor
//! ([`LocalBackend`](crate::playbook::io::local::LocalBackend), the I/O edge) or documents in an
//! OpenSearch/Elasticsearch cluster: [`opensearch`] translates the search into one `_search`
//! request shaped by the index's [`mapping`] (with pieces of [`dsl`]), [`response`] reads the
//! answer back into a payload, and [`crate::playbook::io::cluster`] sends it.

pub mod dsl;
pub mod mapping;
pub mod opensearch;
pub mod response;

use serde::Serialize;

use super::evaluator::{Payload, ReadStats};
use super::SearchSpec;

/// The result of a search, with what was read to get it.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutput {
    pub payload: Payload,
    pub stats: ReadStats,
    /// What was searched: files read, or the index queried.
    pub sources: Vec<String>,
    /// What the user should know about how the search went, e.g. a glob that matched no file.
    pub notes: Vec<String>,
    /// The request sent to a cluster, as it was sent.
    pub request: Option<serde_json::Value>,
}

/// Runs searches.
pub trait Backend {
    fn search(&self, spec: &SearchSpec<'_>) -> Result<SearchOutput, BackendError>;
}

#[derive(Debug, thiserror::Error, Serialize)]
pub enum BackendError {
    #[error(
        "cannot read {path}: {reason}; check the path in `source.paths` and the file's permissions"
    )]
    Read { path: String, reason: String },
    #[error("bad glob `{pattern}`: {reason}")]
    Glob { pattern: String, reason: String },
    #[error("cannot translate the search for OpenSearch: {0}")]
    Translate(String),
    #[error("the search backend failed: {0}")]
    Backend(String),
}
