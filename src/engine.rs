//! One processing path for live captures and replay: frame, segment, rules, then RSTs.
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
}

/// Turns captured frames into the RSTs to inject, for one capture.
#[derive(Debug)]
pub struct Engine {
    link: LinkType,
    matcher: Arc<Matcher>,
    pacer: Pacer,
    counters: Counters,
}

impl Engine {
    pub fn new(link: LinkType, matcher: Arc<Matcher>) -> Self {
        Engine {
            link,
            matcher,
            pacer: Pacer::new(),
            counters: Counters::default(),
        }
    }

    /// Installs a new rule snapshot; pacing state carries over.
    pub fn set_matcher(&mut self, matcher: Arc<Matcher>) {
        self.matcher = matcher;
    }

    /// Handles one captured frame stamped `now`; RSTs to send at once go to `out`.
    pub fn on_frame(&mut self, frame: &[u8], now: Instant, out: &mut Vec<Outgoing>) {
        self.counters.frames += 1;
        let Ok(seg) = Segment::parse(self.link, frame) else {
            self.counters.skipped += 1;
            return;
        };
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
