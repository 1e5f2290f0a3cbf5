//! Every file in `events/` fed to its function against the local stack (emulator + DynamoDB
//! Local): the in-process handlers for every event, and the real compiled `audit-notification`
//! bootstrap behind a Lambda Runtime API for its events.

use audit_shared::aws::dynamodb::DynamoSetupStore;
use audit_shared::aws::iot::{IotAuditReader, IotAuditSetup};
use audit_shared::aws::sns::SnsDigestPublisher;
use audit_shared::aws::sqs::SqsContinuationQueue;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use system_tests::runtime_api::RuntimeApi;
use system_tests::{clients, dynamodb_endpoint, unique, workspace, Recorder};

fn events() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(workspace().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.file_name().unwrap() != "env.json")
        .map(|p: PathBuf| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, v)
        })
        .collect();
    // CloudFormation requests in lifecycle order.
    out.sort_by_key(|(n, _)| (n.contains("cfn-delete"), n.contains("cfn-update"), n.clone()));
    out
}

struct Local {
    _emu: device_defender_emulator::Running,
    url: String,
    table: String,
    digest: String,
    queue: String,
}

async fn local() -> (Local, audit_notification::Clients) {
    let emu =
        device_defender_emulator::start(device_defender_emulator::Options::from_args(&[]).unwrap()).await.unwrap();
    let url = emu.url();
    let c = clients(&url, 3).await;
    let table = unique("events");
    audit_shared::aws::dynamodb::create_table(&c.dynamodb, &table).await.unwrap();
    let digest = c.sns.create_topic().name("digest").send().await.unwrap().topic_arn.unwrap();
    let queue = c.sqs.create_queue().queue_name("continuation").send().await.unwrap().queue_url.unwrap();
    (Local { _emu: emu, url, table, digest, queue }, c)
}

#[tokio::test]
async fn every_sample_event_runs_through_its_handler() {
    let (l, c) = local().await;
    let env = [
        ("TABLE_NAME", l.table.as_str()),
        ("DIGEST_TOPIC_ARN", l.digest.as_str()),
        ("CONTINUATION_QUEUE_URL", l.queue.as_str()),
    ];
    let config = audit_notification::config::Config::from_lookup(|k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    })
    .unwrap();
    let (hub, _meter) = audit_notification::build(
        audit_notification::Clients {
            iot: c.iot.clone(),
            dynamodb: c.dynamodb.clone(),
            sns: c.sns.clone(),
            sqs: c.sqs.clone(),
        },
        &system_tests::sdk(3).await,
        config,
    );
    let cfn = Recorder::start().await;
    let syncer = Arc::new(config_sync::Syncer {
        api: IotAuditSetup::new(c.iot.clone()),
        store: DynamoSetupStore::new(c.dynamodb.clone(), l.table.clone(), 400),
        publisher: SnsDigestPublisher::new(c.sns.clone(), l.digest.clone()),
        config: system_tests::sync_config(&l.table, &l.digest, false),
    });
    let responder = config_sync::Responder::new(4).expect("CA certificates load");
    let mut ran = 0;
    for (name, mut event) in events() {
        if name.starts_with("audit-notification.") {
            let out = audit_notification::handler::handle(&hub, event, "events", Duration::from_secs(300)).await;
            let out = out.unwrap_or_else(|e| panic!("{name}: {e}"));
            if name.contains("continuation") {
                assert_eq!(out, json!({ "batchItemFailures": [] }), "{name}");
            }
        } else if name.starts_with("audit-sweeper.") {
            let reader = IotAuditReader::new(c.iot.clone());
            let store = audit_shared::aws::dynamodb::DynamoTaskStore::new(c.dynamodb.clone(), l.table.clone(), 400);
            let queue = SqsContinuationQueue::new(c.sqs.clone(), l.queue.clone());
            audit_sweeper::sweep(&reader, &store, &queue, 72).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.starts_with("config-sync.") {
            let is_cfn = event.get("ResponseURL").is_some();
            if is_cfn {
                let id = event["RequestId"].as_str().unwrap().to_owned();
                event["ResponseURL"] = json!(format!("{}/cfn/{id}", cfn.url));
            }
            let out = config_sync::handler::handle(syncer.clone(), &responder, event, Duration::from_secs(60))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            if is_cfn {
                assert_eq!(out["Status"], "SUCCESS", "{name}: {out}");
            }
        } else if name.starts_with("org-rollup.") {
            let env = [("TABLE_NAME", l.table.clone()), ("DIGEST_TOPIC_ARN", l.digest.clone())];
            let config =
                org_rollup::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
            let home = config.home.clone();
            let store = audit_shared::aws::dynamodb::DynamoRollupStore::new(
                c.dynamodb.clone(),
                l.table.clone(),
                400,
                home.clone(),
            );
            let members =
                audit_shared::aws::dynamodb::DynamoMemberStore::new(c.dynamodb.clone(), l.table.clone(), store.meter());
            let publisher = SnsDigestPublisher::new(c.sns.clone(), l.digest.clone());
            let sdk = system_tests::sdk(3).await.into_builder().endpoint_url(&l.url).build();
            let probe = audit_shared::aws::member_access::MemberAccess::new(
                aws_sdk_iot::Config::new(&sdk),
                sdk,
                home,
                None,
                "aws".into(),
            );
            let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
            // What the template's schedule sends: the roll-up is made for its scheduledTime.
            let now = org_rollup::rollup_time(&event, clock);
            assert_eq!(now, 1_795_503_600_000, "{name}: made for the event's scheduledTime");
            let ports = org_rollup::RollupPorts {
                members: &members,
                store: &store,
                publisher: &publisher,
                probe: &probe,
                organization: None::<&audit_shared::aws::organizations::OrganizationsDirectory>,
            };
            let r = org_rollup::roll_up(ports, &config, now).await;
            let r = r.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!r.members.is_empty(), "{name}: the hub's own account-region reported");
        } else {
            panic!("{name}: no handler for this event file (name it <function>.<case>.json)");
        }
        ran += 1;
    }
    assert!(ran >= 10, "ran {ran} events");
    assert_eq!(cfn.requests().len(), 3, "one response per CloudFormation request");
    let digests =
        system_tests::admin(&l.url, "GET", &format!("/_emulator/outbox?topicArn={}", l.digest), Value::Null).await;
    assert!(!digests["messages"].as_array().unwrap().is_empty(), "the notification events produced digests");
}

/// The real `audit-notification` binary (built by `cargo test`/`make test` into target/debug)
/// run as Lambda runs it, with the same environment variables the template sets.
#[tokio::test]
async fn the_compiled_bootstrap_handles_the_notification_events() {
    let bin = system_tests::debug_bin("audit-notification");
    assert!(bin.exists(), "{} is missing: build the workspace first (make test does)", bin.display());
    let (l, _c) = local().await;
    let api = RuntimeApi::start().await;
    let env = [
        ("AWS_ENDPOINT_URL_IOT", l.url.clone()),
        ("AWS_ENDPOINT_URL_SNS", l.url.clone()),
        ("AWS_ENDPOINT_URL_SQS", l.url.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint()),
        ("TABLE_NAME", l.table.clone()),
        ("DIGEST_TOPIC_ARN", l.digest.clone()),
        ("CONTINUATION_QUEUE_URL", l.queue.clone()),
    ];
    let mut child = system_tests::spawn_bootstrap(&bin, api.addr, &env);
    for (name, event) in events().into_iter().filter(|(n, _)| n.starts_with("audit-notification.")) {
        let out = api.invoke(event, Duration::from_secs(120)).await;
        assert!(out.is_ok(), "{name}: {out:?}");
    }
    let _ = child.kill();
    let _ = child.wait();
    let digests =
        system_tests::admin(&l.url, "GET", &format!("/_emulator/outbox?topicArn={}", l.digest), Value::Null).await;
    assert_eq!(
        digests["messages"].as_array().unwrap().len(),
        3,
        "scheduled, on-demand and failed tasks each get a digest"
    );
}

/// The real `config-sync` binary started with a broken environment (a value out of range, the
/// table missing): it does not stop at start-up but answers the CloudFormation request FAILED,
/// naming the variable, so the stack is not left waiting for the custom resource's timeout.
#[tokio::test]
async fn config_sync_answers_cloudformation_even_when_its_environment_is_broken() {
    let bin = system_tests::debug_bin("config-sync");
    assert!(bin.exists(), "{} is missing: build the workspace first (make test does)", bin.display());
    let cfn = Recorder::start().await;
    let (_, create) = events().into_iter().find(|(n, _)| n == "config-sync.cfn-create.json").expect("sample event");
    for (env, named) in [
        (vec![("TABLE_NAME", "t"), ("DIGEST_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:d")], "RETENTION_DAYS"),
        (vec![("DIGEST_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:d")], "TABLE_NAME"),
    ] {
        let mut env: Vec<(&str, String)> = env.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
        if named == "RETENTION_DAYS" {
            env.push(("RETENTION_DAYS", "ninety".into()));
        }
        let api = RuntimeApi::start().await;
        let mut child = system_tests::spawn_bootstrap(&bin, api.addr, &env);
        let mut event = create.clone();
        event["ResponseURL"] = json!(format!("{}/cfn/{named}", cfn.url));
        let out = api.invoke(event, Duration::from_secs(60)).await;
        let _ = child.kill();
        let _ = child.wait();
        let out = out.unwrap_or_else(|e| panic!("{named}: the invocation is answered: {e:?}"));
        assert_eq!(out["Status"], "FAILED", "{named}: {out}");
        let answered: Vec<_> = cfn.requests().into_iter().filter(|(_, p, _)| p.ends_with(named)).collect();
        assert_eq!(answered.len(), 1, "{named}: one response");
        let body: Value = serde_json::from_str(&answered[0].2).unwrap();
        assert_eq!(body["Status"], "FAILED");
        let reason = body["Reason"].as_str().unwrap();
        assert!(reason.contains("config-sync cannot start") && reason.contains(named), "{reason}");
    }
}
