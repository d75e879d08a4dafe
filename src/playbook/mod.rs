//! Threat-hunting playbooks (issue 5).
pub mod calc;
pub mod command;
pub mod model;
pub mod parse;
pub mod query;
pub mod search;
pub mod source;
pub mod template;
pub mod value;
pub mod watchlist;
pub mod actions;
pub mod condition;
pub mod dedup;
pub mod schedule;
