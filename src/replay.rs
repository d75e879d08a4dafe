//! Replay: drives the pipeline over captured frames, clocked by their timestamps (pure).
//!
//! `tcpresetd --replay IN.pcap --rules RULES.json --inject-to OUT.pcap` reads a capture and
//! writes every RST it would have injected. Rules start at an offset from the first packet:
//!
//! ```json
//! [{"engid": "ids-1", "host": "10.77.0.1", "port": null, "start": 0.5, "seconds": 10}]
//! ```
//!
//! Held-back RSTs (pacing) are emitted at their own deadlines, between packets or after the last.
use crate::flows::FlowTable;
use crate::pipeline::{Counters, Pipeline};
use crate::reset::Outgoing;
use crate::rules::{Matcher, RuleKey, RuleSpec, RuleTable};
use crate::syntax;
use crate::time::Instant;
use crate::wire::{Kind, LinkType};
use serde::de::{DeserializeSeed, Deserializer, Error as _, SeqAccess, Visitor};
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// One rule of a replay's rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleLine<'a> {
    #[serde(borrow)]
    engid: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    host: std::borrow::Cow<'a, str>,
    #[serde(default)]
    port: Option<u16>,
    /// Seconds after the first packet at which the rule is registered.
    #[serde(default)]
    start: f64,
    seconds: u64,
}

/// A rules file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rules file is not a JSON array of rules: {0}; expected e.g. [{{\"engid\":\"e1\",\"host\":\"10.0.0.1\",\"start\":0,\"seconds\":10}}]")]
    Json(#[from] serde_json::Error),
    #[error("rule {index}: {message}")]
    Rule { index: usize, message: String },
}

/// A rule and when, after the first packet, it is registered (on the interface `replay`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedRule {
    pub start: Duration,
    pub key: RuleKey,
    pub duration: Duration,
}

/// The sniff and reset interface of every replayed rule.
const REPLAY_IF: &str = "replay";

/// Parses and checks a rules file.
///
/// Each rule is checked as it is read, so no list of raw lines is built beside the result.
pub fn parse_rules(json: impl AsRef<[u8]>) -> Result<Vec<TimedRule>, RulesError> {
    let json = json.as_ref();
    let mut bad = None;
    let mut de = serde_json::Deserializer::from_slice(json);
    let seed = RulesSeed {
        // Room for every rule up front: one object per `"host"` key.
        capacity: memchr::memmem::find_iter(json, b"\"host\"").count(),
        bad: &mut bad,
    };
    let parsed = seed.deserialize(&mut de).and_then(|r| de.end().map(|()| r));
    let mut rules = match (parsed, bad) {
        (_, Some(bad)) => return Err(bad),
        (Ok(rules), None) => rules,
        (Err(e), None) => return Err(e.into()),
    };
    if !rules.is_sorted_by_key(|r| r.start) {
        rules.sort_by_key(|r| r.start);
    }
    Ok(rules)
}

/// Checks one rule of the file.
fn timed_rule(index: usize, l: RuleLine<'_>) -> Result<TimedRule, RulesError> {
    let bad = |message: String| RulesError::Rule { index, message };
    // 100 years after the first packet: later than any capture ends.
    const MAX_START: f64 = 3_155_760_000.0;
    let start = match Duration::try_from_secs_f64(l.start) {
        Ok(start) if l.start <= MAX_START => start,
        _ => {
            return Err(bad(format!(
                "start {:?} is not a number of seconds in 0..={MAX_START} after the first packet",
                l.start
            )))
        }
    };
    let key = RuleKey {
        engid: syntax::engid(&l.engid).map_err(|e| bad(e.to_string()))?,
        host: syntax::host(&l.host).map_err(|e| bad(e.to_string()))?,
        port: match l.port {
            Some(0) => return Err(bad("port 0 is not a port; use 1..=65535 or null".into())),
            p => p,
        },
    };
    let duration = syntax::seconds_value(l.seconds).map_err(|e| bad(e.to_string()))?;
    Ok(TimedRule {
        start,
        key,
        duration,
    })
}

/// Reads the rules array, checking each rule as it comes; the first bad rule is put in `bad`
/// (and reading stops) so its error keeps the rule's index rather than a JSON position.
struct RulesSeed<'b> {
    capacity: usize,
    bad: &'b mut Option<RulesError>,
}

impl<'de> DeserializeSeed<'de> for RulesSeed<'_> {
    type Value = Vec<TimedRule>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RulesSeed<'_> {
    type Value = Vec<TimedRule>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of rules")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut rules = Vec::with_capacity(self.capacity);
        while let Some(line) = seq.next_element::<RuleLine<'de>>()? {
            match timed_rule(rules.len(), line) {
                Ok(rule) => rules.push(rule),
                Err(e) => {
                    *self.bad = Some(e);
                    return Err(A::Error::custom("a bad rule"));
                }
            }
        }
        Ok(rules)
    }
}

/// Replays frames through the rules and the pipeline.
#[derive(Debug)]
pub struct Replayer {
    /// Rules not yet registered, in start order.
    rules: std::iter::Peekable<std::vec::IntoIter<TimedRule>>,
    first_ts: Option<Instant>,
    table: RuleTable,
    pipeline: Pipeline,
    out: Vec<Outgoing>,
}

impl Replayer {
    pub fn new(link: LinkType, rules: Vec<TimedRule>) -> Self {
        Replayer {
            table: RuleTable::with_capacity(rules.len()),
            rules: rules.into_iter().peekable(),
            first_ts: None,
            pipeline: Pipeline::new(link, Arc::new(Matcher::default())),
            out: Vec::new(),
        }
    }

    /// Tracks open flows too, so rules that arrive probe the silent ones (as the daemon does).
    pub fn with_flows(mut self, flows: FlowTable) -> Self {
        self.pipeline = self.pipeline.with_flows(flows);
        self
    }

    /// Handles one frame stamped `ts`; `emit` receives each RST with the time it goes out.
    pub fn on_frame(
        &mut self,
        ts: Instant,
        frame: &[u8],
        emit: &mut impl FnMut(Instant, &Outgoing),
    ) {
        let first = *self.first_ts.get_or_insert(ts);
        self.run_timers_until(ts, emit);
        let mut changed = false;
        while let Some(r) = self.rules.next_if(|r| first + r.start <= ts) {
            let spec = RuleSpec {
                key: r.key,
                sniff_if: REPLAY_IF.into(),
                reset_if: REPLAY_IF.into(),
                duration: r.duration,
            };
            self.table.upsert(spec, first + r.start);
            changed = true;
        }
        if changed && self.rules.peek().is_none() {
            // All registered: give back the list's memory.
            self.rules = Vec::new().into_iter().peekable();
        }
        if self.table.next_deadline().is_some_and(|d| d <= ts) {
            changed |= !self.table.expire_until(ts).is_empty();
        }
        if changed {
            let matcher = Arc::new(self.table.matcher(None));
            self.pipeline.set_matcher(matcher, ts, &mut self.out);
        }
        self.pipeline.on_frame(frame, ts, &mut self.out);
        self.emit_all(ts, emit);
    }

    /// Emits what pacing still holds, each at its deadline.
    pub fn finish(&mut self, emit: &mut impl FnMut(Instant, &Outgoing)) {
        self.run_timers_until(Instant::from_micros(u64::MAX), emit);
    }

    fn run_timers_until(&mut self, ts: Instant, emit: &mut impl FnMut(Instant, &Outgoing)) {
        while let Some(due) = self.pipeline.next_deadline().filter(|d| *d <= ts) {
            self.pipeline.poll(due, &mut self.out);
            self.emit_all(due, emit);
        }
    }

    fn emit_all(&mut self, at: Instant, emit: &mut impl FnMut(Instant, &Outgoing)) {
        for o in self.out.drain(..) {
            if o.forged.kind == Kind::Rst {
                o.stats.rsts_sent.fetch_add(1, Ordering::Relaxed);
            }
            emit(at, &o);
        }
    }

    pub fn counters(&self) -> Counters {
        self.pipeline.counters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_file_errors_name_the_rule() {
        let ok = parse_rules(
            r#"[{"engid":"e","host":"10.0.0.1","start":2,"seconds":5},
                                 {"engid":"e","host":"10.0.0.2","port":22,"seconds":5}]"#,
        )
        .unwrap();
        assert_eq!(ok[0].start, Duration::ZERO);
        assert_eq!(ok[1].key.host.to_string(), "10.0.0.1");
        for (json, want) in [
            ("{}", "not a JSON array"),
            (
                r#"[{"engid":"e","host":"x","seconds":5}]"#,
                "rule 0: HOST 'x'",
            ),
            (
                r#"[{"engid":"e","host":"10.0.0.1","seconds":0}]"#,
                "SECONDS '0'",
            ),
            (
                r#"[{"engid":"e","host":"10.0.0.1","seconds":5,"start":-1}]"#,
                "start -1",
            ),
            (
                r#"[{"engid":"e","host":"10.0.0.1","seconds":5,"start":1e300}]"#,
                "rule 0: start 1e300 is not a number of seconds in 0..=3155760000",
            ),
            (
                r#"[{"engid":"e","host":"10.0.0.1","seconds":5,"start":-0.5}]"#,
                "start -0.5",
            ),
            (
                r#"[{"engid":"e","host":"10.0.0.1","seconds":5,"start":1e400}]"#,
                "not a JSON array",
            ),
            (
                r#"[{"engid":"e","host":"10.0.0.1","seconds":5,"port":0}]"#,
                "port 0",
            ),
            (
                r#"[{"engid":"e","host":"10.0.0.1","seconds":5,"colour":1}]"#,
                "unknown field",
            ),
        ] {
            let e = parse_rules(json).unwrap_err().to_string();
            assert!(e.contains(want), "{json}: {e}");
        }
    }
}
