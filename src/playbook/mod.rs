//! Threat-hunting playbooks: scheduled searches over sensor logs whose results trigger actions,
//! such as rendering and running `tcpreset` lines.
//!
//! Pure core (no I/O; the clock is a parameter):
//! - [`model`] and [`validate`]: the YAML file and its checks, giving a [`Playbook`].
//! - [`value`], [`source`], [`parse`]: field values, formats with their canonical field names, and
//!   reading one record (NDJSON, JSON, Zeek TSV) into only the fields a playbook uses.
//! - [`query`], [`calc`], [`search`]: the query, the calculations and the streaming evaluator that
//!   produces `ctx.payload`.
//! - [`engine`]: the search interface; the in-process engine and the OpenSearch translation.
//! - [`condition`], [`actions`], [`template`], [`command`], [`dedup`]: conditions, action plans,
//!   Mustache, Run Script checks and quoting, alert deduplication.
//! - [`schedule`], [`status`], [`watchlist`]: run times, last-run status, CSV watchlists.
//!
//! I/O edge: [`engine::local`] reads logs; [`run`] loads playbooks and watchlists and runs them;
//! [`exec`] runs commands, posts webhooks and writes alerts; [`scheduler`] is the schedule loop.

pub mod actions;
pub mod calc;
pub mod command;
pub mod condition;
pub mod dedup;
pub mod engine;
pub mod exec;
pub mod model;
pub mod parse;
pub mod query;
pub mod run;
pub mod schedule;
pub mod scheduler;
pub mod search;
pub mod source;
pub mod status;
pub mod template;
pub mod validate;
pub mod value;
pub mod watchlist;

use actions::Action;
use calc::Calc;
use condition::Condition;
use query::Query;
use schedule::Schedule;
use source::Format;

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
}

/// Where the records come from. Relative paths are relative to the playbook file.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub paths: Vec<String>,
    /// `None`: detected per file.
    pub format: Option<Format>,
    pub max_filtered: usize,
}

/// A CSV watchlist to load: its name, file, and the column whose values are its keys.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchlistSpec {
    pub name: String,
    pub file: String,
    pub key: String,
}
