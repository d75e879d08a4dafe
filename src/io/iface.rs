//! Interface checks: the sniff interface must exist and be up; the reset interface must also
//! have an IP address, since the kernel routes our RSTs and resolves link addresses from it.
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

fn check(map: &BTreeMap<String, IfaceInfo>, role: Role, name: &str) -> Result<(), IfaceError> {
    let Some(info) = map.get(name) else {
        return Err(IfaceError::Unknown {
            role,
            name: name.to_owned(),
            known: map.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    };
    if !info.flags.contains(InterfaceFlags::IFF_UP) {
        return Err(IfaceError::Down {
            role,
            name: name.to_owned(),
        });
    }
    if !info.flags.contains(InterfaceFlags::IFF_RUNNING) {
        return Err(IfaceError::NoCarrier {
            role,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks both interfaces of a rule; returns the reset interface's addresses.
pub fn check_pair(sniff_if: &str, reset_if: &str) -> Result<Vec<IpAddr>, IfaceError> {
    let map = interfaces()?;
    check(&map, Role::Sniff, sniff_if)?;
    check(&map, Role::Reset, reset_if)?;
    let addrs = &map[reset_if].addrs;
    if addrs.is_empty() {
        return Err(IfaceError::NoAddress {
            name: reset_if.to_owned(),
        });
    }
    Ok(addrs.clone())
}

/// Every address of this host (the sensor protects its own addresses).
pub fn all_addresses() -> Result<Vec<IpAddr>, IfaceError> {
    Ok(interfaces()?.into_values().flat_map(|i| i.addrs).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
