//! Whether a rule is admitted: a protected host, `max_seconds`, `max_rules`, and whether it is
//! new or refreshes a live rule (pure: the table, the limits and `now` decide).
use crate::config::{Cidr, Config};
use crate::rules::{RuleSpec, RuleTable};
use crate::time::Instant;
use std::net::IpAddr;

/// The configured limits a rule must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most rules alive at once.
    pub max_rules: usize,
    /// Longest duration a rule may ask for, in seconds.
    pub max_seconds: u64,
}

impl Limits {
    pub fn of(config: &Config) -> Limits {
        Limits {
            max_rules: config.max_rules,
            max_seconds: config.max_seconds,
        }
    }
}

/// What registering the rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A rule of a new key.
    New,
    /// The live rule of the same key gets the new deadline and interfaces.
    Refresh,
}

/// Why a rule is refused; the message names the limit and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("host {host} is protected ({net}: in 'protected' of the configuration, or an address of this sensor); tcpresetd never resets it")]
    Protected { host: IpAddr, net: Cidr },
    #[error("-d {asked} is longer than this sensor allows (max_seconds = {max}); ask for at most {max} seconds")]
    MaxSeconds { asked: u64, max: u64 },
    #[error("{max} rules are alive, the most this sensor allows (max_rules); cancel some ('tcpreset list', 'tcpreset cancel') or raise max_rules")]
    MaxRules { max: usize },
}

/// Decides whether `spec` may be registered at `now` in `table`. A refresh of a live rule
/// passes `max_rules` (it adds none); a rule whose deadline has come counts as gone.
pub fn admit(
    spec: &RuleSpec,
    table: &RuleTable,
    limits: &Limits,
    protected: &[Cidr],
    now: Instant,
) -> Result<Admission, Refusal> {
    let host = spec.key.host;
    if let Some(net) = protected.iter().find(|c| c.contains(host)) {
        return Err(Refusal::Protected { host, net: *net });
    }
    let asked = spec.duration.as_secs();
    if asked > limits.max_seconds {
        return Err(Refusal::MaxSeconds {
            asked,
            max: limits.max_seconds,
        });
    }
    let live = table.get(&spec.key).is_some_and(|r| r.expires > now);
    if live {
        return Ok(Admission::Refresh);
    }
    // Counting the live rules walks the table: only when it may be full.
    if table.len() >= limits.max_rules && table.alive_at(now) >= limits.max_rules {
        return Err(Refusal::MaxRules {
            max: limits.max_rules,
        });
    }
    Ok(Admission::New)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleKey;
    use std::time::Duration;

    const T0: Instant = Instant::from_secs(1_000);

    fn spec(host: &str, seconds: u64) -> RuleSpec {
        RuleSpec {
            key: RuleKey {
                engid: "ids".into(),
                host: host.parse().unwrap(),
                port: None,
            },
            sniff_if: "eth1".into(),
            reset_if: "eth0".into(),
            duration: Duration::from_secs(seconds),
        }
    }

    const LIMITS: Limits = Limits {
        max_rules: 2,
        max_seconds: 600,
    };

    #[test]
    fn protected_hosts_and_networks_are_refused_whatever_the_limits() {
        let protected: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let table = RuleTable::new();
        let refusal = admit(&spec("10.1.2.3", 9_999), &table, &LIMITS, &protected, T0);
        assert_eq!(
            refusal.unwrap_err().to_string(),
            "host 10.1.2.3 is protected (10.0.0.0/8: in 'protected' of the configuration, or an \
             address of this sensor); tcpresetd never resets it"
        );
        let v4_mapped = spec("::ffff:10.1.2.3", 60);
        assert!(matches!(
            admit(&v4_mapped, &table, &LIMITS, &protected, T0),
            Err(Refusal::Protected { .. })
        ));
        assert_eq!(
            admit(&spec("192.0.2.1", 60), &table, &LIMITS, &protected, T0),
            Ok(Admission::New)
        );
    }

    #[test]
    fn max_seconds_bounds_the_duration() {
        let table = RuleTable::new();
        assert_eq!(
            admit(&spec("192.0.2.1", 600), &table, &LIMITS, &[], T0),
            Ok(Admission::New)
        );
        let refusal = admit(&spec("192.0.2.1", 601), &table, &LIMITS, &[], T0).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::MaxSeconds {
                asked: 601,
                max: 600
            }
        );
        assert!(refusal.to_string().contains("ask for at most 600 seconds"));
    }

    #[test]
    fn max_rules_counts_live_rules_and_lets_refreshes_through() {
        let mut table = RuleTable::new();
        table.upsert(spec("192.0.2.1", 60), T0);
        table.upsert(spec("192.0.2.2", 10), T0);
        let now = T0 + Duration::from_secs(5);
        let refusal = admit(&spec("192.0.2.3", 60), &table, &LIMITS, &[], now).unwrap_err();
        assert_eq!(refusal, Refusal::MaxRules { max: 2 });
        assert!(refusal.to_string().contains("raise max_rules"), "{refusal}");
        assert_eq!(
            admit(&spec("192.0.2.1", 60), &table, &LIMITS, &[], now),
            Ok(Admission::Refresh)
        );
        // At its deadline a rule is gone, even before the timer removes it.
        let later = T0 + Duration::from_secs(10);
        assert_eq!(
            admit(&spec("192.0.2.3", 60), &table, &LIMITS, &[], later),
            Ok(Admission::New)
        );
        assert_eq!(
            admit(&spec("192.0.2.2", 60), &table, &LIMITS, &[], later),
            Ok(Admission::New)
        );
    }
}
