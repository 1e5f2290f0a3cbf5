//! Audit finding suppressions: the five operations (Create, Describe, Update, Delete, List
//! AuditSuppression(s)) and the rule audits apply when they produce findings. The facts and our
//! decisions, with sources, are in `docs/reference/audit-suppressions.md`.
//!
//! A suppression is keyed by check + resource identifier. It applies to a finding produced while
//! it is active: indefinitely, or until its `expirationDate` (compared with the virtual time at
//! which the check finishes). Stored results are never rewritten.

use crate::error::{ApiError, ErrorKind};
use crate::findings::validate_resource_identifier;
use crate::pagination;
use crate::state::AuditState;
use crate::tasks::secs;
use crate::wire::{check_chars, check_length, Body};
use audit_shared::catalog;
use audit_shared::suppression::identifier_fields;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Longest `description` (service model: AuditDescription max 1000).
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// One suppression.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    /// Creation order (page keys).
    pub seq: u64,
    pub check_name: String,
    /// The resource identifier exactly as given (its fields fit the check's resource type).
    pub resource: Map<String, Value>,
    /// Epoch milliseconds; `None` when indefinite.
    pub expiration_ms: Option<i64>,
    pub indefinitely: bool,
    pub description: Option<String>,
}

impl Suppression {
    /// Whether it suppresses a finding produced at `at_ms`.
    pub fn active_at(&self, at_ms: i64) -> bool {
        self.indefinitely || self.expiration_ms.is_some_and(|e| e > at_ms)
    }

    /// Whether it names this resource (every field it gives equals the resource's).
    pub fn matches(&self, check: &str, identifier: &Map<String, Value>) -> bool {
        self.check_name == check && self.resource.iter().all(|(k, v)| identifier.get(k) == Some(v))
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "checkName": self.check_name,
            "resourceIdentifier": self.resource,
            "suppressIndefinitely": self.indefinitely,
        });
        if let Some(e) = self.expiration_ms {
            v["expirationDate"] = secs(e);
        }
        if let Some(d) = &self.description {
            v["description"] = json!(d);
        }
        v
    }
}

/// The account's suppressions and the idempotency tokens seen.
#[derive(Debug, Default)]
pub struct Suppressions {
    /// By (check, canonical resource identifier).
    by_key: BTreeMap<(String, String), Suppression>,
    /// clientRequestToken → the key and the request it created (a retry must match it).
    tokens: HashMap<String, ((String, String), Value)>,
}

impl Suppressions {
    /// Every suppression, in creation order.
    pub fn all(&self) -> Vec<&Suppression> {
        let mut v: Vec<&Suppression> = self.by_key.values().collect();
        v.sort_by_key(|s| s.seq);
        v
    }

    /// The suppressions of `check` active at `at_ms`.
    pub fn active_for(&self, check: &str, at_ms: i64) -> Vec<&Suppression> {
        self.by_key.values().filter(|s| s.check_name == check && s.active_at(at_ms)).collect()
    }
}

fn key(check: &str, resource: &Map<String, Value>) -> (String, String) {
    (check.to_owned(), Value::Object(resource.clone()).to_string())
}

/// `checkName` and `resourceIdentifier` of a request, validated: the check is known and the
/// identifier has exactly the fields of the check's resource type.
fn target(body: &Body) -> Result<(String, Map<String, Value>), ApiError> {
    let check = body.str("checkName")?.ok_or_else(|| ApiError::missing("checkName"))?.to_owned();
    let resource = body.object("resourceIdentifier")?.ok_or_else(|| ApiError::missing("resourceIdentifier"))?;
    let resource = validate_resource_identifier(resource.0)?;
    let spec = catalog(&check)
        .ok_or_else(|| ApiError::field("checkName", &check, "Member must be a known audit check name"))?;
    // The fields given, flattened as findings are (`policyVersionIdentifier.policyName` …).
    let mut given: Vec<String> = Vec::new();
    for (k, v) in &resource {
        match v.as_object() {
            Some(inner) => given.extend(inner.keys().map(|ik| format!("{k}.{ik}"))),
            None => given.push(k.clone()),
        }
    }
    given.sort();
    let want = identifier_fields(&spec.resource_type);
    if given.is_empty()
        || given.iter().any(|f| !want.contains(&f.as_str()))
        || want.iter().any(|f| !given.iter().any(|g| g == f))
    {
        return Err(ApiError::invalid(format!(
            "resourceIdentifier of {check} must give exactly {} (the {} the check reports), not {}",
            want.join(", "),
            spec.resource_type,
            if given.is_empty() { "nothing".to_owned() } else { given.join(", ") }
        )));
    }
    Ok((check, resource))
}

fn description(body: &Body) -> Result<Option<String>, ApiError> {
    let Some(d) = body.str("description")? else { return Ok(None) };
    check_length("description", d, 0, MAX_DESCRIPTION_CHARS)?;
    // [\p{Graph}\x20]*: visible characters and the space; no tabs or line breaks.
    if !d.is_empty() {
        check_chars("description", d, "[\\p{Graph}\\x20]*", |c| c == ' ' || !(c.is_whitespace() || c.is_control()))?;
    }
    Ok(Some(d.to_owned()))
}

/// `expirationDate` / `suppressIndefinitely`: exactly one of them ([E]); a date in the future.
fn duration(body: &Body, now_ms: i64, required: bool) -> Result<Option<(Option<i64>, bool)>, ApiError> {
    let date = body.timestamp_ms("expirationDate")?;
    let forever = body.bool("suppressIndefinitely")?;
    match (date, forever) {
        (Some(_), Some(true)) => {
            Err(ApiError::invalid("Specify either expirationDate or suppressIndefinitely true, not both"))
        }
        (Some(d), _) if d <= now_ms => Err(ApiError::field(
            "expirationDate",
            d / 1000,
            format!("must be in the future (now is {})", now_ms / 1000),
        )),
        (Some(d), _) => Ok(Some((Some(d), false))),
        (None, Some(true)) => Ok(Some((None, true))),
        (None, Some(false)) if required => Err(ApiError::invalid("suppressIndefinitely false needs an expirationDate")),
        (None, _) if required => Err(ApiError::invalid("Specify an expirationDate or suppressIndefinitely true")),
        (None, _) => Ok(None),
    }
}

impl AuditState {
    /// CreateAuditSuppression.
    pub fn create_suppression(&mut self, body: &Body, now_ms: i64) -> Result<Value, ApiError> {
        let token = body.str("clientRequestToken")?.ok_or_else(|| ApiError::missing("clientRequestToken"))?;
        check_length("clientRequestToken", token, 1, 64)?;
        check_chars("clientRequestToken", token, "^[a-zA-Z0-9-_]+$", |c| {
            c.is_ascii_alphanumeric() || c == '-' || c == '_'
        })?;
        let (check, resource) = target(body)?;
        let desc = description(body)?;
        let k = key(&check, &resource);
        let request = Value::Object(
            body.0.iter().filter(|(f, _)| *f != "clientRequestToken").map(|(f, v)| (f.clone(), v.clone())).collect(),
        );
        if let Some((seen_key, seen_request)) = self.suppressions.tokens.get(token) {
            // A retry of the same request is answered again; the token on another request is refused.
            if *seen_key == k && *seen_request == request {
                return Ok(json!({}));
            }
            return Err(ApiError::invalid(format!(
                "clientRequestToken '{token}' was already used for a different CreateAuditSuppression request"
            )));
        }
        let (expiration_ms, indefinitely) = duration(body, now_ms, true)?.expect("required");
        if !self.config.is_enabled(&check) {
            return Err(ApiError::invalid(format!("{check} is not enabled for this account; enable it first")));
        }
        if self.suppressions.by_key.contains_key(&k) {
            return Err(ApiError::new(
                ErrorKind::ResourceAlreadyExists,
                format!("A suppression of {check} for {} already exists", k.1),
            ));
        }
        self.next_seq += 1;
        let s = Suppression {
            seq: self.next_seq,
            check_name: check,
            resource,
            expiration_ms,
            indefinitely,
            description: desc,
        };
        self.suppressions.by_key.insert(k.clone(), s);
        self.suppressions.tokens.insert(token.to_owned(), (k, request));
        Ok(json!({}))
    }

    fn find_suppression(&self, body: &Body) -> Result<(String, String), ApiError> {
        let (check, resource) = target(body)?;
        let k = key(&check, &resource);
        if self.suppressions.by_key.contains_key(&k) {
            Ok(k)
        } else {
            Err(ApiError::not_found(format!("No suppression of {check} for {}", k.1)))
        }
    }

    /// DescribeAuditSuppression.
    pub fn describe_suppression(&self, body: &Body) -> Result<Value, ApiError> {
        let k = self.find_suppression(body)?;
        Ok(self.suppressions.by_key[&k].to_json())
    }

    /// UpdateAuditSuppression: the given fields replace the stored ones.
    pub fn update_suppression(&mut self, body: &Body, now_ms: i64) -> Result<Value, ApiError> {
        let desc = description(body)?;
        let change = duration(body, now_ms, false)?;
        let k = self.find_suppression(body)?;
        let s = self.suppressions.by_key.get_mut(&k).expect("found");
        if let Some((expiration_ms, indefinitely)) = change {
            s.expiration_ms = expiration_ms;
            s.indefinitely = indefinitely;
        } else if body.bool("suppressIndefinitely")? == Some(false) && s.indefinitely {
            return Err(ApiError::invalid("suppressIndefinitely false needs an expirationDate"));
        }
        if desc.is_some() {
            s.description = desc;
        }
        Ok(json!({}))
    }

    /// DeleteAuditSuppression: deleting what does not exist succeeds (the service model gives
    /// this operation no ResourceNotFoundException).
    pub fn delete_suppression(&mut self, body: &Body) -> Result<Value, ApiError> {
        let (check, resource) = target(body)?;
        let k = key(&check, &resource);
        self.suppressions.by_key.remove(&k);
        self.suppressions.tokens.retain(|_, (seen, _)| *seen != k);
        Ok(json!({}))
    }

    /// ListAuditSuppressions: by expiration date (ascending by default; indefinite ones after
    /// every dated one, [E]), filtered by check and by resource. Expired suppressions are listed
    /// until deleted ([E]).
    pub fn list_suppressions(&self, body: &Body) -> Result<Value, ApiError> {
        let check = body.str("checkName")?.map(str::to_owned);
        let resource = body.object("resourceIdentifier")?.map(|r| validate_resource_identifier(r.0)).transpose()?;
        let ascending = body.bool("ascendingOrder")?.unwrap_or(true);
        let limit = pagination::page_size(body.int("maxResults")?)?;
        let digest = pagination::query_digest(
            "ListAuditSuppressions",
            &[
                ("checkName", check.clone()),
                ("resourceIdentifier", resource.as_ref().map(|r| Value::Object(r.clone()).to_string())),
                ("ascendingOrder", Some(ascending.to_string())),
            ],
        );
        // Sort key: (expiration or +inf, seq); descending reverses both.
        let sort_key = |s: &Suppression| -> [u64; 2] {
            let e = s.expiration_ms.map_or(u64::MAX, |e| e.max(0) as u64);
            if ascending {
                [e, s.seq]
            } else {
                [u64::MAX - e, u64::MAX - s.seq]
            }
        };
        let after = pagination::decode(body.str("nextToken")?, &digest, 2)?;
        let mut items: Vec<&Suppression> = self
            .suppressions
            .by_key
            .values()
            .filter(|s| check.as_ref().is_none_or(|c| *c == s.check_name))
            .filter(|s| resource.as_ref().is_none_or(|r| r.iter().all(|(k, v)| s.resource.get(k) == Some(v))))
            .filter(|s| after.as_ref().is_none_or(|a| sort_key(s).as_slice() > a.as_slice()))
            .collect();
        items.sort_by_key(|s| sort_key(s));
        let more = items.len() > limit;
        items.truncate(limit);
        let mut out = json!({ "suppressions": items.iter().map(|s| s.to_json()).collect::<Vec<_>>() });
        if let (true, Some(last)) = (more, items.last()) {
            out["nextToken"] = json!(pagination::encode(&sort_key(last), &digest));
        }
        Ok(out)
    }

    /// The admin view: every suppression and whether it applies now.
    pub fn suppressions_view(&self, now_ms: i64) -> Value {
        let list: Vec<Value> = self
            .suppressions
            .all()
            .into_iter()
            .map(|s| {
                let mut v = s.to_json();
                v["activeNow"] = json!(s.active_at(now_ms));
                v
            })
            .collect();
        json!({ "suppressions": list })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(expiration_ms: Option<i64>, indefinitely: bool) -> Suppression {
        let resource = json!({ "clientId": "thing-1" }).as_object().unwrap().clone();
        Suppression {
            seq: 1,
            check_name: "CONFLICTING_CLIENT_IDS_CHECK".into(),
            resource,
            expiration_ms,
            indefinitely,
            description: None,
        }
    }

    #[test]
    fn active_until_the_expiration_date_or_forever() {
        assert!(s(Some(1000), false).active_at(999));
        assert!(!s(Some(1000), false).active_at(1000));
        assert!(s(None, true).active_at(i64::MAX));
    }

    #[test]
    fn matches_on_check_and_every_given_field() {
        let id = json!({ "clientId": "thing-1" }).as_object().unwrap().clone();
        let other = json!({ "clientId": "thing-2" }).as_object().unwrap().clone();
        assert!(s(None, true).matches("CONFLICTING_CLIENT_IDS_CHECK", &id));
        assert!(!s(None, true).matches("CONFLICTING_CLIENT_IDS_CHECK", &other));
        assert!(!s(None, true).matches("DEVICE_CERTIFICATE_SHARED_CHECK", &id));
    }

    #[test]
    fn every_known_check_can_be_suppressed() {
        for c in audit_shared::CHECKS {
            assert!(!identifier_fields(&c.resource_type).is_empty(), "{}", c.name);
        }
    }
}
