//! Audit tasks and their findings: operations 9–13 and the task lifecycle.
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
use crate::wire::{check_length, check_task_id, query_get, query_int, query_timestamp_ms, Body};
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
    fn is_suppressed(&self, resource: u32) -> bool {
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

/// The query of ListAuditFindings.
struct FindingQuery {
    task_id: Option<String>,
    check_name: Option<String>,
    resource: Option<Map<String, Value>>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    suppressed: Option<bool>,
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

    fn check_window(&self, start: i64, end: i64, now_ms: i64) -> Result<(), ApiError> {
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

    /// ListAuditFindings.
    pub fn list_findings(&self, body: &Body, now_ms: i64) -> Result<Value, ApiError> {
        let q = self.finding_query(body, now_ms)?;
        let limit = pagination::page_size(body.int("maxResults")?)?;
        let digest = pagination::query_digest(
            "ListAuditFindings",
            &[
                ("taskId", q.task_id.clone()),
                ("checkName", q.check_name.clone()),
                ("resourceIdentifier", q.resource.as_ref().map(|r| Value::Object(r.clone()).to_string())),
                ("startTime", q.start_ms.map(|v| v.to_string())),
                ("endTime", q.end_ms.map(|v| v.to_string())),
                ("listSuppressedFindings", q.suppressed.map(|v| v.to_string())),
            ],
        );
        let after = pagination::decode(body.str("nextToken")?, &digest, 3)?.map(|k| (k[0], k[1], k[2]));
        let mut page = Vec::with_capacity(limit);
        let mut last_key = None;
        let mut more = false;
        {
            'tasks: for t in self.tasks.iter().filter(|t| q.task_id.as_ref().is_none_or(|id| *id == t.id)) {
                if after.is_some_and(|(ts, _, _)| t.seq < ts) {
                    continue;
                }
                for (ci, c) in t.checks.iter().enumerate() {
                    let CheckResult::Done { resources, finding_ms, .. } = &c.result else { continue };
                    if q.check_name.as_ref().is_some_and(|n| *n != c.name) {
                        continue;
                    }
                    if q.start_ms.is_some_and(|s| *finding_ms < s) || q.end_ms.is_some_and(|e| *finding_ms > e) {
                        continue;
                    }
                    let spec = catalog(&c.name).expect("known check");
                    let first = match after {
                        Some((ts, cs, i)) if ts == t.seq && cs == ci as u64 => i as usize + 1,
                        Some((ts, cs, _)) if ts == t.seq && (ci as u64) < cs => continue,
                        _ => 0,
                    };
                    for (i, &r) in resources.iter().enumerate().skip(first) {
                        // listSuppressedFindings: true → only suppressed, false → only not, absent → both.
                        if q.suppressed.is_some_and(|want| want != c.is_suppressed(r)) {
                            continue;
                        }
                        if let Some(want) = &q.resource {
                            let have = self.fleet.identifier(&spec.resource_type, r);
                            if !want.iter().all(|(k, v)| have.get(k) == Some(v)) {
                                continue;
                            }
                        }
                        if page.len() == limit {
                            more = true;
                            break 'tasks;
                        }
                        page.push(self.finding(t, c, r, *finding_ms));
                        last_key = Some([t.seq, ci as u64, i as u64]);
                    }
                }
            }
        }
        let mut out = json!({ "findings": page });
        if let (true, Some(k)) = (more, last_key) {
            out["nextToken"] = json!(pagination::encode(&k, &digest));
        }
        Ok(out)
    }

    fn finding_query(&self, body: &Body, now_ms: i64) -> Result<FindingQuery, ApiError> {
        let task_id = body.str("taskId")?.map(str::to_owned);
        if let Some(id) = &task_id {
            check_task_id(id)?;
        }
        let start_ms = body.timestamp_ms("startTime")?;
        let end_ms = body.timestamp_ms("endTime")?;
        match (&task_id, start_ms, end_ms) {
            (Some(_), None, None) => {}
            (None, Some(s), Some(e)) => self.check_window(s, e, now_ms)?,
            (Some(_), _, _) => {
                return Err(ApiError::invalid("Specify either taskId or startTime and endTime, not both"))
            }
            (None, None, None) => return Err(ApiError::invalid("Specify either taskId or both startTime and endTime")),
            (None, _, _) => return Err(ApiError::invalid("startTime and endTime must be given together")),
        }
        let check_name = body.str("checkName")?.map(str::to_owned);
        let resource = body.object("resourceIdentifier")?.map(|r| validate_resource_identifier(r.0)).transpose()?;
        Ok(FindingQuery {
            task_id,
            check_name,
            resource,
            start_ms,
            end_ms,
            suppressed: body.bool("listSuppressedFindings")?,
        })
    }

    fn finding(&self, t: &Task, c: &TaskCheck, resource: u32, finding_ms: i64) -> Value {
        let spec = catalog(&c.name).expect("known check");
        let rendered = self.fleet.render(spec, resource, finding_ms);
        let mut h = Sha256::new();
        h.update(t.id.as_bytes());
        h.update(c.name.as_bytes());
        h.update(resource.to_le_bytes());
        let mut f = json!({
            "findingId": hex::encode(&h.finalize()[..16]),
            "taskId": t.id,
            "checkName": c.name,
            "taskStartTime": secs(t.start_ms),
            "findingTime": secs(finding_ms),
            "severity": self.severity(&c.name).as_str(),
            "nonCompliantResource": rendered.non_compliant,
            "reasonForNonCompliance": spec.reason,
            "reasonForNonComplianceCode": spec.reason_code,
            "isSuppressed": c.is_suppressed(resource),
        });
        if !rendered.related.is_empty() {
            f["relatedResources"] = Value::Array(rendered.related);
        }
        f
    }
}

/// Checks a `resourceIdentifier` filter against the model's constraints.
pub(crate) fn validate_resource_identifier(r: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let b = Body(r.clone());
    let hex64 = |field: &str| -> Result<(), ApiError> {
        if let Some(v) = b.str(field)? {
            let f = format!("resourceIdentifier.{field}");
            check_length(&f, v, 64, 64)?;
            let digits = v.strip_prefix("0x").unwrap_or(v);
            if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ApiError::field(
                    &f,
                    v,
                    "Member must satisfy regular expression pattern: (0x)?[a-fA-F0-9]+",
                ));
            }
        }
        Ok(())
    };
    hex64("deviceCertificateId")?;
    hex64("caCertificateId")?;
    if let Some(a) = b.str("account")? {
        if a.len() != 12 || !a.chars().all(|c| c.is_ascii_digit()) {
            return Err(ApiError::field(
                "resourceIdentifier.account",
                a,
                "Member must satisfy regular expression pattern: [0-9]+ of length 12",
            ));
        }
    }
    if let Some(a) = b.str("iamRoleArn")? {
        check_length("resourceIdentifier.iamRoleArn", a, 20, 2048)?;
    }
    if let Some(a) = b.str("roleAliasArn")? {
        check_length("resourceIdentifier.roleAliasArn", a, 1, 2048)?;
    }
    for f in ["cognitoIdentityPoolId", "clientId", "deviceCertificateArn"] {
        b.str(f)?;
    }
    if let Some(p) = b.object("policyVersionIdentifier")? {
        if let Some(n) = p.str("policyName")? {
            check_length("resourceIdentifier.policyVersionIdentifier.policyName", n, 1, 128)?;
        }
        if let Some(v) = p.str("policyVersionId")? {
            crate::wire::check_chars("resourceIdentifier.policyVersionIdentifier.policyVersionId", v, "[0-9]+", |c| {
                c.is_ascii_digit()
            })?;
        }
    }
    Ok(r)
}
