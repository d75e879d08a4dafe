//! Takes the snapshot of the sensor's interfaces ([`Links`]) from the kernel: `getifaddrs` for
//! flags and addresses, `if_nameindex` for the indices. What it means is decided in
//! [`crate::interfaces`].
use crate::interfaces::{IfaceError, Link, Links};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Every interface now. An interface that vanishes between the two calls is left out.
pub fn read() -> Result<Links, IfaceError> {
    let mut flags: BTreeMap<String, (InterfaceFlags, Vec<IpAddr>)> = BTreeMap::new();
    let mut subnets = Vec::new();
    for ifa in getifaddrs().map_err(IfaceError::List)? {
        let (f, addrs) = flags
            .entry(ifa.interface_name.clone())
            .or_insert_with(|| (InterfaceFlags::empty(), Vec::new()));
        *f |= ifa.flags;
        if let Some(addr) = ifa.address {
            if let Some(v4) = addr.as_sockaddr_in() {
                addrs.push(IpAddr::V4(v4.ip()));
                let mask = ifa.netmask.as_ref().and_then(|m| m.as_sockaddr_in());
                if let Some(mask) = mask {
                    let prefix = u32::from(mask.ip()).leading_ones() as u8;
                    subnets.push((ifa.interface_name.clone(), v4.ip(), prefix));
                }
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                addrs.push(IpAddr::V6(v6.ip()));
            }
        }
    }
    let indices = nix::net::if_::if_nameindex().map_err(IfaceError::List)?;
    let links: Links = indices
        .iter()
        .filter_map(|i| {
            let name = i.name().to_str().ok()?;
            let (f, addrs) = flags.remove(name)?;
            let link = Link {
                ifindex: i.index(),
                up: f.contains(InterfaceFlags::IFF_UP),
                running: f.contains(InterfaceFlags::IFF_RUNNING),
                loopback: f.contains(InterfaceFlags::IFF_LOOPBACK),
                enslaved: std::path::Path::new("/sys/class/net")
                    .join(name)
                    .join("master")
                    .exists(),
                addrs,
            };
            Some((name.to_owned(), link))
        })
        .collect();
    Ok(subnets
        .into_iter()
        .fold(links, |links, (name, addr, prefix)| {
            links.with_v4_subnet(&name, addr, prefix)
        }))
}

/// The client's check of a rule's interfaces (and, given the host, of its family) as they are now.
pub fn check_rule(sniff_if: &str, reset_if: &str, host: Option<IpAddr>) -> Result<(), IfaceError> {
    read()?.check_rule(sniff_if, reset_if, host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::IfaceState;

    #[test]
    fn loopback_is_up_with_an_address_and_unknown_names_list_the_known() {
        // Every Linux network namespace has lo; in a fresh one it may be down.
        let links = read().unwrap();
        let lo = links.get("lo").expect("lo exists");
        assert!(lo.loopback && lo.ifindex > 0, "{lo:?}");
        let err = check_rule("lo", "eth-none0", None).unwrap_err();
        assert!(matches!(err, IfaceError::Loopback { .. }), "{err}");
        let err = check_rule("no-such-if0", "lo", None).unwrap_err();
        assert!(matches!(err, IfaceError::Unknown { .. }));
        assert!(err.to_string().contains("lo"), "{err}");
        let state = links.reset_state("no-such-if0");
        assert_eq!(state, IfaceState::Missing);
        let err = links.reset_problem("no-such-if0", state).unwrap();
        assert!(
            err.to_string()
                .starts_with("reset interface 'no-such-if0' does not exist"),
            "{err}"
        );
    }
}
