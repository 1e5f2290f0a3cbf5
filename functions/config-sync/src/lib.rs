//! config-sync: the account's audit configuration and scheduled audits as code.
//!
//! Three kinds of invocation:
//! - a CloudFormation custom resource event (`RequestType`): plan, validate, apply, and
//!   **always** answer CloudFormation (PUT to `ResponseURL`) with SUCCESS or FAILED and a reason,
//!   before the deadline: on bad properties, API errors, exhausted retries, or a panic;
//! - `{"driftCheck": {"stackId": …}}` (the daily schedule): compare the account with the last
//!   applied setup, report drift on the digest topic, store a drift record, repair if enabled;
//! - `{"dryRun": {<properties>}, "stackId"?: …}`: return the plan without applying it.

use audit_shared::ports::{AuditSetupApi, DigestPublisher, PortError, SetupStore, StepResult};
use audit_shared::setup::{self, DesiredSetup, Plan, SetupError, SetupRecord, Step};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{error, info, warn};

/// Tag put on every scheduled audit this function creates.
pub const OWNER_TAG: &str = "managed-by";

/// Why a setup could not be applied (the reason CloudFormation shows).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("invalid property {0}")]
    Invalid(#[from] SetupError),
    #[error("{0}")]
    Api(#[from] PortError),
    #[error("{0}")]
    Event(String),
}

/// Settings from the environment.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// `DRIFT_AUTO_REPAIR` (default false).
    pub drift_auto_repair: bool,
    /// Account quota of scheduled audits (5).
    pub max_audits: usize,
}

impl SyncConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let repair = match get("DRIFT_AUTO_REPAIR").as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(format!("DRIFT_AUTO_REPAIR={other:?} must be true or false")),
        };
        Ok(SyncConfig { drift_auto_repair: repair, max_audits: 5 })
    }
}

/// The service, generic over its ports.
pub struct Syncer<A, S, P> {
    pub api: A,
    pub store: S,
    pub publisher: P,
    pub config: SyncConfig,
    pub http: ResponseClient,
}

/// The HTTP(S) client that PUTs CloudFormation responses.
pub type ResponseClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<hyper::body::Bytes>,
>;

/// A client for HTTPS (presigned S3 URLs, native roots) and plain HTTP (local runs).
pub fn response_client() -> ResponseClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .expect("the system's CA certificates load")
        .https_or_http()
        .enable_http1()
        .build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

fn field<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    event.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl<A, S, P> Syncer<A, S, P>
where
    A: AuditSetupApi + 'static,
    S: SetupStore + 'static,
    P: DigestPublisher + 'static,
{
    /// Handles one invocation; `remaining` is the time to the Lambda deadline.
    pub async fn handle(self: Arc<Self>, event: Value, remaining: Duration) -> Result<Value, SyncError> {
        if event.get("RequestType").is_some() {
            return self.custom_resource(event, remaining).await;
        }
        if let Some(d) = event.get("driftCheck") {
            let stack = field(d, "stackId").ok_or_else(|| SyncError::Event("driftCheck.stackId is required".into()))?;
            return self.drift_check(stack).await;
        }
        if let Some(props) = event.get("dryRun") {
            let desired = setup::parse_desired(props)?;
            let owned = match field(&event, "stackId") {
                Some(stack) => self.store.load(stack).await?.map(|r| r.owned).unwrap_or_default(),
                None => BTreeSet::new(),
            };
            let actual = self.api.read().await?;
            let plan = setup::plan_apply(&actual, &desired, &owned, false, self.config.max_audits)?;
            return Ok(json!({ "dryRun": true, "plan": plan, "drift": setup::drift(&actual, &desired) }));
        }
        Err(SyncError::Event("not a CloudFormation request, a driftCheck or a dryRun".into()))
    }

    /// A custom resource request: always answered, exactly once.
    async fn custom_resource(self: Arc<Self>, event: Value, remaining: Duration) -> Result<Value, SyncError> {
        let Some(url) = field(&event, "ResponseURL").map(str::to_owned) else {
            error!("CloudFormation request without ResponseURL: cannot answer");
            return Err(SyncError::Event("ResponseURL is required".into()));
        };
        let stack = field(&event, "StackId").unwrap_or("unknown-stack").to_owned();
        let logical = field(&event, "LogicalResourceId").unwrap_or("AuditConfiguration").to_owned();
        let physical = field(&event, "PhysicalResourceId").map(str::to_owned).unwrap_or_else(|| {
            let name = stack.split('/').nth(1).unwrap_or("stack");
            format!("{name}-{logical}-audit-configuration")
        });
        let request_type = field(&event, "RequestType").unwrap_or("").to_owned();
        // Leave time to answer: stop working 10 s before the deadline.
        let budget = remaining.saturating_sub(Duration::from_secs(10)).max(Duration::from_secs(1));
        let this = self.clone();
        let (ev, phys, rt) = (event.clone(), physical.clone(), request_type.clone());
        let work = tokio::spawn(async move { this.apply_request(&rt, &ev, &phys).await });
        let outcome = match tokio::time::timeout(budget, work).await {
            Ok(Ok(Ok(data))) => Ok(data),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(join)) if join.is_panic() => Err(format!("internal error (panic): {join}")),
            Ok(Err(join)) => Err(format!("internal error: {join}")),
            Err(_) => Err(format!(
                "timed out after {} s; the setup may be partly applied, an update will complete it",
                budget.as_secs()
            )),
        };
        let (status, reason, data) = match &outcome {
            Ok(data) => ("SUCCESS", format!("{request_type} applied"), data.clone()),
            Err(reason) => ("FAILED", reason.clone(), json!({})),
        };
        // CloudFormation shows at most ~4 KB of reason.
        let reason: String = reason.chars().take(3000).collect();
        let body = json!({
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": physical,
            "StackId": stack,
            "RequestId": field(&event, "RequestId").unwrap_or_default(),
            "LogicalResourceId": logical,
            "NoEcho": false,
            "Data": data,
        });
        self.respond(&url, &body).await?;
        info!(status, request_type, reason = %body["Reason"], "answered CloudFormation");
        Ok(body)
    }

    /// PUTs the response, retrying transient failures a few times.
    async fn respond(&self, url: &str, body: &Value) -> Result<(), SyncError> {
        let text = body.to_string();
        let mut last = String::new();
        for attempt in 0..4u32 {
            // The presigned URL is signed without a content type: send none.
            let req = hyper::Request::put(url)
                .header("content-length", text.len())
                .body(http_body_util::Full::new(hyper::body::Bytes::from(text.clone())))
                .map_err(|e| SyncError::Event(format!("ResponseURL '{url}' is not usable: {e}")))?;
            match tokio::time::timeout(Duration::from_secs(30), self.http.request(req)).await {
                Ok(Ok(r)) if r.status().is_success() => return Ok(()),
                Ok(Ok(r)) => last = format!("HTTP {}", r.status()),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out after 30 s".into(),
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        error!(error = %last, "could not deliver the CloudFormation response");
        Err(SyncError::Event(format!("could not deliver the CloudFormation response: {last}")))
    }

    async fn apply_request(&self, request_type: &str, event: &Value, physical: &str) -> Result<Value, SyncError> {
        let stack = field(event, "StackId").unwrap_or("unknown-stack");
        let request_id = field(event, "RequestId").unwrap_or("unknown-request");
        match request_type {
            "Create" | "Update" => {
                let props = event.get("ResourceProperties").cloned().unwrap_or(Value::Null);
                let desired = setup::parse_desired(&props)?;
                self.apply(stack, &desired, physical, Some(request_id)).await
            }
            "Delete" => self.delete(stack).await,
            other => Err(SyncError::Event(format!("RequestType '{other}' is not Create, Update or Delete"))),
        }
    }

    /// Plans and applies `desired`; records ownership as audits are created.
    pub async fn apply(
        &self,
        stack: &str,
        desired: &DesiredSetup,
        physical: &str,
        start_for: Option<&str>,
    ) -> Result<Value, SyncError> {
        let actual = self.api.read().await?;
        let mut record = self.store.load(stack).await?.unwrap_or(SetupRecord {
            desired: desired.clone(),
            owned: BTreeSet::new(),
            physical_id: physical.to_owned(),
            applied_at: now_ms(),
        });
        let plan = setup::plan_apply(&actual, desired, &record.owned, start_for.is_some(), self.config.max_audits)?;
        for w in &plan.warnings {
            warn!("{w}");
        }
        let task_id = self.execute(stack, &plan, &mut record, start_for).await?;
        record.desired = desired.clone();
        record.owned = plan.owned_after.clone();
        record.applied_at = now_ms();
        self.store.save(stack, &record).await?;
        let after = self.api.read().await?;
        let enabled: Vec<&String> = after.checks.iter().filter(|(_, c)| c.enabled).map(|(n, _)| n).collect();
        let arns: Vec<&String> = record.owned.iter().filter_map(|n| after.audit_arns.get(n)).collect();
        Ok(json!({
            "EnabledChecks": enabled.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
            "ScheduledAuditArns": arns.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
            "OnDemandTaskId": task_id.unwrap_or_default(),
            "Steps": plan.steps.len().to_string(),
            "Warnings": plan.warnings.join("; "),
        }))
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
        }
        Ok(task)
    }

    async fn delete(&self, stack: &str) -> Result<Value, SyncError> {
        let Some(mut record) = self.store.load(stack).await? else {
            info!(stack, "nothing recorded for this stack: nothing to delete");
            return Ok(json!({}));
        };
        let actual = self.api.read().await?;
        let plan = setup::plan_delete(&actual, &record.owned, record.desired.on_delete);
        self.execute(stack, &plan, &mut record, None).await?;
        self.store.forget(stack).await?;
        Ok(json!({ "DeletedAudits": plan.steps.len().to_string() }))
    }

    /// Compares the account with the last applied setup; reports and optionally repairs drift.
    pub async fn drift_check(&self, stack: &str) -> Result<Value, SyncError> {
        let Some(mut record) = self.store.load(stack).await? else {
            return Ok(json!({ "drift": [], "note": "no setup applied for this stack yet" }));
        };
        let actual = self.api.read().await?;
        let found = setup::drift(&actual, &record.desired);
        if found.is_empty() {
            info!(stack, "no drift");
            return Ok(json!({ "drift": [] }));
        }
        let mut repaired = false;
        if self.config.drift_auto_repair {
            let plan = setup::plan_apply(&actual, &record.desired, &record.owned, false, self.config.max_audits)?;
            self.execute(stack, &plan, &mut record, None).await?;
            record.owned = plan.owned_after;
            self.store.save(stack, &record).await?;
            repaired = true;
        }
        self.store.put_drift(stack, &found, repaired).await?;
        let subject: String = format!(
            "Audit setup drift: {} difference{}{}",
            found.len(),
            if found.len() == 1 { "" } else { "s" },
            if repaired { " (repaired)" } else { "" }
        )
        .chars()
        .take(100)
        .collect();
        let mut body = format!("The account's Device Defender audit setup differs from stack {stack}:\n\n");
        for f in &found {
            body.push_str(&format!("  - {f}\n"));
        }
        body.push_str(if repaired {
            "\nThe declared setup was applied again (DRIFT_AUTO_REPAIR=true).\n"
        } else {
            "\nRun a stack update, or set the DriftAutoRepair parameter to true, to restore the declared setup.\n"
        });
        let attrs = vec![("kind".to_owned(), "String", "drift".to_owned())];
        self.publisher.publish(&subject, &body, &attrs).await?;
        warn!(stack, differences = found.len(), repaired, "drift found");
        Ok(json!({ "drift": found, "repaired": repaired }))
    }
}
