//! The audit notification that Device Defender publishes to SNS when a task ends (reference §5).
//!
//! Field names end in `Count` (unlike the API's `…Checks`), `taskStartTime` is epoch
//! **milliseconds**, and `auditDetails` is an array. Unknown fields are ignored; unknown
//! statuses and check names are kept (see [`crate::vocabulary`]).

use crate::checks::CheckName;
use crate::vocabulary::{CheckRunStatus, TaskStatus, TaskType};
use serde::{Deserialize, Serialize};

/// One audit notification message (the JSON inside the SNS `Message` string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditNotification {
    /// 12-digit AWS account id.
    pub account_id: String,
    /// The audit task this notification is about.
    pub task_id: String,
    /// COMPLETED, FAILED or CANCELED.
    pub task_status: TaskStatus,
    /// ON_DEMAND_AUDIT_TASK or SCHEDULED_AUDIT_TASK.
    pub task_type: TaskType,
    /// Present on scheduled tasks only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_audit_name: Option<String>,
    /// Checks that FAILED.
    pub failed_checks_count: u32,
    /// Checks that were CANCELED.
    pub canceled_checks_count: u32,
    /// Checks that found non-compliant resources.
    pub non_compliant_checks_count: u32,
    /// Checks that found nothing.
    pub compliant_checks_count: u32,
    /// All checks of the task (the sum of the four counts above).
    pub total_checks_count: u32,
    /// Task start, epoch milliseconds.
    pub task_start_time: i64,
    /// One entry per check of the task.
    pub audit_details: Vec<NotificationCheckDetail>,
}

/// One check's outcome inside an [`AuditNotification`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationCheckDetail {
    /// The check (not validated against any list: names grow over time).
    pub check_name: CheckName,
    /// FAILED, CANCELED, COMPLETED_COMPLIANT or COMPLETED_NON_COMPLIANT.
    pub check_run_status: CheckRunStatus,
    /// Resources that failed the check.
    pub non_compliant_resources_count: i64,
    /// Resources the check looked at.
    pub total_resources_count: i64,
    /// Of the non-compliant resources, those a suppression covered (AWS documents that the
    /// notification carries a suppressed count per check but not its field name: ours mirrors
    /// DescribeAuditTask's, and it is optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_non_compliant_resources_count: Option<i64>,
    /// Only on failed checks, e.g. INSUFFICIENT_PERMISSIONS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Only on failed checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example message of reference §5, verbatim.
    const REFERENCE_EXAMPLE: &str = r#"{
      "accountId": "123456789012",
      "taskId": "7f3c9e2b14a0d6c85e1b2a9f04d3c6e1",
      "taskStatus": "COMPLETED",
      "taskType": "SCHEDULED_AUDIT_TASK",
      "scheduledAuditName": "weekly-cert-audit",
      "failedChecksCount": 1,
      "canceledChecksCount": 0,
      "nonCompliantChecksCount": 1,
      "compliantChecksCount": 1,
      "totalChecksCount": 3,
      "taskStartTime": 1717488000123,
      "auditDetails": [
        {"checkName": "DEVICE_CERTIFICATE_EXPIRING_CHECK", "checkRunStatus": "COMPLETED_NON_COMPLIANT",
         "nonCompliantResourcesCount": 4, "totalResourcesCount": 250},
        {"checkName": "LOGGING_DISABLED_CHECK", "checkRunStatus": "COMPLETED_COMPLIANT",
         "nonCompliantResourcesCount": 0, "totalResourcesCount": 1},
        {"checkName": "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", "checkRunStatus": "FAILED",
         "nonCompliantResourcesCount": 0, "totalResourcesCount": 0,
         "errorCode": "INSUFFICIENT_PERMISSIONS",
         "message": "The audit role is not allowed to call cognito-identity:GetIdentityPoolRoles."}
      ]
    }"#;

    #[test]
    fn parses_the_reference_example_and_writes_it_back_identically() {
        let n: AuditNotification = serde_json::from_str(REFERENCE_EXAMPLE).unwrap();
        assert_eq!(n.task_status, TaskStatus::Completed);
        assert_eq!(n.task_type, TaskType::Scheduled);
        assert_eq!(n.task_start_time, 1_717_488_000_123);
        assert_eq!(n.audit_details[2].error_code.as_deref(), Some("INSUFFICIENT_PERMISSIONS"));
        let back: serde_json::Value = serde_json::to_value(&n).unwrap();
        let orig: serde_json::Value = serde_json::from_str(REFERENCE_EXAMPLE).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn unknown_fields_checks_and_statuses_are_tolerated() {
        let json = r#"{"accountId":"123456789012","taskId":"t1","taskStatus":"PAUSED","taskType":"ON_DEMAND_AUDIT_TASK",
            "failedChecksCount":0,"canceledChecksCount":0,"nonCompliantChecksCount":0,"compliantChecksCount":1,
            "totalChecksCount":1,"taskStartTime":1,"newField":{"x":1},
            "auditDetails":[{"checkName":"QUANTUM_KEY_CHECK","checkRunStatus":"COMPLETED_SOMEHOW",
            "nonCompliantResourcesCount":0,"totalResourcesCount":3}]}"#;
        let n: AuditNotification = serde_json::from_str(json).unwrap();
        assert!(n.task_status.is_unknown());
        assert!(n.audit_details[0].check_run_status.is_unknown());
        assert!(n.audit_details[0].check_name.spec().is_none());
        assert!(n.scheduled_audit_name.is_none());
    }
}
