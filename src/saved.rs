//! The rules as saved across restarts (`rules.json` in the state directory), and how they come back (pure).
use crate::rules::{RuleKey, RuleSpec, RuleTable};
use crate::syntax;
use crate::time::Instant;
use serde::{Deserialize, Serialize};
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

/// A change of the rule table, saved before it is made (so that a change that cannot be made
/// durable is not made at all).
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// The table as it is (after expiry, at start).
    Nothing,
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

/// The rules to save once `change` is made to `table`, as JSON.
pub fn to_json_after(table: &RuleTable, change: Change<'_>) -> String {
    let changed = |key: &RuleKey| match change {
        Change::Nothing => false,
        Change::Upsert { spec, .. } => spec.key == *key,
        Change::Cancel(k) => k == key,
        Change::Flush => true,
    };
    let mut rules: Vec<SavedRule> = table
        .iter()
        .filter(|r| !changed(&r.key))
        .map(|r| saved_rule(&r.key, &r.sniff_if, &r.reset_if, (r.created, r.expires)))
        .collect();
    if let Change::Upsert { spec, now } = change {
        // A refresh keeps the rule's creation time, as the table does.
        let created = table.get(&spec.key).map_or(now, |r| r.created);
        let times = (created, now + spec.duration);
        rules.push(saved_rule(&spec.key, &spec.sniff_if, &spec.reset_if, times));
    }
    let saved = Saved {
        version: FORMAT_VERSION,
        rules,
    };
    serde_json::to_string_pretty(&saved).expect("state serializes")
}

/// The rules to save, as JSON.
pub fn to_json(table: &RuleTable) -> String {
    to_json_after(table, Change::Nothing)
}

/// A rule to put back: its spec (duration: what is left of it), creation time and deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub spec: RuleSpec,
    pub created: Instant,
    pub expires: Instant,
}

/// What a state file holds: the rules to put back (each still to pass the daemon's admission
/// checks), how many had expired, and the rules refused, by index, with the reason.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: Vec<Restored>,
    pub expired: usize,
    pub refused: Vec<(usize, String)>,
}

/// Reads saved rules; those expired by `now` are left out and counted. Each rule is checked as a
/// new one would be (engid, one host, mapped IPv4 canonicalised, a port, interface names, a
/// deadline at most [`syntax::MAX_SECONDS`] away); one that fails is refused, the others kept.
pub fn from_json(text: &str, now: Instant) -> Result<Loaded, SavedError> {
    let saved: Saved<serde_json::Value> = serde_json::from_str(text)?;
    if saved.version != FORMAT_VERSION {
        return Err(SavedError::Version(saved.version));
    }
    let mut loaded = Loaded::default();
    for (index, value) in saved.rules.into_iter().enumerate() {
        match restored(value, now) {
            Ok(Some(rule)) => loaded.rules.push(rule),
            Ok(None) => loaded.expired += 1,
            Err(reason) => loaded.refused.push((index, reason)),
        }
    }
    Ok(loaded)
}

/// One saved rule checked; `None` if it has expired.
fn restored(value: serde_json::Value, now: Instant) -> Result<Option<Restored>, String> {
    let r: SavedRule = serde_json::from_value(value).map_err(|e| e.to_string())?;
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

    #[test]
    fn the_json_after_a_change_is_the_json_of_the_table_once_it_is_made() {
        let t0 = Instant::from_secs(1_000);
        let t1 = t0 + Duration::from_secs(7);
        let mut t = RuleTable::new();
        t.upsert(spec("a", "10.0.0.1", 60), t0);
        t.upsert(spec("b", "10.0.0.2", 60), t0);
        let refresh = spec("a", "10.0.0.1", 600);
        let new = spec("c", "10.0.0.3", 60);
        let key = new.key.clone();
        let before = |c: Change<'_>, t: &RuleTable| to_json_after(t, c);
        let expected = before(
            Change::Upsert {
                spec: &refresh,
                now: t1,
            },
            &t,
        );
        t.upsert(refresh.clone(), t1);
        assert_eq!(parsed(&expected), parsed(&to_json(&t)), "refresh");
        let expected = before(
            Change::Upsert {
                spec: &new,
                now: t1,
            },
            &t,
        );
        t.upsert(new.clone(), t1);
        assert_eq!(parsed(&expected), parsed(&to_json(&t)), "new rule");
        let expected = before(Change::Cancel(&key), &t);
        t.cancel(&key);
        assert_eq!(parsed(&expected), parsed(&to_json(&t)), "cancel");
        let expected = before(Change::Flush, &t);
        t.flush();
        assert_eq!(parsed(&expected), parsed(&to_json(&t)), "flush");
    }

    /// The saved rules, in a canonical order.
    fn parsed(text: &str) -> Vec<String> {
        let saved: Saved<serde_json::Value> = serde_json::from_str(text).unwrap();
        let mut rules: Vec<String> = saved.rules.iter().map(|r| r.to_string()).collect();
        rules.sort();
        rules
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
        let refused: Vec<usize> = loaded.refused.iter().map(|(i, _)| *i).collect();
        assert_eq!(refused, [2, 3, 4, 5, 6, 7]);
        assert!(
            loaded.refused[1].1.contains("more than a rule can last"),
            "{:?}",
            loaded.refused
        );
        assert!(
            loaded.refused[2].1.contains("multicast"),
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
