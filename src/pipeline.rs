//! One processing path for live captures and replay: frame, segment, rules, then RSTs.
//!
//! With a [`FlowTable`], the pipeline also remembers open flows; every new rule snapshot probes
//! the tracked flows it covers, so a connection that is silent when the rule arrives answers
//! at once and dies like any other.
use crate::flows::FlowTable;
use crate::reset::{Outgoing, Pacer};
use crate::rules::Matcher;
use crate::time::Instant;
use crate::wire::{LinkType, Segment};
use std::sync::Arc;

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
}

/// Turns captured frames into the RSTs to inject, for one capture.
#[derive(Debug)]
pub struct Pipeline {
    link: LinkType,
    matcher: Arc<Matcher>,
    pacer: Pacer,
    flows: Option<FlowTable>,
    counters: Counters,
}

impl Pipeline {
    pub fn new(link: LinkType, matcher: Arc<Matcher>) -> Self {
        Pipeline {
            link,
            matcher,
            pacer: Pacer::default(),
            flows: None,
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
        let before = out.len();
        for (key, probes) in flows.probes() {
            let Some(hit) = self.matcher.lookup_flow(key.a, key.b, now) else {
                continue;
            };
            for forged in probes {
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
    }

    /// When [`Pipeline::poll`] next has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pacer.next_deadline()
    }

    pub fn counters(&self) -> Counters {
        Counters {
            over_budget: self.pacer.over_budget(),
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

    fn pipeline_with(protected: &str) -> Pipeline {
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
        Pipeline::new(
            LinkType::Ethernet,
            Arc::new(t.matcher(None).with_protected(protected)),
        )
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
