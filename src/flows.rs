//! Tracked TCP flows: what the sensor knows of each open connection, so that a new rule can reach
//! connections that are silent when it arrives.
//!
//! A flow is learned from its SYN or SYN-ACK and forgotten on a FIN or RST, or when no SYN, FIN
//! or RST of it was seen for the idle timeout (a flow that talks meanwhile dies by its own
//! segments when a rule covers it), or never learned when the daemon's [`FlowBudget`] is used
//! up (counted in [`FlowTable::refused`]). One budget is shared by the tables of every capture,
//! so memory is bounded for the whole daemon, however many interfaces it tracks: an IPv4 flow
//! costs 32 bytes in its hash slot, an IPv6 flow 64 (BENCHMARKS.md has the resident memory of a
//! million of each). The keys come from the network, so the table hashes with a per-process
//! random seed.
use crate::time::Instant;
use crate::wire::{tcp, Flags, Forged, Kind, Segment};
use foldhash::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Default maximum of tracked flows, for the whole daemon.
pub const DEFAULT_MAX_FLOWS: usize = 1_000_000;
/// Default time after which a flow with no traffic is forgotten.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(24 * 3600);
/// How far past the handshake's numbers a probe's sequence number lies: outside any window Linux
/// grants (at most 2^30 with window scaling) unless the flow has moved about 2^30 bytes since,
/// so the receiver answers with an ACK that carries its exact numbers, and ignores the probe.
pub const PROBE_OFFSET: u32 = 1 << 30;

/// How many flows all the tables together may hold, and how many they hold: shared by the
/// capture threads, taken on each new flow and given back when one is forgotten.
#[derive(Debug, Clone)]
pub struct FlowBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    used: AtomicUsize,
    max: AtomicUsize,
}

impl FlowBudget {
    pub fn new(max: usize) -> Self {
        FlowBudget {
            inner: Arc::new(BudgetInner {
                used: AtomicUsize::new(0),
                max: AtomicUsize::new(max),
            }),
        }
    }

    /// Changes the maximum (a reload); flows above a lowered one stay until they are forgotten.
    pub fn set_max(&self, max: usize) {
        self.inner.max.store(max, Ordering::Relaxed);
    }

    pub fn max(&self) -> usize {
        self.inner.max.load(Ordering::Relaxed)
    }

    /// Flows held by all tables now.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Takes one flow's room, if there is any left.
    fn take(&self) -> bool {
        let max = self.max();
        self.inner
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                (u < max).then_some(u + 1)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        if n > 0 {
            self.inner.used.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// A flow's endpoints in canonical order (the smaller address and port first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub a: (IpAddr, u16),
    pub b: (IpAddr, u16),
}

impl FlowKey {
    /// The key of `seg`'s flow and whether `seg` goes from `a` to `b`.
    pub fn of(seg: &Segment) -> (FlowKey, bool) {
        let src = (seg.src, seg.src_port);
        let dst = (seg.dst, seg.dst_port);
        if src <= dst {
            (FlowKey { a: src, b: dst }, true)
        } else {
            (FlowKey { a: dst, b: src }, false)
        }
    }

    /// The 12-byte form of an IPv4 flow's key.
    fn packed(&self) -> Option<V4Key> {
        match (self.a.0, self.b.0) {
            (IpAddr::V4(a), IpAddr::V4(b)) => Some(V4Key {
                a: u32::from(a),
                b: u32::from(b),
                ports: u32::from(self.a.1) << 16 | u32::from(self.b.1),
            }),
            _ => None,
        }
    }
}

/// An IPv4 flow's key as the table stores it: addresses and ports, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct V4Key {
    a: u32,
    b: u32,
    ports: u32,
}

impl V4Key {
    fn unpack(&self) -> FlowKey {
        FlowKey {
            a: (
                IpAddr::V4(Ipv4Addr::from(self.a)),
                (self.ports >> 16) as u16,
            ),
            b: (IpAddr::V4(Ipv4Addr::from(self.b)), self.ports as u16),
        }
    }
}

/// What we last saw travel in one direction of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Direction {
    /// The sequence number after the last segment sent this way.
    next_seq: u32,
    /// The acknowledgment number it carried.
    ack: u32,
}

#[derive(Debug, Clone, Copy)]
struct Flow {
    /// `[a to b, b to a]`.
    dirs: [Direction; 2],
    /// When its last SYN was seen, in whole seconds of [`Instant`].
    seen: u32,
}

fn secs(t: Instant) -> u32 {
    u32::try_from(t.as_micros() / 1_000_000).unwrap_or(u32::MAX)
}

/// What a segment did to a flow already in, or not in, one of the maps.
enum Touched {
    Done,
    /// A SYN of a flow not tracked yet.
    New,
}

fn touch<K: Hash + Eq>(
    map: &mut HashMap<K, Flow>,
    key: &K,
    seg: &Segment,
    (i, dir): (usize, Direction),
    now: u32,
    budget: &FlowBudget,
) -> Touched {
    if seg.flags.rst() || seg.flags.fin() {
        if map.remove(key).is_some() {
            budget.give(1);
        }
        return Touched::Done;
    }
    if let Some(flow) = map.get_mut(key) {
        flow.dirs[i] = dir;
        flow.seen = now;
        // A SYN-ACK tells what the other side will acknowledge from now on.
        let other = &mut flow.dirs[1 - i];
        if seg.flags.syn() && seg.flags.ack() && other.ack == 0 {
            other.ack = seg.seq_end();
        }
        return Touched::Done;
    }
    if seg.flags.syn() {
        Touched::New
    } else {
        Touched::Done
    }
}

/// Gives back a map's slots when it uses less than a quarter of them (and more than a few).
fn shrink<K: Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 4 * map.len().max(1024) {
        map.shrink_to(2 * map.len());
    }
}

/// The open flows seen on one capture; their number counts against a [`FlowBudget`].
#[derive(Debug)]
pub struct FlowTable {
    v4: HashMap<V4Key, Flow>,
    v6: HashMap<FlowKey, Flow>,
    budget: FlowBudget,
    idle: Duration,
    refused: u64,
    last_sweep: Instant,
}

impl Drop for FlowTable {
    fn drop(&mut self) {
        self.budget.give(self.len());
    }
}

impl FlowTable {
    pub fn new(budget: FlowBudget, idle: Duration) -> Self {
        FlowTable {
            v4: HashMap::default(),
            v6: HashMap::default(),
            budget,
            idle,
            refused: 0,
            last_sweep: Instant::ZERO,
        }
    }

    /// Updates the table with a segment seen at `now`.
    pub fn observe(&mut self, seg: &Segment, now: Instant) {
        // Only SYN, FIN and RST change what we keep: the kernel prefilter passes just those for
        // hosts without a rule, and a probe's number need not be fresh (see PROBE_OFFSET).
        if seg.flags.0 & (Flags::SYN.0 | Flags::FIN.0 | Flags::RST.0) == 0 {
            return;
        }
        let (key, forward) = FlowKey::of(seg);
        let packed = key.packed();
        let dir = Direction {
            next_seq: seg.seq_end(),
            ack: seg.ack,
        };
        let i = usize::from(!forward);
        let budget = &self.budget;
        let touched = match &packed {
            Some(k) => touch(&mut self.v4, k, seg, (i, dir), secs(now), budget),
            None => touch(&mut self.v6, &key, seg, (i, dir), secs(now), budget),
        };
        if matches!(touched, Touched::Done) {
            return;
        }
        if !self.budget.take() {
            self.expire_idle(now);
            if !self.budget.take() {
                self.refused += 1;
                return;
            }
        }
        let mut dirs = [Direction::default(); 2];
        dirs[i] = dir;
        let flow = Flow {
            dirs,
            seen: secs(now),
        };
        match packed {
            Some(k) => self.v4.insert(k, flow),
            None => self.v6.insert(key, flow),
        };
        if now >= self.last_sweep + self.idle {
            self.expire_idle(now);
        }
    }

    /// Forgets flows idle for longer than the idle timeout.
    pub fn expire_idle(&mut self, now: Instant) {
        self.last_sweep = now;
        let idle = self.idle;
        let (now, idle) = (secs(now), u32::try_from(idle.as_secs()).unwrap_or(u32::MAX));
        let live = |f: &mut Flow| now < f.seen.saturating_add(idle);
        let before = self.len();
        self.v4.retain(|_, f| live(f));
        self.v6.retain(|_, f| live(f));
        self.budget.give(before - self.len());
        // A table does not keep the slots of flows that went: the budget bounds the daemon's
        // flows, and each table's memory follows its own.
        shrink(&mut self.v4);
        shrink(&mut self.v6);
    }

    /// Every flow with its two probes, toward `b` (as if from `a`) and toward `a`: ACKs outside
    /// the receiver's window, which it answers with its exact numbers.
    pub fn probes(&self) -> impl Iterator<Item = (FlowKey, [Forged; 2])> + '_ {
        let v4 = self.v4.iter().map(|(k, f)| (k.unpack(), f));
        let v6 = self.v6.iter().map(|(k, f)| (*k, f));
        v4.chain(v6).map(|(key, flow)| {
            let probe = |from: (IpAddr, u16), to: (IpAddr, u16), d: Direction| Forged {
                kind: Kind::Probe,
                src: from.0,
                dst: to.0,
                src_port: from.1,
                dst_port: to.1,
                seq: tcp::seq_add(d.next_seq, PROBE_OFFSET),
                ack: Some(d.ack),
            };
            (
                key,
                [
                    probe(key.a, key.b, flow.dirs[0]),
                    probe(key.b, key.a, flow.dirs[1]),
                ],
            )
        })
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// New flows not tracked because the budget was used up.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::Flags;

    /// A segment of the flow `src:sport` -> `dst:dport` with these flags and numbers.
    pub(crate) fn seg(
        src: &str,
        sport: u16,
        dst: &str,
        dport: u16,
        flags: Flags,
        seq: u32,
        ack: u32,
    ) -> Segment {
        Segment {
            flags,
            seq,
            ack,
            ..crate::rules::tests::seg(src, sport, dst, dport)
        }
    }

    const T0: Instant = Instant::from_secs(50);

    #[test]
    fn learns_from_the_handshake_and_probes_both_ends() {
        let mut t = FlowTable::new(FlowBudget::new(10), DEFAULT_IDLE);
        // Mid-stream segments of unknown flows are not learned.
        t.observe(&seg("10.0.0.1", 4000, "10.0.0.2", 80, Flags::ACK, 5, 6), T0);
        assert!(t.is_empty());
        t.observe(
            &seg("10.0.0.1", 4000, "10.0.0.2", 80, Flags::SYN, 100, 0),
            T0,
        );
        t.observe(
            &seg(
                "10.0.0.2",
                80,
                "10.0.0.1",
                4000,
                Flags::SYN | Flags::ACK,
                900,
                101,
            ),
            T0,
        );
        t.observe(
            &seg("10.0.0.1", 4000, "10.0.0.2", 80, Flags::ACK, 101, 901),
            T0,
        );
        assert_eq!(t.len(), 1);
        let mut probes: Vec<Forged> = t.probes().flat_map(|(_, p)| p).collect();
        probes.sort_by_key(|p| p.dst_port);
        let to_server = probes[0];
        let to_client = probes[1];
        assert_eq!((to_server.dst_port, to_server.src_port), (80, 4000));
        assert_eq!(to_server.seq, 101 + PROBE_OFFSET);
        assert_eq!(to_server.ack, Some(901));
        assert_eq!(to_client.seq, 901 + PROBE_OFFSET);
        assert_eq!(to_client.ack, Some(101));
        assert!(probes.iter().all(|p| p.kind == Kind::Probe));
    }

    #[test]
    fn forgets_on_fin_rst_and_idle() {
        let mut t = FlowTable::new(FlowBudget::new(10), Duration::from_secs(60));
        let syn = seg("10.0.0.1", 4000, "10.0.0.2", 80, Flags::SYN, 1, 0);
        t.observe(&syn, T0);
        t.observe(&seg("10.0.0.2", 80, "10.0.0.1", 4000, Flags::RST, 0, 0), T0);
        assert!(t.is_empty());
        t.observe(&syn, T0);
        t.observe(
            &seg(
                "10.0.0.1",
                4000,
                "10.0.0.2",
                80,
                Flags::FIN | Flags::ACK,
                2,
                1,
            ),
            T0,
        );
        assert!(t.is_empty());
        t.observe(&syn, T0);
        t.expire_idle(T0 + Duration::from_secs(59));
        assert_eq!(t.len(), 1);
        t.expire_idle(T0 + Duration::from_secs(60));
        assert!(t.is_empty());
    }

    #[test]
    fn a_full_table_refuses_new_flows() {
        let mut t = FlowTable::new(FlowBudget::new(2), DEFAULT_IDLE);
        for port in 1..=3 {
            t.observe(&seg("10.0.0.1", port, "10.0.0.2", 80, Flags::SYN, 1, 0), T0);
        }
        assert_eq!((t.len(), t.refused()), (2, 1));
    }

    #[test]
    fn one_budget_bounds_every_table_and_comes_back_when_flows_go() {
        let budget = FlowBudget::new(3);
        let idle = Duration::from_secs(60);
        let (mut a, mut b) = (
            FlowTable::new(budget.clone(), idle),
            FlowTable::new(budget.clone(), idle),
        );
        let syn = |port| seg("10.0.0.1", port, "10.0.0.2", 80, Flags::SYN, 1, 0);
        a.observe(&syn(1), T0);
        a.observe(&syn(2), T0);
        b.observe(&syn(3), T0);
        b.observe(&syn(4), T0);
        assert_eq!((a.len(), b.len(), b.refused(), budget.used()), (2, 1, 1, 3));
        // A RST gives its room back; the other table may use it.
        a.observe(&seg("10.0.0.2", 80, "10.0.0.1", 1, Flags::RST, 0, 0), T0);
        assert_eq!(budget.used(), 2);
        b.observe(&syn(4), T0);
        assert_eq!((b.len(), budget.used()), (2, 3));
        // Idle flows and a closed capture's table give theirs back too.
        b.expire_idle(T0 + idle);
        assert_eq!(budget.used(), 1);
        assert_eq!(b.len(), 0);
        drop(a);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn idle_expiry_gives_the_slots_of_gone_flows_back() {
        let idle = Duration::from_secs(60);
        let mut t = FlowTable::new(FlowBudget::new(100_000), idle);
        for i in 0..20_000u32 {
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let syn = Segment {
                src,
                ..seg("10.0.0.1", 1, "10.0.0.2", 80, Flags::SYN, 1, 0)
            };
            t.observe(&syn, T0);
        }
        let full = t.v4.capacity();
        t.expire_idle(T0 + idle);
        assert!(t.is_empty());
        assert!(t.v4.capacity() < full / 4, "{} of {full}", t.v4.capacity());
    }

    #[test]
    fn probe_numbers_wrap() {
        let mut t = FlowTable::new(FlowBudget::new(2), DEFAULT_IDLE);
        t.observe(
            &seg("10.0.0.1", 1, "10.0.0.2", 2, Flags::SYN, u32::MAX, 0),
            T0,
        );
        let probes: Vec<Forged> = t.probes().flat_map(|(_, p)| p).collect();
        let to_b = probes.iter().find(|p| p.dst_port == 2).unwrap();
        assert_eq!(to_b.seq, PROBE_OFFSET - 1 + 1);
    }
}
