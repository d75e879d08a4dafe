//! The decision: which RSTs a matching segment calls for, and when to send them (per-end pacing).
//!
//! Linux (RFC 5961) accepts a RST only when its sequence number is exactly the receiver's
//! `rcv_nxt`. Every segment seen reveals two such numbers: toward its receiver, the end of the
//! segment (`seq + len`, +1 for SYN or FIN); toward its sender, the segment's `ack`. So each
//! matching segment yields one RST per end ([`rsts_for`]), and [`Pacer`] keeps the count low:
//! toward one end it sends at once, then at most one more per [`PACE`], always the freshest
//! number (a trailing edge, so the last word before the connection falls silent is never lost),
//! and it never repeats a number within [`RETRY`].
//!
//! A RST can also come too early: aimed at the end of data the receiver has not yet taken in,
//! it is dropped (or answered with a challenge ACK the next RST again may not win), and a pure
//! receiver whose sender has died says nothing more. So an end that got a RST is checked
//! [`CHECK`] later with a probe (an ACK outside its window, see [`crate::flows`]): alive, it
//! answers with its exact `rcv_nxt`, which the RST that follows carries; dead, its kernel
//! answers with a RST, which is never answered. At most [`MAX_CHECKS`] probes per end.
use crate::flows::PROBE_OFFSET;
use crate::rules::{Hit, RuleStats};
use crate::time::Instant;
use crate::wire::{tcp, Forged, Kind, Segment};
use foldhash::HashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Least time between two RSTs toward the same end of a flow.
pub const PACE: Duration = Duration::from_millis(1);
/// The same sequence number is sent again toward an end only after this long.
pub const RETRY: Duration = Duration::from_millis(50);
/// An end is probed this long after its last RST. Not shorter than [`RETRY`]: the number its
/// answer reveals may be the one already sent, which goes out again only after `RETRY`.
pub const CHECK: Duration = RETRY;
/// Probes toward one end at most.
pub const MAX_CHECKS: u8 = 3;
/// Pacing state of an end that saw nothing for this long is dropped.
pub const END_IDLE: Duration = Duration::from_secs(10);
/// Ends tracked at most; past that, RSTs go out unpaced rather than not at all.
pub const MAX_ENDS: usize = 1 << 16;

/// The RSTs a segment calls for: `[toward its receiver, toward its sender]`.
///
/// Toward the receiver: from the sender's address, `seq` = end of the segment, and RST+ACK with
/// the segment's `ack` when it carries one (a bare RST otherwise: a listener's half-open entry
/// drops on an in-window RST and ignores a RST+ACK whose ack it does not know).
/// Toward the sender: `seq` = the segment's `ack`, acknowledging the segment (RST+ACK); a bare
/// SYN has no `ack`, so the RST carries seq 0 and acknowledges the SYN, which is what a host in
/// SYN-SENT checks.
pub fn rsts_for(seg: &Segment) -> [Forged; 2] {
    let end = seg.seq_end();
    let to_receiver = Forged {
        kind: Kind::Rst,
        src: seg.src,
        dst: seg.dst,
        src_port: seg.src_port,
        dst_port: seg.dst_port,
        seq: end,
        ack: seg.flags.ack().then_some(seg.ack),
    };
    let to_sender = Forged {
        kind: Kind::Rst,
        src: seg.dst,
        dst: seg.src,
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        seq: if seg.flags.ack() { seg.ack } else { 0 },
        ack: Some(end),
    };
    [to_receiver, to_sender]
}

/// A RST ready for injection.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub forged: Forged,
    /// The interface to inject through.
    pub reset_if: Arc<str>,
    /// Link addresses as the sniffed frame had them toward the same end (for replay output).
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// The rule that asked for it; the edge counts the RST there once sent.
    pub stats: Arc<RuleStats>,
    /// When that rule expires; a RST held back until then is dropped.
    pub expires: Instant,
    /// The first RST toward this end of this connection: the edge records the reset.
    pub first: bool,
    /// The VLAN ids of the segment that called for it, outermost first (0: no tag).
    pub vlans: [u16; crate::wire::ethernet::MAX_TAGS],
}

/// One end of a flow, as the RSTs toward it are addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct EndKey {
    src: IpAddr,
    dst: IpAddr,
    ports: (u16, u16),
}

impl EndKey {
    fn of(rst: &Forged) -> Self {
        EndKey {
            src: rst.src,
            dst: rst.dst,
            ports: (rst.src_port, rst.dst_port),
        }
    }
}

#[derive(Debug)]
struct EndState {
    /// The last RST sent toward this end, and when.
    last: Outgoing,
    last_at: Instant,
    seen_at: Instant,
    pending: Option<Outgoing>,
    /// RSTs sent toward this end so far.
    sent: u32,
    /// When the end is to be probed, and how many probes it has had.
    check_at: Option<Instant>,
    checks: u8,
    /// Whether the latest segment offered is checked at all: not a handshake's, whose RSTs
    /// acknowledge the SYN exactly (and a probe would double a scan's cost).
    checkable: bool,
}

impl EndState {
    fn new(o: &Outgoing, now: Instant) -> Self {
        EndState {
            last: o.clone(),
            last_at: now,
            seen_at: now,
            pending: None,
            sent: 1,
            check_at: None,
            checks: 0,
            checkable: false,
        }
    }

    fn last_seq(&self) -> u32 {
        self.last.forged.seq
    }

    /// Records `o` as sent at `now`, and when to check the end.
    fn sent(&mut self, o: &Outgoing, now: Instant) -> Option<Instant> {
        self.last = o.clone();
        self.last_at = now;
        self.sent += 1;
        self.arm_check(now)
    }

    fn arm_check(&mut self, now: Instant) -> Option<Instant> {
        self.check_at = (self.checkable && self.checks < MAX_CHECKS).then_some(now + CHECK);
        self.check_at
    }

    /// The probe toward this end, if its check is due at `now`.
    fn due_check(&mut self, now: Instant) -> Option<Outgoing> {
        self.check_at.filter(|at| *at <= now)?;
        self.check_at = None;
        if now >= self.last.expires {
            return None;
        }
        self.checks += 1;
        let rst = self.last.forged;
        Some(Outgoing {
            forged: Forged {
                kind: Kind::Probe,
                seq: tcp::seq_add(rst.seq, PROBE_OFFSET),
                ..rst
            },
            first: false,
            ..self.last.clone()
        })
    }
}

/// Paces the RSTs toward each end of the flows under reset.
#[derive(Debug)]
pub struct Pacer {
    ends: HashMap<EndKey, EndState>,
    due: BinaryHeap<Reverse<(Instant, EndKey)>>,
    last_sweep: Instant,
    budget: u32,
    over_budget: u64,
    checks: u64,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new(u32::MAX)
    }
}

impl Pacer {
    /// A pacer that sends at most `budget` RSTs toward one end of a connection.
    pub fn new(budget: u32) -> Self {
        Pacer {
            ends: HashMap::default(),
            due: BinaryHeap::new(),
            last_sweep: Instant::ZERO,
            budget,
            over_budget: 0,
            checks: 0,
        }
    }

    /// Probes sent to check ends after their RSTs.
    pub fn checks(&self) -> u64 {
        self.checks
    }

    /// RSTs not sent because their end had used its budget.
    pub fn over_budget(&self) -> u64 {
        self.over_budget
    }

    /// Offers the RSTs that a matching segment calls for; those to send now go to `out`.
    /// RST segments are never answered (neither the kernels' nor our own).
    pub fn on_segment(
        &mut self,
        seg: &Segment,
        hit: Hit<'_>,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        if seg.flags.rst() {
            return;
        }
        let [to_receiver, to_sender] = rsts_for(seg);
        let macs = [
            (seg.l2.src_mac, seg.l2.dst_mac),
            (seg.l2.dst_mac, seg.l2.src_mac),
        ];
        for (rst, (src_mac, dst_mac)) in [to_receiver, to_sender].into_iter().zip(macs) {
            let o = Outgoing {
                forged: rst,
                reset_if: Arc::clone(hit.reset_if),
                src_mac,
                dst_mac,
                stats: Arc::clone(hit.stats),
                expires: hit.expires,
                first: false,
                vlans: seg.l2.vlans,
            };
            self.offer(o, !seg.flags.syn(), now, out);
        }
    }

    fn offer(&mut self, o: Outgoing, checkable: bool, now: Instant, out: &mut Vec<Outgoing>) {
        let key = EndKey::of(&o.forged);
        if !self.ends.contains_key(&key) && self.ends.len() >= MAX_ENDS {
            self.sweep(now);
            if self.ends.len() >= MAX_ENDS {
                out.push(o);
                return;
            }
        }
        let Some(st) = self.ends.get_mut(&key) else {
            let mut st = EndState::new(&o, now);
            st.checkable = checkable;
            if let Some(at) = st.arm_check(now) {
                self.due.push(Reverse((at, key)));
            }
            self.ends.insert(key, st);
            out.push(Outgoing { first: true, ..o });
            return;
        };
        st.seen_at = now;
        st.checkable = checkable;
        if o.forged.seq == st.last_seq() && now < st.last_at + RETRY {
            st.pending = None;
            return;
        }
        if st.sent >= self.budget {
            self.over_budget += 1;
            return;
        }
        if now >= st.last_at + PACE {
            st.pending = None;
            if let Some(at) = st.sent(&o, now) {
                self.due.push(Reverse((at, key)));
            }
            out.push(o);
            return;
        }
        if st.pending.replace(o).is_none() {
            self.due.push(Reverse((st.last_at + PACE, key)));
        }
    }

    /// Sends the pending RSTs that are due at `now` (dropping those whose rule has expired) and
    /// the probes of the ends due for a check, and forgets ends idle for [`END_IDLE`].
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        while let Some(Reverse((due, key))) = self.due.peek().copied() {
            if due > now {
                break;
            }
            self.due.pop();
            let Some(st) = self.ends.get_mut(&key) else {
                continue;
            };
            if st.pending.is_some() && now >= st.last_at + PACE {
                if let Some(o) = st.pending.take().filter(|o| now < o.expires) {
                    if let Some(at) = st.sent(&o, now) {
                        self.due.push(Reverse((at, key)));
                    }
                    out.push(o);
                }
            }
            if let Some(probe) = st.due_check(now) {
                self.checks += 1;
                out.push(probe);
            }
        }
        if now >= self.last_sweep + Duration::from_secs(1) {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: Instant) {
        self.last_sweep = now;
        self.ends.retain(|_, st| {
            st.pending.is_some() || st.check_at.is_some() || now < st.seen_at + END_IDLE
        });
    }

    /// When [`Pacer::poll`] has something to send next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((due, _))| *due)
    }

    /// Ends currently tracked.
    pub fn tracked_ends(&self) -> usize {
        self.ends.len()
    }
}

#[cfg(test)]
mod tests;
