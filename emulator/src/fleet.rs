//! The synthetic fleet that audits look at: device certificates, client ids, CA certificates,
//! IoT policies, role aliases, Cognito identity pools and the account settings.
//!
//! Seeded and reproducible: a resource is an index into its kind, and its identifiers are
//! derived from (seed, kind, index) on demand, so a fleet of millions costs only its problem
//! lists. Each known check keeps the sorted indices of the resources that fail it. After every
//! completed audit the fleet drifts: a share of each check's problems is fixed and as many new
//! ones appear.

use audit_shared::{CheckSpec, ResourceType, CHECKS};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};

/// Fleet shape and behaviour.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub seed: u64,
    pub devices: u32,
    pub noncompliant_share: f64,
    pub drift_share: f64,
    pub account_id: String,
    pub region: String,
}

/// The synthetic fleet.
#[derive(Debug)]
pub struct Fleet {
    opts: FleetOptions,
    rng: ChaCha8Rng,
    epoch: u64,
    problems: BTreeMap<&'static str, Vec<u32>>,
}

/// What a finding says about the resource it flags.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedResource {
    pub non_compliant: Value,
    pub related: Vec<Value>,
}

/// Counts for `GET /_emulator/fleet`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetSnapshot {
    pub seed: u64,
    pub drift_epoch: u64,
    pub resources: BTreeMap<String, u32>,
    pub non_compliant: BTreeMap<String, usize>,
}

/// Probability that a resource fails a check: `1 - (1 - share)^weight`, so rare problems stay
/// rarer, common ones commoner, and a share of 1 fails every resource.
fn problem_probability(share: f64, check: &str) -> f64 {
    1.0 - (1.0 - share.clamp(0.0, 1.0)).powf(weight(check))
}

/// How common a check's problem is, relative to `noncompliant_share`.
fn weight(check: &str) -> f64 {
    match check {
        "DEVICE_CERTIFICATE_AGE_CHECK" => 2.0,
        "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK" | "CA_CERTIFICATE_KEY_QUALITY_CHECK" => 0.2,
        "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK" => 0.2,
        "DEVICE_CERTIFICATE_SHARED_CHECK" | "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK" => 0.3,
        "CONFLICTING_CLIENT_IDS_CHECK" => 0.5,
        _ => 1.0,
    }
}

impl Fleet {
    /// Builds the fleet of a seed.
    pub fn new(opts: FleetOptions) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut problems = BTreeMap::new();
        for spec in CHECKS {
            let total = resource_count(&spec.resource_type, opts.devices);
            let wanted = problem_probability(opts.noncompliant_share, spec.name) * total as f64;
            let k = round_randomly(wanted, &mut rng).min(total as usize);
            let mut v: Vec<u32> = sample(&mut rng, total as usize, k).into_iter().map(|i| i as u32).collect();
            v.sort_unstable();
            problems.insert(spec.name, v);
        }
        Fleet { opts, rng, epoch: 0, problems }
    }

    /// Resources of the check's kind (a finding's `totalResourcesCount`).
    pub fn total(&self, spec: &CheckSpec) -> u32 {
        resource_count(&spec.resource_type, self.opts.devices)
    }

    /// Sorted indices of the resources failing a check now.
    pub fn non_compliant(&self, check: &str) -> &[u32] {
        self.problems.get(check).map_or(&[], Vec::as_slice)
    }

    /// One drift step: fixes a share of each check's problems, and new problems appear on
    /// compliant resources at the same share of the check's expected count (so the fleet
    /// hovers around `noncompliant_share` instead of emptying or filling up).
    pub fn drift(&mut self) {
        self.epoch += 1;
        let share = self.opts.drift_share;
        if share <= 0.0 {
            return;
        }
        for spec in CHECKS {
            let total = resource_count(&spec.resource_type, self.opts.devices);
            let current = self.problems.remove(spec.name).unwrap_or_default();
            let n_fix = round_randomly(current.len() as f64 * share, &mut self.rng).min(current.len());
            let expected = problem_probability(self.opts.noncompliant_share, spec.name) * total as f64;
            let fixed: HashSet<usize> = sample(&mut self.rng, current.len(), n_fix).into_iter().collect();
            let mut taken: HashSet<u32> = current.iter().copied().collect();
            let mut next: Vec<u32> =
                current.iter().enumerate().filter(|(i, _)| !fixed.contains(i)).map(|(_, &r)| r).collect();
            let n_new = round_randomly(expected * share, &mut self.rng).min(total as usize - current.len());
            let mut added = 0;
            while added < n_new {
                let r = self.rng.random_range(0..total);
                if taken.insert(r) {
                    next.push(r);
                    added += 1;
                }
            }
            next.sort_unstable();
            self.problems.insert(spec.name, next);
        }
    }

    /// Counts for the admin API.
    pub fn snapshot(&self) -> FleetSnapshot {
        let mut resources = BTreeMap::new();
        for rt in ResourceType::KNOWN {
            let n = resource_count(rt, self.opts.devices);
            if n > 0 {
                resources.insert(rt.to_string(), n);
            }
        }
        FleetSnapshot {
            seed: self.opts.seed,
            drift_epoch: self.epoch,
            resources,
            non_compliant: self.problems.iter().map(|(k, v)| (k.to_string(), v.len())).collect(),
        }
    }

    /// The `resourceIdentifier` of a resource.
    pub fn identifier(&self, rt: &ResourceType, idx: u32) -> Map<String, Value> {
        let o = &self.opts;
        let v = match rt {
            ResourceType::DeviceCertificate => json!({ "deviceCertificateId": self.hex64("cert", idx) }),
            ResourceType::CaCertificate => json!({ "caCertificateId": self.hex64("ca", idx) }),
            ResourceType::IotPolicy => json!({ "policyVersionIdentifier": {
                "policyName": format!("fleet-policy-{idx:04}"), "policyVersionId": (1 + idx % 3).to_string() } }),
            ResourceType::CognitoIdentityPool => {
                let h = self.hex64("cognito", idx);
                json!({ "cognitoIdentityPoolId": format!("{}:{}-{}-{}-{}-{}", o.region, &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]) })
            }
            ResourceType::ClientId => json!({ "clientId": format!("thing-{idx:07}") }),
            ResourceType::AccountSettings => json!({ "account": o.account_id }),
            ResourceType::RoleAlias => {
                json!({ "roleAliasArn": format!("arn:aws:iot:{}:{}:rolealias/fleet-role-alias-{idx}", o.region, o.account_id) })
            }
            ResourceType::IamRole => {
                json!({ "iamRoleArn": format!("arn:aws:iam::{}:role/fleet-device-role-{idx}", o.account_id) })
            }
            _ => json!({}),
        };
        match v {
            Value::Object(m) => m,
            _ => unreachable!("identifiers are objects"),
        }
    }

    /// The `nonCompliantResource` and `relatedResources` of a finding of `spec` on resource `idx`.
    pub fn render(&self, spec: &CheckSpec, idx: u32, finding_time_ms: i64) -> RenderedResource {
        let rt = &spec.resource_type;
        let mut non_compliant = json!({ "resourceType": rt.as_str(), "resourceIdentifier": self.identifier(rt, idx) });
        let mut related = Vec::new();
        let day_ms = 86_400_000i64;
        match spec.name {
            "DEVICE_CERTIFICATE_EXPIRING_CHECK" | "CA_CERTIFICATE_EXPIRING_CHECK" => {
                let expires = finding_time_ms + (idx as i64 % 30) * day_ms - 2 * day_ms;
                non_compliant["additionalInfo"] = json!({ "EXPIRATION_TIME": expires.to_string() });
            }
            "DEVICE_CERTIFICATE_AGE_CHECK" => {
                let issued = finding_time_ms - (400 + idx as i64 % 1000) * day_ms;
                non_compliant["additionalInfo"] = json!({ "CERTIFICATE_CREATION_TIME": issued.to_string() });
            }
            "DEVICE_CERTIFICATE_SHARED_CHECK" | "CONFLICTING_CLIENT_IDS_CHECK" => {
                let (kind, other) = if spec.name == "CONFLICTING_CLIENT_IDS_CHECK" {
                    (ResourceType::DeviceCertificate, [idx, (idx + 1) % self.opts.devices.max(1)])
                } else {
                    (ResourceType::ClientId, [idx, (idx + 7) % self.opts.devices.max(1)])
                };
                for (n, r) in other.iter().enumerate() {
                    related.push(json!({ "resourceType": kind.as_str(), "resourceIdentifier": self.identifier(&kind, *r),
                        "additionalInfo": { "CONNECTION_TIME": (finding_time_ms - 3_600_000 * (n as i64 + 1)).to_string() } }));
                }
            }
            "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK" | "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK" => {
                related.push(json!({ "resourceType": "IAM_ROLE", "resourceIdentifier": self.identifier(&ResourceType::IamRole, idx) }));
            }
            _ => {}
        }
        RenderedResource { non_compliant, related }
    }

    fn hex64(&self, kind: &str, idx: u32) -> String {
        let mut h = Sha256::new();
        h.update(self.opts.seed.to_le_bytes());
        h.update(kind.as_bytes());
        h.update(idx.to_le_bytes());
        hex::encode(h.finalize())
    }
}

/// How many resources of a kind a fleet of `devices` devices has.
pub fn resource_count(rt: &ResourceType, devices: u32) -> u32 {
    match rt {
        ResourceType::DeviceCertificate | ResourceType::ClientId => devices,
        ResourceType::CaCertificate => 2 + devices / 50_000,
        ResourceType::IotPolicy => 3 + devices / 2_000,
        ResourceType::RoleAlias => 2 + devices / 100_000,
        ResourceType::CognitoIdentityPool => 2,
        ResourceType::AccountSettings => 1,
        _ => 0,
    }
}

/// `x` rounded down or up at random, in proportion to its fraction (keeps expected values).
fn round_randomly(x: f64, rng: &mut ChaCha8Rng) -> usize {
    let floor = x.floor();
    floor as usize + usize::from(rng.random_bool((x - floor).clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(devices: u32, share: f64) -> FleetOptions {
        FleetOptions {
            seed: 7,
            devices,
            noncompliant_share: share,
            drift_share: 0.2,
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn same_seed_same_fleet_and_share_is_respected() {
        let a = Fleet::new(opts(10_000, 0.05));
        let b = Fleet::new(opts(10_000, 0.05));
        assert_eq!(a.problems, b.problems);
        let n = a.non_compliant("DEVICE_CERTIFICATE_EXPIRING_CHECK").len();
        assert!((450..=550).contains(&n), "{n}");
        let rare = a.non_compliant("DEVICE_CERTIFICATE_KEY_QUALITY_CHECK").len();
        assert!(rare < n / 2, "{rare}");
        assert_eq!(Fleet::new(opts(100, 1.0)).non_compliant("DEVICE_CERTIFICATE_SHARED_CHECK").len(), 100);
        assert!(Fleet::new(opts(100, 0.0)).problems.values().all(Vec::is_empty));
    }

    #[test]
    fn drift_fixes_some_and_adds_some() {
        let mut f = Fleet::new(opts(10_000, 0.05));
        let before: HashSet<u32> = f.non_compliant("DEVICE_CERTIFICATE_AGE_CHECK").iter().copied().collect();
        f.drift();
        let after: HashSet<u32> = f.non_compliant("DEVICE_CERTIFICATE_AGE_CHECK").iter().copied().collect();
        let fixed = before.difference(&after).count();
        let new = after.difference(&before).count();
        assert!(fixed > 0 && new > 0, "fixed {fixed} new {new}");
        assert!(f.non_compliant("DEVICE_CERTIFICATE_AGE_CHECK").windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn identifiers_are_stable_and_well_formed() {
        let f = Fleet::new(opts(10, 0.5));
        let id = f.identifier(&ResourceType::DeviceCertificate, 3);
        assert_eq!(id["deviceCertificateId"].as_str().unwrap().len(), 64);
        assert_eq!(id, Fleet::new(opts(10, 0.5)).identifier(&ResourceType::DeviceCertificate, 3));
        assert_ne!(id, f.identifier(&ResourceType::DeviceCertificate, 4));
    }
}
