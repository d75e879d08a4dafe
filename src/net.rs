//! Address facts shared by the daemon and the playbooks: the [`Cidr`] network type (the
//! `protected` list, a query's `within`) and what counts as a global IPv6 address.
//!
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) means the IPv4 host on the wire, in a network
//! and in an address tested against one alike; otherwise an IPv6 network holds no IPv4 address.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use serde::Deserialize;

use crate::syntax::canonical;

/// An address or a network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, `192.0.2.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// Text that is not an address or a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("'{0}' is not an address or a network like 192.0.2.0/24")]
    Address(String),
    #[error("'{text}': the prefix length must be 0..={max}")]
    Prefix { text: String, max: u8 },
}

impl Cidr {
    /// The network of one host: a /32 or a /128.
    pub fn host(addr: IpAddr) -> Cidr {
        let addr = canonical(addr);
        Cidr {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::Address(s.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| CidrError::Prefix {
                    text: s.to_owned(),
                    max,
                })?,
        };
        // A network of IPv4-mapped addresses is that IPv4 network.
        Ok(match (addr, canonical(addr)) {
            (IpAddr::V6(_), v4 @ IpAddr::V4(_)) if prefix >= 96 => Cidr {
                addr: v4,
                prefix: prefix - 96,
            },
            _ => Cidr { addr, prefix },
        })
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Whether an interface's IPv6 address can source packets to hosts off its link: not the
/// loopback address and not link-local (`fe80::/10`).
pub fn is_global_v6(addr: &Ipv6Addr) -> bool {
    !addr.is_loopback() && (addr.segments()[0] & 0xffc0) != 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_hold_their_addresses_in_both_families() {
        let net = cidr("10.0.0.0/8");
        assert!(net.contains(ip("10.200.1.1")));
        assert!(net.contains(ip("10.47.8.150")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("fd00::1")));
        assert!(cidr("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(cidr("0.0.0.0/0").contains(ip("8.8.8.8")));
        let v6 = cidr("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:1::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(cidr("fe80::/10").contains(ip("fe80::1")));
        assert!(!cidr("fe80::/10").contains(ip("10.0.0.1")));
        assert!(!cidr("::/0").contains(ip("10.0.0.1")));
    }

    #[test]
    fn mapped_addresses_are_their_ipv4_hosts_on_both_sides() {
        assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        let mapped = cidr("::ffff:10.0.0.0/104");
        assert_eq!(mapped, cidr("10.0.0.0/8"));
        assert!(mapped.contains(ip("10.1.2.3")));
        assert!(mapped.contains(ip("::ffff:10.1.2.3")));
        assert_eq!(cidr("::ffff:192.0.2.7"), cidr("192.0.2.7/32"));
        assert_eq!(Cidr::host(ip("::ffff:192.0.2.7")), cidr("192.0.2.7"));
        assert_eq!(cidr("::ffff:0:0/80").addr, ip("::ffff:0:0"));
    }

    #[test]
    fn bare_addresses_are_hosts_and_bad_text_names_itself() {
        assert_eq!(cidr("192.0.2.7").prefix, 32);
        assert_eq!(cidr("1.2.3.4").prefix, 32);
        assert_eq!(cidr("2001:db8::1").prefix, 128);
        assert_eq!(cidr("192.0.2.7").to_string(), "192.0.2.7/32");
        let e = "10.0.0.0/33".parse::<Cidr>().unwrap_err().to_string();
        assert!(e.contains("10.0.0.0/33") && e.contains("prefix length must be 0..=32"));
        for bad in ["192.0.2.7/x", "nonsense", "10.0.0.0/+8", "10.0.0.0/", "/8"] {
            let e = bad.parse::<Cidr>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn global_v6_excludes_loopback_and_link_local() {
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert!(is_global_v6(&v6("2001:db8::5")));
        assert!(is_global_v6(&v6("fd00::1")));
        assert!(!is_global_v6(&v6("::1")));
        assert!(!is_global_v6(&v6("fe80::1")));
        assert!(!is_global_v6(&v6("febf::1")));
        assert!(is_global_v6(&v6("fec0::1")));
    }
}
