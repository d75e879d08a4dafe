//! The I/O edge: everything that touches the operating system.
//!
//! - [`auth`]: who may use the control socket (SO_PEERCRED and group membership).
//! - [`metrics`]: the Prometheus text file.
//! - [`rules_file`]: the rules file in the state directory, written atomically.
//! - [`iface`]: interface checks (exists, up, has an address) with errors that say the fix.
//! - [`capture`]: one libpcap capture thread per sniff interface, feeding a [`crate::pipeline::Pipeline`].
//! - [`inject`]: raw IP sockets bound to reset interfaces.
//! - [`daemon`]: the rule table, the captures it needs, expiry, request handling, stats, and the
//!   watch over the reset interfaces.
//! - [`control`]: the Unix control socket (server side, tokio) and the client's call.
//! - [`replay_files`]: pcap files in and out for `tcpresetd --replay`; [`savefile`] reads classic pcap fast,
//!   through [`mapped`] windows of the file.
pub mod auth;
pub mod capture;
pub mod control;
pub mod daemon;
pub mod iface;
pub mod inject;
pub mod mapped;
pub mod metrics;
pub mod replay_files;
pub mod rules_file;
pub mod savefile;
