//! Topics: CreateTopic (the same name again is the same topic when its attributes agree),
//! DeleteTopic, ListTopics, GetTopicAttributes (what was set, plus what AWS always answers:
//! the default access policy, the effective delivery policy, the subscription counts) and
//! SetTopicAttributes. Sources: `docs/reference/emulator-services.md`.

use super::{escape, map_entries, param, required, Sns, SnsError, Topic};
use crate::scope::Scope;
use std::collections::BTreeMap;

/// Attributes a topic takes (CreateTopic `Attributes`, SetTopicAttributes `AttributeName`);
/// the delivery status ones (`<Protocol>SuccessFeedbackRoleArn`, …) are [`is_delivery_status`].
const TOPIC_ATTRIBUTES: [&str; 10] = [
    "DeliveryPolicy",
    "DisplayName",
    "Policy",
    "TracingConfig",
    "KmsMasterKeyId",
    "SignatureVersion",
    "ContentBasedDeduplication",
    "ArchivePolicy",
    "FifoThroughputScope",
    "FifoTopic",
];

/// `<Protocol>SuccessFeedbackRoleArn`, `<Protocol>SuccessFeedbackSampleRate`,
/// `<Protocol>FailureFeedbackRoleArn` for the protocols SNS logs delivery status of.
fn is_delivery_status(name: &str) -> bool {
    ["Application", "Firehose", "HTTP", "Lambda", "SQS"].iter().any(|p| {
        name.strip_prefix(p).is_some_and(|rest| {
            ["SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn"].contains(&rest)
        })
    })
}

/// Checks one topic attribute; `creating` allows `FifoTopic` (it cannot change later).
fn check_attribute(name: &str, value: &str, creating: bool) -> Result<(), SnsError> {
    if !TOPIC_ATTRIBUTES.contains(&name) && !is_delivery_status(name) {
        return Err(SnsError::invalid(format!("Invalid parameter: AttributeName {name}")));
    }
    if name == "FifoTopic" && !creating {
        return Err(SnsError::invalid("Invalid parameter: AttributeName FifoTopic cannot be changed"));
    }
    let bool_valued = ["FifoTopic", "ContentBasedDeduplication"].contains(&name);
    if bool_valued && !["true", "false"].contains(&value) {
        return Err(SnsError::invalid(format!("Invalid parameter: Attributes Reason: {name} must be true or false")));
    }
    let json_valued = ["Policy", "DeliveryPolicy", "ArchivePolicy"].contains(&name);
    if json_valued
        && !value.is_empty()
        && !serde_json::from_str::<serde_json::Value>(value).is_ok_and(|v| v.is_object())
    {
        return Err(SnsError::invalid(format!("Invalid parameter: {name} Error: the value is not a JSON object")));
    }
    Ok(())
}

/// The access policy AWS gives a topic that has none: its owner's account may act on it.
pub fn default_policy(topic_arn: &str, owner: &str) -> String {
    serde_json::json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": { "AWS": "*" },
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                       "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                       "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
            "Resource": topic_arn,
            "Condition": { "StringEquals": { "AWS:SourceOwner": owner } }
        }]
    })
    .to_string()
}

/// The effective delivery policy: the topic's `DeliveryPolicy` over SNS's defaults for
/// HTTP/S (three retries 20 s apart, linear backoff).
fn effective_delivery_policy(set: Option<&str>) -> String {
    let mut policy = serde_json::json!({ "http": {
        "defaultHealthyRetryPolicy": { "minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3,
            "numMaxDelayRetries": 0, "numNoDelayRetries": 0, "numMinDelayRetries": 0, "backoffFunction": "linear" },
        "disableSubscriptionOverrides": false,
        "defaultRequestPolicy": { "headerContentType": "text/plain; charset=UTF-8" }
    }});
    if let Some(serde_json::Value::Object(given)) = set.and_then(|s| serde_json::from_str(s).ok()) {
        for (protocol, settings) in given {
            match (policy.get_mut(&protocol), settings) {
                (Some(serde_json::Value::Object(have)), serde_json::Value::Object(s)) => have.extend(s),
                (_, s) => {
                    policy[protocol] = s;
                }
            }
        }
    }
    policy.to_string()
}

impl Sns {
    pub(super) fn create_topic(&mut self, params: &[(String, String)], caller: &Scope) -> Result<String, SnsError> {
        let name = required(params, "Name")?;
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        if base.is_empty()
            || name.len() > 256
            || !base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(SnsError::invalid(
                "Invalid parameter: Topic Name must be 1-256 ASCII letters, digits, hyphens or underscores (.fifo allowed at the end)",
            ));
        }
        let attrs = map_entries(params, "Attributes.entry", "key", "value");
        for (k, v) in &attrs {
            check_attribute(k, v, true)?;
        }
        let fifo = attrs.get("FifoTopic").is_some_and(|v| v == "true");
        if fifo != name.ends_with(".fifo") {
            return Err(SnsError::invalid(
                "Invalid parameter: Fifo Topic names must end with .fifo and FifoTopic must be true for them",
            ));
        }
        let arn = format!("arn:aws:sns:{}:{}:{name}", caller.region, caller.account);
        match self.topics.get(&arn) {
            // The same name again: the same topic, unless an attribute given differs.
            Some(t) if attrs.iter().any(|(k, v)| t.attributes.get(k).map_or(!v.is_empty(), |have| have != v)) => {
                return Err(SnsError::invalid(
                    "Invalid parameter: Attributes Reason: Topic already exists with different attributes",
                ))
            }
            Some(_) => {}
            None => {
                let topic = Topic { arn: arn.clone(), attributes: attrs, subscriptions: Vec::new(), deleted: 0 };
                self.topics.insert(arn.clone(), topic);
            }
        }
        Ok(format!("<TopicArn>{}</TopicArn>", escape(&arn)))
    }

    pub(super) fn delete_topic(&mut self, params: &[(String, String)]) -> Result<String, SnsError> {
        self.topics.remove(required(params, "TopicArn")?);
        Ok(String::new())
    }

    pub(super) fn list_topics(&self, params: &[(String, String)], caller: &Scope) -> Result<String, SnsError> {
        // The caller's account-region's topics, as AWS lists them.
        let prefix = format!("arn:aws:sns:{}:{}:", caller.region, caller.account);
        let own: Vec<String> = self.topics.keys().filter(|a| a.starts_with(&prefix)).cloned().collect();
        let (page, next) = self.page(own, param(params, "NextToken"))?;
        let members: String =
            page.iter().map(|a| format!("<member><TopicArn>{}</TopicArn></member>", escape(a))).collect();
        let next = next.map(|n| format!("<NextToken>{n}</NextToken>")).unwrap_or_default();
        Ok(format!("<Topics>{members}</Topics>{next}"))
    }

    /// What GetTopicAttributes answers for a topic.
    pub fn topic_attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, SnsError> {
        let topic = self.topic(arn)?;
        let mut attrs = topic.attributes.clone();
        let owner = topic.owner().to_owned();
        attrs.entry("Policy".into()).or_insert_with(|| default_policy(&topic.arn, &owner));
        attrs.entry("DisplayName".into()).or_default();
        let effective = effective_delivery_policy(attrs.get("DeliveryPolicy").map(String::as_str));
        attrs.insert("EffectiveDeliveryPolicy".into(), effective);
        attrs.insert("TopicArn".into(), topic.arn.clone());
        attrs.insert("Owner".into(), owner);
        let pending = topic.subscriptions.iter().filter(|s| s.is_pending()).count();
        attrs.insert("SubscriptionsConfirmed".into(), (topic.subscriptions.len() - pending).to_string());
        attrs.insert("SubscriptionsPending".into(), pending.to_string());
        attrs.insert("SubscriptionsDeleted".into(), topic.deleted.to_string());
        Ok(attrs)
    }

    pub(super) fn get_topic_attributes(&self, params: &[(String, String)]) -> Result<String, SnsError> {
        let attrs = self.topic_attributes(required(params, "TopicArn")?)?;
        Ok(format!("<Attributes>{}</Attributes>", super::entries_xml(&attrs)))
    }

    pub(super) fn set_topic_attributes(&mut self, params: &[(String, String)]) -> Result<String, SnsError> {
        let arn = required(params, "TopicArn")?;
        let name = required(params, "AttributeName")?;
        let value = param(params, "AttributeValue").unwrap_or_default();
        check_attribute(name, value, false)?;
        let topic = self.topic_mut(arn)?;
        if value.is_empty() && name != "DisplayName" {
            // An empty value removes a policy (back to the default) or a setting.
            topic.attributes.remove(name);
        } else {
            topic.attributes.insert(name.to_owned(), value.to_owned());
        }
        Ok(String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{home, p};
    use super::*;

    const ARN: &str = "arn:aws:sns:us-east-1:123456789012:audit";

    #[test]
    fn create_topic_is_idempotent_only_for_the_same_attributes() {
        let mut sns = Sns::new();
        let create = |sns: &mut Sns, display: &str| {
            sns.handle(
                &p(&[
                    ("Action", "CreateTopic"),
                    ("Name", "audit"),
                    ("Attributes.entry.1.key", "DisplayName"),
                    ("Attributes.entry.1.value", display),
                ]),
                0,
                "r",
                &home(),
            )
        };
        assert!(create(&mut sns, "Audits").unwrap().xml.contains(ARN));
        assert!(create(&mut sns, "Audits").unwrap().xml.contains(ARN), "same attributes: the same topic");
        let plain = sns.handle(&p(&[("Action", "CreateTopic"), ("Name", "audit")]), 0, "r", &home());
        assert!(plain.is_ok(), "no attributes given: nothing differs");
        let e = create(&mut sns, "Other").err().unwrap();
        assert_eq!(e.code, "InvalidParameter");
        assert_eq!(e.message, "Invalid parameter: Attributes Reason: Topic already exists with different attributes");
    }

    #[test]
    fn topic_attributes_have_aws_defaults_and_what_was_set() {
        let mut sns = Sns::new();
        sns.handle(&p(&[("Action", "CreateTopic"), ("Name", "audit")]), 0, "r", &home()).unwrap();
        let attrs = sns.topic_attributes(ARN).unwrap();
        let policy: serde_json::Value = serde_json::from_str(&attrs["Policy"]).unwrap();
        assert_eq!(policy["Statement"][0]["Resource"], ARN);
        assert_eq!(policy["Statement"][0]["Condition"]["StringEquals"]["AWS:SourceOwner"], "123456789012");
        assert_eq!(attrs["DisplayName"], "");
        assert!(attrs["EffectiveDeliveryPolicy"].contains("\"numRetries\":3"));
        let set = |name: &str, value: &str| {
            p(&[
                ("Action", "SetTopicAttributes"),
                ("TopicArn", ARN),
                ("AttributeName", name),
                ("AttributeValue", value),
            ])
        };
        sns.handle(&set("DisplayName", "Device Defender"), 0, "r", &home()).unwrap();
        assert_eq!(sns.topic_attributes(ARN).unwrap()["DisplayName"], "Device Defender");
        let e = sns.handle(&set("Colour", "blue"), 0, "r", &home()).err().unwrap();
        assert_eq!(e.code, "InvalidParameter");
        assert_eq!(sns.handle(&set("FifoTopic", "true"), 0, "r", &home()).err().unwrap().code, "InvalidParameter");
        assert_eq!(sns.handle(&set("Policy", "not json"), 0, "r", &home()).err().unwrap().code, "InvalidParameter");
    }
}
