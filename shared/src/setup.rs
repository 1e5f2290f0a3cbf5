//! The audit setup as code: the desired setup (custom resource properties), the actual one
//! (read from the API), and the **plan** that turns one into the other, validated before
//! anything is touched and ordered the way the API accepts:
//! enable checks and set the role and target → create/update audits → delete removed audits →
//! disable checks (only those no remaining audit targets) → start an on-demand audit.
//!
//! Ownership: this stack only updates or deletes scheduled audits it created (recorded by the
//! caller); an audit with a desired name that it does not own is an error, never overwritten.

use crate::checks::catalog;
use crate::schedule::Schedule;
use crate::suppression::{ActualSuppression, DesiredSuppression, SuppressionPlan};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A property that was wrong, named by its path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SetupError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> SetupError {
    SetupError { field: field.into(), message: message.into() }
}

/// What to do with enabled checks the template does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnlistedChecks {
    Keep,
    Disable,
}

/// What a stack deletion does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnDelete {
    DeleteOwnedAudits,
    Retain,
}

/// The SNS notification target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationTarget {
    pub topic_arn: String,
    pub role_arn: String,
    pub enabled: bool,
}

/// A scheduled audit's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditDef {
    pub frequency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_week: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_month: Option<String>,
    /// Sorted, without duplicates.
    pub targets: Vec<String>,
}

impl AuditDef {
    /// Validated schedule.
    pub fn schedule(&self) -> Result<Schedule, crate::ScheduleError> {
        Schedule::from_wire(&self.frequency, self.day_of_month.as_deref(), self.day_of_week.as_deref())
    }
}

/// The desired setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredSetup {
    pub audit_role_arn: String,
    /// Check → configuration (e.g. `CERT_EXPIRATION_THRESHOLD_IN_DAYS` → `"30"`).
    pub checks: BTreeMap<String, BTreeMap<String, String>>,
    pub unlisted_checks: UnlistedChecks,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationTarget>,
    pub scheduled_audits: BTreeMap<String, AuditDef>,
    pub on_delete: OnDelete,
    pub start_on_demand_audit: bool,
    /// Audit finding suppressions this stack declares (see [`crate::suppression`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressions: Vec<DesiredSuppression>,
}

/// One check's actual state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckState {
    pub enabled: bool,
    pub configuration: BTreeMap<String, String>,
}

impl CheckState {
    /// Enabled, with the declared configuration (an empty declaration accepts any).
    pub fn matches(&self, declared: &BTreeMap<String, String>) -> bool {
        self.enabled && (declared.is_empty() || self.configuration == *declared)
    }
}

/// The account's actual setup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActualSetup {
    pub role_arn: Option<String>,
    pub checks: BTreeMap<String, CheckState>,
    pub notification: Option<NotificationTarget>,
    pub audits: BTreeMap<String, AuditDef>,
    /// Scheduled audit name → ARN.
    #[serde(default)]
    pub audit_arns: BTreeMap<String, String>,
    /// Every suppression of the account, by [`crate::suppression::suppression_key`].
    #[serde(default)]
    pub suppressions: BTreeMap<String, ActualSuppression>,
}

/// What config-sync remembers per stack: the last applied desired setup and the audits it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupRecord {
    pub desired: DesiredSetup,
    pub owned: BTreeSet<String>,
    /// Suppressions this stack created (by key): suppressions have no ARN to tag.
    #[serde(default)]
    pub owned_suppressions: BTreeSet<String>,
    pub physical_id: String,
    /// Epoch milliseconds.
    pub applied_at: i64,
}

/// One API step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum Step {
    /// UpdateAccountAuditConfiguration: role, checks to enable (with configuration), target.
    #[serde(rename_all = "camelCase")]
    Configure {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role_arn: Option<String>,
        enable: BTreeMap<String, BTreeMap<String, String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notification: Option<NotificationTarget>,
    },
    CreateAudit {
        name: String,
        def: AuditDef,
    },
    UpdateAudit {
        name: String,
        def: AuditDef,
    },
    DeleteAudit {
        name: String,
    },
    /// UpdateAccountAuditConfiguration with `enabled: false`, last.
    DisableChecks {
        checks: Vec<String>,
    },
    StartOnDemandAudit {
        checks: Vec<String>,
    },
    /// CreateAuditSuppression.
    CreateSuppression {
        suppression: DesiredSuppression,
    },
    /// UpdateAuditSuppression: the declared expiry (or indefinitely) and reason.
    UpdateSuppression {
        suppression: DesiredSuppression,
    },
    /// DeleteAuditSuppression.
    #[serde(rename_all = "camelCase")]
    DeleteSuppression {
        check_name: String,
        resource: BTreeMap<String, String>,
    },
}

/// An ordered, validated plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Things left alone on purpose, said once.
    pub warnings: Vec<String>,
    /// Audits this stack owns once the plan ran.
    pub owned_after: BTreeSet<String>,
    /// Suppressions this stack owns once the plan ran.
    #[serde(default)]
    pub owned_suppressions_after: BTreeSet<String>,
}

impl Plan {
    /// Adds the suppression steps after the configuration and audit steps (a suppression
    /// needs its check enabled) and before checks are disabled or an audit is started.
    pub fn add_suppressions(&mut self, s: SuppressionPlan) {
        let at = self
            .steps
            .iter()
            .position(|st| matches!(st, Step::DisableChecks { .. } | Step::StartOnDemandAudit { .. }))
            .unwrap_or(self.steps.len());
        self.steps.splice(at..at, s.steps);
        self.warnings.extend(s.warnings);
        self.owned_suppressions_after = s.owned_after;
    }

    /// True when nothing needs to change (ignoring a requested on-demand audit).
    pub fn is_noop(&self) -> bool {
        self.steps.iter().all(|s| matches!(s, Step::StartOnDemandAudit { .. }))
    }
}

// ------------------------------------------------------------------- parsing the properties

fn as_bool(field: &str, v: Option<&Value>, default: bool) -> Result<bool, SetupError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" | "" => Ok(false),
            _ => Err(err(field, format!("'{s}' is not true or false"))),
        },
        Some(other) => Err(err(field, format!("{other} is not true or false"))),
    }
}

fn as_str<'a>(field: &str, v: Option<&'a Value>) -> Result<Option<&'a str>, SetupError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err(err(field, format!("{other} is not a string"))),
    }
}

/// A list given as a JSON list or as one comma-separated string (CloudFormation passes both).
fn as_list(field: &str, v: Option<&Value>) -> Result<Vec<Value>, SetupError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(Value::String(s)) => {
            Ok(s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(|x| Value::String(x.into())).collect())
        }
        Some(other) => Err(err(field, format!("{other} is not a list"))),
    }
}

/// A required IAM role ARN.
fn role_arn<'a>(field: &str, v: Option<&'a Value>) -> Result<&'a str, SetupError> {
    let role = as_str(field, v)?.ok_or_else(|| err(field, "is required"))?;
    if !(20..=2048).contains(&role.len()) || !role.starts_with("arn:") {
        return Err(err(field, format!("'{role}' is not an IAM role ARN")));
    }
    Ok(role)
}

fn check_name(field: &str, v: &Value) -> Result<String, SetupError> {
    let name = match v {
        Value::String(s) => s.trim().to_owned(),
        other => return Err(err(field, format!("{other} is not a check name"))),
    };
    if catalog(&name).is_none() {
        return Err(err(field, format!("'{name}' is not a known audit check")));
    }
    Ok(name)
}

/// The properties CloudFormation sends in `ResourceProperties`: the custom resource's own
/// (`ServiceToken`, `ServiceTimeout`, which CloudFormation passes along and config-sync ignores)
/// and the audit setup's.
const PROPERTIES: [&str; 10] = [
    "ServiceToken",
    "ServiceTimeout",
    "AuditRoleArn",
    "Checks",
    "UnlistedChecks",
    "NotificationTarget",
    "ScheduledAudits",
    "OnDelete",
    "StartOnDemandAudit",
    "Suppressions",
];

/// Parses the custom resource's properties (CloudFormation passes scalars as strings).
pub fn parse_desired(props: &Value) -> Result<DesiredSetup, SetupError> {
    let Value::Object(p) = props else { return Err(err("Properties", "must be an object")) };
    if let Some(unknown) = p.keys().find(|k| !PROPERTIES.contains(&k.as_str())) {
        return Err(err(unknown.clone(), format!("unknown property; expected one of {}", PROPERTIES[2..].join(", "))));
    }
    let role = role_arn("AuditRoleArn", p.get("AuditRoleArn"))?;
    let mut checks = BTreeMap::new();
    for (i, c) in as_list("Checks", p.get("Checks"))?.iter().enumerate() {
        let field = format!("Checks[{i}]");
        let (name, config) = match c {
            Value::Object(o) => {
                let name = check_name(&format!("{field}.Name"), o.get("Name").unwrap_or(&Value::Null))?;
                let mut config = BTreeMap::new();
                if let Some(Value::Object(cfg)) = o.get("Configuration") {
                    let spec = catalog(&name).and_then(|s| s.config);
                    for (k, v) in cfg {
                        let f = format!("{field}.Configuration.{k}");
                        let Some(spec) = spec.filter(|s| s.key == k) else {
                            return Err(err(f, format!("{name} does not take this configuration")));
                        };
                        let text = match v {
                            Value::String(s) => s.trim().to_owned(),
                            Value::Number(n) => n.to_string(),
                            other => return Err(err(f, format!("{other} is not a number of days"))),
                        };
                        match text.parse::<u32>() {
                            Ok(d) if (spec.min..=spec.max).contains(&d) => {}
                            _ => {
                                return Err(err(
                                    f,
                                    format!("'{text}' is not a number of days from {} to {}", spec.min, spec.max),
                                ))
                            }
                        }
                        config.insert(k.clone(), text);
                    }
                }
                (name, config)
            }
            other => (check_name(&field, other)?, BTreeMap::new()),
        };
        checks.insert(name, config);
    }
    if checks.is_empty() {
        return Err(err("Checks", "must list at least one audit check"));
    }
    let unlisted_checks = match as_str("UnlistedChecks", p.get("UnlistedChecks"))? {
        None | Some("Keep") => UnlistedChecks::Keep,
        Some("Disable") => UnlistedChecks::Disable,
        Some(o) => return Err(err("UnlistedChecks", format!("'{o}' is not Keep or Disable"))),
    };
    let on_delete = match as_str("OnDelete", p.get("OnDelete"))? {
        None | Some("DeleteOwnedAudits") => OnDelete::DeleteOwnedAudits,
        Some("Retain") => OnDelete::Retain,
        Some(o) => return Err(err("OnDelete", format!("'{o}' is not DeleteOwnedAudits or Retain"))),
    };
    let notification = match p.get("NotificationTarget") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => {
            let topic = as_str("NotificationTarget.TopicArn", t.get("TopicArn"))?
                .ok_or_else(|| err("NotificationTarget.TopicArn", "is required"))?;
            if !topic.starts_with("arn:") || topic.len() > 2048 {
                return Err(err("NotificationTarget.TopicArn", format!("'{topic}' is not an SNS topic ARN")));
            }
            let role = role_arn("NotificationTarget.RoleArn", t.get("RoleArn"))?;
            Some(NotificationTarget {
                topic_arn: topic.into(),
                role_arn: role.into(),
                enabled: as_bool("NotificationTarget.Enabled", t.get("Enabled"), true)?,
            })
        }
        Some(other) => return Err(err("NotificationTarget", format!("{other} is not an object"))),
    };
    let mut scheduled_audits = BTreeMap::new();
    for (i, a) in as_list("ScheduledAudits", p.get("ScheduledAudits"))?.iter().enumerate() {
        let field = format!("ScheduledAudits[{i}]");
        let Value::Object(a) = a else { return Err(err(field, "must be an object")) };
        let name = as_str(&format!("{field}.Name"), a.get("Name"))?
            .ok_or_else(|| err(format!("{field}.Name"), "is required"))?;
        if name.is_empty()
            || name.len() > 128
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(err(format!("{field}.Name"), format!("'{name}' must be 1-128 characters of [a-zA-Z0-9_-]")));
        }
        let def = AuditDef {
            frequency: as_str(&format!("{field}.Frequency"), a.get("Frequency"))?
                .ok_or_else(|| err(format!("{field}.Frequency"), "is required"))?
                .to_owned(),
            day_of_week: as_str(&format!("{field}.DayOfWeek"), a.get("DayOfWeek"))?.map(str::to_owned),
            day_of_month: as_str(&format!("{field}.DayOfMonth"), a.get("DayOfMonth"))?.map(str::to_owned),
            targets: {
                let mut t = BTreeSet::new();
                for (j, c) in as_list(&format!("{field}.TargetChecks"), a.get("TargetChecks"))?.iter().enumerate() {
                    let f = format!("{field}.TargetChecks[{j}]");
                    let n = check_name(&f, c)?;
                    if !checks.contains_key(&n) {
                        return Err(err(
                            f,
                            format!(
                                "'{n}' is not in Checks: a scheduled audit can only target checks this setup enables"
                            ),
                        ));
                    }
                    t.insert(n);
                }
                if t.is_empty() {
                    return Err(err(format!("{field}.TargetChecks"), "must name at least one check"));
                }
                t.into_iter().collect()
            },
        };
        def.schedule().map_err(|e| err(&field, e.to_string()))?;
        if scheduled_audits.insert(name.to_owned(), def).is_some() {
            return Err(err(format!("{field}.Name"), format!("'{name}' is listed twice")));
        }
    }
    let suppressions = crate::suppression::parse(p.get("Suppressions"), &checks)?;
    Ok(DesiredSetup {
        audit_role_arn: role.to_owned(),
        checks,
        unlisted_checks,
        notification,
        scheduled_audits,
        on_delete,
        start_on_demand_audit: as_bool("StartOnDemandAudit", p.get("StartOnDemandAudit"), false)?,
        suppressions,
    })
}

// ------------------------------------------------------------------- planning

/// The plan that makes `actual` match `desired`. `owned` are the audits this stack created;
/// `max_audits` is the account quota (5). Fails, naming the field, before anything is touched.
pub fn plan_apply(
    actual: &ActualSetup,
    desired: &DesiredSetup,
    owned: &BTreeSet<String>,
    start_audit: bool,
    max_audits: usize,
) -> Result<Plan, SetupError> {
    let mut plan = Plan::default();
    // Names taken by audits this stack does not own.
    for (i, name) in desired.scheduled_audits.keys().enumerate() {
        if actual.audits.contains_key(name) && !owned.contains(name) {
            return Err(err(
                format!("ScheduledAudits[{i}].Name"),
                format!("'{name}' is taken by a scheduled audit this stack does not own; rename it here or delete that audit"),
            ));
        }
    }
    let foreign: Vec<&String> = actual.audits.keys().filter(|n| !owned.contains(*n)).collect();
    if foreign.len() + desired.scheduled_audits.len() > max_audits {
        return Err(err(
            "ScheduledAudits",
            format!(
                "{} audits here plus {} other scheduled audits in the account exceed the quota of {max_audits}",
                desired.scheduled_audits.len(),
                foreign.len()
            ),
        ));
    }
    // 1. Configure.
    let enable: BTreeMap<String, BTreeMap<String, String>> = desired
        .checks
        .iter()
        .filter(|(name, config)| !actual.checks.get(*name).is_some_and(|c| c.matches(config)))
        .map(|(n, c)| (n.clone(), c.clone()))
        .collect();
    let role =
        (actual.role_arn.as_deref() != Some(desired.audit_role_arn.as_str())).then(|| desired.audit_role_arn.clone());
    let notification = desired.notification.clone().filter(|n| actual.notification.as_ref() != Some(n));
    if !enable.is_empty() || role.is_some() || notification.is_some() {
        plan.steps.push(Step::Configure { role_arn: role, enable, notification });
    }
    // 2. Create or update.
    for (name, def) in &desired.scheduled_audits {
        match actual.audits.get(name) {
            None => plan.steps.push(Step::CreateAudit { name: name.clone(), def: def.clone() }),
            Some(current) if current != def => {
                plan.steps.push(Step::UpdateAudit { name: name.clone(), def: def.clone() })
            }
            Some(_) => {}
        }
        plan.owned_after.insert(name.clone());
    }
    // 3. Delete owned audits no longer declared.
    for name in owned {
        if !desired.scheduled_audits.contains_key(name) && actual.audits.contains_key(name) {
            plan.steps.push(Step::DeleteAudit { name: name.clone() });
        }
    }
    // 4. Disable unlisted checks that no remaining audit targets.
    if desired.unlisted_checks == UnlistedChecks::Disable {
        // Checks the declared audits target are declared (parse_desired checks it), so only
        // audits this stack does not own can keep an unlisted check enabled.
        let mut remaining_targets: BTreeMap<&str, &str> = BTreeMap::new();
        for n in &foreign {
            actual.audits[*n].targets.iter().for_each(|t| {
                remaining_targets.insert(t, n);
            });
        }
        let mut disable = Vec::new();
        for (check, state) in &actual.checks {
            if !state.enabled || desired.checks.contains_key(check) {
                continue;
            }
            match remaining_targets.get(check.as_str()) {
                Some(audit) => plan.warnings.push(format!(
                    "{check} stays enabled: scheduled audit '{audit}' (not owned by this stack) targets it"
                )),
                None => disable.push(check.clone()),
            }
        }
        if !disable.is_empty() {
            plan.steps.push(Step::DisableChecks { checks: disable });
        }
    }
    // 5. A first audit right away.
    if start_audit && desired.start_on_demand_audit {
        plan.steps.push(Step::StartOnDemandAudit { checks: desired.checks.keys().cloned().collect() });
    }
    Ok(plan)
}

/// The plan of a stack deletion: delete owned audits (or nothing, when retained).
pub fn plan_delete(actual: &ActualSetup, owned: &BTreeSet<String>, on_delete: OnDelete) -> Plan {
    let mut plan = Plan::default();
    if on_delete == OnDelete::DeleteOwnedAudits {
        for name in owned.iter().filter(|n| actual.audits.contains_key(*n)) {
            plan.steps.push(Step::DeleteAudit { name: name.clone() });
        }
    } else {
        plan.owned_after = owned.clone();
    }
    plan
}

/// Differences between the account and the last applied setup, one sentence each.
pub fn drift(actual: &ActualSetup, desired: &DesiredSetup) -> Vec<String> {
    let mut out = Vec::new();
    for (check, config) in &desired.checks {
        match actual.checks.get(check) {
            Some(c) if c.matches(config) => {}
            Some(c) if c.enabled => {
                out.push(format!("check {check}: configuration is {:?}, declared {:?}", c.configuration, config))
            }
            _ => out.push(format!("check {check} is disabled, declared enabled")),
        }
    }
    if actual.role_arn.as_deref() != Some(desired.audit_role_arn.as_str()) {
        out.push(format!("audit role is {:?}, declared {}", actual.role_arn, desired.audit_role_arn));
    }
    if let Some(n) = &desired.notification {
        if actual.notification.as_ref() != Some(n) {
            out.push(format!("SNS notification target is {:?}, declared {:?}", actual.notification, n));
        }
    }
    for (name, def) in &desired.scheduled_audits {
        match actual.audits.get(name) {
            None => out.push(format!("scheduled audit '{name}' is missing")),
            Some(a) if a != def => out.push(format!("scheduled audit '{name}' is {a:?}, declared {def:?}")),
            _ => {}
        }
    }
    if desired.unlisted_checks == UnlistedChecks::Disable {
        for (check, s) in &actual.checks {
            if s.enabled && !desired.checks.contains_key(check) {
                out.push(format!("check {check} is enabled, not declared"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props() -> Value {
        json!({
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:config-sync",
            "ServiceTimeout": "1200",
            "AuditRoleArn": "arn:aws:iam::123456789012:role/audit",
            "Checks": ["LOGGING_DISABLED_CHECK", {"Name": "DEVICE_CERTIFICATE_EXPIRING_CHECK", "Configuration": {"CERT_EXPIRATION_THRESHOLD_IN_DAYS": "60"}}],
            "UnlistedChecks": "Disable",
            "NotificationTarget": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:audit", "RoleArn": "arn:aws:iam::123456789012:role/sns", "Enabled": "true"},
            "ScheduledAudits": [{"Name": "daily", "Frequency": "DAILY", "TargetChecks": "LOGGING_DISABLED_CHECK,DEVICE_CERTIFICATE_EXPIRING_CHECK"}],
            "StartOnDemandAudit": "true"
        })
    }

    #[test]
    fn parses_cloudformation_strings() {
        let d = parse_desired(&props()).unwrap();
        assert_eq!(d.checks.len(), 2);
        assert_eq!(d.checks["DEVICE_CERTIFICATE_EXPIRING_CHECK"]["CERT_EXPIRATION_THRESHOLD_IN_DAYS"], "60");
        assert!(d.start_on_demand_audit);
        assert_eq!(d.scheduled_audits["daily"].targets.len(), 2);
        assert_eq!(d.on_delete, OnDelete::DeleteOwnedAudits);
    }

    #[test]
    fn bad_properties_name_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"Checks": ["LOGGING_DISABLED_CHECK"]}), "AuditRoleArn"),
            (json!({"AuditRoleArn": "arn:aws:iam::123456789012:role/audit", "Checks": ["NOPE_CHECK"]}), "Checks[0]"),
            (json!({"AuditRoleArn": "arn:aws:iam::123456789012:role/audit", "Checks": []}), "Checks"),
            (
                json!({"AuditRoleArn": "arn:aws:iam::123456789012:role/audit", "Checks": ["LOGGING_DISABLED_CHECK"], "Bogus": 1}),
                "Bogus",
            ),
            (
                json!({"AuditRoleArn": "arn:aws:iam::123456789012:role/audit", "Checks": ["LOGGING_DISABLED_CHECK"],
                "ScheduledAudits": [{"Name": "m", "Frequency": "MONTHLY", "TargetChecks": ["LOGGING_DISABLED_CHECK"]}]}),
                "ScheduledAudits[0]",
            ),
            (
                json!({"AuditRoleArn": "arn:aws:iam::123456789012:role/audit", "Checks": ["LOGGING_DISABLED_CHECK"],
                "ScheduledAudits": [{"Name": "m", "Frequency": "DAILY", "TargetChecks": ["CA_CERTIFICATE_EXPIRING_CHECK"]}]}),
                "ScheduledAudits[0].TargetChecks[0]",
            ),
            (
                json!({"AuditRoleArn": "arn:aws:iam::123456789012:role/audit", "Checks": ["LOGGING_DISABLED_CHECK"], "StartOnDemandAudit": "maybe"}),
                "StartOnDemandAudit",
            ),
            (
                json!({"AuditRoleArn": "arn:aws:iam::123456789012:role/audit",
                "Checks": [{"Name": "DEVICE_CERTIFICATE_AGE_CHECK", "Configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "5"}}]}),
                "Checks[0].Configuration.CERT_AGE_THRESHOLD_IN_DAYS",
            ),
        ];
        for (p, field) in cases {
            let e = parse_desired(&p).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }

    #[test]
    fn plan_from_an_empty_account_is_ordered() {
        let mut with_suppression = props();
        with_suppression["Suppressions"] = json!([{ "Check": "LOGGING_DISABLED_CHECK",
            "Resource": { "account": "123456789012" }, "Reason": "logging goes elsewhere", "Indefinite": "true" }]);
        let d = parse_desired(&with_suppression).unwrap();
        let mut p = plan_apply(&ActualSetup::default(), &d, &BTreeSet::new(), true, 5).unwrap();
        let now = 1_768_435_200_000;
        p.add_suppressions(crate::suppression::plan(&BTreeMap::new(), &d.suppressions, &BTreeSet::new(), now).unwrap());
        assert_eq!(p.owned_suppressions_after.len(), 1);
        let kinds: Vec<&str> = p
            .steps
            .iter()
            .map(|s| match s {
                Step::Configure { .. } => "configure",
                Step::CreateAudit { .. } => "create",
                Step::UpdateAudit { .. } => "update",
                Step::DeleteAudit { .. } => "delete",
                Step::DisableChecks { .. } => "disable",
                Step::StartOnDemandAudit { .. } => "start",
                Step::CreateSuppression { .. } | Step::UpdateSuppression { .. } | Step::DeleteSuppression { .. } => {
                    "suppress"
                }
            })
            .collect();
        assert_eq!(kinds, ["configure", "create", "suppress", "start"], "suppressions once their check is enabled");
        assert!(p.owned_after.contains("daily"));
    }

    #[test]
    fn plan_respects_ownership_quota_and_remaining_targets() {
        let d = parse_desired(&props()).unwrap();
        let mut actual = ActualSetup::default();
        actual.audits.insert("daily".into(), d.scheduled_audits["daily"].clone());
        let e = plan_apply(&actual, &d, &BTreeSet::new(), false, 5).unwrap_err();
        assert!(e.message.contains("does not own"), "{e}");
        // A foreign audit keeps its check enabled even with UnlistedChecks=Disable.
        let mut actual = ActualSetup {
            role_arn: Some(d.audit_role_arn.clone()),
            notification: d.notification.clone(),
            ..Default::default()
        };
        for c in ["LOGGING_DISABLED_CHECK", "CA_CERTIFICATE_EXPIRING_CHECK", "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"] {
            actual.checks.insert(c.into(), CheckState { enabled: true, configuration: BTreeMap::new() });
        }
        actual.checks.insert(
            "DEVICE_CERTIFICATE_EXPIRING_CHECK".into(),
            CheckState {
                enabled: true,
                configuration: BTreeMap::from([("CERT_EXPIRATION_THRESHOLD_IN_DAYS".into(), "60".into())]),
            },
        );
        actual.audits.insert(
            "theirs".into(),
            AuditDef {
                frequency: "DAILY".into(),
                day_of_week: None,
                day_of_month: None,
                targets: vec!["CA_CERTIFICATE_EXPIRING_CHECK".into()],
            },
        );
        actual.audits.insert("old".into(), actual.audits["theirs"].clone());
        let owned = BTreeSet::from(["old".to_string()]);
        let p = plan_apply(&actual, &d, &owned, false, 5).unwrap();
        assert_eq!(
            p.steps,
            vec![
                Step::CreateAudit { name: "daily".into(), def: d.scheduled_audits["daily"].clone() },
                Step::DeleteAudit { name: "old".into() },
                Step::DisableChecks { checks: vec!["IOT_POLICY_OVERLY_PERMISSIVE_CHECK".into()] },
            ]
        );
        assert_eq!(p.warnings.len(), 1);
        // Quota: four foreign audits plus two declared.
        let mut full = ActualSetup::default();
        for i in 0..4 {
            full.audits.insert(format!("f{i}"), actual.audits["theirs"].clone());
        }
        let mut two = d.clone();
        two.scheduled_audits.insert("second".into(), d.scheduled_audits["daily"].clone());
        assert_eq!(plan_apply(&full, &two, &BTreeSet::new(), false, 5).unwrap_err().field, "ScheduledAudits");
    }

    #[test]
    fn drift_names_what_changed() {
        let d = parse_desired(&props()).unwrap();
        let mut actual = ActualSetup {
            role_arn: Some(d.audit_role_arn.clone()),
            notification: d.notification.clone(),
            ..Default::default()
        };
        actual
            .checks
            .insert("LOGGING_DISABLED_CHECK".into(), CheckState { enabled: false, configuration: BTreeMap::new() });
        let found = drift(&actual, &d);
        assert!(found.iter().any(|s| s.contains("LOGGING_DISABLED_CHECK is disabled")), "{found:?}");
        assert!(found.iter().any(|s| s.contains("'daily' is missing")));
    }
}
