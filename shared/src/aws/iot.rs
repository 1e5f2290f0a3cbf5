//! [`AuditReader`] over `aws-sdk-iot`.

use super::classify;
use crate::finding::{resource_key, Finding};
use crate::membership::AuditSchedule;
use crate::ports::{AuditReader, FindingsPage, PortError, SuppressionInfo, TaskRef};
use crate::schedule::Schedule;
use crate::summary::{CheckOutcome, TaskOutline};
use crate::vocabulary::{CheckRunStatus, ResourceType, Severity, TaskStatus, TaskType};
use aws_sdk_iot::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_iot::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_iot::error::BoxError;
use aws_sdk_iot::primitives::DateTime;
use aws_sdk_iot::types::{AuditFinding, ResourceIdentifier};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Reads audits with an IoT client (configure retries on the client: adaptive mode).
#[derive(Clone, Debug)]
pub struct IotAuditReader {
    client: aws_sdk_iot::Client,
    throttled: ThrottleCounter,
}

impl IotAuditReader {
    /// Wraps `client`, adding an interceptor that counts throttled attempts.
    pub fn new(client: aws_sdk_iot::Client) -> Self {
        let throttled = ThrottleCounter::default();
        let client =
            aws_sdk_iot::Client::from_conf(client.config().to_builder().interceptor(throttled.clone()).build());
        IotAuditReader { client, throttled }
    }
}

/// Counts every attempt answered with `ThrottlingException`, including those the SDK's retry
/// absorbed and that never surfaced as an error.
#[derive(Clone, Debug, Default)]
struct ThrottleCounter(Arc<AtomicU64>);

impl Intercept for ThrottleCounter {
    fn name(&self) -> &'static str {
        "ThrottleCounter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let code = context.response().and_then(|r| r.headers().get("x-amzn-ErrorType"));
        if code.is_some_and(|c| c.starts_with("ThrottlingException")) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Epoch milliseconds, rounded to the nearest: the API sends epoch seconds as a JSON number
/// with a fraction, and its binary parse can land a hair under the millisecond (…132.797 read
/// as …132.796999931), which truncation would turn into a different start time than the
/// notification's for the same task.
fn ms(t: Option<&DateTime>) -> Option<i64> {
    t.map(|t| t.secs() * 1000 + ((t.subsec_nanos() as i64 + 500_000) / 1_000_000))
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
    fn throttled_attempts(&self) -> u64 {
        self.throttled.0.load(Ordering::Relaxed)
    }

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
                        suppressed: c.suppressed_non_compliant_resources_count().unwrap_or(0),
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

    async fn list_suppressions(&self) -> Result<Vec<SuppressionInfo>, PortError> {
        Ok(all_suppressions(&self.client)
            .await?
            .into_iter()
            .map(|s| SuppressionInfo {
                resource_key: resource_key(&s.resource),
                check_name: s.check_name,
                description: s.description,
                expiration_ms: s.expires_ms,
            })
            .collect())
    }

    async fn scheduled_audits(&self) -> Result<Vec<AuditSchedule>, PortError> {
        let mut pages = self.client.list_scheduled_audits().max_results(250).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListScheduledAudits", e))?;
            for a in page.scheduled_audits() {
                let frequency = a.frequency().map(|f| f.as_str()).unwrap_or_default();
                let day_of_week = a.day_of_week().map(|d| d.as_str());
                // An audit whose schedule this code does not know (a frequency added later) is
                // left out: the member is then judged by its other audits, or as daily.
                match (a.scheduled_audit_name(), Schedule::from_wire(frequency, a.day_of_month(), day_of_week)) {
                    (Some(name), Ok(schedule)) => out.push(AuditSchedule { audit: name.to_owned(), schedule }),
                    (name, Err(e)) => {
                        tracing::warn!(audit = name, error = %e, "scheduled audit with a schedule not understood")
                    }
                    (None, _) => {}
                }
            }
        }
        Ok(out)
    }
}

/// ListAuditSuppressions, every page, resource identifiers flattened.
async fn all_suppressions(client: &aws_sdk_iot::Client) -> Result<Vec<ActualSuppression>, PortError> {
    let mut pages = client.list_audit_suppressions().max_results(250).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListAuditSuppressions", e))?;
        for s in page.suppressions() {
            out.push(ActualSuppression {
                check_name: s.check_name().to_owned(),
                resource: s.resource_identifier().map(flatten).unwrap_or_default(),
                description: s.description().map(str::to_owned),
                expires_ms: if s.suppress_indefinitely() == Some(true) { None } else { ms(s.expiration_date()) },
            });
        }
    }
    Ok(out)
}

/// The SDK's resource identifier from a flattened one (the inverse of [`flatten`]).
pub fn unflatten(m: &BTreeMap<String, String>) -> ResourceIdentifier {
    let get = |k: &str| m.get(k).cloned();
    let mut b = ResourceIdentifier::builder()
        .set_device_certificate_id(get("deviceCertificateId"))
        .set_ca_certificate_id(get("caCertificateId"))
        .set_cognito_identity_pool_id(get("cognitoIdentityPoolId"))
        .set_client_id(get("clientId"))
        .set_account(get("account"))
        .set_iam_role_arn(get("iamRoleArn"))
        .set_role_alias_arn(get("roleAliasArn"))
        .set_device_certificate_arn(get("deviceCertificateArn"));
    if m.keys().any(|k| k.starts_with("policyVersionIdentifier.")) {
        b = b.policy_version_identifier(
            aws_sdk_iot::types::PolicyVersionIdentifier::builder()
                .set_policy_name(get("policyVersionIdentifier.policyName"))
                .set_policy_version_id(get("policyVersionIdentifier.policyVersionId"))
                .build(),
        );
    }
    if m.keys().any(|k| k.starts_with("issuerCertificateIdentifier.")) {
        b = b.issuer_certificate_identifier(
            aws_sdk_iot::types::IssuerCertificateIdentifier::builder()
                .set_issuer_certificate_subject(get("issuerCertificateIdentifier.issuerCertificateSubject"))
                .set_issuer_id(get("issuerCertificateIdentifier.issuerId"))
                .set_issuer_certificate_serial_number(get("issuerCertificateIdentifier.issuerCertificateSerialNumber"))
                .build(),
        );
    }
    b.build()
}

/// [`AuditSetupApi`] over `aws-sdk-iot`.
#[derive(Clone, Debug)]
pub struct IotAuditSetup {
    client: aws_sdk_iot::Client,
}

impl IotAuditSetup {
    pub fn new(client: aws_sdk_iot::Client) -> Self {
        IotAuditSetup { client }
    }
}

use crate::ports::{AuditSetupApi, StepResult};
use crate::setup::{ActualSetup, AuditDef, CheckState, NotificationTarget, Step};
use crate::suppression::{suppression_key, ActualSuppression};
use aws_sdk_iot::types::{
    AuditCheckConfiguration, AuditFrequency, AuditNotificationTarget, AuditNotificationType, ConfigName,
    DayOfWeek as SdkDayOfWeek, Tag,
};

/// A scheduled audit's definition as DescribeScheduledAudit gives it.
fn audit_def(d: &aws_sdk_iot::operation::describe_scheduled_audit::DescribeScheduledAuditOutput) -> AuditDef {
    let mut targets: Vec<String> = d.target_check_names().to_vec();
    targets.sort();
    targets.dedup();
    AuditDef {
        frequency: d.frequency().map(|f| f.as_str().to_owned()).unwrap_or_default(),
        day_of_week: d.day_of_week().map(|x| x.as_str().to_owned()),
        day_of_month: d.day_of_month().map(str::to_owned),
        targets,
    }
}

impl IotAuditSetup {
    /// DescribeScheduledAudit; `None` when it does not exist.
    async fn describe_audit(&self, name: &str) -> Result<Option<AuditDef>, PortError> {
        match self.client.describe_scheduled_audit().scheduled_audit_name(name).send().await {
            Ok(d) => Ok(Some(audit_def(&d))),
            Err(e) => match classify("DescribeScheduledAudit", e) {
                PortError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }
}

fn check_config(enabled: bool, config: &BTreeMap<String, String>) -> AuditCheckConfiguration {
    let mut b = AuditCheckConfiguration::builder().enabled(enabled);
    for (k, v) in config {
        b = b.configuration(ConfigName::from(k.as_str()), v);
    }
    b.build()
}

impl AuditSetupApi for IotAuditSetup {
    async fn read(&self) -> Result<ActualSetup, PortError> {
        let c = self
            .client
            .describe_account_audit_configuration()
            .send()
            .await
            .map_err(|e| classify("DescribeAccountAuditConfiguration", e))?;
        let mut actual = ActualSetup { role_arn: c.role_arn().map(str::to_owned), ..ActualSetup::default() };
        for (name, cfg) in c.audit_check_configurations().into_iter().flatten() {
            let configuration = cfg
                .configuration()
                .map(|m| m.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
                .unwrap_or_default();
            actual.checks.insert(name.clone(), CheckState { enabled: cfg.enabled(), configuration });
        }
        if let Some(t) = c.audit_notification_target_configurations().and_then(|m| m.get(&AuditNotificationType::Sns)) {
            if let (Some(topic), Some(role)) = (t.target_arn(), t.role_arn()) {
                actual.notification = Some(NotificationTarget {
                    topic_arn: topic.to_owned(),
                    role_arn: role.to_owned(),
                    enabled: t.enabled(),
                });
            }
        }
        let mut pages = self.client.list_scheduled_audits().max_results(250).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListScheduledAudits", e))?;
            for a in page.scheduled_audits() {
                if let (Some(n), Some(arn)) = (a.scheduled_audit_name(), a.scheduled_audit_arn()) {
                    actual.audit_arns.insert(n.to_owned(), arn.to_owned());
                }
            }
        }
        for name in actual.audit_arns.keys() {
            // None: deleted meanwhile.
            if let Some(def) = self.describe_audit(name).await? {
                actual.audits.insert(name.clone(), def);
            }
        }
        for s in all_suppressions(&self.client).await? {
            actual.suppressions.insert(suppression_key(&s.check_name, &s.resource), s);
        }
        Ok(actual)
    }

    async fn apply(&self, step: &Step, tags: &[(String, String)]) -> Result<StepResult, PortError> {
        match step {
            Step::CreateSuppression { suppression: s } => {
                // The SDK fills clientRequestToken (an idempotency token) itself.
                self.client
                    .create_audit_suppression()
                    .check_name(&s.check_name)
                    .resource_identifier(unflatten(&s.resource))
                    .description(&s.reason)
                    .set_expiration_date(s.expires_ms.map(DateTime::from_millis))
                    .suppress_indefinitely(s.expires_ms.is_none())
                    .send()
                    .await
                    .map_err(|e| classify("CreateAuditSuppression", e))?;
                Ok(StepResult::Done)
            }
            Step::UpdateSuppression { suppression: s } => {
                self.client
                    .update_audit_suppression()
                    .check_name(&s.check_name)
                    .resource_identifier(unflatten(&s.resource))
                    .description(&s.reason)
                    .set_expiration_date(s.expires_ms.map(DateTime::from_millis))
                    .suppress_indefinitely(s.expires_ms.is_none())
                    .send()
                    .await
                    .map_err(|e| classify("UpdateAuditSuppression", e))?;
                Ok(StepResult::Done)
            }
            Step::DeleteSuppression { check_name, resource } => {
                self.client
                    .delete_audit_suppression()
                    .check_name(check_name)
                    .resource_identifier(unflatten(resource))
                    .send()
                    .await
                    .map_err(|e| classify("DeleteAuditSuppression", e))?;
                Ok(StepResult::Done)
            }
            Step::Configure { role_arn, enable, notification } => {
                let mut req = self.client.update_account_audit_configuration().set_role_arn(role_arn.clone());
                for (check, config) in enable {
                    req = req.audit_check_configurations(check, check_config(true, config));
                }
                if let Some(n) = notification {
                    req = req.audit_notification_target_configurations(
                        AuditNotificationType::Sns,
                        AuditNotificationTarget::builder()
                            .target_arn(&n.topic_arn)
                            .role_arn(&n.role_arn)
                            .enabled(n.enabled)
                            .build(),
                    );
                }
                req.send().await.map_err(|e| classify("UpdateAccountAuditConfiguration", e))?;
                Ok(StepResult::Done)
            }
            Step::DisableChecks { checks } => {
                let mut req = self.client.update_account_audit_configuration();
                for check in checks {
                    req = req.audit_check_configurations(check, check_config(false, &BTreeMap::new()));
                }
                req.send().await.map_err(|e| classify("UpdateAccountAuditConfiguration", e))?;
                Ok(StepResult::Done)
            }
            Step::CreateAudit { name, def } => {
                let mut req = self
                    .client
                    .create_scheduled_audit()
                    .scheduled_audit_name(name)
                    .frequency(AuditFrequency::from(def.frequency.as_str()))
                    .set_day_of_week(def.day_of_week.as_deref().map(SdkDayOfWeek::from))
                    .set_day_of_month(def.day_of_month.clone())
                    .set_target_check_names(Some(def.targets.clone()));
                for (k, v) in tags {
                    req = req
                        .tags(Tag::builder().key(k).value(v).build().map_err(|e| PortError::Permanent(e.to_string()))?);
                }
                match req.send().await {
                    Ok(out) => Ok(StepResult::AuditArn(out.scheduled_audit_arn().unwrap_or_default().to_owned())),
                    Err(e) => {
                        let already = e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception());
                        if !already {
                            return Err(classify("CreateScheduledAudit", e));
                        }
                        // A retry after a lost response: fine if it is the same audit.
                        let same = self.describe_audit(name).await?.as_ref() == Some(def);
                        if same {
                            Ok(StepResult::Done)
                        } else {
                            Err(PortError::Permanent(format!(
                                "scheduled audit '{name}' already exists with another definition"
                            )))
                        }
                    }
                }
            }
            Step::UpdateAudit { name, def } => {
                let out = self
                    .client
                    .update_scheduled_audit()
                    .scheduled_audit_name(name)
                    .frequency(AuditFrequency::from(def.frequency.as_str()))
                    .set_day_of_week(def.day_of_week.as_deref().map(SdkDayOfWeek::from))
                    .set_day_of_month(def.day_of_month.clone())
                    .set_target_check_names(Some(def.targets.clone()))
                    .send()
                    .await
                    .map_err(|e| classify("UpdateScheduledAudit", e))?;
                Ok(StepResult::AuditArn(out.scheduled_audit_arn().unwrap_or_default().to_owned()))
            }
            Step::DeleteAudit { name } => {
                match self.client.delete_scheduled_audit().scheduled_audit_name(name).send().await {
                    Ok(_) => Ok(StepResult::Done),
                    Err(e) => match classify("DeleteScheduledAudit", e) {
                        PortError::NotFound(_) => Ok(StepResult::Done),
                        other => Err(other),
                    },
                }
            }
            Step::StartOnDemandAudit { checks } => {
                let out = self
                    .client
                    .start_on_demand_audit_task()
                    .set_target_check_names(Some(checks.clone()))
                    .customize()
                    // Not idempotent: never let the SDK retry it (a retry could start a second audit).
                    .config_override(
                        aws_sdk_iot::config::Config::builder()
                            .retry_config(aws_sdk_iot::config::retry::RetryConfig::disabled()),
                    )
                    .send()
                    .await
                    .map_err(|e| classify("StartOnDemandAuditTask", e))?;
                Ok(StepResult::TaskId(out.task_id().unwrap_or_default().to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_to_the_nearest_millisecond() {
        let parsed = DateTime::from_fractional_secs(1_796_001_132, 0.796_999_931);
        assert_eq!(ms(Some(&parsed)), Some(1_796_001_132_797));
        assert_eq!(ms(Some(&DateTime::from_millis(1_796_001_132_797))), Some(1_796_001_132_797));
        assert_eq!(ms(Some(&DateTime::from_millis(-1))), Some(-1));
    }
}
