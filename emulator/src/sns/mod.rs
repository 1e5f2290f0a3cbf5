//! SNS on its real wire protocol (awsQuery: form-encoded POST to `/`, XML answers), so
//! `aws-sdk-sns`, boto3 and the AWS CLI work against it. The actions are those of
//! [`crate::served::SNS`]: topics and their attributes ([`topics`]), subscriptions, their
//! confirmation and attributes ([`subscriptions`]), and Publish. Rules and sources:
//! `docs/reference/emulator-services.md`.
//!
//! Every published message (by a client or by the audit service) lands in the outbox,
//! readable through `GET /_emulator/outbox`. Messages to a topic with `lambda` subscriptions
//! are delivered as the SNS Lambda event by [`crate::delivery`]; to `sqs` subscriptions of the
//! emulator's queues as SNS's JSON envelope, or as the message itself with its attributes when
//! the subscription's `RawMessageDelivery` is `true`. Subscriptions that need confirmation
//! (`email`, `email-json`, `http`, `https`, and an `sqs` queue of another account) wait for it:
//! `ConfirmSubscription` with the token, shown by `GET /_emulator/subscriptions` (or, for an
//! `sqs` one, sent to the queue), or `POST /_emulator/subscriptions/confirm` (the link of the
//! confirmation message) confirms them.

pub mod publish;
pub mod subscriptions;
pub mod topics;

use chrono::{TimeZone, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

pub use subscriptions::Subscription;

const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// An SNS error: code, HTTP status, message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SnsError {
    pub code: &'static str,
    pub status: u16,
    pub sender: bool,
    pub message: String,
}

impl SnsError {
    /// `InvalidParameter` (400).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        SnsError { code: "InvalidParameter", status: 400, sender: true, message: message.into() }
    }
    /// `NotFound` (404).
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        SnsError { code: "NotFound", status: 404, sender: true, message: message.into() }
    }

    /// The XML error document.
    pub fn to_xml(&self, request_id: &str) -> String {
        format!(
            "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            if self.sender { "Sender" } else { "Receiver" },
            self.code,
            escape(&self.message)
        )
    }
}

/// A topic of some account-region (its ARN names them).
#[derive(Debug, Clone)]
pub struct Topic {
    pub arn: String,
    /// The attributes set at CreateTopic or with SetTopicAttributes.
    pub attributes: BTreeMap<String, String>,
    pub subscriptions: Vec<Subscription>,
    /// Subscriptions removed so far (`SubscriptionsDeleted`).
    pub deleted: u64,
}

impl Topic {
    /// The account that owns the topic.
    pub fn owner(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or_default()
    }
}

/// A message attribute, as published.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageAttribute {
    pub data_type: String,
    pub string_value: String,
}

/// One delivery attempt series to one subscription.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub subscription_arn: String,
    pub protocol: String,
    pub endpoint: String,
    /// `pending`, `delivered`, `failed`, `queued` (into an emulator queue), or `recorded`
    /// (protocol not delivered locally).
    pub status: String,
    /// Whether the subscription gets the raw message (`RawMessageDelivery`).
    pub raw: bool,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A published message in the outbox.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxMessage {
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub message: String,
    pub message_attributes: BTreeMap<String, MessageAttribute>,
    /// RFC 3339, virtual clock.
    pub timestamp: String,
    /// `client` (Publish) or `audit` (an audit notification).
    pub source: String,
    pub deliveries: Vec<Delivery>,
}

/// The emulated SNS of every account-region: topics are addressed by ARN (which names their
/// account and region); a topic is created in the caller's account-region.
#[derive(Debug, Default)]
pub struct Sns {
    topics: BTreeMap<String, Topic>,
    pub outbox: Vec<OutboxMessage>,
}

/// A message for one of the emulator's queues: an `sqs` subscription's delivery (or a
/// subscription confirmation request).
#[derive(Debug, Clone, PartialEq)]
pub struct ToQueue {
    pub queue_arn: String,
    pub body: String,
    /// SQS message attributes: the SNS message attributes of a raw delivery.
    pub attributes: BTreeMap<String, MessageAttribute>,
}

/// A message published to a topic, and the deliveries it needs.
#[derive(Debug, Clone)]
pub struct Published {
    pub outbox_index: usize,
    pub message: OutboxMessage,
    pub lambda_subscriptions: Vec<Subscription>,
    pub to_queues: Vec<ToQueue>,
}

/// The result of one SNS action.
pub struct ActionResult {
    pub xml: String,
    pub published: Option<Published>,
    /// Messages for queues the action produced besides a publication (a subscription
    /// confirmation request).
    pub to_queues: Vec<ToQueue>,
}

impl ActionResult {
    fn xml(xml: String) -> Self {
        ActionResult { xml, published: None, to_queues: Vec::new() }
    }
}

/// XML-escapes text.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The value of one form parameter.
pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A required form parameter.
pub(crate) fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, SnsError> {
    param(params, name).ok_or_else(|| SnsError::invalid(format!("Invalid parameter: {name} is required")))
}

/// An awsQuery answer: `<ActionResponse><ActionResult>…` with the request id.
pub(crate) fn response(action: &str, result: &str, request_id: &str) -> String {
    let inner = if result.is_empty() { String::new() } else { format!("<{action}Result>{result}</{action}Result>") };
    format!("<{action}Response xmlns=\"{XMLNS}\">{inner}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>")
}

/// An awsQuery map as `<entry><key>…</key><value>…</value></entry>` elements.
pub(crate) fn entries_xml(map: &BTreeMap<String, String>) -> String {
    map.iter().map(|(k, v)| format!("<entry><key>{}</key><value>{}</value></entry>", escape(k), escape(v))).collect()
}

/// Collects `prefix.N.<key>` / `prefix.N.<value>` pairs of an awsQuery map.
pub(crate) fn map_entries(
    params: &[(String, String)],
    prefix: &str,
    key: &str,
    value: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for n in 1.. {
        let Some(k) = param(params, &format!("{prefix}.{n}.{key}")) else { break };
        let v = param(params, &format!("{prefix}.{n}.{value}")).unwrap_or_default();
        out.insert(k.to_owned(), v.to_owned());
    }
    out
}

/// RFC 3339 with milliseconds, as SNS writes timestamps.
pub(crate) fn timestamp(now_ms: i64) -> String {
    Utc.timestamp_millis_opt(now_ms).single().expect("valid time").to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

const PAGE: usize = 100;

impl Sns {
    /// No topic yet.
    pub fn new() -> Self {
        Sns::default()
    }

    /// Handles one awsQuery request from `caller` (whose account-region new topics go to).
    pub fn handle(
        &mut self,
        params: &[(String, String)],
        now_ms: i64,
        request_id: &str,
        caller: &crate::scope::Scope,
    ) -> Result<ActionResult, SnsError> {
        let action = param(params, "Action").ok_or_else(|| SnsError {
            code: "MissingAction",
            status: 400,
            sender: true,
            message: "Missing required parameter Action".into(),
        })?;
        let result = match action {
            "CreateTopic" => self.create_topic(params, caller)?,
            "DeleteTopic" => self.delete_topic(params)?,
            "ListTopics" => self.list_topics(params, caller)?,
            "GetTopicAttributes" => self.get_topic_attributes(params)?,
            "SetTopicAttributes" => self.set_topic_attributes(params)?,
            "Subscribe" => return self.subscribe(params, now_ms, request_id, caller),
            "ConfirmSubscription" => self.confirm_subscription(params)?,
            "Unsubscribe" => self.unsubscribe(params)?,
            "ListSubscriptions" | "ListSubscriptionsByTopic" => self.list_subscriptions(action, params)?,
            "GetSubscriptionAttributes" => self.get_subscription_attributes(params)?,
            "SetSubscriptionAttributes" => self.set_subscription_attributes(params)?,
            "Publish" => return self.publish_action(params, now_ms, request_id),
            other => {
                let served: Vec<&str> = crate::served::SNS.iter().map(|op| op.name).collect();
                return Err(SnsError {
                    code: "InvalidAction",
                    status: 400,
                    sender: true,
                    message: format!(
                        "The action {other} is not valid for this endpoint (the emulator serves {})",
                        served.join(", ")
                    ),
                });
            }
        };
        Ok(ActionResult::xml(response(action, &result, request_id)))
    }

    fn topic(&self, arn: &str) -> Result<&Topic, SnsError> {
        self.topics.get(arn).ok_or_else(|| SnsError::not_found("Topic does not exist"))
    }

    fn topic_mut(&mut self, arn: &str) -> Result<&mut Topic, SnsError> {
        self.topics.get_mut(arn).ok_or_else(|| SnsError::not_found("Topic does not exist"))
    }

    /// A page of 100 keys after the token (the last key of the previous page).
    fn page(&self, keys: Vec<String>, token: Option<&str>) -> Result<(Vec<String>, Option<String>), SnsError> {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let after = token
            .map(|t| {
                engine
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| SnsError::invalid("Invalid parameter: NextToken"))
            })
            .transpose()?;
        let rest: Vec<String> = keys.into_iter().filter(|k| after.as_ref().is_none_or(|a| k > a)).collect();
        let next = (rest.len() > PAGE).then(|| engine.encode(rest[PAGE - 1].as_bytes()));
        Ok((rest.into_iter().take(PAGE).collect(), next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn home() -> crate::scope::Scope {
        crate::scope::Scope { account: "123456789012".into(), region: "us-east-1".into() }
    }

    pub(super) fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn create_subscribe_publish_records_the_message() {
        let mut sns = Sns::new();
        let r = sns.handle(&p(&[("Action", "CreateTopic"), ("Name", "audit")]), 0, "r", &home()).unwrap();
        assert!(r.xml.contains("<TopicArn>arn:aws:sns:us-east-1:123456789012:audit</TopicArn>"));
        let arn = "arn:aws:sns:us-east-1:123456789012:audit";
        sns.handle(
            &p(&[
                ("Action", "Subscribe"),
                ("TopicArn", arn),
                ("Protocol", "lambda"),
                ("Endpoint", "arn:aws:lambda:us-east-1:123456789012:function:f"),
            ]),
            0,
            "r",
            &home(),
        )
        .unwrap();
        let r = sns
            .handle(
                &p(&[
                    ("Action", "Publish"),
                    ("TopicArn", arn),
                    ("Message", "hi <there>"),
                    ("Subject", "s"),
                    ("MessageAttributes.entry.1.Name", "critical"),
                    ("MessageAttributes.entry.1.Value.DataType", "Number"),
                    ("MessageAttributes.entry.1.Value.StringValue", "3"),
                ]),
                0,
                "r",
                &home(),
            )
            .unwrap();
        let published = r.published.unwrap();
        assert_eq!(published.lambda_subscriptions.len(), 1);
        assert_eq!(sns.outbox[0].message, "hi <there>");
        assert_eq!(sns.outbox[0].message_attributes["critical"].data_type, "Number");
    }

    #[test]
    fn errors_are_typed() {
        let mut sns = Sns::new();
        let e = sns.handle(
            &p(&[("Action", "Publish"), ("TopicArn", "arn:aws:sns:us-east-1:123456789012:nope"), ("Message", "x")]),
            0,
            "r",
            &home(),
        );
        assert_eq!(e.err().unwrap().code, "NotFound");
        let e = sns.handle(&p(&[("Action", "CreateTopic"), ("Name", "bad name")]), 0, "r", &home());
        assert_eq!(e.err().unwrap().code, "InvalidParameter");
        let e = sns.handle(&p(&[("Action", "Frobnicate")]), 0, "r", &home()).err().unwrap();
        assert!(e.message.contains("SetSubscriptionAttributes"), "the served actions come from the table: {e}");
    }
}
