//! config-sync against the emulator and DynamoDB Local, answering a local listener in place of
//! CloudFormation: every case checks the account afterwards and that exactly one response
//! with the right status was sent.

use audit_shared::aws::dynamodb::DynamoSetupStore;
use audit_shared::aws::iot::IotAuditSetup;
use audit_shared::aws::sns::SnsDigestPublisher;
use aws_sdk_iot::types::AuditFrequency;
use config_sync::{handler, Responder, Syncer};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use system_tests::sync_config;
use system_tests::{admin, clients, unique, Recorder};

type RealSyncer = Syncer<IotAuditSetup, DynamoSetupStore, SnsDigestPublisher>;

struct Env {
    _emu: device_defender_emulator::Running,
    url: String,
    iot: aws_sdk_iot::Client,
    syncer: Arc<RealSyncer>,
    responder: Responder,
    cfn: Recorder,
    stack: String,
    digest_topic: String,
}

impl Env {
    async fn new(repair: bool, retries: u32) -> Env {
        let emu = device_defender_emulator::start(
            device_defender_emulator::Options::from_args(&["--start-time", "2026-01-15T00:00:00Z"]).unwrap(),
        )
        .await
        .unwrap();
        let url = emu.url();
        let c = clients(&url, retries).await;
        let table = unique("config");
        audit_shared::aws::dynamodb::create_table(&c.dynamodb, &table).await.unwrap();
        let digest_topic = c.sns.create_topic().name("digest").send().await.unwrap().topic_arn.unwrap();
        let syncer = Arc::new(Syncer {
            api: IotAuditSetup::new(c.iot.clone()),
            store: DynamoSetupStore::new(c.dynamodb.clone(), table.clone(), 400),
            publisher: SnsDigestPublisher::new(c.sns.clone(), digest_topic.clone()),
            config: sync_config(&table, &digest_topic, repair),
        });
        Env {
            _emu: emu,
            url,
            iot: c.iot,
            syncer,
            responder: Responder::new(4).expect("CA certificates load"),
            cfn: Recorder::start().await,
            stack: format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{}/0000", unique("stack")),
            digest_topic,
        }
    }

    fn event(&self, request_type: &str, request_id: &str, props: Value, old: Option<Value>) -> Value {
        let mut e = json!({
            "RequestType": request_type,
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:config-sync",
            "ResponseURL": format!("{}/cfn/{request_id}", self.cfn.url),
            "StackId": self.stack,
            "RequestId": request_id,
            "LogicalResourceId": "AuditConfiguration",
            "ResourceType": "Custom::IotAuditConfiguration",
            "ResourceProperties": props,
        });
        if request_type != "Create" {
            e["PhysicalResourceId"] = json!("stack-AuditConfiguration-audit-configuration");
        }
        // CloudFormation always sends the previous properties with an Update.
        if request_type == "Update" {
            e["OldResourceProperties"] = old.unwrap_or_else(|| json!({}));
        }
        e
    }

    /// Sends a request and returns the one CloudFormation response it produced.
    async fn send(&self, request_type: &str, request_id: &str, props: Value) -> Value {
        let before = self.cfn.requests().len();
        let _ = handler::handle(
            self.syncer.clone(),
            &self.responder,
            self.event(request_type, request_id, props, None),
            Duration::from_secs(60),
        )
        .await;
        let all = self.cfn.requests();
        let new: Vec<_> = all[before..].iter().filter(|(_, p, _)| p.ends_with(request_id)).collect();
        assert_eq!(new.len(), 1, "exactly one CloudFormation response for {request_id}");
        assert_eq!(new[0].0, "PUT");
        serde_json::from_str(&new[0].2).unwrap()
    }

    /// The daily drift check of this stack.
    async fn drift_check(&self) -> Value {
        let event = json!({ "driftCheck": { "stackId": self.stack } });
        handler::handle(self.syncer.clone(), &self.responder, event, Duration::from_secs(60)).await.unwrap()
    }

    /// A daily scheduled audit of `check` created outside the stack.
    async fn create_foreign_audit(&self, name: &str, check: &str) {
        self.iot
            .create_scheduled_audit()
            .scheduled_audit_name(name)
            .frequency(AuditFrequency::Daily)
            .target_check_names(check)
            .send()
            .await
            .unwrap();
    }

    async fn audits(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .iot
            .list_scheduled_audits()
            .send()
            .await
            .unwrap()
            .scheduled_audits
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.scheduled_audit_name.unwrap())
            .collect();
        v.sort();
        v
    }

    async fn enabled(&self) -> Vec<String> {
        let c = self.iot.describe_account_audit_configuration().send().await.unwrap();
        let mut v: Vec<String> =
            c.audit_check_configurations.unwrap().into_iter().filter(|(_, c)| c.enabled).map(|(n, _)| n).collect();
        v.sort();
        v
    }

    async fn on_demand_tasks(&self) -> usize {
        self.iot
            .list_audit_tasks()
            .start_time(aws_sdk_iot::primitives::DateTime::from_secs(1_768_435_200 - 3600))
            .end_time(aws_sdk_iot::primitives::DateTime::from_secs(1_768_435_200 + 86_400))
            .task_type(aws_sdk_iot::types::AuditTaskType::OnDemandAuditTask)
            .send()
            .await
            .unwrap()
            .tasks
            .unwrap_or_default()
            .len()
    }
}

fn props(checks: &[&str], audits: Value, extra: Value) -> Value {
    let mut p = json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:config-sync",
        "AuditRoleArn": "arn:aws:iam::123456789012:role/audit",
        "Checks": checks,
        "NotificationTarget": { "TopicArn": "arn:aws:sns:us-east-1:123456789012:audit", "RoleArn": "arn:aws:iam::123456789012:role/iot-sns", "Enabled": "true" },
        "ScheduledAudits": audits,
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

const A: &str = "DEVICE_CERTIFICATE_EXPIRING_CHECK";
const B: &str = "LOGGING_DISABLED_CHECK";
const C: &str = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK";

#[tokio::test]
async fn create_update_delete_lifecycle() {
    let env = Env::new(false, 3).await;
    // Create from an empty account, with a first on-demand audit.
    let p1 = props(
        &[A, B],
        json!([{ "Name": "daily", "Frequency": "DAILY", "TargetChecks": [A, B] }]),
        json!({ "StartOnDemandAudit": "true" }),
    );
    let r = env.send("Create", "req-1", p1.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(r["PhysicalResourceId"].as_str().unwrap().ends_with("AuditConfiguration-audit-configuration"), "{r}");
    assert_eq!(env.audits().await, ["daily"]);
    assert_eq!(env.enabled().await, [A, B]);
    assert_eq!(r["Data"]["EnabledChecks"], format!("{A},{B}"));
    assert!(r["Data"]["ScheduledAuditArns"].as_str().unwrap().ends_with("scheduledaudit/daily"));
    assert_eq!(env.on_demand_tasks().await, 1);
    // A retried Create (same RequestId, e.g. Lambda's retry) starts no second audit.
    let r = env.send("Create", "req-1", p1.clone()).await;
    assert_eq!(r["Status"], "SUCCESS");
    assert_eq!(env.on_demand_tasks().await, 1, "StartOnDemandAuditTask is not idempotent: started once");
    let config = env.iot.describe_account_audit_configuration().send().await.unwrap();
    assert_eq!(config.role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/audit"));

    // A foreign audit (not ours) targets B.
    env.create_foreign_audit("theirs", B).await;
    // Update: drop B from the template (still targeted by "theirs": stays enabled), add C,
    // replace "daily" with a weekly audit.
    let p2 = props(
        &[A, C],
        json!([{ "Name": "weekly", "Frequency": "WEEKLY", "DayOfWeek": "MON", "TargetChecks": [A, C] }]),
        json!({ "UnlistedChecks": "Disable" }),
    );
    let r = env.send("Update", "req-2", p2).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(env.audits().await, ["theirs", "weekly"]);
    assert_eq!(env.enabled().await, [A, C, B], "B stays enabled: a remaining audit targets it (sorted by name)");
    assert!(r["Data"]["Warnings"].as_str().unwrap().contains("theirs"));
    // Update removing the foreign audit's check pressure: "theirs" deleted outside, B now disabled.
    env.iot.delete_scheduled_audit().scheduled_audit_name("theirs").send().await.unwrap();
    let p3 = props(
        &[A],
        json!([{ "Name": "weekly", "Frequency": "MONTHLY", "DayOfMonth": "LAST", "TargetChecks": [A] }]),
        json!({ "UnlistedChecks": "Disable" }),
    );
    let r = env.send("Update", "req-3", p3.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(env.enabled().await, [A]);
    let d = env.iot.describe_scheduled_audit().scheduled_audit_name("weekly").send().await.unwrap();
    assert_eq!(d.frequency, Some(AuditFrequency::Monthly));
    assert_eq!(d.day_of_month.as_deref(), Some("LAST"));

    // Delete (default policy): our audits go, the checks stay.
    env.create_foreign_audit("theirs", A).await;
    let r = env.send("Delete", "req-4", p3).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(env.audits().await, ["theirs"], "never deletes an audit it does not own");
    // Delete again (e.g. after a failed create): nothing recorded, SUCCESS.
    let r = env.send("Delete", "req-5", json!({})).await;
    assert_eq!(r["Status"], "SUCCESS");
}

#[tokio::test]
async fn delete_with_retain_keeps_everything() {
    let env = Env::new(false, 3).await;
    let p = props(
        &[A],
        json!([{ "Name": "keep-me", "Frequency": "DAILY", "TargetChecks": [A] }]),
        json!({ "OnDelete": "Retain" }),
    );
    assert_eq!(env.send("Create", "c", p.clone()).await["Status"], "SUCCESS");
    assert_eq!(env.send("Delete", "d", p).await["Status"], "SUCCESS");
    assert_eq!(env.audits().await, ["keep-me"]);
    assert_eq!(env.enabled().await, [A]);
}

#[tokio::test]
async fn foreign_name_and_invalid_properties_fail_with_a_reason() {
    let env = Env::new(false, 3).await;
    env.iot
        .update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .audit_check_configurations(A, aws_sdk_iot::types::AuditCheckConfiguration::builder().enabled(true).build())
        .send()
        .await
        .unwrap();
    env.create_foreign_audit("daily", A).await;
    let r = env
        .send(
            "Create",
            "c1",
            props(&[A], json!([{ "Name": "daily", "Frequency": "DAILY", "TargetChecks": [A] }]), json!({})),
        )
        .await;
    assert_eq!(r["Status"], "FAILED");
    assert!(r["Reason"].as_str().unwrap().contains("ScheduledAudits[0].Name"), "{r}");
    let cases = [
        (props(&["NOPE_CHECK"], json!([]), json!({})), "Checks[0]"),
        (props(&[A], json!([{ "Name": "m", "Frequency": "MONTHLY", "TargetChecks": [A] }]), json!({})), "dayOfMonth"),
        (
            props(
                &[A],
                json!([{ "Name": "w", "Frequency": "WEEKLY", "DayOfWeek": "MON", "TargetChecks": [B] }]),
                json!({}),
            ),
            "TargetChecks[0]",
        ),
        (props(&[A], json!([]), json!({ "StartOnDemandAudit": "perhaps" })), "StartOnDemandAudit"),
        (json!({ "Checks": [A] }), "AuditRoleArn"),
        (
            props(
                &[A],
                json!((0..6)
                    .map(|i| json!({ "Name": format!("a{i}"), "Frequency": "DAILY", "TargetChecks": [A] }))
                    .collect::<Vec<_>>()),
                json!({}),
            ),
            "quota",
        ),
    ];
    for (i, (p, needle)) in cases.into_iter().enumerate() {
        let r = env.send("Create", &format!("bad-{i}"), p).await;
        assert_eq!(r["Status"], "FAILED", "{r}");
        assert!(r["Reason"].as_str().unwrap().contains(needle), "{needle}: {r}");
    }
    assert_eq!(env.audits().await, ["daily"], "nothing changed by failed requests");
}

#[tokio::test]
async fn an_unreadable_request_is_still_answered_failed_once() {
    let env = Env::new(false, 3).await;
    // An Update without PhysicalResourceId is not a CloudFormation request AWS would send: the
    // typed request refuses it, and CloudFormation still gets one FAILED answer naming the field.
    let mut e = env.event("Update", "broken-1", props(&[A], json!([]), json!({})), None);
    e.as_object_mut().unwrap().remove("PhysicalResourceId");
    let before = env.cfn.requests().len();
    let out = handler::handle(env.syncer.clone(), &env.responder, e, Duration::from_secs(60)).await.unwrap();
    let sent = env.cfn.requests()[before..].to_vec();
    assert_eq!(sent.len(), 1, "one answer");
    let r: Value = serde_json::from_str(&sent[0].2).unwrap();
    assert_eq!(r, out);
    assert_eq!(r["Status"], "FAILED");
    assert!(r["Reason"].as_str().unwrap().contains("PhysicalResourceId"), "{r}");
    assert_eq!(env.audits().await, Vec::<String>::new(), "nothing applied");
    // Without a ResponseURL nothing can be answered: the invocation fails (and is parked by the
    // on-failure destination) instead.
    let mut e = env.event("Create", "broken-2", props(&[A], json!([]), json!({})), None);
    e.as_object_mut().unwrap().remove("ResponseURL");
    assert!(handler::handle(env.syncer.clone(), &env.responder, e, Duration::from_secs(60)).await.is_err());
}

#[tokio::test]
async fn api_faults_still_get_exactly_one_answer() {
    // Throttling and 5xx the SDK's retries absorb: SUCCESS.
    let env = Env::new(false, 8).await;
    admin(&env.url, "PUT", "/_emulator/faults", json!({ "throttleShare": 0.3, "errorShare": 0.05 })).await;
    let p = props(&[A, B], json!([{ "Name": "daily", "Frequency": "DAILY", "TargetChecks": [A] }]), json!({}));
    let r = env.send("Create", "f1", p.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    admin(&env.url, "PUT", "/_emulator/faults", json!({})).await;
    assert_eq!(env.audits().await, ["daily"]);
    // Every call failing outlasts the retries: FAILED with the reason, promptly.
    admin(&env.url, "PUT", "/_emulator/faults", json!({ "errorShare": 1.0 })).await;
    let started = std::time::Instant::now();
    let r = env.send("Update", "f2", p).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(r["Reason"].as_str().unwrap().contains("InternalFailure"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(50));
}

#[tokio::test]
async fn drift_is_reported_and_repaired() {
    let env = Env::new(true, 3).await;
    let p = props(&[A, B], json!([{ "Name": "daily", "Frequency": "DAILY", "TargetChecks": [A] }]), json!({}));
    assert_eq!(env.send("Create", "c", p).await["Status"], "SUCCESS");
    let out = env.drift_check().await;
    assert_eq!(out["drift"], json!([]));
    // Someone disables B and deletes the audit in the console.
    env.iot.delete_scheduled_audit().scheduled_audit_name("daily").send().await.unwrap();
    env.iot
        .update_account_audit_configuration()
        .audit_check_configurations(B, aws_sdk_iot::types::AuditCheckConfiguration::builder().enabled(false).build())
        .send()
        .await
        .unwrap();
    let out = env.drift_check().await;
    let found: Vec<String> = serde_json::from_value(out["drift"].clone()).unwrap();
    assert!(found.iter().any(|f| f.contains(B)), "{found:?}");
    assert!(found.iter().any(|f| f.contains("'daily' is missing")), "{found:?}");
    assert_eq!(out["repaired"], true);
    assert_eq!(env.audits().await, ["daily"]);
    assert_eq!(env.enabled().await, [A, B]);
    let outbox = admin(&env.url, "GET", &format!("/_emulator/outbox?topicArn={}", env.digest_topic), Value::Null).await;
    let subject = outbox["messages"][0]["subject"].as_str().unwrap().to_owned();
    assert!(subject.starts_with("Audit setup drift: 2 differences"), "{subject}");
    // Dry run: the plan, nothing applied.
    let dry = handler::handle(
        env.syncer.clone(),
        &env.responder,
        json!({ "dryRun": props(&[A, B, C], json!([]), json!({})), "stackId": env.stack }),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(dry["plan"]["steps"][0]["step"], "configure");
    assert!(dry["plan"]["steps"].as_array().unwrap().iter().any(|s| s["step"] == "deleteAudit"));
    assert_eq!(env.enabled().await, [A, B], "a dry run changes nothing");
}

/// The account's suppressions: check#resource → description.
async fn suppressions(env: &Env) -> std::collections::BTreeMap<String, String> {
    let out = env.iot.list_audit_suppressions().max_results(250).send().await.unwrap();
    out.suppressions()
        .iter()
        .map(|s| {
            let r = s.resource_identifier().unwrap();
            let id = r
                .device_certificate_id()
                .map(str::to_owned)
                .or_else(|| r.policy_version_identifier().and_then(|p| p.policy_name()).map(str::to_owned))
                .unwrap_or_default();
            (format!("{}#{}", s.check_name(), &id[..id.len().min(8)]), s.description().unwrap_or_default().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn suppressions_as_code_touch_only_their_own() {
    let env = Env::new(true, 3).await;
    let (a, f) = ("a".repeat(64), "f".repeat(64));
    let s1 = json!({ "Check": A, "Resource": { "deviceCertificateId": a }, "Reason": "lab rack 3 (SEC-142)", "Expires": "2027-06-30" });
    let s2 = json!({ "Check": C, "Resource": { "policyVersionIdentifier": { "policyName": "debug", "policyVersionId": "3" } },
        "Reason": "broad on purpose", "Indefinite": "true" });
    let r = env.send("Create", "s-1", props(&[A, C], json!([]), json!({ "Suppressions": [s1, s2] }))).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Suppressions"], "2");
    let have = suppressions(&env).await;
    assert_eq!(have.len(), 2, "{have:?}");
    assert_eq!(have[&format!("{A}#aaaaaaaa")], "lab rack 3 (SEC-142)");
    // One made by hand, which the template then also declares: left alone, reported.
    env.iot
        .create_audit_suppression()
        .check_name(A)
        .resource_identifier(aws_sdk_iot::types::ResourceIdentifier::builder().device_certificate_id(&f).build())
        .description("made in the console")
        .suppress_indefinitely(true)
        .send()
        .await
        .unwrap();
    let s1b = json!({ "Check": A, "Resource": { "deviceCertificateId": a }, "Reason": "lab rack 3, re-flash slipped (SEC-150)", "Expires": "2027-09-30" });
    let s3 =
        json!({ "Check": A, "Resource": { "deviceCertificateId": f }, "Reason": "ours now?", "Indefinite": "true" });
    let r = env
        .send("Update", "s-2", props(&[A, C], json!([]), json!({ "Suppressions": [s1b.clone(), s3.clone()] })))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(r["Data"]["Warnings"].as_str().unwrap().contains("not this stack's"), "{r}");
    let have = suppressions(&env).await;
    assert_eq!(have.len(), 2, "the removed one deleted: {have:?}");
    assert_eq!(have[&format!("{A}#aaaaaaaa")], "lab rack 3, re-flash slipped (SEC-150)", "updated");
    assert_eq!(have[&format!("{A}#ffffffff")], "made in the console", "never touched");
    // Validation names the entry before anything is touched.
    let bad = json!({ "Check": A, "Resource": { "clientId": "thing-1" }, "Reason": "x", "Indefinite": "true" });
    let r = env.send("Update", "s-3", props(&[A, C], json!([]), json!({ "Suppressions": [s1b.clone(), bad] }))).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(r["Reason"].as_str().unwrap().contains("Suppressions[1].Resource"), "{r}");
    let past = json!({ "Check": A, "Resource": { "deviceCertificateId": a }, "Reason": "x", "Expires": "2020-01-01" });
    let r = env.send("Update", "s-4", props(&[A, C], json!([]), json!({ "Suppressions": [past] }))).await;
    assert!(r["Reason"].as_str().unwrap().contains("Suppressions[0].Expires"), "{r}");
    assert_eq!(suppressions(&env).await.len(), 2, "nothing changed by failed requests");

    // Drift: ours deleted by hand is reported and restored (auto-repair); the overlap is reported.
    env.iot
        .delete_audit_suppression()
        .check_name(A)
        .resource_identifier(aws_sdk_iot::types::ResourceIdentifier::builder().device_certificate_id(&a).build())
        .send()
        .await
        .unwrap();
    let out = env.drift_check().await;
    let found: Vec<String> = serde_json::from_value(out["drift"].clone()).unwrap();
    assert!(found.iter().any(|l| l.contains("is missing")), "{found:?}");
    assert!(found.iter().any(|l| l.contains("does not own")), "{found:?}");
    assert_eq!(out["repaired"], true);
    assert_eq!(suppressions(&env).await[&format!("{A}#aaaaaaaa")], "lab rack 3, re-flash slipped (SEC-150)");

    // Stack deletion removes ours only.
    let r = env.send("Delete", "s-5", props(&[A, C], json!([]), json!({ "Suppressions": [s1b, s3] }))).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["DeletedSuppressions"], "1");
    let have = suppressions(&env).await;
    assert_eq!(have.keys().collect::<Vec<_>>(), [&format!("{A}#ffffffff")]);
}
