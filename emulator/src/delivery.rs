//! Delivery of SNS messages to `lambda` subscriptions: the SNS Lambda event envelope POSTed to
//! the configured invoke URL (`cargo lambda watch` or the Lambda runtime interface emulator),
//! retried with backoff; each attempt's outcome is written to the outbox entry.

use crate::server::Emulator;
use crate::sns::{OutboxMessage, Subscription};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// The SNS event a Lambda receives for `message` through `sub` (reference §5 envelope).
pub fn lambda_event(message: &OutboxMessage, sub: &Subscription, base_url: &str) -> Value {
    let attributes: Map<String, Value> = message
        .message_attributes
        .iter()
        .map(|(k, a)| (k.clone(), json!({ "Type": a.data_type, "Value": a.string_value })))
        .collect();
    json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": sub.subscription_arn,
            "Sns": {
                "Type": "Notification",
                "MessageId": message.message_id,
                "TopicArn": message.topic_arn,
                "Subject": message.subject,
                "Message": message.message,
                "Timestamp": message.timestamp,
                "SignatureVersion": "1",
                "Signature": "RU1VTEFUT1ItTk9ULVNJR05FRA==",
                "SigningCertUrl": format!("{base_url}/_emulator/sns/SimpleNotificationService-emulator.pem"),
                "UnsubscribeUrl": format!("{base_url}/?Action=Unsubscribe&SubscriptionArn={}", sub.subscription_arn),
                "MessageAttributes": attributes,
            }
        }]
    })
}

/// The function name in a Lambda ARN (`arn:aws:lambda:region:account:function:NAME[:qualifier]`).
pub fn function_name(arn: &str) -> &str {
    arn.split(':').nth(6).unwrap_or(arn)
}

/// Delivers one message to one subscription in the background.
pub fn spawn(emu: Arc<Emulator>, outbox_index: usize, message: OutboxMessage, sub: Subscription) {
    tokio::spawn(async move {
        let url = emu.opts.lambda_invoke_url.replace("{function}", function_name(&sub.endpoint));
        let event = lambda_event(&message, &sub, &emu.base_url);
        let attempts = emu.opts.delivery_attempts.max(1);
        for attempt in 1..=attempts {
            let outcome = match emu.http.post(&url).json(&event).send().await {
                Ok(r) if r.status().is_success() => {
                    let body = r.text().await.unwrap_or_default();
                    // The runtime interface emulator and cargo-lambda answer 200 with the
                    // function's error object when the handler failed.
                    match serde_json::from_str::<Value>(&body) {
                        Ok(v) if v.get("errorType").is_some() || v.get("errorMessage").is_some() => {
                            Err(format!("function error: {}", body.chars().take(300).collect::<String>()))
                        }
                        _ => Ok(()),
                    }
                }
                Ok(r) => Err(format!("HTTP {} from {url}", r.status())),
                Err(e) => Err(format!("cannot reach {url}: {e}")),
            };
            let done = outcome.is_ok() || attempt == attempts;
            emu.record_delivery(outbox_index, &sub.subscription_arn, attempt, outcome.clone(), done);
            match outcome {
                Ok(()) => {
                    tracing::info!(message_id = %message.message_id, %url, attempt, "delivered SNS message to lambda");
                    return;
                }
                Err(e) => {
                    tracing::warn!(message_id = %message.message_id, %url, attempt, error = %e, "lambda delivery failed")
                }
            }
            if !done {
                tokio::time::sleep(Duration::from_millis(200 << attempt.min(6))).await;
            }
        }
    });
}

/// The event source mappings of `--sqs-lambda`: polls each queue and delivers batches of up to
/// ten messages as SQS events; deletes what the function did not report as failed.
pub async fn poll_queues(emu: Arc<Emulator>) {
    if emu.opts.sqs_lambda.is_empty() {
        return;
    }
    loop {
        let mut idle = true;
        for (queue, function) in emu.opts.sqs_lambda.clone() {
            let now = emu.now_ms();
            let batch = emu.sqs.lock().unwrap_or_else(|p| p.into_inner()).receive(
                &queue,
                10,
                Some(Duration::from_secs(900)),
                now,
            );
            if batch.is_empty() {
                continue;
            }
            idle = false;
            let arn = format!("arn:aws:sqs:{}:{}:{queue}", emu.opts.region, emu.opts.account_id);
            let event = crate::sqs::lambda_event(&emu.opts.region, &arn, &batch);
            let url = emu.opts.lambda_invoke_url.replace("{function}", &function);
            let failed: Option<Vec<String>> = match emu.http.post(&url).json(&event).send().await {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    if v.get("errorType").is_some() || v.get("errorMessage").is_some() {
                        tracing::warn!(%url, response = %v, "function error on an SQS batch");
                        None
                    } else {
                        Some(
                            v.get("batchItemFailures")
                                .and_then(Value::as_array)
                                .map(|a| {
                                    a.iter().filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned)).collect()
                                })
                                .unwrap_or_default(),
                        )
                    }
                }
                Ok(r) => {
                    tracing::warn!(%url, status = %r.status(), "SQS batch delivery failed");
                    None
                }
                Err(e) => {
                    tracing::warn!(%url, error = %e, "SQS batch delivery failed");
                    None
                }
            };
            let mut sqs = emu.sqs.lock().unwrap_or_else(|p| p.into_inner());
            for m in &batch {
                let ok = failed.as_ref().is_some_and(|f| !f.contains(&m.id));
                if ok {
                    sqs.delete(&queue, &m.receipt);
                } else {
                    sqs.release(&queue, &m.receipt);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(if idle { 200 } else { 10 })).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_name_from_arn() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:audit-notification"),
            "audit-notification"
        );
        assert_eq!(function_name("arn:aws:lambda:us-east-1:123456789012:function:f:live"), "f");
    }
}
