//! Threat-hunting playbooks: scheduled searches over sensor logs (or logs followed in real time)
//! whose results trigger actions, such as rendering and running `tcpreset` lines. The folders
//! are the pipeline, in order:
//!
//! - [`spec`]: the YAML file, its model and every check, giving a [`spec::Playbook`].
//! - [`schedule`]: when a playbook runs, when it is skipped or muted, how far back it looks.
//! - [`record`]: one log record: field values, timestamps, formats and their canonical field
//!   names, and reading batches of NDJSON lines, JSON arrays and Zeek TSV into the fields a
//!   playbook uses.
//! - [`search`]: the query, the calculations, watchlists, the line prefilter and the evaluator
//!   that turns records into `ctx.payload`; the [`search::backend::Backend`] trait and the
//!   OpenSearch translation.
//! - [`act`]: conditions, actions and their plans, Mustache templates, the Run Script command
//!   check, alert deduplication and a run's status.
//! - [`io`]: the only part that touches the system: log files and gzip, the worker pool that
//!   parses batches, the local backend, loading, running and scheduling playbooks, carrying out
//!   actions, and the status files.
//!
//! Everything outside [`io`] is pure: the clock and the file contents are parameters.

pub mod act;
pub mod io;
pub mod record;
pub mod schedule;
pub mod search;
pub mod spec;
