//! The playbook runner's I/O edge, the only part that touches the system:
//! - [`files`]: `source.paths` and globs, opening logs (gzip too), their layout.
//! - [`pipeline`]: the reading thread, the worker pool and the merge every format goes through.
//! - [`local`]: the local search backend, a file at a time through the pipeline.
//! - [`load`]: reading a playbook file and its watchlists.
//! - [`run`]: one run of a playbook: search, conditions, actions (or their dry run).
//! - [`exec`]: running command lines (locally, or `ssh` for [`ssh`]), posting webhooks, writing
//!   alerts.
//! - [`ssh`]: a Run Script's lines on its sensors: the inventory, the shared connections, the
//!   sensors in parallel.
//! - [`http`]: the HTTP(S) client of webhooks and the cluster backend (`ureq` with rustls).
//! - [`cluster`]: the OpenSearch backend's edge: credentials, `_mapping`, one `_search`.
//! - [`scheduler`]: the schedule loop over a directory of playbooks.
//! - [`follow`]: the follower of a real-time playbook: its files as they grow, its window, its
//!   evaluations and suppressed actions.
//! - [`status_store`]: the status files the scheduler writes and `status` reads.

pub mod cluster;
pub mod exec;
pub mod files;
pub mod follow;
pub mod http;
pub mod load;
pub mod local;
pub mod pipeline;
pub mod run;
pub mod scheduler;
pub mod ssh;
pub mod status_store;
