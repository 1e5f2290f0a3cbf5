//! The findings digest sent after an audit: what is new, what got fixed, what persists, by
//! severity and check, with failed checks and what to do about them. Pure: built from the
//! stored summaries and the new/resolved sets, rendered to a mail subject (≤ 100 characters)
//! and a plain-text body (≤ the SNS limit, truncated with a note, never failing).

use crate::checks::{catalog, failure_remedy};
use crate::finding::resource_label;
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
    pub non_compliant: i64,
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
    /// What became of the chat digest, when a chat topic is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<ChatDelivery>,
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
    let Changes { mut new, mut resolved, new_by_severity, resolved_by_severity, persisting } = changes;
    new.sort();
    resolved.sort();
    let mut severities: BTreeMap<Severity, SeverityLine> = BTreeMap::new();
    for s in Severity::KNOWN {
        severities.insert(s.clone(), SeverityLine { severity: s.to_string(), open: 0, new: 0, resolved: 0 });
    }
    fn line<'a>(m: &'a mut BTreeMap<Severity, SeverityLine>, s: &Severity) -> &'a mut SeverityLine {
        m.entry(s.clone()).or_insert_with(|| SeverityLine { severity: s.to_string(), open: 0, new: 0, resolved: 0 })
    }
    for c in &current.outline.checks {
        let sev = severity_of(current, c.check_name.as_str());
        line(&mut severities, &sev).open += if c.run_status == CheckRunStatus::Failed { 0 } else { c.non_compliant };
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
                .map(|pc| c.non_compliant - pc.non_compliant);
            let failed = c.run_status == CheckRunStatus::Failed;
            CheckLine {
                check_name: c.check_name.to_string(),
                status: c.run_status.to_string(),
                severity: severity_of(current, c.check_name.as_str()).to_string(),
                non_compliant: c.non_compliant,
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
        chat: None,
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
        let mut s = match worst_new {
            Some(w) => format!(
                "{}: {} new {} finding{}",
                d.audit,
                thousands(w.new as u64),
                w.severity,
                if w.new == 1 { "" } else { "s" }
            ),
            None if open == 0 => format!("{}: all {} checks compliant", d.audit, d.checks.len() - failed.len()),
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
            let _ = write!(s, "; {} check{} FAILED", failed.len(), if failed.len() == 1 { "" } else { "s" });
        }
        s
    };
    truncate_chars(&s, MAX_SUBJECT_CHARS)
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// The plain-text body, at most `max_bytes` bytes: lists are cut with a note when they do not fit.
pub fn render_text(d: &Digest, max_bytes: usize) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "Device Defender audit digest: {}", d.audit);
    let _ = writeln!(
        head,
        "Task {} ({}) started {}: {}",
        d.task_id,
        d.task_type,
        fmt_time(d.task_start_time),
        d.task_status
    );
    match &d.previous_task_id {
        Some(p) => {
            let _ = writeln!(head, "Compared with the previous run: task {p}");
        }
        None => {
            let _ = writeln!(head, "First run of this audit: every finding counts as new.");
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
            if c.status == CheckRunStatus::Failed.as_str() { "FAILED".to_owned() } else { change }
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
    let _ = writeln!(tail, "All findings of this task are kept in DynamoDB under TASK#{}.", d.task_id);

    let mut body = head;
    let budget = max_bytes.saturating_sub(tail.len() + 200);
    for (title, list, count) in
        [("New findings", &d.new, d.new_count), ("Resolved findings", &d.resolved, d.resolved_count)]
    {
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
/// `audit`, `taskStatus` (String), `CRITICAL`/`HIGH`/`MEDIUM`/`LOW` (open findings) and
/// `newCRITICAL`/`newHIGH`/`newMEDIUM`/`newLOW` (Number). Ten attributes, SNS's maximum.
pub fn message_attributes(d: &Digest) -> Vec<(String, &'static str, String)> {
    let mut out = vec![
        ("audit".to_owned(), "String", d.audit.clone()),
        ("taskStatus".to_owned(), "String", d.task_status.clone()),
    ];
    for s in Severity::KNOWN {
        let l = d.severities.iter().find(|l| l.severity == s.as_str());
        out.push((s.to_string(), "Number", l.map_or(0, |l| l.open).to_string()));
    }
    for s in Severity::KNOWN {
        let l = d.severities.iter().find(|l| l.severity == s.as_str());
        out.push((format!("new{s}"), "Number", l.map_or(0, |l| l.new).to_string()));
    }
    out
}

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
            total: 1000,
            error_code: None,
            message: None,
        }];
        if failed {
            checks.push(CheckOutcome {
                check_name: "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK".into(),
                run_status: CheckRunStatus::Failed,
                non_compliant: 0,
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
        assert_eq!(a.len(), 10);
        assert!(a.contains(&("CRITICAL".to_owned(), "Number", "12".to_owned())));
        assert!(a.contains(&("newCRITICAL".to_owned(), "Number", "1".to_owned())));
    }
}
