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
struct Saved {
    version: u32,
    rules: Vec<SavedRule>,
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

/// A saved state that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("not a tcpresetd state file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("state format version {0} is not supported (this build reads {FORMAT_VERSION})")]
    Version(u32),
    #[error("rule {index}: {message}")]
    Rule { index: usize, message: String },
}

/// The rules to save, as JSON.
pub fn to_json(table: &RuleTable) -> String {
    let rules = table
        .iter()
        .map(|r| SavedRule {
            engid: r.key.engid.to_string(),
            host: r.key.host,
            port: r.key.port,
            sniff_if: r.sniff_if.to_string(),
            reset_if: r.reset_if.to_string(),
            created: r.created,
            expires: r.expires,
        })
        .collect();
    let saved = Saved {
        version: FORMAT_VERSION,
        rules,
    };
    serde_json::to_string_pretty(&saved).expect("state serializes")
}

/// A rule to put back: its spec (duration unused), creation time and deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub spec: RuleSpec,
    pub created: Instant,
    pub expires: Instant,
}

/// Reads saved rules; those expired by `now` are left out and counted.
pub fn from_json(text: &str, now: Instant) -> Result<(Vec<Restored>, usize), SavedError> {
    let saved: Saved = serde_json::from_str(text)?;
    if saved.version != FORMAT_VERSION {
        return Err(SavedError::Version(saved.version));
    }
    let mut rules = Vec::new();
    let mut expired = 0;
    for (index, r) in saved.rules.into_iter().enumerate() {
        let bad = |e: syntax::Invalid| SavedError::Rule {
            index,
            message: e.to_string(),
        };
        let key = RuleKey {
            engid: syntax::engid(&r.engid).map_err(bad)?,
            host: r.host,
            port: r.port.filter(|p| *p != 0),
        };
        if r.expires <= now {
            expired += 1;
            continue;
        }
        rules.push(Restored {
            spec: RuleSpec {
                key,
                sniff_if: syntax::interface(&r.sniff_if).map_err(bad)?,
                reset_if: syntax::interface(&r.reset_if).map_err(bad)?,
                duration: r.expires.saturating_since(now),
            },
            created: r.created,
            expires: r.expires,
        });
    }
    Ok((rules, expired))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn round_trip_keeps_deadlines_and_drops_the_expired() {
        let t0 = Instant::from_secs(1_000);
        let mut t = RuleTable::new();
        for (engid, secs) in [("short", 5), ("long", 500)] {
            t.upsert(
                RuleSpec {
                    key: RuleKey {
                        engid: engid.into(),
                        host: "fd77::1".parse().unwrap(),
                        port: Some(443),
                    },
                    sniff_if: "eth1".into(),
                    reset_if: "eth0".into(),
                    duration: Duration::from_secs(secs),
                },
                t0,
            );
        }
        let text = to_json(&t);
        let (rules, expired) = from_json(&text, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(expired, 1);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].spec.key.engid, "long");
        assert_eq!(rules[0].expires, t0 + Duration::from_secs(500));
        assert_eq!(rules[0].created, t0);
        assert_eq!(rules[0].spec.duration, Duration::from_secs(490));
    }

    #[test]
    fn corrupt_state_is_an_error() {
        for text in [
            "",
            "{",
            r#"{"version":2,"rules":[]}"#,
            r#"{"version":1,"rules":[{"engid":"a b","host":"10.0.0.1","port":null,"sniff_if":"e","reset_if":"e","created":0,"expires":9}]}"#,
        ] {
            assert!(from_json(text, Instant::ZERO).is_err(), "{text}");
        }
    }
}
