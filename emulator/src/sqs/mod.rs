//! SQS on its JSON wire protocol (awsJson1.0: `POST /` with `X-Amz-Target: AmazonSQS.<Action>`,
//! which `aws-sdk-sqs`, boto3 and the AWS CLI speak), the actions of [`crate::served::SQS`]:
//! queues and their attributes here, messages in [`messages`], the batch actions in
//! [`batch`]. Rules and sources: `docs/reference/emulator-services.md`.
//!
//! Times a client reads (`SentTimestamp`, `ApproximateFirstReceiveTimestamp`,
//! `CreatedTimestamp`) are on the emulator's virtual clock; delays and visibility timeouts
//! run on real time, so queued work moves on with a frozen clock too (ours).
//!
//! ListQueues as AWS documents it: queues whose name begins with `QueueNamePrefix`
//! (case-sensitive), at most 1,000; `MaxResults` 1–1000, and a `NextToken` only when
//! `MaxResults` is set and more remain. Ours: queues in name order, the token is the last name
//! returned, an empty result is `{}`.
//!
//! With `--sqs-lambda QUEUE=FUNCTION` the emulator also plays the Lambda event source mapping:
//! it polls the queue and POSTs SQS events to the function, deleting what the function did not
//! report in `batchItemFailures`.

pub mod batch;
pub mod messages;

use messages::{AttributeValue, Message};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// An SQS error: its code (`__type`) and message, HTTP 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SqsError {
    pub code: &'static str,
    pub message: String,
}

impl SqsError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        SqsError { code, message: message.into() }
    }

    /// The JSON error body.
    pub fn to_json(&self) -> Value {
        json!({ "__type": format!("com.amazonaws.sqs#{}", self.code), "message": self.message })
    }
}

/// A queue attribute CreateQueue takes: its default, if it has one, and its range, if numeric.
struct QueueAttribute {
    name: &'static str,
    default: Option<&'static str>,
    range: Option<(i64, i64)>,
}

const fn attribute(name: &'static str, default: Option<&'static str>, range: Option<(i64, i64)>) -> QueueAttribute {
    QueueAttribute { name, default, range }
}

/// The queue attributes CreateQueue takes.
const QUEUE_ATTRIBUTES: [QueueAttribute; 15] = [
    attribute("DelaySeconds", Some("0"), Some((0, 900))),
    attribute("MaximumMessageSize", Some("262144"), Some((1024, 1_048_576))),
    attribute("MessageRetentionPeriod", Some("345600"), Some((60, 1_209_600))),
    attribute("ReceiveMessageWaitTimeSeconds", Some("0"), Some((0, 20))),
    attribute("VisibilityTimeout", Some("30"), Some((0, 43_200))),
    attribute("Policy", None, None),
    attribute("RedrivePolicy", None, None),
    attribute("RedriveAllowPolicy", None, None),
    attribute("KmsMasterKeyId", None, None),
    attribute("KmsDataKeyReusePeriodSeconds", None, Some((60, 86_400))),
    attribute("SqsManagedSseEnabled", None, None),
    attribute("FifoQueue", None, None),
    attribute("ContentBasedDeduplication", None, None),
    attribute("DeduplicationScope", None, None),
    attribute("FifoThroughputLimit", None, None),
];

/// Attributes GetQueueAttributes computes.
const COMPUTED_ATTRIBUTES: [&str; 6] = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

/// A queue.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) messages: Vec<Message>,
    /// Every settable attribute: the defaults with what CreateQueue set over them.
    pub(crate) attributes: BTreeMap<String, String>,
    /// Virtual epoch milliseconds.
    pub(crate) created_ms: i64,
}

impl Queue {
    fn new(given: BTreeMap<String, String>, now_ms: i64) -> Self {
        let mut attributes: BTreeMap<String, String> =
            QUEUE_ATTRIBUTES.iter().filter_map(|a| a.default.map(|d| (a.name.to_owned(), d.to_owned()))).collect();
        attributes.extend(given);
        Queue { messages: Vec::new(), attributes, created_ms: now_ms }
    }

    /// A numeric attribute (every one with a default is).
    pub(crate) fn number(&self, name: &str) -> u64 {
        self.attributes.get(name).and_then(|v| v.parse().ok()).unwrap_or_default()
    }
}

/// A received message, for the event source mapping.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub receipt: String,
    pub body: String,
    pub md5: String,
    pub sender: String,
    pub sent_ms: i64,
    pub first_receive_ms: i64,
    pub receives: u32,
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// The emulated SQS of the default account-region.
#[derive(Debug, Default)]
pub struct Sqs {
    region: String,
    account_id: String,
    base_url: String,
    pub(crate) queues: BTreeMap<String, Queue>,
}

/// A required string member.
pub(crate) fn str_field<'a>(body: &'a Value, name: &str) -> Result<&'a str, SqsError> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| SqsError::new("MissingParameter", format!("The request must contain the parameter {name}.")))
}

/// Checks queue attributes given to CreateQueue.
fn check_queue_attributes(given: &BTreeMap<String, String>) -> Result<(), SqsError> {
    for (name, value) in given {
        let Some(QueueAttribute { range, .. }) = QUEUE_ATTRIBUTES.iter().find(|a| a.name == name) else {
            return Err(SqsError::new("InvalidAttributeName", format!("Unknown Attribute {name}.")));
        };
        if let Some((min, max)) = range {
            if !value.parse::<i64>().is_ok_and(|v| (*min..=*max).contains(&v)) {
                return Err(SqsError::new(
                    "InvalidAttributeValue",
                    format!("Invalid value for the parameter {name}: it must be an integer from {min} to {max}."),
                ));
            }
        }
    }
    Ok(())
}

impl Sqs {
    /// No queue yet; queues live in `account_id`/`region` at `base_url`.
    pub fn new(region: &str, account_id: &str, base_url: &str) -> Self {
        Sqs { region: region.into(), account_id: account_id.into(), base_url: base_url.into(), queues: BTreeMap::new() }
    }

    /// The URL of a queue.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{}/{name}", self.base_url, self.account_id)
    }

    /// The ARN of a queue.
    pub fn arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account_id)
    }

    /// The queue `QueueUrl` names.
    pub(crate) fn name_of(&self, body: &Value) -> Result<String, SqsError> {
        let url = str_field(body, "QueueUrl")?;
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        if self.queues.contains_key(&name) {
            Ok(name)
        } else {
            Err(SqsError::new("QueueDoesNotExist", format!("The specified queue does not exist: {url}")))
        }
    }

    /// Creates a queue with the default attributes if missing (idempotent), as a local stack needs.
    pub fn ensure_queue(&mut self, name: &str, now_ms: i64) -> String {
        self.queues.entry(name.to_owned()).or_insert_with(|| Queue::new(BTreeMap::new(), now_ms));
        self.url(name)
    }

    /// Handles one action from `sender` (the caller's user id, `SenderId` of what it sends).
    pub fn handle(&mut self, action: &str, body: &Value, now_ms: i64, sender: &str) -> Result<Value, SqsError> {
        match action {
            "CreateQueue" => self.create_queue(body, now_ms),
            "DeleteQueue" => {
                let name = self.name_of(body)?;
                self.queues.remove(&name);
                Ok(json!({}))
            }
            "ListQueues" => self.list_queues(body),
            "GetQueueUrl" => {
                let name = str_field(body, "QueueName")?;
                if !self.queues.contains_key(name) {
                    return Err(SqsError::new(
                        "QueueDoesNotExist",
                        format!("The specified queue does not exist: {name}"),
                    ));
                }
                Ok(json!({ "QueueUrl": self.url(name) }))
            }
            "GetQueueAttributes" => self.get_queue_attributes(body),
            "PurgeQueue" => {
                let name = self.name_of(body)?;
                self.queues.get_mut(&name).expect("checked").messages.clear();
                Ok(json!({}))
            }
            "SendMessage" => self.send_message(body, now_ms, sender),
            "SendMessageBatch" => self.send_message_batch(body, now_ms, sender),
            "ReceiveMessage" => self.receive_message(body, now_ms),
            "DeleteMessage" => {
                let name = self.name_of(body)?;
                let receipt = str_field(body, "ReceiptHandle")?;
                if !self.delete(&name, receipt) {
                    return Err(SqsError::new(
                        "ReceiptHandleIsInvalid",
                        format!("The input receipt handle \"{receipt}\" is not a valid receipt handle."),
                    ));
                }
                Ok(json!({}))
            }
            "DeleteMessageBatch" => self.delete_message_batch(body),
            "ChangeMessageVisibility" => self.change_message_visibility(body),
            other => {
                let served: Vec<&str> = crate::served::SQS.iter().map(|op| op.name).collect();
                Err(SqsError::new(
                    "InvalidAction",
                    format!(
                        "The action {other} is not valid for this endpoint (the emulator serves {})",
                        served.join(", ")
                    ),
                ))
            }
        }
    }

    fn create_queue(&mut self, body: &Value, now_ms: i64) -> Result<Value, SqsError> {
        let name = str_field(body, "QueueName")?;
        if name.is_empty()
            || name.len() > 80
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(SqsError::new(
                "InvalidParameterValue",
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
            ));
        }
        let given: BTreeMap<String, String> = match body.get("Attributes") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(m)) => {
                m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
            }
            Some(_) => return Err(SqsError::new("InvalidParameterValue", "Attributes must be a map of strings")),
        };
        check_queue_attributes(&given)?;
        if let Some(q) = self.queues.get(name) {
            // The same name again: the same queue, unless an attribute given differs.
            if let Some((k, _)) = given.iter().find(|(k, v)| q.attributes.get(*k) != Some(v)) {
                return Err(SqsError::new(
                    "QueueNameExists",
                    format!("A queue already exists with the same name and a different value for attribute {k}"),
                ));
            }
        } else {
            self.queues.insert(name.to_owned(), Queue::new(given, now_ms));
        }
        Ok(json!({ "QueueUrl": self.url(name) }))
    }

    fn list_queues(&self, body: &Value) -> Result<Value, SqsError> {
        let prefix = body.get("QueueNamePrefix").and_then(Value::as_str).unwrap_or("");
        let max = match body.get("MaxResults") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) if (1..=1000).contains(&n) => Some(n as usize),
                _ => return Err(SqsError::new("InvalidParameterValue", "MaxResults must be 1 to 1000")),
            },
        };
        let after = body.get("NextToken").and_then(Value::as_str);
        let names: Vec<&String> = self
            .queues
            .keys()
            .filter(|n| n.starts_with(prefix))
            .filter(|n| after.is_none_or(|a| n.as_str() > a))
            .collect();
        let limit = max.unwrap_or(1000);
        let mut out = Map::new();
        if !names.is_empty() {
            let urls: Vec<String> = names.iter().take(limit).map(|n| self.url(n)).collect();
            out.insert("QueueUrls".into(), json!(urls));
        }
        if max.is_some() && names.len() > limit {
            out.insert("NextToken".into(), json!(names[limit - 1]));
        }
        Ok(Value::Object(out))
    }

    /// GetQueueAttributes: the attributes asked for (`All`, or by name), none when none is.
    fn get_queue_attributes(&self, body: &Value) -> Result<Value, SqsError> {
        let name = self.name_of(body)?;
        let asked = messages::names(body, "AttributeNames")?;
        let known = |n: &str| COMPUTED_ATTRIBUTES.contains(&n) || QUEUE_ATTRIBUTES.iter().any(|a| a.name == n);
        if let Some(bad) = asked.iter().find(|n| *n != "All" && !known(n)) {
            return Err(SqsError::new("InvalidAttributeName", format!("Unknown Attribute {bad}.")));
        }
        let all = asked.iter().any(|n| n == "All");
        let q = &self.queues[&name];
        let now = Instant::now();
        let visible = q.messages.iter().filter(|m| m.visible_at <= now && m.receipt.is_none()).count();
        let in_flight = q.messages.iter().filter(|m| m.receipt.is_some() && m.visible_at > now).count();
        let delayed = q.messages.iter().filter(|m| m.visible_at > now && m.receipt.is_none()).count();
        let mut every = q.attributes.clone();
        every.insert("ApproximateNumberOfMessages".into(), visible.to_string());
        every.insert("ApproximateNumberOfMessagesNotVisible".into(), in_flight.to_string());
        every.insert("ApproximateNumberOfMessagesDelayed".into(), delayed.to_string());
        every.insert("CreatedTimestamp".into(), (q.created_ms / 1000).to_string());
        every.insert("LastModifiedTimestamp".into(), (q.created_ms / 1000).to_string());
        every.insert("QueueArn".into(), self.arn(&name));
        let attrs: Map<String, Value> =
            every.into_iter().filter(|(k, _)| all || asked.contains(k)).map(|(k, v)| (k, Value::String(v))).collect();
        if attrs.is_empty() {
            return Ok(json!({}));
        }
        Ok(json!({ "Attributes": attrs }))
    }

    /// Delivers an SNS message to the queue `arn` names (as SNS does for an `sqs`
    /// subscription), sent by `sender`: false when the emulator has no such queue.
    pub fn deliver_from_sns(&mut self, to: &crate::sns::ToQueue, sender: &str, now_ms: i64) -> bool {
        let parts: Vec<&str> = to.queue_arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _, "sqs", region, account, name]
                if *region == self.region && *account == self.account_id && self.queues.contains_key(*name) =>
            {
                let attributes = to.attributes.iter().map(|(k, a)| (k.clone(), AttributeValue::from_sns(a))).collect();
                self.push(name, to.body.clone(), attributes, None, sender, now_ms);
                true
            }
            _ => false,
        }
    }

    /// The messages of queue `name` as the admin API shows them (delayed and in-flight ones
    /// too, which ReceiveMessage does not): body, attributes, receives, and seconds until visible.
    pub fn peek(&self, name: &str) -> Option<Value> {
        let q = self.queues.get(name)?;
        let now = Instant::now();
        let messages: Vec<Value> = q
            .messages
            .iter()
            .map(|m| {
                json!({ "messageId": m.id, "body": m.body, "messageAttributes": messages::attributes_json(&m.attributes),
                        "receives": m.receives, "inFlight": m.receipt.is_some(), "sentTimestamp": m.sent_ms,
                        "visibleInSeconds": m.visible_at.saturating_duration_since(now).as_secs_f64() })
            })
            .collect();
        Some(json!({ "queueUrl": self.url(name), "messages": messages }))
    }

    /// Message counts per queue, for the admin API.
    pub fn snapshot(&self) -> Value {
        json!(self.queues.iter().map(|(k, q)| (k.clone(), q.messages.len())).collect::<BTreeMap<_, _>>())
    }
}

/// The SQS event the event source mapping delivers.
pub fn lambda_event(region: &str, arn: &str, messages: &[Received]) -> Value {
    json!({ "Records": messages.iter().map(|m| json!({
        "messageId": m.id,
        "receiptHandle": m.receipt,
        "body": m.body,
        "attributes": { "ApproximateReceiveCount": m.receives.to_string(), "SentTimestamp": m.sent_ms.to_string(),
                        "SenderId": m.sender, "ApproximateFirstReceiveTimestamp": m.first_receive_ms.to_string() },
        "messageAttributes": messages::lambda_attributes(&m.attributes),
        "md5OfBody": m.md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    })).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sqs_with(queue: &str) -> (Sqs, String) {
        let mut sqs = Sqs::new("us-east-1", "123456789012", "http://x");
        let url = sqs.handle("CreateQueue", &json!({ "QueueName": queue }), 0, "me").unwrap()["QueueUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        (sqs, url)
    }

    #[test]
    fn list_queues_by_prefix_and_pages() {
        let mut sqs = Sqs::new("us-east-1", "123456789012", "http://x");
        assert_eq!(sqs.handle("ListQueues", &json!({}), 0, "me").unwrap(), json!({}), "no queues: no QueueUrls");
        for name in ["continuation", "dlq", "continuation-dlq"] {
            sqs.handle("CreateQueue", &json!({ "QueueName": name }), 0, "me").unwrap();
        }
        let all = sqs.handle("ListQueues", &json!({}), 0, "me").unwrap();
        assert_eq!(all["QueueUrls"].as_array().unwrap().len(), 3);
        assert!(all.get("NextToken").is_none(), "no token without MaxResults");
        let some = sqs.handle("ListQueues", &json!({ "QueueNamePrefix": "cont" }), 0, "me").unwrap();
        assert_eq!(
            some["QueueUrls"],
            json!(["http://x/123456789012/continuation", "http://x/123456789012/continuation-dlq"])
        );
        assert_eq!(sqs.handle("ListQueues", &json!({ "QueueNamePrefix": "Cont" }), 0, "me").unwrap(), json!({}));
        let first = sqs.handle("ListQueues", &json!({ "MaxResults": 2 }), 0, "me").unwrap();
        assert_eq!(first["QueueUrls"].as_array().unwrap().len(), 2);
        let token = first["NextToken"].clone();
        let rest = sqs.handle("ListQueues", &json!({ "MaxResults": 2, "NextToken": token }), 0, "me").unwrap();
        assert_eq!(rest["QueueUrls"], json!(["http://x/123456789012/dlq"]));
        assert!(rest.get("NextToken").is_none());
        let e = sqs.handle("ListQueues", &json!({ "MaxResults": 0 }), 0, "me").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
    }

    #[test]
    fn queue_attributes_answer_what_was_asked() {
        let mut sqs = Sqs::new("us-east-1", "123456789012", "http://x");
        let create = json!({ "QueueName": "q", "Attributes": { "VisibilityTimeout": "120" } });
        let url = sqs.handle("CreateQueue", &create, 1_700_000_000_000, "me").unwrap()["QueueUrl"].clone();
        let get = |sqs: &mut Sqs, names: Value| {
            sqs.handle("GetQueueAttributes", &json!({ "QueueUrl": url, "AttributeNames": names }), 0, "me")
        };
        assert_eq!(
            get(&mut sqs, json!(["VisibilityTimeout"])).unwrap(),
            json!({ "Attributes": { "VisibilityTimeout": "120" } })
        );
        let all = get(&mut sqs, json!(["All"])).unwrap();
        assert_eq!(all["Attributes"]["CreatedTimestamp"], "1700000000", "virtual time, epoch seconds");
        assert_eq!(all["Attributes"]["QueueArn"], "arn:aws:sqs:us-east-1:123456789012:q");
        assert_eq!(all["Attributes"]["DelaySeconds"], "0");
        assert_eq!(get(&mut sqs, json!([])).unwrap(), json!({}), "nothing asked, nothing answered");
        assert_eq!(get(&mut sqs, json!(["Colour"])).unwrap_err().code, "InvalidAttributeName");
        let again = sqs.handle("CreateQueue", &create, 0, "me").unwrap();
        assert_eq!(again["QueueUrl"], url, "the same attributes: the same queue");
        let other = json!({ "QueueName": "q", "Attributes": { "VisibilityTimeout": "5" } });
        assert_eq!(sqs.handle("CreateQueue", &other, 0, "me").unwrap_err().code, "QueueNameExists");
        let bad = json!({ "QueueName": "r", "Attributes": { "VisibilityTimeout": "50000" } });
        assert_eq!(sqs.handle("CreateQueue", &bad, 0, "me").unwrap_err().code, "InvalidAttributeValue");
        sqs.handle("DeleteQueue", &json!({ "QueueUrl": url }), 0, "me").unwrap();
        assert_eq!(get(&mut sqs, json!(["All"])).unwrap_err().code, "QueueDoesNotExist");
    }
}
