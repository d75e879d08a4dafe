//! Acting on a search's result, decided without side effects:
//! - [`condition`]: Compare Value and Compare List, and the result rows actions iterate over.
//! - [`action`]: actions, the [`action::Plan`] of what each will do in a run, and how a dry run
//!   describes it.
//! - [`template`]: Mustache, keeping literal text apart from substituted values.
//! - [`command`]: the Run Script check of each rendered line (the `tcpreset` grammar and policy),
//!   shell quoting.
//! - [`fleet`]: where lines run: locally, or on one or many sensors over SSH (a list or an
//!   inventory), routed by a record field or not, and the `ssh` argv.
//! - [`dedup`]: Create Alert deduplication.
//! - [`suppress`]: real-time playbooks act once per result within a span, not once per batch.
//! - [`status`]: what a run did, as the scheduler stores it and `tcpreset-hunt status` shows it.

pub mod action;
pub mod command;
pub mod condition;
pub mod dedup;
pub mod fleet;
pub mod status;
pub mod suppress;
pub mod template;
