//! What the daemon reports and watches: one look at the interfaces every half second serves the
//! reset interfaces its rules name (logged once per change) and tracking (captures start and
//! stop as interfaces appear, come up, go down or gain an address); and the counters of
//! `tcpreset stats` and `tcpreset show`.
use super::{error, Daemon};
use crate::health::Change;
use crate::interfaces::Links;
use crate::io::capture::CaptureStats;
use crate::proto::{
    CapsView, CaptureView, ErrorKind, ResetIfaceView, ResetView, Response, RuleResets, ShowRequest,
    StatsView,
};
use crate::syntax;
use crate::time::Instant;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// How often the interfaces are looked at (a poll of `getifaddrs`, cheap at this rate).
pub const RESET_IF_PROBE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// What a reset interface without a global IPv6 address means, and the fix.
const V6_GONE: &str = "; it has no global IPv6 address, so RSTs to IPv6 hosts fail until one is added (Linux removes IPv6 addresses when a link goes down, unless net.ipv6.conf.IFACE.keep_addr_on_down=1)";

impl Daemon {
    /// Looks at the interfaces once: the reset interfaces' health, then tracking.
    pub fn watch_interfaces(&self, now: Instant) {
        match self.sensor.links() {
            Ok(links) => {
                self.observe_reset_interfaces(&links, now);
                self.track_interfaces(&links);
            }
            Err(e) => tracing::warn!(error = %e, "cannot look at the interfaces"),
        }
    }

    /// Compares the reset interfaces the rules name with `probe` and logs each change of their
    /// state: a warning when one cannot carry RSTs, a line when it can again (the capture
    /// threads then reopen their raw sockets).
    pub(super) fn observe_reset_interfaces(&self, probe: &Links, now: Instant) {
        let names = self.lock().table.reset_interfaces();
        if names.is_empty() {
            self.lock().health.retain(|_| false);
            return;
        }
        self.lock().health.retain(|name| names.contains(name));
        self.observe_these(probe, &names, now);
    }

    /// [`Self::observe_reset_interfaces`] for the reset interfaces `names` alone (a new rule's).
    pub(super) fn observe_these(&self, probe: &Links, names: &BTreeSet<String>, now: Instant) {
        let mut registry = self.lock();
        for name in names {
            let now_state = probe.reset_state(name);
            let Some(change) = registry.health.observe(name, now_state, now) else {
                continue;
            };
            let rules = registry
                .table
                .iter()
                .filter(|r| r.reset_if == *name)
                .count();
            let failed = self.egress.failures(name);
            match change {
                Change::Lost(lost) => {
                    let problem = probe
                        .reset_problem(name, lost)
                        .map_or_else(|| lost.label().to_owned(), |e| e.to_string());
                    tracing::warn!(
                        event = "reset interface lost", reset_if = %name, state = lost.label(), rules,
                        "{problem}; the RSTs of {rules} rule(s) through it fail until it is back"
                    );
                }
                Change::Recovered { after, lost_v6 } => {
                    let v6 = if lost_v6 { V6_GONE } else { "" };
                    tracing::info!(
                        event = "reset interface recovered", reset_if = %name, rules, send_failures = failed,
                        "reset interface '{name}' is back after {:.1} s: RSTs go out again ({failed} segments could not be sent meanwhile){v6}",
                        after.as_secs_f64()
                    )
                }
                Change::Ipv6(true) => tracing::info!(
                    event = "reset interface ipv6", reset_if = %name,
                    "reset interface '{name}' has a global IPv6 address again: IPv6 RSTs go out"
                ),
                Change::Ipv6(false) => tracing::warn!(
                    event = "reset interface ipv6", reset_if = %name,
                    "reset interface '{name}' lost its global IPv6 address{V6_GONE}"
                ),
                Change::Replaced => tracing::info!(
                    event = "reset interface replaced", reset_if = %name, rules,
                    "reset interface '{name}' is a new interface of the same name: raw sockets reopened"
                ),
            }
            if change.reopens_sockets() {
                self.egress.reset_epoch.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Daemon-wide counters at `now`.
    pub fn stats(&self, now: Instant) -> StatsView {
        let registry = self.lock();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let interfaces: Vec<CaptureView> = registry
            .captures
            .iter()
            .map(|(iface, open)| {
                let s = open.capture.stats();
                CaptureView {
                    iface: iface.clone(),
                    tracked: registry.tracked.contains(iface),
                    since_unix: open.since.as_secs_f64(),
                    frames: load(&s.frames),
                    matched: load(&s.matched),
                    rsts_sent: load(&s.rsts_sent),
                    probes_sent: load(&s.probes_sent),
                    inject_errors: load(&s.inject_errors),
                    flows: load(&s.flows),
                    flows_refused: load(&s.flows_refused),
                    pcap_received: load(&s.pcap_received),
                    pcap_dropped: load(&s.pcap_dropped),
                    pcap_if_dropped: load(&s.pcap_if_dropped),
                    restarts: load(&s.restarts),
                }
            })
            .collect();
        let sum = |f: fn(&CaptureStats) -> &AtomicU64| {
            registry
                .captures
                .values()
                .map(|o| load(f(o.capture.stats())))
                .sum::<u64>()
        };
        StatsView {
            uptime_secs: now.saturating_since(self.started).as_secs_f64(),
            rules_active: registry.table.len(),
            flows_tracked: self.flow_budget.used() as u64,
            max_flows: self.flow_budget.max() as u64,
            rsts_sent: interfaces.iter().map(|i| i.rsts_sent).sum(),
            probes_sent: interfaces.iter().map(|i| i.probes_sent).sum(),
            connection_ends_reset: registry.table.iter().map(|r| r.stats.ends_reset()).sum(),
            caps: CapsView {
                rate_limited: load(&self.egress.rate_limited),
                over_budget: sum(|s| &s.over_budget),
                protected_skipped: sum(|s| &s.protected_skipped),
                refused_max_rules: load(&self.refusals.max_rules),
                refused_max_seconds: load(&self.refusals.max_seconds),
                refused_protected: load(&self.refusals.protected),
                refused_unauthorized: load(&self.refusals.unauthorized),
                refused_interface: load(&self.refusals.interface),
            },
            persistence: self.persistence(),
            reset_interfaces: registry
                .health
                .iter()
                .map(|(name, s, since)| ResetIfaceView {
                    iface: name.to_owned(),
                    state: s.label().to_owned(),
                    since_unix: since.as_secs_f64(),
                    send_failures: self.egress.failures(name),
                })
                .collect(),
            interfaces,
        }
    }

    /// The connection ends each rule `show` selects has reset.
    pub(super) fn show(&self, show: &ShowRequest, now: Instant) -> Response {
        let host = match show.host.as_deref().map(syntax::host).transpose() {
            Ok(h) => h,
            Err(e) => return error(ErrorKind::BadRequest, e.to_string()),
        };
        let registry = self.lock();
        let rules: Vec<RuleResets> = registry
            .table
            .iter()
            .filter(|r| show.engid.as_ref().is_none_or(|e| *e == r.key.engid))
            .filter(|r| host.is_none_or(|h| h == r.key.host))
            .map(|r| RuleResets {
                rule: self.view(r, now),
                ends_reset: r.stats.ends_reset(),
                resets: r
                    .stats
                    .resets()
                    .into_iter()
                    .map(|x| ResetView {
                        at_unix: x.at.as_secs_f64(),
                        end: endpoint(x.end),
                        peer: endpoint(x.peer),
                    })
                    .collect(),
            })
            .collect();
        if rules.is_empty() {
            return error(
                ErrorKind::NotFound,
                "no live rule matches; see 'tcpreset list'",
            );
        }
        Response::Shown { rules }
    }
}

fn endpoint((ip, port): (std::net::IpAddr, u16)) -> String {
    if ip.is_ipv6() {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}
