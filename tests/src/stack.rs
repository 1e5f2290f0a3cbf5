//! An ingest stack for end-to-end tests: the in-process emulator (IoT, SNS, SQS), a fresh
//! table in the shared DynamoDB Local, and the audit-notification ingestor with its real
//! adapters, plus what tests ask of them.

use crate::{admin, clients, sns_event, unique};
use audit_notification::config::Config;
use audit_notification::handler::handle;
use audit_notification::{AwsHub, AwsIngestor};
use audit_shared::aws::iot::to_finding;
use audit_shared::summary::{IngestState, TaskSummary};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_iot::types::{AuditCheckConfiguration, AuditNotificationTarget, AuditNotificationType};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// The checks the stack configures.
pub const CHECKS: [&str; 4] = [
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "DEVICE_CERTIFICATE_AGE_CHECK",
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
];

/// An emulator, DynamoDB Local table, topics and queue, and the ingestor wired to them.
pub struct Stack {
    pub _emu: device_defender_emulator::Running,
    pub url: String,
    pub hub: AwsHub,
    pub clients: audit_notification::Clients,
    pub iot: aws_sdk_iot::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub table: String,
    pub digest_topic: String,
    pub chat_topic: String,
    pub queue_url: String,
}

impl Stack {
    /// A fresh stack: the emulator started with `emulator_args`, the ingestor with `env`.
    pub async fn new(emulator_args: &[&str], env: &[(&str, &str)]) -> Stack {
        let mut args =
            vec!["--start-time", "2026-01-15T00:00:00Z", "--fleet-devices", "3000", "--noncompliant-share", "0.2"];
        args.extend_from_slice(emulator_args);
        let opts = device_defender_emulator::Options::from_args(&args).expect("valid emulator options");
        let emu = device_defender_emulator::start(opts).await.expect("emulator starts");
        let url = emu.url();
        let c = clients(&url, 10).await;
        let kept = clients(&url, 10).await;
        let (iot, ddb, sqs, sns) = (c.iot.clone(), c.dynamodb.clone(), c.sqs.clone(), c.sns.clone());
        let table = unique("audit");
        audit_shared::aws::dynamodb::create_table(&ddb, &table).await.expect("table created");
        let digest_topic = sns.create_topic().name("digest").send().await.unwrap().topic_arn.unwrap();
        let chat_topic = sns.create_topic().name("chat").send().await.unwrap().topic_arn.unwrap();
        sns.create_topic().name("audit").send().await.unwrap();
        let queue_url = sqs.create_queue().queue_name("continuation").send().await.unwrap().queue_url.unwrap();
        let mut vars = vec![
            ("TABLE_NAME", table.as_str()),
            ("DIGEST_TOPIC_ARN", digest_topic.as_str()),
            ("CHAT_TOPIC_ARN", chat_topic.as_str()),
            ("CONTINUATION_QUEUE_URL", queue_url.as_str()),
            ("FINDINGS_RATE_LIMIT", "500"),
            ("DEADLINE_MARGIN_MS", "0"),
            ("LEASE_MS", "1500"),
        ];
        vars.extend_from_slice(env);
        let config =
            Config::from_lookup(|k| vars.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
        let sts_sdk = crate::sdk(10).await.into_builder().endpoint_url(&url).build();
        let (hub, _meter) = audit_notification::build(c, &sts_sdk, config);
        Stack { _emu: emu, url, hub, clients: kept, iot, ddb, sqs, table, digest_topic, chat_topic, queue_url }
    }

    pub async fn configure(&self, checks: &[&str]) {
        let mut req = self
            .iot
            .update_account_audit_configuration()
            .role_arn("arn:aws:iam::123456789012:role/audit")
            .audit_notification_target_configurations(
                AuditNotificationType::Sns,
                AuditNotificationTarget::builder()
                    .target_arn("arn:aws:sns:us-east-1:123456789012:audit")
                    .role_arn("arn:aws:iam::123456789012:role/iot-sns")
                    .enabled(true)
                    .build(),
            );
        for c in checks {
            req = req.audit_check_configurations(*c, AuditCheckConfiguration::builder().enabled(true).build());
        }
        req.send().await.unwrap();
    }

    pub async fn advance(&self, seconds: f64) -> Value {
        admin(&self.url, "POST", "/_emulator/clock/advance", json!({ "seconds": seconds })).await
    }

    pub async fn run_on_demand(&self, checks: &[&str]) -> String {
        let id = self
            .iot
            .start_on_demand_audit_task()
            .set_target_check_names(Some(checks.iter().map(|c| c.to_string()).collect()))
            .send()
            .await
            .unwrap()
            .task_id
            .unwrap();
        self.advance(10.0).await;
        id
    }

    /// Creates the daily scheduled audit `name` of the stack's [`CHECKS`].
    pub async fn schedule_daily(&self, name: &str) {
        schedule_daily(&self.iot, name).await
    }

    /// Advances the virtual clock to the next scheduled run, delivers its notification and
    /// returns its task id.
    pub async fn ingest_next_scheduled_run(&self) -> String {
        let r = admin(&self.url, "POST", "/_emulator/clock/advance", json!({ "toNextScheduledRun": true })).await;
        let task = r["tasksEnded"][0].as_str().expect("a scheduled audit ran").to_owned();
        self.deliver(&[self.notification(&task).await]).await.unwrap();
        task
    }

    /// The audit notification of an ended task, as the SNS `Message` string.
    pub async fn notification(&self, task_id: &str) -> String {
        admin(&self.url, "GET", &format!("/_emulator/notifications/{task_id}"), Value::Null).await.to_string()
    }

    /// The ingestor of the hub's own account-region.
    pub async fn ingestor(&self) -> std::sync::Arc<AwsIngestor> {
        self.hub.ingestor(&self.hub.home).await.expect("the home member opens").0
    }

    pub async fn deliver(&self, messages: &[String]) -> Result<Value, String> {
        handle(&self.hub, sns_event(messages), "req", Duration::from_secs(900)).await.map_err(|e| e.to_string())
    }

    /// Delivers `(topic ARN, message)` records as one SNS event to the hub.
    pub async fn hub_deliver(&self, records: &[(String, String)]) -> Result<Value, String> {
        let event = crate::sns_event_from(records);
        handle(&self.hub, event, "req", Duration::from_secs(900)).await.map_err(|e| e.to_string())
    }

    /// Plays the SQS event source mapping until the continuation queue is empty.
    pub async fn drain(&self) -> usize {
        self.drain_queue(&self.queue_url).await
    }

    /// Plays the SQS event source mapping of queue `url` until it is empty.
    pub async fn drain_queue(&self, url: &str) -> usize {
        let mut invocations = 0;
        for _ in 0..2_000 {
            let r = self.sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
            let msgs = r.messages.unwrap_or_default();
            if msgs.is_empty() {
                if crate::messages_waiting(&self.sqs, url).await == 0 {
                    return invocations;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let event = crate::sqs_event(&msgs);
            invocations += 1;
            let out = handle(&self.hub, event, "req-sqs", Duration::from_secs(900))
                .await
                .expect("SQS batches never fail whole");
            let failed: Vec<String> = out["batchItemFailures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
                .collect();
            for m in &msgs {
                if !failed.contains(m.message_id.as_ref().unwrap()) {
                    self.sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(m.receipt_handle.clone().unwrap())
                        .send()
                        .await
                        .unwrap();
                } else {
                    self.sqs
                        .change_message_visibility()
                        .queue_url(url)
                        .receipt_handle(m.receipt_handle.clone().unwrap())
                        .visibility_timeout(0)
                        .send()
                        .await
                        .ok();
                }
            }
        }
        panic!("the queue {url} never emptied");
    }

    pub async fn emulator_findings(&self, task_id: &str) -> BTreeSet<(String, String)> {
        let all = self.iot.list_audit_findings().task_id(task_id).max_results(250).into_paginator().items().send();
        let all: Vec<_> = all.collect::<Result<Vec<_>, _>>().await.unwrap();
        let keys: BTreeSet<_> = all
            .iter()
            .map(|f| {
                let k = to_finding(task_id, f).key();
                (k.check_name, k.resource_key)
            })
            .collect();
        assert_eq!(keys.len(), all.len(), "the emulator never repeats a finding");
        keys
    }

    /// A task's findings as the table answers them: rebuilt from its stream's episodes.
    pub async fn stored_findings(&self, task_id: &str) -> Vec<(String, String)> {
        let Some(s) = self.try_summary(task_id).await else { return Vec::new() };
        crate::run_findings(&self.ddb, &self.table, "", &s).await
    }

    pub async fn try_summary(&self, task_id: &str) -> Option<TaskSummary> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("TASK#{task_id}")))
            .key("sk", AttributeValue::S("SUMMARY".into()))
            .send()
            .await
            .unwrap();
        out.item.map(|i| serde_dynamo::from_item(i).unwrap())
    }

    pub async fn summary(&self, task_id: &str) -> TaskSummary {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("TASK#{task_id}")))
            .key("sk", AttributeValue::S("SUMMARY".into()))
            .send()
            .await
            .unwrap();
        serde_dynamo::from_item(out.item.expect("summary stored")).unwrap()
    }

    pub async fn digests(&self) -> Vec<Value> {
        self.published(&self.digest_topic).await
    }

    pub async fn published(&self, topic: &str) -> Vec<Value> {
        let o = admin(&self.url, "GET", &format!("/_emulator/outbox?topicArn={topic}"), Value::Null).await;
        o["messages"].as_array().cloned().unwrap_or_default()
    }

    /// The stored digest item of a task.
    pub async fn stored_digest(&self, task_id: &str) -> Value {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("TASK#{task_id}")))
            .key("sk", AttributeValue::S("DIGEST".into()))
            .send()
            .await
            .unwrap();
        serde_dynamo::from_item(out.item.expect("digest stored")).unwrap()
    }

    /// Stored findings equal the emulator's, exactly, with no duplicate item.
    pub async fn assert_exact(&self, task_id: &str) {
        let expected = self.emulator_findings(task_id).await;
        let stored = self.stored_findings(task_id).await;
        let stored_set: BTreeSet<_> = stored.iter().cloned().collect();
        assert_eq!(stored.len(), stored_set.len(), "no duplicate finding items");
        assert_eq!(stored_set.len(), expected.len());
        assert!(stored_set == expected, "stored findings differ from the emulator's");
        let s = self.summary(task_id).await;
        assert_eq!(s.ingest, IngestState::Complete);
        assert_eq!(s.progress.values().map(|p| p.stored).sum::<i64>() as usize, expected.len(), "counted once");
    }
}

/// Creates the daily scheduled audit `name` of [`CHECKS`] through `iot` (any account-region).
pub async fn schedule_daily(iot: &aws_sdk_iot::Client, name: &str) {
    iot.create_scheduled_audit()
        .scheduled_audit_name(name)
        .frequency(aws_sdk_iot::types::AuditFrequency::Daily)
        .set_target_check_names(Some(CHECKS.iter().map(|c| c.to_string()).collect()))
        .send()
        .await
        .unwrap();
}
