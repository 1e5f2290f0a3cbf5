//! [`AuditReader`] over `aws-sdk-iot`.

use super::classify;
use crate::finding::Finding;
use crate::ports::{AuditReader, FindingsPage, PortError, TaskRef};
use crate::summary::{CheckOutcome, TaskOutline};
use crate::vocabulary::{CheckRunStatus, ResourceType, Severity, TaskStatus, TaskType};
use aws_sdk_iot::primitives::DateTime;
use aws_sdk_iot::types::{AuditFinding, ResourceIdentifier};
use std::collections::BTreeMap;

/// Reads audits with an IoT client (configure retries on the client: adaptive mode).
#[derive(Clone, Debug)]
pub struct IotAuditReader {
    client: aws_sdk_iot::Client,
}

impl IotAuditReader {
    pub fn new(client: aws_sdk_iot::Client) -> Self {
        IotAuditReader { client }
    }
}

fn ms(t: Option<&DateTime>) -> Option<i64> {
    t.and_then(|t| t.to_millis().ok())
}

/// Flattens a resource identifier into `field` → value.
pub fn flatten(r: &ResourceIdentifier) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v.to_owned());
        }
    };
    put("deviceCertificateId", r.device_certificate_id());
    put("caCertificateId", r.ca_certificate_id());
    put("cognitoIdentityPoolId", r.cognito_identity_pool_id());
    put("clientId", r.client_id());
    put("account", r.account());
    put("iamRoleArn", r.iam_role_arn());
    put("roleAliasArn", r.role_alias_arn());
    put("deviceCertificateArn", r.device_certificate_arn());
    if let Some(p) = r.policy_version_identifier() {
        put("policyVersionIdentifier.policyName", p.policy_name());
        put("policyVersionIdentifier.policyVersionId", p.policy_version_id());
    }
    if let Some(i) = r.issuer_certificate_identifier() {
        put("issuerCertificateIdentifier.issuerCertificateSubject", i.issuer_certificate_subject());
        put("issuerCertificateIdentifier.issuerId", i.issuer_id());
        put("issuerCertificateIdentifier.issuerCertificateSerialNumber", i.issuer_certificate_serial_number());
    }
    m
}

/// Our [`Finding`] from the SDK's.
pub fn to_finding(task_id: &str, f: &AuditFinding) -> Finding {
    let ncr = f.non_compliant_resource();
    let related: Vec<serde_json::Value> = f
        .related_resources()
        .iter()
        .map(|r| {
            serde_json::json!({
                "resourceType": r.resource_type().map(|t| t.as_str()),
                "resourceIdentifier": r.resource_identifier().map(flatten),
                "additionalInfo": r.additional_info(),
            })
        })
        .collect();
    Finding {
        task_id: f.task_id().unwrap_or(task_id).to_owned(),
        check_name: f.check_name().unwrap_or("UNKNOWN_CHECK").into(),
        finding_id: f.finding_id().map(str::to_owned),
        severity: f.severity().map_or(Severity::Unknown("UNKNOWN".into()), |s| Severity::parse(s.as_str())),
        resource_type: ncr
            .and_then(|r| r.resource_type())
            .map_or(ResourceType::Unknown("UNKNOWN".into()), |t| ResourceType::parse(t.as_str())),
        resource: ncr.and_then(|r| r.resource_identifier()).map(flatten).unwrap_or_default(),
        additional_info: ncr
            .and_then(|r| r.additional_info())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        reason_code: f.reason_for_non_compliance_code().map(str::to_owned),
        reason: f.reason_for_non_compliance().map(str::to_owned),
        finding_time: ms(f.finding_time()),
        related_resources: (!related.is_empty()).then(|| serde_json::Value::Array(related).to_string()),
        is_suppressed: f.is_suppressed().unwrap_or(false),
    }
}

impl AuditReader for IotAuditReader {
    async fn describe_task(&self, task_id: &str) -> Result<TaskOutline, PortError> {
        let d = self
            .client
            .describe_audit_task()
            .task_id(task_id)
            .send()
            .await
            .map_err(|e| classify("DescribeAuditTask", e))?;
        let mut checks: Vec<CheckOutcome> = d
            .audit_details()
            .map(|m| {
                m.iter()
                    .map(|(name, c)| CheckOutcome {
                        check_name: name.as_str().into(),
                        run_status: c
                            .check_run_status()
                            .map_or(CheckRunStatus::Unknown("UNKNOWN".into()), |s| CheckRunStatus::parse(s.as_str())),
                        non_compliant: c.non_compliant_resources_count().unwrap_or(0),
                        total: c.total_resources_count().unwrap_or(0),
                        error_code: c.error_code().map(str::to_owned),
                        message: c.message().map(str::to_owned),
                    })
                    .collect()
            })
            .unwrap_or_default();
        checks.sort_by(|a, b| a.check_name.cmp(&b.check_name));
        Ok(TaskOutline {
            task_id: task_id.to_owned(),
            task_type: d.task_type().map_or(TaskType::Unknown("UNKNOWN".into()), |t| TaskType::parse(t.as_str())),
            task_status: d
                .task_status()
                .map_or(TaskStatus::Unknown("UNKNOWN".into()), |t| TaskStatus::parse(t.as_str())),
            scheduled_audit_name: d.scheduled_audit_name().map(str::to_owned),
            task_start_time: ms(d.task_start_time()).unwrap_or(0),
            checks,
        })
    }

    async fn list_findings(
        &self,
        task_id: &str,
        check_name: &str,
        next_token: Option<String>,
    ) -> Result<FindingsPage, PortError> {
        let out = self
            .client
            .list_audit_findings()
            .task_id(task_id)
            .check_name(check_name)
            .max_results(250)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| classify("ListAuditFindings", e))?;
        Ok(FindingsPage {
            findings: out.findings().iter().map(|f| to_finding(task_id, f)).collect(),
            next_token: out.next_token().filter(|t| !t.is_empty()).map(str::to_owned),
        })
    }

    async fn list_tasks(&self, start_ms: i64, end_ms: i64) -> Result<Vec<TaskRef>, PortError> {
        let mut pages = self
            .client
            .list_audit_tasks()
            .start_time(DateTime::from_millis(start_ms))
            .end_time(DateTime::from_millis(end_ms))
            .max_results(250)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListAuditTasks", e))?;
            for t in page.tasks() {
                out.push(TaskRef {
                    task_id: t.task_id().unwrap_or_default().to_owned(),
                    task_status: t
                        .task_status()
                        .map_or(TaskStatus::Unknown("UNKNOWN".into()), |s| TaskStatus::parse(s.as_str())),
                    task_type: t
                        .task_type()
                        .map_or(TaskType::Unknown("UNKNOWN".into()), |s| TaskType::parse(s.as_str())),
                });
            }
        }
        Ok(out)
    }
}
