//! The SNS hop: aws-sdk-sns against the emulator's SNS, and audit notifications delivered to a
//! local HTTP listener as the SNS Lambda event.

mod common;

use audit_shared::{AuditNotification, CheckRunStatus, TaskStatus, TaskType};
use aws_lambda_events::sns::SnsEvent;
use aws_sdk_iot::types::{AuditCheckConfiguration, AuditNotificationTarget, AuditNotificationType};
use aws_sdk_sns::types::MessageAttributeValue;
use common::Emu;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// A local HTTP listener that records every POST body (a stand-in for `cargo lambda watch`).
async fn listener() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let store = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
        let store = store.clone();
        async move {
            store.lock().unwrap().push((uri.path().to_owned(), body));
            "{}"
        }
    });
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

async fn wait_for(seen: &Arc<Mutex<Vec<(String, String)>>>, n: usize) -> Vec<(String, String)> {
    for _ in 0..200 {
        let v = seen.lock().unwrap().clone();
        if v.len() >= n {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("expected {n} deliveries, got {}", seen.lock().unwrap().len());
}

#[tokio::test]
async fn sns_topics_subscriptions_and_publish_through_the_sdk() {
    let emu = Emu::start(&[]);
    let sns = emu.sns();
    let arn = sns.create_topic().name("digest").send().await.unwrap().topic_arn.unwrap();
    assert_eq!(arn, "arn:aws:sns:us-east-1:123456789012:digest");
    assert_eq!(
        sns.create_topic().name("digest").send().await.unwrap().topic_arn.unwrap(),
        arn,
        "CreateTopic is idempotent"
    );
    sns.create_topic().name("other").send().await.unwrap();
    let topics: Vec<String> =
        sns.list_topics().send().await.unwrap().topics.unwrap().into_iter().map(|t| t.topic_arn.unwrap()).collect();
    assert_eq!(topics.len(), 2);
    // An e-mail address confirms its subscription: pending until then (the README's "confirm
    // the e-mail subscription", played through the admin API as the mail's link would).
    let sub = sns.subscribe().topic_arn(&arn).protocol("email").endpoint("ops@example.com").send().await.unwrap();
    assert_eq!(sub.subscription_arn.as_deref(), Some("pending confirmation"));
    let subs = sns.list_subscriptions_by_topic().topic_arn(&arn).send().await.unwrap().subscriptions.unwrap();
    assert_eq!(subs[0].endpoint.as_deref(), Some("ops@example.com"));
    assert_eq!(subs[0].subscription_arn.as_deref(), Some("PendingConfirmation"));
    let attrs = sns.get_topic_attributes().topic_arn(&arn).send().await.unwrap().attributes.unwrap();
    assert_eq!((attrs["SubscriptionsConfirmed"].as_str(), attrs["SubscriptionsPending"].as_str()), ("0", "1"));
    let confirmed =
        emu.admin("subscriptions/confirm", serde_json::json!({ "topicArn": arn, "endpoint": "ops@example.com" })).await;
    assert!(confirmed["subscriptionArn"].as_str().unwrap().starts_with(&arn), "{confirmed}");
    let attrs = sns.get_topic_attributes().topic_arn(&arn).send().await.unwrap().attributes.unwrap();
    assert_eq!(attrs["SubscriptionsConfirmed"], "1");

    let id = sns
        .publish()
        .topic_arn(&arn)
        .subject("Audit digest: 3 new CRITICAL")
        .message("body <with> & xml chars")
        .message_attributes(
            "CRITICAL",
            MessageAttributeValue::builder().data_type("Number").string_value("3").build().unwrap(),
        )
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap();
    let outbox = emu.admin_get(&format!("outbox?topicArn={arn}")).await;
    let m = &outbox["messages"][0];
    assert_eq!(m["messageId"], id.as_str());
    assert_eq!(m["subject"], "Audit digest: 3 new CRITICAL");
    assert_eq!(m["message"], "body <with> & xml chars");
    assert_eq!(m["messageAttributes"]["CRITICAL"]["DataType"], "Number");
    assert_eq!(m["messageAttributes"]["CRITICAL"]["StringValue"], "3");
    assert_eq!(m["deliveries"][0]["status"], "recorded");

    // Typed errors on the SNS wire.
    let e =
        sns.publish().topic_arn("arn:aws:sns:us-east-1:123456789012:missing").message("x").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_not_found_exception(), "{e:?}");
    let e = sns.publish().topic_arn(&arn).subject("x".repeat(101)).message("x").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_parameter_exception(), "{e:?}");
    let e = sns.create_topic().name("bad name").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_parameter_exception(), "{e:?}");
}

#[tokio::test]
async fn audit_notification_reaches_a_lambda_as_an_sns_event() {
    let (url, seen) = listener().await;
    let invoke = format!("{url}/2015-03-31/functions/{{function}}/invocations");
    let emu = Emu::start(&[
        "--lambda-invoke-url",
        &invoke,
        "--fail-check",
        "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
    ]);
    let sns = emu.sns();
    let topic = sns.create_topic().name("dd-audit-notifications").send().await.unwrap().topic_arn.unwrap();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("lambda")
        .endpoint("arn:aws:lambda:us-east-1:123456789012:function:audit-notification")
        .send()
        .await
        .unwrap();
    let on = AuditCheckConfiguration::builder().enabled(true).build();
    let checks = [
        "DEVICE_CERTIFICATE_EXPIRING_CHECK",
        "LOGGING_DISABLED_CHECK",
        "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
    ];
    let mut req = emu
        .iot
        .update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .audit_notification_target_configurations(
            AuditNotificationType::Sns,
            AuditNotificationTarget::builder()
                .target_arn(&topic)
                .role_arn("arn:aws:iam::123456789012:role/iot-sns")
                .enabled(true)
                .build(),
        );
    for c in checks {
        req = req.audit_check_configurations(c, on.clone());
    }
    req.send().await.unwrap();
    emu.iot
        .create_scheduled_audit()
        .scheduled_audit_name("weekly-cert-audit")
        .frequency(aws_sdk_iot::types::AuditFrequency::Daily)
        .set_target_check_names(Some(checks.iter().map(|c| c.to_string()).collect()))
        .send()
        .await
        .unwrap();
    let r = emu.admin("clock/advance", serde_json::json!({ "toNextScheduledRun": true })).await;
    let task_id = r["tasksEnded"][0].as_str().expect("the scheduled task ended").to_owned();

    let got = wait_for(&seen, 1).await;
    assert_eq!(got[0].0, "/2015-03-31/functions/audit-notification/invocations");
    let event: SnsEvent = serde_json::from_str(&got[0].1).expect("a valid SNS Lambda event");
    let record = &event.records[0];
    assert_eq!(record.event_source, "aws:sns");
    assert_eq!(record.sns.topic_arn, topic);
    assert!(record.event_subscription_arn.starts_with(&topic));
    let n: AuditNotification = serde_json::from_str(&record.sns.message).unwrap();
    assert_eq!(n.task_id, task_id);
    assert_eq!(n.task_status, TaskStatus::Completed);
    assert_eq!(n.task_type, TaskType::Scheduled);
    assert_eq!(n.scheduled_audit_name.as_deref(), Some("weekly-cert-audit"));
    assert_eq!(n.account_id, "123456789012");
    assert_eq!(n.total_checks_count, 3);
    assert_eq!(
        n.failed_checks_count + n.canceled_checks_count + n.compliant_checks_count + n.non_compliant_checks_count,
        3
    );
    assert!(n.task_start_time > 1_700_000_000_000, "milliseconds: {}", n.task_start_time);
    let failed = n.audit_details.iter().find(|d| d.check_run_status == CheckRunStatus::Failed).unwrap();
    assert_eq!(failed.error_code.as_deref(), Some("INSUFFICIENT_PERMISSIONS"));
    // The raw message uses the reference's field names and types.
    let raw: serde_json::Value = serde_json::from_str(&record.sns.message).unwrap();
    for field in [
        "accountId",
        "taskId",
        "taskStatus",
        "taskType",
        "scheduledAuditName",
        "failedChecksCount",
        "canceledChecksCount",
        "nonCompliantChecksCount",
        "compliantChecksCount",
        "totalChecksCount",
        "taskStartTime",
        "auditDetails",
    ] {
        assert!(raw.get(field).is_some(), "{field} missing");
    }
    assert!(raw["taskStartTime"].is_u64());
    assert!(raw["auditDetails"].is_array());
    // Agrees with DescribeAuditTask.
    let d = emu.iot.describe_audit_task().task_id(&task_id).send().await.unwrap();
    assert_eq!(d.task_start_time.unwrap().to_millis().unwrap(), n.task_start_time);
    for detail in &n.audit_details {
        let api = &d.audit_details.as_ref().unwrap()[detail.check_name.as_str()];
        assert_eq!(api.non_compliant_resources_count, Some(detail.non_compliant_resources_count));
        assert_eq!(api.check_run_status.as_ref().unwrap().as_str(), detail.check_run_status.as_str());
    }
    // The outbox records it as delivered; a cancelled on-demand task notifies too, without scheduledAuditName.
    let id = emu
        .iot
        .start_on_demand_audit_task()
        .target_check_names("LOGGING_DISABLED_CHECK")
        .send()
        .await
        .unwrap()
        .task_id
        .unwrap();
    emu.iot.cancel_audit_task().task_id(&id).send().await.unwrap();
    let got = wait_for(&seen, 2).await;
    let event: SnsEvent = serde_json::from_str(&got[1].1).unwrap();
    let raw: serde_json::Value = serde_json::from_str(&event.records[0].sns.message).unwrap();
    assert_eq!(raw["taskStatus"], "CANCELED");
    assert_eq!(raw["canceledChecksCount"], 1);
    assert!(raw.get("scheduledAuditName").is_none());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let outbox = emu.admin_get("outbox?source=audit").await;
    assert_eq!(outbox["messages"].as_array().unwrap().len(), 2);
    assert_eq!(outbox["messages"][0]["deliveries"][0]["status"], "delivered");
}

#[tokio::test]
async fn undeliverable_lambda_is_retried_and_recorded_as_failed() {
    let emu = Emu::start(&[
        "--lambda-invoke-url",
        "http://127.0.0.1:9/2015-03-31/functions/{function}/invocations",
        "--delivery-attempts",
        "2",
    ]);
    let sns = emu.sns();
    let topic = sns.create_topic().name("t").send().await.unwrap().topic_arn.unwrap();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("lambda")
        .endpoint("arn:aws:lambda:us-east-1:123456789012:function:f")
        .send()
        .await
        .unwrap();
    sns.publish().topic_arn(&topic).message("hello").send().await.unwrap();
    for _ in 0..100 {
        let outbox = emu.admin_get("outbox").await;
        if outbox["messages"][0]["deliveries"][0]["status"] == "failed" {
            assert_eq!(outbox["messages"][0]["deliveries"][0]["attempts"], 2);
            assert!(outbox["messages"][0]["deliveries"][0]["lastError"].as_str().unwrap().contains("cannot reach"));
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("delivery never marked failed");
}
