//! Scheduled-audit day rules: which frequency takes which day field, and when the next run is.
//!
//! Rules (reference §2.4, §8.5–8.6): MONTHLY takes `dayOfMonth` (`1`–`31` without a leading zero,
//! or `LAST`); WEEKLY and BIWEEKLY take `dayOfWeek`; DAILY takes neither. A day field that does
//! not fit the frequency is an error. Days 29–31 run on the last day of shorter months.
//! Runs start at midnight UTC plus an offset the caller chooses (the service picks the time of
//! day; the emulator makes it a setting).

use crate::vocabulary::{DayOfWeek, Frequency};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use std::fmt;

/// `dayOfMonth` of a monthly audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayOfMonth {
    /// A day 1–31; in a shorter month the run falls on its last day.
    Day(u32),
    /// The last day of every month.
    Last,
}

impl DayOfMonth {
    /// Parses the wire form: `^([1-9]|[12][0-9]|3[01])$|^LAST$`.
    pub fn parse(s: &str) -> Result<Self, ScheduleError> {
        if s == "LAST" {
            return Ok(DayOfMonth::Last);
        }
        let valid = !s.is_empty() && s.len() <= 2 && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit());
        match s.parse::<u32>() {
            Ok(d) if valid && (1..=31).contains(&d) => Ok(DayOfMonth::Day(d)),
            _ => Err(ScheduleError::InvalidDayOfMonth(s.to_owned())),
        }
    }

    /// The calendar day this rule falls on in the given month.
    pub fn in_month(self, year: i32, month: u32) -> u32 {
        let last = last_day_of_month(year, month);
        match self {
            DayOfMonth::Last => last,
            DayOfMonth::Day(d) => d.min(last),
        }
    }
}

impl fmt::Display for DayOfMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DayOfMonth::Last => f.write_str("LAST"),
            DayOfMonth::Day(d) => write!(f, "{d}"),
        }
    }
}

/// Why a frequency/day combination is not a valid schedule. Messages name the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("frequency '{0}' is not one of DAILY, WEEKLY, BIWEEKLY, MONTHLY")]
    UnknownFrequency(String),
    #[error("dayOfMonth '{0}' must be 1-31 without a leading zero, or LAST")]
    InvalidDayOfMonth(String),
    #[error("dayOfWeek '{0}' is not one of SUN, MON, TUE, WED, THU, FRI, SAT")]
    InvalidDayOfWeek(String),
    #[error("frequency MONTHLY requires dayOfMonth")]
    MissingDayOfMonth,
    #[error("frequency {0} requires dayOfWeek")]
    MissingDayOfWeek(Frequency),
    #[error("dayOfMonth is only allowed with frequency MONTHLY, not {0}")]
    UnexpectedDayOfMonth(Frequency),
    #[error("dayOfWeek is only allowed with frequency WEEKLY or BIWEEKLY, not {0}")]
    UnexpectedDayOfWeek(Frequency),
}

/// A validated schedule: a known frequency with exactly the day field it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every day.
    Daily,
    /// Every week on a day.
    Weekly(DayOfWeek),
    /// Every other week on a day.
    Biweekly(DayOfWeek),
    /// Every month on a day.
    Monthly(DayOfMonth),
}

impl Schedule {
    /// Validates the wire fields of a scheduled audit.
    pub fn from_wire(
        frequency: &str,
        day_of_month: Option<&str>,
        day_of_week: Option<&str>,
    ) -> Result<Self, ScheduleError> {
        let freq =
            Frequency::parse_known(frequency).ok_or_else(|| ScheduleError::UnknownFrequency(frequency.to_owned()))?;
        let dom = day_of_month.map(DayOfMonth::parse).transpose()?;
        let dow = day_of_week
            .map(|d| DayOfWeek::parse_known(d).ok_or_else(|| ScheduleError::InvalidDayOfWeek(d.to_owned())))
            .transpose()?;
        match freq {
            Frequency::Monthly => {
                if dow.is_some() {
                    return Err(ScheduleError::UnexpectedDayOfWeek(freq));
                }
                dom.map(Schedule::Monthly).ok_or(ScheduleError::MissingDayOfMonth)
            }
            Frequency::Weekly | Frequency::Biweekly => {
                if dom.is_some() {
                    return Err(ScheduleError::UnexpectedDayOfMonth(freq));
                }
                let dow = dow.ok_or_else(|| ScheduleError::MissingDayOfWeek(freq.clone()))?;
                Ok(if freq == Frequency::Weekly { Schedule::Weekly(dow) } else { Schedule::Biweekly(dow) })
            }
            Frequency::Daily => match (dom, dow) {
                (Some(_), _) => Err(ScheduleError::UnexpectedDayOfMonth(freq)),
                (_, Some(_)) => Err(ScheduleError::UnexpectedDayOfWeek(freq)),
                _ => Ok(Schedule::Daily),
            },
            Frequency::Unknown(_) => unreachable!("parse_known returned a known frequency"),
        }
    }

    /// The wire `frequency`.
    pub fn frequency(&self) -> Frequency {
        match self {
            Schedule::Daily => Frequency::Daily,
            Schedule::Weekly(_) => Frequency::Weekly,
            Schedule::Biweekly(_) => Frequency::Biweekly,
            Schedule::Monthly(_) => Frequency::Monthly,
        }
    }

    /// The wire `dayOfMonth`, if this schedule has one.
    pub fn day_of_month(&self) -> Option<String> {
        match self {
            Schedule::Monthly(d) => Some(d.to_string()),
            _ => None,
        }
    }

    /// The wire `dayOfWeek`, if this schedule has one.
    pub fn day_of_week(&self) -> Option<DayOfWeek> {
        match self {
            Schedule::Weekly(d) | Schedule::Biweekly(d) => Some(d.clone()),
            _ => None,
        }
    }

    /// The first run strictly after `after`, where runs start `offset` past midnight UTC.
    /// For BIWEEKLY this is the first matching weekday; later runs follow with [`Self::run_after_run`].
    pub fn next_run(&self, after: DateTime<Utc>, offset: Duration) -> DateTime<Utc> {
        let start_of = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists")) + offset;
        let mut date = (after - offset).date_naive();
        // At most ~62 days ahead for any rule; the loop walks day by day, cheap and obviously right.
        loop {
            if start_of(date) > after && self.runs_on(date) {
                return start_of(date);
            }
            date = date.succ_opt().expect("date within chrono's range");
        }
    }

    /// The run after a run at `previous`: BIWEEKLY keeps its two-week rhythm, the rest follow the calendar.
    pub fn run_after_run(&self, previous: DateTime<Utc>, offset: Duration) -> DateTime<Utc> {
        match self {
            Schedule::Biweekly(_) => previous + Duration::days(14),
            _ => self.next_run(previous, offset),
        }
    }

    /// True when the calendar rule matches `date` (BIWEEKLY: every matching weekday).
    pub fn runs_on(&self, date: NaiveDate) -> bool {
        match self {
            Schedule::Daily => true,
            Schedule::Weekly(d) | Schedule::Biweekly(d) => {
                d.days_from_sunday() == Some(date.weekday().num_days_from_sunday())
            }
            Schedule::Monthly(d) => date.day() == d.in_month(date.year(), date.month()),
        }
    }
}

impl fmt::Display for Schedule {
    /// `DAILY`, `WEEKLY MON`, `BIWEEKLY FRI`, `MONTHLY 15`, `MONTHLY LAST`: how the hub records a
    /// member's schedule and the roll-up names it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.day_of_week(), self.day_of_month()) {
            (Some(d), _) => write!(f, "{} {d}", self.frequency()),
            (_, Some(d)) => write!(f, "{} {d}", self.frequency()),
            _ => write!(f, "{}", self.frequency()),
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = ScheduleError;

    /// The inverse of `Display`.
    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        let (frequency, day) = s.split_once(' ').map_or((s, None), |(f, d)| (f, Some(d)));
        match Frequency::parse_known(frequency) {
            Some(Frequency::Monthly) => Schedule::from_wire(frequency, day, None),
            _ => Schedule::from_wire(frequency, None, day),
        }
    }
}

/// The last day (28–31) of a month.
pub fn last_day_of_month(year: i32, month: u32) -> u32 {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).expect("valid month").pred_opt().expect("valid date").day()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn day_of_month_pattern() {
        for ok in ["1", "9", "10", "29", "31", "LAST"] {
            assert!(DayOfMonth::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "01", "32", "last", "", "1.5", "+1", " 1"] {
            assert!(DayOfMonth::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frequency_day_matrix() {
        assert_eq!(Schedule::from_wire("DAILY", None, None), Ok(Schedule::Daily));
        assert_eq!(Schedule::from_wire("MONTHLY", None, None), Err(ScheduleError::MissingDayOfMonth));
        assert!(matches!(Schedule::from_wire("WEEKLY", None, None), Err(ScheduleError::MissingDayOfWeek(_))));
        assert!(matches!(
            Schedule::from_wire("MONTHLY", Some("1"), Some("MON")),
            Err(ScheduleError::UnexpectedDayOfWeek(_))
        ));
        assert!(matches!(
            Schedule::from_wire("BIWEEKLY", Some("1"), Some("MON")),
            Err(ScheduleError::UnexpectedDayOfMonth(_))
        ));
        assert!(matches!(Schedule::from_wire("DAILY", None, Some("MON")), Err(ScheduleError::UnexpectedDayOfWeek(_))));
        assert!(matches!(Schedule::from_wire("HOURLY", None, None), Err(ScheduleError::UnknownFrequency(_))));
        assert!(matches!(Schedule::from_wire("WEEKLY", None, Some("mon")), Err(ScheduleError::InvalidDayOfWeek(_))));
    }

    #[test]
    fn day_31_and_last_fall_on_the_last_day_of_february() {
        let s = Schedule::Monthly(DayOfMonth::Day(31));
        assert_eq!(s.next_run(at(2026, 2, 1), Duration::zero()), at(2026, 2, 28));
        assert_eq!(s.next_run(at(2028, 2, 1), Duration::zero()), at(2028, 2, 29));
        assert_eq!(s.next_run(at(2026, 2, 28), Duration::zero()), at(2026, 3, 31));
        let last = Schedule::Monthly(DayOfMonth::Last);
        assert_eq!(last.next_run(at(2026, 4, 2), Duration::zero()), at(2026, 4, 30));
        let d30 = Schedule::Monthly(DayOfMonth::Day(30));
        assert_eq!(d30.next_run(at(2026, 1, 31), Duration::zero()), at(2026, 2, 28));
    }

    #[test]
    fn weekly_biweekly_daily_next_runs() {
        // 2026-11-25 is a Wednesday.
        let now = at(2026, 11, 25) + Duration::hours(3);
        assert_eq!(Schedule::Daily.next_run(now, Duration::zero()), at(2026, 11, 26));
        let w = Schedule::Weekly(DayOfWeek::Mon);
        assert_eq!(w.next_run(now, Duration::zero()), at(2026, 11, 30));
        let b = Schedule::Biweekly(DayOfWeek::Wed);
        let first = b.next_run(now, Duration::zero());
        assert_eq!(first, at(2026, 12, 2));
        assert_eq!(b.run_after_run(first, Duration::zero()), at(2026, 12, 16));
        // With an offset the run is later the same day.
        assert_eq!(
            Schedule::Daily.next_run(at(2026, 11, 25), Duration::hours(2)),
            at(2026, 11, 25) + Duration::hours(2)
        );
    }
}
