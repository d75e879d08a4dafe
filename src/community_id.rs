//! The Community ID (v1) of a TCP flow, which SIEMs join on: `1:` and the base64 of a SHA-1
//! over the seed, the endpoints in canonical order and the protocol (Corelight's
//! community-id-spec; computed by the `community-id` crate, checked here against the spec's
//! published baseline vectors).
use std::net::IpAddr;

const TCP: u8 = 6;

/// The Community ID v1 (seed 0) of the TCP flow between `a` and `b`, in either order.
pub fn tcp_v1(a: (IpAddr, u16), b: (IpAddr, u16)) -> Option<String> {
    with_seed(0, a, b, TCP)
}

fn with_seed(seed: u16, a: (IpAddr, u16), b: (IpAddr, u16), proto: u8) -> Option<String> {
    community_id::calculate_community_id(seed, a.0, b.0, Some(a.1), Some(b.1), proto, false).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(ip: &str, port: u16) -> (IpAddr, u16) {
        (ip.parse().unwrap(), port)
    }

    /// The TCP and UDP rows of corelight/community-id-spec `baseline/baseline_deflt.json`
    /// (seed 0) and `baseline/baseline_seed1.json` (seed 1), both directions of each flow.
    #[test]
    fn matches_the_published_baseline() {
        let v4 = (ep("128.232.110.120", 34855), ep("66.35.250.204", 80));
        let v6 = (
            ep("2001:470:e5bf:dead:4957:2174:e82c:4887", 63943),
            ep("2607:f8b0:400c:c03::1a", 25),
        );
        let udp = (ep("192.168.1.52", 54585), ep("8.8.8.8", 53));
        let cases = [
            (0, v4, TCP, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
            (1, v4, TCP, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
            (0, v6, TCP, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="),
            (1, v6, TCP, "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
            (0, udp, 17, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
            (1, udp, 17, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        ];
        for (seed, (a, b), proto, want) in cases {
            assert_eq!(
                with_seed(seed, a, b, proto).as_deref(),
                Some(want),
                "{a:?} {b:?}"
            );
            assert_eq!(
                with_seed(seed, b, a, proto).as_deref(),
                Some(want),
                "{b:?} {a:?}"
            );
        }
        assert_eq!(
            tcp_v1(v4.1, v4.0).as_deref(),
            Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        );
        // The spec's README example (1.2.3.4:1122 -> 5.6.7.8:3344, TCP).
        assert_eq!(
            tcp_v1(ep("1.2.3.4", 1122), ep("5.6.7.8", 3344)).as_deref(),
            Some("1:wCb3OG7yAFWelaUydu0D+125CLM=")
        );
        assert_eq!(
            tcp_v1(ep("1.2.3.4", 1), ep("::1", 2)),
            None,
            "mixed families"
        );
    }
}
