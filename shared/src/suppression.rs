//! Audit finding suppressions as code: the `Suppressions` property of the custom resource
//! (parsed and validated before anything is touched), the plan that creates, updates and
//! deletes the suppressions a stack owns (never one made by hand or by another stack), and
//! their drift. Pure; the API calls are [`crate::ports::AuditSetupApi`]'s.
//!
//! In `template.yaml` an entry reads:
//!
//! ```yaml
//! Suppressions:
//!   - Check: DEVICE_CERTIFICATE_SHARED_CHECK
//!     Resource: { deviceCertificateId: 4f6a…e1 }
//!     Reason: Lab rack 3 shares a test certificate until the March re-flash (SEC-142)
//!     Expires: "2027-03-31"            # a date (midnight UTC) or an RFC 3339 time
//!   - Check: IOT_POLICY_OVERLY_PERMISSIVE_CHECK
//!     Resource: { policyVersionIdentifier: { policyName: debug-fleet, policyVersionId: "3" } }
//!     Reason: Broad on purpose for the debug fleet, reviewed quarterly
//!     Indefinite: "true"
//! ```

use crate::checks::catalog;
use crate::setup::{SetupError, Step};
use crate::vocabulary::ResourceType;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Longest reason (the API's `description`: 1000 characters).
pub const MAX_REASON_CHARS: usize = 1000;

fn err(field: impl Into<String>, message: impl Into<String>) -> SetupError {
    SetupError { field: field.into(), message: message.into() }
}

/// The identifier fields (flattened, `parent.child` for nested ones) a finding of a resource of
/// type `rt` carries: what a suppression of one of its checks names.
pub fn identifier_fields(rt: &ResourceType) -> &'static [&'static str] {
    match rt {
        ResourceType::DeviceCertificate => &["deviceCertificateId"],
        ResourceType::CaCertificate => &["caCertificateId"],
        ResourceType::IotPolicy => &["policyVersionIdentifier.policyName", "policyVersionIdentifier.policyVersionId"],
        ResourceType::CognitoIdentityPool => &["cognitoIdentityPoolId"],
        ResourceType::ClientId => &["clientId"],
        ResourceType::AccountSettings => &["account"],
        ResourceType::RoleAlias => &["roleAliasArn"],
        ResourceType::IamRole => &["iamRoleArn"],
        ResourceType::IssuerCertificate => &[
            "issuerCertificateIdentifier.issuerCertificateSubject",
            "issuerCertificateIdentifier.issuerId",
            "issuerCertificateIdentifier.issuerCertificateSerialNumber",
        ],
        ResourceType::Unknown(_) => &[],
    }
}

/// The key of a suppression: check + flattened resource (`check#field=value|…`).
pub fn suppression_key(check: &str, resource: &BTreeMap<String, String>) -> String {
    format!("{check}#{}", crate::finding::resource_key(resource))
}

/// A suppression as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredSuppression {
    pub check_name: String,
    /// Flattened identifier (`deviceCertificateId`, `policyVersionIdentifier.policyName` …).
    pub resource: BTreeMap<String, String>,
    /// Why it is muted (sent as the suppression's description).
    pub reason: String,
    /// Epoch milliseconds; `None` = indefinitely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
}

impl DesiredSuppression {
    /// Check + resource.
    pub fn key(&self) -> String {
        suppression_key(&self.check_name, &self.resource)
    }

    /// Whether `actual` is this suppression as declared.
    pub fn matches(&self, actual: &ActualSuppression) -> bool {
        actual.expires_ms == self.expires_ms && actual.description.as_deref() == Some(self.reason.as_str())
    }
}

/// A suppression as the account has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActualSuppression {
    pub check_name: String,
    pub resource: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Epoch milliseconds; `None` = indefinitely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
}

fn text<'a>(field: &str, v: Option<&'a Value>) -> Result<Option<&'a str>, SetupError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(Value::Number(_)) | Some(Value::Bool(_)) => Err(err(field, "must be a string")),
        Some(other) => Err(err(field, format!("{other} is not a string"))),
    }
}

/// An `Expires` value: a date (`2027-03-31`, midnight UTC) or an RFC 3339 time.
fn expiry(field: &str, s: &str) -> Result<i64, SetupError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_millis())
        .map_err(|_| err(field, format!("'{s}' is not a date (2027-03-31) or an RFC 3339 time")))
}

/// The resource of an entry, flattened, with exactly the fields of the check's resource type.
fn resource(field: &str, check: &str, v: Option<&Value>) -> Result<BTreeMap<String, String>, SetupError> {
    let Some(Value::Object(o)) = v else { return Err(err(field, "is required: the resource's identifier fields")) };
    let mut flat = BTreeMap::new();
    for (k, v) in o {
        match v {
            Value::String(s) => {
                flat.insert(k.clone(), s.trim().to_owned());
            }
            Value::Object(inner) => {
                for (ik, iv) in inner {
                    let Value::String(s) = iv else { return Err(err(format!("{field}.{k}.{ik}"), "must be a string")) };
                    flat.insert(format!("{k}.{ik}"), s.trim().to_owned());
                }
            }
            other => return Err(err(format!("{field}.{k}"), format!("{other} is not a string"))),
        }
    }
    let spec = catalog(check).expect("checked by the caller");
    let want = identifier_fields(&spec.resource_type);
    let given: Vec<&str> = flat.keys().map(String::as_str).collect();
    if given != want.iter().copied().collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>() {
        return Err(err(
            field,
            format!(
                "{check} reports {} resources, identified by {}; got {}",
                spec.resource_type,
                want.join(" and "),
                if given.is_empty() { "nothing".to_owned() } else { given.join(", ") }
            ),
        ));
    }
    if let Some((k, _)) = flat.iter().find(|(_, v)| v.is_empty()) {
        return Err(err(format!("{field}.{k}"), "is empty"));
    }
    Ok(flat)
}

/// Parses the `Suppressions` property. `declared_checks` are the template's `Checks` (a
/// suppression needs its check enabled). Times are checked against the clock in [`plan`].
pub fn parse(
    v: Option<&Value>,
    declared_checks: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Vec<DesiredSuppression>, SetupError> {
    let entries = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => return Err(err("Suppressions", format!("{other} is not a list"))),
    };
    let mut out: Vec<DesiredSuppression> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        let field = format!("Suppressions[{i}]");
        let Value::Object(e) = e else { return Err(err(field, "must be an object")) };
        if let Some(k) =
            e.keys().find(|k| !["Check", "Resource", "Reason", "Expires", "Indefinite"].contains(&k.as_str()))
        {
            return Err(err(
                format!("{field}.{k}"),
                "unknown field; expected Check, Resource, Reason, Expires or Indefinite",
            ));
        }
        let check = text(&format!("{field}.Check"), e.get("Check"))?
            .ok_or_else(|| err(format!("{field}.Check"), "is required"))?
            .to_owned();
        if catalog(&check).is_none() {
            return Err(err(format!("{field}.Check"), format!("'{check}' is not a known audit check")));
        }
        if !declared_checks.contains_key(&check) {
            return Err(err(
                format!("{field}.Check"),
                format!("{check} is not in Checks: a suppression needs its check enabled"),
            ));
        }
        let resource = resource(&format!("{field}.Resource"), &check, e.get("Resource"))?;
        let reason = text(&format!("{field}.Reason"), e.get("Reason"))?
            .ok_or_else(|| err(format!("{field}.Reason"), "is required: say why this finding may be muted"))?
            .to_owned();
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(err(
                format!("{field}.Reason"),
                format!("is {} characters, at most {MAX_REASON_CHARS}", reason.chars().count()),
            ));
        }
        if reason.chars().any(|c| c != ' ' && (c.is_whitespace() || c.is_control())) {
            return Err(err(format!("{field}.Reason"), "must be one line (no tabs or line breaks)"));
        }
        let expires = text(&format!("{field}.Expires"), e.get("Expires"))?;
        let indefinite = match text(&format!("{field}.Indefinite"), e.get("Indefinite"))? {
            None | Some("false") => false,
            Some("true") => true,
            Some(o) => return Err(err(format!("{field}.Indefinite"), format!("'{o}' is not true or false"))),
        };
        let expires_ms = match (expires, indefinite) {
            (Some(_), true) => return Err(err(&field, "give either Expires or Indefinite: \"true\", not both")),
            (None, false) => return Err(err(&field, "give an Expires date or Indefinite: \"true\"")),
            (Some(s), false) => Some(expiry(&format!("{field}.Expires"), s)?),
            (None, true) => None,
        };
        let s = DesiredSuppression { check_name: check, resource, reason, expires_ms };
        if let Some(j) = seen.insert(s.key(), i) {
            return Err(err(field, format!("suppresses the same check and resource as Suppressions[{j}]")));
        }
        out.push(s);
    }
    Ok(out)
}

/// The suppression steps of an apply, and what the stack owns afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuppressionPlan {
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
    pub owned_after: BTreeSet<String>,
}

/// Plans the stack's suppressions: create the missing, update the changed, delete the owned
/// ones no longer declared; a declared one that exists but is not owned (made by hand or by
/// another stack) is left alone and reported. Fails, naming the entry, on an expiry that is not
/// in the future of `now_ms`.
pub fn plan(
    actual: &BTreeMap<String, ActualSuppression>,
    desired: &[DesiredSuppression],
    owned: &BTreeSet<String>,
    now_ms: i64,
) -> Result<SuppressionPlan, SetupError> {
    let mut p = SuppressionPlan::default();
    for (i, d) in desired.iter().enumerate() {
        if d.expires_ms.is_some_and(|e| e <= now_ms) {
            return Err(err(
                format!("Suppressions[{i}].Expires"),
                "is not in the future: renew it with a later date, or remove the entry",
            ));
        }
    }
    for d in desired {
        let key = d.key();
        match actual.get(&key) {
            None => {
                p.steps.push(Step::CreateSuppression { suppression: d.clone() });
                p.owned_after.insert(key);
            }
            Some(a) if !owned.contains(&key) => {
                p.warnings.push(format!(
                    "suppression of {} for {} exists and is not this stack's (made by hand or by another stack): left as it is ({})",
                    d.check_name,
                    crate::finding::resource_key(&d.resource),
                    a.description.as_deref().unwrap_or("no description")
                ));
            }
            Some(a) => {
                if !d.matches(a) {
                    p.steps.push(Step::UpdateSuppression { suppression: d.clone() });
                }
                p.owned_after.insert(key);
            }
        }
    }
    let declared: BTreeSet<String> = desired.iter().map(DesiredSuppression::key).collect();
    for key in owned.iter().filter(|k| !declared.contains(*k)) {
        if let Some(a) = actual.get(key) {
            p.steps.push(Step::DeleteSuppression { check_name: a.check_name.clone(), resource: a.resource.clone() });
        }
    }
    Ok(p)
}

/// The deletion of every owned suppression that still exists (stack deletion).
pub fn plan_delete(actual: &BTreeMap<String, ActualSuppression>, owned: &BTreeSet<String>) -> Vec<Step> {
    owned
        .iter()
        .filter_map(|k| actual.get(k))
        .map(|a| Step::DeleteSuppression { check_name: a.check_name.clone(), resource: a.resource.clone() })
        .collect()
}

/// How the account's suppressions differ from the declared ones this stack owns (deleted,
/// changed, renewed by hand) and where a declared one overlaps one the stack does not own.
/// Declared suppressions whose date has passed are expected to be gone: not drift.
pub fn drift(
    actual: &BTreeMap<String, ActualSuppression>,
    desired: &[DesiredSuppression],
    owned: &BTreeSet<String>,
    now_ms: i64,
) -> Vec<String> {
    let mut out = Vec::new();
    for d in desired.iter().filter(|d| d.expires_ms.is_none_or(|e| e > now_ms)) {
        let key = d.key();
        let what = format!("suppression of {} for {}", d.check_name, crate::finding::resource_key(&d.resource));
        match actual.get(&key) {
            None => out.push(format!("{what} is missing (deleted outside the stack?)")),
            Some(_) if !owned.contains(&key) => {
                out.push(format!("{what} overlaps a suppression this stack does not own"))
            }
            Some(a) if !d.matches(a) => out.push(format!(
                "{what} was changed outside the stack: expires {}, reason {:?}; declared expires {}, reason {:?}",
                fmt_expiry(a.expires_ms),
                a.description.as_deref().unwrap_or(""),
                fmt_expiry(d.expires_ms),
                d.reason
            )),
            Some(_) => {}
        }
    }
    out
}

fn fmt_expiry(ms: Option<i64>) -> String {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "never".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_768_435_200_000; // 2026-01-15
    const SHARED: &str = "DEVICE_CERTIFICATE_SHARED_CHECK";
    const POLICY: &str = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK";

    fn checks() -> BTreeMap<String, BTreeMap<String, String>> {
        [SHARED, POLICY].iter().map(|c| (c.to_string(), BTreeMap::new())).collect()
    }

    fn entries() -> Value {
        json!([
            { "Check": SHARED, "Resource": { "deviceCertificateId": "ab".repeat(32) }, "Reason": "lab rack 3 (SEC-142)", "Expires": "2027-03-31" },
            { "Check": POLICY, "Resource": { "policyVersionIdentifier": { "policyName": "debug", "policyVersionId": "3" } },
              "Reason": "broad on purpose", "Indefinite": "true" },
        ])
    }

    #[test]
    fn parses_dates_nested_identifiers_and_indefinite() {
        let s = parse(Some(&entries()), &checks()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].expires_ms, Some(1_806_451_200_000));
        assert_eq!(s[1].resource["policyVersionIdentifier.policyName"], "debug");
        assert_eq!(s[1].expires_ms, None);
        assert_eq!(s[1].key(), "IOT_POLICY_OVERLY_PERMISSIVE_CHECK#policyVersionIdentifier.policyName=debug|policyVersionIdentifier.policyVersionId=3");
    }

    #[test]
    fn every_invalid_entry_is_named() {
        let bad = |patch: Value, needle: &str| {
            let mut e = entries();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    e[0].as_object_mut().unwrap().remove(k);
                } else {
                    e[0][k] = v.clone();
                }
            }
            let msg = parse(Some(&e), &checks()).unwrap_err().to_string();
            assert!(msg.starts_with("Suppressions[0]") && msg.contains(needle), "{needle}: {msg}");
        };
        bad(json!({ "Check": "NO_SUCH_CHECK" }), "not a known audit check");
        bad(json!({ "Check": "LOGGING_DISABLED_CHECK" }), "not in Checks");
        bad(json!({ "Resource": { "clientId": "thing-1" } }), "identified by deviceCertificateId");
        bad(json!({ "Resource": null }), "is required");
        bad(json!({ "Reason": null }), "say why");
        bad(json!({ "Reason": "x".repeat(1001) }), "at most 1000");
        bad(json!({ "Reason": "two\nlines" }), "one line");
        bad(json!({ "Indefinite": "true" }), "not both");
        bad(json!({ "Expires": null }), "give an Expires date");
        bad(json!({ "Expires": "next March" }), "is not a date");
        bad(json!({ "Owner": "me" }), "unknown field");
        let mut dup = entries();
        dup[1] = dup[0].clone();
        assert!(parse(Some(&dup), &checks())
            .unwrap_err()
            .to_string()
            .contains("same check and resource as Suppressions[0]"));
    }

    fn actual(d: &DesiredSuppression) -> ActualSuppression {
        ActualSuppression {
            check_name: d.check_name.clone(),
            resource: d.resource.clone(),
            description: Some(d.reason.clone()),
            expires_ms: d.expires_ms,
        }
    }

    #[test]
    fn plans_create_update_delete_of_owned_only() {
        let desired = parse(Some(&entries()), &checks()).unwrap();
        // Nothing yet: both created, both owned.
        let p = plan(&BTreeMap::new(), &desired, &BTreeSet::new(), NOW).unwrap();
        assert_eq!(p.steps.len(), 2);
        assert!(p.steps.iter().all(|s| matches!(s, Step::CreateSuppression { .. })));
        assert_eq!(p.owned_after.len(), 2);
        // The first changed by hand, the second made by someone else, an owned third no longer declared.
        let mut changed = actual(&desired[0]);
        changed.expires_ms = Some(NOW + 1);
        let old = DesiredSuppression {
            check_name: SHARED.into(),
            resource: BTreeMap::from([("deviceCertificateId".into(), "cd".repeat(32))]),
            reason: "old".into(),
            expires_ms: None,
        };
        let acts = BTreeMap::from([
            (desired[0].key(), changed),
            (desired[1].key(), actual(&desired[1])),
            (old.key(), actual(&old)),
        ]);
        let owned = BTreeSet::from([desired[0].key(), old.key()]);
        let p = plan(&acts, &desired, &owned, NOW).unwrap();
        assert_eq!(p.steps.len(), 2, "{:?}", p.steps);
        assert!(
            matches!(&p.steps[0], Step::UpdateSuppression { suppression } if suppression.key() == desired[0].key())
        );
        assert!(matches!(&p.steps[1], Step::DeleteSuppression { check_name, .. } if check_name == SHARED));
        assert_eq!(p.owned_after, BTreeSet::from([desired[0].key()]), "the foreign one is not taken over");
        assert!(p.warnings[0].contains("not this stack's"));
        assert_eq!(plan_delete(&acts, &owned).len(), 2);
        // An expiry that has passed is refused, naming the entry.
        let late = NOW + 500 * 86_400_000;
        assert_eq!(plan(&acts, &desired, &owned, late).unwrap_err().field, "Suppressions[0].Expires");
    }

    #[test]
    fn drift_names_missing_changed_and_foreign_but_not_expired() {
        let desired = parse(Some(&entries()), &checks()).unwrap();
        let owned = BTreeSet::from([desired[0].key()]);
        let mut renewed = actual(&desired[0]);
        renewed.expires_ms = Some(renewed.expires_ms.unwrap() + 86_400_000);
        let acts = BTreeMap::from([(desired[0].key(), renewed), (desired[1].key(), actual(&desired[1]))]);
        let d = drift(&acts, &desired, &owned, NOW);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("changed outside the stack") && d[0].contains("2027-04-01"));
        assert!(d[1].contains("does not own"));
        let d = drift(&BTreeMap::new(), &desired, &owned, NOW);
        assert!(d.iter().all(|l| l.contains("is missing")) && d.len() == 2);
        // After its date, the first is expected to be gone.
        assert_eq!(drift(&BTreeMap::new(), &desired, &owned, 1_806_451_200_001).len(), 1);
    }
}
