//! audit-notification end to end: the handler with its real adapters against the emulator
//! (IoT, SNS, SQS) and DynamoDB Local.

use audit_notification::handler::handle;
use audit_shared::aws::iot::to_finding;
use audit_shared::ports::AuditReader;
use audit_shared::summary::{DigestState, IngestState, LifecycleState};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use system_tests::stack::{Stack, CHECKS};

#[tokio::test]
async fn ingest_is_exact_and_duplicates_send_one_digest() {
    let stack = Stack::new(&[], &[]).await;
    stack.configure(&CHECKS).await;
    let task = stack.run_on_demand(&CHECKS).await;
    let message = stack.notification(&task).await;
    stack.deliver(std::slice::from_ref(&message)).await.unwrap();
    stack.assert_exact(&task).await;
    assert!(stack.emulator_findings(&task).await.len() > 500, "a task of several pages");
    // Sequential and concurrent duplicates.
    stack.deliver(std::slice::from_ref(&message)).await.unwrap();
    let (a, b) =
        tokio::join!(stack.deliver(std::slice::from_ref(&message)), stack.deliver(std::slice::from_ref(&message)));
    a.unwrap();
    b.unwrap();
    stack.drain().await;
    stack.assert_exact(&task).await;
    let digests = stack.digests().await;
    assert_eq!(digests.len(), 1, "one digest");
    let s = stack.summary(&task).await;
    assert_eq!(s.digest, DigestState::Sent);
    assert_eq!(s.digest_message_id.as_deref(), digests[0]["messageId"].as_str());
    assert!(digests[0]["subject"].as_str().unwrap().chars().count() <= 100);
    assert!(digests[0]["message"].as_str().unwrap().contains("New findings"));
    assert_eq!(digests[0]["messageAttributes"]["audit"]["StringValue"], "on-demand audit");
    // The chat digest: once, in AWS Chatbot's custom notification schema, recorded with the digest.
    let chats = stack.published(&stack.chat_topic).await;
    assert_eq!(chats.len(), 1, "one chat digest");
    let chat: Value = serde_json::from_str(chats[0]["message"].as_str().unwrap()).unwrap();
    assert_eq!((chat["version"].as_str(), chat["source"].as_str()), (Some("1.0"), Some("custom")));
    assert_eq!(chat["content"]["title"], digests[0]["subject"]);
    assert_eq!(chat["metadata"]["relatedResources"][0], task.as_str());
    assert_eq!(stack.stored_digest(&task).await["chat"]["sent"], chats[0]["messageId"]);
}

#[tokio::test]
async fn a_failed_chat_digest_is_recorded_and_never_costs_the_mail_a_duplicate() {
    let gone = "arn:aws:sns:us-east-1:123456789012:no-such-chat-topic";
    let stack = Stack::new(&[], &[("CHAT_TOPIC_ARN", gone)]).await;
    stack.configure(&CHECKS).await;
    let task = stack.run_on_demand(&CHECKS).await;
    let message = stack.notification(&task).await;
    stack.deliver(std::slice::from_ref(&message)).await.unwrap();
    stack.deliver(std::slice::from_ref(&message)).await.unwrap();
    assert_eq!(stack.digests().await.len(), 1, "the mail digest, once");
    assert_eq!(stack.summary(&task).await.digest, DigestState::Sent);
    let failed = stack.stored_digest(&task).await["chat"]["failed"].as_str().unwrap_or_default().to_owned();
    assert!(failed.contains("Publish"), "the chat failure is recorded: {failed}");
}

#[tokio::test]
async fn a_failed_sns_batch_counts_and_names_every_failed_task() {
    // A table that does not exist: every record fails after the SDK's retries.
    let stack = Stack::new(&[], &[("TABLE_NAME", "no-such-table")]).await;
    stack.configure(&CHECKS).await;
    let a = stack.run_on_demand(&CHECKS[..1]).await;
    let b = stack.run_on_demand(&CHECKS[1..2]).await;
    let messages = [stack.notification(&a).await, stack.notification(&b).await];
    let err = stack.deliver(&messages).await.unwrap_err();
    assert!(err.starts_with("2 of 2 records failed"), "{err}");
    assert!(err.contains(&format!("(tasks {a}, {b})")), "{err}");
}

#[tokio::test]
async fn concurrent_first_deliveries_store_exactly_once() {
    let stack = Stack::new(&[], &[]).await;
    stack.configure(&CHECKS).await;
    let task = stack.run_on_demand(&CHECKS).await;
    let message = stack.notification(&task).await;
    let (a, b) =
        tokio::join!(stack.deliver(std::slice::from_ref(&message)), stack.deliver(std::slice::from_ref(&message)));
    a.unwrap();
    b.unwrap();
    stack.drain().await;
    stack.assert_exact(&task).await;
    assert_eq!(stack.digests().await.len(), 1);
}

#[tokio::test]
async fn crash_mid_ingest_then_redelivery_is_exact() {
    let stack = Stack::new(&[], &[("FINDINGS_RATE_LIMIT", "40")]).await;
    stack.configure(&CHECKS).await;
    let task = stack.run_on_demand(&CHECKS).await;
    let message = stack.notification(&task).await;
    // The invocation dies as soon as some findings are stored (its future is dropped
    // mid-ingest, the lease still held).
    tokio::select! {
        r = stack.deliver(std::slice::from_ref(&message)) => panic!("finished before the crash: {r:?}"),
        _ = async { while stack.stored_findings(&task).await.is_empty() { tokio::time::sleep(Duration::from_millis(5)).await } } => {}
    }
    let partial = stack.stored_findings(&task).await.len();
    assert!(partial > 0, "some findings were stored before the crash");
    // Lambda redelivers: the lease is still held, so the task is looked at again via the queue.
    stack.deliver(std::slice::from_ref(&message)).await.unwrap();
    stack.drain().await;
    stack.assert_exact(&task).await;
    assert_eq!(stack.digests().await.len(), 1);
    assert!(stack.summary(&task).await.invocations >= 2);
}

#[tokio::test]
async fn throttling_and_5xx_injected_still_exact_with_one_digest() {
    let stack = Stack::new(&["--throttle-share", "0.3", "--error-share", "0.05"], &[]).await;
    stack.configure(&CHECKS).await;
    let task = stack.run_on_demand(&CHECKS).await;
    let message = stack.notification(&task).await;
    // Lambda retries a failed SNS invocation; the queue retries failed continuations.
    let mut attempts = 0;
    while stack.deliver(std::slice::from_ref(&message)).await.is_err() {
        attempts += 1;
        assert!(attempts < 10, "retries converge");
    }
    stack.drain().await;
    stack.assert_exact(&task).await;
    assert_eq!(stack.digests().await.len(), 1);
    let throttled = stack.ingestor().await.ports.reader.throttled_attempts();
    assert!(throttled > 0, "throttled attempts are counted, retried ones too (the Throttles metric)");
}

#[tokio::test]
async fn tiny_deadline_continues_across_invocations() {
    let stack = Stack::new(&[], &[("MAX_SLICE_MS", "30"), ("FINDINGS_RATE_LIMIT", "50")]).await;
    stack.configure(&CHECKS).await;
    let task = stack.run_on_demand(&CHECKS).await;
    let message = stack.notification(&task).await;
    stack.deliver(std::slice::from_ref(&message)).await.unwrap();
    assert_eq!(stack.summary(&task).await.ingest, IngestState::Ingesting, "the first slice could not finish");
    let continued = stack.drain().await;
    assert!(continued >= 2, "several continuation invocations: {continued}");
    stack.assert_exact(&task).await;
    assert_eq!(stack.digests().await.len(), 1);
    assert!(stack.summary(&task).await.invocations as usize > continued / 2);
}

#[tokio::test]
async fn a_drifted_run_cut_by_a_crash_and_many_continuations_reports_what_an_uninterrupted_one_would() {
    let stack = Stack::new(&["--drift-share", "0.3"], &[("MAX_SLICE_MS", "300"), ("FINDINGS_RATE_LIMIT", "20")]).await;
    stack.configure(&CHECKS).await;
    let first = stack.run_on_demand(&CHECKS).await;
    stack.deliver(&[stack.notification(&first).await]).await.unwrap();
    stack.drain().await;
    let second = stack.run_on_demand(&CHECKS).await;
    let message = stack.notification(&second).await;
    // The first slice dies once some pages of the second run are written.
    tokio::select! {
        r = stack.deliver(std::slice::from_ref(&message)) => panic!("finished before the crash: {r:?}"),
        _ = async {
            loop {
                let stored = stack.try_summary(&second).await.map_or(0, |s| s.progress.values().map(|p| p.stored).sum::<i64>());
                if stored > 0 { break }
                tokio::time::sleep(Duration::from_millis(2)).await
            }
        } => {}
    }
    stack.deliver(std::slice::from_ref(&message)).await.unwrap();
    assert!(stack.drain().await >= 1, "continued after the crash");
    let (a, b) = (stack.emulator_findings(&first).await, stack.emulator_findings(&second).await);
    let d = stack.stored_digest(&second).await;
    assert_eq!(d["newCount"], json!(b.difference(&a).count()));
    assert_eq!(d["resolvedCount"], json!(a.difference(&b).count()));
    assert_eq!(d["persistingCount"], json!(a.intersection(&b).count()));
    assert_eq!(stack.digests().await.len(), 2, "one digest per run");
    stack.assert_exact(&first).await;
    stack.assert_exact(&second).await;
    assert_eq!(system_tests::count_open(&stack.ddb, &stack.table, "~on-demand").await as usize, b.len());
    assert_eq!(stack.summary(&second).await.lifecycle, LifecycleState::Applied);
}

#[tokio::test]
async fn second_scheduled_run_reports_new_and_resolved_by_check_and_resource() {
    let stack = Stack::new(&["--drift-share", "0.3"], &[]).await;
    stack.configure(&CHECKS).await;
    stack.schedule_daily("daily-fleet").await;
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let task = stack.ingest_next_scheduled_run().await;
        tasks.push(task);
    }
    let first = stack.emulator_findings(&tasks[0]).await;
    let second = stack.emulator_findings(&tasks[1]).await;
    let new: BTreeSet<_> = second.difference(&first).cloned().collect();
    let resolved: BTreeSet<_> = first.difference(&second).cloned().collect();
    assert!(!new.is_empty() && !resolved.is_empty(), "the fleet drifted");
    let digests = stack.digests().await;
    assert_eq!(digests.len(), 2);
    let stored = stack
        .ddb
        .get_item()
        .table_name(&stack.table)
        .key("pk", AttributeValue::S(format!("TASK#{}", tasks[1])))
        .key("sk", AttributeValue::S("DIGEST".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("digest stored next to the summary");
    let d: audit_shared::digest::Digest = serde_dynamo::from_item(stored).unwrap();
    assert_eq!(d.previous_task_id.as_deref(), Some(tasks[0].as_str()));
    assert_eq!(d.new_count as usize, new.len());
    assert_eq!(d.resolved_count as usize, resolved.len());
    assert_eq!(d.persisting_count as usize, second.intersection(&first).count());
    if new.len() <= audit_shared::digest::MAX_LISTED {
        let listed: BTreeSet<_> = d.new.iter().map(|f| (f.check_name.clone(), f.resource_key.clone())).collect();
        assert_eq!(listed, new);
    }
    if resolved.len() <= audit_shared::digest::MAX_LISTED {
        let listed: BTreeSet<_> = d.resolved.iter().map(|f| (f.check_name.clone(), f.resource_key.clone())).collect();
        assert_eq!(listed, resolved);
    }
    assert!(d.subject.starts_with("daily-fleet:"), "{}", d.subject);
    assert!(digests[1]["message"].as_str().unwrap().contains(&format!("Resolved findings ({})", resolved.len())));
    // Per-check change since the previous run.
    for c in &d.checks {
        let before = first.iter().filter(|(k, _)| *k == c.check_name).count() as i64;
        assert_eq!(c.change, Some(c.non_compliant - before), "{}", c.check_name);
    }
}

/// Severity of every finding of a task, by (check, resource key).
async fn findings_with_severity(stack: &Stack, task_id: &str) -> BTreeMap<(String, String), String> {
    let all = stack.iot.list_audit_findings().task_id(task_id).max_results(250).into_paginator().items().send();
    let all: Vec<_> = all.collect::<Result<Vec<_>, _>>().await.unwrap();
    all.iter()
        .map(|f| {
            let f = to_finding(task_id, f);
            ((f.check_name.to_string(), f.resource_key()), f.severity.to_string())
        })
        .collect()
}

fn nearest_rank(sorted: &[i64], p: f64) -> i64 {
    let r = (p * sorted.len() as f64).ceil() as usize;
    sorted[r.clamp(1, sorted.len()) - 1]
}

#[tokio::test]
async fn drifting_daily_runs_report_ages_overdue_came_back_and_time_to_fix_exactly() {
    // Short deadlines so that a week of daily runs crosses them.
    let stack = Stack::new(
        &["--drift-share", "0.3", "--fleet-devices", "600"],
        &[("OVERDUE_DAYS", "CRITICAL=2,HIGH=3,MEDIUM=4,LOW=5")],
    )
    .await;
    stack.configure(&CHECKS).await;
    stack.schedule_daily("daily-fleet").await;
    let (mut tasks, mut starts, mut sets) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        let task = stack.ingest_next_scheduled_run().await;
        starts.push(stack.summary(&task).await.outline.task_start_time);
        sets.push(findings_with_severity(&stack, &task).await);
        tasks.push(task);
    }
    // The lifecycle, computed here from the emulator's findings alone.
    let k = sets.len() - 1;
    let (now, last, before) = (starts[k], &sets[k], &sets[k - 1]);
    // First seen of the episode open at run i: walk back while the finding was present.
    let first_seen = |key: &(String, String), i: usize| {
        let mut j = i;
        while j > 0 && sets[j - 1].contains_key(key) {
            j -= 1;
        }
        starts[j]
    };
    let day = 86_400_000i64;
    let deadline = |sev: &str| match sev {
        "CRITICAL" => 2,
        "HIGH" => 3,
        "MEDIUM" => 4,
        _ => 5,
    } * day;
    let mut open_by_age: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let mut overdue: BTreeMap<String, u64> = BTreeMap::new();
    let (mut new, mut came_back) = (0u64, BTreeMap::new());
    for (key, sev) in last {
        let age = now - first_seen(key, k);
        let bucket = [7, 30, 90].iter().position(|d| age < d * day).unwrap_or(3);
        open_by_age.entry(sev.clone()).or_default()[bucket] += 1;
        if age > deadline(sev) {
            *overdue.entry(sev.clone()).or_default() += 1;
        }
        if !before.contains_key(key) {
            // Came back: present in an earlier run; fixed at the start of the run after its last.
            match (0..k - 1).rev().find(|&i| sets[i].contains_key(key)) {
                Some(i) => {
                    came_back.insert(key.clone(), starts[i + 1]);
                }
                None => new += 1,
            }
        }
    }
    let mut fix_ages: Vec<i64> =
        before.keys().filter(|key| !last.contains_key(*key)).map(|key| now - first_seen(key, k - 1)).collect();
    fix_ages.sort_unstable();
    assert!(!came_back.is_empty(), "the fleet is small enough for fixed problems to come back");
    assert!(overdue.values().sum::<u64>() > 0 && !fix_ages.is_empty());

    let d: audit_shared::digest::Digest = serde_dynamo::from_item(
        stack
            .ddb
            .get_item()
            .table_name(&stack.table)
            .key("pk", AttributeValue::S(format!("TASK#{}", tasks[k])))
            .key("sk", AttributeValue::S("DIGEST".into()))
            .send()
            .await
            .unwrap()
            .item
            .expect("digest stored"),
    )
    .unwrap();
    let l = d.lifecycle.as_ref().expect("the run advanced its stream");
    assert_eq!(d.new_count, new, "new excludes the findings that came back");
    assert_eq!(d.resolved_count as usize, fix_ages.len());
    assert_eq!(l.came_back_count as usize, came_back.len());
    for a in &l.came_back {
        let key = (a.finding.check_name.clone(), a.finding.resource_key.clone());
        assert_eq!(a.previous_resolved, Some(came_back[&key]), "fixed when {key:?} was last resolved");
        assert_eq!(a.first_seen, now);
    }
    assert_eq!(l.open_by_age, open_by_age);
    assert_eq!(
        l.overdue.iter().filter(|(_, n)| **n > 0).map(|(s, n)| (s.clone(), *n)).collect::<BTreeMap<_, _>>(),
        overdue
    );
    let t = l.time_to_fix_all.expect("findings were fixed");
    assert_eq!(
        (t.count as usize, t.median_ms, t.p90_ms),
        (fix_ages.len(), nearest_rank(&fix_ages, 0.5), nearest_rank(&fix_ages, 0.9))
    );
    // The trend: open findings per severity over the seven runs, oldest first.
    assert_eq!(l.trend_runs, tasks);
    for row in &l.trend {
        let expected: Vec<u64> =
            sets.iter().map(|s| s.values().filter(|v| **v == row.severity).count() as u64).collect();
        assert_eq!(row.open, expected, "{}", row.severity);
    }
    // Overdue CRITICALs lead the subject and are in the message attributes.
    let published = stack.digests().await;
    let last_digest = &published[k];
    let critical = overdue.get("CRITICAL").copied().unwrap_or(0);
    assert_eq!(last_digest["messageAttributes"]["overdueCRITICAL"]["StringValue"], json!(critical.to_string()));
    if critical > 0 {
        assert!(d.subject.starts_with(&format!("daily-fleet: {critical} overdue CRITICAL")), "{}", d.subject);
    }
    // History costs O(changes): the open episodes are exactly the last run's findings.
    assert_eq!(system_tests::count_open(&stack.ddb, &stack.table, "daily-fleet").await as usize, last.len());
    for (i, t) in tasks.iter().enumerate() {
        let rebuilt: BTreeSet<_> = stack.stored_findings(t).await.into_iter().collect();
        assert_eq!(rebuilt, sets[i].keys().cloned().collect::<BTreeSet<_>>(), "run {i} rebuilt from episodes");
    }
}

#[tokio::test]
async fn failed_and_canceled_tasks_are_stored_without_findings() {
    let stack = Stack::new(&["--fail-check", "LOGGING_DISABLED_CHECK"], &[("ON_DEMAND_DIGEST", "true")]).await;
    stack.configure(&["LOGGING_DISABLED_CHECK", "DEVICE_CERTIFICATE_EXPIRING_CHECK"]).await;
    let failed = stack.run_on_demand(&["LOGGING_DISABLED_CHECK"]).await;
    let id = stack
        .iot
        .start_on_demand_audit_task()
        .target_check_names("DEVICE_CERTIFICATE_EXPIRING_CHECK")
        .send()
        .await
        .unwrap()
        .task_id
        .unwrap();
    stack.iot.cancel_audit_task().task_id(&id).send().await.unwrap();
    let messages = vec![stack.notification(&failed).await, stack.notification(&id).await];
    stack.deliver(&messages).await.unwrap();
    let f = stack.summary(&failed).await;
    assert_eq!(f.outline.task_status.as_str(), "FAILED");
    assert_eq!(f.outline.checks[0].error_code.as_deref(), Some("INSUFFICIENT_PERMISSIONS"));
    assert_eq!(f.ingest, IngestState::Complete);
    assert_eq!(f.digest, DigestState::Sent, "a failed audit is worth a digest: it says what to do");
    let c = stack.summary(&id).await;
    assert_eq!(c.outline.task_status.as_str(), "CANCELED");
    assert_eq!(c.digest, DigestState::NotWanted);
    let digests = stack.digests().await;
    assert_eq!(digests.len(), 1);
    assert!(digests[0]["subject"].as_str().unwrap().starts_with("Audit FAILED"));
    assert!(digests[0]["message"].as_str().unwrap().contains("audit role"));
}

#[tokio::test]
async fn malformed_and_foreign_events_are_dropped_without_losing_good_records() {
    let stack = Stack::new(&[], &[]).await;
    stack.configure(&CHECKS).await;
    let task = stack.run_on_demand(&["DEVICE_CERTIFICATE_EXPIRING_CHECK"]).await;
    let good = stack.notification(&task).await;
    let mut seconds: Value = serde_json::from_str(&good).unwrap();
    let ms = seconds["taskStartTime"].as_i64().unwrap();
    seconds["taskStartTime"] = json!(ms / 1000);
    let mut unknown_check: Value = serde_json::from_str(&good).unwrap();
    unknown_check["auditDetails"].as_array_mut().unwrap().push(json!({
        "checkName": "QUANTUM_KEY_CHECK", "checkRunStatus": "COMPLETED_COMPLIANT", "nonCompliantResourcesCount": 0, "totalResourcesCount": 5 }));
    unknown_check["totalChecksCount"] = json!(2);
    let mut running: Value = serde_json::from_str(&good).unwrap();
    running["taskStatus"] = json!("IN_PROGRESS");
    let mut wrong_types: Value = serde_json::from_str(&good).unwrap();
    wrong_types["totalChecksCount"] = json!("two");
    let mut missing: Value = serde_json::from_str(&good).unwrap();
    missing.as_object_mut().unwrap().remove("taskId");

    // Each alone: dropped (Ok, nothing retried), or — the seconds case — read as milliseconds.
    for bad in [
        "not json".to_owned(),
        "[]".into(),
        r#"{"hello":"world"}"#.into(),
        running.to_string(),
        wrong_types.to_string(),
        missing.to_string(),
    ] {
        let r = stack.deliver(std::slice::from_ref(&bad)).await;
        assert_eq!(r, Ok(json!({})), "{bad}");
    }
    assert!(stack.stored_findings(&task).await.is_empty(), "nothing stored from bad records");
    // Foreign events: not SNS, an SNS record missing fields, an SQS record with a foreign body.
    assert_eq!(
        handle(&stack.hub, json!({"detail-type": "Scheduled Event"}), "r", Duration::from_secs(60)).await.unwrap(),
        json!({})
    );
    let broken = json!({ "Records": [{ "EventSource": "aws:sns", "Sns": { "Message": good } }] });
    assert_eq!(handle(&stack.hub, broken, "r", Duration::from_secs(60)).await.unwrap(), json!({}));
    let sqs = json!({ "Records": [{ "messageId": "m1", "body": "{\"foo\":1}", "eventSource": "aws:sqs" }] });
    assert_eq!(
        handle(&stack.hub, sqs, "r", Duration::from_secs(60)).await.unwrap(),
        json!({ "batchItemFailures": [] })
    );

    // Several records with bad ones among them: the good one (unknown check included) is ingested;
    // the seconds variant is the same task and is recognised as a duplicate.
    stack
        .deliver(&["not json".into(), unknown_check.to_string(), running.to_string(), seconds.to_string()])
        .await
        .unwrap();
    stack.assert_exact(&task).await;
    let s = stack.summary(&task).await;
    assert!(s.outline.checks.iter().any(|c| c.check_name.as_str() == "QUANTUM_KEY_CHECK"), "unknown checks are kept");
    assert_eq!(s.outline.task_start_time, ms);
    assert_eq!(stack.digests().await.len(), 1);
}

#[tokio::test]
async fn sweeper_recovers_a_lost_notification() {
    // The emulator's clock starts now here: the sweeper looks at a window ending at real now.
    let stack = Stack::new(&["--start-time", &now_rfc3339()], &[]).await;
    stack.configure(&CHECKS).await;
    let lost = stack.run_on_demand(&CHECKS).await;
    let delivered = stack.run_on_demand(&["DEVICE_CERTIFICATE_EXPIRING_CHECK"]).await;
    stack.deliver(&[stack.notification(&delivered).await]).await.unwrap();
    let reader = audit_shared::aws::iot::IotAuditReader::new(stack.clients.iot.clone());
    let store =
        audit_shared::aws::dynamodb::DynamoTaskStore::new(stack.clients.dynamodb.clone(), stack.table.clone(), 400);
    let queue = audit_shared::aws::sqs::SqsContinuationQueue::new(stack.clients.sqs.clone(), stack.queue_url.clone());
    let out = audit_sweeper::sweep(&reader, &store, &queue, 72).await.unwrap();
    assert_eq!(out["queued"], json!([lost.clone()]), "only the task never ingested");
    stack.drain().await;
    // The recovered run started before the delivered one, which was applied first for its one
    // check: the recovered run changes that check's history not at all (that would rewind it)
    // and applies its other checks; its summary and digest say which check and why.
    let s = stack.summary(&lost).await;
    assert_eq!((s.ingest, s.lifecycle, s.digest), (IngestState::Complete, LifecycleState::Applied, DigestState::Sent));
    assert_eq!(s.late_checks.keys().map(String::as_str).collect::<Vec<_>>(), ["DEVICE_CERTIFICATE_EXPIRING_CHECK"]);
    assert_eq!(s.late_checks["DEVICE_CERTIFICATE_EXPIRING_CHECK"].task_id, delivered);
    let d = stack.stored_digest(&lost).await;
    assert_eq!(d["notApplied"]["DEVICE_CERTIFICATE_EXPIRING_CHECK"]["taskId"], json!(delivered));
    let applied: BTreeSet<_> = stack
        .emulator_findings(&lost)
        .await
        .into_iter()
        .filter(|(c, _)| c != "DEVICE_CERTIFICATE_EXPIRING_CHECK")
        .collect();
    assert!(!applied.is_empty());
    assert_eq!(stack.stored_findings(&lost).await.into_iter().collect::<BTreeSet<_>>(), applied);
    assert_eq!(stack.digests().await.len(), 2);
    stack.assert_exact(&delivered).await;
    let again = audit_sweeper::sweep(&reader, &store, &queue, 72).await.unwrap();
    assert_eq!(again["queued"], json!([]));
}

fn now_rfc3339() -> String {
    (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn suppressed_findings_are_muted_in_the_digest_and_its_attributes() {
    let stack = Stack::new(&["--drift-share", "0", "--frozen-clock"], &[]).await;
    stack.configure(&CHECKS).await;
    let first = stack.run_on_demand(&CHECKS).await;
    stack.deliver(&[stack.notification(&first).await]).await.unwrap();
    // Mute two shared certificates (CRITICAL): one indefinitely, one for three days.
    let shared = "DEVICE_CERTIFICATE_SHARED_CHECK";
    let found = stack.iot.list_audit_findings().task_id(&first).check_name(shared).max_results(2).send().await.unwrap();
    let ids: Vec<_> = found
        .findings()
        .iter()
        .map(|f| f.non_compliant_resource().unwrap().resource_identifier().unwrap().clone())
        .collect();
    assert_eq!(ids.len(), 2);
    let start = aws_sdk_iot::primitives::DateTime::from_secs(1_768_435_200 + 3 * 86_400);
    for (i, id) in ids.iter().enumerate() {
        let req = stack
            .iot
            .create_audit_suppression()
            .check_name(shared)
            .resource_identifier(id.clone())
            .description("lab devices share a test certificate");
        let req = if i == 0 { req.suppress_indefinitely(true) } else { req.expiration_date(start) };
        req.send().await.expect("the SDK fills the idempotency token");
    }
    let second = stack.run_on_demand(&CHECKS).await;
    stack.deliver(&[stack.notification(&second).await]).await.unwrap();
    stack.assert_exact(&second).await;

    let digests = stack.digests().await;
    assert_eq!(digests.len(), 2);
    let (subject, body) = (digests[1]["subject"].as_str().unwrap(), digests[1]["message"].as_str().unwrap());
    assert!(subject.ends_with(", 2 muted"), "{subject}");
    assert!(body.contains("0 new, 0 resolved"), "muted findings are neither new nor resolved: {body}");
    assert!(
        body.contains(
            "Muted (suppressed in Device Defender; in none of the counts above): 2 (CRITICAL 2), by 2 suppressions"
        ),
        "{body}"
    );
    assert!(body.contains("Suppressions expiring within 7 days"), "{body}");
    assert!(body.contains("lab devices share a test certificate"), "{body}");
    // The open CRITICAL attribute is two lower than in the first digest: a pager never sees them.
    let critical =
        |d: &Value| d["messageAttributes"]["CRITICAL"]["StringValue"].as_str().unwrap().parse::<i64>().unwrap();
    assert_eq!(critical(&digests[1]), critical(&digests[0]) - 2);
    assert_eq!(digests[1]["messageAttributes"]["newCRITICAL"]["StringValue"], "0");
    let stored = stack.stored_digest(&second).await;
    assert_eq!(stored["mutedCount"], 2);
    assert_eq!(stored["suppressions"]["total"], 2);
}

#[tokio::test]
async fn the_benchmarks_fleet_drifted_once_is_rebuilt_exactly() {
    let checks = [
        "DEVICE_CERTIFICATE_EXPIRING_CHECK",
        "DEVICE_CERTIFICATE_AGE_CHECK",
        "DEVICE_CERTIFICATE_SHARED_CHECK",
        "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
    ];
    let stack = Stack::new(
        &["--fleet-devices", "694", "--noncompliant-share", "0.4", "--drift-share", "0.2", "--task-duration-secs", "1"],
        &[],
    )
    .await;
    stack.configure(&checks).await;
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let t = stack.run_on_demand(&checks).await;
        stack.deliver(&[stack.notification(&t).await]).await.unwrap();
        tasks.push(t);
    }
    for t in &tasks {
        let rebuilt: Vec<_> = stack.stored_findings(t).await;
        let expected = stack.emulator_findings(t).await;
        let set: BTreeSet<_> = rebuilt.iter().cloned().collect();
        let extra: Vec<_> = set.difference(&expected).collect();
        let missing: Vec<_> = expected.difference(&set).collect();
        assert!(
            extra.is_empty() && missing.is_empty() && rebuilt.len() == set.len(),
            "task {t}: extra {extra:?}, missing {missing:?}"
        );
    }
}
