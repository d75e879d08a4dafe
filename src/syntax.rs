//! The argument rules shared by the client and the daemon: engid, host, port, seconds, interface.
//!
//! The client checks them to give a good error before anything is sent; the daemon checks every
//! request again, because its socket is an API and trusts no client.
use compact_str::CompactString;
use std::net::IpAddr;
use std::time::Duration;

/// The longest reset a rule may ask for: one day.
pub const MAX_SECONDS: u64 = 86_400;
/// The longest engid.
pub const MAX_ENGID_LEN: usize = 64;
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// A value that breaks a rule; the message says what is wrong and what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("ENGID '{0}' is not 1-64 characters of letters, digits, '.', '_', ':' or '-' that does not start with '-'; pass the detection engine id, e.g. ids-2024")]
    Engid(String),
    #[error("HOST '{0}' is not an IPv4 or IPv6 address; pass the host to isolate, e.g. -h 192.0.2.10 or -h 2001:db8::10")]
    Host(String),
    #[error("PORT '{0}' is not a port number in 1..=65535; pass e.g. -p 443, or leave -p out to reset every port")]
    Port(String),
    #[error("SECONDS '{0}' is not a whole number of seconds in 1..=86400; pass e.g. -d 180")]
    Seconds(String),
    #[error("interface name '{0}' is not 1-15 characters of letters, digits, '.', '_' or '-'; pass an interface of this sensor, see 'ip link'")]
    Interface(String),
    #[error("HOST '{host}' is {what}, not one host: no TCP connection has it as an end; pass the address of the host to isolate")]
    NotAHost { host: String, what: &'static str },
    #[error("interface '{0}' is the loopback: it neither sees the monitored traffic nor reaches the hosts; pass the monitoring port to -i and the interface toward the hosts to -o")]
    Loopback(String),
}

/// An engid: never one that starts with `-`, which the client (and any tool given it as an
/// argument) would read as an option, so that every engid the daemon holds can be cancelled.
pub fn engid(s: &str) -> Result<CompactString, Invalid> {
    let ok = (1..=MAX_ENGID_LEN).contains(&s.len())
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(s.into())
    } else {
        Err(Invalid::Engid(s.to_owned()))
    }
}

/// A host a rule may name: an address of one host (`::ffff:a.b.c.d` is the IPv4 host), never
/// the unspecified or broadcast address nor a multicast group.
pub fn host(s: &str) -> Result<IpAddr, Invalid> {
    let ip = s
        .parse::<IpAddr>()
        .map(canonical)
        .map_err(|_| Invalid::Host(s.to_owned()))?;
    one_host(ip)
}

/// `ip` unless it is an address no TCP end has; the check of [`host`] for an address already
/// parsed (a saved rule, a replay rule).
pub fn one_host(ip: IpAddr) -> Result<IpAddr, Invalid> {
    let ip = canonical(ip);
    let what = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => "the unspecified address",
        IpAddr::V4(v4) if v4.is_broadcast() => "the broadcast address",
        IpAddr::V4(v4) if v4.is_multicast() => "a multicast group (224.0.0.0/4)",
        IpAddr::V6(v6) if v6.is_unspecified() => "the unspecified address",
        IpAddr::V6(v6) if v6.is_multicast() => "a multicast group (ff00::/8)",
        _ => return Ok(ip),
    };
    Err(Invalid::NotAHost {
        host: ip.to_string(),
        what,
    })
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) mean the IPv4 host on the wire.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

pub fn port(s: &str) -> Result<u16, Invalid> {
    match s.parse::<u16>() {
        Ok(p) if p >= 1 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(Invalid::Port(s.to_owned())),
    }
}

pub fn seconds(s: &str) -> Result<Duration, Invalid> {
    match s.parse::<u64>() {
        Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) => seconds_value(n),
        _ => Err(Invalid::Seconds(s.to_owned())),
    }
}

/// [`seconds`] for a number already parsed.
pub fn seconds_value(n: u64) -> Result<Duration, Invalid> {
    if (1..=MAX_SECONDS).contains(&n) {
        Ok(Duration::from_secs(n))
    } else {
        Err(Invalid::Seconds(n.to_string()))
    }
}

/// An interface name for a rule: never the loopback `lo`.
pub fn interface(s: &str) -> Result<CompactString, Invalid> {
    if s == "lo" {
        return Err(Invalid::Loopback(s.to_owned()));
    }
    let ok = (1..=MAX_IFNAME_LEN).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.into())
    } else {
        Err(Invalid::Interface(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engids() {
        for ok in ["ids-2024", "a", "x.y_z:1-2", &"e".repeat(64)] {
            assert!(engid(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "a;b",
            "ü",
            &"e".repeat(65),
            "$(id)",
            "-e",
            "--help",
        ] {
            assert_eq!(engid(bad), Err(Invalid::Engid(bad.to_owned())));
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(host("192.0.2.1").unwrap().to_string(), "192.0.2.1");
        assert_eq!(host("2001:db8::1").unwrap().to_string(), "2001:db8::1");
        assert_eq!(host("::ffff:192.0.2.1").unwrap().to_string(), "192.0.2.1");
        for bad in [
            "",
            "host.example",
            "192.0.2.256",
            "192.0.2.1/24",
            " 192.0.2.1",
        ] {
            assert!(host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_that_are_not_one_host_are_refused_with_what_they_are() {
        for (bad, what) in [
            ("0.0.0.0", "the unspecified address"),
            ("::", "the unspecified address"),
            ("::ffff:0.0.0.0", "the unspecified address"),
            ("255.255.255.255", "the broadcast address"),
            ("224.0.0.1", "a multicast group (224.0.0.0/4)"),
            ("239.255.255.250", "a multicast group (224.0.0.0/4)"),
            ("ff02::1", "a multicast group (ff00::/8)"),
            ("::ffff:224.0.0.1", "a multicast group (224.0.0.0/4)"),
        ] {
            let e = host(bad).unwrap_err();
            assert!(matches!(e, Invalid::NotAHost { .. }), "{bad}");
            assert!(e.to_string().contains(what), "{bad}: {e}");
        }
        for ok in ["223.255.255.255", "240.0.0.1", "fe80::1", "0.0.0.1"] {
            assert!(host(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn ports_and_seconds() {
        assert_eq!(port("1"), Ok(1));
        assert_eq!(port("65535"), Ok(65535));
        for bad in ["0", "65536", "-1", "+80", "80a", ""] {
            assert!(port(bad).is_err(), "{bad}");
        }
        assert_eq!(seconds("180"), Ok(Duration::from_secs(180)));
        assert_eq!(seconds("86400"), Ok(Duration::from_secs(86_400)));
        for bad in ["0", "86401", "1.5", "-3", "+3", "3s", ""] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interfaces() {
        for ok in ["eth0", "enp0s31f6", "br-lan.10", "a"] {
            assert!(interface(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "eth0/1",
            "a very long name!",
            "sixteen-chars-xx",
        ] {
            assert!(interface(bad).is_err(), "{bad}");
        }
        assert_eq!(interface("lo"), Err(Invalid::Loopback("lo".into())));
        assert!(interface("lo0").is_ok());
    }
}
