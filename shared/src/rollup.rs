//! The organization roll-up: every member account-region on one page, on a schedule. Open
//! findings by severity per member, the worst accounts, what is new and resolved since the
//! last roll-up, overdue counts, members that have gone silent (their notification path may be
//! broken) and members whose findings cannot be read.
//!
//! Our rules ([E], see docs/reference/organization.md):
//! - a member's open findings are the sum over its audit streams of each stream's latest
//!   COMPLETED run
//!   (audits whose checks overlap count a finding once per audit, as their digests do);
//! - new and resolved are the sums over the runs that started after the last roll-up;
//! - overdue is the latest run's, per stream, summed;
//! - a member is silent when one of its scheduled audits did not reach the hub by the end of
//!   the day its own schedule made it due, plus a grace ([`crate::membership::missed_audits`];
//!   expected members that never sent one included): a broken notification path shows up here;
//! - a retired member is listed once, in the roll-up after its retirement, and counted nowhere;
//!   members that joined since the last roll-up are listed.

use crate::digest::fmt_time;
use crate::member::Member;
use crate::membership::{missed_audits, AuditSchedule, MemberState, Retirement};
use crate::vocabulary::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Per-severity counts.
pub type Counts = BTreeMap<String, u64>;

/// One run of one stream, as the roll-up reads it (run record and digest item).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunDigest {
    pub task_id: String,
    pub task_start_time: i64,
    pub task_status: String,
    /// Open (not muted) findings per severity.
    pub open: Counts,
    /// From its digest, when one was recorded: new, resolved, overdue per severity.
    pub new: Counts,
    pub resolved: Counts,
    pub overdue: Counts,
}

/// One stream of a member: its runs, newest first (the latest, and every one since the last
/// roll-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRuns {
    pub stream: String,
    pub runs: Vec<RunDigest>,
}

/// What the roll-up knows of one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInput {
    pub member: Member,
    /// Its name, when configured.
    pub name: Option<String>,
    /// Start of the latest audit it notified (epoch ms).
    pub last_audit: Option<i64>,
    /// When it joined (epoch ms).
    pub joined_at: Option<i64>,
    /// Its scheduled audits, when the hub has read them.
    pub schedules: Option<Vec<AuditSchedule>>,
    pub retired: Option<Retirement>,
    pub problem: Option<String>,
    pub problem_at: Option<i64>,
    pub streams: Vec<StreamRuns>,
}

impl MemberInput {
    /// A member the hub knows nothing of yet (an expected one).
    pub fn unknown(member: Member) -> MemberInput {
        MemberInput {
            member,
            name: None,
            last_audit: None,
            joined_at: None,
            schedules: None,
            retired: None,
            problem: None,
            problem_at: None,
            streams: Vec::new(),
        }
    }
}

/// One member's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberLine {
    pub account_id: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub open: Counts,
    pub new: Counts,
    pub resolved: Counts,
    pub overdue: Counts,
    /// Start of its latest audit run (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<i64>,
    /// Start of the latest audit it notified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_audit: Option<i64>,
    /// When it joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at: Option<i64>,
    /// Where it is in its life.
    pub state: MemberState,
    pub silent: bool,
    /// For a silent member: its audits that did not arrive in time, each said in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// For a silent member: what its audit configuration says (why nothing reaches the hub),
    /// or that it looks right (then the path after it is broken: its topic's subscription).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
}

impl MemberLine {
    /// `name (account) region`, or `account region`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({}) {}", self.account_id, self.region),
            None => format!("{} {}", self.account_id, self.region),
        }
    }
}

/// A member retired since the last roll-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetiredLine {
    pub account_id: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When it was retired (epoch ms).
    pub at: i64,
    pub reason: String,
}

/// One account's totals over its regions, for the worst-accounts list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountLine {
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub open: Counts,
    pub overdue: Counts,
    pub regions: usize,
}

/// The roll-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollup {
    /// When it was made (epoch ms).
    pub at: i64,
    /// Runs that started after this count as new/resolved (the last roll-up, or a day back).
    pub since: i64,
    pub members: Vec<MemberLine>,
    /// Sums over the members.
    pub open: Counts,
    pub new: Counts,
    pub resolved: Counts,
    pub overdue: Counts,
    /// At most [`MAX_WORST`] accounts, worst first.
    pub worst: Vec<AccountLine>,
    /// Members retired and not listed by a roll-up before (listed here, counted nowhere).
    pub retired: Vec<RetiredLine>,
    /// Grace after a member's audit was due before it is silent (ms).
    pub grace: i64,
    /// What kept the roll-up from retiring members that left the organization, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_note: Option<String>,
}

/// Accounts the worst list names.
pub const MAX_WORST: usize = 10;

fn add(into: &mut Counts, from: &Counts) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn of(c: &Counts, s: &Severity) -> u64 {
    c.get(s.as_str()).copied().unwrap_or(0)
}

/// Ranks accounts: most open CRITICAL, then overdue, then HIGH, MEDIUM, LOW.
fn badness(a: &AccountLine) -> impl Ord {
    let total_overdue: u64 = a.overdue.values().sum();
    (
        of(&a.open, &Severity::Critical),
        total_overdue,
        of(&a.open, &Severity::High),
        of(&a.open, &Severity::Medium),
        of(&a.open, &Severity::Low),
    )
}

/// Builds the roll-up of `members` (recorded ones) and `expected` (configured ones, which may
/// never have sent anything) at `now`; new/resolved count runs started after `since`; a member
/// whose scheduled audit did not arrive by the end of its due day plus `grace` ms is silent.
pub fn build(members: &[MemberInput], expected: &[Member], now: i64, since: i64, grace: i64) -> Rollup {
    let mut inputs: BTreeMap<Member, MemberInput> = members.iter().map(|m| (m.member.clone(), m.clone())).collect();
    for e in expected {
        inputs.entry(e.clone()).or_insert_with(|| MemberInput::unknown(e.clone()));
    }
    let mut lines = Vec::new();
    let mut retired = Vec::new();
    for m in inputs.values() {
        if let Some(r) = &m.retired {
            if !r.reported {
                retired.push(RetiredLine {
                    account_id: m.member.account_id.clone(),
                    region: m.member.region.clone(),
                    name: m.name.clone(),
                    at: r.at,
                    reason: r.reason.clone(),
                });
            }
            continue;
        }
        let last_runs: BTreeMap<String, i64> = m
            .streams
            .iter()
            .filter_map(|s| Some((s.stream.clone(), s.runs.iter().map(|r| r.task_start_time).max()?)))
            .collect();
        let missed = missed_audits(m.schedules.as_deref(), &last_runs, m.last_audit, m.joined_at, now, grace);
        // An unreadable member is named for that (its problem says more than its silence).
        let silent = !missed.is_empty() && m.problem.is_none();
        let mut line = MemberLine {
            account_id: m.member.account_id.clone(),
            region: m.member.region.clone(),
            name: m.name.clone(),
            open: Counts::new(),
            new: Counts::new(),
            resolved: Counts::new(),
            overdue: Counts::new(),
            last_run: None,
            last_audit: m.last_audit,
            joined_at: m.joined_at,
            state: MemberState::of(false, m.problem.is_some(), silent, m.last_audit.is_some()),
            silent,
            missed: if silent { missed.iter().map(ToString::to_string).collect() } else { Vec::new() },
            problem: m.problem.clone(),
            setup: None,
        };
        for s in &m.streams {
            // Open findings are a COMPLETED run's: a FAILED or CANCELED one counted none.
            let completed = s.runs.iter().filter(|r| r.task_status == "COMPLETED");
            if let Some(latest) = completed.max_by_key(|r| (r.task_start_time, r.task_id.clone())) {
                add(&mut line.open, &latest.open);
                add(&mut line.overdue, &latest.overdue);
                line.last_run = line.last_run.max(Some(latest.task_start_time));
            }
            for r in s.runs.iter().filter(|r| r.task_start_time > since) {
                add(&mut line.new, &r.new);
                add(&mut line.resolved, &r.resolved);
            }
        }
        lines.push(line);
    }
    let (mut open, mut new, mut resolved, mut overdue) = (Counts::new(), Counts::new(), Counts::new(), Counts::new());
    let mut accounts: BTreeMap<String, AccountLine> = BTreeMap::new();
    for l in &lines {
        add(&mut open, &l.open);
        add(&mut new, &l.new);
        add(&mut resolved, &l.resolved);
        add(&mut overdue, &l.overdue);
        let a = accounts.entry(l.account_id.clone()).or_insert_with(|| AccountLine {
            account_id: l.account_id.clone(),
            name: l.name.clone(),
            open: Counts::new(),
            overdue: Counts::new(),
            regions: 0,
        });
        add(&mut a.open, &l.open);
        add(&mut a.overdue, &l.overdue);
        a.regions += 1;
    }
    let mut worst: Vec<AccountLine> =
        accounts.into_values().filter(|a| a.open.values().sum::<u64>() + a.overdue.values().sum::<u64>() > 0).collect();
    worst.sort_by(|a, b| badness(b).cmp(&badness(a)).then_with(|| a.account_id.cmp(&b.account_id)));
    worst.truncate(MAX_WORST);
    Rollup {
        at: now,
        since,
        members: lines,
        open,
        new,
        resolved,
        overdue,
        worst,
        retired,
        grace,
        organization_note: None,
    }
}

impl Rollup {
    /// Members that sent no notification within the window.
    pub fn silent(&self) -> impl Iterator<Item = &MemberLine> {
        self.members.iter().filter(|m| m.silent)
    }

    /// Members that joined since the last roll-up.
    pub fn joined(&self) -> impl Iterator<Item = &MemberLine> {
        self.members.iter().filter(|m| m.joined_at.is_some_and(|t| t > self.since))
    }

    /// Members whose findings could not be read.
    pub fn with_problems(&self) -> impl Iterator<Item = &MemberLine> {
        self.members.iter().filter(|m| m.problem.is_some())
    }

    /// The subject, at most 100 characters: open CRITICAL, overdue, silent and unreadable members first.
    pub fn subject(&self) -> String {
        let mut s = format!(
            "Organization roll-up: {} account-regions, {} CRITICAL open",
            self.members.len(),
            of(&self.open, &Severity::Critical)
        );
        let overdue: u64 = self.overdue.values().sum();
        if overdue > 0 {
            let _ = write!(s, ", {overdue} overdue");
        }
        let silent = self.silent().count();
        if silent > 0 {
            let _ = write!(s, ", {silent} silent");
        }
        let problems = self.with_problems().count();
        if problems > 0 {
            let _ = write!(s, ", {problems} unreadable");
        }
        if !self.retired.is_empty() {
            let _ = write!(s, ", {} retired", self.retired.len());
        }
        if s.chars().count() > 100 {
            s = s.chars().take(99).collect::<String>() + "…";
        }
        s
    }

    /// The plain-text body.
    pub fn render_text(&self) -> String {
        let sev = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];
        let row =
            |c: &Counts| sev.iter().map(|s| format!("{:>9}", c.get(*s).copied().unwrap_or(0))).collect::<String>();
        let mut out = String::new();
        let _ = writeln!(out, "Device Defender organization roll-up, {}", fmt_time(self.at));
        let _ = writeln!(out, "New and resolved: audits started since {}.", fmt_time(self.since));
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<12}{}", "", sev.iter().map(|s| format!("{s:>9}")).collect::<String>());
        let _ = writeln!(out, "{:<12}{}", "open", row(&self.open));
        let _ = writeln!(out, "{:<12}{}", "new", row(&self.new));
        let _ = writeln!(out, "{:<12}{}", "resolved", row(&self.resolved));
        let _ = writeln!(out, "{:<12}{}", "overdue", row(&self.overdue));
        let silent: Vec<&MemberLine> = self.silent().collect();
        if !silent.is_empty() {
            let _ = writeln!(
                out,
                "\nSilent ({}: a scheduled audit did not reach the hub by the end of the day it was due + {} h; check the member's notification topic and audit schedule):",
                silent.len(),
                self.grace / 3_600_000
            );
            for m in silent {
                let mut why = m.missed.join("; ");
                if let Some(setup) = &m.setup {
                    let _ = write!(why, "; {setup}");
                }
                let _ = writeln!(out, "  {}: {why}", m.label());
            }
        }
        let problems: Vec<&MemberLine> = self.with_problems().collect();
        if !problems.is_empty() {
            let _ = writeln!(out, "\nCannot be read ({}):", problems.len());
            for m in problems {
                let _ = writeln!(out, "  {}: {}", m.label(), m.problem.as_deref().unwrap_or_default());
            }
        }
        let joined: Vec<&MemberLine> = self.joined().collect();
        if !joined.is_empty() {
            let _ = writeln!(out, "\nJoined since the last roll-up ({}):", joined.len());
            for m in joined {
                let _ = writeln!(out, "  {}: joined {}", m.label(), m.joined_at.map(fmt_time).unwrap_or_default());
            }
        }
        if !self.retired.is_empty() {
            let _ = writeln!(out, "\nRetired since the last roll-up ({}; not listed again):", self.retired.len());
            for r in &self.retired {
                let label = match &r.name {
                    Some(n) => format!("{n} ({}) {}", r.account_id, r.region),
                    None => format!("{} {}", r.account_id, r.region),
                };
                let _ = writeln!(out, "  {label}: retired {}: {}", fmt_time(r.at), r.reason);
            }
        }
        if let Some(note) = &self.organization_note {
            let _ = writeln!(out, "\n{note}");
        }
        if !self.worst.is_empty() {
            let _ = writeln!(out, "\nWorst accounts:");
            for (i, a) in self.worst.iter().enumerate() {
                let name = a.name.as_ref().map_or_else(|| a.account_id.clone(), |n| format!("{n} ({})", a.account_id));
                let _ = writeln!(
                    out,
                    "  {}. {name}: {} CRITICAL, {} HIGH open, {} overdue ({} region{})",
                    i + 1,
                    of(&a.open, &Severity::Critical),
                    of(&a.open, &Severity::High),
                    a.overdue.values().sum::<u64>(),
                    a.regions,
                    if a.regions == 1 { "" } else { "s" }
                );
            }
        }
        let _ = writeln!(
            out,
            "\nBy account and region (state · open CRITICAL/HIGH/MEDIUM/LOW · new · resolved · overdue · last audit):"
        );
        for m in &self.members {
            let open =
                sev.iter().map(|s| m.open.get(*s).copied().unwrap_or(0).to_string()).collect::<Vec<_>>().join("/");
            let _ = writeln!(
                out,
                "  {}: {} · {open} · {} · {} · {} · {}",
                m.label(),
                m.state,
                m.new.values().sum::<u64>(),
                m.resolved.values().sum::<u64>(),
                m.overdue.values().sum::<u64>(),
                m.last_run.map_or_else(|| "none".to_owned(), fmt_time)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn counts(pairs: &[(&str, u64)]) -> Counts {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn run(id: &str, start: i64, open: &[(&str, u64)], new: &[(&str, u64)], resolved: &[(&str, u64)]) -> RunDigest {
        RunDigest {
            task_id: id.into(),
            task_start_time: start,
            task_status: "COMPLETED".into(),
            open: counts(open),
            new: counts(new),
            resolved: counts(resolved),
            overdue: Counts::new(),
        }
    }

    fn member(account: &str, region: &str, last: Option<i64>, streams: Vec<StreamRuns>) -> MemberInput {
        MemberInput { last_audit: last, streams, ..MemberInput::unknown(Member::new(account, region).unwrap()) }
    }

    #[test]
    fn totals_are_the_sums_of_the_members_latest_runs_and_of_the_runs_since() {
        let now = 100 * H;
        let a = member(
            "111111111111",
            "us-east-1",
            Some(now - H),
            vec![
                StreamRuns {
                    stream: "daily".into(),
                    runs: vec![
                        RunDigest { task_status: "FAILED".into(), ..run("t3", now - H, &[], &[], &[]) },
                        run("t2", now - 2 * H, &[("CRITICAL", 3), ("LOW", 5)], &[("CRITICAL", 1)], &[("LOW", 2)]),
                        run("t1", now - 26 * H, &[("CRITICAL", 2), ("LOW", 7)], &[("CRITICAL", 9)], &[]),
                        RunDigest { task_status: "FAILED".into(), ..run("t0", now - H, &[], &[], &[]) },
                    ],
                },
                StreamRuns {
                    stream: "~on-demand".into(),
                    runs: vec![run("t9", now - 3 * H, &[("HIGH", 4)], &[("HIGH", 4)], &[])],
                },
            ],
        );
        let mut b = member(
            "222222222222",
            "eu-west-1",
            Some(now - 5 * H),
            vec![StreamRuns {
                stream: "daily".into(),
                runs: vec![run("t2", now - 4 * H, &[("CRITICAL", 10)], &[], &[])],
            }],
        );
        b.streams[0].runs[0].overdue = counts(&[("CRITICAL", 6)]);
        let r = build(&[a, b], &[], now, now - 24 * H, 24 * H);
        assert_eq!(r.open, counts(&[("CRITICAL", 13), ("HIGH", 4), ("LOW", 5)]), "latest run per stream, summed");
        assert_eq!(r.new, counts(&[("CRITICAL", 1), ("HIGH", 4)]), "only runs started since the last roll-up");
        assert_eq!(r.resolved, counts(&[("LOW", 2)]));
        assert_eq!(r.overdue, counts(&[("CRITICAL", 6)]));
        assert_eq!(r.members[0].open, counts(&[("CRITICAL", 3), ("HIGH", 4), ("LOW", 5)]));
        assert_eq!(r.worst[0].account_id, "222222222222", "most open CRITICAL first");
        assert!(r.silent().next().is_none());
        let text = r.render_text();
        assert!(text.contains("222222222222 eu-west-1: reporting · 10/0/0/0 · 0 · 0 · 6"), "{text}");
    }

    #[test]
    fn silent_expected_and_unreadable_members_are_named() {
        let now = 100 * H;
        // Its last audit on day 0, schedule unknown (judged daily): due day 1, + 24 h grace.
        let quiet = member("111111111111", "us-east-1", Some(20 * H), vec![]);
        // Long quiet too, but unreadable: named for that, not also as silent.
        let mut broken = member("333333333333", "us-east-1", Some(20 * H), vec![]);
        broken.problem = Some("cannot assume arn:aws:iam::333333333333:role/x: AccessDenied".into());
        let never = Member::new("444444444444", "ap-south-1").unwrap();
        let r = build(&[quiet, broken], std::slice::from_ref(&never), now, now - 24 * H, 24 * H);
        let silent: Vec<String> = r.silent().map(|m| m.label()).collect();
        assert_eq!(silent, vec!["111111111111 us-east-1", "444444444444 ap-south-1"]);
        assert_eq!(r.with_problems().count(), 1);
        let subject = r.subject();
        assert!(
            subject.contains("3 account-regions") && subject.contains("2 silent") && subject.contains("1 unreadable"),
            "{subject}"
        );
        assert!(subject.chars().count() <= 100);
        let text = r.render_text();
        assert!(
            text.contains("444444444444 ap-south-1: schedule not known (judged as daily) never reported"),
            "{text}"
        );
        assert!(
            text.contains("111111111111 us-east-1: schedule not known (judged as daily) was due 1970-01-02"),
            "{text}"
        );
        assert!(text.contains("AccessDenied"), "{text}");
    }

    #[test]
    fn a_weekly_member_is_not_silent_between_its_audits() {
        use crate::schedule::Schedule;
        use crate::vocabulary::DayOfWeek;
        // 1970-01-05 was a Monday: a weekly Monday audit ran then (day 4, 96 h).
        let ran = 96 * H + 3 * H;
        let mut weekly = member(
            "111111111111",
            "us-east-1",
            Some(ran),
            vec![StreamRuns { stream: "weekly".into(), runs: vec![run("t1", ran, &[("LOW", 1)], &[], &[])] }],
        );
        weekly.schedules =
            Some(vec![AuditSchedule { audit: "weekly".into(), schedule: Schedule::Weekly(DayOfWeek::Mon) }]);
        let quiet_days = build(std::slice::from_ref(&weekly), &[], ran + 5 * 24 * H, 0, 24 * H);
        assert_eq!(quiet_days.silent().count(), 0, "five days after a weekly audit");
        assert_eq!(quiet_days.members[0].state, MemberState::Reporting);
        let missed = build(&[weekly], &[], ran + 9 * 24 * H, 0, 24 * H);
        assert_eq!(missed.members[0].state, MemberState::Silent);
        assert!(
            missed.render_text().contains("WEEKLY MON audit weekly was due 1970-01-12"),
            "{}",
            missed.render_text()
        );
    }

    #[test]
    fn a_retired_member_is_listed_once_and_counted_nowhere_and_a_new_one_is_named() {
        let now = 100 * H;
        let runs =
            vec![StreamRuns { stream: "daily".into(), runs: vec![run("t1", now - H, &[("CRITICAL", 5)], &[], &[])] }];
        let mut gone = member("111111111111", "us-east-1", Some(now - H), runs.clone());
        gone.retired = Some(Retirement {
            at: now - 2 * H,
            reason: "account 111111111111 is no longer in organization o-x".into(),
            reported: false,
        });
        let mut new = member("222222222222", "eu-west-1", Some(now - H), runs);
        new.joined_at = Some(now - 3 * H);
        let r = build(&[gone.clone(), new], &[gone.member.clone()], now, now - 24 * H, 24 * H);
        assert_eq!(r.members.len(), 1, "the retired member has no line, even when expected");
        assert_eq!(r.open, counts(&[("CRITICAL", 5)]), "and no count");
        assert_eq!(r.retired.len(), 1);
        let text = r.render_text();
        assert!(
            text.contains("Retired since the last roll-up (1; not listed again):\n  111111111111 us-east-1: retired"),
            "{text}"
        );
        assert!(text.contains("Joined since the last roll-up (1):\n  222222222222 eu-west-1: joined"), "{text}");
        assert!(r.subject().contains("1 retired"), "{}", r.subject());
        gone.retired.as_mut().unwrap().reported = true;
        let later = build(&[gone], &[], now + 24 * H, now, 24 * H);
        assert!(later.members.is_empty() && later.retired.is_empty(), "listed once, then not at all");
    }
}
