//! One log record, from bytes to the fields a playbook uses:
//! - [`value`]: field values, how they compare, group and print; [`time`]: timestamps.
//! - [`format`](mod@format): log formats and the canonical field names mapped onto each one's own.
//! - [`json`]: reading one JSON record into the planned fields (the extractor, its `serde_json`
//!   fallback, JSON paths).
//! - [`batch`]: the batch interface every format implements: a splitter on the reading thread,
//!   a parser on the workers, a sink for what they read; [`ndjson`], [`json_array`] and
//!   [`zeek`] (TSV) implement it.

pub mod batch;
pub mod format;
pub mod json;
pub mod json_array;
pub mod ndjson;
pub mod time;
pub mod value;
pub mod zeek;
