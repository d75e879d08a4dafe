//! [`Matcher`]: the immutable, per-interface index of rules by host that capture threads use.
use super::hosts::{HostBits, HostIndex};
use super::{Rule, RuleStats};
use crate::config::Cidr;
use crate::time::Instant;
use crate::wire::Segment;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Debug)]
struct Entry {
    port: Option<u16>,
    /// Index into `reset_ifs`.
    reset_if: u32,
    /// Also holds the deadline, which a refresh moves without a new snapshot.
    stats: Arc<RuleStats>,
}

/// An immutable index of rules by host, for one sniff interface, with the protected networks
/// that never receive a RST.
///
/// The entries of all rules lie in one vector, grouped by host; `by_host` gives each host's
/// range, so a rule costs one entry and a share of one hash slot, with no allocation of its own.
#[derive(Debug, Default)]
pub struct Matcher {
    by_host: HostIndex,
    entries: Vec<Entry>,
    /// Two bits per rule host, small enough to stay in cache: most segments touch no rule
    /// host, and this answers them without a probe of `by_host`.
    maybe: HostBits,
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
    /// Indexes `rules`. A host's rules are kept in key order, so the first that matches a
    /// segment (whose counters take the RSTs) does not depend on the order they came in.
    pub fn new<'a>(rules: impl Iterator<Item = &'a Rule>) -> Self {
        // Group by host without sorting everything: count each host's rules, lay the hosts'
        // ranges end to end, then drop each rule into its host's range.
        let mut all = Vec::with_capacity(rules.size_hint().1.unwrap_or(0));
        all.extend(rules);
        let rules = all;
        let mut m = Matcher::default();
        m.by_host.reserve_v4(rules.len());
        for rule in &rules {
            m.by_host.span_mut(&rule.key.host).1 += 1;
        }
        m.maybe = HostBits::with_hosts(m.by_host.len());
        let mut next = 0;
        for (at, n) in m.by_host.spans_mut() {
            *at = next;
            next += std::mem::take(n);
        }
        let mut slots: Vec<Option<&Rule>> = vec![None; rules.len()];
        for rule in &rules {
            let (at, n) = m.by_host.span_mut(&rule.key.host);
            slots[(*at + *n) as usize] = Some(rule);
            *n += 1;
        }
        let mut placed: Vec<&Rule> = Vec::with_capacity(rules.len());
        placed.extend(slots.into_iter().flatten());
        for (_, (at, n)) in m.by_host.iter() {
            placed[at as usize..(at + n) as usize].sort_unstable_by(|a, b| a.key.cmp(&b.key));
        }
        m.entries.reserve_exact(placed.len());
        for rule in placed {
            let reset_if = match m.reset_ifs.iter().position(|r| **r == *rule.reset_if) {
                Some(i) => i,
                None => {
                    m.reset_ifs.push(Arc::from(rule.reset_if.as_str()));
                    m.reset_ifs.len() - 1
                }
            };
            m.entries.push(Entry {
                port: rule.key.port,
                reset_if: u32::try_from(reset_if).expect("reset interfaces are counted in u32"),
                stats: Arc::clone(&rule.stats),
            });
            m.maybe.insert(&rule.key.host);
        }
        m
    }

    /// The entries of `host`'s rules.
    fn of(&self, host: &IpAddr) -> &[Entry] {
        if !self.maybe.may_contain(host) {
            return &[];
        }
        match self.by_host.get(host) {
            Some((at, n)) => &self.entries[at as usize..(at + n) as usize],
            None => &[],
        }
    }

    /// The same rules, with `protected` networks that are never sent a RST.
    pub fn with_protected(mut self, protected: Arc<[Cidr]>) -> Self {
        self.protected = protected;
        self
    }

    /// How many hosts the rules name.
    pub fn host_count(&self) -> usize {
        self.by_host.len()
    }

    /// Each rule's host and port, once (for the kernel prefilter).
    pub fn host_ports(&self) -> Vec<(IpAddr, Option<u16>)> {
        let mut v: Vec<(IpAddr, Option<u16>)> = self
            .by_host
            .iter()
            .flat_map(|(h, (at, n))| {
                self.entries[at as usize..(at + n) as usize]
                    .iter()
                    .map(move |e| (h, e.port))
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
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
            &[][..]
        } else {
            self.of(&dst.0)
        };
        self.of(&src.0).iter().chain(second).filter(move |e| {
            now < e.stats.expires() && e.port.is_none_or(|p| src.1 == p || dst.1 == p)
        })
    }

    /// Finds the rules alive at `now` that cover `seg`, counts the segment on each of them and
    /// returns the first.
    pub fn lookup(&self, seg: &Segment, now: Instant) -> Option<Hit<'_>> {
        let mut first = None;
        for e in self.covering((seg.src, seg.src_port), (seg.dst, seg.dst_port), now) {
            e.stats.segments_matched.fetch_add(1, Ordering::Relaxed);
            first.get_or_insert(Hit {
                reset_if: &self.reset_ifs[e.reset_if as usize],
                stats: &e.stats,
                expires: e.stats.expires(),
            });
        }
        first
    }

    /// The first rule alive at `now` that covers the flow between `a` and `b` (no counting).
    pub fn lookup_flow(&self, a: (IpAddr, u16), b: (IpAddr, u16), now: Instant) -> Option<Hit<'_>> {
        self.covering(a, b, now).next().map(|e| Hit {
            reset_if: &self.reset_ifs[e.reset_if as usize],
            stats: &e.stats,
            expires: e.stats.expires(),
        })
    }
}
