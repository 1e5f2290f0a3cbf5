//! The SQS calls the functions' continuation queue needs, on SQS's JSON wire protocol
//! (awsJson1.0: `POST /` with `X-Amz-Target: AmazonSQS.<Action>`), so `aws-sdk-sqs` works
//! against it: CreateQueue, GetQueueUrl, ListQueues, SendMessage, ReceiveMessage, DeleteMessage,
//! GetQueueAttributes, PurgeQueue. Delays and visibility timeouts run on real time.
//!
//! ListQueues as AWS documents it
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListQueues.html>):
//! queues whose name begins with `QueueNamePrefix` (case-sensitive), at most 1,000;
//! `MaxResults` 1–1000, and a `NextToken` only when `MaxResults` is set and more remain.
//! Ours: queues in name order, the token is the last name returned, an empty result is `{}`.
//!
//! With `--sqs-lambda QUEUE=FUNCTION` the emulator also plays the Lambda event source mapping:
//! it polls the queue and POSTs SQS events to the function, deleting what the function did not
//! report in `batchItemFailures`.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An SQS error: `__type` and message, HTTP 400.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsError {
    pub code: &'static str,
    pub message: String,
}

impl SqsError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        SqsError { code, message: message.into() }
    }

    /// The JSON error body.
    pub fn to_json(&self) -> Value {
        json!({ "__type": format!("com.amazonaws.sqs#{}", self.code), "message": self.message })
    }
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    md5: String,
    sent_ms: u128,
    visible_at: Instant,
    receipt: Option<String>,
    receives: u32,
}

#[derive(Debug, Default)]
struct Queue {
    messages: Vec<Message>,
    visibility: Duration,
}

/// A received message, for the event source mapping.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub receipt: String,
    pub body: String,
    pub md5: String,
    pub sent_ms: u128,
    pub receives: u32,
}

/// The emulated SQS of the account.
#[derive(Debug, Default)]
pub struct Sqs {
    region: String,
    account_id: String,
    base_url: String,
    queues: BTreeMap<String, Queue>,
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(s.as_bytes()))
}

fn str_field<'a>(body: &'a Value, name: &str) -> Result<&'a str, SqsError> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| SqsError::new("MissingParameter", format!("{name} is required")))
}

impl Sqs {
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

    fn name_of(&self, body: &Value) -> Result<String, SqsError> {
        let url = str_field(body, "QueueUrl")?;
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        if self.queues.contains_key(&name) {
            Ok(name)
        } else {
            Err(SqsError::new("QueueDoesNotExist", format!("The specified queue does not exist: {url}")))
        }
    }

    /// Creates a queue if missing (idempotent), as a local stack needs.
    pub fn ensure_queue(&mut self, name: &str) -> String {
        self.queues
            .entry(name.to_owned())
            .or_insert_with(|| Queue { messages: Vec::new(), visibility: Duration::from_secs(30) });
        self.url(name)
    }

    /// Handles one action.
    pub fn handle(&mut self, action: &str, body: &Value) -> Result<Value, SqsError> {
        match action {
            "CreateQueue" => {
                let name = str_field(body, "QueueName")?;
                if name.is_empty()
                    || name.len() > 80
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                {
                    return Err(SqsError::new(
                        "InvalidParameterValue",
                        "QueueName must be 1-80 alphanumeric characters, hyphens or underscores",
                    ));
                }
                let url = self.ensure_queue(name);
                if let Some(v) =
                    body.pointer("/Attributes/VisibilityTimeout").and_then(Value::as_str).and_then(|v| v.parse().ok())
                {
                    self.queues.get_mut(name).expect("just created").visibility = Duration::from_secs(v);
                }
                Ok(json!({ "QueueUrl": url }))
            }
            "ListQueues" => {
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
            "SendMessage" => {
                let name = self.name_of(body)?;
                let text = str_field(body, "MessageBody")?.to_owned();
                if text.is_empty() || text.len() > 262_144 {
                    return Err(SqsError::new("InvalidParameterValue", "MessageBody must be 1 to 262144 bytes"));
                }
                let delay = body.get("DelaySeconds").and_then(Value::as_i64).unwrap_or(0);
                if !(0..=900).contains(&delay) {
                    return Err(SqsError::new("InvalidParameterValue", "DelaySeconds must be 0 to 900"));
                }
                let (id, md5) = self.push(&name, text, Duration::from_secs(delay as u64));
                Ok(json!({ "MessageId": id, "MD5OfMessageBody": md5 }))
            }
            "ReceiveMessage" => {
                let name = self.name_of(body)?;
                let max = body.get("MaxNumberOfMessages").and_then(Value::as_i64).unwrap_or(1);
                if !(1..=10).contains(&max) {
                    return Err(SqsError::new("InvalidParameterValue", "MaxNumberOfMessages must be 1 to 10"));
                }
                let visibility = body.get("VisibilityTimeout").and_then(Value::as_u64).map(Duration::from_secs);
                let msgs: Vec<Value> = self
                    .receive(&name, max as usize, visibility)
                    .into_iter()
                    .map(|m| {
                        json!({ "MessageId": m.id, "ReceiptHandle": m.receipt, "MD5OfBody": m.md5, "Body": m.body,
                                "Attributes": { "ApproximateReceiveCount": m.receives.to_string(), "SentTimestamp": m.sent_ms.to_string() } })
                    })
                    .collect();
                Ok(json!({ "Messages": msgs }))
            }
            "DeleteMessage" => {
                let name = self.name_of(body)?;
                let receipt = str_field(body, "ReceiptHandle")?;
                if !self.delete(&name, receipt) {
                    return Err(SqsError::new("ReceiptHandleIsInvalid", "The receipt handle is not valid"));
                }
                Ok(json!({}))
            }
            "GetQueueAttributes" => {
                let name = self.name_of(body)?;
                let now = Instant::now();
                let q = &self.queues[&name];
                let visible = q.messages.iter().filter(|m| m.visible_at <= now && m.receipt.is_none()).count();
                let in_flight = q.messages.iter().filter(|m| m.receipt.is_some() && m.visible_at > now).count();
                let delayed = q.messages.iter().filter(|m| m.visible_at > now && m.receipt.is_none()).count();
                let mut attrs = Map::new();
                attrs.insert("ApproximateNumberOfMessages".into(), json!(visible.to_string()));
                attrs.insert("ApproximateNumberOfMessagesNotVisible".into(), json!(in_flight.to_string()));
                attrs.insert("ApproximateNumberOfMessagesDelayed".into(), json!(delayed.to_string()));
                attrs.insert("QueueArn".into(), json!(self.arn(&name)));
                Ok(json!({ "Attributes": attrs }))
            }
            "PurgeQueue" => {
                let name = self.name_of(body)?;
                self.queues.get_mut(&name).expect("checked").messages.clear();
                Ok(json!({}))
            }
            other => Err(SqsError::new("InvalidAction", format!("The action {other} is not served by the emulator"))),
        }
    }

    /// Appends a message to queue `name` (which exists), visible after `delay`: its id and MD5.
    fn push(&mut self, name: &str, text: String, delay: Duration) -> (String, String) {
        let md5 = md5_hex(&text);
        let id = uuid::Uuid::new_v4().to_string();
        let sent_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        self.queues.get_mut(name).expect("checked").messages.push(Message {
            id: id.clone(),
            body: text,
            md5: md5.clone(),
            sent_ms,
            visible_at: Instant::now() + delay,
            receipt: None,
            receives: 0,
        });
        (id, md5)
    }

    /// Delivers an SNS message to the queue `arn` names (as SNS does for an `sqs`
    /// subscription): false when the emulator has no such queue.
    pub fn deliver_from_sns(&mut self, arn: &str, body: String) -> bool {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _, "sqs", region, account, name]
                if *region == self.region && *account == self.account_id && self.queues.contains_key(*name) =>
            {
                self.push(name, body, Duration::ZERO);
                true
            }
            _ => false,
        }
    }

    /// Receives up to `max` visible messages, hiding them for the visibility timeout.
    pub fn receive(&mut self, name: &str, max: usize, visibility: Option<Duration>) -> Vec<Received> {
        let Some(q) = self.queues.get_mut(name) else { return Vec::new() };
        let now = Instant::now();
        let hide = visibility.unwrap_or(q.visibility);
        let mut out = Vec::new();
        for m in q.messages.iter_mut().filter(|m| m.visible_at <= now).take(max) {
            let receipt = uuid::Uuid::new_v4().to_string();
            m.receipt = Some(receipt.clone());
            m.visible_at = now + hide;
            m.receives += 1;
            out.push(Received {
                id: m.id.clone(),
                receipt,
                body: m.body.clone(),
                md5: m.md5.clone(),
                sent_ms: m.sent_ms,
                receives: m.receives,
            });
        }
        out
    }

    /// Deletes a received message by its receipt handle.
    pub fn delete(&mut self, name: &str, receipt: &str) -> bool {
        let Some(q) = self.queues.get_mut(name) else { return false };
        let before = q.messages.len();
        q.messages.retain(|m| m.receipt.as_deref() != Some(receipt));
        q.messages.len() < before
    }

    /// Makes a received message visible again now (a failed delivery).
    pub fn release(&mut self, name: &str, receipt: &str) {
        if let Some(m) = self
            .queues
            .get_mut(name)
            .and_then(|q| q.messages.iter_mut().find(|m| m.receipt.as_deref() == Some(receipt)))
        {
            m.visible_at = Instant::now() + Duration::from_secs(1);
        }
    }

    /// The messages of queue `name` as the admin API shows them (delayed and in-flight ones
    /// too, which ReceiveMessage does not): body, receives, and seconds until visible.
    pub fn peek(&self, name: &str) -> Option<Value> {
        let q = self.queues.get(name)?;
        let now = Instant::now();
        let messages: Vec<Value> = q
            .messages
            .iter()
            .map(|m| {
                json!({ "messageId": m.id, "body": m.body, "receives": m.receives, "inFlight": m.receipt.is_some(),
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
                        "SenderId": "EMULATOR", "ApproximateFirstReceiveTimestamp": m.sent_ms.to_string() },
        "messageAttributes": {},
        "md5OfBody": m.md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    })).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_receive_delete_with_delay_and_visibility() {
        let mut sqs = Sqs::new("us-east-1", "123456789012", "http://x");
        let url =
            sqs.handle("CreateQueue", &json!({ "QueueName": "q" })).unwrap()["QueueUrl"].as_str().unwrap().to_owned();
        sqs.handle("SendMessage", &json!({ "QueueUrl": url, "MessageBody": "hello" })).unwrap();
        sqs.handle("SendMessage", &json!({ "QueueUrl": url, "MessageBody": "later", "DelaySeconds": 60 })).unwrap();
        let got = sqs.receive("q", 10, None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, "hello");
        assert_eq!(got[0].md5, "5d41402abc4b2a76b9719d911017c592");
        assert!(sqs.receive("q", 10, None).is_empty(), "in flight, then delayed");
        assert!(sqs.delete("q", &got[0].receipt));
        let e = sqs.handle("SendMessage", &json!({ "QueueUrl": "http://x/1/none", "MessageBody": "x" })).unwrap_err();
        assert_eq!(e.code, "QueueDoesNotExist");
        let peeked = sqs.peek("q").unwrap();
        assert_eq!(peeked["messages"][0]["body"], "later", "a delayed message is shown");
        assert!(peeked["messages"][0]["visibleInSeconds"].as_f64().unwrap() > 59.0);
        assert!(sqs.peek("none").is_none());
    }

    #[test]
    fn list_queues_by_prefix_and_pages() {
        let mut sqs = Sqs::new("us-east-1", "123456789012", "http://x");
        assert_eq!(sqs.handle("ListQueues", &json!({})).unwrap(), json!({}), "no queues: no QueueUrls");
        for name in ["continuation", "dlq", "continuation-dlq"] {
            sqs.handle("CreateQueue", &json!({ "QueueName": name })).unwrap();
        }
        let all = sqs.handle("ListQueues", &json!({})).unwrap();
        assert_eq!(all["QueueUrls"].as_array().unwrap().len(), 3);
        assert!(all.get("NextToken").is_none(), "no token without MaxResults");
        let some = sqs.handle("ListQueues", &json!({ "QueueNamePrefix": "cont" })).unwrap();
        assert_eq!(
            some["QueueUrls"],
            json!(["http://x/123456789012/continuation", "http://x/123456789012/continuation-dlq"])
        );
        assert_eq!(sqs.handle("ListQueues", &json!({ "QueueNamePrefix": "Cont" })).unwrap(), json!({}));
        let first = sqs.handle("ListQueues", &json!({ "MaxResults": 2 })).unwrap();
        assert_eq!(first["QueueUrls"].as_array().unwrap().len(), 2);
        let token = first["NextToken"].clone();
        let rest = sqs.handle("ListQueues", &json!({ "MaxResults": 2, "NextToken": token })).unwrap();
        assert_eq!(rest["QueueUrls"], json!(["http://x/123456789012/dlq"]));
        assert!(rest.get("NextToken").is_none());
        let e = sqs.handle("ListQueues", &json!({ "MaxResults": 0 })).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
    }
}
