//! Subscriptions: Subscribe (with `Attributes`), ConfirmSubscription, Unsubscribe,
//! ListSubscriptions(ByTopic), GetSubscriptionAttributes and SetSubscriptionAttributes, and
//! the confirmation AWS asks for before delivering: to `email`, `email-json`, `http` and
//! `https` endpoints always, to an `sqs` queue of another account than the subscriber's
//! ("confirmation is automatic when the queue owner creates the subscription"). Until
//! confirmed, Subscribe answers "pending confirmation" (unless `ReturnSubscriptionArn`) and
//! the listings show `PendingConfirmation`. Sources: `docs/reference/emulator-services.md`.

use super::{entries_xml, escape, map_entries, param, required, timestamp, Sns, SnsError, ToQueue};
use crate::scope::Scope;
use serde::Serialize;
use std::collections::BTreeMap;

/// Protocols Subscribe accepts.
const PROTOCOLS: [&str; 9] =
    ["http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose"];

/// Protocols whose endpoint must confirm a subscription before it gets messages.
const CONFIRMED_BY_ENDPOINT: [&str; 4] = ["email", "email-json", "http", "https"];

/// Protocols raw message delivery applies to.
const RAW_PROTOCOLS: [&str; 4] = ["sqs", "http", "https", "firehose"];

/// Attributes a subscription takes (Subscribe `Attributes`, SetSubscriptionAttributes).
const SUBSCRIPTION_ATTRIBUTES: [&str; 7] = [
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
];

/// A subscription.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub subscription_arn: String,
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: String,
    /// The subscriber's account.
    pub owner: String,
    /// The confirmation token, while the subscription waits for confirmation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_token: Option<String>,
    /// Whether the confirmation was an authenticated (signed) ConfirmSubscription call.
    pub confirmation_was_authenticated: bool,
    /// The attributes set at Subscribe or with SetSubscriptionAttributes.
    pub attributes: BTreeMap<String, String>,
}

impl Subscription {
    /// Whether the subscription still waits for confirmation.
    pub fn is_pending(&self) -> bool {
        self.pending_token.is_some()
    }

    /// Whether deliveries carry the message itself rather than SNS's JSON envelope.
    pub fn raw_delivery(&self) -> bool {
        RAW_PROTOCOLS.contains(&self.protocol.as_str())
            && self.attributes.get("RawMessageDelivery").is_some_and(|v| v == "true")
    }

    /// The `SubscriptionConfirmation` message SNS sends the endpoint, with its token.
    pub fn confirmation_message(&self, now_ms: i64) -> Option<String> {
        let token = self.pending_token.as_deref()?;
        let topic_arn = &self.topic_arn;
        let region = topic_arn.split(':').nth(3).unwrap_or_default();
        Some(
            serde_json::json!({
                "Type": "SubscriptionConfirmation",
                "MessageId": uuid::Uuid::new_v4().to_string(),
                "Token": token,
                "TopicArn": topic_arn,
                "Message": format!("You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."),
                "SubscribeURL": format!("https://sns.{region}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}"),
                "Timestamp": timestamp(now_ms),
                "SignatureVersion": "1",
                "Signature": "EMULATOR",
                "SigningCertURL": "https://sns.amazonaws.com/emulator.pem",
            })
            .to_string(),
        )
    }

    fn listed_xml(&self) -> String {
        // As AWS lists them: a pending subscription has no ARN yet.
        let arn = if self.is_pending() { "PendingConfirmation" } else { &self.subscription_arn };
        format!(
            "<member><SubscriptionArn>{}</SubscriptionArn><Owner>{}</Owner><Protocol>{}</Protocol><Endpoint>{}</Endpoint><TopicArn>{}</TopicArn></member>",
            escape(arn),
            escape(&self.owner),
            escape(&self.protocol),
            escape(&self.endpoint),
            escape(&self.topic_arn)
        )
    }
}

/// Checks one subscription attribute for a subscription of `protocol`.
fn check_attribute(protocol: &str, name: &str, value: &str) -> Result<(), SnsError> {
    if !SUBSCRIPTION_ATTRIBUTES.contains(&name) {
        return Err(SnsError::invalid(format!("Invalid parameter: AttributeName {name}")));
    }
    if name == "RawMessageDelivery" {
        if !RAW_PROTOCOLS.contains(&protocol) {
            return Err(SnsError::invalid(format!(
                "Invalid parameter: Delivery protocol [{protocol}] does not support raw message delivery."
            )));
        }
        if !["true", "false"].contains(&value) {
            return Err(SnsError::invalid(format!(
                "Invalid parameter: Attributes Reason: RawMessageDelivery: Invalid value [{value}]. Must be true or false."
            )));
        }
    }
    if ["FilterPolicy", "DeliveryPolicy", "RedrivePolicy"].contains(&name)
        && !value.is_empty()
        && !serde_json::from_str::<serde_json::Value>(value).is_ok_and(|v| v.is_object())
    {
        return Err(SnsError::invalid(format!("Invalid parameter: {name}: the value is not a JSON object")));
    }
    Ok(())
}

fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string()
}

impl Sns {
    pub(super) fn subscribe(
        &mut self,
        params: &[(String, String)],
        now_ms: i64,
        request_id: &str,
        caller: &Scope,
    ) -> Result<super::ActionResult, SnsError> {
        let topic_arn = required(params, "TopicArn")?.to_owned();
        let protocol = required(params, "Protocol")?.to_owned();
        let endpoint = param(params, "Endpoint").unwrap_or_default().to_owned();
        if !PROTOCOLS.contains(&protocol.as_str()) {
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
        let attributes = map_entries(params, "Attributes.entry", "key", "value");
        for (k, v) in &attributes {
            check_attribute(&protocol, k, v)?;
        }
        let topic = self.topic_mut(&topic_arn)?;
        let existing = topic.subscriptions.iter().find(|s| s.protocol == protocol && s.endpoint == endpoint);
        let mut to_queues = Vec::new();
        let sub = match existing {
            Some(s) if attributes.iter().any(|(k, v)| s.attributes.get(k) != Some(v)) => {
                return Err(SnsError::invalid(
                    "Invalid parameter: Attributes Reason: Subscription already exists with different attributes",
                ))
            }
            Some(s) => s.clone(),
            None => {
                // The endpoint confirms: an e-mail address or URL always, another account's queue
                // (the token goes to the queue).
                let needs_confirmation = CONFIRMED_BY_ENDPOINT.contains(&protocol.as_str())
                    || queue_account.as_ref().is_some_and(|a| *a != caller.account);
                let sub = Subscription {
                    subscription_arn: format!("{topic_arn}:{}", uuid::Uuid::new_v4()),
                    topic_arn,
                    protocol,
                    endpoint,
                    owner: caller.account.clone(),
                    pending_token: needs_confirmation.then(new_token),
                    confirmation_was_authenticated: !needs_confirmation,
                    attributes,
                };
                if sub.protocol == "sqs" {
                    if let Some(m) = sub.confirmation_message(now_ms) {
                        to_queues.push(ToQueue {
                            queue_arn: sub.endpoint.clone(),
                            body: m,
                            attributes: BTreeMap::new(),
                        });
                    }
                }
                topic.subscriptions.push(sub.clone());
                sub
            }
        };
        // As AWS: a pending subscription's ARN is given only when asked for.
        let shown = if sub.is_pending() && param(params, "ReturnSubscriptionArn") != Some("true") {
            "pending confirmation".to_owned()
        } else {
            sub.subscription_arn
        };
        let xml =
            super::response("Subscribe", &format!("<SubscriptionArn>{}</SubscriptionArn>", escape(&shown)), request_id);
        Ok(super::ActionResult { xml, published: None, to_queues })
    }

    pub(super) fn confirm_subscription(&mut self, params: &[(String, String)]) -> Result<String, SnsError> {
        let topic_arn = required(params, "TopicArn")?;
        let token = required(params, "Token")?;
        let topic = self.topic_mut(topic_arn)?;
        let sub = topic.subscriptions.iter_mut().find(|s| s.pending_token.as_deref() == Some(token));
        let sub = sub.ok_or_else(|| SnsError::invalid("Invalid token"))?;
        sub.pending_token = None;
        sub.confirmation_was_authenticated = true;
        Ok(format!("<SubscriptionArn>{}</SubscriptionArn>", escape(&sub.subscription_arn)))
    }

    pub(super) fn unsubscribe(&mut self, params: &[(String, String)]) -> Result<String, SnsError> {
        let arn = required(params, "SubscriptionArn")?;
        let topic = self.topics.values_mut().find(|t| t.subscriptions.iter().any(|s| s.subscription_arn == arn));
        let topic = topic.ok_or_else(|| SnsError::not_found("Subscription does not exist"))?;
        topic.subscriptions.retain(|s| s.subscription_arn != arn);
        topic.deleted += 1;
        Ok(String::new())
    }

    pub(super) fn list_subscriptions(&self, action: &str, params: &[(String, String)]) -> Result<String, SnsError> {
        let subs: Vec<&Subscription> = if action == "ListSubscriptions" {
            self.topics.values().flat_map(|t| t.subscriptions.iter()).collect()
        } else {
            self.topic(required(params, "TopicArn")?)?.subscriptions.iter().collect()
        };
        let keys: Vec<String> = subs.iter().map(|s| s.subscription_arn.clone()).collect();
        let (page, next) = self.page(keys, param(params, "NextToken"))?;
        let members: String =
            subs.iter().filter(|s| page.contains(&s.subscription_arn)).map(|s| s.listed_xml()).collect();
        let next = next.map(|n| format!("<NextToken>{n}</NextToken>")).unwrap_or_default();
        Ok(format!("<Subscriptions>{members}</Subscriptions>{next}"))
    }

    fn subscription_mut(&mut self, arn: &str) -> Result<&mut Subscription, SnsError> {
        self.topics
            .values_mut()
            .flat_map(|t| t.subscriptions.iter_mut())
            .find(|s| s.subscription_arn == arn)
            .ok_or_else(|| SnsError::not_found("Subscription does not exist"))
    }

    /// What GetSubscriptionAttributes answers for a subscription.
    pub fn subscription_attributes(&mut self, arn: &str) -> Result<BTreeMap<String, String>, SnsError> {
        let s = self.subscription_mut(arn)?;
        let mut attrs = s.attributes.clone();
        attrs.insert("SubscriptionArn".into(), s.subscription_arn.clone());
        attrs.insert("TopicArn".into(), s.topic_arn.clone());
        attrs.insert("Owner".into(), s.owner.clone());
        attrs.insert("Protocol".into(), s.protocol.clone());
        attrs.insert("Endpoint".into(), s.endpoint.clone());
        attrs.insert("PendingConfirmation".into(), s.is_pending().to_string());
        attrs.insert("ConfirmationWasAuthenticated".into(), s.confirmation_was_authenticated.to_string());
        attrs.insert("RawMessageDelivery".into(), s.raw_delivery().to_string());
        Ok(attrs)
    }

    pub(super) fn get_subscription_attributes(&mut self, params: &[(String, String)]) -> Result<String, SnsError> {
        let attrs = self.subscription_attributes(required(params, "SubscriptionArn")?)?;
        Ok(format!("<Attributes>{}</Attributes>", entries_xml(&attrs)))
    }

    pub(super) fn set_subscription_attributes(&mut self, params: &[(String, String)]) -> Result<String, SnsError> {
        let arn = required(params, "SubscriptionArn")?;
        let name = required(params, "AttributeName")?;
        let value = param(params, "AttributeValue").unwrap_or_default();
        let sub = self.subscription_mut(arn)?;
        check_attribute(&sub.protocol, name, value)?;
        if value.is_empty() {
            sub.attributes.remove(name);
        } else {
            sub.attributes.insert(name.to_owned(), value.to_owned());
        }
        Ok(String::new())
    }

    /// Every subscription, pending ones with their token and confirmation message: what the
    /// endpoint would receive (`GET /_emulator/subscriptions`).
    pub fn subscriptions_view(&self, now_ms: i64) -> serde_json::Value {
        let subs: Vec<serde_json::Value> = self
            .topics
            .values()
            .flat_map(|t| t.subscriptions.iter())
            .map(|s| {
                let mut v = serde_json::json!(s);
                if let Some(m) = s.confirmation_message(now_ms) {
                    v["confirmationMessage"] = serde_json::Value::String(m);
                }
                v
            })
            .collect();
        serde_json::json!({ "subscriptions": subs })
    }

    /// Confirms a pending subscription as its endpoint would by following the confirmation
    /// link (an unauthenticated confirmation): by subscription ARN, or by topic and endpoint.
    pub fn confirm_by_endpoint(
        &mut self,
        subscription_arn: Option<&str>,
        topic_and_endpoint: Option<(&str, &str)>,
    ) -> Result<Subscription, SnsError> {
        let sub = self.topics.values_mut().flat_map(|t| t.subscriptions.iter_mut()).find(|s| {
            subscription_arn.is_some_and(|a| a == s.subscription_arn)
                || topic_and_endpoint.is_some_and(|(t, e)| t == s.topic_arn && e == s.endpoint)
        });
        let sub = sub.ok_or_else(|| SnsError::not_found("Subscription does not exist"))?;
        if sub.pending_token.take().is_none() {
            return Err(SnsError::invalid("Invalid parameter: the subscription is already confirmed"));
        }
        sub.confirmation_was_authenticated = false;
        Ok(sub.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{home, p};
    use super::*;

    const ARN: &str = "arn:aws:sns:us-east-1:123456789012:audit";

    fn with_topic() -> Sns {
        let mut sns = Sns::new();
        sns.handle(&p(&[("Action", "CreateTopic"), ("Name", "audit")]), 0, "r", &home()).unwrap();
        sns
    }

    fn subscribe(sns: &mut Sns, protocol: &str, endpoint: &str, extra: &[(&str, &str)]) -> Result<String, SnsError> {
        let mut params =
            p(&[("Action", "Subscribe"), ("TopicArn", ARN), ("Protocol", protocol), ("Endpoint", endpoint)]);
        params.extend(p(extra));
        sns.handle(&params, 0, "r", &home()).map(|r| r.xml)
    }

    #[test]
    fn email_subscriptions_wait_for_confirmation() {
        let mut sns = with_topic();
        let xml = subscribe(&mut sns, "email", "ops@example.com", &[]).unwrap();
        assert!(xml.contains("<SubscriptionArn>pending confirmation</SubscriptionArn>"), "{xml}");
        let listed = sns.handle(&p(&[("Action", "ListSubscriptionsByTopic"), ("TopicArn", ARN)]), 0, "r", &home());
        assert!(listed.unwrap().xml.contains("<SubscriptionArn>PendingConfirmation</SubscriptionArn>"));
        assert_eq!(sns.topic_attributes(ARN).unwrap()["SubscriptionsPending"], "1");
        let published = sns.publish(ARN, None, "m".into(), BTreeMap::new(), 0, "client").unwrap();
        assert!(published.message.deliveries.is_empty(), "nothing goes to a pending subscription");
        let view = sns.subscriptions_view(0);
        let token = view["subscriptions"][0]["pendingToken"].as_str().unwrap().to_owned();
        let confirmed = sns
            .handle(&p(&[("Action", "ConfirmSubscription"), ("TopicArn", ARN), ("Token", &token)]), 0, "r", &home())
            .unwrap();
        assert!(confirmed.xml.contains(&format!("<SubscriptionArn>{ARN}:")));
        assert_eq!(sns.topic_attributes(ARN).unwrap()["SubscriptionsConfirmed"], "1");
        let published = sns.publish(ARN, None, "m".into(), BTreeMap::new(), 0, "client").unwrap();
        assert_eq!(published.message.deliveries[0].status, "recorded");
    }

    #[test]
    fn return_subscription_arn_and_confirmation_by_endpoint() {
        let mut sns = with_topic();
        let xml =
            subscribe(&mut sns, "https", "https://example.com/hook", &[("ReturnSubscriptionArn", "true")]).unwrap();
        assert!(xml.contains(&format!("<SubscriptionArn>{ARN}:")), "{xml}");
        let sub = sns.confirm_by_endpoint(None, Some((ARN, "https://example.com/hook"))).unwrap();
        let attrs = sns.subscription_attributes(&sub.subscription_arn).unwrap();
        assert_eq!(
            (attrs["PendingConfirmation"].as_str(), attrs["ConfirmationWasAuthenticated"].as_str()),
            ("false", "false")
        );
        assert_eq!(sns.confirm_by_endpoint(Some(&sub.subscription_arn), None).unwrap_err().code, "InvalidParameter");
    }

    #[test]
    fn subscription_attributes_are_kept_checked_and_compared() {
        let mut sns = with_topic();
        let queue = "arn:aws:sqs:us-east-1:123456789012:q";
        let xml = subscribe(&mut sns, "sqs", queue, &[]).unwrap();
        let arn = xml.split("<SubscriptionArn>").nth(1).unwrap().split('<').next().unwrap().to_owned();
        assert_eq!(sns.subscription_attributes(&arn).unwrap()["RawMessageDelivery"], "false");
        let set = |name: &str, value: &str| {
            p(&[
                ("Action", "SetSubscriptionAttributes"),
                ("SubscriptionArn", &arn),
                ("AttributeName", name),
                ("AttributeValue", value),
            ])
        };
        sns.handle(&set("RawMessageDelivery", "true"), 0, "r", &home()).unwrap();
        let attrs = sns.subscription_attributes(&arn).unwrap();
        assert_eq!((attrs["RawMessageDelivery"].as_str(), attrs["Protocol"].as_str()), ("true", "sqs"));
        assert_eq!(
            sns.handle(&set("RawMessageDelivery", "yes"), 0, "r", &home()).err().unwrap().code,
            "InvalidParameter"
        );
        assert_eq!(sns.handle(&set("Colour", "blue"), 0, "r", &home()).err().unwrap().code, "InvalidParameter");
        let e = subscribe(
            &mut sns,
            "sqs",
            queue,
            &[("Attributes.entry.1.key", "RawMessageDelivery"), ("Attributes.entry.1.value", "false")],
        );
        assert!(e.unwrap_err().message.contains("Subscription already exists with different attributes"));
        let lambda = "arn:aws:lambda:us-east-1:123456789012:function:f";
        let e = subscribe(
            &mut sns,
            "lambda",
            lambda,
            &[("Attributes.entry.1.key", "RawMessageDelivery"), ("Attributes.entry.1.value", "true")],
        );
        assert!(e.unwrap_err().message.contains("Delivery protocol [lambda] does not support raw message delivery"));
        sns.handle(&p(&[("Action", "Unsubscribe"), ("SubscriptionArn", &arn)]), 0, "r", &home()).unwrap();
        assert_eq!(sns.topic_attributes(ARN).unwrap()["SubscriptionsDeleted"], "1");
    }
}
