//! The findings digest sent after an audit: what is new, what got fixed, what persists, by
//! severity and check, with failed checks and what to do about them. Pure: built from the
//! stored summaries and the new/resolved sets, rendered to a mail subject (≤ 100 characters)
//! and a plain-text body (≤ the SNS limit, truncated with a note, never failing).

use crate::checks::{catalog, failure_remedy};
use crate::digest_lifecycle::{self, LifecycleSection};
use crate::finding::resource_label;
use crate::ports::SuppressionInfo;
use crate::summary::TaskSummary;
use crate::vocabulary::{CheckRunStatus, Severity, TaskStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Largest subject SNS accepts for e-mail.
pub const MAX_SUBJECT_CHARS: usize = 100;
/// Body budget: SNS allows 256 KiB for message and attributes together.
pub const MAX_BODY_BYTES: usize = 250 * 1024;
/// New and resolved findings kept in the stored digest (the counts are always exact).
pub const MAX_LISTED: usize = 500;

/// A finding as a digest lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestFinding {
    pub severity: Severity,
    pub check_name: String,
    pub resource_type: String,
    pub resource_key: String,
}

/// The new and resolved findings of a run: exact counts per severity, and a bounded list of
/// the most severe ones (so a first run of 10^6 findings costs [`MAX_LISTED`] entries).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub new: Vec<DigestFinding>,
    pub resolved: Vec<DigestFinding>,
    pub new_by_severity: BTreeMap<Severity, u64>,
    pub resolved_by_severity: BTreeMap<Severity, u64>,
    pub persisting: u64,
    /// Muted findings of this run (suppressed in Device Defender), per severity: left out of
    /// new, resolved, persisting and open.
    pub muted_by_severity: BTreeMap<Severity, u64>,
    /// Findings muted in the previous run and open again now (their suppression expired or was
    /// removed): reported apart, never as new.
    pub unmuted: Vec<DigestFinding>,
    pub unmuted_count: u64,
}

impl Changes {
    /// Counts a new finding and keeps it if it is among the most severe [`MAX_LISTED`].
    pub fn add_new(&mut self, f: DigestFinding) {
        *self.new_by_severity.entry(f.severity.clone()).or_insert(0) += 1;
        keep_most_severe(&mut self.new, f);
    }

    /// Counts a resolved finding and keeps it if it is among the most severe [`MAX_LISTED`].
    pub fn add_resolved(&mut self, f: DigestFinding) {
        *self.resolved_by_severity.entry(f.severity.clone()).or_insert(0) += 1;
        keep_most_severe(&mut self.resolved, f);
    }

    /// Counts a muted finding.
    pub fn add_muted(&mut self, severity: Severity) {
        *self.muted_by_severity.entry(severity).or_insert(0) += 1;
    }

    /// Counts a finding open again after being muted, and keeps it if among the most severe.
    pub fn add_unmuted(&mut self, f: DigestFinding) {
        self.unmuted_count += 1;
        keep_most_severe(&mut self.unmuted, f);
    }

    fn total(m: &BTreeMap<Severity, u64>) -> u64 {
        m.values().sum()
    }
}

/// Keeps `list` at most [`MAX_LISTED`] long, holding the smallest (most severe) entries.
fn keep_most_severe(list: &mut Vec<DigestFinding>, f: DigestFinding) {
    if list.len() < MAX_LISTED {
        list.push(f);
        if list.len() == MAX_LISTED {
            list.sort();
        }
        return;
    }
    if let Some(last) = list.last() {
        if f < *last {
            let at = list.partition_point(|x| *x < f);
            list.insert(at, f);
            list.pop();
        }
    }
}

/// One severity's line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeverityLine {
    pub severity: String,
    pub open: i64,
    pub new: i64,
    pub resolved: i64,
}

/// One check's line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckLine {
    pub check_name: String,
    pub status: String,
    pub severity: String,
    /// Non-compliant resources, muted ones excluded.
    pub non_compliant: i64,
    /// Muted (suppressed) non-compliant resources.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub muted: i64,
    pub total: i64,
    /// Change of `non_compliant` since the previous run, when there is one that ran this check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// The digest of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub task_id: String,
    pub audit: String,
    pub task_type: String,
    pub task_status: String,
    pub task_start_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_task_id: Option<String>,
    pub subject: String,
    pub severities: Vec<SeverityLine>,
    pub checks: Vec<CheckLine>,
    pub new_count: u64,
    pub resolved_count: u64,
    pub persisting_count: u64,
    /// The first [`MAX_LISTED`] new findings, most severe first.
    pub new: Vec<DigestFinding>,
    /// The first [`MAX_LISTED`] resolved findings, most severe first.
    pub resolved: Vec<DigestFinding>,
    pub console_url: String,
    /// Muted findings per severity (suppressed in Device Defender): in no other count.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub muted: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub muted_count: u64,
    /// Findings open again after being muted in the previous run.
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub unmuted_count: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmuted: Vec<DigestFinding>,
    /// The account's suppressions when the digest was built (see [`add_suppressions`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressions: Option<SuppressionSummary>,
    /// What became of the chat digest, when a chat topic is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<ChatDelivery>,
    /// Ages, overdue, came back, time to fix and trend, when the run advanced its stream's
    /// finding lifecycle (see [`crate::lifecycle`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleSection>,
    /// Why the run was not compared with the stream's history, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_compared: Option<String>,
    /// Checks the run completed but did not apply to the history, each with the run (started
    /// no earlier) that applied it first: their findings are in no episode and no count here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_applied: BTreeMap<String, crate::stream_head::AppliedRun>,
    /// Checks whose findings could not be read, each with why: in no count but the check
    /// table's (Device Defender's own numbers there).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unread: BTreeMap<String, String>,
    /// The member account-region the audit ran in (`<account>:<region>`, with its name when
    /// known), when it is not the hub's own: a hub's digests say whose they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u(n: &u64) -> bool {
    *n == 0
}

/// Suppressions expiring within this many days are listed so someone renews or fixes them.
pub const EXPIRING_WITHIN_DAYS: i64 = 7;
/// Expiring suppressions listed at most.
pub const MAX_EXPIRING_LISTED: usize = 50;

/// The account's suppressions, as far as a digest reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuppressionSummary {
    /// Suppressions in the account (expired ones still listed by AWS included).
    pub total: u64,
    /// Those expiring within [`EXPIRING_WITHIN_DAYS`], soonest first.
    pub expiring: Vec<ExpiringSuppression>,
    /// Why the suppressions could not be listed, when they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A suppression about to expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiringSuppression {
    pub check_name: String,
    pub resource_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Epoch milliseconds.
    pub expires_at: i64,
}

/// Adds what the account's suppressions (or the error listing them) say to a digest: how many
/// there are and which expire within [`EXPIRING_WITHIN_DAYS`] of `now_ms`.
pub fn add_suppressions(d: &mut Digest, listed: Result<Vec<SuppressionInfo>, String>, now_ms: i64) {
    d.suppressions = Some(match listed {
        Err(e) => SuppressionSummary { total: 0, expiring: Vec::new(), error: Some(e) },
        Ok(all) => {
            let horizon = now_ms + EXPIRING_WITHIN_DAYS * 86_400_000;
            let mut expiring: Vec<ExpiringSuppression> = all
                .iter()
                .filter_map(|s| {
                    let at = s.expiration_ms?;
                    (at > now_ms && at <= horizon).then(|| ExpiringSuppression {
                        check_name: s.check_name.clone(),
                        resource_key: s.resource_key.clone(),
                        reason: s.description.clone(),
                        expires_at: at,
                    })
                })
                .collect();
            expiring.sort_by(|a, b| {
                (a.expires_at, &a.check_name, &a.resource_key).cmp(&(b.expires_at, &b.check_name, &b.resource_key))
            });
            expiring.truncate(MAX_EXPIRING_LISTED);
            SuppressionSummary { total: all.len() as u64, expiring, error: None }
        }
    });
}

/// The chat digest's fate: published next to the mail digest, never retried on its own (a
/// retry could not know whether the first attempt reached SNS: at most once, like the mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChatDelivery {
    /// Published; the SNS message id.
    Sent(String),
    /// Publishing failed; why.
    Failed(String),
}

impl Digest {
    /// The audit stream: the scheduled audit's name, or `~on-demand`.
    pub fn audit_stream(&self) -> String {
        if self.task_type == crate::vocabulary::TaskType::Scheduled.as_str() {
            self.audit.clone()
        } else {
            crate::summary::ON_DEMAND_STREAM.to_owned()
        }
    }
}

fn audit_label(s: &TaskSummary) -> String {
    s.outline.scheduled_audit_name.clone().unwrap_or_else(|| "on-demand audit".to_owned())
}

fn severity_of(summary: &TaskSummary, check: &str) -> Severity {
    summary
        .progress
        .get(check)
        .and_then(|p| p.severity.clone())
        .or_else(|| catalog(check).map(|c| c.severity.clone()))
        .unwrap_or(Severity::Unknown("UNKNOWN".into()))
}

/// Builds the digest of `current`, compared with `previous` (the last run of the same audit).
pub fn build(current: &TaskSummary, previous: Option<&TaskSummary>, changes: Changes, region: &str) -> Digest {
    let Changes {
        mut new,
        mut resolved,
        new_by_severity,
        resolved_by_severity,
        persisting,
        muted_by_severity,
        mut unmuted,
        unmuted_count,
    } = changes;
    new.sort();
    resolved.sort();
    unmuted.sort();
    let mut severities: BTreeMap<Severity, SeverityLine> = BTreeMap::new();
    for s in Severity::KNOWN {
        severities.insert(s.clone(), SeverityLine { severity: s.to_string(), open: 0, new: 0, resolved: 0 });
    }
    fn line<'a>(m: &'a mut BTreeMap<Severity, SeverityLine>, s: &Severity) -> &'a mut SeverityLine {
        m.entry(s.clone()).or_insert_with(|| SeverityLine { severity: s.to_string(), open: 0, new: 0, resolved: 0 })
    }
    for c in current.outline.checks.iter().filter(|c| !current.unread_checks.contains_key(c.check_name.as_str())) {
        let sev = severity_of(current, c.check_name.as_str());
        line(&mut severities, &sev).open +=
            if c.run_status == CheckRunStatus::Failed { 0 } else { (c.non_compliant - c.suppressed).max(0) };
    }
    for (sev, n) in &new_by_severity {
        line(&mut severities, sev).new += *n as i64;
    }
    for (sev, n) in &resolved_by_severity {
        line(&mut severities, sev).resolved += *n as i64;
    }
    let checks: Vec<CheckLine> = current
        .outline
        .checks
        .iter()
        .map(|c| {
            let before = previous
                .and_then(|p| p.outline.checks.iter().find(|pc| pc.check_name == c.check_name))
                .filter(|pc| pc.run_status != CheckRunStatus::Failed && c.run_status != CheckRunStatus::Failed)
                .map(|pc| (c.non_compliant - c.suppressed) - (pc.non_compliant - pc.suppressed));
            let failed = c.run_status == CheckRunStatus::Failed;
            CheckLine {
                check_name: c.check_name.to_string(),
                status: c.run_status.to_string(),
                severity: severity_of(current, c.check_name.as_str()).to_string(),
                non_compliant: (c.non_compliant - c.suppressed).max(0),
                muted: c.suppressed,
                total: c.total,
                change: before,
                error_code: c.error_code.clone(),
                message: c.message.clone(),
                remedy: failed.then(|| failure_remedy(c.error_code.as_deref().unwrap_or("")).to_owned()),
            }
        })
        .collect();
    let (new_count, resolved_count) = (Changes::total(&new_by_severity), Changes::total(&resolved_by_severity));
    let mut d = Digest {
        task_id: current.outline.task_id.clone(),
        audit: audit_label(current),
        task_type: current.outline.task_type.to_string(),
        task_status: current.outline.task_status.to_string(),
        task_start_time: current.outline.task_start_time,
        previous_task_id: previous.map(|p| p.outline.task_id.clone()),
        subject: String::new(),
        severities: severities.into_values().collect(),
        checks,
        new_count,
        resolved_count,
        persisting_count: persisting,
        new,
        resolved,
        console_url: format!(
            "https://{region}.console.aws.amazon.com/iot/home?region={region}#/dd/audit/results/{}",
            current.outline.task_id
        ),
        muted: muted_by_severity.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        muted_count: Changes::total(&muted_by_severity),
        unmuted_count,
        unmuted,
        suppressions: None,
        chat: None,
        lifecycle: None,
        not_compared: None,
        not_applied: current.late_checks.clone(),
        unread: current.unread_checks.clone(),
        member: None,
    };
    d.subject = subject(&d);
    d
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The most important thing, in at most 100 characters.
pub fn subject(d: &Digest) -> String {
    let failed: Vec<&CheckLine> = d.checks.iter().filter(|c| c.status == CheckRunStatus::Failed.as_str()).collect();
    let open: i64 = d.severities.iter().map(|s| s.open).sum();
    let s = if d.task_status == TaskStatus::Failed.as_str() {
        let code = failed.first().and_then(|c| c.error_code.clone()).unwrap_or_else(|| "unknown error".into());
        format!("Audit FAILED: {} ({} checks failed: {code})", d.audit, failed.len())
    } else if d.task_status == TaskStatus::Canceled.as_str() {
        format!("Audit CANCELED: {}", d.audit)
    } else {
        let worst_new = d.severities.iter().find(|s| s.new > 0);
        let overdue_critical = d.lifecycle.as_ref().map_or(0, |l| l.overdue_of(&Severity::Critical));
        let mut s = match worst_new {
            _ if overdue_critical > 0 => {
                let mut s = format!("{}: {} overdue CRITICAL", d.audit, thousands(overdue_critical));
                if let Some(w) = worst_new {
                    let _ = write!(s, ", {} new {}", thousands(w.new as u64), w.severity);
                }
                s
            }
            Some(w) => format!(
                "{}: {} new {} finding{}",
                d.audit,
                thousands(w.new as u64),
                w.severity,
                if w.new == 1 { "" } else { "s" }
            ),
            None if !d.unread.is_empty() && open == 0 => {
                format!("{}: findings NOT READ ({} check{})", d.audit, d.unread.len(), plural(d.unread.len()))
            }
            None if open == 0 && d.unread.is_empty() => {
                format!("{}: all {} checks compliant", d.audit, d.checks.len() - failed.len())
            }
            None => format!("{}: no new findings", d.audit),
        };
        if d.new_count > worst_new.map_or(0, |w| w.new as u64) {
            let _ = write!(s, ", {} new in all", thousands(d.new_count));
        }
        if d.resolved_count > 0 {
            let _ = write!(s, ", {} fixed", thousands(d.resolved_count));
        }
        if open > 0 {
            let _ = write!(s, ", {} open", thousands(open as u64));
        }
        if !failed.is_empty() {
            let _ = write!(s, "; {} check{} FAILED", failed.len(), plural(failed.len()));
        }
        if !d.unread.is_empty() && !s.contains("NOT READ") {
            let _ = write!(s, "; {} check{} NOT READ", d.unread.len(), plural(d.unread.len()));
        }
        if d.muted_count > 0 {
            let _ = write!(s, ", {} muted", thousands(d.muted_count));
        }
        s
    };
    let s = match d.member.as_deref() {
        Some(label) => format!("[{}] {s}", member_tag(label)),
        None => s,
    };
    truncate_chars(&s, MAX_SUBJECT_CHARS)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `ACCOUNT:REGION` of a member label (`[name ]ACCOUNT:REGION`).
pub fn member_pair(label: &str) -> Option<&str> {
    label.rsplit(' ').next().filter(|p| p.contains(':'))
}

/// A member label made short for a subject: `name region` when it has a name (the account id
/// is in the body and the `member` attribute), else `ACCOUNT:REGION`.
fn member_tag(label: &str) -> String {
    match (label.rsplit_once(' '), member_pair(label)) {
        (Some((name, _)), Some(pair)) => format!("{name} {}", pair.split(':').nth(1).unwrap_or_default()),
        _ => label.to_owned(),
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// An epoch-millisecond time as digests print it (`2026-01-15 00:00 UTC`).
pub fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// The plain-text body, at most `max_bytes` bytes: lists are cut with a note when they do not fit.
pub fn render_text(d: &Digest, max_bytes: usize) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "Device Defender audit digest: {}", d.audit);
    if let Some(m) = &d.member {
        let _ = writeln!(head, "Account and region: {m}");
    }
    let _ = writeln!(
        head,
        "Task {} ({}) started {}: {}",
        d.task_id,
        d.task_type,
        fmt_time(d.task_start_time),
        d.task_status
    );
    match &d.previous_task_id {
        _ if d.not_compared.is_some() => {
            let _ = writeln!(head, "Not compared: {}", d.not_compared.as_deref().unwrap_or_default());
        }
        Some(p) => {
            let _ = writeln!(head, "Compared with the previous run: task {p}");
        }
        None => {
            let _ = writeln!(head, "First run of this audit: every finding counts as new.");
        }
    }
    if !d.not_applied.is_empty() {
        let _ = writeln!(
            head,
            "Not applied to the history (a run started no earlier applied these checks first; their findings are not counted here):"
        );
        for (check, run) in &d.not_applied {
            let _ = writeln!(head, "  {check}: task {} started {}", run.task_id, fmt_time(run.start));
        }
    }
    if !d.unread.is_empty() {
        let _ = writeln!(
            head,
            "Could not read the findings of these checks (not compared, not applied to the history; the check \
             table shows Device Defender's counts):"
        );
        for (check, why) in &d.unread {
            let _ = writeln!(head, "  {check}: {why}");
        }
    }
    let _ = writeln!(
        head,
        "\n{} new, {} resolved, {} persisting.\n",
        thousands(d.new_count),
        thousands(d.resolved_count),
        thousands(d.persisting_count)
    );
    let _ = writeln!(head, "Findings by severity        open      new  resolved");
    for s in &d.severities {
        let _ =
            writeln!(head, "  {:<20} {:>9} {:>8} {:>9}", s.severity, s.open, fmt_signed(s.new), fmt_neg(s.resolved));
    }
    if let Some(l) = &d.lifecycle {
        digest_lifecycle::render_summary(&mut head, l);
    }
    render_muting(&mut head, d);
    let _ = writeln!(head, "\nChecks (non-compliant / total, change since the previous run)");
    for c in &d.checks {
        let change = c.change.map(|x| format!("({})", fmt_signed(x))).unwrap_or_default();
        let _ = writeln!(
            head,
            "  {:<60} {:<8} {:>8} / {:<8} {}",
            c.check_name,
            c.severity,
            c.non_compliant,
            c.total,
            if c.status == CheckRunStatus::Failed.as_str() {
                "FAILED".to_owned()
            } else if d.unread.contains_key(&c.check_name) {
                "NOT READ".to_owned()
            } else if c.muted > 0 {
                format!("{change} {} muted", c.muted).trim_start().to_owned()
            } else {
                change
            }
        );
    }
    let failed: Vec<&CheckLine> = d.checks.iter().filter(|c| c.error_code.is_some()).collect();
    if !failed.is_empty() {
        let _ = writeln!(head, "\nFailed checks");
        for c in failed {
            let _ = writeln!(
                head,
                "  {}: {} {}",
                c.check_name,
                c.error_code.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or("")
            );
            if let Some(r) = &c.remedy {
                let _ = writeln!(head, "    What to do: {r}");
            }
        }
    }
    let mut tail = String::new();
    let _ = writeln!(tail, "\nPersisting findings: {}", thousands(d.persisting_count));
    let _ = writeln!(tail, "Console: {}", d.console_url);
    match d.member.as_deref().and_then(member_pair) {
        Some(pair) => {
            let _ = writeln!(
                tail,
                "Every finding's episode (first seen, resolved, came back) is kept in the hub's DynamoDB table \
                 under EP#{}#{}#…; ask it with `audit-history --member {pair}`.",
                pair.replace(':', "#"),
                d.audit_stream()
            );
        }
        None => {
            let _ = writeln!(
                tail,
                "Every finding's episode (first seen, resolved, came back) is kept in DynamoDB under EP#{}#…; \
                 ask it with `audit-history`.",
                d.audit_stream()
            );
        }
    }

    let mut body = head;
    let budget = max_bytes.saturating_sub(tail.len() + 200);
    for (title, list, count) in [
        ("New findings", &d.new, d.new_count),
        ("Resolved findings", &d.resolved, d.resolved_count),
        ("Unmuted findings (open again: their suppression expired or was removed)", &d.unmuted, d.unmuted_count),
    ] {
        if count == 0 {
            continue;
        }
        let _ = writeln!(body, "\n{title} ({})", thousands(count));
        let mut shown = 0u64;
        for f in list {
            let line =
                format!("  [{}] {}  {}\n", f.severity, f.check_name, resource_label(&f.resource_type, &f.resource_key));
            if body.len() + line.len() > budget {
                break;
            }
            body.push_str(&line);
            shown += 1;
        }
        if shown < count {
            let _ = writeln!(body, "  … and {} more (not listed to keep this message small)", thousands(count - shown));
        }
    }
    if let Some(l) = &d.lifecycle {
        for (title, lines, count) in digest_lifecycle::render_lists(l, d.task_start_time) {
            if lines.is_empty() {
                continue;
            }
            let _ = writeln!(body, "\n{title} ({})", thousands(count));
            let mut shown = 0u64;
            for line in lines {
                if body.len() + line.len() > budget {
                    break;
                }
                body.push_str(&line);
                shown += 1;
            }
            if shown < count {
                let _ = writeln!(body, "  … and {} more (ask `audit-history open`)", thousands(count - shown));
            }
        }
    }
    body.push_str(&tail);
    if body.len() > max_bytes {
        let mut cut = max_bytes.saturating_sub(80);
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        body.push_str("\n… (truncated to fit the SNS message limit)\n");
    }
    body
}

/// The "Muted" section: muted findings per severity, the account's suppressions, those expiring
/// within [`EXPIRING_WITHIN_DAYS`]. Nothing when nothing is muted, unmuted or expiring.
fn render_muting(out: &mut String, d: &Digest) {
    let expiring = d.suppressions.as_ref().map_or(&[][..], |s| &s.expiring[..]);
    if d.muted_count == 0 && d.unmuted_count == 0 && expiring.is_empty() {
        if let Some(e) = d.suppressions.as_ref().and_then(|s| s.error.as_ref()) {
            let _ = writeln!(out, "\nSuppressions could not be listed: {e}");
        }
        return;
    }
    let per_severity: Vec<String> = d.muted.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let _ = write!(
        out,
        "\nMuted (suppressed in Device Defender; in none of the counts above): {}",
        thousands(d.muted_count)
    );
    if !per_severity.is_empty() {
        let _ = write!(out, " ({})", per_severity.join(", "));
    }
    match &d.suppressions {
        Some(SuppressionSummary { error: Some(e), .. }) => {
            let _ = writeln!(out, "; suppressions could not be listed: {e}");
        }
        Some(s) => {
            let _ = writeln!(out, ", by {} suppression{} in the account", s.total, if s.total == 1 { "" } else { "s" });
        }
        None => {
            let _ = writeln!(out);
        }
    }
    if d.unmuted_count > 0 {
        let _ = writeln!(out, "  {} unmuted since the previous run (listed below)", thousands(d.unmuted_count));
    }
    if !expiring.is_empty() {
        let _ = writeln!(
            out,
            "  Suppressions expiring within {EXPIRING_WITHIN_DAYS} days (renew them or fix the finding):"
        );
        for e in expiring {
            let _ = writeln!(
                out,
                "    {}  {}  expires {}  {}",
                e.check_name,
                e.resource_key,
                fmt_time(e.expires_at),
                e.reason.as_deref().unwrap_or("(no reason given)")
            );
        }
    }
}

fn fmt_signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

fn fmt_neg(n: i64) -> String {
    if n > 0 {
        format!("-{n}")
    } else {
        "0".into()
    }
}

/// SNS message attributes, so subscribers can filter (e.g. only digests with new CRITICAL):
/// `audit`, `taskStatus` (String); `CRITICAL`/`HIGH`/`MEDIUM` (open findings) and
/// `newCRITICAL`/`newHIGH`/`newMEDIUM` (Number); `overdueCRITICAL` (Number) and, when some
/// are overdue, `overdue` (String.Array of the severities with overdue findings, e.g.
/// `["CRITICAL","HIGH"]`). At most ten: SNS drops messages with more for SQS subscriptions
/// with raw message delivery (LOW counts are in the body).
pub fn message_attributes(d: &Digest) -> Vec<(String, &'static str, String)> {
    let mut out = vec![
        ("audit".to_owned(), "String", d.audit.clone()),
        ("taskStatus".to_owned(), "String", d.task_status.clone()),
    ];
    let attributed = [Severity::Critical, Severity::High, Severity::Medium];
    for s in &attributed {
        let l = d.severities.iter().find(|l| l.severity == s.as_str());
        out.push((s.to_string(), "Number", l.map_or(0, |l| l.open).to_string()));
    }
    for s in &attributed {
        let l = d.severities.iter().find(|l| l.severity == s.as_str());
        out.push((format!("new{s}"), "Number", l.map_or(0, |l| l.new).to_string()));
    }
    let overdue = |s: &Severity| d.lifecycle.as_ref().map_or(0, |l| l.overdue_of(s));
    out.push(("overdueCRITICAL".to_owned(), "Number", overdue(&Severity::Critical).to_string()));
    let severities: Vec<&str> = Severity::KNOWN.iter().filter(|s| overdue(s) > 0).map(|s| s.as_str()).collect();
    if let Some(pair) = d.member.as_deref().and_then(member_pair) {
        out.push(("member".to_owned(), "String", pair.to_owned()));
    }
    // SNS drops messages of more than 10 attributes to raw SQS subscriptions: `overdue` (the
    // list; `overdueCRITICAL` stays) gives way to `member` on a member's digest.
    if !severities.is_empty() && out.len() < MAX_ATTRIBUTES {
        out.push(("overdue".to_owned(), "String.Array", serde_json::to_string(&severities).unwrap_or_default()));
    }
    out
}

/// Message attributes SNS delivers to a raw-delivery SQS subscription.
pub const MAX_ATTRIBUTES: usize = 10;

/// Summaries and findings for the digest's tests and the chat digest's.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::summary::{CheckOutcome, TaskOutline};
    use crate::vocabulary::TaskType;

    pub(crate) fn summary(id: &str, expiring: i64, failed: bool) -> TaskSummary {
        let mut checks = vec![CheckOutcome {
            check_name: "DEVICE_CERTIFICATE_SHARED_CHECK".into(),
            run_status: if expiring > 0 {
                CheckRunStatus::NonCompliantCompleted
            } else {
                CheckRunStatus::CompliantCompleted
            },
            non_compliant: expiring,
            suppressed: 0,
            total: 1000,
            error_code: None,
            message: None,
        }];
        if failed {
            checks.push(CheckOutcome {
                check_name: "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK".into(),
                run_status: CheckRunStatus::Failed,
                non_compliant: 0,
                suppressed: 0,
                total: 0,
                error_code: Some("INSUFFICIENT_PERMISSIONS".into()),
                message: Some("no access".into()),
            });
        }
        let outline = TaskOutline {
            task_id: id.into(),
            task_type: TaskType::Scheduled,
            task_status: TaskStatus::Completed,
            scheduled_audit_name: Some("daily-fleet-audit".into()),
            task_start_time: 1_768_521_600_000,
            checks,
        };
        TaskSummary::new(outline, 0)
    }

    pub(crate) fn finding(i: usize) -> DigestFinding {
        DigestFinding {
            severity: Severity::Critical,
            check_name: "DEVICE_CERTIFICATE_SHARED_CHECK".into(),
            resource_type: "DEVICE_CERTIFICATE".into(),
            resource_key: format!("deviceCertificateId={i:064x}"),
        }
    }

    pub(crate) fn changes(new: &[usize], resolved: &[usize], persisting: u64) -> Changes {
        let mut c = Changes { persisting, ..Changes::default() };
        new.iter().for_each(|i| c.add_new(finding(*i)));
        resolved.iter().for_each(|i| c.add_resolved(finding(*i)));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn changes_keep_the_most_severe_and_exact_counts() {
        let mut c = Changes::default();
        for i in 0..(MAX_LISTED + 100) {
            let mut f = finding(i);
            f.severity = if i % 7 == 0 { Severity::Critical } else { Severity::Low };
            c.add_new(f);
        }
        assert_eq!(c.new.len(), MAX_LISTED);
        assert_eq!(c.new_by_severity.values().sum::<u64>(), (MAX_LISTED + 100) as u64);
        let criticals = (MAX_LISTED + 100).div_ceil(7);
        assert_eq!(c.new.iter().filter(|f| f.severity == Severity::Critical).count(), criticals);
    }

    #[test]
    fn subject_says_the_most_important_thing_within_100_chars() {
        let prev = summary("p", 10, false);
        let cur = summary("c", 12, true);
        let d = build(&cur, Some(&prev), changes(&[1, 2, 3], &[9], 9), "us-east-1");
        assert_eq!(d.subject, "daily-fleet-audit: 3 new CRITICAL findings, 1 fixed, 12 open; 1 check FAILED");
        assert_eq!(d.checks[0].change, Some(2));
        assert!(d.checks[1].remedy.as_deref().unwrap().contains("audit role"));
        let clean = build(&summary("c", 0, false), None, Changes::default(), "us-east-1");
        assert_eq!(clean.subject, "daily-fleet-audit: all 1 checks compliant");
        let mut long = summary("c", 1, false);
        long.outline.scheduled_audit_name = Some("x".repeat(128));
        assert_eq!(build(&long, None, changes(&[], &[], 1), "r").subject.chars().count(), 100);
    }

    #[test]
    fn a_digest_says_which_findings_it_could_not_read_and_never_counts_them_as_open() {
        // The notification reports 1,306 findings; ListAuditFindings gave none.
        let mut cur = summary("c", 1306, true);
        let why = "ListAuditFindings returned none of the 1306 findings the task reports";
        cur.set_unread("DEVICE_CERTIFICATE_SHARED_CHECK", why);
        let d = build(&cur, None, Changes::default(), "us-east-1");
        assert_eq!(d.subject, "daily-fleet-audit: findings NOT READ (1 check); 1 check FAILED");
        assert!(d.severities.iter().all(|s| s.open == 0), "the notification's counts are not the history's");
        let body = render_text(&d, MAX_BODY_BYTES);
        assert!(body.contains("Could not read the findings of these checks"), "{body}");
        assert!(body.contains(&format!("DEVICE_CERTIFICATE_SHARED_CHECK: {why}")), "{body}");
        assert!(body.contains("NOT READ"), "the check table marks it: {body}");
        // Some checks read, one not: the read ones count, the subject names the rest.
        let mut cur = summary("c", 12, false);
        cur.outline.checks.push(crate::summary::CheckOutcome {
            check_name: "DEVICE_CERTIFICATE_EXPIRING_CHECK".into(),
            run_status: CheckRunStatus::NonCompliantCompleted,
            non_compliant: 40,
            suppressed: 0,
            total: 1000,
            error_code: None,
            message: None,
        });
        cur.set_unread("DEVICE_CERTIFICATE_EXPIRING_CHECK", why);
        let d = build(&cur, None, changes(&[], &[], 12), "us-east-1");
        assert_eq!(d.subject, "daily-fleet-audit: no new findings, 12 open; 1 check NOT READ");
        assert_eq!(d.severities.iter().map(|s| s.open).sum::<i64>(), 12);
    }

    #[test]
    fn body_lists_new_and_resolved_and_fits_the_limit() {
        let cur = summary("c", 12, true);
        let d = build(&cur, None, changes(&[1], &[2], 11), "eu-west-1");
        let body = render_text(&d, MAX_BODY_BYTES);
        assert!(body.contains("New findings (1)") && body.contains("Resolved findings (1)"), "{body}");
        assert!(body.contains("What to do:"));
        assert!(body.contains("eu-west-1.console.aws.amazon.com"));
        // A huge digest is cut with a note, never failing.
        let many: Vec<usize> = (0..50_000).collect();
        let d = build(&cur, None, changes(&many, &[], 0), "eu-west-1");
        assert_eq!(d.new.len(), MAX_LISTED);
        assert_eq!(d.new_count, 50_000);
        let body = render_text(&d, 20_000);
        assert!(body.len() <= 20_000);
        assert!(body.contains("more (not listed"), "{}", &body[body.len() - 300..]);
    }

    #[test]
    fn attributes_carry_severity_counts() {
        let d = build(&summary("c", 12, false), None, changes(&[1], &[], 11), "r");
        let a = message_attributes(&d);
        assert_eq!(a.len(), 9, "no `overdue` while nothing is overdue");
        assert!(a.contains(&("CRITICAL".to_owned(), "Number", "12".to_owned())));
        assert!(a.contains(&("newCRITICAL".to_owned(), "Number", "1".to_owned())));
        assert!(a.contains(&("overdueCRITICAL".to_owned(), "Number", "0".to_owned())));
        let mut d = d;
        d.member = Some("444455556666:eu-west-1".into());
        d.subject = subject(&d);
        assert!(d.subject.starts_with("[444455556666:eu-west-1] "), "{}", d.subject);
        assert!(render_text(&d, 100_000).contains("Account and region: 444455556666:eu-west-1"));
        let a = message_attributes(&d);
        assert!(a.contains(&("member".to_owned(), "String", "444455556666:eu-west-1".to_owned())));
        assert!(a.len() <= MAX_ATTRIBUTES);
        assert!(render_text(&d, 100_000).contains("`audit-history --member 444455556666:eu-west-1`"));
        d.member = Some("fleet eu 444455556666:eu-west-1".into());
        assert!(subject(&d).starts_with("[fleet eu eu-west-1] "), "named: the name and region, {}", subject(&d));
    }

    #[test]
    fn lifecycle_puts_overdue_criticals_first_and_renders_ages_fixes_and_trend() {
        use crate::digest_lifecycle;
        use crate::lifecycle::{Deadlines, FixTimes, LifecycleStats, DAY_MS};
        use crate::ports::RunRecord;
        let cur = summary("c", 12, false);
        let start = cur.outline.task_start_time;
        let stats = LifecycleStats {
            run_start: start,
            open_by_age: BTreeMap::from([(Severity::Critical, [2, 0, 9, 1])]),
            overdue: BTreeMap::from([(Severity::Critical, 10), (Severity::High, 2)]),
            came_back: 1,
            time_to_fix: BTreeMap::from([(
                Severity::Critical,
                FixTimes { count: 3, median_ms: 2 * DAY_MS, p90_ms: 9 * DAY_MS },
            )]),
            time_to_fix_all: Some(FixTimes { count: 3, median_ms: 2 * DAY_MS, p90_ms: 9 * DAY_MS }),
            listed_overdue: vec![1],
            listed_came_back: vec![2],
            listed_oldest: vec![1],
            ..Default::default()
        };
        let listed = HashMap::from([
            (1, (finding(1), start - 100 * DAY_MS, None)),
            (2, (finding(2), start, Some(start - 3 * DAY_MS))),
        ]);
        let earlier = vec![RunRecord {
            not_read: false,
            task_id: "p".into(),
            task_status: TaskStatus::Completed,
            task_start_time: start - DAY_MS,
            open: BTreeMap::from([("CRITICAL".into(), 24)]),
        }];
        let mut d = build(&cur, None, changes(&[1], &[], 11), "r");
        d.lifecycle = Some(digest_lifecycle::build(
            &stats,
            &Deadlines::default(),
            &listed,
            "c",
            &earlier,
            &cur.open_by_severity(),
        ));
        d.subject = subject(&d);
        assert!(d.subject.starts_with("daily-fleet-audit: 10 overdue CRITICAL, 1 new CRITICAL"), "{}", d.subject);
        let a = message_attributes(&d);
        assert_eq!(a.len(), 10, "SNS's limit for raw SQS delivery");
        assert!(a.contains(&("overdueCRITICAL".to_owned(), "Number", "10".to_owned())));
        assert!(a.contains(&("overdue".to_owned(), "String.Array", r#"["CRITICAL","HIGH"]"#.to_owned())), "{a:?}");
        let body = render_text(&d, MAX_BODY_BYTES);
        for expected in [
            "  CRITICAL                    2        0        9        1   10 (7 d)",
            "Came back (resolved before, open again): 1",
            "Time to fix (age when resolved, median / p90): 2 d / 9 d over 3 fixed; CRITICAL 2 d / 9 d",
            "Open findings over the last 2 runs (oldest first)",
            "CRITICAL  █▅         24 → 12",
            "Overdue findings (open longer than their severity's deadline) (12)",
            "open 100 d, since",
            "Came back (fixed before, open again) (1)",
            "fixed 2026-01-13",
        ] {
            assert!(body.contains(expected), "missing {expected:?} in\n{body}");
        }
    }

    #[test]
    fn muted_findings_are_in_no_count_subject_or_attribute() {
        // 12 non-compliant, 5 of them suppressed; this run: 1 new, 3 muted; 1 unmuted.
        let mut cur = summary("c", 12, false);
        cur.outline.checks[0].suppressed = 5;
        let mut ch = changes(&[1], &[], 6);
        for _ in 0..3 {
            ch.add_muted(Severity::Critical);
        }
        ch.add_unmuted(finding(7));
        let d = build(&cur, None, ch, "r");
        let critical = d.severities.iter().find(|s| s.severity == "CRITICAL").unwrap();
        assert_eq!((critical.open, critical.new), (7, 1), "open excludes the 5 suppressed");
        assert_eq!((d.muted_count, d.muted["CRITICAL"], d.unmuted_count, d.new_count), (3, 3, 1, 1));
        assert_eq!(d.checks[0].non_compliant, 7);
        assert_eq!(d.checks[0].muted, 5);
        let a = message_attributes(&d);
        assert!(a.contains(&("CRITICAL".to_owned(), "Number", "7".to_owned())), "{a:?}");
        assert!(a.contains(&("newCRITICAL".to_owned(), "Number", "1".to_owned())), "{a:?}");
        assert!(d.subject.ends_with(", 3 muted"), "{}", d.subject);
        let body = render_text(&d, MAX_BODY_BYTES);
        assert!(
            body.contains("Muted (suppressed in Device Defender; in none of the counts above): 3 (CRITICAL 3)"),
            "{body}"
        );
        assert!(body.contains("Unmuted findings (open again: their suppression expired or was removed) (1)"), "{body}");
        assert!(body.contains("7 / 1000     5 muted"), "{body}");
    }

    #[test]
    fn suppressions_expiring_within_seven_days_are_listed_soonest_first() {
        let mut d = build(&summary("c", 2, false), None, changes(&[], &[], 2), "r");
        let now = 1_768_521_600_000;
        let day = 86_400_000;
        let s = |key: &str, at: Option<i64>| SuppressionInfo {
            check_name: "DEVICE_CERTIFICATE_SHARED_CHECK".into(),
            resource_key: key.into(),
            description: Some(format!("reason {key}")),
            expiration_ms: at,
        };
        let all = vec![
            s("late", Some(now + 8 * day)),
            s("b", Some(now + 6 * day)),
            s("a", Some(now + day)),
            s("forever", None),
            s("past", Some(now - day)),
        ];
        add_suppressions(&mut d, Ok(all), now);
        let sum = d.suppressions.clone().unwrap();
        assert_eq!(sum.total, 5);
        let keys: Vec<&str> = sum.expiring.iter().map(|e| e.resource_key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        let body = render_text(&d, MAX_BODY_BYTES);
        assert!(body.contains("Suppressions expiring within 7 days"), "{body}");
        assert!(body.contains("DEVICE_CERTIFICATE_SHARED_CHECK  a  expires 2026-01-17 00:00 UTC  reason a"), "{body}");
        // Listing failed: the digest says so instead of failing.
        add_suppressions(&mut d, Err("AccessDenied".into()), now);
        assert!(render_text(&d, MAX_BODY_BYTES).contains("Suppressions could not be listed: AccessDenied"));
    }
}
