//! One processing path for live captures and replay: frame, segment, rules, then RSTs.
//!
//! With a [`FlowTable`], the pipeline also remembers open flows; every new rule snapshot probes
//! the tracked flows it covers, so a connection that is silent when the rule arrives answers
//! at once and dies like any other. The sniff port shows those probes again (a SPAN or TAP
//! mirrors what the reset interface sends toward a monitored host): their echoes are known by
//! their numbers and not answered, since a probe's numbers are wrong on purpose.
use crate::flows::FlowTable;
use crate::reset::{Outgoing, Pacer};
use crate::rules::Matcher;
use crate::time::Instant;
use crate::wire::{Flags, Forged, LinkType, Segment};
use foldhash::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long a probe sent is remembered, to know its echo on the sniff port.
pub const ECHO_WINDOW: Duration = Duration::from_secs(1);
/// Probes remembered at most; past that an echo is answered like any segment (RSTs wasted on
/// numbers that cannot be exact, nothing worse).
pub const MAX_REMEMBERED_PROBES: usize = 1 << 16;

/// What a pipeline has seen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Frames handed to [`Pipeline::on_frame`].
    pub frames: u64,
    /// Frames that were not a TCP segment we handle (other protocols, malformed, fragments).
    pub skipped: u64,
    /// TCP segments that matched a live rule.
    pub matched: u64,
    /// Probes sent to silent flows when rules arrived.
    pub probes: u64,
    /// Segments not sent because their destination is protected.
    pub protected_skipped: u64,
    /// RSTs not sent because their connection end had used its budget.
    pub over_budget: u64,
    /// Our own probes seen again on the sniff port (not answered).
    pub probe_echoes: u64,
    /// Probes sent to check ends after their RSTs (see [`crate::reset::CHECK`]).
    pub checks: u64,
}

/// A probe as the wire shows it: addresses, ports and numbers.
type ProbeKey = (IpAddr, IpAddr, u16, u16, u32, u32);

/// The probes sent in the last [`ECHO_WINDOW`], to know their echoes.
#[derive(Debug, Default)]
struct SentProbes {
    at: HashMap<ProbeKey, Instant>,
}

impl SentProbes {
    fn forget_old(&mut self, now: Instant) {
        if !self.at.is_empty() {
            self.at.retain(|_, sent| now < *sent + ECHO_WINDOW);
        }
    }

    fn remember(&mut self, p: &Forged, now: Instant) {
        if self.at.len() < MAX_REMEMBERED_PROBES {
            let ack = p.ack.unwrap_or(0);
            let key = (p.src, p.dst, p.src_port, p.dst_port, p.seq, ack);
            self.at.insert(key, now);
        }
    }

    /// Whether `seg` is the echo of a probe we sent (each is known once).
    fn take_echo(&mut self, seg: &Segment) -> bool {
        if self.at.is_empty() || seg.flags != Flags::ACK || seg.payload_len != 0 {
            return false;
        }
        let key = (
            seg.src,
            seg.dst,
            seg.src_port,
            seg.dst_port,
            seg.seq,
            seg.ack,
        );
        self.at.remove(&key).is_some()
    }
}

/// Turns captured frames into the RSTs to inject, for one capture.
#[derive(Debug)]
pub struct Pipeline {
    link: LinkType,
    matcher: Arc<Matcher>,
    pacer: Pacer,
    flows: Option<FlowTable>,
    sent_probes: SentProbes,
    counters: Counters,
}

impl Pipeline {
    pub fn new(link: LinkType, matcher: Arc<Matcher>) -> Self {
        Pipeline {
            link,
            matcher,
            pacer: Pacer::default(),
            flows: None,
            sent_probes: SentProbes::default(),
            counters: Counters::default(),
        }
    }

    /// Sends at most `budget` RSTs toward one end of a connection.
    pub fn with_budget(mut self, budget: u32) -> Self {
        self.pacer = Pacer::new(budget);
        self
    }

    /// Tracks open flows in `flows` from now on.
    pub fn with_flows(mut self, flows: FlowTable) -> Self {
        self.flows = Some(flows);
        self
    }

    /// Installs a new rule snapshot at `now`; pacing state carries over. Tracked flows the
    /// rules cover are probed (the probes go to `out`).
    pub fn set_matcher(&mut self, matcher: Arc<Matcher>, now: Instant, out: &mut Vec<Outgoing>) {
        self.matcher = matcher;
        let Some(flows) = &self.flows else {
            return;
        };
        self.sent_probes.forget_old(now);
        let before = out.len();
        for (key, probes) in flows.probes() {
            let Some(hit) = self.matcher.lookup_flow(key.a, key.b, now) else {
                continue;
            };
            for forged in probes {
                self.sent_probes.remember(&forged, now);
                out.push(Outgoing {
                    forged,
                    reset_if: Arc::clone(hit.reset_if),
                    src_mac: [0; 6],
                    dst_mac: [0; 6],
                    stats: Arc::clone(hit.stats),
                    expires: hit.expires,
                    first: false,
                    vlans: [0; crate::wire::ethernet::MAX_TAGS],
                });
            }
        }
        self.counters.probes += (out.len() - before) as u64;
        self.drop_protected(before, out);
    }

    /// Removes what `out[from..]` would send to a protected address.
    fn drop_protected(&mut self, from: usize, out: &mut Vec<Outgoing>) {
        let mut keep = from;
        for i in from..out.len() {
            if !self.matcher.is_protected(out[i].forged.dst) {
                out.swap(keep, i);
                keep += 1;
            }
        }
        self.counters.protected_skipped += (out.len() - keep) as u64;
        out.truncate(keep);
    }

    /// The rules in force.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Whether the pipeline tracks open flows.
    pub fn tracks_flows(&self) -> bool {
        self.flows.is_some()
    }

    /// Flows tracked now, and flows not tracked because the table was full.
    pub fn flow_counts(&self) -> Option<(usize, u64)> {
        self.flows.as_ref().map(|f| (f.len(), f.refused()))
    }

    /// Handles one captured frame stamped `now`; RSTs to send at once go to `out`.
    pub fn on_frame(&mut self, frame: &[u8], now: Instant, out: &mut Vec<Outgoing>) {
        self.counters.frames += 1;
        let Ok(seg) = Segment::parse(self.link, frame) else {
            self.counters.skipped += 1;
            return;
        };
        if self.sent_probes.take_echo(&seg) {
            self.counters.probe_echoes += 1;
            return;
        }
        if let Some(flows) = &mut self.flows {
            flows.observe(&seg, now);
        }
        let before = out.len();
        if let Some(hit) = self.matcher.lookup(&seg, now) {
            self.counters.matched += 1;
            self.pacer.on_segment(&seg, hit, now, out);
        }
        self.drop_protected(before, out);
    }

    /// Sends what pacing held back and is due at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        let before = out.len();
        self.pacer.poll(now, out);
        self.drop_protected(before, out);
        for o in &out[before..] {
            if o.forged.kind == crate::wire::Kind::Probe {
                self.sent_probes.remember(&o.forged, now);
            }
        }
    }

    /// When [`Pipeline::poll`] next has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pacer.next_deadline()
    }

    pub fn counters(&self) -> Counters {
        Counters {
            over_budget: self.pacer.over_budget(),
            checks: self.pacer.checks(),
            ..self.counters
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleKey, RuleSpec, RuleTable};
    use crate::wire::{Forged, Kind};
    use std::time::Duration;

    /// An Ethernet frame of an ACK segment from `src` to `dst`.
    fn frame(src: &str, dst: &str) -> Vec<u8> {
        let seg = Forged {
            kind: Kind::Probe,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: 4000,
            dst_port: 80,
            seq: 10,
            ack: Some(20),
        };
        let mut buf = [0u8; 128];
        let n = seg.emit_frame([2; 6], [4; 6], &mut buf);
        buf[..n].to_vec()
    }

    fn matcher_with(protected: &str) -> Matcher {
        let mut t = RuleTable::new();
        t.upsert(
            RuleSpec {
                key: RuleKey {
                    engid: "e".into(),
                    host: "10.0.0.1".parse().unwrap(),
                    port: None,
                },
                sniff_if: "eth1".into(),
                reset_if: "eth0".into(),
                duration: Duration::from_secs(10),
            },
            Instant::ZERO,
        );
        let protected: Arc<[crate::config::Cidr]> = Arc::from(vec![protected.parse().unwrap()]);
        t.matcher(None).with_protected(protected)
    }

    fn pipeline_with(protected: &str) -> Pipeline {
        Pipeline::new(LinkType::Ethernet, Arc::new(matcher_with(protected)))
    }

    #[test]
    fn the_echo_of_our_own_probe_is_not_answered() {
        use crate::flows::tests::seg as handshake;
        use crate::flows::{FlowBudget, FlowTable, DEFAULT_IDLE};
        use crate::wire::Flags;
        let mut flows = FlowTable::new(FlowBudget::new(10), DEFAULT_IDLE);
        let syn = handshake("10.0.0.1", 4000, "10.9.9.9", 80, Flags::SYN, 100, 0);
        let syn_ack = handshake(
            "10.9.9.9",
            80,
            "10.0.0.1",
            4000,
            Flags::SYN | Flags::ACK,
            900,
            101,
        );
        flows.observe(&syn, Instant::ZERO);
        flows.observe(&syn_ack, Instant::ZERO);
        let empty = Arc::new(RuleTable::new().matcher(None));
        let mut e = Pipeline::new(LinkType::Ethernet, empty).with_flows(flows);
        let mut probes = Vec::new();
        let now = Instant::from_secs(5);
        e.set_matcher(Arc::new(matcher_with("192.0.2.0/24")), now, &mut probes);
        assert_eq!(probes.len(), 2, "{probes:?}");
        assert!(probes.iter().all(|o| o.forged.kind == Kind::Probe));
        // The sniff port shows both probes again: nothing is answered.
        let mut out = Vec::new();
        for p in &probes {
            let mut buf = [0u8; 128];
            let n = p.forged.emit_frame([2; 6], [4; 6], &mut buf);
            e.on_frame(&buf[..n], now + Duration::from_micros(30), &mut out);
        }
        assert!(out.is_empty(), "answered our own probe: {out:?}");
        assert_eq!(e.counters().probe_echoes, 2);
        assert_eq!(e.counters().matched, 0);
        // The hosts' own answers (and anything else of the flow) still are.
        e.on_frame(
            &frame("10.0.0.1", "10.9.9.9"),
            now + Duration::from_micros(60),
            &mut out,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(|o| o.forged.kind == Kind::Rst));
    }

    #[test]
    fn a_probe_is_remembered_for_the_echo_window_only() {
        let probe = Forged {
            kind: Kind::Probe,
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            src_port: 1,
            dst_port: 2,
            seq: 3,
            ack: Some(4),
        };
        let mut sent = SentProbes::default();
        let t0 = Instant::from_secs(9);
        sent.remember(&probe, t0);
        sent.forget_old(t0 + ECHO_WINDOW - Duration::from_micros(1));
        assert_eq!(sent.at.len(), 1);
        sent.forget_old(t0 + ECHO_WINDOW);
        assert!(sent.at.is_empty());
    }

    #[test]
    fn protected_peers_never_get_a_rst() {
        let mut e = pipeline_with("10.0.0.0/30");
        let mut out = Vec::new();
        e.on_frame(&frame("10.0.0.1", "10.0.0.2"), Instant::ZERO, &mut out);
        assert!(out.is_empty());
        assert_eq!(e.counters().protected_skipped, 2);
        e.on_frame(&frame("10.0.0.1", "10.9.9.9"), Instant::ZERO, &mut out);
        let dsts: Vec<String> = out.iter().map(|o| o.forged.dst.to_string()).collect();
        assert_eq!(dsts, ["10.9.9.9"], "only the unprotected end");
        assert_eq!(e.counters().protected_skipped, 3);
    }

    #[test]
    fn garbage_frames_are_counted_not_fatal() {
        let mut e = pipeline_with("192.0.2.0/24");
        let mut out = Vec::new();
        for junk in [&[][..], &[0u8; 13][..], &[0xff; 60][..]] {
            e.on_frame(junk, Instant::ZERO, &mut out);
        }
        assert_eq!((e.counters().frames, e.counters().skipped), (3, 3));
    }
}
