//! tcpreset: cut the TCP connections of a host seen on a SPAN/TAP port by forging RSTs to both ends.
//!
//! The crate is a pure core wrapped by a thin I/O edge.
//!
//! Pure core (no sockets, the clock is a parameter):
//! - [`wire`]: zero-copy views of Ethernet (802.1Q/QinQ), Linux cooked capture, IPv4, IPv6 and TCP;
//!   the parsed [`wire::Segment`] summary and the RST builder with checksums.
//! - [`time`]: the [`time::Instant`] the core is clocked with (packet timestamps or the wall clock).
//! - [`syntax`]: the argument rules shared by the client and the daemon (engid, host, port, seconds).
//! - [`rules`]: the time-boxed rule table keyed by (engid, host, optional port).
//! - [`admit`]: whether a rule is admitted (protected hosts, `max_rules`, `max_seconds`, refresh).
//! - [`interfaces`]: the snapshot of the sensor's interfaces and the checks of a rule's interfaces.
//! - [`filter`]: the kernel prefilter (BPF expression) each capture runs.
//! - [`flows`]: the bounded table of open TCP flows, so silent connections can be reached.
//! - [`community_id`]: the Community ID v1 of a flow, carried by the audit lines.
//! - [`ecs`]: log events as Elastic Common Schema documents (`log_format = "ecs"`).
//! - [`reset`]: the decision: a segment, the rules and `now` give the RSTs to send, paced per flow.
//! - [`health`]: reset interface health: probe facts to states, transitions to report once,
//!   send errors that call for a new socket.
//! - [`pipeline`]: one processing path for live and replay: frame, segment, rules, RSTs.
//! - [`cli`]: the client's command line, parsed without syscalls, and its exit codes.
//! - [`config`]: the daemon's configuration file, its defaults and checks.
//! - [`net`]: address facts shared by the daemon and the playbooks: CIDR networks, global IPv6.
//! - [`ratelimit`]: the token bucket behind the global RST rate cap.
//! - [`saved`]: the rule table as saved across restarts.
//! - [`proto`]: the versioned control-socket requests and responses.
//! - [`replay`]: the offline engine behind `tcpresetd --replay` (a capture in, the RSTs out).
//! - [`playbook`]: threat-hunting playbooks over sensor logs, rendering `tcpreset` lines.
//!
//! I/O edge:
//! - [`io`]: interfaces, libpcap capture threads, raw-socket injection, the control socket and the
//!   daemon that ties them together.
pub mod admit;
pub mod cli;
pub mod community_id;
pub mod config;
pub mod ecs;
pub mod filter;
pub mod flows;
pub mod health;
pub mod interfaces;
pub mod io;
pub mod net;
pub mod pipeline;
pub mod playbook;
pub mod proto;
pub mod ratelimit;
pub mod replay;
pub mod reset;
pub mod rules;
pub mod saved;
pub mod syntax;
pub mod time;
pub mod wire;
