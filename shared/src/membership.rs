//! A member's life as the hub sees it, and the rules that move it along. Pure.
//!
//! - **joined**: the hub confirmed its topic's subscription of the hub's queue (its member stack
//!   exists and its hub-access role can be assumed), or it sent a first notification;
//! - **reporting**: its audits reach the hub when its own schedule says they run;
//! - **silent**: one of its scheduled audits did not reach the hub by the end of the day it was
//!   due, plus a grace;
//! - **unreadable**: its findings cannot be read (its role cannot be assumed, …);
//! - **retired**: the organization no longer has the account (or suspends or closes it), or
//!   someone retired it with `audit-history retire`. The roll-up lists a retired member once,
//!   then leaves it out; a retired member that notifies again, or whose stack subscribes again,
//!   is back.
//!
//! Silence is judged against each member's own scheduled audits (ListScheduledAudits, read by
//! the hub with every notification), not one number for all: a weekly audit is not late on its
//! third day. Sources and our decisions: docs/reference/organization.md ("Members join and
//! leave").

use crate::digest::fmt_time;
use crate::member::Member;
use crate::schedule::Schedule;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use std::collections::BTreeMap;
use std::fmt;

/// One scheduled audit of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSchedule {
    /// The scheduled audit's name (its stream in the history).
    pub audit: String,
    pub schedule: Schedule,
}

/// A member's retirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    /// When (epoch ms).
    pub at: i64,
    /// Why: the organization no longer has the account, or what the person who retired it said.
    pub reason: String,
    /// Whether a roll-up has listed it (it is listed once).
    pub reported: bool,
}

/// Where a member is in its life (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    Joined,
    Reporting,
    Silent,
    Unreadable,
    Retired,
}

impl MemberState {
    /// The state of a member: retired above all, then unreadable, silent, reporting (it has
    /// notified an audit) and joined.
    pub fn of(retired: bool, unreadable: bool, silent: bool, notified: bool) -> MemberState {
        match () {
            _ if retired => MemberState::Retired,
            _ if unreadable => MemberState::Unreadable,
            _ if silent => MemberState::Silent,
            _ if notified => MemberState::Reporting,
            _ => MemberState::Joined,
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemberState::Joined => "joined",
            MemberState::Reporting => "reporting",
            MemberState::Silent => "silent",
            MemberState::Unreadable => "unreadable",
            MemberState::Retired => "retired",
        })
    }
}

/// A scheduled audit that did not reach the hub in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedAudit {
    /// The scheduled audit; `None` when the member's schedule is not known (judged as daily).
    pub audit: Option<AuditSchedule>,
    /// The day its run was due (UTC); `None` when the member never reported and never joined.
    pub due: Option<NaiveDate>,
    /// Start of its latest run the hub knows (epoch ms).
    pub last_run: Option<i64>,
}

impl fmt::Display for MissedAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.audit {
            Some(a) => write!(f, "{} audit {}", a.schedule, a.audit)?,
            None => f.write_str("schedule not known (judged as daily)")?,
        }
        match self.due {
            Some(day) => write!(f, " was due {day}")?,
            None => f.write_str(" never reported")?,
        }
        if let Some(t) = self.last_run {
            write!(f, ", last run {}", fmt_time(t))?;
        }
        Ok(())
    }
}

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The day a schedule's next run is due after a run at `last`, or, with no run yet, the day
/// its first run is due after `since` (when the member joined or was first seen). Device
/// Defender picks the time of day itself, so a run is due somewhere in that day. [ours] A
/// BIWEEKLY audit's first run may fall in either of the next two weeks (AWS does not say which),
/// so the later one is due.
pub fn due_day(schedule: &Schedule, last: Option<i64>, since: i64) -> NaiveDate {
    match last {
        Some(last) => schedule.run_after_run(utc(last), Duration::zero()).date_naive(),
        None => {
            let first = schedule.next_run(utc(since), Duration::zero());
            let first = if matches!(schedule, Schedule::Biweekly(_)) { first + Duration::days(7) } else { first };
            first.date_naive()
        }
    }
}

/// The member's scheduled audits that did not reach the hub by the end of their due day plus
/// `grace_ms`, at `now`. `schedules`: its scheduled audits, `None` when not known yet (then any
/// audit is expected daily); `last_runs`: start of the latest run per audit stream the hub has;
/// `last_audit`: the latest audit of any stream it notified; `since`: when it joined (or was
/// first seen). A member with neither a run nor `since` never reported: missed at once.
pub fn missed_audits(
    schedules: Option<&[AuditSchedule]>,
    last_runs: &BTreeMap<String, i64>,
    last_audit: Option<i64>,
    since: Option<i64>,
    now: i64,
    grace_ms: i64,
) -> Vec<MissedAudit> {
    let late = |day: NaiveDate| {
        let end = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists")) + Duration::days(1);
        now > end.timestamp_millis() + grace_ms
    };
    let judge = |audit: Option<AuditSchedule>, schedule: &Schedule, last: Option<i64>| {
        let Some(base) = last.or(since) else { return Some(MissedAudit { audit, due: None, last_run: None }) };
        let due = due_day(schedule, last, base);
        late(due).then_some(MissedAudit { audit, due: Some(due), last_run: last })
    };
    match schedules {
        Some(list) if !list.is_empty() => {
            list.iter().filter_map(|a| judge(Some(a.clone()), &a.schedule, last_runs.get(&a.audit).copied())).collect()
        }
        _ => judge(None, &Schedule::Daily, last_audit).into_iter().collect(),
    }
}

/// An account as the organization lists it (ListAccounts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE` (the account's `Status`), or its newer `State`
    /// (`ACTIVE`, `SUSPENDED`, `PENDING_ACTIVATION`, `PENDING_CLOSURE`, `CLOSED`) when given.
    pub status: String,
}

/// Why the organization's answer cannot be trusted to retire anyone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the organization's account list does not hold the hub's own account {0}: not trusted to retire members")]
pub struct UntrustedAccountList(pub String);

/// The members to retire because the organization no longer has their account, or suspends or
/// closes it, each with the reason. The hub's own member is never retired, and an account list
/// without the hub's own account (a partial or wrong answer) retires nobody.
pub fn left_the_organization(
    members: &[Member],
    accounts: &[OrgAccount],
    home: &Member,
    organization: &str,
) -> Result<Vec<(Member, String)>, UntrustedAccountList> {
    let by_id: BTreeMap<&str, &str> = accounts.iter().map(|a| (a.id.as_str(), a.status.as_str())).collect();
    if !by_id.contains_key(home.account_id.as_str()) {
        return Err(UntrustedAccountList(home.account_id.clone()));
    }
    let org =
        if organization.is_empty() { "the organization".to_owned() } else { format!("organization {organization}") };
    Ok(members
        .iter()
        .filter(|m| *m != home)
        .filter_map(|m| match by_id.get(m.account_id.as_str()).copied() {
            None => Some((m.clone(), format!("account {} is no longer in {org}", m.account_id))),
            Some(status @ ("SUSPENDED" | "PENDING_CLOSURE" | "CLOSED")) => {
                Some((m.clone(), format!("account {} is {status} in {org}", m.account_id)))
            }
            Some(_) => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::DayOfMonth;
    use crate::vocabulary::DayOfWeek;

    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;

    fn ms(y: i32, m: u32, d: u32, h: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().timestamp_millis()
    }

    fn audit(name: &str, s: Schedule) -> AuditSchedule {
        AuditSchedule { audit: name.into(), schedule: s }
    }

    #[test]
    fn a_weekly_audit_is_not_silent_on_its_third_day_but_is_after_its_missed_day() {
        // Monday 2026-12-07 03:00 run; next due Monday 2026-12-14.
        let last = ms(2026, 12, 7, 3);
        let weekly = [audit("weekly", Schedule::Weekly(DayOfWeek::Mon))];
        let runs = BTreeMap::from([("weekly".to_owned(), last)]);
        let at = |now: i64| missed_audits(Some(&weekly), &runs, Some(last), None, now, 12 * H);
        assert!(at(last + 3 * D).is_empty(), "48 hours of quiet is normal for a weekly audit");
        assert!(at(ms(2026, 12, 15, 11)).is_empty(), "the due day ended, the grace has not");
        let missed = at(ms(2026, 12, 15, 13));
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].due, NaiveDate::from_ymd_opt(2026, 12, 14));
        let text = missed[0].to_string();
        assert!(text.starts_with("WEEKLY MON audit weekly was due 2026-12-14, last run 2026-12-07"), "{text}");
    }

    #[test]
    fn a_daily_audit_is_silent_a_day_and_grace_after_its_due_day() {
        let last = ms(2026, 12, 7, 23);
        let daily = [audit("daily", Schedule::Daily)];
        let runs = BTreeMap::from([("daily".to_owned(), last)]);
        assert!(
            missed_audits(Some(&daily), &runs, Some(last), None, ms(2026, 12, 9, 0) + 24 * H - 1, 24 * H).is_empty()
        );
        assert_eq!(missed_audits(Some(&daily), &runs, Some(last), None, ms(2026, 12, 10, 1), 24 * H).len(), 1);
    }

    #[test]
    fn each_audit_of_a_member_is_judged_by_its_own_schedule() {
        let now = ms(2026, 12, 20, 12);
        let list = [
            audit("daily", Schedule::Daily),
            audit("monthly", Schedule::Monthly(DayOfMonth::Last)),
            audit("never-ran", Schedule::Biweekly(DayOfWeek::Fri)),
        ];
        let runs =
            BTreeMap::from([("daily".to_owned(), ms(2026, 12, 17, 2)), ("monthly".to_owned(), ms(2026, 11, 30, 2))]);
        // Joined on 2026-12-01 (a Tuesday): the biweekly Friday audit's first run may be 12-04
        // or 12-11, so it is due 12-11, and missed by the 20th.
        let missed =
            missed_audits(Some(&list), &runs, Some(ms(2026, 12, 17, 2)), Some(ms(2026, 12, 1, 9)), now, 24 * H);
        let names: Vec<&str> = missed.iter().filter_map(|m| m.audit.as_ref()).map(|a| a.audit.as_str()).collect();
        assert_eq!(names, vec!["daily", "never-ran"], "the monthly audit is due on the 31st");
        assert_eq!(missed[1].due, NaiveDate::from_ymd_opt(2026, 12, 11));
    }

    #[test]
    fn an_unknown_schedule_is_judged_daily_and_a_member_never_seen_is_missed_at_once() {
        let now = ms(2026, 12, 20, 12);
        let none = BTreeMap::new();
        assert!(missed_audits(None, &none, Some(ms(2026, 12, 19, 5)), None, now, 24 * H).is_empty());
        let m = missed_audits(None, &none, Some(ms(2026, 12, 17, 5)), None, now, 24 * H);
        assert!(m[0].to_string().starts_with("schedule not known (judged as daily) was due 2026-12-18"), "{}", m[0]);
        let never = missed_audits(Some(&[]), &none, None, None, now, 24 * H);
        assert_eq!(never[0].to_string(), "schedule not known (judged as daily) never reported");
        // Joined yesterday, no audit yet: its first daily run is due today.
        assert!(missed_audits(None, &none, None, Some(now - D), now, 24 * H).is_empty());
    }

    #[test]
    fn states_rank_retired_then_unreadable_then_silent() {
        assert_eq!(MemberState::of(true, true, true, true), MemberState::Retired);
        assert_eq!(MemberState::of(false, true, true, true), MemberState::Unreadable);
        assert_eq!(MemberState::of(false, false, true, false), MemberState::Silent);
        assert_eq!(MemberState::of(false, false, false, true), MemberState::Reporting);
        assert_eq!(MemberState::of(false, false, false, false), MemberState::Joined);
        assert_eq!(serde_json::to_string(&MemberState::Retired).unwrap(), "\"retired\"");
    }

    #[test]
    fn members_whose_account_left_or_closed_are_retired_and_a_list_without_the_hub_retires_nobody() {
        let home = Member::new("123456789012", "us-east-1").unwrap();
        let stays = Member::new("111122223333", "eu-west-1").unwrap();
        let left = Member::new("444455556666", "eu-west-1").unwrap();
        let closed = Member::new("555566667777", "us-east-1").unwrap();
        let acct = |id: &str, status: &str| OrgAccount { id: id.into(), status: status.into() };
        let accounts =
            [acct("123456789012", "ACTIVE"), acct("111122223333", "ACTIVE"), acct("555566667777", "SUSPENDED")];
        let members = [home.clone(), stays, left.clone(), closed.clone()];
        let out = left_the_organization(&members, &accounts, &home, "o-abc123def4").unwrap();
        assert_eq!(
            out,
            vec![
                (left, "account 444455556666 is no longer in organization o-abc123def4".into()),
                (closed, "account 555566667777 is SUSPENDED in organization o-abc123def4".into()),
            ]
        );
        let partial = [acct("111122223333", "ACTIVE")];
        assert!(left_the_organization(&members, &partial, &home, "").is_err());
    }
}
