//! The HTTP server: the routing table (audit API, SNS, admin) in one place, one handler per
//! operation, and [`Emulator::call`], the path every audit call takes (latency, faults, clock,
//! operation, notifications, wire error).

use crate::clock::Clock;
use crate::error::{ApiError, ErrorKind};
use crate::faults::{FaultInjector, Faults};
use crate::fleet::FleetOptions;
use crate::operation::Op;
use crate::options::Options;
use crate::sns::Sns;
use crate::state::{AuditState, Limits, Progress};
use crate::wire::{query_get, query_pairs, Body};
use crate::{delivery, sns};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The running emulator's shared state.
pub struct Emulator {
    pub opts: Options,
    pub base_url: String,
    pub http: reqwest::Client,
    /// Virtual time at start, to which a reset returns.
    start_ms: i64,
    clock: Mutex<Clock>,
    state: Mutex<AuditState>,
    faults: Mutex<FaultInjector>,
    sns: Mutex<Sns>,
    pub(crate) sqs: Mutex<crate::sqs::Sqs>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one handler must not take the emulator down with poisoned locks.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Emulator {
    /// Builds the emulator from validated options.
    pub fn new(opts: Options, base_url: String) -> Result<Arc<Self>, String> {
        let start_ms = match &opts.start_time {
            Some(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| format!("--start-time '{s}': {e}"))?
                .timestamp_millis(),
            None => chrono::Utc::now().timestamp_millis(),
        };
        opts.faults.validate()?;
        let state = new_state(&opts)?;
        Ok(Arc::new(Emulator {
            clock: Mutex::new(Clock::new(start_ms, opts.frozen_clock)),
            state: Mutex::new(state),
            faults: Mutex::new(FaultInjector::new(opts.faults.clone(), opts.seed)),
            sns: Mutex::new(Sns::new(&opts.region, &opts.account_id)),
            sqs: Mutex::new(new_sqs(&opts, &base_url)),
            http: reqwest::Client::builder().timeout(Duration::from_secs(900)).build().map_err(|e| e.to_string())?,
            base_url,
            start_ms,
            opts,
        }))
    }

    fn now_ms(&self) -> i64 {
        lock(&self.clock).now_ms()
    }

    /// Runs what is due on the virtual clock and sends the notifications it produced.
    pub fn sync(self: &Arc<Self>) -> Progress {
        let now = self.now_ms();
        let failing = lock(&self.faults).faults.failing_checks.clone();
        let lookup = |c: &str| failing.iter().find(|f| f.check_name == c).map(|f| f.error_code.clone());
        let (progress, outgoing) = {
            let mut st = lock(&self.state);
            let p = st.advance(now, &lookup);
            (p, std::mem::take(&mut st.outgoing))
        };
        self.send_notifications(outgoing, now);
        progress
    }

    fn send_notifications(self: &Arc<Self>, outgoing: Vec<crate::state::Outgoing>, now: i64) {
        for o in outgoing {
            let body = serde_json::to_string(&o.notification).expect("notification serialises");
            let published = lock(&self.sns).publish(&o.topic_arn, None, body, Default::default(), now, "audit");
            match published {
                Ok(p) => {
                    tracing::info!(task_id = %o.notification.task_id, status = %o.notification.task_status, topic = %o.topic_arn, "audit notification published");
                    self.deliver(p);
                }
                Err(e) => tracing::warn!(error = ?e, "audit notification not published"),
            }
        }
    }

    fn deliver(self: &Arc<Self>, p: sns::Published) {
        for sub in p.lambda_subscriptions {
            delivery::spawn(self.clone(), p.outbox_index, p.message.clone(), sub);
        }
    }

    /// Writes a delivery attempt's outcome into the outbox.
    pub fn record_delivery(
        &self,
        index: usize,
        subscription_arn: &str,
        attempt: u32,
        outcome: Result<(), String>,
        done: bool,
    ) {
        let mut sns = lock(&self.sns);
        let Some(msg) = sns.outbox.get_mut(index) else { return };
        if let Some(d) = msg.deliveries.iter_mut().find(|d| d.subscription_arn == subscription_arn) {
            d.attempts = attempt;
            match outcome {
                Ok(()) => {
                    d.status = "delivered".into();
                    d.last_error = None;
                }
                Err(e) => {
                    d.status = if done { "failed" } else { "pending" }.into();
                    d.last_error = Some(e);
                }
            }
        }
    }

    /// The path of every audit call: latency, rate limit and injected faults, clock, the
    /// operation itself under the state lock, then the notifications it produced.
    async fn call<F>(self: &Arc<Self>, op: Op, f: F) -> Response
    where
        F: FnOnce(&mut AuditState, i64) -> Result<Value, ApiError>,
    {
        let latency = lock(&self.faults).faults.latency_ms;
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let admitted = lock(&self.faults).admit(op);
        let result = admitted.and_then(|()| {
            self.sync();
            let now = self.now_ms();
            let (result, outgoing) = {
                let mut st = lock(&self.state);
                let r = f(&mut st, now);
                (r, std::mem::take(&mut st.outgoing))
            };
            self.send_notifications(outgoing, now);
            result
        });
        match result {
            Ok(v) => Json(v).into_response(),
            Err(e) => {
                debug_assert!(op.models(e.kind), "{} must not answer {}", op.name(), e.kind.code());
                tracing::debug!(op = op.name(), code = e.kind.code(), message = %e.message, "audit call rejected");
                e.into_response()
            }
        }
    }

    /// Back to the state at start: configuration, audits, tasks, fleet, clock, topics, outbox, faults.
    fn reset(&self) -> Result<(), String> {
        let fresh = new_state(&self.opts)?;
        *lock(&self.state) = fresh;
        *lock(&self.clock) = Clock::new(self.start_ms, self.opts.frozen_clock);
        lock(&self.faults).set(self.opts.faults.clone());
        *lock(&self.sns) = Sns::new(&self.opts.region, &self.opts.account_id);
        *lock(&self.sqs) = new_sqs(&self.opts, &self.base_url);
        Ok(())
    }
}

fn new_sqs(opts: &Options, base_url: &str) -> crate::sqs::Sqs {
    let mut sqs = crate::sqs::Sqs::new(&opts.region, &opts.account_id, base_url);
    for (queue, _) in &opts.sqs_lambda {
        sqs.ensure_queue(queue);
    }
    sqs
}

fn new_state(opts: &Options) -> Result<AuditState, String> {
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
        seed: opts.seed,
        devices: opts.fleet_devices,
        noncompliant_share: opts.noncompliant_share,
        drift_share: opts.drift_share,
        account_id: opts.account_id.clone(),
        region: opts.region.clone(),
    };
    Ok(AuditState::new(
        opts.account_id.clone(),
        opts.region.clone(),
        opts.seed,
        limits,
        fleet,
        opts.severity_overrides()?,
    ))
}

type Emu = State<Arc<Emulator>>;

fn body_of(bytes: &Bytes) -> Result<Body, ApiError> {
    Body::parse(bytes)
}

/// The routing table.
pub fn router(emu: Arc<Emulator>) -> Router {
    Router::new()
        // The 13 audit operations of configuration, audits, tasks and findings.
        .route("/audit/configuration", get(describe_config).patch(update_config).delete(delete_config))
        .route("/audit/scheduledaudits", get(list_scheduled))
        .route(
            "/audit/scheduledaudits/",
            get(empty_audit_name).post(empty_audit_name).patch(empty_audit_name).delete(empty_audit_name),
        )
        .route(
            "/audit/scheduledaudits/{name}",
            post(create_scheduled).get(describe_scheduled).patch(update_scheduled).delete(delete_scheduled),
        )
        .route("/audit/tasks", post(start_task).get(list_tasks))
        .route("/audit/tasks/", get(empty_task_id))
        .route("/audit/tasks/{id}", get(describe_task))
        .route("/audit/tasks/{id}/cancel", put(cancel_task))
        .route("/audit/findings", post(list_findings))
        // The 5 suppression operations.
        .route("/audit/suppressions/create", post(create_suppression))
        .route("/audit/suppressions/describe", post(describe_suppression))
        .route("/audit/suppressions/update", axum::routing::patch(update_suppression))
        .route("/audit/suppressions/delete", post(delete_suppression))
        .route("/audit/suppressions/list", post(list_suppressions))
        // SNS (awsQuery).
        .route("/", post(query_or_json_action))
        // Admin.
        .route("/_emulator/health", get(health))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/clock", get(clock))
        .route("/_emulator/clock/advance", post(advance))
        .route("/_emulator/fleet", get(fleet))
        .route("/_emulator/fleet/drift", post(drift))
        .route("/_emulator/suppressions", get(suppressions))
        .route("/_emulator/faults", get(get_faults).put(put_faults))
        .route("/_emulator/outbox", get(outbox).delete(clear_outbox))
        .route("/_emulator/queues", get(queues))
        .route("/_emulator/notifications/{task_id}", get(task_notification))
        .fallback(unknown_operation)
        .method_not_allowed_fallback(unknown_operation)
        .layer(middleware::from_fn(request_id))
        .with_state(emu)
}

async fn request_id(req: Request<axum::body::Body>, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let id = uuid::Uuid::new_v4().to_string();
    resp.headers_mut().insert("x-amzn-RequestId", HeaderValue::from_str(&id).expect("uuid is ascii"));
    resp
}

async fn unknown_operation(req: Request<axum::body::Body>) -> Response {
    ApiError::new(ErrorKind::UnknownOperation, format!("No operation matches {} {}", req.method(), req.uri().path()))
        .into_response()
}

async fn empty_audit_name() -> Response {
    ApiError::field("scheduledAuditName", "", "Member must have length greater than or equal to 1").into_response()
}

async fn empty_task_id() -> Response {
    ApiError::field("taskId", "", "Member must have length greater than or equal to 1").into_response()
}

async fn create_suppression(State(emu): Emu, bytes: Bytes) -> Response {
    emu.call(Op::CreateAuditSuppression, |st, now| st.create_suppression(&body_of(&bytes)?, now)).await
}

async fn describe_suppression(State(emu): Emu, bytes: Bytes) -> Response {
    emu.call(Op::DescribeAuditSuppression, |st, _| st.describe_suppression(&body_of(&bytes)?)).await
}

async fn update_suppression(State(emu): Emu, bytes: Bytes) -> Response {
    emu.call(Op::UpdateAuditSuppression, |st, now| st.update_suppression(&body_of(&bytes)?, now)).await
}

async fn delete_suppression(State(emu): Emu, bytes: Bytes) -> Response {
    emu.call(Op::DeleteAuditSuppression, |st, _| st.delete_suppression(&body_of(&bytes)?)).await
}

async fn list_suppressions(State(emu): Emu, bytes: Bytes) -> Response {
    emu.call(Op::ListAuditSuppressions, |st, _| st.list_suppressions(&body_of(&bytes)?)).await
}

/// The admin view of the suppressions (with whether each applies at the virtual now).
async fn suppressions(State(emu): Emu) -> Response {
    emu.sync();
    let now = emu.now_ms();
    Json(lock(&emu.state).suppressions_view(now)).into_response()
}

async fn update_config(State(emu): Emu, bytes: Bytes) -> Response {
    emu.call(Op::UpdateAccountAuditConfiguration, |st, _| st.update_config(&body_of(&bytes)?)).await
}

async fn describe_config(State(emu): Emu) -> Response {
    emu.call(Op::DescribeAccountAuditConfiguration, |st, _| Ok(st.describe_config())).await
}

async fn delete_config(State(emu): Emu, RawQuery(q): RawQuery) -> Response {
    emu.call(Op::DeleteAccountAuditConfiguration, |st, _| {
        let q = query_pairs(q.as_deref())?;
        st.delete_config(query_get(&q, "deleteScheduledAudits"))
    })
    .await
}

async fn create_scheduled(State(emu): Emu, Path(name): Path<String>, bytes: Bytes) -> Response {
    emu.call(Op::CreateScheduledAudit, |st, now| st.create_scheduled(&name, &body_of(&bytes)?, now)).await
}

async fn list_scheduled(State(emu): Emu, RawQuery(q): RawQuery) -> Response {
    emu.call(Op::ListScheduledAudits, |st, _| {
        let q = query_pairs(q.as_deref())?;
        st.list_scheduled(query_get(&q, "nextToken"), crate::wire::query_int(&q, "maxResults")?)
    })
    .await
}

async fn describe_scheduled(State(emu): Emu, Path(name): Path<String>) -> Response {
    emu.call(Op::DescribeScheduledAudit, |st, _| st.describe_scheduled(&name)).await
}

async fn update_scheduled(State(emu): Emu, Path(name): Path<String>, bytes: Bytes) -> Response {
    emu.call(Op::UpdateScheduledAudit, |st, now| st.update_scheduled(&name, &body_of(&bytes)?, now)).await
}

async fn delete_scheduled(State(emu): Emu, Path(name): Path<String>) -> Response {
    emu.call(Op::DeleteScheduledAudit, |st, _| st.delete_scheduled(&name)).await
}

async fn start_task(State(emu): Emu, bytes: Bytes) -> Response {
    emu.call(Op::StartOnDemandAuditTask, |st, now| st.start_on_demand(&body_of(&bytes)?, now)).await
}

async fn describe_task(State(emu): Emu, Path(id): Path<String>) -> Response {
    emu.call(Op::DescribeAuditTask, |st, _| st.describe_task(&id)).await
}

async fn list_tasks(State(emu): Emu, RawQuery(q): RawQuery) -> Response {
    emu.call(Op::ListAuditTasks, |st, now| st.list_tasks(&query_pairs(q.as_deref())?, now)).await
}

async fn cancel_task(State(emu): Emu, Path(id): Path<String>) -> Response {
    emu.call(Op::CancelAuditTask, |st, _| st.cancel_task(&id)).await
}

async fn list_findings(State(emu): Emu, bytes: Bytes) -> Response {
    emu.call(Op::ListAuditFindings, |st, now| st.list_findings(&body_of(&bytes)?, now)).await
}

/// `POST /`: SQS (awsJson1.0, `X-Amz-Target: AmazonSQS.*`) or SNS (awsQuery form).
async fn query_or_json_action(State(emu): Emu, headers: axum::http::HeaderMap, q: RawQuery, bytes: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    match target.strip_prefix("AmazonSQS.") {
        Some(action) => sqs_action(&emu, action, &bytes),
        None => sns_action(State(emu), q, bytes).await,
    }
}

fn sqs_action(emu: &Emulator, action: &str, bytes: &Bytes) -> Response {
    let body: Value = if bytes.is_empty() { json!({}) } else { serde_json::from_slice(bytes).unwrap_or(Value::Null) };
    let result = if body.is_object() {
        lock(&emu.sqs).handle(action, &body)
    } else {
        Err(crate::sqs::SqsError {
            code: "InvalidParameterValue",
            message: "the request body must be a JSON object".into(),
        })
    };
    let (status, v) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_json()),
    };
    (status, [("content-type", "application/x-amz-json-1.0")], v.to_string()).into_response()
}

async fn queues(State(emu): Emu) -> Response {
    Json(lock(&emu.sqs).snapshot()).into_response()
}

async fn sns_action(State(emu): Emu, RawQuery(q): RawQuery, bytes: Bytes) -> Response {
    emu.sync();
    let mut params: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    params.extend(form_urlencoded::parse(q.unwrap_or_default().as_bytes()).into_owned());
    let request_id = uuid::Uuid::new_v4().to_string();
    let now = emu.now_ms();
    let result = lock(&emu.sns).handle(&params, now, &request_id);
    let (status, xml) = match result {
        Ok(r) => {
            if let Some(p) = r.published {
                emu.deliver(p);
            }
            (StatusCode::OK, r.xml)
        }
        Err(e) => (StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.to_xml(&request_id)),
    };
    (status, [("content-type", "text/xml")], xml).into_response()
}

fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

async fn health(State(emu): Emu) -> Response {
    let now = emu.now_ms();
    Json(json!({ "status": "ok", "now": now as f64 / 1000.0, "accountId": emu.opts.account_id, "region": emu.opts.region }))
        .into_response()
}

async fn reset(State(emu): Emu) -> Response {
    match emu.reset() {
        Ok(()) => Json(json!({ "reset": true })).into_response(),
        Err(e) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn clock_json(emu: &Emulator) -> Value {
    let now = emu.now_ms();
    let iso = chrono::DateTime::from_timestamp_millis(now).map(|t| t.to_rfc3339()).unwrap_or_default();
    let next = lock(&emu.state).next_scheduled_run_ms();
    json!({ "now": now as f64 / 1000.0, "nowIso": iso, "frozen": lock(&emu.clock).is_frozen(),
            "nextScheduledRun": next.map(|n| n as f64 / 1000.0) })
}

async fn clock(State(emu): Emu) -> Response {
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

async fn advance(State(emu): Emu, body: Bytes) -> Response {
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
        (None, None, true) => match lock(&emu.state).next_scheduled_run_ms() {
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
    Json(out).into_response()
}

async fn fleet(State(emu): Emu) -> Response {
    Json(json!(lock(&emu.state).fleet.snapshot())).into_response()
}

async fn drift(State(emu): Emu) -> Response {
    let mut st = lock(&emu.state);
    st.fleet.drift();
    Json(json!(st.fleet.snapshot())).into_response()
}

async fn get_faults(State(emu): Emu) -> Response {
    Json(json!(lock(&emu.faults).faults)).into_response()
}

async fn put_faults(State(emu): Emu, body: Bytes) -> Response {
    let f: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("invalid faults: {e}")),
    };
    if let Err(e) = f.validate() {
        return admin_error(StatusCode::BAD_REQUEST, e);
    }
    lock(&emu.faults).set(f.clone());
    Json(json!(f)).into_response()
}

async fn outbox(State(emu): Emu, RawQuery(q): RawQuery) -> Response {
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

async fn clear_outbox(State(emu): Emu) -> Response {
    let mut sns = lock(&emu.sns);
    let n = sns.outbox.len();
    sns.outbox.clear();
    Json(json!({ "cleared": n })).into_response()
}

/// The audit notification of an ended task, whether or not an SNS target was set: what the
/// service would publish (handy for building test events).
async fn task_notification(State(emu): Emu, Path(id): Path<String>) -> Response {
    emu.sync();
    let st = lock(&emu.state);
    match st.tasks.iter().find(|t| t.id == id) {
        Some(t) if t.status.is_terminal() => Json(json!(st.notification(t))).into_response(),
        Some(_) => admin_error(StatusCode::CONFLICT, format!("task {id} is still IN_PROGRESS")),
        None => admin_error(StatusCode::NOT_FOUND, format!("no task {id}")),
    }
}
