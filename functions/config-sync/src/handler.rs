//! From an invocation to the service: three kinds of event.
//! - a CloudFormation custom resource request (`RequestType`): plan, validate, apply, and
//!   **always** answer CloudFormation exactly once with SUCCESS or FAILED and a reason, before
//!   the deadline: on bad properties, API errors, exhausted retries, a panic, or an unreadable
//!   request that still names its `ResponseURL`;
//! - `{"driftCheck": {"stackId": …}}` (the daily schedule): see [`Syncer::drift_check`];
//! - `{"dryRun": {<properties>}, "stackId"?: …}`: the plan, applied nowhere.

use crate::cfn::{Request, RequestKind, Responder};
use crate::sync::{SyncError, Syncer};
use audit_shared::ports::{AuditSetupApi, DigestPublisher, SetupStore};
use audit_shared::setup;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};

/// Time kept back from the Lambda deadline to answer CloudFormation.
pub const ANSWER_MARGIN: Duration = Duration::from_secs(10);

fn text<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    event.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Handles one invocation; `remaining` is the time to the Lambda deadline.
pub async fn handle<A, S, P>(
    syncer: Arc<Syncer<A, S, P>>,
    responder: &Responder,
    event: Value,
    remaining: Duration,
) -> Result<Value, SyncError>
where
    A: AuditSetupApi + 'static,
    S: SetupStore + 'static,
    P: DigestPublisher + 'static,
{
    if event.get("RequestType").is_some() {
        return custom_resource(syncer, responder, &event, remaining).await;
    }
    if let Some(d) = event.get("driftCheck") {
        let stack = text(d, "stackId").ok_or_else(|| SyncError::Event("driftCheck.stackId is required".into()))?;
        return syncer.drift_check(stack).await;
    }
    if let Some(props) = event.get("dryRun") {
        return syncer.dry_run(props, text(&event, "stackId")).await;
    }
    Err(SyncError::Event("not a CloudFormation request, a driftCheck or a dryRun".into()))
}

/// A custom resource request: always answered, exactly once.
async fn custom_resource<A, S, P>(
    syncer: Arc<Syncer<A, S, P>>,
    responder: &Responder,
    event: &Value,
    remaining: Duration,
) -> Result<Value, SyncError>
where
    A: AuditSetupApi + 'static,
    S: SetupStore + 'static,
    P: DigestPublisher + 'static,
{
    let (request, outcome) = match Request::parse(event) {
        Ok(request) => {
            let budget = remaining.saturating_sub(ANSWER_MARGIN).max(Duration::from_secs(1));
            let outcome = run(syncer, request.clone(), budget).await;
            (request, outcome)
        }
        Err(unreadable) => match unreadable.answer {
            Some(request) => (*request, Err(unreadable.reason)),
            None => {
                error!(reason = %unreadable.reason, "CloudFormation request without ResponseURL: cannot answer");
                return Err(SyncError::Event(unreadable.reason));
            }
        },
    };
    answer(responder, &request, outcome).await
}

/// Answers a request whose work ended with `outcome`: SUCCESS with its data, or FAILED with
/// the reason.
async fn answer(
    responder: &Responder,
    request: &Request,
    outcome: Result<HashMap<String, String>, String>,
) -> Result<Value, SyncError> {
    let verb = match request.kind {
        RequestKind::Create => "Create",
        RequestKind::Update => "Update",
        RequestKind::Delete => "Delete",
    };
    let response = request.response(outcome, &format!("{verb} applied"));
    responder.deliver(&request.response_url, &response).await.map_err(|e| SyncError::Event(e.to_string()))?;
    info!(status = ?response.status, request_type = verb, reason = ?response.reason, "answered CloudFormation");
    serde_json::to_value(&response).map_err(|e| SyncError::Event(e.to_string()))
}

/// Answers an invocation when config-sync could not start (`why`: its environment is wrong):
/// a CloudFormation request that names its `ResponseURL` is answered FAILED with the reason,
/// so the stack does not wait for the custom resource's timeout; anything else is an error.
pub async fn refuse(responder: &Responder, event: Value, why: &str) -> Result<Value, SyncError> {
    let reason = format!("config-sync cannot start: {why}");
    if event.get("RequestType").is_none() {
        return Err(SyncError::Event(reason));
    }
    let request = match Request::parse(&event) {
        Ok(request) => request,
        Err(unreadable) => match unreadable.answer {
            Some(request) => *request,
            None => {
                error!(reason = %unreadable.reason, why, "CloudFormation request without ResponseURL: cannot answer");
                return Err(SyncError::Event(format!("{reason}; {}", unreadable.reason)));
            }
        },
    };
    answer(responder, &request, Err(reason)).await
}

/// Runs the request's work under `budget`, turning every way it can end into an outcome.
async fn run<A, S, P>(
    syncer: Arc<Syncer<A, S, P>>,
    request: Request,
    budget: Duration,
) -> Result<HashMap<String, String>, String>
where
    A: AuditSetupApi + 'static,
    S: SetupStore + 'static,
    P: DigestPublisher + 'static,
{
    let work = tokio::spawn(async move {
        match request.kind {
            RequestKind::Create | RequestKind::Update => {
                let desired = setup::parse_desired(&request.properties)?;
                syncer
                    .apply(&request.stack_id, &desired, &request.physical_resource_id, Some(&request.request_id))
                    .await
            }
            RequestKind::Delete => syncer.delete(&request.stack_id).await,
        }
    });
    match tokio::time::timeout(budget, work).await {
        Ok(Ok(Ok(data))) => Ok(data),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(join)) if join.is_panic() => Err(format!("internal error (panic): {join}")),
        Ok(Err(join)) => Err(format!("internal error: {join}")),
        Err(_) => Err(format!(
            "timed out after {} s; the setup may be partly applied, an update will complete it",
            budget.as_secs()
        )),
    }
}
