//! Audit findings: ListAuditFindings and DescribeAuditFinding.
//!
//! A finding is rendered on demand from its task's finished check and the failing resource's
//! fleet index. Its id names both — the task's sequence number, the check's position in the
//! task and the resource index — followed by a digest of the task id, check name and resource,
//! so DescribeAuditFinding finds a finding without an index and no altered id resolves.

use crate::error::ApiError;
use crate::pagination;
use crate::state::AuditState;
use crate::tasks::{secs, CheckResult, Task};
use crate::wire::{check_chars, check_length, check_task_id, Body};
use audit_shared::catalog;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Where a finding comes from: the task (its sequence number), the check's position in it and
/// the resource's fleet index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindingId {
    pub task_seq: u64,
    pub check: usize,
    pub resource: u32,
}

impl FindingId {
    /// `<task seq, 16 hex><check, 2 hex><resource, 8 hex><digest, 16 hex>`: 42 characters of
    /// `[0-9a-f]`, within the model's `[a-zA-Z0-9_-]+` of 1–128.
    pub fn encode(&self, task_id: &str, check_name: &str) -> String {
        format!(
            "{:016x}{:02x}{:08x}{}",
            self.task_seq,
            self.check,
            self.resource,
            digest(task_id, check_name, self.resource)
        )
    }

    /// The locator and digest of an id this emulator made, if it has that shape.
    pub fn decode(id: &str) -> Option<(FindingId, &str)> {
        if id.len() != 42 || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        let task_seq = u64::from_str_radix(&id[..16], 16).ok()?;
        let check = usize::from_str_radix(&id[16..18], 16).ok()?;
        let resource = u32::from_str_radix(&id[18..26], 16).ok()?;
        Some((FindingId { task_seq, check, resource }, &id[26..]))
    }
}

fn digest(task_id: &str, check_name: &str, resource: u32) -> String {
    let mut h = Sha256::new();
    h.update(task_id.as_bytes());
    h.update(check_name.as_bytes());
    h.update(resource.to_le_bytes());
    hex::encode(&h.finalize()[..8])
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
                        page.push(self.finding(t, ci, r, *finding_ms));
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

    fn finding(&self, t: &Task, check_index: usize, resource: u32, finding_ms: i64) -> Value {
        let c = &t.checks[check_index];
        let spec = catalog(&c.name).expect("known check");
        let rendered = self.fleet.render(spec, resource, finding_ms);
        let mut f = json!({
            "findingId": FindingId { task_seq: t.seq, check: check_index, resource }.encode(&t.id, &c.name),
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

    /// DescribeAuditFinding: the finding ListAuditFindings returned under `id`, while its task
    /// is kept (90 days).
    pub fn describe_finding(&self, id: &str) -> Result<Value, ApiError> {
        check_length("findingId", id, 1, 128)?;
        check_chars("findingId", id, "[a-zA-Z0-9_-]+", |c| c.is_ascii_alphanumeric() || c == '_' || c == '-')?;
        let missing = || ApiError::not_found(format!("Audit finding '{id}' does not exist"));
        let (at, given) = FindingId::decode(id).ok_or_else(missing)?;
        let t = self.tasks.iter().find(|t| t.seq == at.task_seq).ok_or_else(missing)?;
        let c = t.checks.get(at.check).ok_or_else(missing)?;
        let CheckResult::Done { resources, finding_ms, .. } = &c.result else { return Err(missing()) };
        if resources.binary_search(&at.resource).is_err() || digest(&t.id, &c.name, at.resource) != given {
            return Err(missing());
        }
        Ok(json!({ "finding": self.finding(t, at.check, at.resource, *finding_ms) }))
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
