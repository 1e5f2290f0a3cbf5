//! `local-org` (`make demo-org`): an organization on loopback, told as it would run — the hub
//! (123456789012, us-east-1: the hub stack, and here also the organization's management account)
//! and four member account-regions in three accounts, each with its own Device Defender, the
//! audit setup member.yaml makes (its 14 checks, a daily scheduled audit), its topic and its
//! subscription of the hub's queue; the hub's real bootstraps (audit-notification with
//! MEMBER_ROLE_NAME, org-rollup) behind Runtime APIs.
//!
//! The story, on the emulator's clock: members join (the hub confirms the subscriptions of the
//! members whose role it can assume; labs' role is missing), day 1's audits report, the first
//! roll-up names who joined and who cannot be read; then fleet-eu's notifications are switched
//! off by hand and labs' account leaves the organization; the day-3 roll-up calls fleet-eu
//! silent (its daily audit did not arrive on the day it was due) and lists labs as retired,
//! once: the next roll-up no longer names it. Function logs go to a file, digests to files.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use system_tests::local::{
    emulator_args, fail, invoke_gateway, outbox, port, spawn_function_logging, step, Function, Logs,
};
use system_tests::{admin, bind_address, clients_of, iot_as, sns_as, start_dynamodb_local, virtual_now, MEMBER_CHECKS};

const TABLE: &str = "audit-org";
const HUB: &str = "123456789012";
const ORGANIZATION: &str = "o-emulator000";
const ROLE: &str = "device-defender-audit-hub";
const TOPIC: &str = "device-defender-audit-notifications";
const QUEUE: &str = "member-notifications";
const AUDIT: &str = "daily-device-audit";
/// Scheduled audits start at 06:00 UTC on the emulator (Device Defender picks its own time).
const SCHEDULE_HOUR: &str = "6";
/// Hours past a member's due day before it is silent (the template's default is 24; one hour
/// lets the demo show silence on day 3 instead of day 4).
const GRACE_HOURS: &str = "1";

/// A member account-region of the demo.
struct DemoMember {
    key: &'static str,
    account: &'static str,
    region: &'static str,
    name: &'static str,
    /// Whether its hub-access role exists (the hub can read it).
    readable: bool,
}

const MEMBERS: [DemoMember; 4] = [
    DemoMember { key: "PAYMENTS", account: "111122223333", region: "us-east-1", name: "payments-prod", readable: true },
    DemoMember { key: "PAYMENTS", account: "111122223333", region: "eu-west-1", name: "payments-prod", readable: true },
    DemoMember { key: "FLEETEU", account: "444455556666", region: "eu-west-1", name: "fleet-eu", readable: true },
    // Its stack was deployed, but not its hub-access role.
    DemoMember { key: "LABS", account: "555566667777", region: "us-east-1", name: "labs", readable: false },
];

/// What member.yaml creates in one account-region: the topic and its subscription of the hub's
/// queue, the audit configuration (its 14 checks) notifying the topic, a daily scheduled audit.
async fn member_stack(url: &str, m: &DemoMember, queue_arn: &str) {
    use aws_sdk_iot::types::{AuditCheckConfiguration, AuditFrequency};
    let sns = sns_as(url, m.key, m.region);
    let topic = sns.create_topic().name(TOPIC).send().await.unwrap_or_else(|e| fail(e)).topic_arn.unwrap_or_default();
    sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(queue_arn).send().await.unwrap_or_else(|e| fail(e));
    let iot = iot_as(url, m.key, m.region);
    let mut req = notifications(&iot, m, &topic, true);
    for c in MEMBER_CHECKS {
        req = req.audit_check_configurations(c, AuditCheckConfiguration::builder().enabled(true).build());
    }
    req.send().await.unwrap_or_else(|e| fail(e));
    iot.create_scheduled_audit()
        .scheduled_audit_name(AUDIT)
        .frequency(AuditFrequency::Daily)
        .set_target_check_names(Some(MEMBER_CHECKS.iter().map(|c| c.to_string()).collect()))
        .send()
        .await
        .unwrap_or_else(|e| fail(e));
}

/// An audit configuration update that sets the member's SNS notification target on or off.
fn notifications(
    iot: &aws_sdk_iot::Client,
    m: &DemoMember,
    topic: &str,
    enabled: bool,
) -> aws_sdk_iot::operation::update_account_audit_configuration::builders::UpdateAccountAuditConfigurationFluentBuilder
{
    use aws_sdk_iot::types::{AuditNotificationTarget, AuditNotificationType};
    iot.update_account_audit_configuration()
        .role_arn(format!("arn:aws:iam::{}:role/audit", m.account))
        .audit_notification_target_configurations(
            AuditNotificationType::Sns,
            AuditNotificationTarget::builder()
                .target_arn(topic)
                .role_arn(format!("arn:aws:iam::{}:role/iot-sns", m.account))
                .enabled(enabled)
                .build(),
        )
}

/// Advances the emulator's clock to the next scheduled runs; the members whose audit ended.
async fn next_scheduled_runs(url: &str) -> Vec<String> {
    let r = admin(url, "POST", "/_emulator/clock/advance", json!({ "toNextScheduledRun": true })).await;
    r["tasksEndedIn"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| format!("{}:{}", t["account"].as_str().unwrap_or(""), t["region"].as_str().unwrap_or("")))
        .collect()
}

/// Waits for `n` more digests than `seen` on the digest topic (the hub works through its queue);
/// prints their subjects and writes each in full under `dir`.
async fn new_digests(url: &str, topic: &str, seen: &mut usize, n: usize, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let all = loop {
        let all = outbox(url, topic).await;
        if all.len() >= *seen + n {
            break all;
        }
        if Instant::now() > deadline {
            fail(format!("{n} digests expected, {} arrived in 5 minutes", all.len() - *seen));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for (i, d) in all.iter().enumerate().skip(*seen) {
        let subject = d["subject"].as_str().unwrap_or("");
        let file = dir.join(format!("{:02}.txt", i + 1));
        let text = format!("Subject: {subject}\n\n{}", d["message"].as_str().unwrap_or(""));
        std::fs::write(&file, text).unwrap_or_else(|e| fail(format!("{}: {e}", file.display())));
        println!("    {subject}");
    }
    *seen = all.len();
}

/// Runs org-rollup for the emulator's current time (as EventBridge Scheduler passes the
/// scheduled time); the roll-up message it published.
async fn roll_up(url: &str, topic: &str, f: &Function, seen: &mut usize) -> Value {
    let at = chrono::DateTime::from_timestamp_millis(virtual_now(url).await).unwrap_or_default();
    f.api
        .invoke(
            json!({ "scheduledTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) }),
            Duration::from_secs(300),
        )
        .await
        .unwrap_or_else(|e| fail(format!("org-rollup: {e}")));
    let all = outbox(url, topic).await;
    *seen = all.len();
    match all.iter().rev().find(|m| m["messageAttributes"]["rollup"].is_object()) {
        Some(r) => r.clone(),
        None => fail("no roll-up was published"),
    }
}

fn print_rollup(r: &Value) {
    println!("\n    --- Subject: {}", r["subject"].as_str().unwrap_or(""));
    for line in r["message"].as_str().unwrap_or("").lines() {
        println!("    {line}");
    }
}

/// `audit-history members` against the hub's table, as a person would run it; the columns a
/// reader needs here (the command prints more).
fn members_table(ddb: &str) {
    let bin = system_tests::debug_bin("audit-history");
    let out = std::process::Command::new(&bin)
        .args(["--table", TABLE, "--output", "json", "members"])
        .env("AWS_ENDPOINT_URL_DYNAMODB", ddb)
        .env("SILENT_GRACE_HOURS", GRACE_HOURS)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap_or_else(|e| fail(format!("{}: {e}", bin.display())));
    if !out.status.success() {
        fail(format!("audit-history members: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let rows: Vec<Value> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| fail(format!("audit-history members: {e}")));
    println!("    {:<14}{:<12}{:<12}{:<22}why", "account", "region", "state", "last audit");
    for r in rows {
        let text = |k: &str| r[k].as_str().unwrap_or("").to_owned();
        let why = [text("retired_why"), r["missed"][0].as_str().unwrap_or("").to_owned(), text("problem")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let why: String = why.chars().take(90).collect();
        println!(
            "    {:<14}{:<12}{:<12}{:<22}{why}",
            text("account"),
            text("region"),
            text("state"),
            text("last_audit")
        );
    }
}

/// Where the demo writes what it does not print: `<target>/demo-org/`.
fn output_dir() -> PathBuf {
    let dir =
        system_tests::debug_bin("x").parent().and_then(Path::parent).map(|t| t.join("demo-org")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("digests")).unwrap_or_else(|e| fail(format!("{}: {e}", dir.display())));
    dir
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let (emu_port, ddb_port, invoke_port) =
        (port("EMULATOR_PORT", 4566), port("DYNAMODB_PORT", 8000), port("INVOKE_PORT", 9000));
    let dir = output_dir();
    let log = dir.join("functions.log");
    println!(
        "An organization on loopback: the hub ({HUB} us-east-1, also the management account of {ORGANIZATION}) and\n\
         four member account-regions in three accounts: payments-prod (111122223333) us-east-1 and eu-west-1,\n\
         fleet-eu (444455556666) eu-west-1, labs (555566667777) us-east-1 (deployed without the hub's role).\n\
         Function logs: {}\nEvery digest in full: {}",
        log.display(),
        dir.join("digests").display()
    );
    let host = bind_address();
    let ddb = start_dynamodb_local(&host, ddb_port)
        .unwrap_or_else(|e| fail(format!("DynamoDB Local: {e}; set DYNAMODB_PORT")));
    let mut args = emulator_args(&host, emu_port, "4000", invoke_port);
    args.extend(["--sqs-lambda".into(), format!("{QUEUE}=audit-notification")]);
    args.extend(["--schedule-hour".into(), SCHEDULE_HOUR.into(), "--organization-id".into(), ORGANIZATION.into()]);
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
    let names = "111122223333=payments-prod,444455556666=fleet-eu,555566667777=labs";
    let env = vec![
        ("AWS_ENDPOINT_URL_IOT", url.clone()),
        ("AWS_ENDPOINT_URL_SNS", url.clone()),
        ("AWS_ENDPOINT_URL_SQS", url.clone()),
        ("AWS_ENDPOINT_URL_STS", url.clone()),
        ("AWS_ENDPOINT_URL_ORGANIZATIONS", url.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", ddb.clone()),
        ("TABLE_NAME", TABLE.to_owned()),
        ("DIGEST_TOPIC_ARN", digest_topic.clone()),
        ("CONTINUATION_QUEUE_URL", continuation),
        ("FINDINGS_RATE_LIMIT", "10".into()),
        ("MEMBER_ROLE_NAME", ROLE.into()),
        ("MEMBER_TOPIC_NAME", TOPIC.into()),
        ("ACCOUNT_NAMES", names.into()),
        ("ORGANIZATION_ID", ORGANIZATION.into()),
        ("SILENT_GRACE_HOURS", GRACE_HOURS.into()),
    ];
    let mut functions = HashMap::new();
    for name in ["audit-notification", "org-rollup"] {
        functions.insert(name.to_owned(), spawn_function_logging(name, &env, "info", Logs::File(log.clone())).await);
    }
    let functions: Arc<HashMap<String, Function>> = Arc::new(functions);
    let gateway = invoke_gateway(&host, invoke_port, functions.clone()).await;
    println!(
        "Ready in {:.1} s: emulator {url}, DynamoDB Local {ddb}, hub functions {gateway}",
        started.elapsed().as_secs_f64()
    );
    let rollup_fn = &functions["org-rollup"];
    let digests = dir.join("digests");
    let mut seen = 0;

    step(1, "Deploy member.yaml to four member account-regions (as the StackSet would)");
    for m in &MEMBERS {
        member_stack(&url, m, &queue_arn).await;
        println!(
            "    {} ({}) {}: {} checks, daily audit {AUDIT}, topic {TOPIC} subscribing the hub's queue (pending)",
            m.name,
            m.account,
            m.region,
            MEMBER_CHECKS.len()
        );
    }

    step(2, "Members join: the hub confirms the subscriptions of members whose hub-access role it can assume");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut states = Vec::new();
        for m in &MEMBERS {
            let topic = format!("arn:aws:sns:{}:{}:{TOPIC}", m.region, m.account);
            let a = sns_as(&url, m.key, m.region).get_topic_attributes().topic_arn(&topic).send().await.unwrap();
            states
                .push((m, a.attributes.unwrap_or_default().get("SubscriptionsConfirmed").cloned().unwrap_or_default()));
        }
        let confirmed = states.iter().filter(|(_, c)| c == "1").count();
        if confirmed == MEMBERS.iter().filter(|m| m.readable).count() || Instant::now() > deadline {
            for (m, c) in states {
                let state = if c == "1" { "joined" } else { "left pending: its role cannot be assumed" };
                println!("    {} ({}) {}: {state}", m.name, m.account, m.region);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    step(3, "Day 1: every member's scheduled audit runs; the hub reads the readable ones and sends their digests");
    let ended = next_scheduled_runs(&url).await;
    println!("    audits ended in {}", ended.join(", "));
    new_digests(&url, &digest_topic, &mut seen, 3, &digests).await;

    step(4, "The roll-up after day 1 (org-rollup, on its schedule)");
    print_rollup(&roll_up(&url, &digest_topic, rollup_fn, &mut seen).await);

    step(5, "Day 2: fleet-eu's audit notifications are switched off by hand; labs' account leaves the organization");
    let fleet = &MEMBERS[2];
    let fleet_topic = format!("arn:aws:sns:{}:{}:{TOPIC}", fleet.region, fleet.account);
    notifications(&iot_as(&url, fleet.key, fleet.region), fleet, &fleet_topic, false)
        .send()
        .await
        .unwrap_or_else(|e| fail(e));
    admin(&url, "DELETE", &format!("/_emulator/organization/accounts/{}", MEMBERS[3].account), Value::Null).await;
    let ended = next_scheduled_runs(&url).await;
    println!("    audits ended in {}; fleet-eu's notified nobody", ended.join(", "));
    new_digests(&url, &digest_topic, &mut seen, 2, &digests).await;

    step(6, "Day 3: the audits run again; the roll-up names the silent member and the retired one");
    next_scheduled_runs(&url).await;
    new_digests(&url, &digest_topic, &mut seen, 2, &digests).await;
    print_rollup(&roll_up(&url, &digest_topic, rollup_fn, &mut seen).await);

    step(7, "The next roll-up lists the retired member no more");
    let r = roll_up(&url, &digest_topic, rollup_fn, &mut seen).await;
    println!("    --- Subject: {}", r["subject"].as_str().unwrap_or(""));
    let named = r["message"].as_str().unwrap_or("").contains(MEMBERS[3].account);
    println!("    labs ({}) named: {}", MEMBERS[3].account, if named { "yes" } else { "no" });

    step(8, "The hub's members as the table has them (audit-history members)");
    members_table(&ddb);

    functions.values().for_each(Function::stop);
    println!("\nDone in {:.1} s. Everything started here stops now.", started.elapsed().as_secs_f64());
}
