//! The hub serving several member account-regions (issue #13), end to end: the emulator serves
//! the hub's account and members (each its own Device Defender, fleet and quota; STS hands the
//! hub credentials for the members' hub-access roles), and the audit-notification function
//! with its real adapters ingests them into one DynamoDB Local table.

use audit_shared::member::Member;
use audit_shared::ports::{AuditReader, MemberStore, ReaderLease};
use audit_shared::summary::{IngestState, TaskSummary};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use system_tests::stack::{schedule_daily, Stack, CHECKS};
use system_tests::{admin, iot_as, run_findings, sns_as};

const HOME: &str = "123456789012";
const MEMBER: &str = "444455556666";
const MEMBER_REGION: &str = "eu-west-1";
const ROLE_NAME: &str = "audit-hub-access";

/// A hub in the emulator's default account (us-east-1) and a member in eu-west-1 whose role
/// trusts the hub's account; `extra` adds emulator flags.
async fn org_stack(extra: &[&str], env: &[(&str, &str)]) -> Stack {
    let role = format!("arn:aws:iam::{MEMBER}:role/{ROLE_NAME}-{MEMBER_REGION}={HOME}");
    let key = format!("MEMBERKEY={MEMBER}");
    let mut args = vec!["--access-key", key.as_str(), "--role", role.as_str()];
    args.extend_from_slice(extra);
    let mut vars = vec![("MEMBER_ROLE_NAME", ROLE_NAME)];
    vars.extend_from_slice(env);
    Stack::new(&args, &vars).await
}

async fn enable(iot: &aws_sdk_iot::Client) {
    let mut req = iot.update_account_audit_configuration().role_arn("arn:aws:iam::444455556666:role/audit");
    for c in CHECKS {
        req = req.audit_check_configurations(
            c,
            aws_sdk_iot::types::AuditCheckConfiguration::builder().enabled(true).build(),
        );
    }
    req.send().await.expect("audit configured");
}

async fn start(iot: &aws_sdk_iot::Client) -> String {
    let ids = CHECKS.iter().map(|c| c.to_string()).collect();
    iot.start_on_demand_audit_task().set_target_check_names(Some(ids)).send().await.unwrap().task_id.unwrap()
}

/// A member's audit notification, with the topic it would come from.
async fn notification(stack: &Stack, member: &Member, task_id: &str) -> (String, String) {
    let path = format!("/_emulator/notifications/{task_id}?account={}&region={}", member.account_id, member.region);
    let message = admin(&stack.url, "GET", &path, Value::Null).await.to_string();
    (format!("arn:aws:sns:{}:{}:audit", member.region, member.account_id), message)
}

async fn summary(stack: &Stack, prefix: &str, task_id: &str) -> Option<TaskSummary> {
    let out = stack
        .ddb
        .get_item()
        .table_name(&stack.table)
        .key("pk", AttributeValue::S(format!("TASK#{prefix}{task_id}")))
        .key("sk", AttributeValue::S("SUMMARY".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item.map(|i| serde_dynamo::from_item(i).unwrap())
}

async fn emulator_findings(iot: &aws_sdk_iot::Client, task_id: &str) -> BTreeSet<(String, String)> {
    let all = iot.list_audit_findings().task_id(task_id).max_results(250).into_paginator().items().send();
    let all: Vec<_> = all.collect::<Result<Vec<_>, _>>().await.unwrap();
    all.iter()
        .map(|f| {
            let k = audit_shared::aws::iot::to_finding(task_id, f).key();
            (k.check_name, k.resource_key)
        })
        .collect()
}

/// What the table holds for a member's task, checked exact against the emulator.
async fn assert_stored_exactly(stack: &Stack, iot: &aws_sdk_iot::Client, member: &Member, task_id: &str) -> usize {
    let prefix = member.key_prefix(&Member::new(HOME, "us-east-1").unwrap());
    let s = summary(stack, &prefix, task_id).await.unwrap_or_else(|| panic!("{member}: task {task_id} stored"));
    assert_eq!(s.ingest, IngestState::Complete, "{member}");
    let expected = emulator_findings(iot, task_id).await;
    let stored = run_findings(&stack.ddb, &stack.table, &prefix, &s).await;
    assert_eq!(stored.len(), expected.len(), "{member}: no finding lost or doubled");
    assert!(stored.into_iter().collect::<BTreeSet<_>>() == expected, "{member}: stored findings are the emulator's");
    assert_eq!(s.progress.values().map(|p| p.stored).sum::<i64>() as usize, expected.len());
    expected.len()
}

async fn throttled(stack: &Stack, member: &Member) -> u64 {
    let path = format!("/_emulator/throttled?account={}&region={}", member.account_id, member.region);
    admin(&stack.url, "GET", &path, Value::Null).await["throttled"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_members_with_the_same_task_id_are_kept_apart() {
    let stack = org_stack(&[], &[]).await;
    let (home, member) = (Member::new(HOME, "us-east-1").unwrap(), Member::new(MEMBER, MEMBER_REGION).unwrap());
    let member_iot = iot_as(&stack.url, "MEMBERKEY", MEMBER_REGION);
    stack.configure(&CHECKS).await;
    enable(&member_iot).await;
    let member_task = start(&member_iot).await;
    let home_task = stack.run_on_demand(&CHECKS).await;
    assert_eq!(home_task, member_task, "the emulator repeats task ids across account-regions, as AWS may");

    let records =
        vec![notification(&stack, &home, &home_task).await, notification(&stack, &member, &member_task).await];
    stack.hub_deliver(&records).await.expect("both ingested");

    let home_count = assert_stored_exactly(&stack, &stack.iot, &home, &home_task).await;
    let member_count = assert_stored_exactly(&stack, &member_iot, &member, &member_task).await;
    assert_ne!(
        emulator_findings(&stack.iot, &home_task).await,
        emulator_findings(&member_iot, &member_task).await,
        "the two fleets differ, so a mix-up would show"
    );
    assert!(home_count > 0 && member_count > 0);

    // One digest each; the member's names its account and region, the hub's own is as before.
    let digests = stack.digests().await;
    assert_eq!(digests.len(), 2, "one digest per member");
    let subjects: Vec<String> = digests.iter().map(|d| d["subject"].as_str().unwrap_or_default().to_owned()).collect();
    let tagged: Vec<&String> = subjects.iter().filter(|s| s.starts_with("[444455556666:eu-west-1] ")).collect();
    assert_eq!(tagged.len(), 1, "{subjects:?}");
    let member_digest = digests.iter().find(|d| d["subject"].as_str() == Some(tagged[0].as_str())).unwrap();
    assert_eq!(member_digest["messageAttributes"]["member"]["StringValue"], json!("444455556666:eu-west-1"));
    assert!(member_digest["message"].as_str().unwrap().contains("Account and region: 444455556666:eu-west-1"));

    // The hub knows both members and when each last reported.
    let records = stack.hub.members.members().await.unwrap();
    let known: Vec<(String, Option<String>)> =
        records.iter().map(|r| (r.member.to_string(), r.last_task.clone())).collect();
    assert_eq!(
        known,
        vec![
            ("123456789012:us-east-1".to_owned(), Some(home_task.clone())),
            ("444455556666:eu-west-1".to_owned(), Some(member_task.clone()))
        ]
    );
    assert!(records.iter().all(|r| r.problem.is_none()));

    // The history CLI answers per member: the same task id, two different answers.
    let task_rows = |member: Option<&str>| {
        let mut args = vec!["-o", "csv", "task", home_task.as_str()];
        args.extend(member.map(|m| ["--member", m]).into_iter().flatten());
        system_tests::audit_history(&stack.table, &args, &[]).lines().count() - 1
    };
    assert_eq!(task_rows(None), home_count);
    assert_eq!(task_rows(Some("444455556666:eu-west-1")), member_count);
    let members = system_tests::audit_history(&stack.table, &["-o", "csv", "members"], &[]);
    assert!(members.contains("444455556666,eu-west-1,") && members.contains(&member_task), "{members}");

    // A duplicate of the member's notification is recognised as such (keyed by member too).
    let again = vec![notification(&stack, &member, &member_task).await];
    stack.hub_deliver(&again).await.unwrap();
    assert_eq!(stack.digests().await.len(), 2, "no second digest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_whose_role_is_missing_is_reported_while_others_ingest() {
    const ORPHAN: &str = "555566667777";
    let stack = org_stack(&["--access-key", "ORPHANKEY=555566667777"], &[]).await;
    let (home, member, orphan) = (
        Member::new(HOME, "us-east-1").unwrap(),
        Member::new(MEMBER, MEMBER_REGION).unwrap(),
        Member::new(ORPHAN, "us-east-1").unwrap(),
    );
    let (member_iot, orphan_iot) =
        (iot_as(&stack.url, "MEMBERKEY", MEMBER_REGION), iot_as(&stack.url, "ORPHANKEY", "us-east-1"));
    stack.configure(&CHECKS).await;
    enable(&member_iot).await;
    enable(&orphan_iot).await;
    let (m, o) = (start(&member_iot).await, start(&orphan_iot).await);
    let h = stack.run_on_demand(&CHECKS).await;

    // The orphan's notification comes first in the event: it must not hold up the others,
    // nor make Lambda retry the event (a missing role is not fixed by retrying).
    let records = vec![
        notification(&stack, &orphan, &o).await,
        notification(&stack, &home, &h).await,
        notification(&stack, &member, &m).await,
    ];
    stack.hub_deliver(&records).await.expect("no retry for a member that cannot be read");
    assert_stored_exactly(&stack, &stack.iot, &home, &h).await;
    assert_stored_exactly(&stack, &member_iot, &member, &m).await;
    assert!(summary(&stack, &orphan.key_prefix(&home), &o).await.is_none(), "nothing stored for the orphan");

    let records = stack.hub.members.members().await.unwrap();
    let rec = records.iter().find(|r| r.member == orphan).expect("the orphan is recorded");
    let problem = rec.problem.as_deref().expect("with its problem");
    assert!(
        problem.contains(ORPHAN) && problem.contains("AccessDenied") && problem.contains(ROLE_NAME),
        "the reason names the account, the role and STS's answer: {problem}"
    );
    assert_eq!(rec.last_task.as_deref(), Some(o.as_str()), "its notification did arrive");
    assert!(records.iter().filter(|r| r.member != orphan).all(|r| r.problem.is_none()));
    assert_eq!(stack.digests().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_reader_per_member_keeps_concurrent_audits_within_its_quota() {
    // Each account-region at AWS's quota (ListAuditFindings 10/s, a bucket of 10), the hub
    // pacing each reader at 10/s: two readers of one member at once would exceed it.
    let stack = org_stack(&["--rate-limits", "--fleet-devices", "12000"], &[("FINDINGS_RATE_LIMIT", "10")]).await;
    let member = Member::new(MEMBER, MEMBER_REGION).unwrap();
    let member_iot = iot_as(&stack.url, "MEMBERKEY", MEMBER_REGION);
    enable(&member_iot).await;
    // Two audit streams (two runs of one stream would be applied one after the other anyway).
    for name in ["daily-a", "daily-b"] {
        schedule_daily(&member_iot, name).await;
    }
    let r = admin(&stack.url, "POST", "/_emulator/clock/advance", json!({ "toNextScheduledRun": true })).await;
    let ended: Vec<String> = r["tasksEndedIn"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["account"] == MEMBER)
        .map(|t| t["taskId"].as_str().unwrap().to_owned())
        .collect();
    let [first, second] = <[String; 2]>::try_from(ended).expect("both scheduled audits ran");
    let (a, b) = ([notification(&stack, &member, &first).await], [notification(&stack, &member, &second).await]);

    // Two invocations at once, one notification each (SNS invokes per message).
    let (ra, rb) = tokio::join!(stack.hub_deliver(&a), stack.hub_deliver(&b));
    ra.unwrap();
    rb.unwrap();
    stack.drain().await;
    // (Before this test lists findings itself, which the same quota throttles.)
    assert_eq!(throttled(&stack, &member).await, 0, "the member's quota was never exceeded");
    let reader = stack.hub.ingestor(&member).await.unwrap().0;
    assert_eq!(reader.ports.reader.throttled_attempts(), 0, "no throttle surfaced, not even a retried one");

    let n1 = assert_stored_exactly(&stack, &member_iot, &member, &first).await;
    let n2 = assert_stored_exactly(&stack, &member_iot, &member, &second).await;
    assert!(n1 + n2 > 20 * 250, "enough pages ({n1} + {n2} findings) that two readers would have overlapped");
    assert_eq!(stack.digests().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renewal_that_reaches_the_table_after_the_release_leaves_the_reader_lease_free() {
    // The hub drops the renewal in flight when the work ends; it may reach DynamoDB after the
    // release. It used to take the free lease again, and the member's next audit waited for it
    // to lapse (a CI run of the ingest tests caught the next invocation answering "busy").
    let stack = org_stack(&[], &[]).await;
    let (members, member) = (&stack.hub.members, Member::new(MEMBER, MEMBER_REGION).unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert_eq!(members.take_reader(&member, "first", now, now + 60_000).await.unwrap(), ReaderLease::Taken);
    assert!(members.renew_reader(&member, "first", now + 90_000).await.unwrap(), "the holder extends its lease");
    match members.take_reader(&member, "second", now, now + 60_000).await.unwrap() {
        ReaderLease::Busy { holder, until } => assert_eq!((holder.as_str(), until), ("first", now + 90_000)),
        taken => panic!("a held lease is not taken: {taken:?}"),
    }
    members.release_reader(&member, "first").await.unwrap();
    assert!(!members.renew_reader(&member, "first", now + 120_000).await.unwrap(), "a late renewal is refused");
    assert_eq!(members.take_reader(&member, "second", now, now + 60_000).await.unwrap(), ReaderLease::Taken);
    assert!(!members.renew_reader(&member, "first", now + 120_000).await.unwrap(), "nor renews another's lease");
}

/// Creates the daily scheduled audit `daily` through `iot`.
async fn daily(iot: &aws_sdk_iot::Client) {
    schedule_daily(iot, "daily").await
}

/// Advances to the next scheduled runs; the tasks that ended, by member.
async fn next_runs(stack: &Stack) -> Vec<(Member, String)> {
    let r = admin(&stack.url, "POST", "/_emulator/clock/advance", json!({ "toNextScheduledRun": true })).await;
    r["tasksEndedIn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let m = Member::new(t["account"].as_str().unwrap(), t["region"].as_str().unwrap()).unwrap();
            (m, t["taskId"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// A task's stored digest item.
async fn stored_digest(stack: &Stack, prefix: &str, task_id: &str) -> Value {
    let out = stack
        .ddb
        .get_item()
        .table_name(&stack.table)
        .key("pk", AttributeValue::S(format!("TASK#{prefix}{task_id}")))
        .key("sk", AttributeValue::S("DIGEST".into()))
        .send()
        .await
        .unwrap();
    serde_dynamo::from_item(out.item.expect("digest stored")).unwrap()
}

/// Per severity, summed over `digests` (their `severities` lines' `field`).
fn digest_sum(digests: &[&Value], field: &str) -> audit_shared::rollup::Counts {
    let mut out = audit_shared::rollup::Counts::new();
    for d in digests {
        for line in d["severities"].as_array().unwrap() {
            let n = line[field].as_u64().unwrap();
            if n > 0 {
                *out.entry(line["severity"].as_str().unwrap().to_owned()).or_default() += n;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_roll_up_sums_the_members_and_names_the_silent_ones() {
    let stack = org_stack(&[], &[]).await;
    let (home, member) = (Member::new(HOME, "us-east-1").unwrap(), Member::new(MEMBER, MEMBER_REGION).unwrap());
    let never = Member::new("777788889999", "us-west-2").unwrap();
    let member_iot = iot_as(&stack.url, "MEMBERKEY", MEMBER_REGION);
    stack.configure(&CHECKS).await;
    enable(&member_iot).await;
    daily(&stack.iot).await;
    daily(&member_iot).await;
    let env = [
        ("TABLE_NAME", stack.table.clone()),
        ("DIGEST_TOPIC_ARN", stack.digest_topic.clone()),
        ("EXPECTED_MEMBERS", format!("{never}, {member}")),
        ("SILENT_GRACE_HOURS", "1".into()),
        ("ACCOUNT_NAMES", format!("{MEMBER}=fleet-eu")),
    ];
    let config =
        org_rollup::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let store =
        audit_shared::aws::dynamodb::DynamoRollupStore::new(stack.ddb.clone(), stack.table.clone(), 400, home.clone());
    let members =
        audit_shared::aws::dynamodb::DynamoMemberStore::new(stack.ddb.clone(), stack.table.clone(), store.meter());
    let publisher =
        audit_shared::aws::sns::SnsDigestPublisher::new(stack.clients.sns.clone(), stack.digest_topic.clone());
    // Reads silent members' audit setup through their roles, as the function does.
    let sdk = system_tests::sdk(3).await.into_builder().endpoint_url(&stack.url).build();
    let probe = audit_shared::aws::member_access::MemberAccess::new(
        aws_sdk_iot::Config::new(&sdk),
        sdk,
        home.clone(),
        Some(ROLE_NAME.into()),
        "aws".into(),
    );

    let ports = || org_rollup::RollupPorts {
        members: &members,
        store: &store,
        publisher: &publisher,
        probe: &probe,
        organization: None::<&audit_shared::aws::organizations::OrganizationsDirectory>,
    };

    // Day 1: both members audit and report.
    let day1 = next_runs(&stack).await;
    assert_eq!(day1.len(), 2, "{day1:?}");
    let mut records = Vec::new();
    for (m, t) in &day1 {
        records.push(notification(&stack, m, t).await);
    }
    stack.hub_deliver(&records).await.unwrap();
    let first = org_rollup::roll_up(ports(), &config, system_tests::virtual_now(&stack.url).await).await.unwrap();
    let silent: Vec<String> = first.silent().map(|m| m.label()).collect();
    assert_eq!(silent, vec!["777788889999 us-west-2"], "only the member that never reported");

    // Day 2: both audit, but only the hub's own notification arrives (the member's path broke).
    // Within day 2 the member is not silent yet: its daily audit is due some time that day.
    let day2 = next_runs(&stack).await;
    let home_task = &day2.iter().find(|(m, _)| *m == home).unwrap().1;
    stack.hub_deliver(&[notification(&stack, &home, home_task).await]).await.unwrap();
    let day2_now = system_tests::virtual_now(&stack.url).await;
    let records = members.members().await.unwrap();
    let schedules = |m: &Member| records.iter().find(|r| r.member == *m).and_then(|r| r.schedules.clone()).unwrap();
    assert_eq!(schedules(&member)[0].schedule, audit_shared::Schedule::Daily, "read from its account");
    assert_eq!(schedules(&home)[0].audit, "daily");
    // The roll-up of the next day, a minute past the end of day 2 and the hour of grace: the
    // member's day-2 audit never came; the hub's own is due on day 3.
    let day = 24 * 3_600_000;
    let now = day2_now - day2_now.rem_euclid(day) + day + 3_600_000 + 60_000;
    let r = org_rollup::roll_up(ports(), &config, now).await.unwrap();
    assert_eq!(r.since, first.at, "new and resolved count from the last roll-up");

    // Per member: the open findings of its latest ingested run, as its digest said.
    let member_task = &day1.iter().find(|(m, _)| *m == member).unwrap().1;
    let latest_home = stored_digest(&stack, &home.key_prefix(&home), home_task).await;
    let latest_member = stored_digest(&stack, &member.key_prefix(&home), member_task).await;
    let (latest_home, latest_member) = (&latest_home, &latest_member);
    let line = |m: &Member| r.members.iter().find(|l| l.account_id == m.account_id && l.region == m.region).unwrap();
    assert_eq!(line(&home).open, digest_sum(&[latest_home], "open"));
    assert_eq!(line(&member).open, digest_sum(&[latest_member], "open"));
    assert_eq!(line(&member).name.as_deref(), Some("fleet-eu"));
    assert_eq!(r.open, digest_sum(&[latest_home, latest_member], "open"), "the totals are the members' sums");
    assert_eq!(r.new, digest_sum(&[latest_home], "new"), "only day 2's run started since the last roll-up");
    assert_eq!(r.resolved, digest_sum(&[latest_home], "resolved"));
    assert!(r.resolved.values().sum::<u64>() > 0, "the fleet drifted, so day 2 resolved some");

    // Silent: the member whose notifications stopped, and the one that never sent any.
    let silent: Vec<String> = r.silent().map(|m| m.label()).collect();
    assert_eq!(silent, vec!["fleet-eu (444455556666) eu-west-1", "777788889999 us-west-2"]);
    let published = stack.digests().await;
    let sent = published.last().unwrap();
    assert_eq!(sent["subject"].as_str().unwrap(), r.subject());
    let text = sent["message"].as_str().unwrap();
    // Why each is silent, from its audit configuration read through its role: this member's
    // audits notify nothing (the test delivered its notifications by hand); the other's role
    // cannot be assumed.
    assert!(text.contains("fleet-eu (444455556666) eu-west-1: DAILY audit daily was due"), "{text}");
    assert!(text.contains("audit setup: audit notifications are not configured"), "{text}");
    assert!(
        text.contains("777788889999 us-west-2: schedule not known (judged as daily) never reported; its audit setup cannot be read"),
        "{text}"
    );
    assert!(text.contains("AccessDenied"), "{text}");
    assert_eq!(sent["messageAttributes"]["silent"]["StringValue"], json!("2"));

    // The member's account leaves the organization: the next roll-up (it reads the
    // organization's accounts) retires it and lists it once; the one after names it no more.
    admin(&stack.url, "DELETE", &format!("/_emulator/organization/accounts/{MEMBER}"), Value::Null).await;
    let org = audit_shared::aws::organizations::OrganizationsDirectory::new(aws_sdk_organizations::Client::from_conf(
        aws_sdk_organizations::config::Builder::from(&system_tests::sdk(3).await).endpoint_url(&stack.url).build(),
    ));
    let with_org = || org_rollup::RollupPorts { organization: Some(&org), ..ports() };
    let left = org_rollup::roll_up(with_org(), &config, now + 60_000).await.unwrap();
    assert_eq!(left.retired.len(), 1, "{:?}", left.retired);
    assert_eq!(left.retired[0].reason, format!("account {MEMBER} is no longer in the organization"));
    assert!(left.members.iter().all(|l| l.account_id != MEMBER), "no line, no count");
    let text = stack.digests().await.last().unwrap()["message"].as_str().unwrap().to_owned();
    assert!(
        text.contains(
            "Retired since the last roll-up (1; not listed again):\n  fleet-eu (444455556666) eu-west-1: retired"
        ),
        "{text}"
    );
    let record = members.members().await.unwrap().into_iter().find(|r| r.member == member).unwrap();
    assert!(record.retired.as_ref().is_some_and(|r| r.reported), "marked as listed: {record:?}");
    let after = org_rollup::roll_up(with_org(), &config, now + 120_000).await.unwrap();
    assert!(after.retired.is_empty() && after.members.iter().all(|l| l.account_id != MEMBER));
    let text = stack.digests().await.last().unwrap()["message"].as_str().unwrap().to_owned();
    assert!(!text.contains(MEMBER), "{text}");
    // A member that notifies a newer audit is back.
    let day3 = next_runs(&stack).await;
    let member_task = &day3.iter().find(|(m, _)| *m == member).unwrap().1;
    stack.hub_deliver(&[notification(&stack, &member, member_task).await]).await.unwrap();
    let record = members.members().await.unwrap().into_iter().find(|r| r.member == member).unwrap();
    assert_eq!(record.retired, None, "back");
}

/// What member.yaml sets up in one account-region: the named topic, its subscription of the
/// hub's queue, and the audit configuration notifying the topic. The topic's ARN.
async fn member_stack(stack: &Stack, key: &str, region: &str, queue_arn: &str) -> String {
    let sns = sns_as(&stack.url, key, region);
    let topic = sns.create_topic().name("device-defender-audit-notifications").send().await.unwrap().topic_arn.unwrap();
    let sub = sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(queue_arn).send().await.unwrap();
    assert_eq!(sub.subscription_arn.as_deref(), Some("pending confirmation"), "the queue's owner confirms");
    let iot = iot_as(&stack.url, key, region);
    enable(&iot).await;
    iot.update_account_audit_configuration()
        .audit_notification_target_configurations(
            aws_sdk_iot::types::AuditNotificationType::Sns,
            aws_sdk_iot::types::AuditNotificationTarget::builder()
                .target_arn(&topic)
                .role_arn("arn:aws:iam::444455556666:role/iot-sns")
                .enabled(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    topic
}

async fn subscriptions(stack: &Stack, key: &str, region: &str, topic: &str) -> (String, String) {
    let a = sns_as(&stack.url, key, region)
        .get_topic_attributes()
        .topic_arn(topic)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    (a["SubscriptionsConfirmed"].clone(), a["SubscriptionsPending"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_reach_the_hub_through_its_queue_once_their_subscription_is_confirmed() {
    const OUTSIDER: &str = "999900001111";
    const LATE: &str = "777788889999";
    // Retries of a confirmation whose role cannot be assumed yet: after 1 s, for 4 s (in AWS:
    // from a minute, for the token's two days).
    let stack = org_stack(
        &["--access-key", "OUTSIDERKEY=999900001111", "--access-key", "LATEKEY=777788889999"],
        &[("CONFIRM_RETRY_SECS", "1"), ("CONFIRM_WINDOW_SECS", "4")],
    )
    .await;
    let member = Member::new(MEMBER, MEMBER_REGION).unwrap();
    // The hub's queue (the emulator's queues are the hub account's).
    let queue = stack.sqs.create_queue().queue_name("member-notifications").send().await.unwrap().queue_url.unwrap();
    let queue_arn = "arn:aws:sqs:us-east-1:123456789012:member-notifications";
    let topic = member_stack(&stack, "MEMBERKEY", MEMBER_REGION, queue_arn).await;
    // An account outside the organization (no hub-access role) tries the same.
    let outsider_topic = member_stack(&stack, "OUTSIDERKEY", "us-east-1", queue_arn).await;
    // A member whose subscription reaches the hub before its role can be assumed (IAM is
    // eventually consistent): the hub asks again later, and confirms once the role works.
    let late_topic = member_stack(&stack, "LATEKEY", MEMBER_REGION, queue_arn).await;

    // The hub consumes its queue: it confirms its member's subscription, not the outsider's;
    // the late member's waits, with the reason on its record.
    stack.drain_queue(&queue).await;
    assert_eq!(subscriptions(&stack, "MEMBERKEY", MEMBER_REGION, &topic).await, ("1".into(), "0".into()));
    assert_eq!(subscriptions(&stack, "OUTSIDERKEY", "us-east-1", &outsider_topic).await, ("0".into(), "1".into()));
    assert_eq!(subscriptions(&stack, "LATEKEY", MEMBER_REGION, &late_topic).await, ("0".into(), "1".into()));
    let problem = |account: &'static str| {
        let members = &stack.hub.members;
        async move {
            let records = members.members().await.unwrap();
            records.into_iter().find(|r| r.member.account_id == account).and_then(|r| r.problem)
        }
    };
    // Joined: the confirmed member, not the ones whose subscription waits.
    let joined = |account: &'static str| {
        let members = &stack.hub.members;
        async move {
            let records = members.members().await.unwrap();
            records.into_iter().find(|r| r.member.account_id == account).and_then(|r| r.joined_at)
        }
    };
    assert!(joined(MEMBER).await.is_some(), "confirmed: joined");
    assert_eq!((joined(LATE).await, joined(OUTSIDER).await), (None, None));
    let waiting = problem(LATE).await.expect("the wait is recorded");
    assert!(waiting.contains("not confirmed yet") && waiting.contains("AccessDenied"), "{waiting}");
    // The role becomes assumable; the retry confirms it and clears the record's problem. The
    // outsider's role never does: the hub gives up when the window closes, and says so.
    let late_role = format!("arn:aws:iam::{LATE}:role/{ROLE_NAME}-{MEMBER_REGION}");
    admin(&stack.url, "POST", "/_emulator/roles", json!({ "roleArn": late_role, "trustedAccounts": [HOME] })).await;
    stack.drain().await;
    assert_eq!(subscriptions(&stack, "LATEKEY", MEMBER_REGION, &late_topic).await, ("1".into(), "0".into()));
    assert_eq!(problem(LATE).await, None);
    assert!(joined(LATE).await.is_some(), "joined once its role worked");
    assert_eq!(subscriptions(&stack, "OUTSIDERKEY", "us-east-1", &outsider_topic).await, ("0".into(), "1".into()));
    let refused = problem(OUTSIDER).await.expect("the refusal is recorded");
    assert!(refused.contains("never confirmed") && refused.contains("AccessDenied"), "{refused}");

    // The member's audit ends: Device Defender notifies its topic, SNS its queue subscription,
    // the hub ingests. The outsider's topic publishes a notification claiming the member's
    // account: unconfirmed, it never reaches the queue.
    let task = start(&iot_as(&stack.url, "MEMBERKEY", MEMBER_REGION)).await;
    stack.advance(10.0).await;
    let forged = notification(&stack, &member, &task).await.1;
    sns_as(&stack.url, "OUTSIDERKEY", "us-east-1")
        .publish()
        .topic_arn(&outsider_topic)
        .message(forged)
        .send()
        .await
        .unwrap();
    stack.drain_queue(&queue).await;
    stack.drain().await;
    assert_stored_exactly(&stack, &iot_as(&stack.url, "MEMBERKEY", MEMBER_REGION), &member, &task).await;
    let digests = stack.digests().await;
    assert_eq!(digests.len(), 1, "one digest: the member's audit, once");
    assert!(digests[0]["subject"].as_str().unwrap().starts_with("[444455556666:eu-west-1] "));
}
