//! The sensor's interfaces as one snapshot ([`Links`]: index, flags, addresses) and what it means
//! for a rule: a sniff interface must exist and be up with carrier; a reset interface must also
//! have an IP address of the host's family, since the kernel routes the RSTs and resolves link
//! addresses from it. Every error says the fix. Which interfaces the daemon tracks without a
//! rule ([`tracked`]) is decided here too (pure; [`crate::io::iface`] takes the snapshot).
use crate::config::Track;
use crate::health::{IfaceState, LinkFacts};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

/// What is wrong with an interface, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfaceError {
    #[error("{role} interface '{name}' does not exist on this sensor (it has: {known}); pass one of those")]
    Unknown {
        role: Role,
        name: String,
        known: String,
    },
    #[error("{role} interface '{name}' is down; bring it up with 'ip link set {name} up'")]
    Down { role: Role, name: String },
    #[error("{role} interface '{name}' has no carrier (link down: cable, SPAN session or peer); fix the link and retry")]
    NoCarrier { role: Role, name: String },
    #[error("reset interface '{name}' has no IP address; give it one (e.g. 'ip addr add 192.0.2.5/24 dev {name}') or pass an interface that has one to -o")]
    NoAddress { name: String },
    #[error("reset interface '{name}' has no {family} address, so the kernel has no route through it to {host}; give it one (e.g. 'ip addr add {example} dev {name}') or pass an interface that has one to -o")]
    NoRoute {
        name: String,
        family: &'static str,
        host: IpAddr,
        example: &'static str,
    },
    #[error("{role} interface '{name}' is a loopback interface: it neither sees the monitored traffic nor reaches the hosts; pass the monitoring port to -i and the interface toward the hosts to -o")]
    Loopback { role: Role, name: String },
    #[error("HOST {host} is the broadcast address of {subnet} on {iface}, not one host; pass the address of the host to isolate")]
    Broadcast {
        host: IpAddr,
        subnet: String,
        iface: String,
    },
    #[error("could not list interfaces (getifaddrs: {0})")]
    List(nix::Error),
}

/// Which side of the sensor an interface plays, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Sniff,
    Reset,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Sniff => "sniff",
            Role::Reset => "reset",
        })
    }
}

/// One interface as the kernel reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_RUNNING`: carrier.
    pub running: bool,
    /// `IFF_LOOPBACK`.
    pub loopback: bool,
    /// A port of a bridge or a bond (it has a master device): a container's or a VM's veth, a
    /// bond member, not a SPAN/TAP port of its own.
    pub enslaved: bool,
    pub addrs: Vec<IpAddr>,
}

impl Link {
    /// An address beyond the link: IPv6 RSTs need one to be routed (link-local and loopback
    /// addresses do not count; unique local ones do).
    pub fn has_routable_v6(&self) -> bool {
        self.addrs.iter().any(|a| match a {
            IpAddr::V6(v6) => crate::net::is_global_v6(v6),
            IpAddr::V4(_) => false,
        })
    }

    /// Whether it looks like a SPAN/TAP port: up, not loopback, not a bridge or bond port, and
    /// no address of its own that traffic could be routed to (no IPv4 address, no global IPv6
    /// one; link-local does not count).
    pub fn could_be_sniff_port(&self) -> bool {
        self.up
            && !self.loopback
            && !self.enslaved
            && !self.addrs.iter().any(|a| match a {
                IpAddr::V4(_) => true,
                IpAddr::V6(v6) => crate::net::is_global_v6(v6),
            })
    }

    /// What the reset interface health watch needs to know.
    pub fn facts(&self) -> LinkFacts {
        LinkFacts {
            ifindex: self.ifindex,
            up: self.up,
            running: self.running,
            has_address: !self.addrs.is_empty(),
            has_global_v6: self.has_routable_v6(),
        }
    }
}

/// Every interface of the sensor at one moment, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    by_name: BTreeMap<String, Link>,
    /// The broadcast address of each connected IPv4 subnet, with the subnet and its interface.
    broadcasts: BTreeMap<Ipv4Addr, (String, String)>,
}

impl FromIterator<(String, Link)> for Links {
    fn from_iter<I: IntoIterator<Item = (String, Link)>>(links: I) -> Self {
        Links {
            by_name: links.into_iter().collect(),
            broadcasts: BTreeMap::new(),
        }
    }
}

impl Links {
    /// Notes that `iface` has `addr`/`prefix`, so the subnet's broadcast address is no host.
    pub fn with_v4_subnet(mut self, iface: &str, addr: Ipv4Addr, prefix: u8) -> Self {
        if let Some(b) = subnet_broadcast(addr, prefix) {
            let net = Ipv4Addr::from(u32::from(b) & !(u32::MAX >> prefix));
            let names = (format!("{net}/{prefix}"), iface.to_owned());
            self.broadcasts.insert(b, names);
        }
        self
    }

    /// Refuses the broadcast address of a subnet the sensor is connected to.
    pub fn check_host(&self, host: IpAddr) -> Result<(), IfaceError> {
        let IpAddr::V4(v4) = host else {
            return Ok(());
        };
        match self.broadcasts.get(&v4) {
            Some((subnet, iface)) => Err(IfaceError::Broadcast {
                host,
                subnet: subnet.clone(),
                iface: iface.clone(),
            }),
            None => Ok(()),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Link> {
        self.by_name.get(name)
    }

    /// Each interface by name, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Link)> {
        self.by_name.iter().map(|(n, l)| (n.as_str(), l))
    }

    /// The interfaces that could be SPAN/TAP ports, in name order (`track = "auto"`).
    pub fn sniff_ports(&self) -> impl Iterator<Item = &str> {
        self.iter()
            .filter(|(_, l)| l.could_be_sniff_port())
            .map(|(n, _)| n)
    }

    /// Every address of the sensor (it protects its own addresses).
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.by_name.values().flat_map(|l| l.addrs.iter().copied())
    }

    /// Whether RSTs can go out of `name`.
    pub fn reset_state(&self, name: &str) -> IfaceState {
        IfaceState::of_reset(self.get(name).map(Link::facts).as_ref())
    }

    /// What is wrong with reset interface `name` in `state`, and the fix.
    pub fn reset_problem(&self, name: &str, state: IfaceState) -> Option<IfaceError> {
        self.problem(Role::Reset, name, state)
    }

    /// The error for an interface in `state` playing `role`, if that state is one.
    fn problem(&self, role: Role, name: &str, state: IfaceState) -> Option<IfaceError> {
        let name = name.to_owned();
        match state {
            IfaceState::Ready { .. } => None,
            IfaceState::Missing => Some(IfaceError::Unknown {
                role,
                name,
                known: self.by_name.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
            IfaceState::Down => Some(IfaceError::Down { role, name }),
            IfaceState::NoCarrier => Some(IfaceError::NoCarrier { role, name }),
            IfaceState::NoAddress if role == Role::Sniff => None,
            IfaceState::NoAddress => Some(IfaceError::NoAddress { name }),
        }
    }

    fn check(&self, role: Role, name: &str) -> Result<(), IfaceError> {
        if self.get(name).is_some_and(|l| l.loopback) {
            let name = name.to_owned();
            return Err(IfaceError::Loopback { role, name });
        }
        let state = self.reset_state(name);
        self.problem(role, name, state).map_or(Ok(()), Err)
    }

    /// Checks both interfaces of a rule and, given its host, that the reset interface has an
    /// address of the host's family.
    pub fn check_rule(
        &self,
        sniff_if: &str,
        reset_if: &str,
        host: Option<IpAddr>,
    ) -> Result<(), IfaceError> {
        self.check(Role::Sniff, sniff_if)?;
        self.check(Role::Reset, reset_if)?;
        if let Some(host) = host {
            self.check_host(host)?;
        }
        match (host, self.get(reset_if)) {
            (Some(host), Some(link)) => check_family(reset_if, &link.addrs, host),
            _ => Ok(()),
        }
    }
}

/// The broadcast address of the IPv4 subnet `addr`/`prefix`; none for /31 and /32, whose
/// addresses are all hosts (RFC 3021).
pub fn subnet_broadcast(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    (prefix <= 30).then(|| Ipv4Addr::from(u32::from(addr) | (u32::MAX >> prefix)))
}

/// The interfaces to capture now without a rule: those `track` names (every possible sniff
/// port for [`Track::Auto`]) and those a rule once named (`remembered`), as far as they exist
/// and are up (a capture on a missing or down interface cannot run). `track = []` turns
/// tracking off: then captures run only while rules name them.
pub fn tracked(track: &Track, remembered: &BTreeSet<String>, links: &Links) -> BTreeSet<String> {
    let up = |name: &str| links.get(name).is_some_and(|l| l.up);
    let configured: Vec<&str> = match track {
        Track::List(names) if names.is_empty() => return BTreeSet::new(),
        Track::Auto => links.sniff_ports().collect(),
        Track::List(names) => names.iter().map(String::as_str).filter(|n| up(n)).collect(),
    };
    let remembered = remembered.iter().map(String::as_str).filter(|n| up(n));
    configured
        .into_iter()
        .chain(remembered)
        .map(str::to_owned)
        .collect()
}

/// A rule for `host` needs an address of the same family on the reset interface (a routable one
/// for IPv6): the RSTs are routed through it, and without one there is no route.
pub fn check_family(reset_if: &str, addrs: &[IpAddr], host: IpAddr) -> Result<(), IfaceError> {
    let usable = |a: &IpAddr| match (a, host) {
        (IpAddr::V4(_), IpAddr::V4(_)) => true,
        (IpAddr::V6(v6), IpAddr::V6(_)) => crate::net::is_global_v6(v6),
        _ => false,
    };
    if addrs.iter().any(usable) {
        return Ok(());
    }
    let (family, example) = match host {
        IpAddr::V4(_) => ("IPv4", "192.0.2.5/24"),
        IpAddr::V6(_) => ("global IPv6", "2001:db8::5/64"),
    };
    Err(IfaceError::NoRoute {
        name: reset_if.to_owned(),
        family,
        host,
        example,
    })
}

/// Tests: an interface that is up and running, not loopback, with `addrs`.
#[cfg(test)]
pub(crate) fn up_link(ifindex: u32, addrs: &[&str]) -> Link {
    Link {
        ifindex,
        up: true,
        running: true,
        loopback: false,
        enslaved: false,
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A sensor like the lab's: `lo`, a sniff port `eth1` (link-local only), a reset port `eth0`.
    fn sensor() -> Links {
        let link = super::up_link;
        [
            (
                "lo".to_owned(),
                Link {
                    loopback: true,
                    ..link(1, &["127.0.0.1", "::1"])
                },
            ),
            ("eth0".to_owned(), link(2, &["10.77.0.254", "fe80::2"])),
            ("eth1".to_owned(), link(3, &["fe80::3"])),
            ("eth4".to_owned(), link(6, &[])),
            (
                "eth2".to_owned(),
                Link {
                    running: false,
                    ..link(4, &[])
                },
            ),
            (
                "eth3".to_owned(),
                Link {
                    up: false,
                    running: false,
                    ..link(5, &["10.78.0.254"])
                },
            ),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn a_host_needs_an_address_of_its_family_on_the_reset_interface() {
        let v4_only = [ip("10.77.0.254"), ip("fe80::1"), ip("::1")];
        assert!(check_family("eth0", &v4_only, ip("10.77.0.1")).is_ok());
        let err = check_family("eth0", &v4_only, ip("fd77::1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "reset interface 'eth0' has no global IPv6 address, so the kernel has no route \
             through it to fd77::1; give it one (e.g. 'ip addr add 2001:db8::5/64 dev eth0') or \
             pass an interface that has one to -o"
        );
        let v6_only = [ip("fd77::fe")];
        assert!(check_family("eth0", &v6_only, ip("fd77::1")).is_ok());
        let err = check_family("eth0", &v6_only, ip("10.77.0.1")).unwrap_err();
        assert!(err.to_string().contains("no IPv4 address"), "{err}");
    }

    #[test]
    fn a_rule_needs_a_live_sniff_interface_and_a_routable_reset_interface() {
        let links = sensor();
        let host = Some(ip("10.77.0.1"));
        assert_eq!(links.check_rule("eth1", "eth0", host), Ok(()));
        let err = links.check_rule("eth9", "eth0", host).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sniff interface 'eth9' does not exist on this sensor (it has: eth0, eth1, eth2, \
             eth3, eth4, lo); pass one of those"
        );
        let err = links.check_rule("eth2", "eth0", host).unwrap_err();
        assert!(
            matches!(
                err,
                IfaceError::NoCarrier {
                    role: Role::Sniff,
                    ..
                }
            ),
            "{err}"
        );
        let err = links.check_rule("eth1", "eth3", host).unwrap_err();
        assert_eq!(
            err.to_string(),
            "reset interface 'eth3' is down; bring it up with 'ip link set eth3 up'"
        );
        let err = links.check_rule("eth1", "eth4", host).unwrap_err();
        assert!(matches!(err, IfaceError::NoAddress { .. }), "{err}");
        let err = links.check_rule("eth4", "eth1", host).unwrap_err();
        assert!(
            matches!(err, IfaceError::NoRoute { .. }),
            "link-local only: {err}"
        );
        let err = links
            .check_rule("eth1", "eth0", Some(ip("fd77::1")))
            .unwrap_err();
        assert!(matches!(err, IfaceError::NoRoute { .. }), "{err}");
        for (sniff, reset, role) in [("lo", "eth0", Role::Sniff), ("eth1", "lo", Role::Reset)] {
            let err = links.check_rule(sniff, reset, host).unwrap_err();
            assert_eq!(
                err,
                IfaceError::Loopback {
                    role,
                    name: "lo".into()
                }
            );
        }
        let links = links.with_v4_subnet("eth0", "10.77.0.254".parse().unwrap(), 24);
        let err = links
            .check_rule("eth1", "eth0", Some(ip("10.77.0.255")))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "HOST 10.77.0.255 is the broadcast address of 10.77.0.0/24 on eth0, not one host; \
             pass the address of the host to isolate"
        );
        assert_eq!(
            links.check_rule("eth1", "eth0", Some(ip("10.77.0.127"))),
            Ok(())
        );
        assert_eq!(subnet_broadcast("10.0.0.1".parse().unwrap(), 31), None);
        assert_eq!(
            subnet_broadcast("10.0.0.1".parse().unwrap(), 0),
            Some(Ipv4Addr::BROADCAST)
        );
        assert_eq!(
            links.check_rule("eth1", "eth0", None),
            Ok(()),
            "no host, no family check"
        );
    }

    #[test]
    fn auto_tracks_the_interfaces_without_an_address_of_their_own() {
        let mut links = sensor();
        let names = |t: &BTreeSet<String>| t.iter().cloned().collect::<Vec<_>>().join(",");
        let none = BTreeSet::new();
        // eth1 (link-local only), eth4 (no address), eth2 (no carrier, but up); not lo, not
        // eth0 (IPv4), not eth3 (down).
        assert_eq!(
            names(&tracked(&Track::Auto, &none, &links)),
            "eth1,eth2,eth4"
        );
        let port = |links: &Links, n: &str| links.get(n).unwrap().could_be_sniff_port();
        assert!(
            !Link {
                addrs: vec![ip("fd77::3")],
                ..links.get("eth1").unwrap().clone()
            }
            .could_be_sniff_port(),
            "a unique local address is an address of its own"
        );
        assert!(port(&links, "eth1"));
        assert!(
            !Link {
                enslaved: true,
                ..links.get("eth1").unwrap().clone()
            }
            .could_be_sniff_port(),
            "a bridge port"
        );
        // A list names them; down or missing ones wait; remembered ones join.
        let list = Track::List(vec!["eth0".into(), "eth3".into(), "gone".into()]);
        assert_eq!(names(&tracked(&list, &none, &links)), "eth0");
        let remembered: BTreeSet<String> = ["eth3".to_owned(), "eth2".to_owned()].into();
        let eth0 = Track::List(vec!["eth0".into()]);
        assert_eq!(names(&tracked(&eth0, &remembered, &links)), "eth0,eth2");
        let off = Track::List(Vec::new());
        assert!(tracked(&off, &remembered, &links).is_empty(), "[] is off");
        let eth3 = Link {
            up: true,
            running: true,
            ..links.get("eth3").unwrap().clone()
        };
        links = links
            .iter()
            .map(|(n, l)| {
                (
                    n.to_owned(),
                    if n == "eth3" { eth3.clone() } else { l.clone() },
                )
            })
            .collect();
        assert_eq!(
            names(&tracked(&eth0, &remembered, &links)),
            "eth0,eth2,eth3"
        );
        assert!(!port(&links, "eth3"), "it has an IPv4 address");
    }

    #[test]
    fn reset_states_and_own_addresses_come_from_the_snapshot() {
        let links = sensor();
        assert_eq!(
            links.reset_state("eth0"),
            IfaceState::Ready {
                ifindex: 2,
                v6: false
            }
        );
        assert_eq!(links.reset_state("eth3"), IfaceState::Down);
        assert_eq!(links.reset_state("gone"), IfaceState::Missing);
        let problem = links.reset_problem("eth3", IfaceState::Down).unwrap();
        assert!(matches!(
            problem,
            IfaceError::Down {
                role: Role::Reset,
                ..
            }
        ));
        let own: Vec<IpAddr> = links.addresses().collect();
        assert!(
            own.contains(&ip("10.77.0.254")) && own.contains(&ip("::1")),
            "{own:?}"
        );
        assert!(!sensor().get("eth1").unwrap().has_routable_v6());
        assert!(Link {
            addrs: vec![ip("fd77::fe")],
            ..Link::default()
        }
        .has_routable_v6());
    }
}
