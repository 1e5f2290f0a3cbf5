//! `local-stack demo` / `local-stack up`: the whole product on loopback, no AWS, no Docker.
//!
//! Starts DynamoDB Local, the emulator (Device Defender + SNS + SQS) and the real compiled
//! Lambda bootstraps (audit-notification, config-sync), each behind its own Lambda Runtime API,
//! with an invoke endpoint in front (`POST /2015-03-31/functions/<name>/invocations`, the shape
//! `cargo lambda watch` serves) where the emulator delivers SNS and SQS events. The functions get
//! the same environment variables the template sets.
//!
//! `demo` then runs the story step by step and exits; `up` keeps everything running until
//! Ctrl-C. `services` starts only what the functions need (DynamoDB Local with the table, the
//! emulator with the topics and the continuation queue, delivering to `cargo lambda watch` on
//! :9000) for the README's "Invoke locally" path, where `cargo lambda watch` runs the functions
//! with `events/local.env`. Every process it starts stops with it.

use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use system_tests::local::{
    emulator_args, fail, invoke_gateway, outbox, port, spawn_function, step, wait_for_digests, Function,
};
use system_tests::{admin, bind_address, clients_of, debug_bin, start_dynamodb_local, workspace, Recorder};

const TABLE: &str = "audit-findings";

#[tokio::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "demo".into());
    if !["demo", "up", "services"].contains(&mode.as_str()) {
        fail("usage: local-stack demo|up|services");
    }
    let started = Instant::now();
    let (emu_port, ddb_port, invoke_port) =
        (port("EMULATOR_PORT", 4566), port("DYNAMODB_PORT", 8000), port("INVOKE_PORT", 9000));
    match mode.as_str() {
        "services" => println!(
            "Starting the local services (DynamoDB Local :{ddb_port}, emulator :{emu_port}; functions: cargo lambda watch on :{invoke_port}) …"
        ),
        _ => println!(
            "Starting the local stack (DynamoDB Local :{ddb_port}, emulator :{emu_port}, functions :{invoke_port}) …"
        ),
    }
    // Loopback only unless BIND_ADDRESS says otherwise: an open database and a fake AWS on a
    // shared network are nobody's intent.
    let host = bind_address();
    if host != system_tests::LOOPBACK {
        println!(
            "BIND_ADDRESS={host}: the emulator, DynamoDB Local and the functions can be reached from other machines"
        );
    }
    let ddb = start_dynamodb_local(&host, ddb_port)
        .unwrap_or_else(|e| fail(format!("DynamoDB Local: {e}; set DYNAMODB_PORT")));
    // `services`: the emulator's clock starts two days ago, so that the audits run there (and
    // the next scheduled run) fall in the sweeper's window (the last 72 hours of real time).
    let devices = std::env::var("FLEET_DEVICES").unwrap_or_else(|_| "5000".into());
    let mut args = emulator_args(&host, emu_port, &devices, invoke_port);
    args.extend(["--drift-share".into(), "0.25".into()]);
    if mode == "services" {
        let two_days_ago = (chrono::Utc::now() - chrono::Duration::hours(48)).to_rfc3339();
        args.extend(["--start-time".into(), two_days_ago]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut opts = device_defender_emulator::Options::from_args(&args).unwrap_or_else(|e| fail(e));
    // `services`: the clock runs, as AWS's does, so an audit started ends by itself (the demo
    // and `up` move it step by step).
    opts.frozen_clock = mode != "services";
    let emu = device_defender_emulator::start(opts)
        .await
        .unwrap_or_else(|e| fail(format!("emulator: {e}; set EMULATOR_PORT")));
    let url = emu.url();
    let c = clients_of(&url, &ddb, 5).await;
    let c_ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&system_tests::sdk(5).await).endpoint_url(&ddb).build(),
    );
    audit_shared::aws::dynamodb::create_table(&c_ddb, TABLE).await.unwrap_or_else(|e| fail(e));
    let audit_topic = c.sns.create_topic().name("dd-audit-notifications").send().await.unwrap().topic_arn.unwrap();
    let digest_topic = c.sns.create_topic().name("dd-audit-digest").send().await.unwrap().topic_arn.unwrap();
    // The template's optional chat topic (ChatDigest=true), where AWS Chatbot would subscribe.
    let chat_topic = c.sns.create_topic().name("dd-audit-chat").send().await.unwrap().topic_arn.unwrap();
    let queue = c.sqs.get_queue_url().queue_name("continuation").send().await.unwrap().queue_url.unwrap();
    c.sns
        .subscribe()
        .topic_arn(&audit_topic)
        .protocol("lambda")
        .endpoint("arn:aws:lambda:us-east-1:123456789012:function:audit-notification")
        .send()
        .await
        .unwrap();
    let common = vec![
        ("AWS_ENDPOINT_URL_IOT", url.clone()),
        ("AWS_ENDPOINT_URL_SNS", url.clone()),
        ("AWS_ENDPOINT_URL_SQS", url.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", ddb.clone()),
        ("TABLE_NAME", TABLE.to_owned()),
        ("DIGEST_TOPIC_ARN", digest_topic.clone()),
        ("CHAT_TOPIC_ARN", chat_topic.clone()),
        ("CONTINUATION_QUEUE_URL", queue.clone()),
        ("RETENTION_DAYS", "400".into()),
        ("FINDINGS_RATE_LIMIT", "10".into()),
        ("ON_DEMAND_DIGEST", "true".into()),
    ];
    if mode == "services" {
        serve_cargo_lambda(&url, &ddb, started, invoke_port).await;
        return;
    }
    let mut functions = HashMap::new();
    for name in ["audit-notification", "config-sync", "audit-sweeper"] {
        let level = if mode == "up" { "info" } else { "warn" };
        functions.insert(name.to_owned(), spawn_function(name, &common, level).await);
    }
    let functions = Arc::new(functions);
    let gateway = invoke_gateway(&host, invoke_port, functions.clone()).await;
    println!(
        "Ready in {:.1} s: emulator {url}, DynamoDB Local {ddb}, functions {gateway}",
        started.elapsed().as_secs_f64()
    );

    if mode == "up" {
        let history = debug_bin("audit-history");
        let history = history.strip_prefix(workspace()).unwrap_or(&history).display().to_string();
        println!("\nPoint the AWS CLI at it (DynamoDB Local keeps tables per access key and region):");
        println!("  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1");
        println!("  aws --endpoint-url {url} iot describe-account-audit-configuration");
        println!("  aws --endpoint-url {url} iot list-audit-suppressions   # or: curl -s {url}/_emulator/suppressions");
        println!("Apply the template's default setup, run its daily audit, ask the history (cargo-lambda: source .venv/bin/activate):");
        println!("  cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port {invoke_port} config-sync --data-file events/config-sync.cfn-create.json");
        println!("  curl -s -XPOST {url}/_emulator/clock/advance -d '{{\"toNextScheduledRun\":true}}'   # the daily audit starts");
        println!("  curl -s -XPOST {url}/_emulator/clock/advance -d '{{\"seconds\":60}}'   # and ends: its notification goes to audit-notification");
        println!("  curl -s {url}/_emulator/outbox   # digests, chat digests and notifications");
        println!("  aws --endpoint-url {ddb} dynamodb scan --table-name {TABLE} --select COUNT");
        println!("  AWS_ENDPOINT_URL_DYNAMODB={ddb} TABLE_NAME={TABLE} {history} runs --audit daily-fleet-audit");
        println!("The functions' log lines appear below, prefixed with their name (FUNCTION_LOG=debug for more).");
        println!("Ctrl-C stops everything.");
        let _ = tokio::signal::ctrl_c().await;
        println!("Stopping.");
        functions.values().for_each(Function::stop);
        return;
    }

    // 1. The template's default audit setup, through config-sync as CloudFormation would.
    step(1, "Apply the template's default audit setup through config-sync (CloudFormation Create)");
    let cfn = Recorder::start().await;
    let mut create: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join("events/config-sync.cfn-create.json")).unwrap())
            .unwrap();
    create["ResponseURL"] = json!(format!("{}/cloudformation-response", cfn.url));
    create["ResourceProperties"]["NotificationTarget"]["TopicArn"] = json!(audit_topic);
    create["ResourceProperties"]["StartOnDemandAudit"] = json!("false");
    functions["config-sync"]
        .api
        .invoke(create, Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| fail(format!("config-sync: {e}")));
    let response: Value =
        serde_json::from_str(&cfn.requests().first().map(|r| r.2.clone()).unwrap_or_default()).unwrap_or(Value::Null);
    println!("    CloudFormation response: {} — {}", response["Status"], response["Reason"]);
    println!("    enabled checks: {}", response["Data"]["EnabledChecks"].as_str().unwrap_or("").replace(',', ", "));
    println!("    scheduled audits: {}", response["Data"]["ScheduledAuditArns"]);
    if response["Status"] != "SUCCESS" {
        fail("config-sync did not succeed");
    }

    // 2 to 4. Two scheduled runs, the fleet drifting in between; before the second, a few
    // findings are muted as code (config-sync Update with Suppressions).
    let mut tasks: Vec<String> = Vec::new();
    for (n, what) in [
        (2, "Run the scheduled audit (advance the emulator's clock to its next run)"),
        (4, "Let the fleet drift and run the next scheduled audit"),
    ] {
        if n == 4 {
            step(
                3,
                "Mute five shared-certificate findings as code: config-sync Update with Suppressions (reason, expiry)",
            );
            let muted = mute_as_code(&c, &cfn, &functions["config-sync"], &audit_topic, &tasks[0]).await;
            println!("    CloudFormation response: {}; suppressions now: {muted}", cfn_status(&cfn));
        }
        step(n, what);
        let r = admin(&url, "POST", "/_emulator/clock/advance", json!({ "toNextScheduledRun": true })).await;
        let task =
            r["tasksEnded"][0].as_str().map(str::to_owned).unwrap_or_else(|| fail(format!("no task ended: {r}")));
        println!(
            "    task {task} ended at {}; notification → audit-notification …",
            r["nowIso"].as_str().unwrap_or("")
        );
        let digests = wait_for_digests(&url, &digest_topic, tasks.len() + 1).await;
        println!(
            "    digest published: {} ({:.1} s after the start)",
            digests[tasks.len()]["subject"].as_str().unwrap_or(""),
            started.elapsed().as_secs_f64()
        );
        tasks.push(task);
    }

    // 5. The digests and what is stored.
    step(5, "The digests (from the emulator's SNS outbox) and what is stored");
    for d in outbox(&url, &digest_topic).await {
        println!("\n--- Subject: {}\n{}", d["subject"].as_str().unwrap_or(""), d["message"].as_str().unwrap_or(""));
    }
    if let Some(chat) = outbox(&url, &chat_topic).await.last() {
        let message: Value = serde_json::from_str(chat["message"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
        println!(
            "\n--- Chat digest (AWS Chatbot custom notification, topic dd-audit-chat):\n{}",
            serde_json::to_string_pretty(&message).unwrap_or_default()
        );
    } else {
        fail("no chat digest was published to the chat topic");
    }
    let tasks_store = audit_shared::aws::dynamodb::DynamoTaskStore::new(c_ddb.clone(), TABLE.into(), 400);
    // The digest goes out first; each run's resolved episodes are closed right after it. Every
    // run is waited for before anything is counted: an episode being closed is for a moment
    // both open and resolved.
    let mut summaries = Vec::new();
    for t in &tasks {
        use audit_shared::ports::TaskStore;
        let mut s = None;
        for _ in 0..600 {
            s = tasks_store.load(t).await.ok().flatten();
            if s.as_ref().is_some_and(|s| s.lifecycle != audit_shared::summary::LifecycleState::Pending) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        summaries.push(s.unwrap_or_else(|| fail(format!("no summary stored for task {t}"))));
    }
    for s in &summaries {
        let (t, stream) = (&s.outline.task_id, s.outline.audit_stream());
        let episodes = system_tests::run_findings(&c_ddb, TABLE, "", s).await;
        let rebuilt: BTreeSet<(String, String)> = episodes.iter().cloned().collect();
        if rebuilt.len() != episodes.len() {
            fail(format!("task {t}: {} episodes for {} findings", episodes.len(), rebuilt.len()));
        }
        let listed = listed_findings(&c, t).await;
        let open = system_tests::count_open(&c_ddb, TABLE, &stream).await;
        println!(
            "stored: TASK#{t}: summary and digest; its {} findings rebuilt from the episodes of EP#{stream} \
             ({open} open now); ListAuditFindings: {}",
            rebuilt.len(),
            listed.len()
        );
        if rebuilt != listed {
            let extra: Vec<_> = rebuilt.difference(&listed).take(5).collect();
            let missing: Vec<_> = listed.difference(&rebuilt).take(5).collect();
            fail(format!("the rebuilt findings of {t} are not its own: extra {extra:?}, missing {missing:?}"));
        }
    }
    functions.values().for_each(Function::stop);
    println!("\nDone in {:.1} s. Everything started here stops now.", started.elapsed().as_secs_f64());
}

/// `services`: the banner of the README's "Invoke locally" path, then wait for Ctrl-C.
async fn serve_cargo_lambda(url: &str, ddb: &str, started: Instant, invoke_port: u16) {
    println!(
        "Ready in {:.1} s: emulator {url}, DynamoDB Local {ddb}, table {TABLE}, topics dd-audit-notifications \
         (→ audit-notification), dd-audit-digest, dd-audit-chat, queue continuation (→ audit-notification)",
        started.elapsed().as_secs_f64()
    );
    println!("\nIn another terminal (events/local.env names what was just created):");
    println!("  source .venv/bin/activate   # cargo-lambda, from `make tools`");
    println!("  cargo lambda watch --invoke-port {invoke_port} --env-file events/local.env");
    println!("Then, in a third:");
    println!(
        "  cargo lambda invoke --invoke-port {invoke_port} audit-notification --data-file events/audit-notification.scheduled-audit-completed.json"
    );
    println!("  curl -s {url}/_emulator/outbox   # the digests");
    println!("  curl -s {url}/_emulator/cloudformation-responses   # config-sync's answers to CloudFormation");
    println!("  curl -s {url}/_emulator/queues/continuation   # the continuation queue, delayed messages too");
    println!(
        "The emulator delivers audit notifications and the continuation queue to {invoke_port}. Ctrl-C stops it all."
    );
    let _ = tokio::signal::ctrl_c().await;
    println!("Stopping.");
}

/// The status of the last answer CloudFormation got.
fn cfn_status(cfn: &Recorder) -> String {
    let last: Value =
        serde_json::from_str(&cfn.requests().last().map(|r| r.2.clone()).unwrap_or_default()).unwrap_or(Value::Null);
    format!("{} {}", last["Status"], last["Reason"])
}

/// Sends config-sync the CloudFormation Update that adds five suppressions (expiring in five
/// days) of `task`'s first shared-certificate findings; returns how many suppressions there are.
async fn mute_as_code(
    c: &audit_notification::Clients,
    cfn: &Recorder,
    config_sync: &Function,
    audit_topic: &str,
    task: &str,
) -> usize {
    let check = "DEVICE_CERTIFICATE_SHARED_CHECK";
    let found = c.iot.list_audit_findings().task_id(task).check_name(check).max_results(5).send().await;
    let found = found.unwrap_or_else(|e| fail(format!("ListAuditFindings: {e}")));
    let expires = (chrono::Utc::now() + chrono::Duration::days(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let entries: Vec<Value> = found
        .findings()
        .iter()
        .filter_map(|f| f.non_compliant_resource()?.resource_identifier()?.device_certificate_id())
        .map(|id| {
            json!({ "Check": check, "Resource": { "deviceCertificateId": id },
                    "Reason": "Lab rack 3 shares a test certificate until the re-flash (SEC-142)", "Expires": expires })
        })
        .collect();
    // The template's setup as step 1 applied it, plus the Suppressions property.
    let mut update: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join("events/config-sync.cfn-create.json")).unwrap())
            .unwrap();
    let created: Value =
        serde_json::from_str(&cfn.requests().first().map(|r| r.2.clone()).unwrap_or_default()).unwrap_or(Value::Null);
    update["RequestType"] = json!("Update");
    update["RequestId"] = json!(format!("{}-mute", update["RequestId"].as_str().unwrap_or("demo")));
    update["ResponseURL"] = json!(format!("{}/cloudformation-response", cfn.url));
    update["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    update["ResourceProperties"]["NotificationTarget"]["TopicArn"] = json!(audit_topic);
    update["ResourceProperties"]["StartOnDemandAudit"] = json!("false");
    update["OldResourceProperties"] = update["ResourceProperties"].clone();
    update["ResourceProperties"]["Suppressions"] = json!(entries);
    config_sync
        .api
        .invoke(update, Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| fail(format!("config-sync: {e}")));
    let listed =
        c.iot.list_audit_suppressions().send().await.unwrap_or_else(|e| fail(format!("ListAuditSuppressions: {e}")));
    listed.suppressions().len()
}

/// Every finding ListAuditFindings returns for `task`, as (check, resource key).
async fn listed_findings(c: &audit_notification::Clients, task: &str) -> BTreeSet<(String, String)> {
    let pages = c.iot.list_audit_findings().task_id(task).max_results(250).into_paginator().items().send();
    let all = pages.collect::<Result<Vec<_>, _>>().await.unwrap_or_else(|e| fail(format!("ListAuditFindings: {e}")));
    all.iter()
        .map(|f| {
            let k = audit_shared::aws::iot::to_finding(task, f).key();
            (k.check_name, k.resource_key)
        })
        .collect()
}
