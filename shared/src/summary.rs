//! What we know of a task (from its notification or DescribeAuditTask) and the summary item we
//! store for it, with its ingest progress.

use crate::checks::CheckName;
use crate::notification::AuditNotification;
use crate::stream_head::AppliedRun;
use crate::vocabulary::{CheckRunStatus, Severity, TaskStatus, TaskType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One check's outcome in a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckOutcome {
    pub check_name: CheckName,
    pub run_status: CheckRunStatus,
    /// Non-compliant resources, the suppressed ones included.
    pub non_compliant: i64,
    /// Of those, the ones a suppression covered (muted in digests).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suppressed: i64,
    pub total: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A task as the notification or DescribeAuditTask tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutline {
    pub task_id: String,
    pub task_type: TaskType,
    pub task_status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_audit_name: Option<String>,
    /// Epoch milliseconds.
    pub task_start_time: i64,
    pub checks: Vec<CheckOutcome>,
}

impl From<&AuditNotification> for TaskOutline {
    fn from(n: &AuditNotification) -> Self {
        TaskOutline {
            task_id: n.task_id.clone(),
            task_type: n.task_type.clone(),
            task_status: n.task_status.clone(),
            scheduled_audit_name: n.scheduled_audit_name.clone(),
            task_start_time: n.task_start_time,
            checks: n
                .audit_details
                .iter()
                .map(|d| CheckOutcome {
                    check_name: d.check_name.clone(),
                    run_status: d.check_run_status.clone(),
                    non_compliant: d.non_compliant_resources_count,
                    suppressed: d.suppressed_non_compliant_resources_count.unwrap_or(0),
                    total: d.total_resources_count,
                    error_code: d.error_code.clone(),
                    message: d.message.clone(),
                })
                .collect(),
        }
    }
}

impl TaskOutline {
    /// Checks with findings to read, in the task's order.
    pub fn checks_to_read(&self) -> Vec<CheckName> {
        self.checks
            .iter()
            .filter(|c| c.non_compliant > 0 && c.run_status != CheckRunStatus::Failed)
            .map(|c| c.check_name.clone())
            .collect()
    }

    /// The history stream this task belongs to: its scheduled audit, or on-demand audits.
    pub fn audit_stream(&self) -> String {
        self.scheduled_audit_name.clone().unwrap_or_else(|| ON_DEMAND_STREAM.to_owned())
    }
}

/// History stream of on-demand tasks (not a valid scheduled audit name, so it cannot clash).
pub const ON_DEMAND_STREAM: &str = "~on-demand";

/// Where the ingest of a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IngestState {
    /// Findings are being read (or will be resumed).
    Ingesting,
    /// Every finding is stored (none to read for FAILED and CANCELED tasks).
    Complete,
}

/// Reading progress of one check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckProgress {
    /// Token of the next page to read; `None` before the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// Findings stored so far (counted once per page, with the checkpoint).
    pub stored: i64,
    /// Pages stored so far (numbers the pages' seen records).
    #[serde(default)]
    pub pages: i64,
    pub done: bool,
    /// Severity of this check's findings, from the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// Whether the digest of a task went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DigestState {
    /// Not yet decided.
    Pending,
    /// Claimed by an invocation that is publishing it now.
    Publishing,
    /// Published (message id stored).
    Sent,
    /// Not sent by configuration (e.g. on-demand digests off).
    NotWanted,
    /// An invocation crashed between claiming and recording the publish: the digest may or may
    /// not have gone out; it is never sent twice (it is stored next to the summary).
    Unconfirmed,
}

/// Where a task stands in its audit stream's finding lifecycle (see [`crate::lifecycle`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecycleState {
    /// The run's episode changes are not all written yet (resolutions come after the digest).
    Pending,
    /// Every change written; the stream's last applied run.
    Applied,
    /// The run changes no episode: not COMPLETED, or older than the stream's last applied run.
    #[default]
    NotTracked,
}

/// The summary item of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSummary {
    #[serde(flatten)]
    pub outline: TaskOutline,
    pub ingest: IngestState,
    pub progress: BTreeMap<String, CheckProgress>,
    pub digest: DigestState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_message_id: Option<String>,
    /// Findings per severity, once complete.
    #[serde(default)]
    pub severity_counts: BTreeMap<String, i64>,
    #[serde(default)]
    pub pages_read: i64,
    #[serde(default)]
    pub invocations: i64,
    /// Epoch milliseconds.
    pub received_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    #[serde(default)]
    pub lease_until: i64,
    /// The finding lifecycle step.
    #[serde(default)]
    pub lifecycle: LifecycleState,
    /// Checks this run completed but did not apply to its stream's history, each with the run
    /// (started no earlier) that applied it first: their findings are in no episode.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub late_checks: BTreeMap<String, AppliedRun>,
    /// Checks whose findings could not be read, each with why (ListAuditFindings returned
    /// none of the findings the task reports, or invocations in a row read nothing): not
    /// applied to the history either, and their counts are Device Defender's, not the history's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unread_checks: BTreeMap<String, String>,
}

impl TaskSummary {
    /// A fresh summary for a task just heard of.
    pub fn new(outline: TaskOutline, now_ms: i64) -> Self {
        let reads = outline.task_status == TaskStatus::Completed;
        let progress = if reads {
            outline.checks_to_read().into_iter().map(|c| (c.to_string(), CheckProgress::default())).collect()
        } else {
            BTreeMap::new()
        };
        TaskSummary {
            ingest: IngestState::Ingesting,
            outline,
            progress,
            digest: DigestState::Pending,
            digest_message_id: None,
            severity_counts: BTreeMap::new(),
            pages_read: 0,
            invocations: 0,
            received_at: now_ms,
            completed_at: None,
            lease_owner: None,
            lease_until: 0,
            lifecycle: if reads { LifecycleState::Pending } else { LifecycleState::NotTracked },
            late_checks: BTreeMap::new(),
            unread_checks: BTreeMap::new(),
        }
    }

    /// The checks that ran to the end (compliant or not): the ones whose findings the task
    /// has, and whose episodes not seen again it resolves.
    pub fn completed_checks(&self) -> Vec<String> {
        self.outline
            .checks
            .iter()
            .filter(|c| {
                matches!(c.run_status, CheckRunStatus::CompliantCompleted | CheckRunStatus::NonCompliantCompleted)
            })
            .map(|c| c.check_name.to_string())
            .collect()
    }

    /// The completed checks this run applies to its stream's history (neither late nor unread).
    pub fn applied_checks(&self) -> Vec<String> {
        if self.lifecycle == LifecycleState::NotTracked {
            return Vec::new();
        }
        self.completed_checks()
            .into_iter()
            .filter(|c| !self.late_checks.contains_key(c) && !self.unread_checks.contains_key(c))
            .collect()
    }

    /// Checks read to the end that gave none of the findings the task reports for them, with
    /// the number reported: ListAuditFindings did not know the task (or no longer keeps its
    /// findings). Applied, they would resolve every open finding of the check.
    pub fn read_empty(&self) -> Vec<(String, i64)> {
        self.outline
            .checks
            .iter()
            .filter(|c| c.non_compliant > 0)
            .filter(|c| {
                self.progress.get(c.check_name.as_str()).is_some_and(|p| p.done && p.stored == 0 && p.pages > 0)
            })
            .map(|c| (c.check_name.to_string(), c.non_compliant))
            .collect()
    }

    /// Whether the run applied nothing because its findings could not be read: not a run of
    /// its stream's history (never the previous run, not in the trend).
    pub fn nothing_read(&self) -> bool {
        self.lifecycle == LifecycleState::NotTracked && !self.unread_checks.is_empty()
    }

    /// Records `check` as not read, with why: it is done (nothing more is read) and not applied.
    pub fn set_unread(&mut self, check: &str, why: &str) {
        if let Some(p) = self.progress.get_mut(check) {
            p.done = true;
            p.next_token = None;
        }
        self.unread_checks.insert(check.to_owned(), why.to_owned());
    }

    /// Records `late` as not applied: they are not read.
    pub fn set_late(&mut self, late: BTreeMap<String, AppliedRun>) {
        for c in late.keys() {
            self.progress.remove(c);
        }
        self.late_checks = late;
    }

    /// Checks still to read.
    pub fn pending_checks(&self) -> Vec<String> {
        self.progress.iter().filter(|(_, p)| !p.done).map(|(c, _)| c.clone()).collect()
    }

    /// Open (not muted) findings per severity, from the checks' counts (failed checks left out).
    pub fn open_by_severity(&self) -> BTreeMap<String, i64> {
        let mut open = BTreeMap::new();
        for c in &self.outline.checks {
            // A check not read has no count of the history's (its findings are unknown).
            if c.run_status == CheckRunStatus::Failed || self.unread_checks.contains_key(c.check_name.as_str()) {
                continue;
            }
            let sev = self
                .progress
                .get(c.check_name.as_str())
                .and_then(|p| p.severity.clone())
                .or_else(|| crate::catalog(c.check_name.as_str()).map(|s| s.severity.clone()));
            let sev = sev.map_or_else(|| "UNKNOWN".to_owned(), |s| s.to_string());
            *open.entry(sev).or_insert(0) += (c.non_compliant - c.suppressed).max(0);
        }
        open
    }

    /// Per-severity totals from the per-check progress.
    pub fn compute_severity_counts(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for (check, p) in &self.progress {
            let sev = p
                .severity
                .clone()
                .or_else(|| crate::catalog(check).map(|c| c.severity.clone()))
                .unwrap_or(Severity::Unknown("UNKNOWN".into()));
            *out.entry(sev.to_string()).or_insert(0) += p.stored;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::NotificationCheckDetail;

    fn notification(status: &str) -> AuditNotification {
        AuditNotification {
            account_id: "123456789012".into(),
            task_id: "t1".into(),
            task_status: TaskStatus::parse(status),
            task_type: TaskType::Scheduled,
            scheduled_audit_name: Some("daily".into()),
            failed_checks_count: 1,
            canceled_checks_count: 0,
            non_compliant_checks_count: 1,
            compliant_checks_count: 1,
            total_checks_count: 3,
            task_start_time: 1_717_488_000_123,
            audit_details: vec![
                NotificationCheckDetail {
                    check_name: "DEVICE_CERTIFICATE_EXPIRING_CHECK".into(),
                    check_run_status: CheckRunStatus::NonCompliantCompleted,
                    non_compliant_resources_count: 4,
                    suppressed_non_compliant_resources_count: None,
                    total_resources_count: 250,
                    error_code: None,
                    message: None,
                },
                NotificationCheckDetail {
                    check_name: "LOGGING_DISABLED_CHECK".into(),
                    check_run_status: CheckRunStatus::CompliantCompleted,
                    non_compliant_resources_count: 0,
                    suppressed_non_compliant_resources_count: None,
                    total_resources_count: 1,
                    error_code: None,
                    message: None,
                },
            ],
        }
    }

    #[test]
    fn completed_tasks_read_only_non_compliant_checks() {
        let s = TaskSummary::new(TaskOutline::from(&notification("COMPLETED")), 5);
        assert_eq!(s.ingest, IngestState::Ingesting);
        assert_eq!(s.pending_checks(), vec!["DEVICE_CERTIFICATE_EXPIRING_CHECK".to_string()]);
        let f = TaskSummary::new(TaskOutline::from(&notification("FAILED")), 5);
        assert!(f.pending_checks().is_empty());
    }

    #[test]
    fn severity_counts_use_observed_severity_then_catalog() {
        let mut s = TaskSummary::new(TaskOutline::from(&notification("COMPLETED")), 5);
        s.progress.get_mut("DEVICE_CERTIFICATE_EXPIRING_CHECK").unwrap().stored = 4;
        assert_eq!(s.compute_severity_counts()["MEDIUM"], 4);
        s.progress.get_mut("DEVICE_CERTIFICATE_EXPIRING_CHECK").unwrap().severity = Some(Severity::High);
        assert_eq!(s.compute_severity_counts()["HIGH"], 4);
    }

    #[test]
    fn unread_checks_are_done_and_not_applied() {
        let mut s = TaskSummary::new(TaskOutline::from(&notification("COMPLETED")), 5);
        let check = "DEVICE_CERTIFICATE_EXPIRING_CHECK";
        assert!(s.read_empty().is_empty(), "not read yet");
        let p = s.progress.get_mut(check).unwrap();
        (p.done, p.pages) = (true, 1);
        assert_eq!(s.read_empty(), [(check.to_string(), 4)], "one empty page for 4 reported findings");
        assert_eq!(s.applied_checks().len(), 2);
        s.progress.get_mut(check).unwrap().done = false;
        s.set_unread(check, "the account does not know the task");
        assert!(s.pending_checks().is_empty());
        assert_eq!(s.applied_checks(), ["LOGGING_DISABLED_CHECK".to_string()]);
        assert_eq!(s.open_by_severity().values().sum::<i64>(), 0, "an unread check's count is not the history's");
        let back: TaskSummary = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.unread_checks[check], "the account does not know the task");
    }

    #[test]
    fn summary_round_trips_through_json() {
        let s = TaskSummary::new(TaskOutline::from(&notification("COMPLETED")), 5);
        let back: TaskSummary = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
