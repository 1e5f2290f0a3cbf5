//! A finding as we keep it: identified by check + resource (not by `findingId`, which differs
//! from one audit to the next), with everything a digest or a later query needs.

use crate::checks::CheckName;
use crate::vocabulary::{ResourceType, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One non-compliant resource found by one check of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub task_id: String,
    pub check_name: CheckName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_id: Option<String>,
    pub severity: Severity,
    pub resource_type: ResourceType,
    /// The resource identifier flattened to `field` → value (`policyVersionIdentifier.policyName` …).
    pub resource: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_info: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_time: Option<i64>,
    /// Related resources, as compact JSON (kept verbatim for people reading the item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_resources: Option<String>,
    #[serde(default)]
    pub is_suppressed: bool,
}

/// What identifies a finding across audits: the check and the resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FindingKey {
    pub check_name: String,
    pub resource_key: String,
}

impl Finding {
    /// The canonical resource key: `field=value` pairs, sorted, joined by `|`.
    pub fn resource_key(&self) -> String {
        resource_key(&self.resource)
    }

    /// Check + resource.
    pub fn key(&self) -> FindingKey {
        FindingKey { check_name: self.check_name.to_string(), resource_key: self.resource_key() }
    }
}

/// `field=value|field=value` over the flattened identifier (BTreeMap order), long keys shortened
/// to a stable hash so they fit a DynamoDB sort key.
pub fn resource_key(resource: &BTreeMap<String, String>) -> String {
    let full: String = resource.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("|");
    if full.len() <= 512 {
        full
    } else {
        format!(
            "{}…#{:016x}",
            &full[..full.char_indices().take_while(|(i, _)| *i < 400).last().map_or(0, |(i, _)| i)],
            fnv1a(&full)
        )
    }
}

/// FNV-1a 64: a stable (cross-version) hash for long keys.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A short human label of a resource for digests (the most telling identifier field).
pub fn resource_label(resource_type: &str, resource_key: &str) -> String {
    let first = resource_key.split('|').next().unwrap_or(resource_key);
    let value = first.split_once('=').map_or(first, |(_, v)| v);
    match resource_type {
        "DEVICE_CERTIFICATE" | "CA_CERTIFICATE" if value.len() > 16 => format!("{}…", &value[..16]),
        "IOT_POLICY" => {
            resource_key.split('|').filter_map(|kv| kv.split_once('=').map(|(_, v)| v)).collect::<Vec<_>>().join(" v")
        }
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_key_is_canonical_and_bounded() {
        let mut r = BTreeMap::new();
        r.insert("policyVersionIdentifier.policyVersionId".to_owned(), "2".to_owned());
        r.insert("policyVersionIdentifier.policyName".to_owned(), "p".to_owned());
        assert_eq!(resource_key(&r), "policyVersionIdentifier.policyName=p|policyVersionIdentifier.policyVersionId=2");
        assert_eq!(resource_label("IOT_POLICY", &resource_key(&r)), "p v2");
        let mut long = BTreeMap::new();
        long.insert("iamRoleArn".to_owned(), "a".repeat(2000));
        let k = resource_key(&long);
        assert!(k.len() < 450);
        assert_ne!(k, resource_key(&BTreeMap::from([("iamRoleArn".to_owned(), "b".repeat(2000))])));
    }
}
