//! Checking `schedule`: one kind of run time, the lookback, skip windows and mutes.

use chrono::{DateTime, NaiveTime, Utc};
use serde_saphyr::Spanned;

use super::{duration, Checker};
use crate::playbook::schedule::{
    parse_minute_of_day, parse_weekday, Every, Mute, Schedule, Skip, SkipWindow,
};
use crate::playbook::spec::model::{RawMute, RawSchedule, RawSkip};

impl Checker {
    pub(super) fn schedule(&mut self, raw: &Spanned<RawSchedule>) -> Schedule {
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
            s.realtime.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            self.err(
                line,
                "`schedule` needs exactly one of interval_minutes, daily, weekly, monthly or realtime",
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
        } else if s.realtime.is_some() {
            if s.lookback.is_some() {
                self.err(line, "a real-time schedule takes its lookback inside it: `realtime: {lookback: 10m}`; remove the outer `lookback`");
            }
            if s.skip.is_some() {
                self.err(line, "`skip` does not apply to a real-time schedule (it is always on); use `mute` to silence its actions for a while");
            }
            Every::Realtime
        } else {
            Every::Minutes(60)
        };
        let lookback_text = s
            .realtime
            .as_ref()
            .map(|r| r.lookback.as_str())
            .or(s.lookback.as_deref());
        let lookback = lookback_text.and_then(|l| match duration(l) {
            Ok(d) => Some(d),
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

    pub(super) fn mute(&mut self, raw: &Spanned<RawMute>) -> Option<Mute> {
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
        let span = match duration(&raw.value.duration) {
            Ok(d) => d,
            Err(e) => {
                self.err(line, format!("mute `for`: {e}"));
                return None;
            }
        };
        match from.checked_add_signed(span) {
            Some(until) => Some(Mute { from, until }),
            None => {
                self.err(
                    line,
                    format!(
                        "mute from {} for {} ends past the last representable time; shorten it",
                        raw.value.from, raw.value.duration
                    ),
                );
                None
            }
        }
    }
}
