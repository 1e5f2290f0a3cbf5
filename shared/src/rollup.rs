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
//! - a member is silent when no audit that started within the window was notified (expected
//!   members that never sent one included): a broken notification path shows up here.

use crate::digest::fmt_time;
use crate::member::Member;
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
    pub problem: Option<String>,
    pub problem_at: Option<i64>,
    pub streams: Vec<StreamRuns>,
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
    pub silent: bool,
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
    /// Silence window (ms).
    pub silent_after: i64,
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
/// whose latest notified audit started more than `silent_after` ms ago is silent.
pub fn build(members: &[MemberInput], expected: &[Member], now: i64, since: i64, silent_after: i64) -> Rollup {
    let mut inputs: BTreeMap<Member, MemberInput> = members.iter().map(|m| (m.member.clone(), m.clone())).collect();
    for e in expected {
        inputs.entry(e.clone()).or_insert_with(|| MemberInput {
            member: e.clone(),
            name: None,
            last_audit: None,
            problem: None,
            problem_at: None,
            streams: Vec::new(),
        });
    }
    let mut lines = Vec::new();
    for m in inputs.values() {
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
            silent: m.last_audit.is_none_or(|t| now - t > silent_after),
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
    Rollup { at: now, since, members: lines, open, new, resolved, overdue, worst, silent_after }
}

impl Rollup {
    /// Members that sent no notification within the window.
    pub fn silent(&self) -> impl Iterator<Item = &MemberLine> {
        self.members.iter().filter(|m| m.silent)
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
                "\nSilent ({}: no audit started in the last {} h was notified; check the member's notification topic and audit schedule):",
                silent.len(),
                self.silent_after / 3_600_000
            );
            for m in silent {
                let last = m.last_audit.map_or_else(|| "never".to_owned(), |t| format!("last audit {}", fmt_time(t)));
                match &m.setup {
                    Some(setup) => {
                        let _ = writeln!(out, "  {}: {last}; {setup}", m.label());
                    }
                    None => {
                        let _ = writeln!(out, "  {}: {last}", m.label());
                    }
                }
            }
        }
        let problems: Vec<&MemberLine> = self.with_problems().collect();
        if !problems.is_empty() {
            let _ = writeln!(out, "\nCannot be read ({}):", problems.len());
            for m in problems {
                let _ = writeln!(out, "  {}: {}", m.label(), m.problem.as_deref().unwrap_or_default());
            }
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
            "\nBy account and region (open CRITICAL/HIGH/MEDIUM/LOW · new · resolved · overdue · last audit):"
        );
        for m in &self.members {
            let open =
                sev.iter().map(|s| m.open.get(*s).copied().unwrap_or(0).to_string()).collect::<Vec<_>>().join("/");
            let _ = writeln!(
                out,
                "  {}: {open} · {} · {} · {} · {}",
                m.label(),
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
        MemberInput {
            member: Member::new(account, region).unwrap(),
            name: None,
            last_audit: last,
            problem: None,
            problem_at: None,
            streams,
        }
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
        let r = build(&[a, b], &[], now, now - 24 * H, 48 * H);
        assert_eq!(r.open, counts(&[("CRITICAL", 13), ("HIGH", 4), ("LOW", 5)]), "latest run per stream, summed");
        assert_eq!(r.new, counts(&[("CRITICAL", 1), ("HIGH", 4)]), "only runs started since the last roll-up");
        assert_eq!(r.resolved, counts(&[("LOW", 2)]));
        assert_eq!(r.overdue, counts(&[("CRITICAL", 6)]));
        assert_eq!(r.members[0].open, counts(&[("CRITICAL", 3), ("HIGH", 4), ("LOW", 5)]));
        assert_eq!(r.worst[0].account_id, "222222222222", "most open CRITICAL first");
        assert!(r.silent().next().is_none());
        let text = r.render_text();
        assert!(text.contains("222222222222 eu-west-1: 10/0/0/0 · 0 · 0 · 6"), "{text}");
    }

    #[test]
    fn silent_expected_and_unreadable_members_are_named() {
        let now = 100 * H;
        let quiet = member("111111111111", "us-east-1", Some(now - 49 * H), vec![]);
        let mut broken = member("333333333333", "us-east-1", Some(now - H), vec![]);
        broken.problem = Some("cannot assume arn:aws:iam::333333333333:role/x: AccessDenied".into());
        let never = Member::new("444444444444", "ap-south-1").unwrap();
        let r = build(&[quiet, broken], std::slice::from_ref(&never), now, now - 24 * H, 48 * H);
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
        assert!(text.contains("444444444444 ap-south-1: never"), "{text}");
        assert!(text.contains("AccessDenied"), "{text}");
    }
}
