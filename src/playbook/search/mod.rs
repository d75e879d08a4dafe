//! Searching records: the [`query`], the calculations ([`calc`]) and [`watchlist`]s they may
//! use, the [`prefilter`] that skips lines a query cannot match, and the [`evaluator`] that turns
//! records into `ctx.payload`; the [`window`] of a real-time playbook keeps the hits of its
//! lookback and evaluates them as new records arrive. A [`backend`] runs a [`SearchSpec`] over logs: the local one in
//! [`crate::playbook::io::local`], or an OpenSearch cluster.

pub mod backend;
pub mod calc;
pub mod evaluator;
pub mod prefilter;
pub mod query;
pub mod watchlist;
pub mod window;

use serde::Serialize;

use calc::Calc;
use query::Query;
use watchlist::Watchlist;

/// Field id 0 of every playbook is `timestamp`.
pub const TIMESTAMP_FIELD: usize = 0;

/// The records a run looks at: `from <= timestamp < to`, in microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from_micros: i64,
    pub to_micros: i64,
}

/// What to search for: the parts of a playbook a backend needs.
#[derive(Debug, Clone, Copy)]
pub struct SearchSpec<'p> {
    pub fields: &'p [String],
    pub query: Option<&'p Query>,
    pub calcs: &'p [Calc],
    pub watchlists: &'p [Watchlist],
    pub window: Window,
    pub max_filtered: usize,
}
