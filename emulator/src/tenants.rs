//! The account-regions one emulator serves. Each has its own Device Defender — configuration,
//! scheduled audits, tasks, findings, suppressions —, its own seeded fleet and its own quotas
//! (token buckets); they share the virtual clock, SNS (topics are addressed by ARN, which
//! names their account and region), STS and SQS.
//!
//! Accounts are declared (the default `--account-id`, `--account`, the accounts of
//! `--access-key` and `--role`, or the admin API); any valid region of a declared account is
//! created on first use. Task ids come from the one seed, so two account-regions give their
//! tasks the same ids — on purpose: task ids are not unique across accounts, and nothing may
//! assume they are. Fleets differ: their seed mixes in the account and region (the default
//! account-region keeps the plain seed, so single-account runs are unchanged).

use crate::faults::{FaultInjector, Faults};
use crate::fleet::FleetOptions;
use crate::options::Options;
use crate::scope::{is_region, stable_hash, Scope};
use crate::state::{AuditState, Limits};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// One account-region's Device Defender and quotas.
pub struct Tenant {
    pub state: Mutex<AuditState>,
    pub faults: Mutex<FaultInjector>,
}

/// Every account-region, created on first use.
#[derive(Default)]
pub struct Tenants {
    map: BTreeMap<Scope, Arc<Tenant>>,
    /// Declared accounts.
    pub accounts: BTreeSet<String>,
    /// Long-term access keys → account.
    pub keys: BTreeMap<String, String>,
    /// Faults every new account-region starts with.
    pub default_faults: Faults,
}

impl Tenants {
    /// The declared accounts and keys, no account-region created yet.
    pub fn new(accounts: impl IntoIterator<Item = String>, keys: BTreeMap<String, String>, faults: Faults) -> Self {
        let mut accounts: BTreeSet<String> = accounts.into_iter().collect();
        accounts.extend(keys.values().cloned());
        Tenants { map: BTreeMap::new(), accounts, keys, default_faults: faults }
    }

    /// The account-region, created with `build` on first use (its fault injection seeded with
    /// `seed`). Fails for an undeclared account or a string that is not a region.
    pub fn get_or_create(
        &mut self,
        scope: &Scope,
        build: impl FnOnce(&Scope) -> Result<AuditState, String>,
        seed: u64,
    ) -> Result<Arc<Tenant>, String> {
        if let Some(t) = self.map.get(scope) {
            return Ok(t.clone());
        }
        if !self.accounts.contains(&scope.account) {
            return Err(format!(
                "account {} is not declared to the emulator (--account, --access-key, --role or POST /_emulator/accounts)",
                scope.account
            ));
        }
        if !is_region(&scope.region) {
            return Err(format!("'{}' is not a region", scope.region));
        }
        let tenant = Arc::new(Tenant {
            state: Mutex::new(build(scope)?),
            faults: Mutex::new(FaultInjector::new(self.default_faults.clone(), seed)),
        });
        self.map.insert(scope.clone(), tenant.clone());
        Ok(tenant)
    }

    /// The account-region if it exists.
    pub fn get(&self, scope: &Scope) -> Option<Arc<Tenant>> {
        self.map.get(scope).cloned()
    }

    /// Every account-region created so far, in order.
    pub fn all(&self) -> Vec<(Scope, Arc<Tenant>)> {
        self.map.iter().map(|(s, t)| (s.clone(), t.clone())).collect()
    }
}

/// The fleet (and fault injection) seed of an account-region: the plain seed for the default one.
pub fn fleet_seed(seed: u64, scope: &Scope, default: &Scope) -> u64 {
    if scope == default {
        seed
    } else {
        seed ^ stable_hash(&scope.to_string())
    }
}

/// A new account-region's Device Defender, from the options (checked here, so a bad option
/// fails when the default account-region is created at start).
pub(crate) fn new_state(opts: &Options, scope: &Scope, default: &Scope) -> Result<AuditState, String> {
    for (name, share) in [("--noncompliant-share", opts.noncompliant_share), ("--drift-share", opts.drift_share)] {
        if !(0.0..=1.0).contains(&share) {
            return Err(format!("{name} must be between 0 and 1, got {share}"));
        }
    }
    if opts.schedule_hour > 23 {
        return Err(format!("--schedule-hour must be 0-23, got {}", opts.schedule_hour));
    }
    if !(opts.task_duration_secs >= 0.0 && opts.task_duration_secs.is_finite()) {
        return Err("--task-duration-secs must be a non-negative number".into());
    }
    let limits = Limits {
        max_scheduled_audits: opts.max_scheduled_audits,
        max_on_demand_tasks: opts.max_on_demand_tasks,
        task_duration_ms: (opts.task_duration_secs * 1000.0) as i64,
        retention_ms: opts.retention_days as i64 * 86_400_000,
        schedule_offset_ms: opts.schedule_hour as i64 * 3_600_000,
    };
    let fleet = FleetOptions {
        seed: fleet_seed(opts.seed, scope, default),
        devices: opts.fleet_devices,
        noncompliant_share: opts.noncompliant_share,
        drift_share: opts.drift_share,
        account_id: scope.account.clone(),
        region: scope.region.clone(),
    };
    Ok(AuditState::new(
        scope.account.clone(),
        scope.region.clone(),
        opts.seed,
        limits,
        fleet,
        opts.severity_overrides()?,
    ))
}
