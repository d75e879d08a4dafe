//! Checking a playbook file: YAML into a [`Playbook`], or every problem with its line and what is
//! expected instead.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use serde_json::Value as Json;
use serde_saphyr::Spanned;

use super::actions::{Action, ActionKind, Dedup, ForEach, HttpUrl};
use super::calc::{Calc, Metric, MetricOp, Terms};
use super::command::{default_allow_list, SshTarget, Target, KNOWN_COMMANDS};
use super::condition::{Condition, ConditionKind, Threshold};
use super::model::*;
use super::query::{CmpOp, Query, Test};
use super::schedule::{
    parse_minute_of_day, parse_weekday, Every, Mute, Schedule, Skip, SkipWindow,
};
use super::template::Template;
use super::value::{Cidr, Literal};
use super::{Playbook, Source, WatchlistSpec};

/// One problem in a playbook file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub message: String,
}

/// Parses and checks playbook YAML.
pub fn parse_playbook(text: &str) -> Result<Playbook, Vec<Problem>> {
    let raw: RawPlaybook = serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        let message = e
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid YAML")
            .to_string();
        vec![Problem { line, message }]
    })?;
    let mut v = Checker {
        problems: Vec::new(),
        fields: vec!["timestamp".to_string()],
        calc_names: Vec::new(),
    };
    let playbook = v.playbook(raw);
    if v.problems.is_empty() {
        Ok(playbook)
    } else {
        v.problems.sort_by_key(|p| p.line);
        Err(v.problems)
    }
}

struct Checker {
    problems: Vec<Problem>,
    fields: Vec<String>,
    calc_names: Vec<String>,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write it like 90s, 30m, 2h or 1day")
    })
}

impl Checker {
    fn err(&mut self, line: u64, message: impl Into<String>) {
        self.problems.push(Problem {
            line,
            message: message.into(),
        });
    }

    fn field(&mut self, name: &str) -> usize {
        let name = name.strip_prefix("_source.").unwrap_or(name);
        match self.fields.iter().position(|f| f == name) {
            Some(i) => i,
            None => {
                self.fields.push(name.to_string());
                self.fields.len() - 1
            }
        }
    }

    fn playbook(&mut self, raw: RawPlaybook) -> Playbook {
        if raw.name.value.trim().is_empty() {
            self.err(
                raw.name.referenced.line(),
                "`name` is empty; give the playbook a name",
            );
        }
        let schedule = self.schedule(&raw.schedule);
        let source_line = raw.source.referenced.line();
        let source = Source {
            paths: raw.source.value.paths.clone(),
            format: raw.source.value.format,
            max_filtered: raw.source.value.max_filtered.unwrap_or(100),
        };
        if source.paths.is_empty() {
            self.err(
                source_line,
                "`source.paths` is empty; list the log files or globs to read",
            );
        }
        let watchlists: Vec<WatchlistSpec> = raw
            .watchlists
            .iter()
            .map(|w| WatchlistSpec {
                name: w.value.name.clone(),
                file: w.value.file.clone(),
                key: w.value.key.clone(),
            })
            .collect();
        let query = raw.query.as_ref().and_then(|q| self.query(q, &watchlists));
        let calcs = raw
            .calculations
            .iter()
            .filter_map(|c| self.calc(c))
            .collect::<Vec<_>>();
        let conditions = raw
            .conditions
            .iter()
            .filter_map(|c| self.condition(c, &calcs, &watchlists))
            .collect::<Vec<_>>();
        for (i, c) in conditions.iter().enumerate() {
            if conditions[..i].iter().any(|o| o.name == c.name) {
                self.err(
                    raw.conditions[i].referenced.line(),
                    format!(
                        "condition `{}` is defined twice; names must be unique",
                        c.name
                    ),
                );
            }
        }
        let actions = raw
            .actions
            .iter()
            .filter_map(|a| self.action(a, &calcs, &conditions))
            .collect();
        Playbook {
            name: raw.name.value,
            description: raw.description,
            enabled: raw.enabled.unwrap_or(true),
            schedule,
            source,
            watchlists,
            fields: std::mem::take(&mut self.fields),
            query,
            calcs,
            conditions,
            actions,
        }
    }

    fn schedule(&mut self, raw: &Spanned<RawSchedule>) -> Schedule {
        let line = raw.referenced.line();
        let s = &raw.value;
        let at = |text: &str, this: &mut Checker| match parse_minute_of_day(text, false) {
            Some(m) => {
                NaiveTime::from_num_seconds_from_midnight_opt(m * 60, 0).expect("minute of day")
            }
            None => {
                this.err(
                    line,
                    format!("time `{text}` must be HH:MM in UTC, such as 02:30"),
                );
                NaiveTime::MIN
            }
        };
        let kinds = [
            s.interval_minutes.is_some(),
            s.daily.is_some(),
            s.weekly.is_some(),
            s.monthly.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            self.err(
                line,
                "`schedule` needs exactly one of interval_minutes, daily, weekly or monthly",
            );
        }
        let every = if let Some(n) = s.interval_minutes {
            if n == 0 || n > 44_640 {
                self.err(line, "`interval_minutes` must be from 1 to 44640 (31 days)");
            }
            Every::Minutes(n.max(1))
        } else if let Some(d) = &s.daily {
            Every::Daily {
                at: at(&d.at, self),
            }
        } else if let Some(w) = &s.weekly {
            let days = self.weekdays(&w.days, line);
            if days.is_empty() {
                self.err(line, "`weekly.days` is empty; list days such as [mon, thu]");
            }
            Every::Weekly {
                days,
                at: at(&w.at, self),
            }
        } else if let Some(m) = &s.monthly {
            if m.days.is_empty() || m.days.iter().any(|d| !(1..=31).contains(d)) {
                self.err(
                    line,
                    "`monthly.days` must list days of the month from 1 to 31",
                );
            }
            Every::Monthly {
                days: m.days.clone(),
                at: at(&m.at, self),
            }
        } else {
            Every::Minutes(60)
        };
        let lookback = s.lookback.as_deref().and_then(|l| match duration(l) {
            Ok(d) => TimeDelta::from_std(d).ok(),
            Err(e) => {
                self.err(line, format!("`lookback`: {e}"));
                None
            }
        });
        let skip = s.skip.as_ref().map(|k| self.skip(k));
        let mute = s.mute.as_ref().and_then(|m| self.mute(m));
        Schedule {
            every,
            lookback,
            skip,
            mute,
        }
    }

    fn weekdays(&mut self, days: &[String], line: u64) -> Vec<chrono::Weekday> {
        days.iter()
            .filter_map(|d| {
                let day = parse_weekday(d);
                if day.is_none() {
                    self.err(line, format!("`{d}` is not a day of the week; use mon, tue, wed, thu, fri, sat or sun"));
                }
                day
            })
            .collect()
    }

    fn skip(&mut self, raw: &Spanned<RawSkip>) -> Skip {
        let line = raw.referenced.line();
        let timezone = raw.value.timezone.parse().unwrap_or_else(|_| {
            self.err(
                line,
                format!(
                    "`{}` is not a time zone name; use an IANA name such as Europe/Berlin or UTC",
                    raw.value.timezone
                ),
            );
            chrono_tz::UTC
        });
        let windows = raw
            .value
            .windows
            .iter()
            .map(|w| {
                let wl = w.referenced.line();
                let days = self.weekdays(&w.value.days, wl);
                let from = parse_minute_of_day(&w.value.from, false);
                let to = parse_minute_of_day(&w.value.to, true);
                let (from_minute, to_minute) = match (from, to) {
                    (Some(f), Some(t)) if f < t => (f, t),
                    (Some(_), Some(_)) => {
                        self.err(wl, "a skip window must end after it starts; split a window over midnight into two (22:00-24:00 and 00:00-06:00)");
                        (0, 0)
                    }
                    _ => {
                        self.err(wl, "`from` and `to` must be HH:MM (`to` may be 24:00)");
                        (0, 0)
                    }
                };
                SkipWindow { days, from_minute, to_minute }
            })
            .collect();
        Skip { timezone, windows }
    }

    fn mute(&mut self, raw: &Spanned<RawMute>) -> Option<Mute> {
        let line = raw.referenced.line();
        let from = match DateTime::parse_from_rfc3339(&raw.value.from) {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => {
                self.err(
                    line,
                    format!(
                        "mute `from: {}` must be an RFC 3339 time such as 2025-06-01T08:00:00Z",
                        raw.value.from
                    ),
                );
                return None;
            }
        };
        match duration(&raw.value.duration)
            .ok()
            .and_then(|d| TimeDelta::from_std(d).ok())
        {
            Some(d) => Some(Mute {
                from,
                until: from + d,
            }),
            None => {
                self.err(
                    line,
                    format!(
                        "mute `for: {}` must be a duration such as 2h",
                        raw.value.duration
                    ),
                );
                None
            }
        }
    }
}

#[path = "validate_actions.rs"]
mod actions;
#[path = "validate_parts.rs"]
mod parts;
