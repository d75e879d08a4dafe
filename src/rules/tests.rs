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
