//! Reset interface health: what a probe of an interface means for injection, which changes the
//! daemon reports (once per transition, never per packet), and what a failed `sendto` says.
//!
//! Pure: the I/O edge ([`crate::io::iface`]) probes the interfaces and passes the facts and `now`
//! in; the daemon logs the [`Change`]s and the capture threads reopen their raw sockets on
//! [`Change::reopens_sockets`] or on a [`SendFailure::StaleSocket`].
use crate::time::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a probe found about one interface that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFacts {
    pub ifindex: u32,
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_RUNNING`: carrier.
    pub running: bool,
    /// At least one IPv4 or IPv6 address.
    pub has_address: bool,
    /// An IPv6 address beyond link-local, which IPv6 RSTs need to be routed.
    pub has_global_v6: bool,
}

/// Whether RSTs can go out of an interface, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfaceState {
    /// RSTs can go out; `v6`: IPv6 ones too (a global IPv6 address).
    Ready {
        ifindex: u32,
        v6: bool,
    },
    Missing,
    Down,
    NoCarrier,
    NoAddress,
}

impl IfaceState {
    /// The state of a reset interface from a probe (`None`: no interface of that name).
    pub fn of_reset(facts: Option<&LinkFacts>) -> IfaceState {
        match facts {
            None => IfaceState::Missing,
            Some(f) if !f.up => IfaceState::Down,
            Some(f) if !f.running => IfaceState::NoCarrier,
            Some(f) if !f.has_address => IfaceState::NoAddress,
            Some(f) => IfaceState::Ready {
                ifindex: f.ifindex,
                v6: f.has_global_v6,
            },
        }
    }

    pub fn is_ready(&self) -> bool {
        matches!(self, IfaceState::Ready { .. })
    }

    /// A short name for stats and log fields.
    pub fn label(&self) -> &'static str {
        match self {
            IfaceState::Ready { .. } => "ready",
            IfaceState::Missing => "missing",
            IfaceState::Down => "down",
            IfaceState::NoCarrier => "no-carrier",
            IfaceState::NoAddress => "no-address",
        }
    }
}

/// A change worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The interface cannot carry RSTs (any more, or already when first watched).
    Lost(IfaceState),
    /// It can again, after `after` without; `lost_v6`: it had a global IPv6 address before and
    /// has none now (Linux removes them when a link goes down, unless `keep_addr_on_down`).
    Recovered { after: Duration, lost_v6: bool },
    /// It can, but it is a new interface under the same name (another ifindex).
    Replaced,
    /// Still ready, but it gained (`true`) or lost its global IPv6 address.
    Ipv6(bool),
}

impl Change {
    /// Raw sockets bound to the interface must be opened afresh: `SO_BINDTODEVICE` holds an
    /// ifindex, and a recovered interface may be a recreated one.
    pub fn reopens_sockets(&self) -> bool {
        matches!(self, Change::Recovered { .. } | Change::Replaced)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    state: IfaceState,
    since: Instant,
    /// Whether it had a global IPv6 address when it was last ready.
    had_v6: bool,
}

/// The last known state of each watched reset interface.
#[derive(Debug, Default)]
pub struct HealthWatch {
    ifaces: BTreeMap<String, Entry>,
}

impl HealthWatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the state `iface` has at `now`; returns the change to report, if it is one.
    pub fn observe(&mut self, iface: &str, state: IfaceState, now: Instant) -> Option<Change> {
        let v6_now = matches!(state, IfaceState::Ready { v6: true, .. });
        let Some(entry) = self.ifaces.get_mut(iface) else {
            let entry = Entry {
                state,
                since: now,
                had_v6: v6_now,
            };
            self.ifaces.insert(iface.to_owned(), entry);
            return (!state.is_ready()).then_some(Change::Lost(state));
        };
        if entry.state == state {
            return None;
        }
        let change = match (entry.state, state) {
            (IfaceState::Ready { ifindex: a, .. }, IfaceState::Ready { ifindex: b, .. })
                if a == b =>
            {
                Change::Ipv6(v6_now)
            }
            (IfaceState::Ready { .. }, IfaceState::Ready { .. }) => Change::Replaced,
            (_, IfaceState::Ready { .. }) => Change::Recovered {
                after: now.saturating_since(entry.since),
                lost_v6: entry.had_v6 && !v6_now,
            },
            (_, lost) => Change::Lost(lost),
        };
        let had_v6 = if state.is_ready() {
            v6_now
        } else {
            entry.had_v6
        };
        *entry = Entry {
            state,
            since: now,
            had_v6,
        };
        Some(change)
    }

    /// Stops watching the interfaces `keep` rejects (no rule names them any more).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.ifaces.retain(|name, _| keep(name));
    }

    /// Each watched interface, its state and since when.
    pub fn iter(&self) -> impl Iterator<Item = (&str, IfaceState, Instant)> {
        self.ifaces
            .iter()
            .map(|(name, e)| (name.as_str(), e.state, e.since))
    }
}

/// What a failed `sendto` on a reset interface's raw socket means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// The socket is bound to an ifindex that is gone (the interface was deleted, perhaps
    /// recreated): close it, and open a new one on the next send.
    StaleSocket,
    /// The interface is down, or cannot route or source the packet: keep the socket, the
    /// interface watch reports it, and sends work again when it returns.
    Unusable,
    /// Anything else (permissions, buffers): count and log it.
    Other,
}

impl SendFailure {
    pub fn of_errno(errno: i32) -> SendFailure {
        match errno {
            libc::ENODEV | libc::ENXIO => SendFailure::StaleSocket,
            libc::ENETDOWN | libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EADDRNOTAVAIL => {
                SendFailure::Unusable
            }
            _ => SendFailure::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(up: bool, running: bool, has_address: bool) -> LinkFacts {
        LinkFacts {
            ifindex: 7,
            up,
            running,
            has_address,
            has_global_v6: has_address,
        }
    }

    #[test]
    fn a_reset_interface_needs_to_exist_be_up_with_carrier_and_an_address() {
        assert_eq!(IfaceState::of_reset(None), IfaceState::Missing);
        let of = |f: LinkFacts| IfaceState::of_reset(Some(&f));
        assert_eq!(of(facts(false, false, true)), IfaceState::Down);
        assert_eq!(of(facts(true, false, true)), IfaceState::NoCarrier);
        assert_eq!(of(facts(true, true, false)), IfaceState::NoAddress);
        assert_eq!(
            of(facts(true, true, true)),
            IfaceState::Ready {
                ifindex: 7,
                v6: true
            }
        );
        let v4_only = LinkFacts {
            has_global_v6: false,
            ..facts(true, true, true)
        };
        assert_eq!(
            of(v4_only),
            IfaceState::Ready {
                ifindex: 7,
                v6: false
            }
        );
    }

    #[test]
    fn each_transition_is_reported_once_with_how_long_it_lasted() {
        let t = |ms: u64| Instant::from_micros(1_000_000_000 + ms * 1000);
        let ready = IfaceState::Ready {
            ifindex: 3,
            v6: true,
        };
        let mut w = HealthWatch::new();
        assert_eq!(
            w.observe("eth0", ready, t(0)),
            None,
            "a ready start is quiet"
        );
        assert_eq!(w.observe("eth0", ready, t(500)), None);
        assert_eq!(
            w.observe("eth0", IfaceState::Down, t(1000)),
            Some(Change::Lost(IfaceState::Down))
        );
        for ms in [1500, 2000, 2500] {
            assert_eq!(
                w.observe("eth0", IfaceState::Down, t(ms)),
                None,
                "not again"
            );
        }
        assert_eq!(
            w.observe("eth0", IfaceState::NoAddress, t(3000)),
            Some(Change::Lost(IfaceState::NoAddress)),
            "another problem is another transition"
        );
        let back = w.observe("eth0", ready, t(4000));
        assert_eq!(
            back,
            Some(Change::Recovered {
                after: Duration::from_millis(1000),
                lost_v6: false
            })
        );
        assert!(back.unwrap().reopens_sockets());
        assert_eq!(w.observe("eth0", ready, t(4500)), None);
        let replaced = w.observe(
            "eth0",
            IfaceState::Ready {
                ifindex: 9,
                v6: true,
            },
            t(5000),
        );
        assert_eq!(replaced, Some(Change::Replaced));
        assert!(replaced.unwrap().reopens_sockets());
        assert!(!Change::Lost(IfaceState::Down).reopens_sockets());
    }

    #[test]
    fn an_ipv6_address_lost_over_a_link_flap_is_reported() {
        // Linux removes an interface's IPv6 addresses when its link goes down: back up, it
        // routes IPv4 RSTs again, but not IPv6 ones until an address is added.
        let t = |ms: u64| Instant::from_micros(1_000_000_000 + ms * 1000);
        let both = IfaceState::Ready {
            ifindex: 3,
            v6: true,
        };
        let v4 = IfaceState::Ready {
            ifindex: 3,
            v6: false,
        };
        let mut w = HealthWatch::new();
        assert_eq!(w.observe("eth0", both, t(0)), None);
        assert_eq!(
            w.observe("eth0", IfaceState::Down, t(100)),
            Some(Change::Lost(IfaceState::Down))
        );
        let back = w.observe("eth0", v4, t(600));
        assert_eq!(
            back,
            Some(Change::Recovered {
                after: Duration::from_millis(500),
                lost_v6: true
            })
        );
        assert_eq!(w.observe("eth0", both, t(900)), Some(Change::Ipv6(true)));
        assert!(!Change::Ipv6(true).reopens_sockets());
        assert_eq!(w.observe("eth0", v4, t(1000)), Some(Change::Ipv6(false)));
        // An interface that never had IPv6 does not lose it.
        let mut w = HealthWatch::new();
        assert_eq!(w.observe("eth2", v4, t(0)), None);
        w.observe("eth2", IfaceState::Down, t(10));
        assert_eq!(
            w.observe("eth2", v4, t(20)),
            Some(Change::Recovered {
                after: Duration::from_millis(10),
                lost_v6: false
            })
        );
    }

    #[test]
    fn an_interface_already_broken_when_first_watched_is_reported_and_forgotten_on_request() {
        let now = Instant::from_micros(5_000_000);
        let mut w = HealthWatch::new();
        assert_eq!(
            w.observe("eth2", IfaceState::Missing, now),
            Some(Change::Lost(IfaceState::Missing))
        );
        assert_eq!(w.iter().count(), 1);
        w.retain(|name| name != "eth2");
        assert_eq!(w.iter().count(), 0);
        assert_eq!(
            w.observe("eth2", IfaceState::Missing, now),
            Some(Change::Lost(IfaceState::Missing)),
            "watched afresh"
        );
    }

    #[test]
    fn send_errors_say_whether_to_reopen_the_socket() {
        // Measured on Linux: a raw socket bound with SO_BINDTODEVICE gets ENETUNREACH while its
        // interface is down, and ENODEV once the interface is deleted, even if it is recreated.
        assert_eq!(
            SendFailure::of_errno(libc::ENODEV),
            SendFailure::StaleSocket
        );
        assert_eq!(SendFailure::of_errno(libc::ENXIO), SendFailure::StaleSocket);
        for e in [
            libc::ENETDOWN,
            libc::ENETUNREACH,
            libc::EHOSTUNREACH,
            libc::EADDRNOTAVAIL,
        ] {
            assert_eq!(SendFailure::of_errno(e), SendFailure::Unusable, "{e}");
        }
        assert_eq!(SendFailure::of_errno(libc::EPERM), SendFailure::Other);
        assert_eq!(SendFailure::of_errno(libc::ENOBUFS), SendFailure::Other);
    }
}
