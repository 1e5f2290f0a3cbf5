//! From a Lambda event to units of work: SNS events (audit notifications) and SQS events
//! (continuations) — each record on its own, so one bad record never loses the good ones.
//!
//! Per record:
//! - malformed or foreign (not JSON, not an audit notification, wrong types, a task still
//!   IN_PROGRESS, a bad task id): one log line naming what was wrong, then dropped — retrying
//!   cannot fix it;
//! - a failure worth retrying (AWS errors beyond the SDK's retries): for SNS the invocation
//!   fails after every record was tried, so Lambda retries the event (duplicates of the records
//!   that succeeded are recognised and skipped); for SQS only that message is reported in
//!   `batchItemFailures` and comes back later.

use crate::ingest::{Ingestor, Outcome};
use audit_shared::ports::{AuditReader, ContinuationQueue, DigestPublisher, PortError, TaskStore};
use audit_shared::work::{parse_continuation, parse_notification, Work};
use aws_lambda_events::sns::SnsRecord;
use aws_lambda_events::sqs::SqsMessage;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tracing::{error, info, warn, Instrument};

/// Why the invocation failed (so that Lambda retries it).
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} records failed and will be retried: {first}")]
pub struct RetryableFailure {
    pub failed: usize,
    pub total: usize,
    pub first: PortError,
}

/// Handles one invocation. `remaining` is the time to the Lambda deadline.
pub async fn handle<R, S, P, Q>(
    ingestor: &Ingestor<R, S, P, Q>,
    event: Value,
    request_id: &str,
    remaining: Duration,
) -> Result<Value, RetryableFailure>
where
    R: AuditReader + 'static,
    S: TaskStore + 'static,
    P: DigestPublisher + 'static,
    Q: ContinuationQueue + 'static,
{
    let deadline = Instant::now() + remaining.saturating_sub(ingestor.config.deadline_margin);
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
                let work = match serde_json::from_value::<SnsRecord>(record) {
                    Err(e) => {
                        warn!(record = i, error = %e, "dropped: not an SNS record");
                        continue;
                    }
                    Ok(r) => match parse_notification(&r.sns.message) {
                        Err(rejection) => {
                            warn!(record = i, message_id = %r.sns.message_id, error = %rejection, "dropped: not a usable audit notification");
                            continue;
                        }
                        Ok((n, warning)) => {
                            if let Some(w) = warning {
                                warn!(task_id = %n.task_id, "{w}");
                            }
                            Work::Notification(n)
                        }
                    },
                };
                if let Err(e) = run(ingestor, work, deadline, request_id).await {
                    failures.push(e);
                }
            }
            match failures.into_iter().next() {
                None => Ok(json!({})),
                Some(first) => Err(RetryableFailure { failed: 1, total, first }),
            }
        }
        "aws:sqs" => {
            let mut failed = Vec::new();
            for (i, record) in records.into_iter().enumerate() {
                let msg = match serde_json::from_value::<SqsMessage>(record) {
                    Ok(m) => m,
                    Err(e) => {
                        warn!(record = i, error = %e, "dropped: not an SQS message");
                        continue;
                    }
                };
                let id = msg.message_id.clone().unwrap_or_default();
                let work = match parse_continuation(msg.body.as_deref().unwrap_or("")) {
                    Ok(c) => Work::Continue(c),
                    Err(rejection) => {
                        warn!(message_id = %id, error = %rejection, "dropped: not a continuation");
                        continue;
                    }
                };
                if run(ingestor, work, deadline, request_id).await.is_err() {
                    failed.push(json!({ "itemIdentifier": id }));
                }
            }
            Ok(json!({ "batchItemFailures": failed }))
        }
        other => {
            warn!(source = other, "dropped: the event is neither an SNS nor an SQS event");
            Ok(json!({}))
        }
    }
}

async fn run<R, S, P, Q>(
    ingestor: &Ingestor<R, S, P, Q>,
    work: Work,
    deadline: Instant,
    request_id: &str,
) -> Result<Outcome, PortError>
where
    R: AuditReader + 'static,
    S: TaskStore + 'static,
    P: DigestPublisher + 'static,
    Q: ContinuationQueue + 'static,
{
    let task_id = work.task_id().to_owned();
    let span = tracing::info_span!("task", task_id = %task_id);
    async {
        let owner = format!("{request_id}/{}", uuid::Uuid::new_v4());
        match ingestor.process(work, deadline, &owner).await {
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
