//! The kernel prefilter: the BPF expression a capture runs so that user space receives only
//! what it needs (pure; the capture thread compiles and installs it).
//!
//! User space needs every segment of a rule's host (or host and port), and, for the flow
//! table, the SYN, FIN and RST segments of everyone. Tagged frames (802.1Q, QinQ) are covered.
//! A filter naming many hosts would outgrow what the kernel accepts (4096 BPF instructions),
//! so past [`MAX_HOSTS`] hosts the capture falls back to all TCP and the in-memory match.
use std::fmt::Write as _;
use std::net::IpAddr;

/// All TCP, tagged or not: the fallback, and the filter of a capture with no rules yet when
/// flows are not tracked.
pub const ALL_TCP: &str = "tcp or (vlan and (tcp or (vlan and tcp)))";
/// Most rule hosts a filter names before falling back to [`ALL_TCP`].
pub const MAX_HOSTS: usize = 48;

/// SYN, FIN or RST: IPv4 through `tcp[]`, IPv6 (without extension headers, which libpcap
/// cannot walk) through the TCP flags byte at offset 53 of the IPv6 packet.
const CONTROL: &str = "(ip and tcp[13] & 7 != 0) or (ip6 and ip6[6] == 6 and ip6[53] & 7 != 0)";

/// The filter for rules on `hosts` (with their optional ports); `track_flows` adds the
/// control segments of every connection.
pub fn for_rules(hosts: &[(IpAddr, Option<u16>)], track_flows: bool) -> String {
    if hosts.len() > MAX_HOSTS {
        return ALL_TCP.to_owned();
    }
    let mut terms: Vec<String> = Vec::with_capacity(hosts.len() + 1);
    if track_flows {
        terms.push(format!("({CONTROL})"));
    }
    for (host, port) in hosts {
        let proto = if host.is_ipv4() { "ip" } else { "ip6" };
        let mut t = format!("({proto} host {host}");
        if let Some(p) = port {
            let _ = write!(t, " and port {p}");
        }
        t.push(')');
        terms.push(t);
    }
    if terms.is_empty() {
        // Nothing to see yet; "tcp and less 0" would be clearer but is not portable.
        return "tcp and tcp[0:2] == 0 and tcp[2:2] == 0".to_owned();
    }
    let inner = format!("tcp and ({})", terms.join(" or "));
    format!("({inner}) or (vlan and (({inner}) or (vlan and ({inner}))))")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Forged, Kind};
    use pcap::{BpfProgram, Capture, Linktype};

    fn compile(expr: &str) -> BpfProgram {
        Capture::dead(Linktype::ETHERNET)
            .unwrap()
            .compile(expr, true)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    /// An Ethernet frame of a TCP segment with `flags`, tagged with `vlans`.
    fn frame(src: &str, dst: &str, dport: u16, flags: u8, vlans: &[u16]) -> Vec<u8> {
        let seg = Forged {
            kind: Kind::Probe,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: 40000,
            dst_port: dport,
            seq: 1,
            ack: Some(1),
        };
        let mut buf = [0u8; 128];
        let n = seg.emit_frame([2; 6], [4; 6], &mut buf);
        let mut f = buf[..n].to_vec();
        let ip_len = if seg.src.is_ipv4() { 20 } else { 40 };
        f[14 + ip_len + 13] = flags;
        for v in vlans.iter().rev() {
            let ethertype = [f[12], f[13]];
            f.splice(
                12..14,
                [
                    0x81,
                    0x00,
                    (v >> 8) as u8,
                    *v as u8,
                    ethertype[0],
                    ethertype[1],
                ],
            );
        }
        f
    }

    const ACK: u8 = 0x10;
    const SYN: u8 = 0x02;

    #[test]
    fn passes_rule_hosts_and_control_segments_only() {
        let rules = [
            ("10.0.0.1".parse().unwrap(), None),
            ("fd00::1".parse().unwrap(), Some(443)),
        ];
        let p = compile(&for_rules(&rules, true));
        for vlans in [&[][..], &[100][..], &[93, 258][..]] {
            assert!(
                p.filter(&frame("10.0.0.1", "10.9.9.9", 80, ACK, vlans)),
                "{vlans:?}"
            );
            assert!(
                p.filter(&frame("10.9.9.9", "10.0.0.1", 80, ACK, vlans)),
                "{vlans:?}"
            );
            assert!(
                !p.filter(&frame("10.9.9.9", "10.9.9.8", 80, ACK, vlans)),
                "{vlans:?}"
            );
            assert!(
                p.filter(&frame("10.9.9.9", "10.9.9.8", 80, SYN, vlans)),
                "{vlans:?}"
            );
            assert!(
                p.filter(&frame("fd00::9", "fd00::1", 443, ACK, vlans)),
                "{vlans:?}"
            );
            assert!(
                !p.filter(&frame("fd00::9", "fd00::1", 80, ACK, vlans)),
                "{vlans:?}"
            );
            assert!(
                p.filter(&frame("fd00::9", "fd00::8", 80, SYN, vlans)),
                "{vlans:?}"
            );
        }
        let p = compile(&for_rules(&rules, false));
        assert!(!p.filter(&frame("10.9.9.9", "10.9.9.8", 80, SYN, &[])));
        assert!(p.filter(&frame("10.0.0.1", "10.9.9.8", 80, ACK, &[])));
    }

    #[test]
    fn stays_within_the_kernel_limit_and_falls_back() {
        let many: Vec<(IpAddr, Option<u16>)> = (0..MAX_HOSTS as u32)
            .map(|i| (IpAddr::V4((0x0a00_0000 + i).into()), Some(1000 + i as u16)))
            .collect();
        let p = compile(&for_rules(&many, true));
        assert!(
            p.get_instructions().len() < 4096,
            "{}",
            p.get_instructions().len()
        );
        let mut more = many.clone();
        more.push(("10.1.1.1".parse().unwrap(), None));
        assert_eq!(for_rules(&more, true), ALL_TCP);
        let p = compile(ALL_TCP);
        assert!(p.filter(&frame("10.9.9.9", "10.9.9.8", 80, ACK, &[93, 258])));
    }

    #[test]
    fn with_no_rule_a_tracking_capture_passes_only_syn_fin_rst() {
        let expr = for_rules(&[], true);
        let p = compile(&expr);
        const FIN: u8 = 0x01;
        const RST: u8 = 0x04;
        const PSH: u8 = 0x08;
        for vlans in [&[][..], &[100][..], &[93, 258][..]] {
            for (src, dst) in [("10.9.9.9", "10.9.9.8"), ("fd00::9", "fd00::8")] {
                for flags in [SYN, SYN | ACK, FIN | ACK, RST, RST | ACK] {
                    let f = frame(src, dst, 80, flags, vlans);
                    assert!(p.filter(&f), "{src} flags {flags:#x} {vlans:?}: {expr}");
                }
                for flags in [ACK, ACK | PSH, 0] {
                    let f = frame(src, dst, 80, flags, vlans);
                    assert!(!p.filter(&f), "{src} flags {flags:#x} {vlans:?}: {expr}");
                }
            }
        }
    }

    #[test]
    fn no_rules_and_no_tracking_passes_nothing() {
        let p = compile(&for_rules(&[], false));
        assert!(!p.filter(&frame("10.9.9.9", "10.9.9.8", 80, SYN, &[])));
    }
}
