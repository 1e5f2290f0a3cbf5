//! `local-org` (`make demo-org`): an organization on loopback — a hub and four member
//! account-regions in two regions, each with its own Device Defender, scheduled audit, topic and
//! subscription of the hub's fan-in queue, as member.yaml sets them up; the hub's real
//! bootstraps (audit-notification with MEMBER_ROLE_NAME, org-rollup) behind Runtime APIs.
//!
//! The story: the hub confirms its members' subscriptions (not the one whose role it cannot
//! assume), every member's scheduled audit fires, each readable member gets its digest, and the
//! roll-up names the worst accounts, the unreadable member and one that never reported.

use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use system_tests::local::{
    emulator_args, fail, invoke_gateway, outbox, port, spawn_function, step, wait_for_digests, Function,
};
use system_tests::{admin, bind_address, clients_of, iot_as, sns_as, start_dynamodb_local};

const TABLE: &str = "audit-org";
const HUB: &str = "123456789012";
const ROLE: &str = "device-defender-audit-hub";
const TOPIC: &str = "device-defender-audit-notifications";
const QUEUE: &str = "member-notifications";

/// A member of the demo: access key, account, region, name, whether the hub may read it.
struct DemoMember {
    key: &'static str,
    account: &'static str,
    region: &'static str,
    name: &'static str,
    readable: bool,
}

const MEMBERS: [DemoMember; 4] = [
    DemoMember { key: "PAYMENTS", account: "111122223333", region: "us-east-1", name: "payments-prod", readable: true },
    DemoMember { key: "PAYMENTS", account: "111122223333", region: "eu-west-1", name: "payments-prod", readable: true },
    DemoMember { key: "FLEETEU", account: "444455556666", region: "eu-west-1", name: "fleet-eu", readable: true },
    // Its stack was deployed, but not its hub-access role.
    DemoMember { key: "LABS", account: "555566667777", region: "us-east-1", name: "labs", readable: false },
];

/// A member that is expected but whose stack never reported.
const NEVER: &str = "777788889999:eu-west-1";

/// What member.yaml creates in one account-region: the topic and its subscription of the hub's
/// queue, the audit configuration notifying the topic, a daily scheduled audit.
async fn member_stack(url: &str, m: &DemoMember, queue_arn: &str) {
    use aws_sdk_iot::types::{AuditCheckConfiguration, AuditFrequency, AuditNotificationTarget, AuditNotificationType};
    let sns = sns_as(url, m.key, m.region);
    let topic = sns.create_topic().name(TOPIC).send().await.unwrap_or_else(|e| fail(e)).topic_arn.unwrap_or_default();
    sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(queue_arn).send().await.unwrap_or_else(|e| fail(e));
    let iot = iot_as(url, m.key, m.region);
    let checks =
        ["DEVICE_CERTIFICATE_EXPIRING_CHECK", "DEVICE_CERTIFICATE_SHARED_CHECK", "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"];
    let mut req = iot
        .update_account_audit_configuration()
        .role_arn(format!("arn:aws:iam::{}:role/audit", m.account))
        .audit_notification_target_configurations(
            AuditNotificationType::Sns,
            AuditNotificationTarget::builder()
                .target_arn(&topic)
                .role_arn(format!("arn:aws:iam::{}:role/iot-sns", m.account))
                .enabled(true)
                .build(),
        );
    for c in checks {
        req = req.audit_check_configurations(c, AuditCheckConfiguration::builder().enabled(true).build());
    }
    req.send().await.unwrap_or_else(|e| fail(e));
    iot.create_scheduled_audit()
        .scheduled_audit_name("daily-device-audit")
        .frequency(AuditFrequency::Daily)
        .set_target_check_names(Some(checks.iter().map(|c| c.to_string()).collect()))
        .send()
        .await
        .unwrap_or_else(|e| fail(e));
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let (emu_port, ddb_port, invoke_port) =
        (port("EMULATOR_PORT", 4566), port("DYNAMODB_PORT", 8000), port("INVOKE_PORT", 9000));
    println!(
        "Starting the organization (DynamoDB Local :{ddb_port}, emulator :{emu_port}, hub functions :{invoke_port}) …"
    );
    // Loopback only unless BIND_ADDRESS says otherwise.
    let host = bind_address();
    let ddb = start_dynamodb_local(&host, ddb_port)
        .unwrap_or_else(|e| fail(format!("DynamoDB Local: {e}; set DYNAMODB_PORT")));
    let mut args = emulator_args(&host, emu_port, "4000", invoke_port);
    args.extend(["--sqs-lambda".into(), format!("{QUEUE}=audit-notification")]);
    for m in &MEMBERS {
        args.extend(["--access-key".into(), format!("{}={}", m.key, m.account)]);
        if m.readable {
            args.extend(["--role".into(), format!("arn:aws:iam::{}:role/{ROLE}-{}={HUB}", m.account, m.region)]);
        } else {
            args.extend(["--account".into(), m.account.to_owned()]);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let opts = device_defender_emulator::Options::from_args(&args).unwrap_or_else(|e| fail(e));
    let emu = device_defender_emulator::start(opts)
        .await
        .unwrap_or_else(|e| fail(format!("emulator: {e}; set EMULATOR_PORT")));
    let url = emu.url();
    let c = clients_of(&url, &ddb, 5).await;
    let c_ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&system_tests::sdk(5).await).endpoint_url(&ddb).build(),
    );
    audit_shared::aws::dynamodb::create_table(&c_ddb, TABLE).await.unwrap_or_else(|e| fail(e));
    let digest_topic = c.sns.create_topic().name("dd-audit-digest").send().await.unwrap().topic_arn.unwrap();
    let continuation = c.sqs.get_queue_url().queue_name("continuation").send().await.unwrap().queue_url.unwrap();
    let queue_arn = format!("arn:aws:sqs:us-east-1:{HUB}:{QUEUE}");
    let names = "111122223333=payments-prod,444455556666=fleet-eu,555566667777=labs,777788889999=robotics";
    let expected: Vec<String> =
        MEMBERS.iter().map(|m| format!("{}:{}", m.account, m.region)).chain([NEVER.to_owned()]).collect();
    let env = vec![
        ("AWS_ENDPOINT_URL_IOT", url.clone()),
        ("AWS_ENDPOINT_URL_SNS", url.clone()),
        ("AWS_ENDPOINT_URL_SQS", url.clone()),
        ("AWS_ENDPOINT_URL_STS", url.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", ddb.clone()),
        ("TABLE_NAME", TABLE.to_owned()),
        ("DIGEST_TOPIC_ARN", digest_topic.clone()),
        ("CONTINUATION_QUEUE_URL", continuation),
        ("FINDINGS_RATE_LIMIT", "10".into()),
        ("MEMBER_ROLE_NAME", ROLE.into()),
        ("MEMBER_TOPIC_NAME", TOPIC.into()),
        ("ACCOUNT_NAMES", names.into()),
        ("EXPECTED_MEMBERS", expected.join(",")),
        ("SILENT_AFTER_HOURS", "48".into()),
    ];
    let mut functions = HashMap::new();
    for name in ["audit-notification", "org-rollup"] {
        functions.insert(name.to_owned(), spawn_function(name, &env, "warn").await);
    }
    let functions: Arc<HashMap<String, Function>> = Arc::new(functions);
    let gateway = invoke_gateway(&host, invoke_port, functions.clone()).await;
    println!(
        "Ready in {:.1} s: emulator {url}, DynamoDB Local {ddb}, hub functions {gateway}",
        started.elapsed().as_secs_f64()
    );

    step(1, "Deploy member.yaml to four member account-regions (as the StackSet would)");
    for m in &MEMBERS {
        member_stack(&url, m, &queue_arn).await;
        println!(
            "    {} ({}) {}: topic {TOPIC}, subscription of the hub's queue pending, daily audit",
            m.name, m.account, m.region
        );
    }

    step(2, "The hub confirms the subscriptions it can vouch for (it can assume the member's role)");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut pending = Vec::new();
        for m in &MEMBERS {
            let topic = format!("arn:aws:sns:{}:{}:{TOPIC}", m.region, m.account);
            let a = sns_as(&url, m.key, m.region).get_topic_attributes().topic_arn(&topic).send().await.unwrap();
            let a = a.attributes.unwrap_or_default();
            pending.push((m, a.get("SubscriptionsConfirmed").cloned().unwrap_or_default()));
        }
        let confirmed = pending.iter().filter(|(_, c)| c == "1").count();
        if confirmed == MEMBERS.iter().filter(|m| m.readable).count() || Instant::now() > deadline {
            for (m, c) in pending {
                let state = if c == "1" { "confirmed" } else { "left pending (its role cannot be assumed)" };
                println!("    {} {}: {state}", m.account, m.region);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    step(3, "Every member's scheduled audit fires (advance the emulator's clock)");
    let r = admin(&url, "POST", "/_emulator/clock/advance", json!({ "toNextScheduledRun": true })).await;
    for t in r["tasksEndedIn"].as_array().cloned().unwrap_or_default() {
        println!(
            "    {} {}: task {} ended",
            t["account"].as_str().unwrap_or(""),
            t["region"].as_str().unwrap_or(""),
            t["taskId"].as_str().unwrap_or("")
        );
    }
    let readable = MEMBERS.iter().filter(|m| m.readable).count();
    let digests = wait_for_digests(&url, &digest_topic, readable).await;
    step(4, "One digest per member audit, through the hub's queue");
    for d in &digests {
        println!("    {}", d["subject"].as_str().unwrap_or(""));
    }

    step(5, "The organization roll-up (org-rollup, normally on its schedule)");
    functions["org-rollup"]
        .api
        .invoke(json!({ "detail-type": "Scheduled Event", "source": "aws.scheduler" }), Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| fail(format!("org-rollup: {e}")));
    let all = outbox(&url, &digest_topic).await;
    let Some(rollup) = all.iter().rev().find(|m| m["messageAttributes"]["rollup"].is_object()) else {
        fail("no roll-up was published")
    };
    println!(
        "\n--- Subject: {}\n{}",
        rollup["subject"].as_str().unwrap_or(""),
        rollup["message"].as_str().unwrap_or("")
    );
    if let Some(first) = digests.first() {
        println!(
            "--- One member digest, in full:\n--- Subject: {}\n{}",
            first["subject"].as_str().unwrap_or(""),
            first["message"].as_str().unwrap_or("")
        );
    }
    functions.values().for_each(Function::stop);
    println!("\nDone in {:.1} s. Everything started here stops now.", started.elapsed().as_secs_f64());
}
