//! The I/O edge: everything that touches the operating system.
//!
//! - [`auth`]: who may use the control socket (SO_PEERCRED and group membership).
//! - [`metrics`]: the Prometheus text file.
//! - [`rules_file`]: the rules snapshot in the state directory, written atomically.
//! - [`journal`]: the journal of rule changes since the snapshot, with group commit.
//! - [`tracked_file`]: the sniff interfaces rules have named, kept in the state directory.
//! - [`iface`]: the snapshot of the interfaces (getifaddrs), checked by [`crate::interfaces`].
//! - [`sensor`]: the seam between the daemon and the host (interfaces, reset path, captures).
//! - [`capture`]: one libpcap capture thread per sniff interface, feeding a [`crate::pipeline::Pipeline`].
//! - [`inject`]: raw IP sockets bound to reset interfaces.
//! - [`daemon`]: the rule table, the captures it and tracking need, expiry, request handling,
//!   stats, and the one watch over the interfaces (tracking and reset interface health).
//! - [`control`]: the Unix control socket: binding it, the server (tokio), the client's call.
//! - [`service`]: `tcpresetd` as a service: signals, systemd notifications, the timers.
//! - [`logging`]: the log subscriber (text or JSON lines on stderr).
//! - [`replay_files`]: pcap files in and out for `tcpresetd --replay`; [`savefile`] reads classic pcap fast,
//!   through [`mapped`] windows of the file.
pub mod auth;
pub mod capture;
pub mod control;
pub mod daemon;
pub mod iface;
pub mod inject;
pub mod journal;
pub mod logging;
pub mod mapped;
pub mod metrics;
pub mod replay_files;
pub mod rules_file;
pub mod savefile;
pub mod sensor;
pub mod service;
pub mod tracked_file;
