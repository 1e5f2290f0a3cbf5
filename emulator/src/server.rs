//! The HTTP server: the routing table (IoT API, the services at `POST /`, admin) in one place,
//! one handler per IoT operation, and [`Emulator::call`], the path every IoT call takes
//! (latency, faults, clock, operation, notifications, wire error). The services at `POST /`
//! are [`crate::messaging`], the admin API [`crate::admin`].

use crate::admin::{
    accounts, add_account, add_role, advance, cfn_responses, clear_cfn_responses, clear_outbox, clock,
    confirm_subscription, drift, fleet, get_faults, health, leave_organization, organization, outbox, put_faults,
    queue_messages, queues, receive_cfn_response, reset, roles, set_account_state, subscriptions, suppressions,
    task_notification, throttled,
};
use crate::clock::Clock;
use crate::error::{ApiError, ErrorKind};
use crate::operation::Op;
use crate::options::Options;
use crate::organizations::Organization;
use crate::scope::{credential_scope, is_region, Caller, Scope};
use crate::sns::Sns;
use crate::state::{AuditState, Progress};
use crate::sts::Sts;
use crate::tenants::{fleet_seed, new_state, Tenant, Tenants};
use crate::wire::{query_get, query_pairs, Body};
use crate::{delivery, sns};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The running emulator's shared state.
pub struct Emulator {
    pub opts: Options,
    pub base_url: String,
    pub http: reqwest::Client,
    /// Virtual time at start, to which a reset returns.
    start_ms: i64,
    pub(crate) clock: Mutex<Clock>,
    /// Every account-region's Device Defender and quotas.
    pub(crate) tenants: Mutex<Tenants>,
    pub(crate) sns: Mutex<Sns>,
    pub(crate) sts: Mutex<Sts>,
    pub(crate) sqs: Mutex<crate::sqs::Sqs>,
    /// The AWS organization of every account served (Organizations `ListAccounts`).
    pub(crate) organization: Mutex<Organization>,
    /// What custom resources answered CloudFormation (PUT to a ResponseURL pointing here).
    pub(crate) cfn_responses: Mutex<Vec<Value>>,
}

/// Locks a mutex, recovering it if a handler panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
        let (tenants, sts) = new_identities(&opts)?;
        let organization = Organization::from_options(&opts, start_ms)?;
        Ok(Arc::new(Emulator {
            organization: Mutex::new(organization),
            clock: Mutex::new(Clock::new(start_ms, opts.frozen_clock)),
            tenants: Mutex::new(tenants),
            sns: Mutex::new(Sns::new()),
            sts: Mutex::new(sts),
            sqs: Mutex::new(new_sqs(&opts, &base_url, start_ms)),
            cfn_responses: Mutex::new(Vec::new()),
            http: reqwest::Client::builder().timeout(Duration::from_secs(900)).build().map_err(|e| e.to_string())?,
            base_url,
            start_ms,
            opts,
        }))
    }

    /// Virtual now, epoch milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        lock(&self.clock).now_ms()
    }

    /// The account-region of `--account-id` and `--region`.
    pub fn default_scope(&self) -> Scope {
        Scope { account: self.opts.account_id.clone(), region: self.opts.region.clone() }
    }

    /// The account-region, created on first use (declared accounts, valid regions only).
    fn tenant(&self, scope: &Scope) -> Result<Arc<Tenant>, String> {
        let default = self.default_scope();
        let seed = fleet_seed(self.opts.seed, scope, &default);
        lock(&self.tenants).get_or_create(scope, |s| new_state(&self.opts, s, &default), seed)
    }

    /// Who calls: the account of the request's access key (declared, or issued by STS;
    /// otherwise the default account) and the region of its SigV4 credential scope.
    pub(crate) fn caller(&self, headers: &axum::http::HeaderMap) -> Result<Caller, ApiError> {
        let default = self.default_scope();
        let user = |account: &str, key: &str| Caller {
            scope: Scope { account: account.to_owned(), region: default.region.clone() },
            arn: format!("arn:aws:iam::{account}:user/emulator"),
            user_id: key.to_owned(),
        };
        let auth = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let Some((key, region)) = credential_scope(auth) else { return Ok(user(&default.account, "anonymous")) };
        let region = if is_region(region) { region.to_owned() } else { default.region.clone() };
        let now = self.now_ms();
        let sts = lock(&self.sts);
        if let Some(issued) = sts.account_of(key, now) {
            return Ok(Caller {
                scope: Scope { account: issued.account.clone(), region },
                arn: issued.arn.clone(),
                user_id: issued.user_id.clone(),
            });
        }
        if sts.expired(key, now) {
            return Err(ApiError::new(
                ErrorKind::ExpiredToken,
                "The security token included in the request is expired",
            ));
        }
        drop(sts);
        let account = lock(&self.tenants).keys.get(key).cloned().unwrap_or(default.account.clone());
        let mut c = user(&account, key);
        c.scope.region = region;
        Ok(c)
    }

    /// Runs what is due on the virtual clock in every account-region and sends the
    /// notifications it produced.
    pub fn sync(self: &Arc<Self>) -> Progress {
        let now = self.now_ms();
        let all = lock(&self.tenants).all();
        let mut progress = Progress::default();
        let mut outgoing = Vec::new();
        for (scope, t) in all {
            let failing = lock(&t.faults).faults.failing_checks.clone();
            let lookup = |c: &str| failing.iter().find(|f| f.check_name == c).map(|f| f.error_code.clone());
            let mut st = lock(&t.state);
            let p = st.advance(now, &lookup);
            progress.tasks_started.extend(p.tasks_started);
            for id in p.tasks_ended {
                progress.ended_in.push((scope.clone(), id.clone()));
                progress.tasks_ended.push(id);
            }
            outgoing.extend(std::mem::take(&mut st.outgoing));
        }
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

    /// Sends a published message to its subscriptions: queues now, Lambdas in the background.
    pub(crate) fn deliver(self: &Arc<Self>, p: sns::Published) {
        self.to_queues(p.to_queues);
        for sub in p.lambda_subscriptions {
            delivery::spawn(self.clone(), p.outbox_index, p.message.clone(), sub);
        }
    }

    /// SNS messages for `sqs` subscriptions, into the emulator's queues (others are logged).
    pub(crate) fn to_queues(&self, messages: Vec<sns::ToQueue>) {
        let now = self.now_ms();
        let mut sqs = lock(&self.sqs);
        for m in messages {
            if !sqs.deliver_from_sns(&m, SNS_SENDER, now) {
                tracing::warn!(queue = %m.queue_arn, "sqs subscription to a queue the emulator does not have: not delivered");
            }
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

    /// The path of every audit call: the caller's account-region, latency, its rate limit and
    /// injected faults, clock, the operation itself under its state lock, then the
    /// notifications it produced.
    async fn call<F>(self: &Arc<Self>, op: Op, headers: &axum::http::HeaderMap, f: F) -> Response
    where
        F: FnOnce(&mut AuditState, i64) -> Result<Value, ApiError>,
    {
        let tenant = match self.caller(headers) {
            Ok(c) => match self.tenant(&c.scope) {
                Ok(t) => t,
                Err(m) => return ApiError::new(ErrorKind::UnrecognizedClient, m).into_response(),
            },
            Err(e) => return e.into_response(),
        };
        let latency = lock(&tenant.faults).faults.latency_ms;
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let admitted = lock(&tenant.faults).admit(op);
        let result = admitted.and_then(|()| {
            self.sync();
            let now = self.now_ms();
            let (result, outgoing) = {
                let mut st = lock(&tenant.state);
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

    /// Back to the state at start: every account-region (configuration, audits, tasks, fleet,
    /// faults), clock, topics, outbox, issued credentials, queues, the organization.
    pub(crate) fn reset(&self) -> Result<(), String> {
        let (tenants, sts) = new_identities(&self.opts)?;
        *lock(&self.tenants) = tenants;
        *lock(&self.sts) = sts;
        *lock(&self.organization) = Organization::from_options(&self.opts, self.start_ms)?;
        self.tenant(&self.default_scope())?;
        *lock(&self.clock) = Clock::new(self.start_ms, self.opts.frozen_clock);
        *lock(&self.sns) = Sns::new();
        *lock(&self.sqs) = new_sqs(&self.opts, &self.base_url, self.start_ms);
        lock(&self.cfn_responses).clear();
        Ok(())
    }

    /// The next scheduled start in any account-region.
    pub(crate) fn next_scheduled_run_ms(&self) -> Option<i64> {
        lock(&self.tenants).all().iter().filter_map(|(_, t)| lock(&t.state).next_scheduled_run_ms()).min()
    }

    /// The account-region an admin request names (`account`, `region` in its query; default
    /// the default ones); created if needed.
    pub(crate) fn admin_tenant(&self, q: Option<&str>) -> Result<(Scope, Arc<Tenant>), String> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(q.unwrap_or_default().as_bytes()).into_owned().collect();
        let default = self.default_scope();
        let scope = Scope {
            account: query_get(&pairs, "account").map_or(default.account, str::to_owned),
            region: query_get(&pairs, "region").map_or(default.region, str::to_owned),
        };
        let t = self.tenant(&scope)?;
        Ok((scope, t))
    }
}

/// The declared accounts, keys and roles, and the default account-region (created now so a
/// bad option fails at start).
fn new_identities(opts: &Options) -> Result<(Tenants, Sts), String> {
    let (accounts, keys, roles) = opts.identities()?;
    let mut tenants = Tenants::new(accounts, keys, opts.faults.clone());
    let default = Scope { account: opts.account_id.clone(), region: opts.region.clone() };
    tenants.get_or_create(&default, |s| new_state(opts, s, &default), opts.seed)?;
    // (The default account-region keeps the plain seed: single-account runs are unchanged.)
    let mut sts = Sts::default();
    for r in roles {
        sts.roles.insert(r.arn.clone(), r);
    }
    Ok((tenants, sts))
}

/// The `SenderId` of the messages SNS puts into queues (in AWS, an identity of SNS's own).
const SNS_SENDER: &str = "sns.amazonaws.com";

fn new_sqs(opts: &Options, base_url: &str, now_ms: i64) -> crate::sqs::Sqs {
    let mut sqs = crate::sqs::Sqs::new(&opts.region, &opts.account_id, base_url);
    for (queue, _) in &opts.sqs_lambda {
        sqs.ensure_queue(queue, now_ms);
    }
    sqs
}

/// The emulator as handlers receive it.
pub(crate) type Emu = State<Arc<Emulator>>;

fn body_of(bytes: &Bytes) -> Result<Body, ApiError> {
    Body::parse(bytes)
}

/// The routing table.
pub fn router(emu: Arc<Emulator>) -> Router {
    Router::new()
        // The IoT operations of `Op` (request lines in `Op::request`).
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
        .route("/audit/findings/{id}", get(describe_finding))
        .route("/tags", post(tag_resource).get(list_tags))
        .route("/untag", post(untag_resource))
        // The 5 suppression operations.
        .route("/audit/suppressions/create", post(create_suppression))
        .route("/audit/suppressions/describe", post(describe_suppression))
        .route("/audit/suppressions/update", axum::routing::patch(update_suppression))
        .route("/audit/suppressions/delete", post(delete_suppression))
        .route("/audit/suppressions/list", post(list_suppressions))
        // SNS, STS (awsQuery), SQS (awsJson1.0) and Organizations (awsJson1.1).
        .route("/", post(crate::messaging::query_or_json_action))
        // Admin.
        .route("/_emulator/health", get(health))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/clock", get(clock))
        .route("/_emulator/clock/advance", post(advance))
        .route("/_emulator/fleet", get(fleet))
        .route("/_emulator/fleet/drift", post(drift))
        .route("/_emulator/suppressions", get(suppressions))
        .route("/_emulator/faults", get(get_faults).put(put_faults))
        .route("/_emulator/throttled", get(throttled))
        .route("/_emulator/outbox", get(outbox).delete(clear_outbox))
        .route("/_emulator/subscriptions", get(subscriptions))
        .route("/_emulator/subscriptions/confirm", post(confirm_subscription))
        .route("/_emulator/queues", get(queues))
        .route("/_emulator/queues/{name}", get(queue_messages))
        .route("/_emulator/cloudformation-responses", get(cfn_responses).delete(clear_cfn_responses))
        .route("/_emulator/cloudformation-responses/{*path}", axum::routing::put(receive_cfn_response))
        .route("/_emulator/accounts", get(accounts).post(add_account))
        .route("/_emulator/roles", get(roles).post(add_role))
        .route("/_emulator/organization", get(organization))
        .route("/_emulator/organization/accounts/{id}", axum::routing::delete(leave_organization))
        .route("/_emulator/organization/accounts/{id}/state", post(set_account_state))
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

async fn create_suppression(State(emu): Emu, headers: HeaderMap, bytes: Bytes) -> Response {
    emu.call(Op::CreateAuditSuppression, &headers, |st, now| st.create_suppression(&body_of(&bytes)?, now)).await
}

async fn describe_suppression(State(emu): Emu, headers: HeaderMap, bytes: Bytes) -> Response {
    emu.call(Op::DescribeAuditSuppression, &headers, |st, _| st.describe_suppression(&body_of(&bytes)?)).await
}

async fn update_suppression(State(emu): Emu, headers: HeaderMap, bytes: Bytes) -> Response {
    emu.call(Op::UpdateAuditSuppression, &headers, |st, now| st.update_suppression(&body_of(&bytes)?, now)).await
}

async fn delete_suppression(State(emu): Emu, headers: HeaderMap, bytes: Bytes) -> Response {
    emu.call(Op::DeleteAuditSuppression, &headers, |st, _| st.delete_suppression(&body_of(&bytes)?)).await
}

async fn list_suppressions(State(emu): Emu, headers: HeaderMap, bytes: Bytes) -> Response {
    emu.call(Op::ListAuditSuppressions, &headers, |st, _| st.list_suppressions(&body_of(&bytes)?)).await
}

async fn update_config(State(emu): Emu, headers: HeaderMap, bytes: Bytes) -> Response {
    emu.call(Op::UpdateAccountAuditConfiguration, &headers, |st, _| st.update_config(&body_of(&bytes)?)).await
}

async fn describe_config(State(emu): Emu, headers: HeaderMap) -> Response {
    emu.call(Op::DescribeAccountAuditConfiguration, &headers, |st, _| Ok(st.describe_config())).await
}

async fn delete_config(State(emu): Emu, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    emu.call(Op::DeleteAccountAuditConfiguration, &headers, |st, _| {
        let q = query_pairs(q.as_deref())?;
        st.delete_config(query_get(&q, "deleteScheduledAudits"))
    })
    .await
}

async fn create_scheduled(State(emu): Emu, headers: HeaderMap, Path(name): Path<String>, bytes: Bytes) -> Response {
    emu.call(Op::CreateScheduledAudit, &headers, |st, now| st.create_scheduled(&name, &body_of(&bytes)?, now)).await
}

async fn list_scheduled(State(emu): Emu, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    emu.call(Op::ListScheduledAudits, &headers, |st, _| {
        let q = query_pairs(q.as_deref())?;
        st.list_scheduled(query_get(&q, "nextToken"), crate::wire::query_int(&q, "maxResults")?)
    })
    .await
}

async fn describe_scheduled(State(emu): Emu, headers: HeaderMap, Path(name): Path<String>) -> Response {
    emu.call(Op::DescribeScheduledAudit, &headers, |st, _| st.describe_scheduled(&name)).await
}

async fn update_scheduled(State(emu): Emu, headers: HeaderMap, Path(name): Path<String>, bytes: Bytes) -> Response {
    emu.call(Op::UpdateScheduledAudit, &headers, |st, now| st.update_scheduled(&name, &body_of(&bytes)?, now)).await
}

async fn delete_scheduled(State(emu): Emu, headers: HeaderMap, Path(name): Path<String>) -> Response {
    emu.call(Op::DeleteScheduledAudit, &headers, |st, _| st.delete_scheduled(&name)).await
}

async fn start_task(State(emu): Emu, headers: HeaderMap, bytes: Bytes) -> Response {
    emu.call(Op::StartOnDemandAuditTask, &headers, |st, now| st.start_on_demand(&body_of(&bytes)?, now)).await
}

async fn describe_task(State(emu): Emu, headers: HeaderMap, Path(id): Path<String>) -> Response {
    emu.call(Op::DescribeAuditTask, &headers, |st, _| st.describe_task(&id)).await
}

async fn list_tasks(State(emu): Emu, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    emu.call(Op::ListAuditTasks, &headers, |st, now| st.list_tasks(&query_pairs(q.as_deref())?, now)).await
}

async fn cancel_task(State(emu): Emu, headers: HeaderMap, Path(id): Path<String>) -> Response {
    emu.call(Op::CancelAuditTask, &headers, |st, _| st.cancel_task(&id)).await
}

async fn list_findings(State(emu): Emu, headers: HeaderMap, bytes: Bytes) -> Response {
    emu.call(Op::ListAuditFindings, &headers, |st, now| st.list_findings(&body_of(&bytes)?, now)).await
}

async fn describe_finding(State(emu): Emu, headers: HeaderMap, Path(id): Path<String>) -> Response {
    emu.call(Op::DescribeAuditFinding, &headers, |st, _| st.describe_finding(&id)).await
}

async fn tag_resource(State(emu): Emu, headers: HeaderMap, bytes: Bytes) -> Response {
    emu.call(Op::TagResource, &headers, |st, _| st.tag_resource(&body_of(&bytes)?)).await
}

async fn untag_resource(State(emu): Emu, headers: HeaderMap, bytes: Bytes) -> Response {
    emu.call(Op::UntagResource, &headers, |st, _| st.untag_resource(&body_of(&bytes)?)).await
}

async fn list_tags(State(emu): Emu, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    emu.call(Op::ListTagsForResource, &headers, |st, _| {
        let q = query_pairs(q.as_deref())?;
        st.list_tags(query_get(&q, "resourceArn"))
    })
    .await
}
