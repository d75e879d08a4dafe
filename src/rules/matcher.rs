//! [`Matcher`]: the immutable, per-interface index of rules by host that capture threads use,
//! built whole or as a small amendment of an earlier one (the hosts whose rules changed).
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
///
/// An amendment ([`Matcher::amend`]) holds the rules of the hosts that changed since its base
/// was built, and answers for those hosts (a host with no rule left has an empty range here);
/// every other host is looked up in the base. Building one costs the changed hosts' rules, not
/// the table's.
#[derive(Debug, Default)]
pub struct Matcher {
    by_host: HostIndex,
    entries: Vec<Entry>,
    /// Two bits per host of `by_host`, small enough to stay in cache: most segments touch no
    /// rule host, and this answers them without a probe of `by_host`.
    maybe: HostBits,
    /// The names `entries` index; in an amendment, the base's names and then its own.
    reset_ifs: Vec<Arc<str>>,
    protected: Arc<[Cidr]>,
    /// The whole snapshot this one amends (never itself an amendment).
    base: Option<Arc<Matcher>>,
    /// How many hosts have a rule, base included.
    hosts: usize,
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
        let mut m = Matcher::build(rules, &foldhash::HashSet::default(), Vec::new());
        m.hosts = m.by_host.len();
        m
    }

    /// `base` with the rules of the `changed` hosts replaced by `rules`, which must be those
    /// hosts' rules now (a changed host may have none left). `base` is the snapshot built
    /// whole; amending an amendment amends its base.
    pub fn amend<'a>(
        base: &Arc<Matcher>,
        changed: &foldhash::HashSet<IpAddr>,
        rules: impl Iterator<Item = &'a Rule>,
    ) -> Self {
        let base = match &base.base {
            Some(b) => b,
            None => base,
        };
        let mut m = Matcher::build(rules, changed, base.reset_ifs.clone());
        let hidden = changed
            .iter()
            .filter(|h| base.by_host.get(h).is_some())
            .count();
        let own = m.by_host.iter().filter(|(_, (_, n))| *n > 0).count();
        m.hosts = base.hosts - hidden + own;
        m.protected = Arc::clone(&base.protected);
        m.base = Some(Arc::clone(base));
        m
    }

    /// The index of `rules`, with an empty range for each host of `shadowed` that has none,
    /// its reset interface names following `reset_ifs`.
    fn build<'a>(
        rules: impl Iterator<Item = &'a Rule>,
        shadowed: &foldhash::HashSet<IpAddr>,
        reset_ifs: Vec<Arc<str>>,
    ) -> Self {
        // Group by host without sorting everything: count each host's rules, lay the hosts'
        // ranges end to end, then drop each rule into its host's range.
        // No room reserved for the upper bound: a filter over the whole table would reserve
        // the table's size for an amendment's handful of rules.
        let rules: Vec<&Rule> = rules.collect();
        let mut m = Matcher {
            reset_ifs,
            ..Matcher::default()
        };
        m.by_host.reserve_v4(rules.len() + shadowed.len());
        for host in shadowed {
            m.by_host.span_mut(host);
        }
        for rule in &rules {
            m.by_host.span_mut(&rule.key.host).1 += 1;
        }
        m.maybe = HostBits::with_hosts(m.by_host.len());
        for host in shadowed {
            m.maybe.insert(host);
        }
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

    /// Whether this is an amendment of an earlier snapshot.
    pub fn is_amendment(&self) -> bool {
        self.base.is_some()
    }

    /// The entries of `host`'s rules, and the snapshot whose names they index.
    fn of(&self, host: &IpAddr) -> (&Matcher, &[Entry]) {
        if self.maybe.may_contain(host) {
            if let Some((at, n)) = self.by_host.get(host) {
                return (self, &self.entries[at as usize..(at + n) as usize]);
            }
        }
        match &self.base {
            Some(base) => base.of(host),
            None => (self, &[]),
        }
    }

    /// The same rules, with `protected` networks that are never sent a RST.
    pub fn with_protected(mut self, protected: Arc<[Cidr]>) -> Self {
        self.protected = protected;
        self
    }

    /// How many hosts the rules name.
    pub fn host_count(&self) -> usize {
        self.hosts
    }

    /// Each rule's host and port, once (for the kernel prefilter).
    pub fn host_ports(&self) -> Vec<(IpAddr, Option<u16>)> {
        let mut v = self.own_host_ports();
        if let Some(base) = &self.base {
            v.extend(
                base.own_host_ports()
                    .into_iter()
                    .filter(|(h, _)| self.by_host.get(h).is_none()),
            );
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    fn own_host_ports(&self) -> Vec<(IpAddr, Option<u16>)> {
        self.by_host
            .iter()
            .flat_map(|(h, (at, n))| {
                self.entries[at as usize..(at + n) as usize]
                    .iter()
                    .map(move |e| (h, e.port))
            })
            .collect()
    }

    /// Whether `ip` lies in a protected network.
    pub fn is_protected(&self, ip: IpAddr) -> bool {
        self.protected.iter().any(|c| c.contains(ip))
    }

    /// The reset interfaces the rules name (in an amendment, also those its base's rules
    /// named).
    pub fn reset_interfaces(&self) -> &[Arc<str>] {
        &self.reset_ifs
    }

    pub fn is_empty(&self) -> bool {
        self.hosts == 0
    }

    /// The rules alive at `now` that cover a segment between `src` and `dst`.
    fn covering(
        &self,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        now: Instant,
    ) -> impl Iterator<Item = (&Matcher, &Entry)> {
        let (at_src, first) = self.of(&src.0);
        let (at_dst, second) = if src.0 == dst.0 {
            (self, &[][..])
        } else {
            self.of(&dst.0)
        };
        let first = first.iter().map(move |e| (at_src, e));
        let second = second.iter().map(move |e| (at_dst, e));
        first.chain(second).filter(move |(_, e)| {
            now < e.stats.expires() && e.port.is_none_or(|p| src.1 == p || dst.1 == p)
        })
    }

    /// Finds the rules alive at `now` that cover `seg`, counts the segment on each of them and
    /// returns the first.
    pub fn lookup(&self, seg: &Segment, now: Instant) -> Option<Hit<'_>> {
        let mut first = None;
        for (at, e) in self.covering((seg.src, seg.src_port), (seg.dst, seg.dst_port), now) {
            e.stats.segments_matched.fetch_add(1, Ordering::Relaxed);
            first.get_or_insert(Hit {
                reset_if: &at.reset_ifs[e.reset_if as usize],
                stats: &e.stats,
                expires: e.stats.expires(),
            });
        }
        first
    }

    /// The first rule alive at `now` that covers the flow between `a` and `b` (no counting).
    pub fn lookup_flow(&self, a: (IpAddr, u16), b: (IpAddr, u16), now: Instant) -> Option<Hit<'_>> {
        self.covering(a, b, now).next().map(|(at, e)| Hit {
            reset_if: &at.reset_ifs[e.reset_if as usize],
            stats: &e.stats,
            expires: e.stats.expires(),
        })
    }
}
