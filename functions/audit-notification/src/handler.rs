//! From a Lambda event to units of work: SNS events (audit notifications) and SQS events
//! (continuations; in a hub, also members' notifications and subscription confirmations in
//! SNS's envelope) — each record on its own, so one bad record never loses the good ones.
//!
//! Per record:
//! - malformed or foreign (not JSON, not an audit notification, wrong types, a task still
//!   IN_PROGRESS, a bad task id): one log line naming what was wrong, then dropped — retrying
//!   cannot fix it;
//! - a failure worth retrying (AWS errors beyond the SDK's retries): for SNS the invocation
//!   fails after every record was tried, so Lambda retries the event (duplicates of the records
//!   that succeeded are recognised and skipped); for SQS only that message is reported in
//!   `batchItemFailures` and comes back later.

use crate::hub::Hub;
use crate::ingest::Outcome;
use audit_shared::member::Member;
use audit_shared::ports::{
    AuditReader, ContinuationQueue, DigestPublisher, EpisodeStore, MemberStore, PortError, TaskStore,
};
use audit_shared::work::{notification_member, parse_notification, parse_queue_message, QueueMessage, Work};
use aws_lambda_events::sns::SnsRecord;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tracing::{error, info, warn, Instrument};

/// Why the invocation failed (so that Lambda retries it): how many records failed, the task
/// of each (`<task>@<account>:<region>` for another member than the hub's own), and the first error.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} records failed and will be retried (tasks {}): {first}", task_ids.join(", "))]
pub struct RetryableFailure {
    /// Records that failed.
    pub failed: usize,
    /// Records in the event.
    pub total: usize,
    /// The task id of every failed record, in record order.
    pub task_ids: Vec<String>,
    /// The first failure.
    pub first: PortError,
}

/// Handles one invocation. `remaining` is the time to the Lambda deadline.
pub async fn handle<R, S, E, P, Q, M>(
    hub: &Hub<R, S, E, P, Q, M>,
    event: Value,
    request_id: &str,
    remaining: Duration,
) -> Result<Value, RetryableFailure>
where
    R: AuditReader + 'static,
    S: TaskStore + 'static,
    E: EpisodeStore + 'static,
    P: DigestPublisher + 'static,
    Q: ContinuationQueue + 'static,
    M: MemberStore,
{
    let deadline = Instant::now() + remaining.saturating_sub(hub.config.deadline_margin);
    let records = event.get("Records").and_then(Value::as_array).cloned().unwrap_or_default();
    let source = records
        .first()
        .and_then(|r| r.get("EventSource").or_else(|| r.get("eventSource")))
        .and_then(Value::as_str)
        .unwrap_or("");
    match source {
        "aws:sns" => {
            let total = records.len();
            let mut failures = Vec::new();
            for (i, record) in records.into_iter().enumerate() {
                let (member, work) = match serde_json::from_value::<SnsRecord>(record) {
                    Err(e) => {
                        warn!(record = i, error = %e, "dropped: not an SNS record");
                        continue;
                    }
                    Ok(r) => match parse_notification(&r.sns.message)
                        .and_then(|(n, w)| Ok((notification_member(&r.sns.topic_arn, &n)?, n, w)))
                    {
                        Err(rejection) => {
                            warn!(record = i, message_id = %r.sns.message_id, error = %rejection, "dropped: not a usable audit notification");
                            continue;
                        }
                        Ok((member, n, warning)) => {
                            if let Some(w) = warning {
                                warn!(task_id = %n.task_id, "{w}");
                            }
                            (member, Work::Notification(n))
                        }
                    },
                };
                let task_id = match member == hub.home {
                    true => work.task_id().to_owned(),
                    false => format!("{}@{member}", work.task_id()),
                };
                if let Err(e) = run(hub, &member, work, deadline, request_id).await {
                    failures.push((task_id, e));
                }
            }
            let failed = failures.len();
            let mut failures = failures.into_iter();
            match failures.next() {
                None => Ok(json!({})),
                Some((task_id, first)) => {
                    let task_ids = std::iter::once(task_id).chain(failures.map(|(t, _)| t)).collect();
                    Err(RetryableFailure { failed, total, task_ids, first })
                }
            }
        }
        "aws:sqs" => {
            let mut reply = SqsBatchResponse::default();
            for (i, record) in records.into_iter().enumerate() {
                let msg = match serde_json::from_value::<SqsMessage>(record) {
                    Ok(m) => m,
                    Err(e) => {
                        warn!(record = i, error = %e, "dropped: not an SQS message");
                        continue;
                    }
                };
                let id = msg.message_id.clone().unwrap_or_default();
                let message = match parse_queue_message(msg.body.as_deref().unwrap_or("")) {
                    Ok(m) => m,
                    Err(rejection) => {
                        warn!(message_id = %id, error = %rejection, "dropped: neither a continuation nor an SNS message");
                        continue;
                    }
                };
                let outcome = match message {
                    QueueMessage::Continue(c) => {
                        let member = c.member.clone().unwrap_or_else(|| hub.home.clone());
                        run(hub, &member, Work::Continue(c), deadline, request_id).await.map(|_| ())
                    }
                    // A member's notification through the hub's queue (its topic's subscription).
                    QueueMessage::Notification { topic_arn, message } => {
                        let parsed = parse_notification(&message)
                            .and_then(|(n, w)| Ok((notification_member(&topic_arn, &n)?, n, w)));
                        match parsed {
                            Err(rejection) => {
                                warn!(message_id = %id, topic = %topic_arn, error = %rejection, "dropped: not a usable audit notification");
                                continue;
                            }
                            Ok((member, n, warning)) => {
                                if let Some(w) = warning {
                                    warn!(task_id = %n.task_id, "{w}");
                                }
                                run(hub, &member, Work::Notification(n), deadline, request_id).await.map(|_| ())
                            }
                        }
                    }
                    QueueMessage::ConfirmSubscription { topic_arn, token } => {
                        hub.confirm_subscription(&topic_arn, &token, None).await
                    }
                    QueueMessage::RetryConfirmation(p) => {
                        let (topic_arn, token) = (p.topic_arn.clone(), p.token.clone());
                        hub.confirm_subscription(&topic_arn, &token, Some(p)).await
                    }
                };
                if outcome.is_err() {
                    reply.add_failure(id);
                }
            }
            Ok(serde_json::to_value(reply).unwrap_or_else(|_| json!({ "batchItemFailures": [] })))
        }
        other => {
            warn!(source = other, "dropped: the event is neither an SNS nor an SQS event");
            Ok(json!({}))
        }
    }
}

async fn run<R, S, E, P, Q, M>(
    hub: &Hub<R, S, E, P, Q, M>,
    member: &Member,
    work: Work,
    deadline: Instant,
    request_id: &str,
) -> Result<Outcome, PortError>
where
    R: AuditReader + 'static,
    S: TaskStore + 'static,
    E: EpisodeStore + 'static,
    P: DigestPublisher + 'static,
    Q: ContinuationQueue + 'static,
    M: MemberStore,
{
    let task_id = work.task_id().to_owned();
    let span = tracing::info_span!("task", task_id = %task_id, member = %member);
    async {
        let owner = format!("{request_id}/{}", uuid::Uuid::new_v4());
        match hub.process(member, work, deadline, &owner).await {
            Ok(outcome) => {
                info!(?outcome, "done");
                Ok(outcome)
            }
            Err(e) => {
                error!(error = %e, "failed; will be retried");
                Err(e)
            }
        }
    }
    .instrument(span)
    .await
}
