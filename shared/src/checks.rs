//! The catalog of audit checks this build knows: resource type, default severity, the reason a
//! resource fails the check, what the check may be configured with, and what to do about it.
//!
//! Check names are plain strings in the API and the set grows, so [`CheckName`] is a string
//! newtype and [`catalog`] answers `None` for a name it does not know; callers carry such names
//! through unchanged.

use crate::vocabulary::{ResourceType, Severity};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An audit check name as the API spells it (e.g. `LOGGING_DISABLED_CHECK`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckName(pub String);

impl CheckName {
    /// Wraps a wire string.
    pub fn new(s: impl Into<String>) -> Self {
        CheckName(s.into())
    }
    /// The wire string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// This check's catalog entry, when the build knows it.
    pub fn spec(&self) -> Option<&'static CheckSpec> {
        catalog(&self.0)
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for CheckName {
    fn from(s: &str) -> Self {
        CheckName(s.to_owned())
    }
}

/// What the catalog knows of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// Wire name.
    pub name: &'static str,
    /// Type of the non-compliant resource a finding of this check names.
    pub resource_type: ResourceType,
    /// Severity of this check's findings (AWS's documented severity, where we know it).
    pub severity: Severity,
    /// `reasonForNonComplianceCode` of a finding.
    pub reason_code: &'static str,
    /// `reasonForNonCompliance` of a finding.
    pub reason: &'static str,
    /// The `configuration` key this check takes, with its allowed range in days.
    pub config: Option<CheckConfigSpec>,
    /// True when the check needs collected connection data before its first result.
    pub needs_connection_data: bool,
    /// One line on how to fix what this check flags, for digests.
    pub remedy: &'static str,
}

/// A configuration key a check accepts and the numeric range of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckConfigSpec {
    /// `ConfigName`, e.g. `CERT_AGE_THRESHOLD_IN_DAYS`.
    pub key: &'static str,
    /// Smallest accepted value.
    pub min: u32,
    /// Largest accepted value.
    pub max: u32,
    /// Value AWS uses when none is configured.
    pub default: u32,
}

macro_rules! check {
    ($name:literal, $rt:ident, $sev:ident, $code:literal, $reason:literal, $remedy:literal) => {
        check!($name, $rt, $sev, $code, $reason, $remedy, None, false)
    };
    ($name:literal, $rt:ident, $sev:ident, $code:literal, $reason:literal, $remedy:literal, $config:expr, $conn:literal) => {
        CheckSpec {
            name: $name,
            resource_type: ResourceType::$rt,
            severity: Severity::$sev,
            reason_code: $code,
            reason: $reason,
            config: $config,
            needs_connection_data: $conn,
            remedy: $remedy,
        }
    };
}

/// The 17 checks known today, in the reference's order.
pub static CHECKS: &[CheckSpec] = &[
    check!("AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", CognitoIdentityPool, Critical,
        "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
        "The authenticated Cognito role has a policy that allows broad access to IoT data plane actions.",
        "Narrow the IAM policy of the pool's authenticated role to the topics and things it needs."),
    check!("CA_CERTIFICATE_EXPIRING_CHECK", CaCertificate, Medium,
        "CERTIFICATE_APPROACHING_EXPIRATION",
        "CA certificate is expiring within 30 days or has expired.",
        "Register a new CA certificate and move device registration to it before this one expires."),
    check!("CA_CERTIFICATE_KEY_QUALITY_CHECK", CaCertificate, Critical,
        "CERTIFICATE_KEY_VULNERABILITY_DETECTED",
        "CA certificate key is vulnerable (e.g. RSA shorter than 2048 bits).",
        "Replace the CA with one using a strong key and re-issue the device certificates it signed."),
    check!("CONFLICTING_CLIENT_IDS_CHECK", ClientId, High,
        "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS",
        "Multiple connected devices are using the same client ID.",
        "Give every device a unique MQTT client id (e.g. its thing name) and look for cloned devices.",
        None, true),
    check!("DEVICE_CERTIFICATE_EXPIRING_CHECK", DeviceCertificate, Medium,
        "CERTIFICATE_APPROACHING_EXPIRATION",
        "Certificate is expiring within the configured threshold or has expired.",
        "Rotate the certificate (e.g. with fleet provisioning or a job) before it expires.",
        Some(CheckConfigSpec { key: "CERT_EXPIRATION_THRESHOLD_IN_DAYS", min: 30, max: 3652, default: 30 }), false),
    check!("DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", DeviceCertificate, Critical,
        "CERTIFICATE_KEY_VULNERABILITY_DETECTED",
        "Certificate key is vulnerable (e.g. RSA shorter than 2048 bits).",
        "Rotate the certificate to one with a strong key and revoke the weak one."),
    check!("DEVICE_CERTIFICATE_SHARED_CHECK", DeviceCertificate, Critical,
        "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES",
        "Certificate shared by one or more devices.",
        "Issue one certificate per device; revoke the shared one once devices have their own.",
        None, true),
    check!("IOT_POLICY_OVERLY_PERMISSIVE_CHECK", IotPolicy, Critical,
        "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
        "Policy allows broad access to IoT data plane actions.",
        "Scope the policy's resources to the device's own topics and thing, e.g. with ${iot:Connection.Thing.ThingName}."),
    check!("IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK", RoleAlias, Medium,
        "ALLOWS_ACCESS_TO_UNUSED_SERVICES",
        "Role alias allows access to services that devices have not used recently.",
        "Remove the unused services from the role the alias points to."),
    check!("IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK", RoleAlias, Critical,
        "ALLOWS_BROAD_ACCESS_TO_AWS_SERVICES",
        "Role alias allows broad access to AWS services.",
        "Restrict the aliased role's IAM policy to the actions and resources devices need."),
    check!("LOGGING_DISABLED_CHECK", AccountSettings, Low,
        "LOGGING_DISABLED",
        "AWS IoT logs are not enabled in CloudWatch.",
        "Enable AWS IoT logging to CloudWatch (SetV2LoggingOptions) at least at ERROR level."),
    check!("REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", CaCertificate, Medium,
        "CERTIFICATE_REVOKED_BY_ISSUER",
        "CA certificate is revoked by its issuer but is still active in AWS IoT.",
        "Deactivate the CA certificate in AWS IoT (UpdateCACertificate --new-status INACTIVE)."),
    check!("REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK", DeviceCertificate, Medium,
        "CERTIFICATE_REVOKED_BY_ISSUER",
        "Device certificate is revoked by its CA but is still active in AWS IoT.",
        "Revoke the certificate in AWS IoT (UpdateCertificate --new-status REVOKED)."),
    check!("UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", CognitoIdentityPool, Critical,
        "ALLOWS_ACCESS_TO_IOT_ADMIN_ACTIONS",
        "The unauthenticated Cognito role allows access to IoT actions.",
        "Remove IoT permissions from the pool's unauthenticated role or disable unauthenticated access."),
    check!("DEVICE_CERTIFICATE_AGE_CHECK", DeviceCertificate, Low,
        "CERTIFICATE_PAST_AGE_THRESHOLD",
        "Certificate has been active longer than the configured age threshold.",
        "Rotate long-lived certificates on a schedule.",
        Some(CheckConfigSpec { key: "CERT_AGE_THRESHOLD_IN_DAYS", min: 30, max: 3652, default: 365 }), false),
    check!("INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK", DeviceCertificate, Critical,
        "INTERMEDIATE_CA_REVOKED_BY_ISSUER",
        "Device certificate is active but signed by an intermediate CA that was revoked.",
        "Revoke the device certificates signed by the revoked intermediate CA and re-provision the devices."),
    check!("IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK", IotPolicy, Medium,
        "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT",
        "Policy has a potential misconfiguration (e.g. MQTT wildcards in a Deny statement).",
        "Review the policy statement: wildcards in Deny do not match what they appear to match."),
];

/// The catalog entry of a check name, or `None` for a name this build does not know.
pub fn catalog(name: &str) -> Option<&'static CheckSpec> {
    CHECKS.iter().find(|c| c.name == name)
}

/// What to do about a check that FAILED with `error_code`, for people reading a digest.
pub fn failure_remedy(error_code: &str) -> &'static str {
    match error_code {
        "INSUFFICIENT_PERMISSIONS" => {
            "The audit role lacks a permission this check needs: attach the AWS managed policy \
             AWSIoTDeviceDefenderAudit to the audit role (roleArn of the account audit configuration)."
        }
        "AUDIT_CHECK_DISABLED" => {
            "The check was disabled while the audit ran: enable it again in the account audit \
             configuration, or remove it from the scheduled audit."
        }
        _ => "Look at the check's message in DescribeAuditTask; re-run the audit if the cause was transient.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalog_has_seventeen_distinct_checks() {
        let names: HashSet<_> = CHECKS.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), 17);
        assert!(CHECKS.iter().all(|c| c.name.ends_with("_CHECK")));
    }

    #[test]
    fn unknown_names_are_not_in_the_catalog() {
        assert!(catalog("DEVICE_CERT_APPROACHING_EXPIRATION_CHECK").is_none());
        assert_eq!(CheckName::from("DEVICE_CERTIFICATE_AGE_CHECK").spec().unwrap().severity, Severity::Low);
    }

    #[test]
    fn failure_remedy_names_the_audit_role() {
        assert!(failure_remedy("INSUFFICIENT_PERMISSIONS").contains("audit role"));
    }
}
