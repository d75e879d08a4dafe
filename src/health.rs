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
}

/// Whether RSTs can go out of an interface, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfaceState {
    Ready { ifindex: u32 },
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
            Some(f) => IfaceState::Ready { ifindex: f.ifindex },
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
    /// It can again, after `after` without.
    Recovered { after: Duration },
    /// It can, but it is a new interface under the same name (another ifindex).
    Replaced,
}

impl Change {
    /// Raw sockets bound to the interface must be opened afresh: `SO_BINDTODEVICE` holds an
    /// ifindex, and a recovered interface may be a recreated one.
    pub fn reopens_sockets(&self) -> bool {
        !matches!(self, Change::Lost(_))
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    state: IfaceState,
    since: Instant,
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
        let Some(entry) = self.ifaces.get_mut(iface) else {
            self.ifaces
                .insert(iface.to_owned(), Entry { state, since: now });
            return (!state.is_ready()).then_some(Change::Lost(state));
        };
        if entry.state == state {
            return None;
        }
        let change = match (entry.state, state) {
            (IfaceState::Ready { .. }, IfaceState::Ready { .. }) => Change::Replaced,
            (_, IfaceState::Ready { .. }) => Change::Recovered {
                after: now.saturating_since(entry.since),
            },
            (_, lost) => Change::Lost(lost),
        };
        *entry = Entry { state, since: now };
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
            IfaceState::Ready { ifindex: 7 }
        );
    }

    #[test]
    fn each_transition_is_reported_once_with_how_long_it_lasted() {
        let t = |ms: u64| Instant::from_micros(1_000_000_000 + ms * 1000);
        let ready = IfaceState::Ready { ifindex: 3 };
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
                after: Duration::from_millis(1000)
            })
        );
        assert!(back.unwrap().reopens_sockets());
        assert_eq!(w.observe("eth0", ready, t(4500)), None);
        let replaced = w.observe("eth0", IfaceState::Ready { ifindex: 9 }, t(5000));
        assert_eq!(replaced, Some(Change::Replaced));
        assert!(replaced.unwrap().reopens_sockets());
        assert!(!Change::Lost(IfaceState::Down).reopens_sockets());
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
