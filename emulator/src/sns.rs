//! The SNS calls a local run needs, on SNS's real wire protocol (awsQuery: form-encoded POST
//! to `/`, XML answers), so `aws-sdk-sns` and the AWS CLI work against it: CreateTopic,
//! DeleteTopic, ListTopics, GetTopicAttributes, Subscribe, ConfirmSubscription, Unsubscribe,
//! ListSubscriptions, ListSubscriptionsByTopic, Publish.
//!
//! Every published message (by a client or by the audit service) lands in the outbox,
//! readable through `GET /_emulator/outbox`. Messages to a topic with `lambda` subscriptions
//! are delivered as the SNS Lambda event by [`crate::delivery`]; to `sqs` subscriptions of the
//! emulator's queues as SNS's JSON envelope (`Type: Notification`, not raw). An `sqs`
//! subscription made by another account than the queue's waits for confirmation, as in AWS
//! ("confirmation is automatic when the queue owner creates the subscription"): a
//! `SubscriptionConfirmation` envelope with a `Token` goes to the queue, and
//! `ConfirmSubscription` with that token confirms it.

use chrono::{TimeZone, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// An SNS error: code, HTTP status, message.
#[derive(Debug, Clone, PartialEq)]
pub struct SnsError {
    pub code: &'static str,
    pub status: u16,
    pub sender: bool,
    pub message: String,
}

impl SnsError {
    fn invalid(message: impl Into<String>) -> Self {
        SnsError { code: "InvalidParameter", status: 400, sender: true, message: message.into() }
    }
    fn not_found(message: impl Into<String>) -> Self {
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

/// A subscription.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub subscription_arn: String,
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: String,
    /// The confirmation token, while the subscription waits for confirmation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_token: Option<String>,
}

#[derive(Debug, Clone)]
struct Topic {
    arn: String,
    attributes: BTreeMap<String, String>,
    subscriptions: Vec<Subscription>,
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
    /// `pending`, `delivered`, `failed`, or `recorded` (protocol not delivered locally).
    pub status: String,
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

/// A message published to a topic, and the deliveries it needs.
#[derive(Debug, Clone)]
pub struct Published {
    pub outbox_index: usize,
    pub message: OutboxMessage,
    pub lambda_subscriptions: Vec<Subscription>,
    /// SNS envelopes for `sqs` subscriptions: (queue ARN, body).
    pub to_queues: Vec<(String, String)>,
}

/// The result of one SNS action.
pub struct ActionResult {
    pub xml: String,
    pub published: Option<Published>,
    /// Messages for queues the action produced besides a publication (a subscription
    /// confirmation request): (queue ARN, body).
    pub to_queues: Vec<(String, String)>,
}

/// SNS's JSON envelope of a message to an `sqs` subscription (not raw delivery).
fn envelope(m: &OutboxMessage) -> String {
    let attributes: serde_json::Map<String, serde_json::Value> = m
        .message_attributes
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!({ "Type": v.data_type, "Value": v.string_value })))
        .collect();
    let mut e = serde_json::json!({
        "Type": "Notification",
        "MessageId": m.message_id,
        "TopicArn": m.topic_arn,
        "Message": m.message,
        "Timestamp": m.timestamp,
        "SignatureVersion": "1",
        "Signature": "EMULATOR",
        "SigningCertURL": "https://sns.amazonaws.com/emulator.pem",
        "UnsubscribeURL": "https://sns.amazonaws.com/?Action=Unsubscribe",
    });
    if let Some(s) = &m.subject {
        e["Subject"] = serde_json::json!(s);
    }
    if !attributes.is_empty() {
        e["MessageAttributes"] = serde_json::Value::Object(attributes);
    }
    e.to_string()
}

fn escape(s: &str) -> String {
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

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, SnsError> {
    param(params, name).ok_or_else(|| SnsError::invalid(format!("Invalid parameter: {name} is required")))
}

fn response(action: &str, result: &str, request_id: &str) -> String {
    let inner = if result.is_empty() { String::new() } else { format!("<{action}Result>{result}</{action}Result>") };
    format!("<{action}Response xmlns=\"{XMLNS}\">{inner}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>")
}

fn subscription_xml(s: &Subscription, owner: &str) -> String {
    format!(
        "<member><SubscriptionArn>{}</SubscriptionArn><Owner>{owner}</Owner><Protocol>{}</Protocol><Endpoint>{}</Endpoint><TopicArn>{}</TopicArn></member>",
        escape(&s.subscription_arn),
        escape(&s.protocol),
        escape(&s.endpoint),
        escape(&s.topic_arn)
    )
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
        let ok = |xml: String| Ok(ActionResult { xml, published: None, to_queues: Vec::new() });
        match action {
            "CreateTopic" => {
                let name = required(params, "Name")?;
                let base = name.strip_suffix(".fifo").unwrap_or(name);
                if base.is_empty() || name.len() > 256 || !base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return Err(SnsError::invalid(
                        "Invalid parameter: Topic Name must be 1-256 ASCII letters, digits, hyphens or underscores (.fifo allowed at the end)",
                    ));
                }
                let arn = format!("arn:aws:sns:{}:{}:{name}", caller.region, caller.account);
                let attrs = map_entries(params, "Attributes.entry", "key", "value");
                self.topics.entry(arn.clone()).or_insert_with(|| Topic { arn: arn.clone(), attributes: attrs, subscriptions: Vec::new() });
                ok(response(action, &format!("<TopicArn>{}</TopicArn>", escape(&arn)), request_id))
            }
            "DeleteTopic" => {
                let arn = required(params, "TopicArn")?;
                self.topics.remove(arn);
                ok(response(action, "", request_id))
            }
            "ListTopics" => {
                // The caller's account-region's topics, as AWS lists them.
                let prefix = format!("arn:aws:sns:{}:{}:", caller.region, caller.account);
                let own: Vec<String> = self.topics.keys().filter(|a| a.starts_with(&prefix)).cloned().collect();
                let (page, next) = self.page(own, param(params, "NextToken"))?;
                let members: String = page.iter().map(|a| format!("<member><TopicArn>{}</TopicArn></member>", escape(a))).collect();
                let next = next.map(|n| format!("<NextToken>{n}</NextToken>")).unwrap_or_default();
                ok(response(action, &format!("<Topics>{members}</Topics>{next}"), request_id))
            }
            "GetTopicAttributes" => {
                let topic = self.topic(required(params, "TopicArn")?)?;
                let mut attrs = topic.attributes.clone();
                attrs.insert("TopicArn".into(), topic.arn.clone());
                attrs.insert("Owner".into(), topic.arn.split(':').nth(4).unwrap_or_default().to_owned());
                let pending = topic.subscriptions.iter().filter(|s| s.pending_token.is_some()).count();
                attrs.insert("SubscriptionsConfirmed".into(), (topic.subscriptions.len() - pending).to_string());
                attrs.insert("SubscriptionsPending".into(), pending.to_string());
                attrs.insert("SubscriptionsDeleted".into(), "0".into());
                let entries: String = attrs
                    .iter()
                    .map(|(k, v)| format!("<entry><key>{}</key><value>{}</value></entry>", escape(k), escape(v)))
                    .collect();
                ok(response(action, &format!("<Attributes>{entries}</Attributes>"), request_id))
            }
            "Subscribe" => {
                let topic_arn = required(params, "TopicArn")?.to_owned();
                let protocol = required(params, "Protocol")?.to_owned();
                let endpoint = param(params, "Endpoint").unwrap_or_default().to_owned();
                const PROTOCOLS: [&str; 8] = ["http", "https", "email", "email-json", "sms", "sqs", "application", "lambda"];
                if !PROTOCOLS.contains(&protocol.as_str()) && protocol != "firehose" {
                    return Err(SnsError::invalid(format!("Invalid parameter: Protocol '{protocol}' is not supported")));
                }
                if protocol == "lambda" && !endpoint.starts_with("arn:aws:lambda:") {
                    return Err(SnsError::invalid("Invalid parameter: a lambda Endpoint must be a Lambda function ARN"));
                }
                let queue_account = match protocol.as_str() {
                    "sqs" => match endpoint.splitn(6, ':').collect::<Vec<_>>().as_slice() {
                        ["arn", _, "sqs", _, account, name] if !name.is_empty() => Some(account.to_string()),
                        _ => return Err(SnsError::invalid("Invalid parameter: an sqs Endpoint must be an SQS queue ARN")),
                    },
                    _ => None,
                };
                let topic = self.topics.get_mut(&topic_arn).ok_or_else(|| SnsError::not_found("Topic does not exist"))?;
                let existing = topic.subscriptions.iter().find(|s| s.protocol == protocol && s.endpoint == endpoint);
                let mut to_queues = Vec::new();
                let (arn, pending) = match existing {
                    Some(s) => (s.subscription_arn.clone(), s.pending_token.is_some()),
                    None => {
                        let arn = format!("{topic_arn}:{}", uuid::Uuid::new_v4());
                        // Another account's queue: its owner confirms (the token goes to the queue).
                        let token = queue_account.filter(|a| *a != caller.account).map(|_| {
                            uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string()
                        });
                        if let Some(token) = &token {
                            to_queues.push((endpoint.clone(), confirmation(&topic_arn, token, now_ms)));
                        }
                        let pending = token.is_some();
                        topic.subscriptions.push(Subscription {
                            subscription_arn: arn.clone(),
                            topic_arn,
                            protocol,
                            endpoint,
                            pending_token: token,
                        });
                        (arn, pending)
                    }
                };
                // As AWS: a pending subscription's ARN is given only when asked for.
                let shown = if pending && param(params, "ReturnSubscriptionArn") != Some("true") {
                    "pending confirmation".to_owned()
                } else {
                    arn
                };
                let xml = response(action, &format!("<SubscriptionArn>{}</SubscriptionArn>", escape(&shown)), request_id);
                Ok(ActionResult { xml, published: None, to_queues })
            }
            "ConfirmSubscription" => {
                let topic_arn = required(params, "TopicArn")?;
                let token = required(params, "Token")?;
                let topic = self.topics.get_mut(topic_arn).ok_or_else(|| SnsError::not_found("Topic does not exist"))?;
                let sub = topic.subscriptions.iter_mut().find(|s| s.pending_token.as_deref() == Some(token));
                let sub = sub.ok_or_else(|| SnsError::invalid("Invalid token"))?;
                sub.pending_token = None;
                let arn = sub.subscription_arn.clone();
                ok(response(action, &format!("<SubscriptionArn>{}</SubscriptionArn>", escape(&arn)), request_id))
            }
            "Unsubscribe" => {
                let arn = required(params, "SubscriptionArn")?;
                let topic = self.topics.values_mut().find(|t| t.subscriptions.iter().any(|s| s.subscription_arn == arn));
                let topic = topic.ok_or_else(|| SnsError::not_found("Subscription does not exist"))?;
                topic.subscriptions.retain(|s| s.subscription_arn != arn);
                ok(response(action, "", request_id))
            }
            "ListSubscriptions" | "ListSubscriptionsByTopic" => {
                let subs: Vec<&Subscription> = if action == "ListSubscriptions" {
                    self.topics.values().flat_map(|t| t.subscriptions.iter()).collect()
                } else {
                    self.topic(required(params, "TopicArn")?)?.subscriptions.iter().collect()
                };
                let keys: Vec<String> = subs.iter().map(|s| s.subscription_arn.clone()).collect();
                let (page, next) = self.page(keys, param(params, "NextToken"))?;
                let members: String = subs
                    .iter()
                    .filter(|s| page.contains(&s.subscription_arn))
                    .map(|s| subscription_xml(s, &caller.account))
                    .collect();
                let next = next.map(|n| format!("<NextToken>{n}</NextToken>")).unwrap_or_default();
                ok(response(action, &format!("<Subscriptions>{members}</Subscriptions>{next}"), request_id))
            }
            "Publish" => {
                let topic_arn = param(params, "TopicArn").or_else(|| param(params, "TargetArn"));
                let topic_arn = topic_arn.ok_or_else(|| SnsError::invalid("Invalid parameter: TopicArn or TargetArn is required"))?;
                let message = required(params, "Message")?;
                if message.is_empty() {
                    return Err(SnsError::invalid("Invalid parameter: Empty message"));
                }
                if message.len() > 262_144 {
                    return Err(SnsError::invalid("Invalid parameter: Message too long (the limit is 262144 bytes)"));
                }
                let subject = param(params, "Subject");
                if let Some(s) = subject {
                    if s.is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) {
                        return Err(SnsError::invalid(
                            "Invalid parameter: Subject must be 1-100 printable characters without line breaks",
                        ));
                    }
                }
                let mut attributes = BTreeMap::new();
                for n in 1.. {
                    let prefix = format!("MessageAttributes.entry.{n}");
                    let Some(name) = param(params, &format!("{prefix}.Name")) else { break };
                    let data_type = param(params, &format!("{prefix}.Value.DataType")).unwrap_or_default().to_owned();
                    if !["String", "Number", "String.Array", "Binary"].iter().any(|t| data_type == *t || data_type.starts_with(&format!("{t}."))) {
                        return Err(SnsError::invalid(format!("Invalid parameter: MessageAttributes '{name}' has invalid DataType '{data_type}'")));
                    }
                    let value = param(params, &format!("{prefix}.Value.StringValue"))
                        .or_else(|| param(params, &format!("{prefix}.Value.BinaryValue")))
                        .unwrap_or_default()
                        .to_owned();
                    attributes.insert(name.to_owned(), MessageAttribute { data_type, string_value: value });
                }
                let published = self.publish(topic_arn, subject.map(str::to_owned), message.to_owned(), attributes, now_ms, "client")?;
                let xml = response(action, &format!("<MessageId>{}</MessageId>", published.message.message_id), request_id);
                Ok(ActionResult { xml, published: Some(published), to_queues: Vec::new() })
            }
            other => Err(SnsError {
                code: "InvalidAction",
                status: 400,
                sender: true,
                message: format!("The action {other} is not valid for this endpoint (the emulator serves CreateTopic, DeleteTopic, ListTopics, GetTopicAttributes, Subscribe, ConfirmSubscription, Unsubscribe, ListSubscriptions, ListSubscriptionsByTopic and Publish)"),
            }),
        }
    }

    /// Puts a message into the outbox and names the `lambda` subscriptions to deliver it to.
    /// Audit notifications to a topic the emulator does not know are still kept in the outbox.
    pub fn publish(
        &mut self,
        topic_arn: &str,
        subject: Option<String>,
        message: String,
        message_attributes: BTreeMap<String, MessageAttribute>,
        now_ms: i64,
        source: &str,
    ) -> Result<Published, SnsError> {
        let subs: Vec<Subscription> = match self.topics.get(topic_arn) {
            // Only confirmed subscriptions get messages.
            Some(t) => t.subscriptions.iter().filter(|s| s.pending_token.is_none()).cloned().collect(),
            None if source == "audit" => Vec::new(),
            None => return Err(SnsError::not_found("Topic does not exist")),
        };
        let deliveries = subs
            .iter()
            .map(|s| Delivery {
                subscription_arn: s.subscription_arn.clone(),
                protocol: s.protocol.clone(),
                endpoint: s.endpoint.clone(),
                status: match s.protocol.as_str() {
                    "lambda" => "pending",
                    "sqs" => "queued",
                    _ => "recorded",
                }
                .into(),
                attempts: 0,
                last_error: None,
            })
            .collect();
        let timestamp = Utc
            .timestamp_millis_opt(now_ms)
            .single()
            .expect("valid time")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let message = OutboxMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            topic_arn: topic_arn.to_owned(),
            subject,
            message,
            message_attributes,
            timestamp,
            source: source.to_owned(),
            deliveries,
        };
        self.outbox.push(message.clone());
        let to_queues =
            subs.iter().filter(|s| s.protocol == "sqs").map(|s| (s.endpoint.clone(), envelope(&message))).collect();
        Ok(Published {
            outbox_index: self.outbox.len() - 1,
            message,
            lambda_subscriptions: subs.into_iter().filter(|s| s.protocol == "lambda").collect(),
            to_queues,
        })
    }

    fn topic(&self, arn: &str) -> Result<&Topic, SnsError> {
        self.topics.get(arn).ok_or_else(|| SnsError::not_found("Topic does not exist"))
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

/// The `SubscriptionConfirmation` envelope SNS sends to a queue awaiting confirmation.
fn confirmation(topic_arn: &str, token: &str, now_ms: i64) -> String {
    let region = topic_arn.split(':').nth(3).unwrap_or_default();
    let timestamp = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .expect("valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": uuid::Uuid::new_v4().to_string(),
        "Token": token,
        "TopicArn": topic_arn,
        "Message": format!("You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."),
        "SubscribeURL": format!("https://sns.{region}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}"),
        "Timestamp": timestamp,
        "SignatureVersion": "1",
        "Signature": "EMULATOR",
        "SigningCertURL": "https://sns.amazonaws.com/emulator.pem",
    })
    .to_string()
}

/// Collects `prefix.N.<key>` / `prefix.N.<value>` pairs of an awsQuery map.
fn map_entries(params: &[(String, String)], prefix: &str, key: &str, value: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for n in 1.. {
        let Some(k) = param(params, &format!("{prefix}.{n}.{key}")) else { break };
        let v = param(params, &format!("{prefix}.{n}.{value}")).unwrap_or_default();
        out.insert(k.to_owned(), v.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> crate::scope::Scope {
        crate::scope::Scope { account: "123456789012".into(), region: "us-east-1".into() }
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
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
        assert!(sns.handle(&p(&[("Action", "Frobnicate")]), 0, "r", &home()).is_err());
    }

    #[test]
    fn topics_belong_to_the_callers_account_region() {
        let mut sns = Sns::new();
        let member = crate::scope::Scope { account: "222222222222".into(), region: "eu-west-1".into() };
        let r = sns.handle(&p(&[("Action", "CreateTopic"), ("Name", "audit")]), 0, "r", &member).unwrap();
        assert!(r.xml.contains("<TopicArn>arn:aws:sns:eu-west-1:222222222222:audit</TopicArn>"), "{}", r.xml);
        sns.handle(&p(&[("Action", "CreateTopic"), ("Name", "audit")]), 0, "r", &home()).unwrap();
        let listed = sns.handle(&p(&[("Action", "ListTopics")]), 0, "r", &member).unwrap().xml;
        assert!(listed.contains("222222222222:audit") && !listed.contains("123456789012"), "{listed}");
        // The hub subscribes to the member's topic by its ARN (cross-account).
        let sub = p(&[
            ("Action", "Subscribe"),
            ("TopicArn", "arn:aws:sns:eu-west-1:222222222222:audit"),
            ("Protocol", "lambda"),
            ("Endpoint", "arn:aws:lambda:us-east-1:123456789012:function:hub"),
        ]);
        assert!(sns.handle(&sub, 0, "r", &home()).is_ok());
        let attrs = sns
            .handle(
                &p(&[("Action", "GetTopicAttributes"), ("TopicArn", "arn:aws:sns:eu-west-1:222222222222:audit")]),
                0,
                "r",
                &home(),
            )
            .unwrap()
            .xml;
        assert!(attrs.contains("<key>Owner</key><value>222222222222</value>"), "{attrs}");
    }
}
