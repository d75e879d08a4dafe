//! The time-boxed rule table, keyed by (engid, host, optional port), and its hot-path snapshot.
//!
//! [`RuleTable`] is the authority: the control socket adds, refreshes and cancels rules in it and
//! a timer calls [`RuleTable::expire_until`] at [`RuleTable::next_deadline`]. Capture threads
//! never touch it; they get a [`Matcher`], an immutable per-interface index by host that checks
//! each rule's deadline against the packet's own timestamp, so a rule stops matching exactly at
//! its deadline even before the timer has removed it.
use crate::time::Instant;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What identifies a rule. Registering the same key again refreshes the rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleKey {
    pub engid: CompactString,
    pub host: IpAddr,
    pub port: Option<u16>,
}

/// A rule as requested: key, interfaces and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub key: RuleKey,
    pub sniff_if: CompactString,
    pub reset_if: CompactString,
    pub duration: Duration,
}

/// How many reset ends a rule remembers for `tcpreset show`.
pub const MAX_RESET_RECORDS: usize = 1000;

/// What a rule shares with the capture threads' matchers: its engid (for the audit lines) and
/// the counters it accumulates.
#[derive(Debug, Default)]
pub struct RuleStats {
    pub engid: CompactString,
    pub segments_matched: AtomicU64,
    pub rsts_sent: AtomicU64,
    /// Connection ends that got their first RST, the newest [`MAX_RESET_RECORDS`] kept.
    resets: Mutex<VecDeque<ResetRecord>>,
    ends_reset: AtomicU64,
    /// The rule's deadline, in microseconds, as the table last set it: capture snapshots read it
    /// here, so a refresh reaches them without a new snapshot.
    expires: AtomicU64,
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
    pub fn new(engid: CompactString) -> Self {
        RuleStats {
            engid,
            ..RuleStats::default()
        }
    }

    /// The rule's deadline (see [`Rule::expires`]).
    pub fn expires(&self) -> Instant {
        Instant::from_micros(self.expires.load(Ordering::Relaxed))
    }

    fn set_expires(&self, at: Instant) {
        self.expires.store(at.as_micros(), Ordering::Relaxed);
    }

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
    pub sniff_if: CompactString,
    pub reset_if: CompactString,
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

/// All live rules with their deadlines. `S` hashes keys (tests use one that collides).
#[derive(Debug, Default)]
pub struct RuleTable<S = foldhash::fast::RandomState> {
    /// The rules, found by the hash of their key (kept once, inside the rule).
    rules: hashbrown::HashTable<Rule>,
    hasher: S,
    /// Deadlines, earliest on top. Refreshing or cancelling a rule leaves its old entry here;
    /// an entry with no rule of that key hash and deadline is stale and skipped, never on top.
    deadlines: BinaryHeap<Reverse<Deadline>>,
    /// The hosts whose rules changed since [`RuleTable::take_changes`] was last called, or
    /// `None` when too many did to list (or the table was flushed): then all of them.
    changed: Option<Vec<IpAddr>>,
}

/// The most changed hosts [`RuleTable`] lists before it says only "all" (a table nobody asks,
/// as in replay, stays small).
const MOST_CHANGES_LISTED: usize = 4096;

/// A rule's deadline and the hash of its key (16 bytes, where the key itself takes 48), ordered
/// by time alone: rules that share a deadline need no ordering.
///
/// Two rules whose keys share a hash are told apart by their deadlines: an entry expires the
/// rule with its hash and its deadline, whichever that is, and each rule has an entry of its
/// own, so every rule still goes at its own deadline.
#[derive(Debug)]
struct Deadline(Instant, u64);

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Deadline {}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl RuleTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// A table with room for `n` rules.
    pub fn with_capacity(n: usize) -> Self {
        RuleTable {
            rules: hashbrown::HashTable::with_capacity(n),
            hasher: Default::default(),
            deadlines: BinaryHeap::with_capacity(n),
            changed: Some(Vec::new()),
        }
    }
}

impl<S: BuildHasher> RuleTable<S> {
    /// An empty table hashing keys with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        RuleTable {
            rules: hashbrown::HashTable::new(),
            hasher,
            deadlines: BinaryHeap::new(),
            changed: Some(Vec::new()),
        }
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

    /// Puts `rule` back as it was, counters included (a change undone), in place of any rule
    /// of its key.
    pub fn put_back(&mut self, rule: Rule) {
        self.touch(rule.key.host);
        let hash = self.hash(&rule.key);
        let hasher = &self.hasher;
        let rehash = |r: &Rule| hasher.hash_one(&r.key);
        self.deadlines.push(Reverse(Deadline(rule.expires, hash)));
        rule.stats.set_expires(rule.expires);
        match self.rules.entry(hash, |r| r.key == rule.key, rehash) {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = rule,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(rule);
            }
        }
        self.drop_stale();
    }

    fn hash(&self, key: &RuleKey) -> u64 {
        self.hasher.hash_one(key)
    }

    fn insert(&mut self, spec: RuleSpec, created: Instant, expires: Instant) -> (Upsert, &Rule) {
        use hashbrown::hash_table::Entry;
        self.touch(spec.key.host);
        let hash = self.hash(&spec.key);
        let hasher = &self.hasher;
        let rehash = |r: &Rule| hasher.hash_one(&r.key);
        let (how, at) = match self.rules.entry(hash, |r| r.key == spec.key, rehash) {
            Entry::Occupied(mut e) => {
                let rule = e.get_mut();
                rule.expires = expires;
                rule.stats.set_expires(expires);
                rule.sniff_if = spec.sniff_if;
                rule.reset_if = spec.reset_if;
                (Upsert::Refreshed, e.bucket_index())
            }
            Entry::Vacant(e) => {
                let stats = Arc::new(RuleStats::new(spec.key.engid.clone()));
                stats.set_expires(expires);
                let e = e.insert(Rule {
                    key: spec.key,
                    sniff_if: spec.sniff_if,
                    reset_if: spec.reset_if,
                    created,
                    expires,
                    stats,
                });
                (Upsert::Added, e.bucket_index())
            }
        };
        self.deadlines.push(Reverse(Deadline(expires, hash)));
        // Only pops heap entries: the rule stays in its bucket.
        self.drop_stale();
        (how, self.rules.get_bucket(at).expect("inserted above"))
    }

    fn find(&self, key: &RuleKey) -> Option<&Rule> {
        self.rules.find(self.hash(key), |r| r.key == *key)
    }

    fn remove(&mut self, key: &RuleKey) -> Option<Rule> {
        self.touch(key.host);
        let entry = self.rules.find_entry(self.hash(key), |r| r.key == *key);
        entry.ok().map(|e| e.remove().0)
    }

    /// Notes that `host`'s rules changed.
    fn touch(&mut self, host: IpAddr) {
        if let Some(hosts) = &mut self.changed {
            if hosts.len() < MOST_CHANGES_LISTED {
                hosts.push(host);
            } else {
                self.changed = None;
            }
        }
    }

    /// The hosts whose rules changed since the last call (each at least once), or `None` for
    /// "any of them may have".
    pub fn take_changes(&mut self) -> Option<Vec<IpAddr>> {
        self.changed.replace(Vec::new())
    }

    /// The rules of `hosts` that `keep` picks.
    pub fn rules_of<'a>(
        &'a self,
        hosts: &'a foldhash::HashSet<IpAddr>,
        keep: impl Fn(&Rule) -> bool + 'a,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules
            .iter()
            .filter(move |r| hosts.contains(&r.key.host) && keep(r))
    }

    /// Whether a deadline entry still belongs to a rule.
    fn is_live(&self, &Deadline(deadline, hash): &Deadline) -> bool {
        self.rules.find(hash, |r| r.expires == deadline).is_some()
    }

    /// Pops stale entries off the top, and rebuilds the heap when they outnumber the rules.
    fn drop_stale(&mut self) {
        // Every rule has a live entry, so with no more entries than rules none is stale (the
        // common case of adding rules: no lookup).
        while self.deadlines.len() > self.rules.len() {
            let Some(Reverse(top)) = self.deadlines.peek() else {
                break;
            };
            if self.is_live(top) {
                break;
            }
            self.deadlines.pop();
        }
        if self.deadlines.len() > 2 * self.rules.len() + 1024 {
            self.deadlines = self
                .rules
                .iter()
                .map(|r| Reverse(Deadline(r.expires, self.hash(&r.key))))
                .collect();
        }
    }

    pub fn get(&self, key: &RuleKey) -> Option<&Rule> {
        self.find(key)
    }

    pub fn cancel(&mut self, key: &RuleKey) -> Option<Rule> {
        let rule = self.remove(key)?;
        self.drop_stale();
        Some(rule)
    }

    /// Removes every rule.
    pub fn flush(&mut self) -> Vec<Rule> {
        self.changed = None;
        self.deadlines.clear();
        let mut rules: Vec<Rule> = std::mem::take(&mut self.rules).into_iter().collect();
        rules.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        rules
    }

    /// Removes and returns the rules whose deadline is at or before `now`.
    pub fn expire_until(&mut self, now: Instant) -> Vec<Rule> {
        let mut expired = Vec::new();
        while let Some(Reverse(Deadline(deadline, _))) = self.deadlines.peek() {
            if *deadline > now {
                break;
            }
            let Some(Reverse(entry)) = self.deadlines.pop() else {
                break;
            };
            let Deadline(deadline, hash) = entry;
            if let Ok(rule) = self.rules.find_entry(hash, |r| r.expires == deadline) {
                expired.push(rule.remove().0);
            }
        }
        for r in &expired {
            self.touch(r.key.host);
        }
        self.drop_stale();
        expired
    }

    /// The next deadline, if any rule lives.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse(Deadline(d, _))| *d)
    }

    /// Rules in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        let mut rules: Vec<&Rule> = self.rules.iter().collect();
        rules.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        rules.into_iter()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Rules still alive at `now` (those whose deadline has come may not be removed yet).
    pub fn alive_at(&self, now: Instant) -> usize {
        self.rules.iter().filter(|r| r.expires > now).count()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The sniff interfaces that live rules name.
    pub fn sniff_interfaces(&self) -> BTreeSet<String> {
        names(self.rules.iter().map(|r| &r.sniff_if))
    }

    /// The reset interfaces that live rules name.
    pub fn reset_interfaces(&self) -> BTreeSet<String> {
        names(self.rules.iter().map(|r| &r.reset_if))
    }

    /// The snapshot a capture thread on `sniff_if` needs; `None` takes every rule (replay).
    pub fn matcher(&self, sniff_if: Option<&str>) -> Matcher {
        self.matcher_without(sniff_if, |_| false)
    }

    /// [`RuleTable::matcher`] leaving out the rules `suspended` picks.
    pub fn matcher_without(
        &self,
        sniff_if: Option<&str>,
        suspended: impl Fn(&Rule) -> bool,
    ) -> Matcher {
        Matcher::new(
            self.rules
                .iter()
                .filter(|r| sniff_if.is_none_or(|s| s == r.sniff_if) && !suspended(r)),
        )
    }
}

/// The distinct names among `all`: a handful of interfaces named by many rules, so a short list
/// beats a set of them all (no allocation, no ordering per rule).
fn names<'a>(all: impl Iterator<Item = &'a CompactString>) -> BTreeSet<String> {
    let mut seen: Vec<&CompactString> = Vec::new();
    for name in all {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen.into_iter().map(|n| n.to_string()).collect()
}

mod hosts;
mod matcher;
pub use matcher::{Hit, Matcher};

#[cfg(test)]
pub(crate) mod tests;
