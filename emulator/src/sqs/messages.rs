//! Messages: SendMessage (with message attributes and their MD5), ReceiveMessage (system and
//! message attributes only when asked), DeleteMessage and ChangeMessageVisibility, and what
//! the event source mapping needs. Sources: `docs/reference/emulator-services.md`.

use super::{str_field, Received, Sqs, SqsError};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Message attributes a message may carry.
const MAX_ATTRIBUTES: usize = 10;

/// System attributes ReceiveMessage returns when asked (standard queues).
const SYSTEM_ATTRIBUTES: [&str; 4] =
    ["SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"];

/// A message attribute value.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeValue {
    /// `String`, `Number` or `Binary`, optionally with a custom suffix (`Number.float`).
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

impl AttributeValue {
    /// An SNS message attribute as the SQS attribute of a raw delivery.
    pub fn from_sns(a: &crate::sns::MessageAttribute) -> Self {
        if a.data_type.starts_with("Binary") {
            let bytes = base64::engine::general_purpose::STANDARD.decode(&a.string_value).unwrap_or_default();
            AttributeValue { data_type: a.data_type.clone(), string_value: None, binary_value: Some(bytes) }
        } else {
            AttributeValue {
                data_type: a.data_type.clone(),
                string_value: Some(a.string_value.clone()),
                binary_value: None,
            }
        }
    }

    fn to_json(&self) -> Value {
        let mut v = json!({ "DataType": self.data_type });
        if let Some(s) = &self.string_value {
            v["StringValue"] = json!(s);
        }
        if let Some(b) = &self.binary_value {
            v["BinaryValue"] = json!(base64::engine::general_purpose::STANDARD.encode(b));
        }
        v
    }
}

/// A queued message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub md5: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub sender: String,
    /// Virtual epoch milliseconds.
    pub sent_ms: i64,
    pub first_receive_ms: Option<i64>,
    pub visible_at: Instant,
    pub receipt: Option<String>,
    pub receives: u32,
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(bytes))
}

/// `MD5OfMessageAttributes` as the SQS developer guide specifies it: for each attribute in
/// name order, the name, the data type (each as a 4-byte big-endian length and UTF-8 bytes),
/// a transport byte (1 string or number, 2 binary) and the value (length and bytes).
pub fn md5_of_attributes(attributes: &BTreeMap<String, AttributeValue>) -> String {
    let mut buf = Vec::new();
    let put = |bytes: &[u8], buf: &mut Vec<u8>| {
        buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        buf.extend_from_slice(bytes);
    };
    for (name, a) in attributes {
        put(name.as_bytes(), &mut buf);
        put(a.data_type.as_bytes(), &mut buf);
        match (&a.string_value, &a.binary_value) {
            (Some(s), _) => {
                buf.push(1);
                put(s.as_bytes(), &mut buf);
            }
            (None, Some(b)) => {
                buf.push(2);
                put(b, &mut buf);
            }
            (None, None) => {}
        }
    }
    md5_hex(&buf)
}

/// A list of names in `body[field]` (absent: none).
pub(crate) fn names(body: &Value, field: &str) -> Result<Vec<String>, SqsError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| SqsError::new("InvalidParameterValue", format!("{field} must be a list of strings")))
            })
            .collect(),
        Some(_) => Err(SqsError::new("InvalidParameterValue", format!("{field} must be a list of strings"))),
    }
}

fn check_attribute_name(name: &str) -> Result<(), SqsError> {
    let lower = name.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 256
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(SqsError::new("InvalidParameterValue", format!("Message (user) attribute name '{name}' is invalid.")))
    }
}

/// `MessageAttributes` of a SendMessage (or batch entry), checked.
pub(crate) fn parse_attributes(body: &Value) -> Result<BTreeMap<String, AttributeValue>, SqsError> {
    let invalid = |m: String| SqsError::new("InvalidParameterValue", m);
    let map = match body.get("MessageAttributes") {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("MessageAttributes must be a map".into())),
    };
    if map.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_ATTRIBUTES}].",
            map.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (name, v) in map {
        check_attribute_name(name)?;
        let data_type = v.get("DataType").and_then(Value::as_str).unwrap_or_default().to_owned();
        let base = data_type.split('.').next().unwrap_or_default();
        if !["String", "Number", "Binary"].contains(&base) || data_type.len() > 256 {
            return Err(invalid(format!("The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.")));
        }
        let string_value = v.get("StringValue").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let binary_value = match v.get("BinaryValue").and_then(Value::as_str) {
            Some(b) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|_| invalid(format!("The message attribute '{name}' has an invalid binary value.")))?,
            )
            .filter(|b| !b.is_empty()),
            None => None,
        };
        let fits = if base == "Binary" { binary_value.is_some() } else { string_value.is_some() };
        if !fits {
            return Err(invalid(format!("The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{data_type}'.")));
        }
        if base == "Number" && string_value.as_deref().is_some_and(|s| s.parse::<f64>().is_err()) {
            return Err(invalid(format!("Can't cast the value of message (user) attribute '{name}' to a number.")));
        }
        out.insert(name.clone(), AttributeValue { data_type, string_value, binary_value });
    }
    Ok(out)
}

/// The attributes as the JSON protocol writes them.
pub(crate) fn attributes_json(attributes: &BTreeMap<String, AttributeValue>) -> Value {
    Value::Object(attributes.iter().map(|(k, a)| (k.clone(), a.to_json())).collect())
}

/// The attributes as the SQS Lambda event writes them.
pub(crate) fn lambda_attributes(attributes: &BTreeMap<String, AttributeValue>) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    Value::Object(
        attributes
            .iter()
            .map(|(k, a)| {
                let mut v = json!({ "stringListValues": [], "binaryListValues": [], "dataType": a.data_type });
                if let Some(s) = &a.string_value {
                    v["stringValue"] = json!(s);
                }
                if let Some(b) = &a.binary_value {
                    v["binaryValue"] = json!(engine.encode(b));
                }
                (k.clone(), v)
            })
            .collect(),
    )
}

/// Whether `name` is selected by ReceiveMessage's `MessageAttributeNames` (`All`, `.*`,
/// `prefix.*`, or the name).
fn selected(wanted: &[String], name: &str) -> bool {
    wanted.iter().any(|w| {
        w == "All" || w == ".*" || w == name || w.strip_suffix(".*").is_some_and(|p| name.starts_with(&format!("{p}.")))
    })
}

/// A message body and its delay, checked as SendMessage takes them.
pub(crate) fn checked_body(body: &Value, default_delay: u64) -> Result<(String, Duration), SqsError> {
    let text = str_field(body, "MessageBody")?.to_owned();
    if text.is_empty() || text.len() > 262_144 {
        return Err(SqsError::new("InvalidParameterValue", "MessageBody must be 1 to 262144 bytes"));
    }
    let delay = match body.get("DelaySeconds") {
        None | Some(Value::Null) => default_delay as i64,
        Some(v) => v.as_i64().unwrap_or(-1),
    };
    if !(0..=900).contains(&delay) {
        return Err(SqsError::new("InvalidParameterValue", "DelaySeconds must be 0 to 900"));
    }
    Ok((text, Duration::from_secs(delay as u64)))
}

/// The answer of a send: id and digests (of the attributes only when there are some).
pub(crate) fn sent(id: &str, m: &Message) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("MessageId".into(), json!(id));
    out.insert("MD5OfMessageBody".into(), json!(m.md5));
    if !m.attributes.is_empty() {
        out.insert("MD5OfMessageAttributes".into(), json!(md5_of_attributes(&m.attributes)));
    }
    out
}

impl Sqs {
    /// Appends a message to queue `name` (which exists), visible after `delay` (default: the
    /// queue's `DelaySeconds`); returns it.
    pub(crate) fn push(
        &mut self,
        name: &str,
        text: String,
        attributes: BTreeMap<String, AttributeValue>,
        delay: Option<Duration>,
        sender: &str,
        now_ms: i64,
    ) -> Message {
        let q = self.queues.get_mut(name).expect("checked");
        let delay = delay.unwrap_or(Duration::from_secs(q.number("DelaySeconds")));
        let m = Message {
            id: uuid::Uuid::new_v4().to_string(),
            md5: md5_hex(text.as_bytes()),
            body: text,
            attributes,
            sender: sender.to_owned(),
            sent_ms: now_ms,
            first_receive_ms: None,
            visible_at: Instant::now() + delay,
            receipt: None,
            receives: 0,
        };
        q.messages.push(m.clone());
        m
    }

    pub(super) fn send_message(&mut self, body: &Value, now_ms: i64, sender: &str) -> Result<Value, SqsError> {
        let name = self.name_of(body)?;
        let (text, delay) = checked_body(body, self.queues[&name].number("DelaySeconds"))?;
        let attributes = parse_attributes(body)?;
        let m = self.push(&name, text, attributes, Some(delay), sender, now_ms);
        Ok(Value::Object(sent(&m.id.clone(), &m)))
    }

    pub(super) fn receive_message(&mut self, body: &Value, now_ms: i64) -> Result<Value, SqsError> {
        let name = self.name_of(body)?;
        let max = body.get("MaxNumberOfMessages").and_then(Value::as_i64).unwrap_or(1);
        if !(1..=10).contains(&max) {
            return Err(SqsError::new("InvalidParameterValue", "MaxNumberOfMessages must be 1 to 10"));
        }
        let visibility = match body.get("VisibilityTimeout") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(s) if s <= 43_200 => Some(Duration::from_secs(s)),
                _ => return Err(SqsError::new("InvalidParameterValue", "VisibilityTimeout must be 0 to 43200")),
            },
        };
        if body.get("WaitTimeSeconds").and_then(Value::as_i64).is_some_and(|w| !(0..=20).contains(&w)) {
            return Err(SqsError::new("InvalidParameterValue", "WaitTimeSeconds must be 0 to 20"));
        }
        let mut system = names(body, "MessageSystemAttributeNames")?;
        system.extend(names(body, "AttributeNames")?);
        if let Some(bad) = system.iter().find(|n| *n != "All" && !SYSTEM_ATTRIBUTES.contains(&n.as_str())) {
            return Err(SqsError::new("InvalidAttributeName", format!("Unknown Attribute {bad}.")));
        }
        let all_system = system.iter().any(|n| n == "All");
        let wanted = names(body, "MessageAttributeNames")?;
        let msgs: Vec<Value> = self
            .receive(&name, max as usize, visibility, now_ms)
            .into_iter()
            .map(|m| {
                let mut out =
                    json!({ "MessageId": m.id, "ReceiptHandle": m.receipt, "MD5OfBody": m.md5, "Body": m.body });
                let every = [
                    ("SenderId", m.sender.clone()),
                    ("SentTimestamp", m.sent_ms.to_string()),
                    ("ApproximateReceiveCount", m.receives.to_string()),
                    ("ApproximateFirstReceiveTimestamp", m.first_receive_ms.to_string()),
                ];
                let attrs: Map<String, Value> = every
                    .into_iter()
                    .filter(|(k, _)| all_system || system.iter().any(|s| s == k))
                    .map(|(k, v)| (k.to_owned(), json!(v)))
                    .collect();
                if !attrs.is_empty() {
                    out["Attributes"] = Value::Object(attrs);
                }
                let chosen: BTreeMap<String, AttributeValue> =
                    m.attributes.into_iter().filter(|(k, _)| selected(&wanted, k)).collect();
                if !chosen.is_empty() {
                    out["MD5OfMessageAttributes"] = json!(md5_of_attributes(&chosen));
                    out["MessageAttributes"] = attributes_json(&chosen);
                }
                out
            })
            .collect();
        if msgs.is_empty() {
            return Ok(json!({}));
        }
        Ok(json!({ "Messages": msgs }))
    }

    pub(super) fn change_message_visibility(&mut self, body: &Value) -> Result<Value, SqsError> {
        let name = self.name_of(body)?;
        let receipt = str_field(body, "ReceiptHandle")?;
        let timeout = body.get("VisibilityTimeout").and_then(Value::as_u64);
        let timeout = timeout.filter(|t| *t <= 43_200).ok_or_else(|| {
            SqsError::new("InvalidParameterValue", "VisibilityTimeout must be an integer from 0 to 43200")
        })?;
        self.change_visibility(&name, receipt, Duration::from_secs(timeout))?;
        Ok(json!({}))
    }

    /// Hides an in-flight message for `timeout` from now (0: visible again now).
    pub(crate) fn change_visibility(&mut self, name: &str, receipt: &str, timeout: Duration) -> Result<(), SqsError> {
        let q = self.queues.get_mut(name).expect("checked");
        let m = q.messages.iter_mut().find(|m| m.receipt.as_deref() == Some(receipt)).ok_or_else(|| {
            SqsError::new(
                "ReceiptHandleIsInvalid",
                format!("The input receipt handle \"{receipt}\" is not a valid receipt handle."),
            )
        })?;
        let now = Instant::now();
        if m.visible_at <= now {
            return Err(SqsError::new("MessageNotInflight", "The message referred to isn't in flight."));
        }
        m.visible_at = now + timeout;
        Ok(())
    }

    /// Receives up to `max` visible messages, hiding them for the visibility timeout (the
    /// queue's unless given).
    pub fn receive(&mut self, name: &str, max: usize, visibility: Option<Duration>, now_ms: i64) -> Vec<Received> {
        let Some(q) = self.queues.get_mut(name) else { return Vec::new() };
        let now = Instant::now();
        let hide = visibility.unwrap_or(Duration::from_secs(q.number("VisibilityTimeout")));
        let mut out = Vec::new();
        for m in q.messages.iter_mut().filter(|m| m.visible_at <= now).take(max) {
            let receipt = uuid::Uuid::new_v4().to_string();
            m.receipt = Some(receipt.clone());
            m.visible_at = now + hide;
            m.receives += 1;
            let first = *m.first_receive_ms.get_or_insert(now_ms);
            out.push(Received {
                id: m.id.clone(),
                receipt,
                body: m.body.clone(),
                md5: m.md5.clone(),
                sender: m.sender.clone(),
                sent_ms: m.sent_ms,
                first_receive_ms: first,
                receives: m.receives,
                attributes: m.attributes.clone(),
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

    /// Makes a received message visible again soon (a failed delivery).
    pub fn release(&mut self, name: &str, receipt: &str) {
        if let Some(m) = self
            .queues
            .get_mut(name)
            .and_then(|q| q.messages.iter_mut().find(|m| m.receipt.as_deref() == Some(receipt)))
        {
            m.visible_at = Instant::now() + Duration::from_secs(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sqs_with;
    use super::*;

    fn string(v: &str, t: &str) -> AttributeValue {
        AttributeValue { data_type: t.into(), string_value: Some(v.into()), binary_value: None }
    }

    #[test]
    fn md5_of_attributes_follows_the_documented_encoding() {
        // Vectors of aws-md5-of-message-attributes (npm), the same algorithm in JavaScript.
        let one = BTreeMap::from([("attribName1".to_owned(), string("attribValue 1", "String"))]);
        assert_eq!(md5_of_attributes(&one), "19e27d4e946b072f3f58da80d94fd778");
        let number = BTreeMap::from([(
            "customNumberTypeAttrib".to_owned(),
            string("4563442423554324324264524243.32543234", "Number.float"),
        )]);
        assert_eq!(md5_of_attributes(&number), "9fe1b90bbd9965bdf77bac517c7d2495");
        let binary = BTreeMap::from([(
            "binaryAttribute".to_owned(),
            AttributeValue {
                data_type: "Binary".into(),
                string_value: None,
                binary_value: Some(b"Hello binary world!".to_vec()),
            },
        )]);
        assert_eq!(md5_of_attributes(&binary), "31a92b15d92f8db860eda32aceb656c3");
        let mut all = one.clone();
        all.extend(number);
        all.extend(binary);
        assert_eq!(md5_of_attributes(&all), "c932db14a896c663f83c260297d594ff");
    }

    #[test]
    fn send_receive_with_attributes_only_when_asked() {
        let (mut sqs, url) = sqs_with("q");
        let send = json!({ "QueueUrl": url, "MessageBody": "hello",
                           "MessageAttributes": { "attribName1": { "DataType": "String", "StringValue": "attribValue 1" },
                                                  "trace.id": { "DataType": "Number", "StringValue": "7" } } });
        let r = sqs.handle("SendMessage", &send, 1_000, "AIDAME").unwrap();
        assert_eq!(r["MD5OfMessageBody"], "5d41402abc4b2a76b9719d911017c592");
        assert!(r["MD5OfMessageAttributes"].is_string());
        let plain =
            sqs.handle("ReceiveMessage", &json!({ "QueueUrl": url, "VisibilityTimeout": 0 }), 2_000, "x").unwrap();
        let m = &plain["Messages"][0];
        assert!(m.get("Attributes").is_none() && m.get("MessageAttributes").is_none(), "nothing asked: {m}");
        let asked = json!({ "QueueUrl": url, "MessageSystemAttributeNames": ["SentTimestamp", "ApproximateReceiveCount"],
                            "MessageAttributeNames": ["attribName1"] });
        let m = sqs.handle("ReceiveMessage", &asked, 3_000, "x").unwrap()["Messages"][0].clone();
        assert_eq!(m["Attributes"], json!({ "SentTimestamp": "1000", "ApproximateReceiveCount": "2" }));
        assert_eq!(
            m["MessageAttributes"],
            json!({ "attribName1": { "DataType": "String", "StringValue": "attribValue 1" } })
        );
        assert_eq!(m["MD5OfMessageAttributes"], "19e27d4e946b072f3f58da80d94fd778", "the digest of what is returned");
        let receipt = m["ReceiptHandle"].as_str().unwrap();
        let change = json!({ "QueueUrl": url, "ReceiptHandle": receipt, "VisibilityTimeout": 0 });
        sqs.handle("ChangeMessageVisibility", &change, 0, "x").unwrap();
        let all = json!({ "QueueUrl": url, "AttributeNames": ["All"], "MessageAttributeNames": ["trace.*"] });
        let m = sqs.handle("ReceiveMessage", &all, 4_000, "x").unwrap()["Messages"][0].clone();
        assert_eq!(m["Attributes"]["ApproximateFirstReceiveTimestamp"], "2000");
        assert_eq!(m["Attributes"]["SenderId"], "AIDAME");
        assert_eq!(m["MessageAttributes"].as_object().unwrap().keys().collect::<Vec<_>>(), ["trace.id"]);
        let e = sqs.handle(
            "ChangeMessageVisibility",
            &json!({ "QueueUrl": url, "ReceiptHandle": "nope", "VisibilityTimeout": 0 }),
            0,
            "x",
        );
        assert_eq!(e.unwrap_err().code, "ReceiptHandleIsInvalid");
    }

    #[test]
    fn attributes_are_checked() {
        let (mut sqs, url) = sqs_with("q");
        let send = |attrs: Value| json!({ "QueueUrl": url, "MessageBody": "x", "MessageAttributes": attrs });
        let too_many: Map<String, Value> =
            (0..11).map(|i| (format!("a{i}"), json!({ "DataType": "String", "StringValue": "v" }))).collect();
        for bad in [
            Value::Object(too_many),
            json!({ "AWS.x": { "DataType": "String", "StringValue": "v" } }),
            json!({ "a": { "DataType": "Text", "StringValue": "v" } }),
            json!({ "a": { "DataType": "String" } }),
            json!({ "a": { "DataType": "Number", "StringValue": "seven" } }),
        ] {
            let e = sqs.handle("SendMessage", &send(bad.clone()), 0, "x").unwrap_err();
            assert_eq!(e.code, "InvalidParameterValue", "{bad}");
        }
    }
}
