//! The service: plan and apply the declared audit setup, undo it on delete, check drift, and
//! dry-run a plan — over the ports, knowing nothing of CloudFormation's protocol.

use crate::config::Config;
use audit_shared::drift_report::drift_report;
use audit_shared::ports::{AuditSetupApi, DigestPublisher, PortError, SetupStore, StepResult};
use audit_shared::setup::{self, DesiredSetup, OnDelete, Plan, SetupError, SetupRecord, Step};
use audit_shared::suppression::{self, suppression_key};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

/// Tag put on every scheduled audit this function creates.
pub const OWNER_TAG: &str = "managed-by";

/// Why a setup could not be applied (the reason CloudFormation shows).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A property of the custom resource is wrong (named in the message).
    #[error("invalid property {0}")]
    Invalid(#[from] SetupError),
    /// An AWS call failed.
    #[error("{0}")]
    Api(#[from] PortError),
    /// The invocation is not one config-sync serves.
    #[error("{0}")]
    Event(String),
}

/// The service, generic over its ports.
pub struct Syncer<A, S, P> {
    /// Device Defender's configuration API.
    pub api: A,
    /// Where applied setups, ownership and drift records live.
    pub store: S,
    /// The digest topic (drift reports).
    pub publisher: P,
    /// Settings from the environment.
    pub config: Config,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

impl<A, S, P> Syncer<A, S, P>
where
    A: AuditSetupApi + 'static,
    S: SetupStore + 'static,
    P: DigestPublisher + 'static,
{
    /// The plan for `properties` (and the drift from them), without applying anything; with
    /// `stack`, the audits that stack owns are taken into account.
    pub async fn dry_run(&self, properties: &Value, stack: Option<&str>) -> Result<Value, SyncError> {
        let desired = setup::parse_desired(properties)?;
        let record = match stack {
            Some(stack) => self.store.load(stack).await?,
            None => None,
        };
        let (owned, owned_suppressions) =
            record.map(|r| (r.owned, r.owned_suppressions)).unwrap_or((BTreeSet::new(), BTreeSet::new()));
        let now = now_ms();
        let actual = self.api.read().await?;
        let mut plan = setup::plan_apply(&actual, &desired, &owned, false, self.config.max_audits)?;
        plan.add_suppressions(suppression::plan(
            &actual.suppressions,
            &desired.suppressions,
            &owned_suppressions,
            now,
        )?);
        let mut drift = setup::drift(&actual, &desired);
        drift.extend(suppression::drift(&actual.suppressions, &desired.suppressions, &owned_suppressions, now));
        Ok(json!({ "dryRun": true, "plan": plan, "drift": drift }))
    }

    /// Plans and applies `desired`; records ownership as audits are created. `start_for` is
    /// the request that may start one on-demand audit. Returns the custom resource's `Data`.
    pub async fn apply(
        &self,
        stack: &str,
        desired: &DesiredSetup,
        physical: &str,
        start_for: Option<&str>,
    ) -> Result<HashMap<String, String>, SyncError> {
        let actual = self.api.read().await?;
        let mut record = self.store.load(stack).await?.unwrap_or(SetupRecord {
            desired: desired.clone(),
            owned: BTreeSet::new(),
            owned_suppressions: BTreeSet::new(),
            physical_id: physical.to_owned(),
            applied_at: now_ms(),
        });
        let mut plan = setup::plan_apply(&actual, desired, &record.owned, start_for.is_some(), self.config.max_audits)?;
        plan.add_suppressions(suppression::plan(
            &actual.suppressions,
            &desired.suppressions,
            &record.owned_suppressions,
            now_ms(),
        )?);
        for w in &plan.warnings {
            warn!("{w}");
        }
        let task_id = self.execute(stack, &plan, &mut record, start_for).await?;
        record.desired = desired.clone();
        record.owned = plan.owned_after.clone();
        record.owned_suppressions = plan.owned_suppressions_after.clone();
        record.applied_at = now_ms();
        self.store.save(stack, &record).await?;
        let after = self.api.read().await?;
        let enabled: Vec<&str> = after.checks.iter().filter(|(_, c)| c.enabled).map(|(n, _)| n.as_str()).collect();
        let arns: Vec<&str> = record.owned.iter().filter_map(|n| after.audit_arns.get(n)).map(String::as_str).collect();
        Ok(HashMap::from([
            ("EnabledChecks".to_owned(), enabled.join(",")),
            ("ScheduledAuditArns".to_owned(), arns.join(",")),
            ("OnDemandTaskId".to_owned(), task_id.unwrap_or_default()),
            ("Steps".to_owned(), plan.steps.len().to_string()),
            ("Suppressions".to_owned(), record.owned_suppressions.len().to_string()),
            ("Warnings".to_owned(), plan.warnings.join("; ")),
        ]))
    }

    async fn execute(
        &self,
        stack: &str,
        plan: &Plan,
        record: &mut SetupRecord,
        start_for: Option<&str>,
    ) -> Result<Option<String>, SyncError> {
        let tags = vec![(OWNER_TAG.to_owned(), stack.chars().take(256).collect())];
        let mut task = None;
        for step in &plan.steps {
            if let Step::StartOnDemandAudit { .. } = step {
                // StartOnDemandAuditTask is not idempotent: one audit per CloudFormation request.
                let Some(request) = start_for else { continue };
                if !self.store.claim_start(request).await? {
                    info!(request, "on-demand audit already started for this request");
                    continue;
                }
            }
            info!(?step, "applying");
            match self.api.apply(step, &tags).await? {
                StepResult::TaskId(t) => task = Some(t),
                StepResult::AuditArn(_) | StepResult::Done => {}
            }
            if let Step::CreateAudit { name, .. } = step {
                // Remember ownership at once, so a failure later in the plan cannot orphan it.
                record.owned.insert(name.clone());
                self.store.save(stack, record).await?;
            }
            if let Step::DeleteAudit { name } = step {
                record.owned.remove(name);
                self.store.save(stack, record).await?;
            }
            if let Step::CreateSuppression { suppression } = step {
                record.owned_suppressions.insert(suppression.key());
                self.store.save(stack, record).await?;
            }
            if let Step::DeleteSuppression { check_name, resource } = step {
                record.owned_suppressions.remove(&suppression_key(check_name, resource));
                self.store.save(stack, record).await?;
            }
        }
        Ok(task)
    }

    /// Undoes what `stack` owns, as its `OnDelete` says; forgets the stack.
    pub async fn delete(&self, stack: &str) -> Result<HashMap<String, String>, SyncError> {
        let Some(mut record) = self.store.load(stack).await? else {
            info!(stack, "nothing recorded for this stack: nothing to delete");
            return Ok(HashMap::new());
        };
        let actual = self.api.read().await?;
        let mut plan = setup::plan_delete(&actual, &record.owned, record.desired.on_delete);
        let audits = plan.steps.len();
        if record.desired.on_delete == OnDelete::DeleteOwnedAudits {
            plan.steps.extend(suppression::plan_delete(&actual.suppressions, &record.owned_suppressions));
        }
        let suppressions = plan.steps.len() - audits;
        self.execute(stack, &plan, &mut record, None).await?;
        self.store.forget(stack).await?;
        Ok(HashMap::from([
            ("DeletedAudits".to_owned(), audits.to_string()),
            ("DeletedSuppressions".to_owned(), suppressions.to_string()),
        ]))
    }

    /// Compares the account with the last applied setup; reports and optionally repairs drift.
    pub async fn drift_check(&self, stack: &str) -> Result<Value, SyncError> {
        let Some(mut record) = self.store.load(stack).await? else {
            return Ok(json!({ "drift": [], "note": "no setup applied for this stack yet" }));
        };
        let now = now_ms();
        let actual = self.api.read().await?;
        let mut found = setup::drift(&actual, &record.desired);
        found.extend(suppression::drift(
            &actual.suppressions,
            &record.desired.suppressions,
            &record.owned_suppressions,
            now,
        ));
        if found.is_empty() {
            info!(stack, "no drift");
            return Ok(json!({ "drift": [] }));
        }
        let mut repaired = false;
        if self.config.drift_auto_repair {
            let mut plan = setup::plan_apply(&actual, &record.desired, &record.owned, false, self.config.max_audits)?;
            // Declared suppressions past their date are not renewed by a repair.
            let live: Vec<_> =
                record.desired.suppressions.iter().filter(|s| s.expires_ms.is_none_or(|e| e > now)).cloned().collect();
            plan.add_suppressions(suppression::plan(&actual.suppressions, &live, &record.owned_suppressions, now)?);
            self.execute(stack, &plan, &mut record, None).await?;
            record.owned = plan.owned_after;
            record.owned_suppressions = plan.owned_suppressions_after;
            self.store.save(stack, &record).await?;
            repaired = true;
        }
        self.store.put_drift(stack, &found, repaired).await?;
        let report = drift_report(stack, &found, repaired);
        self.publisher.publish(&report.subject, &report.body, &report.attributes).await?;
        warn!(stack, differences = found.len(), repaired, "drift found");
        Ok(json!({ "drift": found, "repaired": repaired }))
    }
}
