//! Interface checks: the sniff interface must exist and be up; the reset interface must also
//! have an IP address, since the kernel routes our RSTs and resolves link addresses from it.
use crate::health::{IfaceState, LinkFacts};
use crate::net::is_global_v6;
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use std::collections::BTreeMap;
use std::net::IpAddr;

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

#[derive(Debug)]
struct IfaceInfo {
    flags: InterfaceFlags,
    addrs: Vec<IpAddr>,
}

fn interfaces() -> Result<BTreeMap<String, IfaceInfo>, IfaceError> {
    let mut map: BTreeMap<String, IfaceInfo> = BTreeMap::new();
    for ifa in getifaddrs().map_err(IfaceError::List)? {
        let info = map
            .entry(ifa.interface_name.clone())
            .or_insert_with(|| IfaceInfo {
                flags: InterfaceFlags::empty(),
                addrs: Vec::new(),
            });
        info.flags |= ifa.flags;
        if let Some(addr) = ifa.address {
            if let Some(v4) = addr.as_sockaddr_in() {
                info.addrs.push(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                info.addrs.push(IpAddr::V6(v6.ip()));
            }
        }
    }
    Ok(map)
}

fn facts(map: &BTreeMap<String, IfaceInfo>, name: &str) -> Option<LinkFacts> {
    let info = map.get(name)?;
    // The index of a name that vanished since getifaddrs: treat it as gone.
    let ifindex = nix::net::if_::if_nametoindex(name).ok()?;
    Some(LinkFacts {
        ifindex,
        up: info.flags.contains(InterfaceFlags::IFF_UP),
        running: info.flags.contains(InterfaceFlags::IFF_RUNNING),
        has_address: !info.addrs.is_empty(),
        has_global_v6: info.addrs.iter().any(|a| match a {
            IpAddr::V6(v6) => is_global_v6(v6),
            IpAddr::V4(_) => false,
        }),
    })
}

/// The error for an interface in `state` playing `role`, if that state is one.
fn problem(
    map: &BTreeMap<String, IfaceInfo>,
    role: Role,
    name: &str,
    state: IfaceState,
) -> Option<IfaceError> {
    let name = name.to_owned();
    match state {
        IfaceState::Ready { .. } => None,
        IfaceState::Missing => Some(IfaceError::Unknown {
            role,
            name,
            known: map.keys().cloned().collect::<Vec<_>>().join(", "),
        }),
        IfaceState::Down => Some(IfaceError::Down { role, name }),
        IfaceState::NoCarrier => Some(IfaceError::NoCarrier { role, name }),
        IfaceState::NoAddress if role == Role::Sniff => None,
        IfaceState::NoAddress => Some(IfaceError::NoAddress { name }),
    }
}

fn check(map: &BTreeMap<String, IfaceInfo>, role: Role, name: &str) -> Result<(), IfaceError> {
    let state = IfaceState::of_reset(facts(map, name).as_ref());
    problem(map, role, name, state).map_or(Ok(()), Err)
}

/// Checks both interfaces of a rule; returns the reset interface's addresses.
pub fn check_pair(sniff_if: &str, reset_if: &str) -> Result<Vec<IpAddr>, IfaceError> {
    let map = interfaces()?;
    check(&map, Role::Sniff, sniff_if)?;
    check(&map, Role::Reset, reset_if)?;
    Ok(map[reset_if].addrs.clone())
}

/// A rule for `host` needs an address of the same family on the reset interface (a global one
/// for IPv6): the RSTs are routed through it, and without one there is no route.
pub fn check_family(reset_if: &str, addrs: &[IpAddr], host: IpAddr) -> Result<(), IfaceError> {
    let usable = |a: &IpAddr| match (a, host) {
        (IpAddr::V4(_), IpAddr::V4(_)) => true,
        (IpAddr::V6(v6), IpAddr::V6(_)) => is_global_v6(v6),
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

/// One look at every interface, to learn the state of reset interfaces.
pub struct Probe {
    map: BTreeMap<String, IfaceInfo>,
}

impl Probe {
    /// Lists the interfaces now (getifaddrs, which asks the kernel over netlink).
    pub fn take() -> Result<Probe, IfaceError> {
        Ok(Probe { map: interfaces()? })
    }

    /// Whether RSTs can go out of `name`.
    pub fn reset_state(&self, name: &str) -> IfaceState {
        IfaceState::of_reset(facts(&self.map, name).as_ref())
    }

    /// What is wrong with reset interface `name` in `state`, and the fix.
    pub fn reset_problem(&self, name: &str, state: IfaceState) -> Option<IfaceError> {
        problem(&self.map, Role::Reset, name, state)
    }
}

/// Every address of this host (the sensor protects its own addresses).
pub fn all_addresses() -> Result<Vec<IpAddr>, IfaceError> {
    Ok(interfaces()?.into_values().flat_map(|i| i.addrs).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_needs_an_address_of_its_family_on_the_reset_interface() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
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
    fn loopback_is_up_with_an_address_and_unknown_names_list_the_known() {
        // Every Linux network namespace has lo; in a fresh one it may be down.
        let map = interfaces().unwrap();
        let lo = map.get("lo").expect("lo exists");
        if lo.flags.contains(InterfaceFlags::IFF_UP) {
            assert!(check_pair("lo", "lo").is_ok());
        }
        let err = check_pair("no-such-if0", "lo").unwrap_err();
        assert!(matches!(err, IfaceError::Unknown { .. }));
        assert!(err.to_string().contains("lo"), "{err}");
        let probe = Probe::take().unwrap();
        let state = probe.reset_state("no-such-if0");
        assert_eq!(state, IfaceState::Missing);
        let err = probe.reset_problem("no-such-if0", state).unwrap();
        assert!(
            err.to_string()
                .starts_with("reset interface 'no-such-if0' does not exist"),
            "{err}"
        );
    }
}
