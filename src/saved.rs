//! The rules as saved across restarts (the snapshot `rules.json` and the journal `rules.journal`
//! of the changes since, in the state directory), and how they come back (pure).
use crate::rules::{RuleKey, RuleSpec, RuleTable};
use crate::syntax;
use crate::time::Instant;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// The version of the saved format.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved<R> {
    version: u32,
    rules: Vec<R>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedRule {
    engid: String,
    host: IpAddr,
    port: Option<u16>,
    sniff_if: String,
    reset_if: String,
    created: Instant,
    expires: Instant,
}

/// A saved state that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("not a tcpresetd state file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("state format version {0} is not supported (this build reads {FORMAT_VERSION})")]
    Version(u32),
}

/// A change of the rule table, written to the journal as it is made (and acknowledged once the
/// journal is on disk).
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// [`RuleTable::upsert`] of `spec` at `now`.
    Upsert { spec: &'a RuleSpec, now: Instant },
    /// [`RuleTable::cancel`] of the key.
    Cancel(&'a RuleKey),
    /// [`RuleTable::flush`].
    Flush,
}

fn saved_rule(
    key: &RuleKey,
    sniff_if: &str,
    reset_if: &str,
    times: (Instant, Instant),
) -> SavedRule {
    SavedRule {
        engid: key.engid.to_string(),
        host: key.host,
        port: key.port,
        sniff_if: sniff_if.to_owned(),
        reset_if: reset_if.to_owned(),
        created: times.0,
        expires: times.1,
    }
}

/// The rules to save, as JSON: the snapshot (`rules.json`) the journal's lines apply to.
pub fn to_json(table: &RuleTable) -> String {
    let rules: Vec<SavedRule> = table
        .iter()
        .map(|r| saved_rule(&r.key, &r.sniff_if, &r.reset_if, (r.created, r.expires)))
        .collect();
    let saved = Saved {
        version: FORMAT_VERSION,
        rules,
    };
    serde_json::to_string_pretty(&saved).expect("state serializes")
}

/// One line of the journal (`rules.journal`): a change of the table, with absolute times, so
/// that applying a line twice, or lines the snapshot already holds, gives the same table.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum Line {
    /// The rule of that key is now this one (added or refreshed).
    Upsert(SavedRule),
    /// The rule of that key is gone.
    Cancel {
        engid: String,
        host: IpAddr,
        port: Option<u16>,
    },
    /// Every rule is gone.
    Flush,
}

/// The journal line of `change` about to be made to `table`, with its newline.
pub fn journal_line(table: &RuleTable, change: Change<'_>) -> String {
    let line = match change {
        Change::Upsert { spec, now } => {
            // A refresh keeps the rule's creation time, as the table does.
            let created = table.get(&spec.key).map_or(now, |r| r.created);
            let times = (created, now + spec.duration);
            Line::Upsert(saved_rule(&spec.key, &spec.sniff_if, &spec.reset_if, times))
        }
        Change::Cancel(key) => Line::Cancel {
            engid: key.engid.to_string(),
            host: key.host,
            port: key.port,
        },
        Change::Flush => Line::Flush,
    };
    let mut text = serde_json::to_string(&line).expect("journal lines serialize");
    text.push('\n');
    text
}

/// A rule to put back: its spec (duration: what is left of it), creation time and deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub spec: RuleSpec,
    pub created: Instant,
    pub expires: Instant,
}

/// What the state files hold: the rules to put back (each still to pass the daemon's admission
/// checks), how many had expired, the rules and lines refused (where, and why), and whether the
/// journal ended in an unfinished line (a change cut off by a crash, never acknowledged).
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: Vec<Restored>,
    pub expired: usize,
    pub refused: Vec<(String, String)>,
    pub unfinished: bool,
}

/// Reads a snapshot alone; see [`load`].
pub fn from_json(text: &str, now: Instant) -> Result<Loaded, SavedError> {
    load(Some(text), "", now)
}

/// Reads the snapshot (`rules.json`, if there is one) and applies the journal's lines to it, in
/// order; rules expired by `now` are left out and counted. Each rule is then checked as a new
/// one would be (engid, one host, mapped IPv4 canonicalised, a port, interface names, a deadline
/// at most [`syntax::MAX_SECONDS`] away); one that fails is refused, the others kept. A journal
/// line that cannot be read is refused alone; a last line without its newline was never
/// acknowledged and is left out.
pub fn load(snapshot: Option<&str>, journal: &str, now: Instant) -> Result<Loaded, SavedError> {
    let mut loaded = Loaded::default();
    // The rules in the order they came, each with where it came from; a key's place in `at`.
    let mut rules: Vec<Option<(String, SavedRule)>> = Vec::new();
    let mut at: HashMap<(String, IpAddr, Option<u16>), usize> = HashMap::new();
    if let Some(text) = snapshot {
        let saved: Saved<serde_json::Value> = serde_json::from_str(text)?;
        if saved.version != FORMAT_VERSION {
            return Err(SavedError::Version(saved.version));
        }
        for (index, value) in saved.rules.into_iter().enumerate() {
            let place = format!("rule {index} of rules.json");
            match serde_json::from_value::<SavedRule>(value) {
                Ok(r) => {
                    at.insert(key_of(&r), rules.len());
                    rules.push(Some((place, r)));
                }
                Err(e) => loaded.refused.push((place, e.to_string())),
            }
        }
    }
    let complete = journal.rfind('\n').map_or(0, |i| i + 1);
    loaded.unfinished = complete < journal.len();
    for (n, text) in journal[..complete].lines().enumerate() {
        let place = format!("line {} of rules.journal", n + 1);
        match serde_json::from_str::<Line>(text) {
            Ok(Line::Upsert(r)) => {
                if let Some(i) = at.insert(key_of(&r), rules.len()) {
                    rules[i] = None;
                }
                rules.push(Some((place, r)));
            }
            Ok(Line::Cancel { engid, host, port }) => {
                if let Some(i) = at.remove(&(engid, host, port)) {
                    rules[i] = None;
                }
            }
            Ok(Line::Flush) => {
                rules.clear();
                at.clear();
            }
            Err(e) => loaded.refused.push((place, e.to_string())),
        }
    }
    for (place, r) in rules.into_iter().flatten() {
        match restored(r, now) {
            Ok(Some(rule)) => loaded.rules.push(rule),
            Ok(None) => loaded.expired += 1,
            Err(reason) => loaded.refused.push((place, reason)),
        }
    }
    Ok(loaded)
}

fn key_of(r: &SavedRule) -> (String, IpAddr, Option<u16>) {
    (r.engid.clone(), r.host, r.port)
}

/// One saved rule checked; `None` if it has expired.
fn restored(r: SavedRule, now: Instant) -> Result<Option<Restored>, String> {
    let bad = |e: syntax::Invalid| e.to_string();
    let port = match r.port {
        Some(0) => return Err("port 0 is not a port; a rule for every port has none".into()),
        port => port,
    };
    let key = RuleKey {
        engid: syntax::engid(&r.engid).map_err(bad)?,
        host: syntax::one_host(r.host).map_err(bad)?,
        port,
    };
    let spec = RuleSpec {
        key,
        sniff_if: syntax::interface(&r.sniff_if).map_err(bad)?,
        reset_if: syntax::interface(&r.reset_if).map_err(bad)?,
        duration: r.expires.saturating_since(now),
    };
    if r.expires <= now {
        return Ok(None);
    }
    if spec.duration.as_secs() > syntax::MAX_SECONDS {
        return Err(format!(
            "it expires in {} s, more than a rule can last ({} s): the file was not written by tcpresetd, or the clock jumped back",
            spec.duration.as_secs(),
            syntax::MAX_SECONDS
        ));
    }
    Ok(Some(Restored {
        spec,
        created: r.created,
        expires: r.expires,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(engid: &str, host: &str, secs: u64) -> RuleSpec {
        RuleSpec {
            key: RuleKey {
                engid: engid.into(),
                host: host.parse().unwrap(),
                port: Some(443),
            },
            sniff_if: "eth1".into(),
            reset_if: "eth0".into(),
            duration: Duration::from_secs(secs),
        }
    }

    #[test]
    fn round_trip_keeps_deadlines_and_drops_the_expired() {
        let t0 = Instant::from_secs(1_000);
        let mut t = RuleTable::new();
        for (engid, secs) in [("short", 5), ("long", 500)] {
            t.upsert(spec(engid, "fd77::1", secs), t0);
        }
        let text = to_json(&t);
        let loaded = from_json(&text, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!((loaded.expired, loaded.refused.len()), (1, 0));
        let rules = loaded.rules;
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].spec.key.engid, "long");
        assert_eq!(rules[0].expires, t0 + Duration::from_secs(500));
        assert_eq!(rules[0].created, t0);
        assert_eq!(rules[0].spec.duration, Duration::from_secs(490));
    }

    /// Rules as (key, created, expires), in a canonical form.
    fn canonical<'a>(rules: impl Iterator<Item = (&'a RuleKey, Instant, Instant)>) -> Vec<String> {
        let mut rules: Vec<String> = rules.map(|r| format!("{r:?}")).collect();
        rules.sort();
        rules
    }

    /// The rules `load` gives.
    fn loaded(snapshot: Option<&str>, journal: &str, now: Instant) -> Vec<String> {
        let l = load(snapshot, journal, now).unwrap();
        canonical(l.rules.iter().map(|r| (&r.spec.key, r.created, r.expires)))
    }

    fn table_rules(t: &RuleTable) -> Vec<String> {
        canonical(t.iter().map(|r| (&r.key, r.created, r.expires)))
    }

    /// Writes the journal line of `change`, then makes it, as the daemon does.
    fn apply(t: &mut RuleTable, journal: &mut String, change: Change<'_>) {
        journal.push_str(&journal_line(t, change));
        match change {
            Change::Upsert { spec, now } => {
                t.upsert(spec.clone(), now);
            }
            Change::Cancel(key) => {
                t.cancel(key);
            }
            Change::Flush => {
                t.flush();
            }
        }
    }

    #[test]
    fn the_snapshot_and_its_journal_give_the_table_back_and_replaying_twice_changes_nothing() {
        let t0 = Instant::from_secs(1_000);
        let t1 = t0 + Duration::from_secs(7);
        let mut t = RuleTable::new();
        t.upsert(spec("a", "10.0.0.1", 60), t0);
        t.upsert(spec("b", "10.0.0.2", 60), t0);
        let snapshot = to_json(&t);
        let mut journal = String::new();
        let refresh = spec("a", "10.0.0.1", 600);
        let new = spec("c", "10.0.0.3", 60);
        let gone = spec("b", "10.0.0.2", 1).key;
        let j = &mut journal;
        apply(
            &mut t,
            j,
            Change::Upsert {
                spec: &refresh,
                now: t1,
            },
        );
        apply(
            &mut t,
            j,
            Change::Upsert {
                spec: &new,
                now: t1,
            },
        );
        apply(&mut t, j, Change::Cancel(&gone));
        let now = t1;
        assert_eq!(loaded(Some(&snapshot), &journal, now), table_rules(&t));
        // A refresh keeps its creation time.
        let a = t.get(&refresh.key).unwrap();
        assert_eq!((a.created, a.expires), (t0, t1 + Duration::from_secs(600)));
        // A snapshot taken after some of the lines, with all of them still in the journal
        // (a crash between writing the snapshot and emptying the journal): the same table.
        let later = to_json(&t);
        assert_eq!(loaded(Some(&later), &journal, now), table_rules(&t));
        // A flush, then one more rule; and no snapshot at all.
        apply(&mut t, &mut journal, Change::Flush);
        apply(
            &mut t,
            &mut journal,
            Change::Upsert {
                spec: &new,
                now: t1,
            },
        );
        assert_eq!(loaded(Some(&snapshot), &journal, now), table_rules(&t));
        assert_eq!(loaded(None, &journal, now), table_rules(&t));
    }

    #[test]
    fn an_unfinished_last_line_is_left_out_and_a_bad_line_alone_is_refused() {
        let t0 = Instant::from_secs(1_000);
        let t = RuleTable::new();
        let one = journal_line(
            &t,
            Change::Upsert {
                spec: &spec("one", "10.0.0.1", 60),
                now: t0,
            },
        );
        let two = journal_line(
            &t,
            Change::Upsert {
                spec: &spec("two", "10.0.0.2", 60),
                now: t0,
            },
        );
        let journal = format!("{one}{{\"op\":\"upsert\",\"prt\":1}}\n{two}{}", &one[..20]);
        let l = load(None, &journal, t0).unwrap();
        let kept: Vec<&str> = l.rules.iter().map(|r| r.spec.key.engid.as_str()).collect();
        assert_eq!(kept, ["one", "two"]);
        assert!(l.unfinished);
        assert_eq!(l.refused.len(), 1, "{:?}", l.refused);
        assert_eq!(l.refused[0].0, "line 2 of rules.journal");
        let l = load(None, &format!("{one}{two}"), t0).unwrap();
        assert!(!l.unfinished && l.refused.is_empty());
    }

    #[test]
    fn a_bad_rule_is_refused_and_the_others_kept() {
        let rule = |engid: &str, host: &str, port: &str, expires: &str| {
            format!(
                r#"{{"engid":"{engid}","host":"{host}","port":{port},"sniff_if":"eth1","reset_if":"eth0","created":0,"expires":{expires}}}"#
            )
        };
        let rules = [
            rule("ok", "10.0.0.1", "null", "60000000"),
            rule("mapped", "::ffff:10.0.0.2", "443", "60000000"),
            rule("a b", "10.0.0.3", "null", "60000000"),
            rule("forever", "10.0.0.4", "null", &u64::MAX.to_string()),
            rule("group", "224.0.0.1", "null", "60000000"),
            rule("zero", "10.0.0.5", "0", "60000000"),
            r#"{"engid":"x","host":"nonsense"}"#.to_owned(),
            rule("-e", "10.0.0.6", "null", "60000000"),
            rule("gone", "10.0.0.7", "null", "1"),
        ];
        let text = format!(r#"{{"version":1,"rules":[{}]}}"#, rules.join(","));
        let loaded = from_json(&text, Instant::from_secs(10)).unwrap();
        let kept: Vec<String> = loaded
            .rules
            .iter()
            .map(|r| format!("{} {}", r.spec.key.engid, r.spec.key.host))
            .collect();
        assert_eq!(kept, ["ok 10.0.0.1", "mapped 10.0.0.2"]);
        assert_eq!(loaded.expired, 1);
        let refused: Vec<&str> = loaded.refused.iter().map(|(at, _)| at.as_str()).collect();
        assert_eq!(
            refused,
            [6, 2, 3, 4, 5, 7].map(|i| format!("rule {i} of rules.json"))
        );
        assert!(
            loaded.refused[2].1.contains("more than a rule can last"),
            "{:?}",
            loaded.refused
        );
        assert!(
            loaded.refused[3].1.contains("multicast"),
            "{:?}",
            loaded.refused
        );
    }

    #[test]
    fn corrupt_state_is_an_error() {
        for text in ["", "{", r#"{"version":2,"rules":[]}"#, r#"{"version":1}"#] {
            assert!(from_json(text, Instant::ZERO).is_err(), "{text}");
        }
    }
}
