//! Publish: a message into the outbox and to every confirmed subscription — `lambda` ones as
//! the SNS event (by [`crate::delivery`]), `sqs` ones as SNS's JSON envelope or, with
//! `RawMessageDelivery`, as the message itself with its attributes.

use super::{param, required, response, timestamp, ActionResult, Delivery, MessageAttribute, OutboxMessage};
use super::{Published, Sns, SnsError, Subscription, ToQueue};
use std::collections::BTreeMap;

/// SNS's JSON envelope of a message to an `sqs` subscription without raw delivery.
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

impl Sns {
    pub(super) fn publish_action(
        &mut self,
        params: &[(String, String)],
        now_ms: i64,
        request_id: &str,
    ) -> Result<ActionResult, SnsError> {
        let topic_arn = param(params, "TopicArn").or_else(|| param(params, "TargetArn"));
        let topic_arn =
            topic_arn.ok_or_else(|| SnsError::invalid("Invalid parameter: TopicArn or TargetArn is required"))?;
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
            if !["String", "Number", "String.Array", "Binary"]
                .iter()
                .any(|t| data_type == *t || data_type.starts_with(&format!("{t}.")))
            {
                return Err(SnsError::invalid(format!(
                    "Invalid parameter: MessageAttributes '{name}' has invalid DataType '{data_type}'"
                )));
            }
            let value = param(params, &format!("{prefix}.Value.StringValue"))
                .or_else(|| param(params, &format!("{prefix}.Value.BinaryValue")))
                .unwrap_or_default()
                .to_owned();
            attributes.insert(name.to_owned(), MessageAttribute { data_type, string_value: value });
        }
        let published =
            self.publish(topic_arn, subject.map(str::to_owned), message.to_owned(), attributes, now_ms, "client")?;
        let xml = response("Publish", &format!("<MessageId>{}</MessageId>", published.message.message_id), request_id);
        Ok(ActionResult { xml, published: Some(published), to_queues: Vec::new() })
    }

    /// Puts a message into the outbox and names the deliveries it needs (confirmed
    /// subscriptions only). Audit notifications to a topic the emulator does not know are
    /// still kept in the outbox.
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
            Some(t) => t.subscriptions.iter().filter(|s| !s.is_pending()).cloned().collect(),
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
                raw: s.raw_delivery(),
                attempts: 0,
                last_error: None,
            })
            .collect();
        let message = OutboxMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            topic_arn: topic_arn.to_owned(),
            subject,
            message,
            message_attributes,
            timestamp: timestamp(now_ms),
            source: source.to_owned(),
            deliveries,
        };
        self.outbox.push(message.clone());
        let to_queues = subs
            .iter()
            .filter(|s| s.protocol == "sqs")
            .map(|s| {
                if s.raw_delivery() {
                    // Raw delivery: the message as published, its attributes as SQS ones.
                    ToQueue {
                        queue_arn: s.endpoint.clone(),
                        body: message.message.clone(),
                        attributes: message.message_attributes.clone(),
                    }
                } else {
                    ToQueue { queue_arn: s.endpoint.clone(), body: envelope(&message), attributes: BTreeMap::new() }
                }
            })
            .collect();
        Ok(Published {
            outbox_index: self.outbox.len() - 1,
            message,
            lambda_subscriptions: subs.into_iter().filter(|s| s.protocol == "lambda").collect(),
            to_queues,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{home, p};
    use super::*;

    #[test]
    fn raw_delivery_sends_the_message_and_its_attributes_to_the_queue() {
        let mut sns = Sns::new();
        let arn = "arn:aws:sns:us-east-1:123456789012:audit";
        sns.handle(&p(&[("Action", "CreateTopic"), ("Name", "audit")]), 0, "r", &home()).unwrap();
        for (queue, raw) in [("raw", "true"), ("wrapped", "false")] {
            let endpoint = format!("arn:aws:sqs:us-east-1:123456789012:{queue}");
            sns.handle(
                &p(&[
                    ("Action", "Subscribe"),
                    ("TopicArn", arn),
                    ("Protocol", "sqs"),
                    ("Endpoint", &endpoint),
                    ("Attributes.entry.1.key", "RawMessageDelivery"),
                    ("Attributes.entry.1.value", raw),
                ]),
                0,
                "r",
                &home(),
            )
            .unwrap();
        }
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "severity".to_owned(),
            MessageAttribute { data_type: "String".into(), string_value: "HIGH".into() },
        );
        let published = sns.publish(arn, None, "hello".into(), attrs, 0, "client").unwrap();
        let raw = published.to_queues.iter().find(|q| q.queue_arn.ends_with(":raw")).unwrap();
        assert_eq!(raw.body, "hello");
        assert_eq!(raw.attributes["severity"].string_value, "HIGH");
        let wrapped = published.to_queues.iter().find(|q| q.queue_arn.ends_with(":wrapped")).unwrap();
        let envelope: serde_json::Value = serde_json::from_str(&wrapped.body).unwrap();
        assert_eq!((envelope["Type"].as_str(), envelope["Message"].as_str()), (Some("Notification"), Some("hello")));
        assert!(wrapped.attributes.is_empty());
        assert!(sns.outbox[0].deliveries.iter().any(|d| d.raw) && sns.outbox[0].deliveries.iter().any(|d| !d.raw));
    }
}
