//! What the audit-notification function is asked to do, parsed from the records it receives:
//! an audit notification (from SNS) or a continuation (from its SQS queue). Anything else is
//! rejected with a reason that names what was wrong; rejections are final (retrying cannot
//! fix a malformed message), so callers log them once and move on.

use crate::confirmation::PendingConfirmation;
use crate::member::{Member, MemberError};
use crate::notification::AuditNotification;
use serde::{Deserialize, Serialize};

/// Smallest `taskStartTime` read as milliseconds; smaller values are epoch seconds
/// (10^11 ms is 1973, 10^11 s is the year 5138).
const MIN_MILLIS: i64 = 100_000_000_000;

/// A unit of work.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// A task ended (the audit notification).
    Notification(AuditNotification),
    /// Go on with (or look at) a task: after a checkpoint, a busy lease, or from the sweeper.
    Continue(Continuation),
}

impl Work {
    /// The task this work is about.
    pub fn task_id(&self) -> &str {
        match self {
            Work::Notification(n) => &n.task_id,
            Work::Continue(c) => &c.task_id,
        }
    }
}

/// The continuation queue's message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Continuation {
    /// Always `"continue"`: tells our messages apart from anything else on the queue.
    pub kind: String,
    pub task_id: String,
    /// `deadline`, `lease-busy`, `stream-busy`, `reader-busy` or `sweeper`: why it was queued.
    pub reason: String,
    /// The member account-region the task belongs to; absent for the hub's own (as before
    /// members existed, so queued messages stay readable across the upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
    /// Invocations in a row that continued the task without reading a page (see
    /// [`crate::stall`]); absent when the last one made progress.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stalled: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Continuation {
    /// A continuation of `task_id` in the hub's own account-region.
    pub fn new(task_id: &str, reason: &str) -> Self {
        Continuation {
            kind: "continue".into(),
            task_id: task_id.into(),
            reason: reason.into(),
            member: None,
            stalled: 0,
        }
    }

    /// The same continuation, after `stalled` invocations in a row without progress.
    pub fn stalled(mut self, stalled: u32) -> Self {
        self.stalled = stalled;
        self
    }

    /// The same continuation for a task of `member` (`None`: the hub's own).
    pub fn of(mut self, member: Option<Member>) -> Self {
        self.member = member;
        self
    }
}

/// Why a record is not work. Final: the record is logged and dropped, never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("message is not JSON: {0}")]
    NotJson(String),
    #[error("message is not an audit notification: {0}")]
    NotAuditNotification(String),
    #[error("task {task_id} is {status}: only ended tasks (COMPLETED, FAILED, CANCELED) are notified")]
    NotEnded { task_id: String, status: String },
    #[error("taskId '{0}' is not 1-40 characters of [a-zA-Z0-9-]")]
    BadTaskId(String),
    #[error("continuation message is malformed: {0}")]
    BadContinuation(String),
    #[error("cannot tell which account-region sent task {task_id}: {why}")]
    BadMember { task_id: String, why: MemberError },
    #[error("not an SNS message envelope: {0}")]
    NotSnsEnvelope(String),
}

/// The member an audit notification comes from: the account that ran the audit (`accountId`)
/// in the region of the topic it was published to (our decision, [E]: the member template
/// creates the topic in the audited region, and IoT's notification target names no region).
pub fn notification_member(topic_arn: &str, n: &AuditNotification) -> Result<Member, Rejection> {
    let bad = |why| Rejection::BadMember { task_id: n.task_id.clone(), why };
    let topic = Member::of_topic(topic_arn).map_err(bad)?;
    Member::new(&n.account_id, &topic.region).map_err(bad)
}

fn check_task_id(id: &str) -> Result<(), Rejection> {
    let ok = (1..=40).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Rejection::BadTaskId(id.chars().take(60).collect()))
    }
}

/// Parses the `Message` of an SNS record. A `taskStartTime` in seconds is converted to
/// milliseconds (and reported in the second value so the caller can log it).
pub fn parse_notification(message: &str) -> Result<(AuditNotification, Option<String>), Rejection> {
    let value: serde_json::Value = serde_json::from_str(message).map_err(|e| Rejection::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(Rejection::NotAuditNotification("the JSON is not an object".into()));
    }
    let mut n: AuditNotification =
        serde_json::from_value(value).map_err(|e| Rejection::NotAuditNotification(e.to_string()))?;
    check_task_id(&n.task_id)?;
    if !n.task_status.is_terminal() {
        return Err(Rejection::NotEnded { task_id: n.task_id.clone(), status: n.task_status.to_string() });
    }
    let mut warning = None;
    if (0..MIN_MILLIS).contains(&n.task_start_time) {
        warning = Some(format!(
            "taskStartTime {} looks like seconds; read as {} ms",
            n.task_start_time,
            n.task_start_time * 1000
        ));
        n.task_start_time *= 1000;
    } else if n.task_start_time < 0 {
        return Err(Rejection::NotAuditNotification(format!("taskStartTime {} is negative", n.task_start_time)));
    }
    Ok((n, warning))
}

/// A message of a queue the function consumes: a continuation of ours, or what SNS delivers to
/// an `sqs` subscription (its JSON envelope, not raw): a notification, or the request to
/// confirm a subscription another account made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueMessage {
    Continue(Continuation),
    /// SNS `Type: Notification`: the published message and the topic it came from.
    Notification {
        topic_arn: String,
        message: String,
    },
    /// SNS `Type: SubscriptionConfirmation`: confirm with `ConfirmSubscription(topic, token)`.
    ConfirmSubscription {
        topic_arn: String,
        token: String,
    },
    /// A confirmation the hub queued to try again (the member's role could not be assumed yet).
    RetryConfirmation(PendingConfirmation),
}

/// Parses a queue message body: a continuation, or an SNS envelope (reference: SNS's JSON
/// formats, `Type`, `TopicArn`, `Message`, `Token`).
pub fn parse_queue_message(body: &str) -> Result<QueueMessage, Rejection> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| Rejection::NotJson(e.to_string()))?;
    let text = |k: &str| value.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
    match text("Type").as_deref() {
        None if text("kind").as_deref() == Some("confirm") => serde_json::from_value::<PendingConfirmation>(value)
            .map(QueueMessage::RetryConfirmation)
            .map_err(|e| Rejection::BadContinuation(format!("a pending confirmation: {e}"))),
        None => parse_continuation(body).map(QueueMessage::Continue),
        Some(kind) => {
            let topic_arn =
                text("TopicArn").ok_or_else(|| Rejection::NotSnsEnvelope(format!("{kind} without TopicArn")))?;
            match kind {
                "Notification" => {
                    let message = text("Message")
                        .ok_or_else(|| Rejection::NotSnsEnvelope("Notification without Message".into()))?;
                    Ok(QueueMessage::Notification { topic_arn, message })
                }
                "SubscriptionConfirmation" => {
                    let token = text("Token")
                        .ok_or_else(|| Rejection::NotSnsEnvelope("SubscriptionConfirmation without Token".into()))?;
                    Ok(QueueMessage::ConfirmSubscription { topic_arn, token })
                }
                other => Err(Rejection::NotSnsEnvelope(format!(
                    "Type '{other}' is neither Notification nor SubscriptionConfirmation"
                ))),
            }
        }
    }
}

/// Parses the body of a continuation-queue message.
pub fn parse_continuation(body: &str) -> Result<Continuation, Rejection> {
    let c: Continuation = serde_json::from_str(body).map_err(|e| Rejection::BadContinuation(e.to_string()))?;
    if c.kind != "continue" {
        return Err(Rejection::BadContinuation(format!("kind '{}' is not 'continue'", c.kind)));
    }
    check_task_id(&c.task_id)?;
    if let Some(m) = &c.member {
        Member::new(&m.account_id, &m.region)
            .map_err(|e| Rejection::BadMember { task_id: c.task_id.clone(), why: e })?;
    }
    Ok(c)
}

/// Whether the sweeper should queue a task: it ended, and it was never stored, or its ingest,
/// digest or lifecycle step (closing what it resolved) is unfinished with no live lease (a lost
/// notification or a dead invocation).
pub fn needs_sweep(status: &crate::TaskStatus, stored: Option<&crate::summary::TaskSummary>, now_ms: i64) -> bool {
    use crate::summary::{DigestState, IngestState, LifecycleState};
    if !status.is_terminal() {
        return false;
    }
    match stored {
        None => true,
        Some(s) => {
            let unfinished = s.ingest == IngestState::Ingesting
                || matches!(s.digest, DigestState::Pending | DigestState::Publishing)
                || s.lifecycle == LifecycleState::Pending;
            unfinished && s.lease_until < now_ms
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_takes_lost_and_stalled_tasks_only() {
        use crate::summary::{IngestState, TaskOutline, TaskSummary};
        use crate::{TaskStatus, TaskType};
        let outline = TaskOutline {
            task_id: "t".into(),
            task_type: TaskType::OnDemand,
            task_status: TaskStatus::Completed,
            scheduled_audit_name: None,
            task_start_time: 0,
            checks: vec![],
        };
        let mut s = TaskSummary::new(outline, 0);
        assert!(needs_sweep(&TaskStatus::Completed, None, 10));
        assert!(!needs_sweep(&TaskStatus::InProgress, None, 10));
        s.lease_until = 100;
        assert!(!needs_sweep(&TaskStatus::Completed, Some(&s), 50), "live lease");
        assert!(needs_sweep(&TaskStatus::Completed, Some(&s), 150), "stalled");
        s.ingest = IngestState::Complete;
        s.digest = crate::summary::DigestState::Sent;
        assert!(needs_sweep(&TaskStatus::Completed, Some(&s), 150), "digest sent, episodes not closed");
        s.lifecycle = crate::summary::LifecycleState::Applied;
        assert!(!needs_sweep(&TaskStatus::Completed, Some(&s), 150), "done");
    }

    const OK: &str = r#"{"accountId":"123456789012","taskId":"abc-1","taskStatus":"COMPLETED","taskType":"ON_DEMAND_AUDIT_TASK",
        "failedChecksCount":0,"canceledChecksCount":0,"nonCompliantChecksCount":0,"compliantChecksCount":1,"totalChecksCount":1,
        "taskStartTime":1717488000123,"auditDetails":[]}"#;

    #[test]
    fn every_malformed_message_gets_a_named_rejection() {
        assert!(matches!(parse_notification("not json"), Err(Rejection::NotJson(_))));
        assert!(matches!(parse_notification("[1,2]"), Err(Rejection::NotAuditNotification(_))));
        assert!(
            matches!(parse_notification(r#"{"hello":"world"}"#), Err(Rejection::NotAuditNotification(m)) if m.contains("accountId"))
        );
        let wrong_type = OK.replace("\"totalChecksCount\":1", "\"totalChecksCount\":\"one\"");
        assert!(
            matches!(parse_notification(&wrong_type), Err(Rejection::NotAuditNotification(m)) if m.contains("invalid type"))
        );
        let running = OK.replace("COMPLETED", "IN_PROGRESS");
        assert!(matches!(parse_notification(&running), Err(Rejection::NotEnded { .. })));
        let unknown = OK.replace("COMPLETED", "PAUSED");
        assert!(matches!(parse_notification(&unknown), Err(Rejection::NotEnded { .. })));
        let bad_id = OK.replace("abc-1", "abc/../1");
        assert!(matches!(parse_notification(&bad_id), Err(Rejection::BadTaskId(_))));
    }

    #[test]
    fn seconds_are_read_as_milliseconds_with_a_warning() {
        let (n, w) = parse_notification(&OK.replace("1717488000123", "1717488000")).unwrap();
        assert_eq!(n.task_start_time, 1_717_488_000_000);
        assert!(w.unwrap().contains("seconds"));
        let (n, w) = parse_notification(OK).unwrap();
        assert_eq!(n.task_start_time, 1_717_488_000_123);
        assert!(w.is_none());
    }

    #[test]
    fn continuations() {
        let c = Continuation::new("abc", "deadline");
        assert_eq!(parse_continuation(&serde_json::to_string(&c).unwrap()).unwrap(), c);
        assert!(parse_continuation(r#"{"kind":"other","taskId":"a","reason":"x"}"#).is_err());
        assert!(parse_continuation(r#"{"taskId":"a"}"#).is_err());
        assert!(!serde_json::to_string(&c).unwrap().contains("member"), "the hub's own tasks keep the old body");
        let member = Member::new("444455556666", "eu-west-1").unwrap();
        let c = Continuation::new("abc", "reader-busy").of(Some(member));
        let body = serde_json::to_string(&c).unwrap();
        assert!(body.contains(r#""member":{"accountId":"444455556666","region":"eu-west-1"}"#), "{body}");
        assert_eq!(parse_continuation(&body).unwrap(), c);
        let bad = body.replace("444455556666", "4444");
        assert!(matches!(parse_continuation(&bad), Err(Rejection::BadMember { .. })));
        assert!(!body.contains("stalled"), "a continuation after progress keeps the old body");
        let c = Continuation::new("abc", "deadline").stalled(3);
        let body = serde_json::to_string(&c).unwrap();
        assert!(body.contains(r#""stalled":3"#), "{body}");
        assert_eq!(parse_continuation(&body).unwrap(), c);
    }

    #[test]
    fn queue_messages_are_continuations_or_sns_envelopes() {
        let c = Continuation::new("abc", "deadline");
        let body = serde_json::to_string(&c).unwrap();
        assert_eq!(parse_queue_message(&body).unwrap(), QueueMessage::Continue(c));
        let topic = "arn:aws:sns:eu-west-1:444455556666:device-defender-audit-notifications";
        let n =
            serde_json::json!({"Type": "Notification", "MessageId": "m", "TopicArn": topic, "Message": OK}).to_string();
        assert_eq!(
            parse_queue_message(&n).unwrap(),
            QueueMessage::Notification { topic_arn: topic.into(), message: OK.into() }
        );
        let s = serde_json::json!({"Type": "SubscriptionConfirmation", "TopicArn": topic, "Token": "t0k", "SubscribeURL": "https://x"});
        assert_eq!(
            parse_queue_message(&s.to_string()).unwrap(),
            QueueMessage::ConfirmSubscription { topic_arn: topic.into(), token: "t0k".into() }
        );
        let pending = PendingConfirmation::first(topic, "t0k", 7);
        assert_eq!(
            parse_queue_message(&serde_json::to_string(&pending).unwrap()).unwrap(),
            QueueMessage::RetryConfirmation(pending)
        );
        assert!(matches!(
            parse_queue_message(r#"{"kind":"confirm","topicArn":"x"}"#),
            Err(Rejection::BadContinuation(m)) if m.contains("pending confirmation")
        ));
        let u = serde_json::json!({"Type": "UnsubscribeConfirmation", "TopicArn": topic});
        assert!(
            matches!(parse_queue_message(&u.to_string()), Err(Rejection::NotSnsEnvelope(m)) if m.contains("UnsubscribeConfirmation"))
        );
        assert!(
            matches!(parse_queue_message(r#"{"Type":"Notification"}"#), Err(Rejection::NotSnsEnvelope(m)) if m.contains("TopicArn"))
        );
        assert!(matches!(parse_queue_message("nope"), Err(Rejection::NotJson(_))));
        assert!(matches!(
            parse_queue_message(r#"{"kind":"other","taskId":"a","reason":"x"}"#),
            Err(Rejection::BadContinuation(_))
        ));
    }

    #[test]
    fn a_notification_comes_from_its_account_in_its_topic_region() {
        let (n, _) = parse_notification(&OK.replace("123456789012", "444455556666")).unwrap();
        let m = notification_member("arn:aws:sns:eu-west-1:444455556666:audit", &n).unwrap();
        assert_eq!(m, Member::new("444455556666", "eu-west-1").unwrap());
        assert!(matches!(notification_member("not-an-arn", &n), Err(Rejection::BadMember { .. })));
        let (bad, _) = parse_notification(&OK.replace("123456789012", "12345")).unwrap();
        let e = notification_member("arn:aws:sns:eu-west-1:444455556666:audit", &bad).unwrap_err();
        assert!(e.to_string().contains("'12345'"), "{e}");
    }
}
