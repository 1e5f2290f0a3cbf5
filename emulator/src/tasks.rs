//! Audit tasks: StartOnDemandAuditTask, DescribeAuditTask, ListAuditTasks, CancelAuditTask and
//! the task lifecycle (their findings are [`crate::findings`]).
//!
//! A task's checks finish one after another across the task duration. A finished check keeps
//! the sorted indices of the fleet resources that failed it at that moment; findings are
//! rendered from those indices on demand. A task ends when no check runs any more: CANCELED
//! when cancelled, FAILED when every check failed, else COMPLETED; then the notification goes
//! to the SNS target and the fleet drifts.

use crate::account::validate_targets;
use crate::error::ApiError;
use crate::pagination;
use crate::state::{AuditState, Outgoing};
use crate::wire::{check_task_id, query_get, query_int, query_timestamp_ms, Body};
use audit_shared::{
    catalog, AuditNotification, CheckName, CheckRunStatus, NotificationCheckDetail, TaskStatus, TaskType,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Result of one check of a task.
#[derive(Debug, Clone)]
pub enum CheckResult {
    Running,
    Canceled,
    Failed {
        code: String,
        message: String,
    },
    /// `suppressed`: the (sorted) resources a suppression active when the check finished named.
    Done {
        total: u32,
        finding_ms: i64,
        resources: Vec<u32>,
        suppressed: Vec<u32>,
    },
}

/// One check of a task.
#[derive(Debug, Clone)]
pub struct TaskCheck {
    pub name: String,
    pub finishes_ms: i64,
    pub result: CheckResult,
}

impl TaskCheck {
    fn run_status(&self) -> CheckRunStatus {
        match &self.result {
            CheckResult::Running => CheckRunStatus::InProgress,
            CheckResult::Canceled => CheckRunStatus::Canceled,
            CheckResult::Failed { .. } => CheckRunStatus::Failed,
            // Suppressed findings are not considered when the check's compliance is evaluated.
            CheckResult::Done { resources, suppressed, .. } if resources.len() == suppressed.len() => {
                CheckRunStatus::CompliantCompleted
            }
            CheckResult::Done { .. } => CheckRunStatus::NonCompliantCompleted,
        }
    }

    /// (total, non-compliant including suppressed, suppressed).
    fn counts(&self) -> (i64, i64, i64) {
        match &self.result {
            CheckResult::Done { total, resources, suppressed, .. } => {
                (*total as i64, resources.len() as i64, suppressed.len() as i64)
            }
            _ => (0, 0, 0),
        }
    }

    /// Whether the finding on `resource` was suppressed.
    pub(crate) fn is_suppressed(&self, resource: u32) -> bool {
        matches!(&self.result, CheckResult::Done { suppressed, .. } if suppressed.binary_search(&resource).is_ok())
    }
}

/// An audit task.
#[derive(Debug, Clone)]
pub struct Task {
    pub seq: u64,
    pub id: String,
    pub task_type: TaskType,
    pub scheduled_audit_name: Option<String>,
    pub start_ms: i64,
    pub status: TaskStatus,
    pub checks: Vec<TaskCheck>,
}

/// Per-status check counts: (total, in progress, waiting, compliant, non-compliant, failed, canceled).
fn statistics(task: &Task) -> [u32; 7] {
    let mut s = [0u32; 7];
    for c in &task.checks {
        s[0] += 1;
        let i = match c.run_status() {
            CheckRunStatus::InProgress => 1,
            CheckRunStatus::WaitingForDataCollection => 2,
            CheckRunStatus::CompliantCompleted => 3,
            CheckRunStatus::NonCompliantCompleted => 4,
            CheckRunStatus::Failed => 5,
            _ => 6,
        };
        s[i] += 1;
    }
    s
}

/// Seconds with millisecond precision, as AWS writes body timestamps.
pub fn secs(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

impl AuditState {
    /// Creates an IN_PROGRESS task whose checks finish evenly across the task duration.
    pub fn start_task(
        &mut self,
        task_type: TaskType,
        scheduled: Option<String>,
        targets: Vec<String>,
        now_ms: i64,
    ) -> String {
        self.next_seq += 1;
        let mut h = Sha256::new();
        h.update(self.seed.to_le_bytes());
        h.update(b"task");
        h.update(self.next_seq.to_le_bytes());
        let id = hex::encode(&h.finalize()[..16]);
        let n = targets.len() as i64;
        let step = self.limits.task_duration_ms.max(n) / n.max(1);
        let checks = targets
            .into_iter()
            .enumerate()
            .map(|(i, name)| TaskCheck {
                name,
                finishes_ms: now_ms + step * (i as i64 + 1),
                result: CheckResult::Running,
            })
            .collect();
        self.tasks.push(Task {
            seq: self.next_seq,
            id: id.clone(),
            task_type,
            scheduled_audit_name: scheduled,
            start_ms: now_ms,
            status: TaskStatus::InProgress,
            checks,
        });
        id
    }

    /// A check finishes: it fails if set to fail or disabled meanwhile, else takes the fleet's
    /// current non-compliant resources.
    pub(crate) fn finish_check(
        &mut self,
        task: usize,
        check: usize,
        at_ms: i64,
        failing: &dyn Fn(&str) -> Option<String>,
    ) {
        let name = self.tasks[task].checks[check].name.clone();
        let spec = catalog(&name).expect("targets are known checks");
        let result = if let Some(code) = failing(&name) {
            let message = match code.as_str() {
                "INSUFFICIENT_PERMISSIONS" => format!("The audit role is not allowed to read what {name} needs."),
                other => format!("The check could not run ({other})."),
            };
            CheckResult::Failed { code, message }
        } else if !self.config.is_enabled(&name) {
            CheckResult::Failed {
                code: "AUDIT_CHECK_DISABLED".into(),
                message: format!("{name} was disabled while the audit ran."),
            }
        } else {
            let resources = self.fleet.non_compliant(&name).to_vec();
            let active = self.suppressions.active_for(&name, at_ms);
            let mut suppressed: Vec<u32> = if active.is_empty() {
                Vec::new()
            } else {
                resources
                    .iter()
                    .copied()
                    .filter(|&r| {
                        let id = self.fleet.identifier(&spec.resource_type, r);
                        active.iter().any(|s| s.matches(&name, &id))
                    })
                    .collect()
            };
            suppressed.sort_unstable();
            CheckResult::Done { total: self.fleet.total(spec), finding_ms: at_ms, resources, suppressed }
        };
        self.tasks[task].checks[check].result = result;
    }

    /// Ends a task whose checks have all finished; returns its id when it ended now.
    pub(crate) fn complete_if_done(&mut self, task: usize) -> Option<String> {
        let t = &mut self.tasks[task];
        if t.status.is_terminal() || t.checks.iter().any(|c| matches!(c.result, CheckResult::Running)) {
            return None;
        }
        let all_failed = t.checks.iter().all(|c| matches!(c.result, CheckResult::Failed { .. }));
        t.status = if all_failed { TaskStatus::Failed } else { TaskStatus::Completed };
        let any_done = t.checks.iter().any(|c| matches!(c.result, CheckResult::Done { .. }));
        let id = t.id.clone();
        self.notify(task);
        if any_done {
            self.fleet.drift();
        }
        Some(id)
    }

    /// Queues the task's notification when the SNS target is enabled.
    fn notify(&mut self, task: usize) {
        let Some(topic) = self.config.sns.as_ref().filter(|t| t.enabled).and_then(|t| t.target_arn.clone()) else {
            return;
        };
        let notification = self.notification(&self.tasks[task]);
        self.outgoing.push(Outgoing { topic_arn: topic, notification });
    }

    /// The SNS audit notification of an ended task (reference §5).
    pub fn notification(&self, t: &Task) -> AuditNotification {
        let s = statistics(t);
        AuditNotification {
            account_id: self.account_id.clone(),
            task_id: t.id.clone(),
            task_status: t.status.clone(),
            task_type: t.task_type.clone(),
            scheduled_audit_name: t.scheduled_audit_name.clone(),
            failed_checks_count: s[5],
            canceled_checks_count: s[6],
            non_compliant_checks_count: s[4],
            compliant_checks_count: s[3],
            total_checks_count: s[0],
            task_start_time: t.start_ms,
            audit_details: t
                .checks
                .iter()
                .map(|c| {
                    let (total, non_compliant, suppressed) = c.counts();
                    let (error_code, message) = match &c.result {
                        CheckResult::Failed { code, message } => (Some(code.clone()), Some(message.clone())),
                        _ => (None, None),
                    };
                    NotificationCheckDetail {
                        check_name: CheckName::new(c.name.clone()),
                        check_run_status: c.run_status(),
                        non_compliant_resources_count: non_compliant,
                        total_resources_count: total,
                        suppressed_non_compliant_resources_count: Some(suppressed),
                        error_code,
                        message,
                    }
                })
                .collect(),
        }
    }

    /// StartOnDemandAuditTask.
    pub fn start_on_demand(&mut self, body: &Body, now_ms: i64) -> Result<Value, ApiError> {
        let names = body.str_list("targetCheckNames")?.ok_or_else(|| ApiError::missing("targetCheckNames"))?;
        let targets = validate_targets(&self.config, &names)?;
        let running = self
            .tasks
            .iter()
            .filter(|t| t.task_type == TaskType::OnDemand && t.status == TaskStatus::InProgress)
            .count();
        if running >= self.limits.max_on_demand_tasks {
            return Err(ApiError::limit(format!("Simultaneous on-demand audit limit reached ({running} in progress)")));
        }
        let id = self.start_task(TaskType::OnDemand, None, targets, now_ms);
        Ok(json!({ "taskId": id }))
    }

    fn find_task(&self, id: &str) -> Result<usize, ApiError> {
        check_task_id(id)?;
        self.tasks
            .iter()
            .position(|t| t.id == id)
            .ok_or_else(|| ApiError::not_found(format!("Audit task '{id}' does not exist")))
    }

    /// DescribeAuditTask.
    pub fn describe_task(&self, id: &str) -> Result<Value, ApiError> {
        let t = &self.tasks[self.find_task(id)?];
        let s = statistics(t);
        let mut details = Map::new();
        for c in &t.checks {
            let status = c.run_status();
            let (total, non_compliant, suppressed) = c.counts();
            let mut d = json!({
                "checkRunStatus": status.as_str(),
                "checkCompliant": status == CheckRunStatus::CompliantCompleted,
                "totalResourcesCount": total,
                "nonCompliantResourcesCount": non_compliant,
                "suppressedNonCompliantResourcesCount": suppressed,
            });
            if let CheckResult::Failed { code, message } = &c.result {
                d["errorCode"] = json!(code);
                d["message"] = json!(message);
            }
            details.insert(c.name.clone(), d);
        }
        let mut v = json!({
            "taskStatus": t.status.as_str(),
            "taskType": t.task_type.as_str(),
            "taskStartTime": secs(t.start_ms),
            "taskStatistics": {
                "totalChecks": s[0], "inProgressChecks": s[1], "waitingForDataCollectionChecks": s[2],
                "compliantChecks": s[3], "nonCompliantChecks": s[4], "failedChecks": s[5], "canceledChecks": s[6],
            },
            "auditDetails": details,
        });
        if let Some(n) = &t.scheduled_audit_name {
            v["scheduledAuditName"] = json!(n);
        }
        Ok(v)
    }

    /// ListAuditTasks: tasks started in [startTime, endTime], newest first.
    pub fn list_tasks(&self, query: &[(String, String)], now_ms: i64) -> Result<Value, ApiError> {
        let start = query_timestamp_ms(query, "startTime")?.ok_or_else(|| ApiError::missing("startTime"))?;
        let end = query_timestamp_ms(query, "endTime")?.ok_or_else(|| ApiError::missing("endTime"))?;
        self.check_window(start, end, now_ms)?;
        let task_type = query_get(query, "taskType")
            .map(|v| {
                TaskType::parse_known(v).ok_or_else(|| {
                    ApiError::field(
                        "taskType",
                        v,
                        "Member must satisfy enum value set: [ON_DEMAND_AUDIT_TASK, SCHEDULED_AUDIT_TASK]",
                    )
                })
            })
            .transpose()?;
        let status = query_get(query, "taskStatus")
            .map(|v| {
                TaskStatus::parse_known(v).ok_or_else(|| {
                    ApiError::field(
                        "taskStatus",
                        v,
                        "Member must satisfy enum value set: [IN_PROGRESS, COMPLETED, FAILED, CANCELED]",
                    )
                })
            })
            .transpose()?;
        let limit = pagination::page_size(query_int(query, "maxResults")?)?;
        let digest = pagination::query_digest(
            "ListAuditTasks",
            &[
                ("startTime", Some(start.to_string())),
                ("endTime", Some(end.to_string())),
                ("taskType", task_type.as_ref().map(ToString::to_string)),
                ("taskStatus", status.as_ref().map(ToString::to_string)),
            ],
        );
        let after = pagination::decode(query_get(query, "nextToken"), &digest, 1)?.map(|k| k[0]);
        let mut items = self.tasks.iter().rev().filter(|t| {
            after.is_none_or(|s| t.seq < s)
                && (start..=end).contains(&t.start_ms)
                && task_type.as_ref().is_none_or(|k| *k == t.task_type)
                && status.as_ref().is_none_or(|k| *k == t.status)
        });
        let page: Vec<&Task> = items.by_ref().take(limit).collect();
        let tasks: Vec<Value> = page
            .iter()
            .map(|t| json!({ "taskId": t.id, "taskStatus": t.status.as_str(), "taskType": t.task_type.as_str() }))
            .collect();
        let mut out = json!({ "tasks": tasks });
        if let (Some(last), Some(_)) = (page.last(), items.next()) {
            out["nextToken"] = json!(pagination::encode(&[last.seq], &digest));
        }
        Ok(out)
    }

    pub(crate) fn check_window(&self, start: i64, end: i64, now_ms: i64) -> Result<(), ApiError> {
        if end < start {
            return Err(ApiError::invalid("endTime must not be earlier than startTime"));
        }
        let days = self.limits.retention_ms / 86_400_000;
        if start < now_ms - self.limits.retention_ms {
            return Err(ApiError::invalid(format!("startTime must be within the last {days} days")));
        }
        Ok(())
    }

    /// CancelAuditTask: running checks become CANCELED, finished ones keep their results.
    pub fn cancel_task(&mut self, id: &str) -> Result<Value, ApiError> {
        let idx = self.find_task(id)?;
        let t = &mut self.tasks[idx];
        if t.status != TaskStatus::InProgress {
            return Err(ApiError::invalid(format!(
                "Audit task '{id}' is {} and cannot be canceled; only IN_PROGRESS tasks can",
                t.status
            )));
        }
        for c in &mut t.checks {
            if matches!(c.result, CheckResult::Running) {
                c.result = CheckResult::Canceled;
            }
        }
        t.status = TaskStatus::Canceled;
        self.notify(idx);
        Ok(json!({}))
    }
}
