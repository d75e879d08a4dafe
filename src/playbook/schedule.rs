//! When a playbook runs: intervals and daily/weekly/monthly times in UTC, windows (in a named
//! time zone) in which it does not run, mutes, and how far back each run looks. All from `now`.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub enum Every {
    Minutes(u32),
    Daily {
        at: NaiveTime,
    },
    Weekly {
        days: Vec<Weekday>,
        at: NaiveTime,
    },
    /// Days of the month; a day past the month's end means its last day.
    Monthly {
        days: Vec<u32>,
        at: NaiveTime,
    },
    /// `realtime:`: the source files are followed as they grow and the playbook is evaluated as
    /// records arrive, over the last `lookback` (which a real-time schedule always has).
    Realtime,
}

/// A window in which the playbook does not run: on `days` (all if empty), from `from` to `to`
/// minutes after local midnight.
#[derive(Debug, Clone, PartialEq)]
pub struct SkipWindow {
    pub days: Vec<Weekday>,
    pub from_minute: u32,
    pub to_minute: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    pub timezone: Tz,
    pub windows: Vec<SkipWindow>,
}

/// Silence from `from` for a duration (actions do not run while muted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mute {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Mute {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.from <= now && now < self.until
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub every: Every,
    pub lookback: Option<TimeDelta>,
    pub skip: Option<Skip>,
    pub mute: Option<Mute>,
}

impl Schedule {
    /// Whether the playbook is followed in real time rather than run on a schedule.
    pub fn is_realtime(&self) -> bool {
        self.every == Every::Realtime
    }

    /// The first scheduled time strictly after `t` (for a real-time playbook, the next second:
    /// it is evaluated continuously).
    pub fn next_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match &self.every {
            Every::Realtime => DateTime::from_timestamp(t.timestamp() + 1, 0).expect("in range"),
            Every::Minutes(n) => {
                let step = i64::from(*n) * 60;
                let next = (t.timestamp().div_euclid(step) + 1) * step;
                DateTime::from_timestamp(next, 0).expect("in range")
            }
            _ => (0..=400)
                .filter_map(|d| t.date_naive().checked_add_days(Days::new(d)))
                .filter_map(|day| self.fire_on(day))
                .find(|fire| *fire > t)
                .expect("every calendar schedule fires within 400 days"),
        }
    }

    /// The last scheduled time at or before `t` (`t` itself for a real-time playbook).
    pub fn previous_at_or_before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match &self.every {
            Every::Realtime => t,
            Every::Minutes(n) => {
                let step = i64::from(*n) * 60;
                DateTime::from_timestamp(t.timestamp().div_euclid(step) * step, 0)
                    .expect("in range")
            }
            _ => (0..=400)
                .filter_map(|d| t.date_naive().checked_sub_days(Days::new(d)))
                .filter_map(|day| self.fire_on(day))
                .find(|fire| *fire <= t)
                .expect("every calendar schedule fires within 400 days"),
        }
    }

    fn fire_on(&self, day: NaiveDate) -> Option<DateTime<Utc>> {
        let at = match &self.every {
            Every::Minutes(_) | Every::Realtime => return None,
            Every::Daily { at } => *at,
            Every::Weekly { days, at } => days.contains(&day.weekday()).then_some(*at)?,
            Every::Monthly { days, at } => {
                let last = last_day_of_month(day);
                days.iter()
                    .any(|d| (*d).min(last) == day.day())
                    .then_some(*at)?
            }
        };
        Some(day.and_time(at).and_utc())
    }

    /// How far back a run at `at` looks: `lookback`, or one period of the schedule (the interval,
    /// or for calendar schedules the gap between the scheduled runs around `at`).
    pub fn lookback_at(&self, at: DateTime<Utc>) -> TimeDelta {
        self.lookback.unwrap_or_else(|| {
            let previous = self.previous_at_or_before(at - TimeDelta::seconds(1));
            self.next_after(previous) - previous
        })
    }

    /// Why the run at `at` is skipped, if it falls in a skip window.
    pub fn skipped(&self, at: DateTime<Utc>) -> Option<String> {
        let skip = self.skip.as_ref()?;
        let local = at.with_timezone(&skip.timezone);
        let minute = local.hour() * 60 + local.minute();
        let weekday = local.weekday();
        skip.windows
            .iter()
            .find(|w| {
                (w.days.is_empty() || w.days.contains(&weekday))
                    && w.from_minute <= minute
                    && minute < w.to_minute
            })
            .map(|w| {
                format!(
                    "{} is inside a skip window ({:02}:{:02}-{:02}:{:02} {})",
                    local.format("%a %H:%M %Z"),
                    w.from_minute / 60,
                    w.from_minute % 60,
                    w.to_minute / 60,
                    w.to_minute % 60,
                    skip.timezone
                )
            })
    }
}

fn last_day_of_month(day: NaiveDate) -> u32 {
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// Parses `HH:MM` (and `24:00` when `allow_24` is set) into minutes after midnight.
pub fn parse_minute_of_day(text: &str, allow_24: bool) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let minute = h * 60 + m;
    (m < 60 && (minute < 1440 || (allow_24 && minute == 1440))).then_some(minute)
}

pub fn parse_weekday(text: &str) -> Option<Weekday> {
    text.parse::<Weekday>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn sched(every: Every) -> Schedule {
        Schedule {
            every,
            lookback: None,
            skip: None,
            mute: None,
        }
    }

    #[test]
    fn intervals_align_to_the_epoch_and_look_back_one_interval() {
        let s = sched(Every::Minutes(30));
        assert_eq!(
            s.next_after(t("2025-06-02T10:10:00Z")),
            t("2025-06-02T10:30:00Z")
        );
        assert_eq!(
            s.next_after(t("2025-06-02T10:30:00Z")),
            t("2025-06-02T11:00:00Z")
        );
        assert_eq!(
            s.previous_at_or_before(t("2025-06-02T10:30:00Z")),
            t("2025-06-02T10:30:00Z")
        );
        assert_eq!(
            s.lookback_at(t("2025-06-02T10:30:00Z")),
            TimeDelta::minutes(30)
        );
        assert_eq!(
            s.lookback_at(t("2025-06-02T10:41:00Z")),
            TimeDelta::minutes(30)
        );
        let fixed = Schedule {
            lookback: Some(TimeDelta::hours(2)),
            ..s
        };
        assert_eq!(
            fixed.lookback_at(t("2025-06-02T10:30:00Z")),
            TimeDelta::hours(2)
        );
    }

    #[test]
    fn daily_weekly_monthly_in_utc() {
        let daily = sched(Every::Daily { at: at(2, 30) });
        assert_eq!(
            daily.next_after(t("2025-06-02T02:30:00Z")),
            t("2025-06-03T02:30:00Z")
        );
        assert_eq!(
            daily.lookback_at(t("2025-06-03T02:30:00Z")),
            TimeDelta::days(1)
        );
        // 2025-06-02 is a Monday.
        let weekly = sched(Every::Weekly {
            days: vec![Weekday::Mon, Weekday::Thu],
            at: at(6, 0),
        });
        assert_eq!(
            weekly.next_after(t("2025-06-02T07:00:00Z")),
            t("2025-06-05T06:00:00Z")
        );
        assert_eq!(
            weekly.lookback_at(t("2025-06-05T06:00:00Z")),
            TimeDelta::days(3)
        );
        assert_eq!(
            weekly.lookback_at(t("2025-06-06T06:00:00Z")),
            TimeDelta::days(4)
        );
        let monthly = sched(Every::Monthly {
            days: vec![31],
            at: at(0, 0),
        });
        assert_eq!(
            monthly.next_after(t("2025-02-01T00:00:00Z")),
            t("2025-02-28T00:00:00Z")
        );
        assert_eq!(
            monthly.next_after(t("2025-02-28T00:00:00Z")),
            t("2025-03-31T00:00:00Z")
        );
    }

    #[test]
    fn skip_windows_use_the_named_time_zone() {
        let skip = Skip {
            timezone: "Europe/Berlin".parse().unwrap(),
            windows: vec![
                SkipWindow {
                    days: vec![Weekday::Sat, Weekday::Sun],
                    from_minute: 0,
                    to_minute: 1440,
                },
                SkipWindow {
                    days: vec![],
                    from_minute: 22 * 60,
                    to_minute: 1440,
                },
            ],
        };
        let s = Schedule {
            skip: Some(skip),
            ..sched(Every::Minutes(60))
        };
        // Friday 22:30 UTC is Saturday 00:30 in Berlin (summer time).
        assert!(s
            .skipped(t("2025-06-06T22:30:00Z"))
            .unwrap()
            .contains("Sat 00:30 CEST"));
        // Monday 20:00 UTC is 22:00 in Berlin.
        assert!(s.skipped(t("2025-06-02T20:00:00Z")).is_some());
        assert!(s.skipped(t("2025-06-02T19:59:00Z")).is_none());
        assert_eq!(parse_minute_of_day("24:00", true), Some(1440));
        assert_eq!(parse_minute_of_day("24:00", false), None);
        assert_eq!(parse_minute_of_day("7:61", true), None);
    }

    #[test]
    fn mute_is_a_half_open_interval() {
        let m = Mute {
            from: t("2025-06-02T10:00:00Z"),
            until: t("2025-06-02T12:00:00Z"),
        };
        assert!(!m.active(t("2025-06-02T09:59:59Z")));
        assert!(m.active(t("2025-06-02T10:00:00Z")));
        assert!(!m.active(t("2025-06-02T12:00:00Z")));
    }
}
