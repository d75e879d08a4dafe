//! One processing path for live captures and replay: frame, segment, rules, then RSTs.
//!
//! With a [`FlowTable`], the engine also remembers open flows; every new rule snapshot probes
//! the tracked flows it covers, so a connection that is silent when the rule arrives answers
//! at once and dies like any other.
use crate::flows::FlowTable;
use crate::reset::{Outgoing, Pacer};
use crate::rules::Matcher;
use crate::time::Instant;
use crate::wire::{LinkType, Segment};
use std::sync::Arc;

/// What an engine has seen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Frames handed to [`Engine::on_frame`].
    pub frames: u64,
    /// Frames that were not a TCP segment we handle (other protocols, malformed, fragments).
    pub skipped: u64,
    /// TCP segments that matched a live rule.
    pub matched: u64,
    /// Probes sent to silent flows when rules arrived.
    pub probes: u64,
}

/// Turns captured frames into the RSTs to inject, for one capture.
#[derive(Debug)]
pub struct Engine {
    link: LinkType,
    matcher: Arc<Matcher>,
    pacer: Pacer,
    flows: Option<FlowTable>,
    counters: Counters,
}

impl Engine {
    pub fn new(link: LinkType, matcher: Arc<Matcher>) -> Self {
        Engine {
            link,
            matcher,
            pacer: Pacer::new(),
            flows: None,
            counters: Counters::default(),
        }
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
                });
            }
        }
        self.counters.probes += (out.len() - before) as u64;
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
        if let Some(hit) = self.matcher.lookup(&seg, now) {
            self.counters.matched += 1;
            self.pacer.on_segment(&seg, hit, now, out);
        }
    }

    /// Sends what pacing held back and is due at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        self.pacer.poll(now, out);
    }

    /// When [`Engine::poll`] next has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pacer.next_deadline()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }
}
