//! Tests of the rule table and the matcher with a controlled clock.
use super::*;
use crate::wire::{Flags, Segment, L2};

fn spec(engid: &str, host: &str, port: Option<u16>, secs: u64) -> RuleSpec {
    RuleSpec {
        key: RuleKey {
            engid: engid.into(),
            host: host.parse().unwrap(),
            port,
        },
        sniff_if: "eth1".into(),
        reset_if: "eth0".into(),
        duration: Duration::from_secs(secs),
    }
}

/// An ACK from `src:sport` to `dst:dport` (also the flow table tests' base segment).
pub(crate) fn seg(src: &str, sport: u16, dst: &str, dport: u16) -> Segment {
    Segment {
        l2: L2::default(),
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        src_port: sport,
        dst_port: dport,
        seq: 1,
        ack: 1,
        flags: Flags::ACK,
        window: 100,
        payload_len: 0,
    }
}

const T0: Instant = Instant::from_secs(1_000);

#[test]
fn expires_exactly_at_the_deadline() {
    let mut t = RuleTable::new();
    t.upsert(spec("e1", "10.0.0.1", None, 10), T0);
    assert_eq!(t.next_deadline(), Some(T0 + Duration::from_secs(10)));
    let just_before = T0 + Duration::from_micros(9_999_999);
    assert!(t.expire_until(just_before).is_empty());
    let m = t.matcher(Some("eth1"));
    let s = seg("10.0.0.1", 1000, "10.0.0.2", 80);
    assert!(m.lookup(&s, just_before).is_some());
    assert!(m.lookup(&s, T0 + Duration::from_secs(10)).is_none());
    let gone = t.expire_until(T0 + Duration::from_secs(10));
    assert_eq!(gone.len(), 1);
    assert!(t.is_empty() && t.next_deadline().is_none());
}

#[test]
fn refresh_replaces_the_deadline_and_keeps_counters() {
    let mut t = RuleTable::new();
    let (how, _) = t.upsert(spec("e1", "10.0.0.1", None, 10), T0);
    assert_eq!(how, Upsert::Added);
    let m = t.matcher(None);
    m.lookup(&seg("10.0.0.1", 1, "10.0.0.2", 2), T0).unwrap();
    let later = T0 + Duration::from_secs(8);
    let (how, rule) = t.upsert(spec("e1", "10.0.0.1", None, 10), later);
    assert_eq!(how, Upsert::Refreshed);
    assert_eq!(rule.expires, later + Duration::from_secs(10));
    assert_eq!(rule.stats.segments_matched(), 1);
    assert_eq!(t.len(), 1);
    // The old deadline no longer expires anything.
    assert!(t.expire_until(T0 + Duration::from_secs(10)).is_empty());
    assert_eq!(t.expire_until(later + Duration::from_secs(10)).len(), 1);
}

/// Hashes every key to the same value.
#[derive(Debug, Default, Clone, Copy)]
struct Collide;

impl std::hash::BuildHasher for Collide {
    type Hasher = Constant;
    fn build_hasher(&self) -> Constant {
        Constant
    }
}

struct Constant;

impl std::hash::Hasher for Constant {
    fn finish(&self) -> u64 {
        7
    }
    fn write(&mut self, _: &[u8]) {}
}

#[test]
fn keys_with_one_hash_still_expire_each_at_its_own_deadline() {
    let mut t = RuleTable::with_hasher(Collide);
    let secs = Duration::from_secs;
    t.upsert(spec("a", "10.0.0.1", None, 10), T0);
    t.upsert(spec("b", "10.0.0.2", None, 20), T0);
    t.upsert(spec("c", "10.0.0.3", None, 20), T0);
    // "a" moves to T0+30: its old entry at T0+10 must not take "b" or "c" with it.
    let (how, _) = t.upsert(spec("a", "10.0.0.1", None, 25), T0 + secs(5));
    assert_eq!(how, Upsert::Refreshed);
    assert!(t.expire_until(T0 + secs(10)).is_empty());
    let engids = |rules: Vec<Rule>| -> Vec<String> {
        let mut v: Vec<String> = rules.iter().map(|r| r.key.engid.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(engids(t.expire_until(T0 + secs(20))), ["b", "c"]);
    assert_eq!(t.next_deadline(), Some(T0 + secs(30)));
    let c = t.cancel(&spec("a", "10.0.0.1", None, 1).key).unwrap();
    assert_eq!(c.key.engid, "a");
    assert!(t.is_empty());
    assert!(t.expire_until(T0 + secs(40)).is_empty());
    assert_eq!(t.next_deadline(), None);
}

#[test]
fn keys_differ_by_engid_and_port() {
    let mut t = RuleTable::new();
    t.upsert(spec("e1", "10.0.0.1", None, 10), T0);
    t.upsert(spec("e2", "10.0.0.1", None, 10), T0);
    t.upsert(spec("e1", "10.0.0.1", Some(22), 10), T0);
    assert_eq!(t.len(), 3);
    let key = RuleKey {
        engid: "e1".into(),
        host: "10.0.0.1".parse().unwrap(),
        port: Some(22),
    };
    assert!(t.cancel(&key).is_some());
    assert!(t.cancel(&key).is_none());
    assert_eq!(t.flush().len(), 2);
    assert!(t.next_deadline().is_none());
}

#[test]
fn matching_rules() {
    let mut t = RuleTable::new();
    t.upsert(spec("e1", "10.0.0.1", Some(22), 10), T0);
    let m = t.matcher(Some("eth1"));
    // Either direction, either port.
    assert!(m
        .lookup(&seg("10.0.0.1", 5000, "10.0.0.2", 22), T0)
        .is_some());
    assert!(m
        .lookup(&seg("10.0.0.2", 22, "10.0.0.1", 5000), T0)
        .is_some());
    assert!(m
        .lookup(&seg("10.0.0.1", 22, "10.0.0.9", 5000), T0)
        .is_some());
    // Other port, other host.
    assert!(m
        .lookup(&seg("10.0.0.1", 5000, "10.0.0.2", 80), T0)
        .is_none());
    assert!(m
        .lookup(&seg("10.0.0.3", 5000, "10.0.0.2", 22), T0)
        .is_none());
    // Other sniff interface.
    assert!(t.matcher(Some("eth2")).is_empty());
}

#[test]
fn counts_the_segment_on_every_matching_rule() {
    let mut t = RuleTable::new();
    t.upsert(spec("e1", "10.0.0.1", None, 10), T0);
    t.upsert(spec("e2", "10.0.0.2", Some(80), 10), T0);
    let m = t.matcher(None);
    assert!(m
        .lookup(&seg("10.0.0.1", 5000, "10.0.0.2", 80), T0)
        .is_some());
    for r in t.iter() {
        assert_eq!(r.stats.segments_matched(), 1, "{:?}", r.key);
    }
}

#[test]
fn each_rule_keeps_its_reset_interface() {
    let mut t = RuleTable::new();
    let mut s = spec("e1", "10.0.0.1", None, 10);
    s.reset_if = "mgmt0".into();
    t.upsert(s, T0);
    t.upsert(spec("e2", "10.0.0.2", None, 10), T0);
    let m = t.matcher(None);
    let hit = m.lookup(&seg("10.0.0.2", 1, "10.0.0.5", 2), T0).unwrap();
    assert_eq!(&**hit.reset_if, "eth0");
    let hit = m.lookup(&seg("10.0.0.5", 1, "10.0.0.1", 2), T0).unwrap();
    assert_eq!(&**hit.reset_if, "mgmt0");
    assert_eq!(m.reset_interfaces().len(), 2);
}

#[test]
fn ipv6_hosts_match() {
    let mut t = RuleTable::new();
    t.upsert(spec("e1", "fd77::1", None, 10), T0);
    let m = t.matcher(None);
    assert!(m.lookup(&seg("fd77::2", 80, "fd77::1", 4000), T0).is_some());
    assert!(m.lookup(&seg("fd77::2", 80, "fd77::3", 4000), T0).is_none());
}

/// What a snapshot answers for the flow between `a` and `b` at `now`: the first rule's reset
/// interface and counters (by identity).
fn answer(
    m: &Matcher,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
    now: Instant,
) -> Option<(String, usize)> {
    m.lookup_flow(a, b, now)
        .map(|h| (h.reset_if.to_string(), Arc::as_ptr(h.stats) as usize))
}

#[test]
fn an_amended_snapshot_answers_as_one_built_whole() {
    let hosts = [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
        "192.168.1.9",
        "2001:db8::1",
        "2001:db8::2",
    ];
    let hosts: Vec<IpAddr> = hosts.iter().map(|h| h.parse().unwrap()).collect();
    let ports = [None, Some(22), Some(443)];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut t = RuleTable::new();
    let mut now = T0;
    let mut base = Arc::new(t.matcher(Some("eth1")));
    t.take_changes();
    let mut changed = foldhash::HashSet::default();
    let mut amended_checks = 0;
    for step in 0..3_000 {
        let key = RuleKey {
            engid: ["e1", "e2", "e3"][next(3)].into(),
            host: hosts[next(hosts.len())],
            port: ports[next(ports.len())],
        };
        match next(10) {
            0..=4 => {
                let spec = RuleSpec {
                    key,
                    sniff_if: ["eth1", "eth2"][next(2)].into(),
                    reset_if: ["eth0", "eth3", "eth4"][next(3)].into(),
                    duration: Duration::from_secs(1 + next(20) as u64),
                };
                t.upsert(spec, now);
            }
            5 | 6 => {
                t.cancel(&key);
            }
            7 => {
                now = now + Duration::from_secs(next(5) as u64);
                t.expire_until(now);
            }
            8 => {
                if let Some(rule) = t.get(&key).cloned() {
                    t.cancel(&key);
                    t.put_back(rule);
                }
            }
            _ if step % 97 == 0 => {
                t.flush();
            }
            _ => {}
        }
        match t.take_changes() {
            Some(hosts) if next(40) != 0 => changed.extend(hosts),
            _ => {
                base = Arc::new(t.matcher(Some("eth1")));
                changed.clear();
            }
        }
        let rules = t.rules_of(&changed, |r| r.sniff_if == "eth1");
        let amended = Matcher::amend(&base, &changed, rules);
        let whole = t.matcher(Some("eth1"));
        assert_eq!(amended.host_count(), whole.host_count(), "step {step}");
        assert_eq!(amended.is_empty(), whole.is_empty(), "step {step}");
        assert_eq!(amended.host_ports(), whole.host_ports(), "step {step}");
        for a in &hosts {
            for b in &hosts {
                for (pa, pb) in [(22, 50_000), (50_000, 443), (1, 2)] {
                    assert_eq!(
                        answer(&amended, (*a, pa), (*b, pb), now),
                        answer(&whole, (*a, pa), (*b, pb), now),
                        "step {step}: {a}:{pa} - {b}:{pb}"
                    );
                }
            }
        }
        amended_checks += usize::from(amended.is_amendment() && !changed.is_empty());
    }
    assert!(
        amended_checks > 1_000,
        "only {amended_checks} amendments checked"
    );
}
