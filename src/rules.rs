//! The time-boxed rule table, keyed by (engid, host, optional port), and its hot-path snapshot.
//!
//! [`RuleTable`] is the authority: the control socket adds, refreshes and cancels rules in it and
//! a timer calls [`RuleTable::expire_until`] at [`RuleTable::next_deadline`]. Capture threads
//! never touch it; they get a [`Matcher`], an immutable per-interface index by host that checks
//! each rule's deadline against the packet's own timestamp, so a rule stops matching exactly at
//! its deadline even before the timer has removed it.
use crate::config::Cidr;
use crate::time::Instant;
use crate::wire::Segment;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What identifies a rule. Registering the same key again refreshes the rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleKey {
    pub engid: String,
    pub host: IpAddr,
    pub port: Option<u16>,
}

/// A rule as requested: key, interfaces and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub key: RuleKey,
    pub sniff_if: String,
    pub reset_if: String,
    pub duration: Duration,
}

/// How many reset ends a rule remembers for `tcpreset show`.
pub const MAX_RESET_RECORDS: usize = 1000;

/// Counters a rule accumulates; shared with the capture threads' matchers.
#[derive(Debug, Default)]
pub struct RuleStats {
    pub segments_matched: AtomicU64,
    pub rsts_sent: AtomicU64,
    /// Connection ends that got their first RST, the newest [`MAX_RESET_RECORDS`] kept.
    resets: Mutex<VecDeque<ResetRecord>>,
    ends_reset: AtomicU64,
}

/// One end of a connection that a rule sent a RST to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetRecord {
    /// When the first RST went out.
    pub at: Instant,
    /// The end that received it.
    pub end: (IpAddr, u16),
    /// The other end of the connection.
    pub peer: (IpAddr, u16),
}

impl RuleStats {
    pub fn segments_matched(&self) -> u64 {
        self.segments_matched.load(Ordering::Relaxed)
    }

    pub fn rsts_sent(&self) -> u64 {
        self.rsts_sent.load(Ordering::Relaxed)
    }

    /// Connection ends reset so far (all of them, not only those remembered).
    pub fn ends_reset(&self) -> u64 {
        self.ends_reset.load(Ordering::Relaxed)
    }

    /// Remembers the first RST toward a connection end.
    pub fn record_reset(&self, record: ResetRecord) {
        self.ends_reset.fetch_add(1, Ordering::Relaxed);
        let mut resets = self.resets.lock().unwrap_or_else(|p| p.into_inner());
        if resets.len() == MAX_RESET_RECORDS {
            resets.pop_front();
        }
        resets.push_back(record);
    }

    /// The remembered reset ends, oldest first.
    pub fn resets(&self) -> Vec<ResetRecord> {
        let resets = self.resets.lock().unwrap_or_else(|p| p.into_inner());
        resets.iter().copied().collect()
    }
}

/// A live rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub key: RuleKey,
    pub sniff_if: String,
    pub reset_if: String,
    pub created: Instant,
    pub expires: Instant,
    pub stats: Arc<RuleStats>,
}

/// What [`RuleTable::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Added,
    Refreshed,
}

/// All live rules with their deadlines.
#[derive(Debug, Default)]
pub struct RuleTable {
    rules: BTreeMap<RuleKey, Rule>,
    deadlines: BTreeSet<(Instant, RuleKey)>,
}

impl RuleTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule, or refreshes the rule with the same key: its deadline becomes
    /// `now + duration` and its interfaces those of `spec`; its counters are kept.
    pub fn upsert(&mut self, spec: RuleSpec, now: Instant) -> (Upsert, &Rule) {
        let expires = now + spec.duration;
        self.insert(spec, now, expires)
    }

    /// Puts back a rule with a known creation time and deadline (persisted state).
    pub fn restore(&mut self, spec: RuleSpec, created: Instant, expires: Instant) -> Upsert {
        self.insert(spec, created, expires).0
    }

    fn insert(&mut self, spec: RuleSpec, created: Instant, expires: Instant) -> (Upsert, &Rule) {
        let key = spec.key;
        let how = match self.rules.get_mut(&key) {
            Some(rule) => {
                self.deadlines.remove(&(rule.expires, key.clone()));
                rule.expires = expires;
                rule.sniff_if = spec.sniff_if;
                rule.reset_if = spec.reset_if;
                Upsert::Refreshed
            }
            None => {
                let rule = Rule {
                    key: key.clone(),
                    sniff_if: spec.sniff_if,
                    reset_if: spec.reset_if,
                    created,
                    expires,
                    stats: Arc::default(),
                };
                self.rules.insert(key.clone(), rule);
                Upsert::Added
            }
        };
        self.deadlines.insert((expires, key.clone()));
        (how, &self.rules[&key])
    }

    pub fn get(&self, key: &RuleKey) -> Option<&Rule> {
        self.rules.get(key)
    }

    pub fn cancel(&mut self, key: &RuleKey) -> Option<Rule> {
        let rule = self.rules.remove(key)?;
        self.deadlines.remove(&(rule.expires, rule.key.clone()));
        Some(rule)
    }

    /// Removes every rule.
    pub fn flush(&mut self) -> Vec<Rule> {
        self.deadlines.clear();
        std::mem::take(&mut self.rules).into_values().collect()
    }

    /// Removes and returns the rules whose deadline is at or before `now`.
    pub fn expire_until(&mut self, now: Instant) -> Vec<Rule> {
        let mut expired = Vec::new();
        while let Some((deadline, _)) = self.deadlines.first() {
            if *deadline > now {
                break;
            }
            let (_, key) = self.deadlines.pop_first().expect("checked above");
            expired.extend(self.rules.remove(&key));
        }
        expired
    }

    /// The next deadline, if any rule lives.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    /// Rules in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.values()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The sniff interfaces that live rules name.
    pub fn sniff_interfaces(&self) -> BTreeSet<String> {
        self.rules.values().map(|r| r.sniff_if.clone()).collect()
    }

    /// The snapshot a capture thread on `sniff_if` needs; `None` takes every rule (replay).
    pub fn matcher(&self, sniff_if: Option<&str>) -> Matcher {
        let mut m = Matcher::default();
        for rule in self.rules.values() {
            if sniff_if.is_some_and(|s| s != rule.sniff_if) {
                continue;
            }
            let reset_if = match m.reset_ifs.iter().find(|r| ***r == *rule.reset_if) {
                Some(r) => Arc::clone(r),
                None => {
                    let r: Arc<str> = Arc::from(rule.reset_if.as_str());
                    m.reset_ifs.push(Arc::clone(&r));
                    r
                }
            };
            m.by_host.entry(rule.key.host).or_default().push(Entry {
                port: rule.key.port,
                expires: rule.expires,
                reset_if,
                stats: Arc::clone(&rule.stats),
            });
        }
        m
    }
}

#[derive(Debug)]
struct Entry {
    port: Option<u16>,
    expires: Instant,
    reset_if: Arc<str>,
    stats: Arc<RuleStats>,
}

/// An immutable index of rules by host, for one sniff interface, with the protected networks
/// that never receive a RST.
#[derive(Debug, Default)]
pub struct Matcher {
    by_host: HashMap<IpAddr, Vec<Entry>>,
    reset_ifs: Vec<Arc<str>>,
    protected: Arc<[Cidr]>,
}

/// A segment matched: where to send the RSTs and whose counters to bump.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    /// The reset interface of the first matching rule.
    pub reset_if: &'a Arc<str>,
    /// The first matching rule's counters; RSTs are counted there.
    pub stats: &'a Arc<RuleStats>,
    /// When that rule expires: nothing held back for it is sent from then on.
    pub expires: Instant,
}

impl Matcher {
    /// The same rules, with `protected` networks that are never sent a RST.
    pub fn with_protected(mut self, protected: Arc<[Cidr]>) -> Self {
        self.protected = protected;
        self
    }

    /// Whether `ip` lies in a protected network.
    pub fn is_protected(&self, ip: IpAddr) -> bool {
        self.protected.iter().any(|c| c.contains(ip))
    }

    /// The reset interfaces the rules name.
    pub fn reset_interfaces(&self) -> &[Arc<str>] {
        &self.reset_ifs
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }

    /// The rules alive at `now` that cover a segment between `src` and `dst`.
    fn covering(
        &self,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        now: Instant,
    ) -> impl Iterator<Item = &Entry> {
        let second = if src.0 == dst.0 {
            None
        } else {
            self.by_host.get(&dst.0)
        };
        self.by_host
            .get(&src.0)
            .into_iter()
            .chain(second)
            .flatten()
            .filter(move |e| now < e.expires && e.port.is_none_or(|p| src.1 == p || dst.1 == p))
    }

    /// Finds the rules alive at `now` that cover `seg`, counts the segment on each of them and
    /// returns the first.
    pub fn lookup(&self, seg: &Segment, now: Instant) -> Option<Hit<'_>> {
        let mut first = None;
        for e in self.covering((seg.src, seg.src_port), (seg.dst, seg.dst_port), now) {
            e.stats.segments_matched.fetch_add(1, Ordering::Relaxed);
            first.get_or_insert(Hit {
                reset_if: &e.reset_if,
                stats: &e.stats,
                expires: e.expires,
            });
        }
        first
    }

    /// The first rule alive at `now` that covers the flow between `a` and `b` (no counting).
    pub fn lookup_flow(&self, a: (IpAddr, u16), b: (IpAddr, u16), now: Instant) -> Option<Hit<'_>> {
        self.covering(a, b, now).next().map(|e| Hit {
            reset_if: &e.reset_if,
            stats: &e.stats,
            expires: e.expires,
        })
    }
}

#[cfg(test)]
mod tests;
