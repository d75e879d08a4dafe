//! Create Alert deduplication: identical alerts within a window become one record whose
//! `ath_deduplication` counts the repeats and keeps the first and last times.
//!
//! Identical means equal after dropping the fields that always differ: `stellar_index_id`,
//! `stellar_uuid`, `timestamp`, `timestamp_utc`, `write_time`, `xdr_event`, `index`, `id`, `type`,
//! and any field whose name contains `stellar`, `time`, `date` or `index` (at any depth).

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value as Json};

use crate::playbook::record::json::paths::lookup_json;

const EXACT: &[&str] = &[
    "stellar_index_id",
    "stellar_uuid",
    "timestamp",
    "timestamp_utc",
    "write_time",
    "xdr_event",
    "index",
    "id",
    "type",
    "ath_deduplication",
];
const CONTAINS: &[&str] = &["stellar", "time", "date", "index"];

fn ignored(key: &str) -> bool {
    EXACT.contains(&key) || CONTAINS.iter().any(|part| key.contains(part))
}

fn strip(value: &Json) -> Json {
    match value {
        Json::Object(map) => Json::Object(
            map.iter()
                .filter(|(k, _)| !ignored(k))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// The deduplication hash (64-bit FNV-1a of the canonical JSON, keys sorted).
pub fn dedup_hash(alert: &Json, fields: &[String]) -> u64 {
    let canonical = if fields.is_empty() {
        strip(alert)
    } else {
        Json::Object(
            fields
                .iter()
                .map(|f| {
                    (
                        f.clone(),
                        lookup_json(alert, f).cloned().unwrap_or(Json::Null),
                    )
                })
                .collect::<Map<_, _>>(),
        )
    };
    canonical
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

fn first_millis(alert: &Json) -> Option<i64> {
    alert["ath_deduplication"]["first_timestamp"]
        .as_i64()
        .or_else(|| alert["timestamp"].as_i64())
}

/// Adds `new` alerts to the `existing` records of the alert file. A new alert identical to an
/// existing one whose first occurrence is within `window` of `now` updates that record instead.
/// Returns the records to write and how many new alerts were folded into existing ones.
pub fn apply(
    mut existing: Vec<Json>,
    new: Vec<Json>,
    now: DateTime<Utc>,
    window: TimeDelta,
    fields: &[String],
) -> (Vec<Json>, usize) {
    let since = (now - window).timestamp_millis();
    let mut hashes: Vec<Option<u64>> = existing
        .iter()
        .map(|a| {
            first_millis(a)
                .filter(|t| *t >= since)
                .map(|_| dedup_hash(a, fields))
        })
        .collect();
    let mut folded = 0;
    for alert in new {
        let hash = dedup_hash(&alert, fields);
        match hashes.iter().position(|h| *h == Some(hash)) {
            Some(i) => {
                folded += 1;
                let record = &mut existing[i];
                let count = record["ath_deduplication"]["repeat_count"]
                    .as_u64()
                    .unwrap_or(1)
                    + 1;
                let first = first_millis(record).unwrap_or(now.timestamp_millis());
                let fmt = |ms: i64| {
                    DateTime::from_timestamp_millis(ms)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                };
                record["ath_deduplication"] = json!({
                    "first_time_utc": fmt(first),
                    "first_timestamp": first,
                    "last_time_utc": fmt(now.timestamp_millis()),
                    "last_timestamp": now.timestamp_millis(),
                    "repeat_count": count,
                });
            }
            None => {
                hashes.push(Some(hash));
                existing.push(alert);
            }
        }
    }
    (existing, folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn alert(at: DateTime<Utc>, srcip: &str) -> Json {
        json!({"timestamp": at.timestamp_millis(), "timestamp_utc": "x", "stellar_uuid": at.to_string(), "event_date": 1,
               "alert_type": "scan", "result": {"srcip": srcip, "first_seen_time": at.to_string()}})
    }

    #[test]
    fn repeats_within_the_window_are_counted_once() {
        let t0 = t("2023-01-25T07:34:49Z");
        let (all, folded) = apply(
            vec![],
            vec![alert(t0, "10.0.0.1"), alert(t0, "10.0.0.2")],
            t0,
            TimeDelta::hours(1),
            &[],
        );
        assert_eq!((all.len(), folded), (2, 0));
        let t1 = t("2023-01-25T07:59:50Z");
        let (all, folded) = apply(
            all,
            vec![alert(t1, "10.0.0.1")],
            t1,
            TimeDelta::hours(1),
            &[],
        );
        assert_eq!((all.len(), folded), (2, 1));
        let d = &all[0]["ath_deduplication"];
        assert_eq!(d["repeat_count"], 2);
        assert_eq!(d["first_time_utc"], "2023-01-25 07:34:49 UTC");
        assert_eq!(d["last_time_utc"], "2023-01-25 07:59:50 UTC");
        let (all, _) = apply(
            all,
            vec![alert(t1, "10.0.0.1")],
            t1,
            TimeDelta::hours(1),
            &[],
        );
        assert_eq!(all[0]["ath_deduplication"]["repeat_count"], 3);
        // Outside the window a new record starts.
        let t2 = t("2023-01-25T09:00:00Z");
        let (all, folded) = apply(
            all,
            vec![alert(t2, "10.0.0.1")],
            t2,
            TimeDelta::hours(1),
            &[],
        );
        assert_eq!((all.len(), folded), (3, 0));
    }

    #[test]
    fn chosen_fields_only() {
        let a = json!({"alert_type": "x", "result": {"srcip": "1", "n": 1}});
        let b = json!({"alert_type": "x", "result": {"srcip": "1", "n": 2}});
        assert_ne!(dedup_hash(&a, &[]), dedup_hash(&b, &[]));
        let fields = vec!["result.srcip".to_string()];
        assert_eq!(dedup_hash(&a, &fields), dedup_hash(&b, &fields));
    }
}
