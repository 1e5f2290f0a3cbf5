//! The admin API under `/_emulator/`: what AWS would not show (clock, fleet, faults, the SNS
//! outbox, subscriptions waiting for confirmation, queued messages, CloudFormation answers)
//! and what a local run needs to steer (clock advances, drift, faults, accounts, roles, the
//! organization's members, confirming a subscription as its endpoint would). Every answer is
//! JSON.

use crate::faults::Faults;
use crate::organizations::{AccountState, ChangeError, Organization};
use crate::scope::Scope;
use crate::server::{lock, Emu, Emulator};
use crate::wire::query_get;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The admin view of the suppressions (with whether each applies at the virtual now).
pub(crate) async fn suppressions(State(emu): Emu, RawQuery(q): RawQuery) -> Response {
    emu.sync();
    let now = emu.now_ms();
    match emu.admin_tenant(q.as_deref()) {
        Ok((_, t)) => Json(lock(&t.state).suppressions_view(now)).into_response(),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

/// A custom resource's answer to CloudFormation: what a `ResponseURL` (a presigned S3 URL in
/// AWS) pointing at the emulator receives. The body must be the JSON response object
/// (<https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html>).
pub(crate) async fn receive_cfn_response(
    State(emu): Emu,
    axum::extract::Path(path): axum::extract::Path<String>,
    bytes: Bytes,
) -> Response {
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(body) => {
            lock(&emu.cfn_responses).push(json!({ "path": path, "response": body }));
            StatusCode::OK.into_response()
        }
        Err(e) => admin_error(StatusCode::BAD_REQUEST, format!("the response body is not JSON: {e}")),
    }
}

pub(crate) async fn cfn_responses(State(emu): Emu) -> Response {
    Json(json!({ "responses": *lock(&emu.cfn_responses) })).into_response()
}

pub(crate) async fn clear_cfn_responses(State(emu): Emu) -> Response {
    let mut r = lock(&emu.cfn_responses);
    let n = r.len();
    r.clear();
    Json(json!({ "cleared": n })).into_response()
}

pub(crate) fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

pub(crate) async fn health(State(emu): Emu) -> Response {
    let now = emu.now_ms();
    Json(json!({ "status": "ok", "now": now as f64 / 1000.0, "accountId": emu.opts.account_id, "region": emu.opts.region }))
        .into_response()
}

/// The declared accounts, their long-term keys and the account-regions created so far.
pub(crate) async fn accounts(State(emu): Emu) -> Response {
    let t = lock(&emu.tenants);
    let scopes: Vec<Scope> = t.all().into_iter().map(|(s, _)| s).collect();
    Json(json!({ "accounts": t.accounts, "accessKeys": t.keys, "accountRegions": scopes })).into_response()
}

/// `{"accountId": "…", "accessKeyId": "…"?}`: declares an account (and a key acting in it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAccount {
    account_id: String,
    access_key_id: Option<String>,
}

pub(crate) async fn add_account(State(emu): Emu, body: Bytes) -> Response {
    let a: NewAccount = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"accountId\": \"<12 digits>\", \"accessKeyId\": \"…\"}}: {e}"),
            )
        }
    };
    if !crate::sts::is_account(&a.account_id) {
        return admin_error(
            StatusCode::BAD_REQUEST,
            format!("accountId '{}' is not a 12-digit account id", a.account_id),
        );
    }
    let mut t = lock(&emu.tenants);
    t.accounts.insert(a.account_id.clone());
    if let Some(k) = a.access_key_id.filter(|k| !k.is_empty()) {
        t.keys.insert(k, a.account_id.clone());
    }
    Json(json!({ "accounts": t.accounts, "accessKeys": t.keys })).into_response()
}

/// The roles STS lets callers assume.
pub(crate) async fn roles(State(emu): Emu) -> Response {
    Json(json!({ "roles": lock(&emu.sts).roles.values().collect::<Vec<_>>() })).into_response()
}

/// `{"roleArn": "…", "trustedAccounts": ["…"]?, "maxSessionSecs": n?}`: declares a role (and
/// its account).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewRole {
    role_arn: String,
    #[serde(default)]
    trusted_accounts: Vec<String>,
    max_session_secs: Option<i64>,
}

pub(crate) async fn add_role(State(emu): Emu, body: Bytes) -> Response {
    let r: NewRole = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"roleArn\": \"…\", \"trustedAccounts\": [\"…\"]}}: {e}"),
            )
        }
    };
    let spec = if r.trusted_accounts.is_empty() {
        r.role_arn.clone()
    } else {
        format!("{}={}", r.role_arn, r.trusted_accounts.join(","))
    };
    let mut role = match crate::sts::Role::parse(&spec) {
        Ok(role) => role,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e),
    };
    if let Some(m) = r.max_session_secs {
        if !(3600..=43200).contains(&m) {
            return admin_error(StatusCode::BAD_REQUEST, format!("maxSessionSecs {m} must be from 3600 to 43200"));
        }
        role.max_session_secs = m;
    }
    lock(&emu.tenants).accounts.insert(role.account().to_owned());
    let out = json!(role);
    lock(&emu.sts).roles.insert(role.arn.clone(), role);
    Json(out).into_response()
}

pub(crate) async fn reset(State(emu): Emu) -> Response {
    match emu.reset() {
        Ok(()) => Json(json!({ "reset": true })).into_response(),
        Err(e) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn clock_json(emu: &Emulator) -> Value {
    let now = emu.now_ms();
    let iso = chrono::DateTime::from_timestamp_millis(now).map(|t| t.to_rfc3339()).unwrap_or_default();
    let next = emu.next_scheduled_run_ms();
    json!({ "now": now as f64 / 1000.0, "nowIso": iso, "frozen": lock(&emu.clock).is_frozen(),
            "nextScheduledRun": next.map(|n| n as f64 / 1000.0) })
}

pub(crate) async fn clock(State(emu): Emu) -> Response {
    Json(clock_json(&emu)).into_response()
}

/// `{"seconds": n}`, `{"to": epochSeconds}`, or `{"toNextScheduledRun": true}` (to the next
/// scheduled start plus the task duration, so the task has ended).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Advance {
    seconds: Option<f64>,
    to: Option<f64>,
    #[serde(default)]
    to_next_scheduled_run: bool,
}

pub(crate) async fn advance(State(emu): Emu, body: Bytes) -> Response {
    let a: Advance = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"seconds\": n}}, {{\"to\": epochSeconds}} or {{\"toNextScheduledRun\": true}}: {e}"
                ),
            )
        }
    };
    let now = emu.now_ms();
    let target = match (a.seconds, a.to, a.to_next_scheduled_run) {
        (Some(s), None, false) if s >= 0.0 && s.is_finite() => now + (s * 1000.0) as i64,
        (None, Some(t), false) if t.is_finite() => (t * 1000.0) as i64,
        (None, None, true) => match emu.next_scheduled_run_ms() {
            Some(n) => n.max(now) + (emu.opts.task_duration_secs * 1000.0) as i64,
            None => return admin_error(StatusCode::CONFLICT, "no scheduled audit exists"),
        },
        _ => return admin_error(StatusCode::BAD_REQUEST, "give exactly one of seconds (>= 0), to, toNextScheduledRun"),
    };
    if target < now {
        return admin_error(StatusCode::BAD_REQUEST, "the clock only moves forward");
    }
    lock(&emu.clock).advance(target - now);
    let progress = emu.sync();
    let mut out = clock_json(&emu);
    out["tasksStarted"] = json!(progress.tasks_started);
    out["tasksEnded"] = json!(progress.tasks_ended);
    out["tasksEndedIn"] = json!(progress
        .ended_in
        .iter()
        .map(|(s, id)| json!({ "account": s.account, "region": s.region, "taskId": id }))
        .collect::<Vec<_>>());
    Json(out).into_response()
}

pub(crate) async fn fleet(State(emu): Emu, RawQuery(q): RawQuery) -> Response {
    match emu.admin_tenant(q.as_deref()) {
        Ok((_, t)) => Json(json!(lock(&t.state).fleet.snapshot())).into_response(),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

pub(crate) async fn drift(State(emu): Emu, RawQuery(q): RawQuery) -> Response {
    match emu.admin_tenant(q.as_deref()) {
        Ok((_, t)) => {
            let mut st = lock(&t.state);
            st.fleet.drift();
            Json(json!(st.fleet.snapshot())).into_response()
        }
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

pub(crate) async fn get_faults(State(emu): Emu, RawQuery(q): RawQuery) -> Response {
    match emu.admin_tenant(q.as_deref()) {
        Ok((_, t)) => Json(json!(lock(&t.faults).faults)).into_response(),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

/// How many calls of one account-region (`?account=&region=`) were answered with throttling.
pub(crate) async fn throttled(State(emu): Emu, RawQuery(q): RawQuery) -> Response {
    match emu.admin_tenant(q.as_deref()) {
        Ok((scope, t)) => {
            Json(json!({ "account": scope.account, "region": scope.region, "throttled": lock(&t.faults).throttled }))
                .into_response()
        }
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

/// Replaces the faults of one account-region (`?account=&region=`), or of every one (and of
/// those created later) without a query.
pub(crate) async fn put_faults(State(emu): Emu, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let f: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("invalid faults: {e}")),
    };
    if let Err(e) = f.validate() {
        return admin_error(StatusCode::BAD_REQUEST, e);
    }
    if q.as_deref().is_some_and(|q| !q.is_empty()) {
        match emu.admin_tenant(q.as_deref()) {
            Ok((_, t)) => lock(&t.faults).set(f.clone()),
            Err(e) => return admin_error(StatusCode::BAD_REQUEST, e),
        }
    } else {
        let mut tenants = lock(&emu.tenants);
        tenants.default_faults = f.clone();
        for (_, t) in tenants.all() {
            lock(&t.faults).set(f.clone());
        }
    }
    Json(json!(f)).into_response()
}

/// The audit notification of an ended task, whether or not an SNS target was set: what the
/// service would publish (handy for building test events).
pub(crate) async fn task_notification(State(emu): Emu, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    emu.sync();
    let t = match emu.admin_tenant(q.as_deref()) {
        Ok((_, t)) => t,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e),
    };
    let st = lock(&t.state);
    match st.tasks.iter().find(|t| t.id == id) {
        Some(t) if t.status.is_terminal() => Json(json!(st.notification(t))).into_response(),
        Some(_) => admin_error(StatusCode::CONFLICT, format!("task {id} is still IN_PROGRESS")),
        None => admin_error(StatusCode::NOT_FOUND, format!("no task {id}")),
    }
}

pub(crate) async fn queues(State(emu): Emu) -> Response {
    Json(lock(&emu.sqs).snapshot()).into_response()
}

/// Every message of one queue, delayed and in-flight ones included.
pub(crate) async fn queue_messages(
    State(emu): Emu,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    match lock(&emu.sqs).peek(&name) {
        Some(v) => Json(v).into_response(),
        None => admin_error(StatusCode::NOT_FOUND, format!("no queue named {name}")),
    }
}

pub(crate) async fn outbox(State(emu): Emu, RawQuery(q): RawQuery) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(q.unwrap_or_default().as_bytes()).into_owned().collect();
    let topic = query_get(&pairs, "topicArn").map(str::to_owned);
    let source = query_get(&pairs, "source").map(str::to_owned);
    let sns = lock(&emu.sns);
    let messages: Vec<_> = sns
        .outbox
        .iter()
        .filter(|m| topic.as_ref().is_none_or(|t| *t == m.topic_arn) && source.as_ref().is_none_or(|s| *s == m.source))
        .collect();
    Json(json!({ "messages": messages })).into_response()
}

pub(crate) async fn clear_outbox(State(emu): Emu) -> Response {
    let mut sns = lock(&emu.sns);
    let n = sns.outbox.len();
    sns.outbox.clear();
    Json(json!({ "cleared": n })).into_response()
}

/// Every SNS subscription, pending ones with their token and the confirmation message their
/// endpoint would get (`aws sns confirm-subscription --token` takes the token).
pub(crate) async fn subscriptions(State(emu): Emu) -> Response {
    let now = emu.now_ms();
    Json(lock(&emu.sns).subscriptions_view(now)).into_response()
}

/// `{"subscriptionArn": "…"}` or `{"topicArn": "…", "endpoint": "…"}`: confirms a pending
/// subscription as its endpoint would by following the confirmation link (the e-mail's
/// "Confirm subscription").
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Confirm {
    subscription_arn: Option<String>,
    topic_arn: Option<String>,
    endpoint: Option<String>,
}

pub(crate) async fn confirm_subscription(State(emu): Emu, body: Bytes) -> Response {
    let c: Confirm = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"subscriptionArn\": \"…\"}} or {{\"topicArn\": \"…\", \"endpoint\": \"…\"}}: {e}"),
            )
        }
    };
    let by_endpoint = c.topic_arn.as_deref().zip(c.endpoint.as_deref());
    if c.subscription_arn.is_none() == by_endpoint.is_none() {
        return admin_error(StatusCode::BAD_REQUEST, "give subscriptionArn, or topicArn and endpoint");
    }
    match lock(&emu.sns).confirm_by_endpoint(c.subscription_arn.as_deref(), by_endpoint) {
        Ok(sub) => Json(json!(sub)).into_response(),
        Err(e) if e.status == 404 => admin_error(StatusCode::NOT_FOUND, e.message),
        Err(e) => admin_error(StatusCode::CONFLICT, e.message),
    }
}

/// The organization: its id, management account, readers, members with their state, and the
/// accounts that left.
pub(crate) async fn organization(State(emu): Emu) -> Response {
    let declared = lock(&emu.tenants).accounts.clone();
    Json(lock(&emu.organization).view(&declared)).into_response()
}

/// `{"state": "ACTIVE"|"SUSPENDED"|"PENDING_CLOSURE"|"CLOSED"|"PENDING_ACTIVATION"}`: a
/// member's state, as `ListAccounts` shows it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewState {
    state: String,
}

pub(crate) async fn set_account_state(State(emu): Emu, Path(id): Path<String>, body: Bytes) -> Response {
    let expected =
        "expected {\"state\": \"ACTIVE\" | \"SUSPENDED\" | \"PENDING_CLOSURE\" | \"CLOSED\" | \"PENDING_ACTIVATION\"}";
    let state = match serde_json::from_slice::<NewState>(&body) {
        Ok(s) => match AccountState::parse(&s.state) {
            Some(st) => st,
            None => return admin_error(StatusCode::BAD_REQUEST, format!("{expected}, got '{}'", s.state)),
        },
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("{expected}: {e}")),
    };
    organization_change(&emu, |org, declared| org.set_state(&id, state, declared))
}

/// The account leaves the organization: `ListAccounts` no longer lists it; the account itself
/// (its Device Defender, keys, roles) goes on.
pub(crate) async fn leave_organization(State(emu): Emu, Path(id): Path<String>) -> Response {
    organization_change(&emu, |org, declared| org.leave(&id, declared))
}

fn organization_change(
    emu: &Emulator,
    change: impl FnOnce(&mut Organization, &BTreeSet<String>) -> Result<(), ChangeError>,
) -> Response {
    let declared = lock(&emu.tenants).accounts.clone();
    let mut org = lock(&emu.organization);
    match change(&mut org, &declared) {
        Ok(()) => Json(org.view(&declared)).into_response(),
        Err(ChangeError::NotFound(m)) => admin_error(StatusCode::NOT_FOUND, m),
        Err(ChangeError::Conflict(m)) => admin_error(StatusCode::CONFLICT, m),
    }
}
