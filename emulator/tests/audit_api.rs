//! Every audit operation through the real `aws-sdk-iot` client against a spawned emulator:
//! success paths, every documented error, pagination, quotas, lifecycle, scheduled runs.

mod common;

use aws_sdk_iot::primitives::DateTime;
use aws_sdk_iot::types::{
    AuditCheckConfiguration, AuditFrequency, AuditNotificationTarget, AuditNotificationType, AuditTaskStatus,
    AuditTaskType, DayOfWeek, ResourceIdentifier,
};
use common::{code, message, Emu, ALL_DEVICE_CHECKS};
use std::collections::HashSet;

const EXPIRING: &str = "DEVICE_CERTIFICATE_EXPIRING_CHECK";
const LOGGING: &str = "LOGGING_DISABLED_CHECK";
const AGE: &str = "DEVICE_CERTIFICATE_AGE_CHECK";

fn enabled(on: bool) -> AuditCheckConfiguration {
    AuditCheckConfiguration::builder().enabled(on).build()
}

#[tokio::test]
async fn account_configuration_lifecycle() {
    let emu = Emu::start(&[]);
    // Fresh account: every check listed, disabled, no role, no 404.
    let d = emu.iot.describe_account_audit_configuration().send().await.unwrap();
    let checks = d.audit_check_configurations.unwrap();
    assert_eq!(checks.len(), 17);
    assert!(checks.values().all(|c| !c.enabled));
    assert!(d.role_arn.is_none());

    // First configuration must enable a check and set the role.
    let e = emu
        .iot
        .update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_request_exception(), "{e:?}");
    let e = emu
        .iot
        .update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .audit_check_configurations(LOGGING, enabled(false))
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("at least one"), "{}", message(&e));
    let e = emu
        .iot
        .update_account_audit_configuration()
        .audit_check_configurations(LOGGING, enabled(true))
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("roleArn"), "{}", message(&e));
    let e = emu
        .iot
        .update_account_audit_configuration()
        .role_arn("short")
        .audit_check_configurations(LOGGING, enabled(true))
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("roleArn"), "{}", message(&e));
    let e = emu
        .iot
        .update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .audit_check_configurations("NOT_A_CHECK", enabled(true))
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("NOT_A_CHECK"), "{}", message(&e));
    // A configuration key the check does not take, and a value out of range.
    let bad_key = AuditCheckConfiguration::builder()
        .enabled(true)
        .configuration(aws_sdk_iot::types::ConfigName::CertAgeThresholdInDays, "400")
        .build();
    let e = emu
        .iot
        .update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .audit_check_configurations(EXPIRING, bad_key)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("CERT_AGE_THRESHOLD_IN_DAYS"), "{}", message(&e));
    let bad_value = AuditCheckConfiguration::builder()
        .enabled(true)
        .configuration(aws_sdk_iot::types::ConfigName::CertAgeThresholdInDays, "10")
        .build();
    let e = emu
        .iot
        .update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .audit_check_configurations(AGE, bad_value)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("30 to 3652"), "{}", message(&e));
    // An enabled SNS target needs both ARNs.
    let e = emu
        .iot
        .update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .audit_check_configurations(LOGGING, enabled(true))
        .audit_notification_target_configurations(
            AuditNotificationType::Sns,
            AuditNotificationTarget::builder().target_arn("arn:aws:sns:us-east-1:123456789012:t").enabled(true).build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("roleArn"), "{}", message(&e));
    // Nothing was stored by the failed calls.
    let d = emu.iot.describe_account_audit_configuration().send().await.unwrap();
    assert!(d.role_arn.is_none());

    // A valid first configuration, then a merge.
    let age = AuditCheckConfiguration::builder()
        .enabled(true)
        .configuration(aws_sdk_iot::types::ConfigName::CertAgeThresholdInDays, "400")
        .build();
    emu.iot
        .update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .audit_check_configurations(LOGGING, enabled(true))
        .audit_check_configurations(AGE, age)
        .send()
        .await
        .unwrap();
    emu.iot
        .update_account_audit_configuration()
        .audit_check_configurations(EXPIRING, enabled(true))
        .audit_notification_target_configurations(
            AuditNotificationType::Sns,
            AuditNotificationTarget::builder()
                .target_arn("arn:aws:sns:us-east-1:123456789012:t")
                .role_arn("arn:aws:iam::123456789012:role/sns")
                .enabled(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let d = emu.iot.describe_account_audit_configuration().send().await.unwrap();
    let checks = d.audit_check_configurations.unwrap();
    assert_eq!(checks.values().filter(|c| c.enabled).count(), 3);
    assert_eq!(
        checks[AGE].configuration.as_ref().unwrap()[&aws_sdk_iot::types::ConfigName::CertAgeThresholdInDays],
        "400"
    );
    assert_eq!(d.role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/audit"));
    let sns = &d.audit_notification_target_configurations.unwrap()[&AuditNotificationType::Sns];
    assert!(sns.enabled);
    assert_eq!(sns.target_arn.as_deref(), Some("arn:aws:sns:us-east-1:123456789012:t"));

    // A scheduled audit pins its checks; delete needs the flag while audits exist.
    emu.iot
        .create_scheduled_audit()
        .scheduled_audit_name("daily")
        .frequency(AuditFrequency::Daily)
        .target_check_names(LOGGING)
        .send()
        .await
        .unwrap();
    let e = emu
        .iot
        .update_account_audit_configuration()
        .audit_check_configurations(LOGGING, enabled(false))
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("daily"), "{}", message(&e));
    emu.iot
        .update_account_audit_configuration()
        .audit_check_configurations(EXPIRING, enabled(false))
        .send()
        .await
        .unwrap();
    let e = emu.iot.delete_account_audit_configuration().send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_request_exception(), "{e:?}");
    let e = emu.iot.delete_account_audit_configuration().delete_scheduled_audits(false).send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_request_exception(), "{e:?}");
    emu.iot.delete_account_audit_configuration().delete_scheduled_audits(true).send().await.unwrap();
    let d = emu.iot.describe_account_audit_configuration().send().await.unwrap();
    assert!(d.role_arn.is_none() && d.audit_notification_target_configurations.unwrap_or_default().is_empty());
    assert!(d.audit_check_configurations.unwrap().values().all(|c| !c.enabled && c.configuration.is_none()));
    assert!(emu.iot.list_scheduled_audits().send().await.unwrap().scheduled_audits.unwrap().is_empty());
    // Nothing left to delete: 404; and the next update is a first configuration again.
    let e = emu.iot.delete_account_audit_configuration().send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_resource_not_found_exception(), "{e:?}");
    let e = emu
        .iot
        .update_account_audit_configuration()
        .audit_check_configurations(LOGGING, enabled(false))
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_request_exception());
}

#[tokio::test]
async fn scheduled_audit_crud_errors_and_quota() {
    let emu = Emu::start(&[]);
    // Targets must be enabled: nothing is enabled yet.
    let e = emu
        .iot
        .create_scheduled_audit()
        .scheduled_audit_name("a")
        .frequency(AuditFrequency::Daily)
        .target_check_names(LOGGING)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("not enabled"), "{}", message(&e));
    emu.enable(&[LOGGING, EXPIRING, AGE]).await;

    let ok = emu
        .iot
        .create_scheduled_audit()
        .scheduled_audit_name("weekly-1")
        .frequency(AuditFrequency::Weekly)
        .day_of_week(DayOfWeek::Mon)
        .target_check_names(LOGGING)
        .target_check_names(LOGGING)
        .tags(aws_sdk_iot::types::Tag::builder().key("team").value("iot").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.scheduled_audit_arn.as_deref(), Some("arn:aws:iot:us-east-1:123456789012:scheduledaudit/weekly-1"));
    let d = emu.iot.describe_scheduled_audit().scheduled_audit_name("weekly-1").send().await.unwrap();
    assert_eq!(d.frequency, Some(AuditFrequency::Weekly));
    assert_eq!(d.day_of_week, Some(DayOfWeek::Mon));
    assert_eq!(d.target_check_names.unwrap(), vec![LOGGING.to_string()], "duplicates collapse");

    // Frequency/day matrix and patterns.
    let cases: Vec<(AuditFrequency, Option<&str>, Option<DayOfWeek>, &str)> = vec![
        (AuditFrequency::Monthly, None, None, "dayOfMonth"),
        (AuditFrequency::Weekly, None, None, "dayOfWeek"),
        (AuditFrequency::Biweekly, Some("3"), Some(DayOfWeek::Fri), "dayOfMonth"),
        (AuditFrequency::Monthly, Some("3"), Some(DayOfWeek::Fri), "dayOfWeek"),
        (AuditFrequency::Daily, None, Some(DayOfWeek::Fri), "dayOfWeek"),
        (AuditFrequency::Monthly, Some("01"), None, "dayOfMonth"),
        (AuditFrequency::Monthly, Some("0"), None, "dayOfMonth"),
        (AuditFrequency::Monthly, Some("32"), None, "dayOfMonth"),
        (AuditFrequency::Monthly, Some("last"), None, "dayOfMonth"),
        (AuditFrequency::from("HOURLY"), None, None, "frequency"),
    ];
    for (f, dom, dow, field) in cases {
        let e = emu
            .iot
            .create_scheduled_audit()
            .scheduled_audit_name("bad")
            .frequency(f.clone())
            .set_day_of_month(dom.map(Into::into))
            .set_day_of_week(dow)
            .target_check_names(LOGGING)
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_invalid_request_exception(), "{f:?} {dom:?}");
        assert!(message(&e).contains(field), "{f:?} {dom:?}: {}", message(&e));
    }
    // Required members missing (the SDK sends `{}`), bad names, unknown and empty targets.
    let e = emu.iot.create_scheduled_audit().scheduled_audit_name("x").send().await.unwrap_err();
    assert!(message(&e).contains("frequency"), "{}", message(&e));
    let e = emu
        .iot
        .create_scheduled_audit()
        .scheduled_audit_name("x")
        .frequency(AuditFrequency::Daily)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("targetCheckNames"), "{}", message(&e));
    let e = emu
        .iot
        .create_scheduled_audit()
        .scheduled_audit_name("x")
        .frequency(AuditFrequency::Daily)
        .set_target_check_names(Some(vec![]))
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("targetCheckNames"), "{}", message(&e));
    let e = emu
        .iot
        .create_scheduled_audit()
        .scheduled_audit_name("has space")
        .frequency(AuditFrequency::Daily)
        .target_check_names(LOGGING)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("scheduledAuditName"), "{}", message(&e));
    let e = emu
        .iot
        .create_scheduled_audit()
        .scheduled_audit_name("a".repeat(129))
        .frequency(AuditFrequency::Daily)
        .target_check_names(LOGGING)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("scheduledAuditName"), "{}", message(&e));
    let e = emu
        .iot
        .create_scheduled_audit()
        .scheduled_audit_name("x")
        .frequency(AuditFrequency::Daily)
        .target_check_names("NOPE_CHECK")
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("NOPE_CHECK"), "{}", message(&e));

    // Duplicate name: 409 with the existing audit's id and ARN.
    let e = emu
        .iot
        .create_scheduled_audit()
        .scheduled_audit_name("weekly-1")
        .frequency(AuditFrequency::Daily)
        .target_check_names(LOGGING)
        .send()
        .await
        .unwrap_err();
    match e.as_service_error().unwrap() {
        aws_sdk_iot::operation::create_scheduled_audit::CreateScheduledAuditError::ResourceAlreadyExistsException(
            x,
        ) => {
            assert_eq!(x.resource_id(), Some("weekly-1"));
            assert_eq!(x.resource_arn(), Some("arn:aws:iot:us-east-1:123456789012:scheduledaudit/weekly-1"));
        }
        other => panic!("expected 409, got {other:?}"),
    }

    // Quota: five audits, the sixth is LimitExceeded.
    for (i, (f, dom)) in [
        (AuditFrequency::Daily, None),
        (AuditFrequency::Monthly, Some("LAST")),
        (AuditFrequency::Monthly, Some("31")),
        (AuditFrequency::Daily, None),
    ]
    .into_iter()
    .enumerate()
    {
        emu.iot
            .create_scheduled_audit()
            .scheduled_audit_name(format!("a{i}"))
            .frequency(f)
            .set_day_of_month(dom.map(Into::into))
            .target_check_names(EXPIRING)
            .send()
            .await
            .unwrap();
    }
    let e = emu
        .iot
        .create_scheduled_audit()
        .scheduled_audit_name("sixth")
        .frequency(AuditFrequency::Daily)
        .target_check_names(LOGGING)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_limit_exceeded_exception(), "{e:?}");

    // List in pages of 2: all five, no duplicates, fresh tokens, last page without a token.
    let mut names = Vec::new();
    let mut tokens = HashSet::new();
    let mut next = None;
    loop {
        let page = emu.iot.list_scheduled_audits().max_results(2).set_next_token(next.clone()).send().await.unwrap();
        names.extend(page.scheduled_audits.unwrap().into_iter().map(|a| a.scheduled_audit_name.unwrap()));
        match &page.next_token {
            Some(t) => assert!(tokens.insert(t.clone()), "token repeated"),
            None => break,
        }
        next = page.next_token;
    }
    assert_eq!(names, ["weekly-1", "a0", "a1", "a2", "a3"]);
    let listed = emu.iot.list_scheduled_audits().send().await.unwrap().scheduled_audits.unwrap();
    assert_eq!(listed[2].day_of_month.as_deref(), Some("LAST"));
    let e = emu.iot.list_scheduled_audits().max_results(0).send().await.unwrap_err();
    assert!(message(&e).contains("maxResults"));
    let e = emu.iot.list_scheduled_audits().max_results(251).send().await.unwrap_err();
    assert!(message(&e).contains("maxResults"));
    let e = emu.iot.list_scheduled_audits().next_token("not-a-token").send().await.unwrap_err();
    assert!(message(&e).contains("nextToken"));

    // Update: fields laid over the stored audit; a frequency change drops the unfitting day.
    let e = emu
        .iot
        .update_scheduled_audit()
        .scheduled_audit_name("weekly-1")
        .frequency(AuditFrequency::Monthly)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("dayOfMonth"), "{}", message(&e));
    emu.iot
        .update_scheduled_audit()
        .scheduled_audit_name("weekly-1")
        .frequency(AuditFrequency::Monthly)
        .day_of_month("LAST")
        .send()
        .await
        .unwrap();
    let d = emu.iot.describe_scheduled_audit().scheduled_audit_name("weekly-1").send().await.unwrap();
    assert_eq!(
        (d.frequency, d.day_of_month.as_deref(), d.day_of_week),
        (Some(AuditFrequency::Monthly), Some("LAST"), None)
    );
    emu.iot
        .update_scheduled_audit()
        .scheduled_audit_name("weekly-1")
        .target_check_names(AGE)
        .target_check_names(EXPIRING)
        .send()
        .await
        .unwrap();
    let d = emu.iot.describe_scheduled_audit().scheduled_audit_name("weekly-1").send().await.unwrap();
    assert_eq!(d.target_check_names.unwrap(), vec![AGE.to_string(), EXPIRING.to_string()]);
    let r = emu.iot.update_scheduled_audit().scheduled_audit_name("weekly-1").send().await.unwrap();
    assert!(r.scheduled_audit_arn.unwrap().ends_with("/weekly-1"), "an empty update returns the ARN");
    let e = emu
        .iot
        .update_scheduled_audit()
        .scheduled_audit_name("weekly-1")
        .day_of_week(DayOfWeek::Sun)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("dayOfWeek"), "{}", message(&e));
    // LOGGING is no longer targeted by weekly-1 and by nothing else: it can be disabled now.
    emu.iot
        .update_account_audit_configuration()
        .audit_check_configurations(LOGGING, enabled(false))
        .send()
        .await
        .unwrap();
    let e = emu
        .iot
        .update_scheduled_audit()
        .scheduled_audit_name("weekly-1")
        .target_check_names(LOGGING)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("not enabled"), "{}", message(&e));

    // Not found and bad names on describe / update / delete.
    let e = emu.iot.describe_scheduled_audit().scheduled_audit_name("nope").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_resource_not_found_exception());
    let e = emu
        .iot
        .update_scheduled_audit()
        .scheduled_audit_name("nope")
        .frequency(AuditFrequency::Daily)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_resource_not_found_exception());
    let e = emu.iot.delete_scheduled_audit().scheduled_audit_name("nope").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_resource_not_found_exception());
    let e = emu.iot.describe_scheduled_audit().scheduled_audit_name("bad!name").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_request_exception());
    emu.iot.delete_scheduled_audit().scheduled_audit_name("weekly-1").send().await.unwrap();
    let e = emu.iot.describe_scheduled_audit().scheduled_audit_name("weekly-1").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_resource_not_found_exception());
    // Room again for a fifth.
    emu.iot
        .create_scheduled_audit()
        .scheduled_audit_name("again")
        .frequency(AuditFrequency::Daily)
        .target_check_names(AGE)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn on_demand_tasks_lifecycle_limit_and_cancel() {
    let emu = Emu::start(&[]);
    emu.enable(&[LOGGING, EXPIRING, AGE]).await;
    let e = emu
        .iot
        .start_on_demand_audit_task()
        .target_check_names("DEVICE_CERTIFICATE_SHARED_CHECK")
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("not enabled"), "{}", message(&e));
    let e = emu.iot.start_on_demand_audit_task().send().await.unwrap_err();
    assert!(message(&e).contains("targetCheckNames"), "{}", message(&e));

    let id = emu
        .iot
        .start_on_demand_audit_task()
        .target_check_names(EXPIRING)
        .target_check_names(AGE)
        .target_check_names(LOGGING)
        .send()
        .await
        .unwrap()
        .task_id
        .unwrap();
    assert_eq!(id.len(), 32);
    let d = emu.iot.describe_audit_task().task_id(&id).send().await.unwrap();
    assert_eq!(d.task_status, Some(AuditTaskStatus::InProgress));
    assert_eq!(d.task_type, Some(AuditTaskType::OnDemandAuditTask));
    assert!(d.scheduled_audit_name.is_none());
    assert_eq!(d.task_start_time, Some(DateTime::from_secs(1_768_435_200)));
    assert_eq!(d.task_statistics.as_ref().unwrap().in_progress_checks, Some(3));

    // Ten running on-demand tasks at most.
    for _ in 0..9 {
        emu.iot.start_on_demand_audit_task().target_check_names(LOGGING).send().await.unwrap();
    }
    let e = emu.iot.start_on_demand_audit_task().target_check_names(LOGGING).send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_limit_exceeded_exception(), "{e:?}");
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 410);

    // Halfway through, one check has finished; cancel keeps it and cancels the rest.
    emu.advance(25.0).await;
    emu.iot.cancel_audit_task().task_id(&id).send().await.unwrap();
    let d = emu.iot.describe_audit_task().task_id(&id).send().await.unwrap();
    assert_eq!(d.task_status, Some(AuditTaskStatus::Canceled));
    let s = d.task_statistics.unwrap();
    assert_eq!((s.total_checks, s.canceled_checks, s.in_progress_checks), (Some(3), Some(2), Some(0)));
    assert_eq!(s.compliant_checks.unwrap() + s.non_compliant_checks.unwrap(), 1);
    let e = emu.iot.cancel_audit_task().task_id(&id).send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_request_exception(), "second cancel: {e:?}");
    // With one cancelled there is room for another.
    emu.iot.start_on_demand_audit_task().target_check_names(LOGGING).send().await.unwrap();

    // The rest complete; statistics add up.
    emu.advance(120.0).await;
    let tasks = emu
        .iot
        .list_audit_tasks()
        .start_time(DateTime::from_secs(1_768_435_200))
        .end_time(DateTime::from_secs(1_768_435_200 + 3600))
        .task_status(AuditTaskStatus::Completed)
        .send()
        .await
        .unwrap()
        .tasks
        .unwrap();
    assert_eq!(tasks.len(), 10);
    let done = emu.iot.describe_audit_task().task_id(tasks[0].task_id.clone().unwrap()).send().await.unwrap();
    let s = done.task_statistics.unwrap();
    let sum = s.in_progress_checks.unwrap()
        + s.waiting_for_data_collection_checks.unwrap()
        + s.compliant_checks.unwrap()
        + s.non_compliant_checks.unwrap()
        + s.failed_checks.unwrap()
        + s.canceled_checks.unwrap();
    assert_eq!(Some(sum), s.total_checks);
    assert_eq!(done.audit_details.unwrap().len() as i32, sum);
    let e = emu.iot.cancel_audit_task().task_id(tasks[0].task_id.clone().unwrap()).send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_request_exception());

    // Unknown and malformed ids.
    let e = emu.iot.describe_audit_task().task_id("0123456789abcdef0123456789abcdef").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_resource_not_found_exception());
    let e = emu.iot.cancel_audit_task().task_id("0123456789abcdef0123456789abcdef").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_resource_not_found_exception());
    let e = emu.iot.describe_audit_task().task_id("bad_id").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_request_exception());
    let e = emu.iot.describe_audit_task().task_id("a".repeat(41)).send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_request_exception());
}

#[tokio::test]
async fn list_audit_tasks_filters_pagination_and_retention() {
    let emu = Emu::start(&[]);
    emu.enable(&[LOGGING]).await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(emu.run_audit(&[LOGGING]).await);
    }
    let running =
        emu.iot.start_on_demand_audit_task().target_check_names(LOGGING).send().await.unwrap().task_id.unwrap();
    let start = DateTime::from_secs(1_768_435_200);
    let end = DateTime::from_secs(1_768_435_200 + 86_400);
    // Newest first, in pages of 3 through the SDK paginator.
    let all: Vec<String> = emu
        .iot
        .list_audit_tasks()
        .start_time(start)
        .end_time(end)
        .max_results(3)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.task_id.unwrap())
        .collect();
    let mut expected = ids.clone();
    expected.push(running.clone());
    expected.reverse();
    assert_eq!(all, expected);
    let only_running = emu
        .iot
        .list_audit_tasks()
        .start_time(start)
        .end_time(end)
        .task_status(AuditTaskStatus::InProgress)
        .send()
        .await
        .unwrap();
    assert_eq!(
        only_running.tasks.unwrap().iter().map(|t| t.task_id.clone().unwrap()).collect::<Vec<_>>(),
        vec![running]
    );
    let scheduled = emu
        .iot
        .list_audit_tasks()
        .start_time(start)
        .end_time(end)
        .task_type(AuditTaskType::ScheduledAuditTask)
        .send()
        .await
        .unwrap();
    assert!(scheduled.tasks.unwrap().is_empty());
    // The time window is inclusive and checked.
    let first = emu.iot.list_audit_tasks().start_time(start).end_time(start).send().await.unwrap().tasks.unwrap();
    assert_eq!(first.len(), 1);
    let e = emu.iot.list_audit_tasks().start_time(end).end_time(start).send().await.unwrap_err();
    assert!(message(&e).contains("endTime"), "{}", message(&e));
    let e = emu
        .iot
        .list_audit_tasks()
        .start_time(DateTime::from_secs(1_768_435_200 - 91 * 86_400))
        .end_time(end)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("90 days"), "{}", message(&e));
    // A token from another query is refused.
    let p = emu.iot.list_audit_tasks().start_time(start).end_time(end).max_results(2).send().await.unwrap();
    let e = emu
        .iot
        .list_audit_tasks()
        .start_time(start)
        .end_time(end)
        .task_status(AuditTaskStatus::Completed)
        .set_next_token(p.next_token)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("nextToken"), "{}", message(&e));
    // Retention: 91 days later every task is gone.
    emu.advance(91.0 * 86_400.0).await;
    let e = emu.iot.describe_audit_task().task_id(&ids[0]).send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_resource_not_found_exception());
}

#[tokio::test]
async fn findings_pages_filters_and_query_rules() {
    let emu = Emu::start(&["--fleet-devices", "2000", "--noncompliant-share", "0.3"]);
    emu.enable(&ALL_DEVICE_CHECKS).await;
    let id = emu.run_audit(&ALL_DEVICE_CHECKS).await;
    let d = emu.iot.describe_audit_task().task_id(&id).send().await.unwrap();
    assert_eq!(d.task_status, Some(AuditTaskStatus::Completed));
    let details = d.audit_details.unwrap();
    let expected: i64 = details.values().map(|c| c.non_compliant_resources_count.unwrap()).sum();
    assert!(expected > 500, "enough findings for several pages: {expected}");
    for c in details.values() {
        assert_eq!(c.total_resources_count, Some(2000));
    }

    // Every page through the paginator with 250 per page: exactly the counted findings, no duplicate.
    let findings: Vec<_> = emu
        .iot
        .list_audit_findings()
        .task_id(&id)
        .max_results(250)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(findings.len() as i64, expected);
    let unique: HashSet<_> = findings.iter().map(|f| f.finding_id.clone().unwrap()).collect();
    assert_eq!(unique.len(), findings.len());
    let by_resource: HashSet<_> = findings
        .iter()
        .map(|f| {
            (
                f.check_name.clone().unwrap(),
                f.non_compliant_resource
                    .as_ref()
                    .unwrap()
                    .resource_identifier
                    .as_ref()
                    .unwrap()
                    .device_certificate_id
                    .clone()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(by_resource.len(), findings.len());
    let f = &findings[0];
    assert_eq!(f.task_id.as_deref(), Some(id.as_str()));
    assert!(f.severity.is_some() && f.reason_for_non_compliance_code.is_some() && f.finding_time.is_some());
    assert_eq!(f.task_start_time, d.task_start_time);
    for c in ALL_DEVICE_CHECKS {
        let n = findings.iter().filter(|f| f.check_name.as_deref() == Some(c)).count() as i64;
        assert_eq!(n, details[c].non_compliant_resources_count.unwrap(), "{c}");
    }
    // Severity comes from the catalog: the age check is LOW.
    assert!(findings
        .iter()
        .filter(|f| f.check_name.as_deref() == Some(AGE))
        .all(|f| f.severity == Some(aws_sdk_iot::types::AuditFindingSeverity::Low)));

    // Default page size is 25.
    let p = emu.iot.list_audit_findings().task_id(&id).send().await.unwrap();
    assert_eq!(p.findings.unwrap().len(), 25);
    assert!(p.next_token.is_some());

    // checkName and resourceIdentifier narrow the results.
    let only: Vec<_> = emu
        .iot
        .list_audit_findings()
        .task_id(&id)
        .check_name(AGE)
        .max_results(250)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(only.len() as i64, details[AGE].non_compliant_resources_count.unwrap());
    let cert = findings[3]
        .non_compliant_resource
        .as_ref()
        .unwrap()
        .resource_identifier
        .as_ref()
        .unwrap()
        .device_certificate_id
        .clone()
        .unwrap();
    let one = emu
        .iot
        .list_audit_findings()
        .task_id(&id)
        .resource_identifier(ResourceIdentifier::builder().device_certificate_id(&cert).build())
        .send()
        .await
        .unwrap()
        .findings
        .unwrap();
    assert!(
        !one.is_empty()
            && one.iter().all(|f| f
                .non_compliant_resource
                .as_ref()
                .unwrap()
                .resource_identifier
                .as_ref()
                .unwrap()
                .device_certificate_id
                .as_deref()
                == Some(cert.as_str()))
    );
    let e = emu
        .iot
        .list_audit_findings()
        .task_id(&id)
        .resource_identifier(ResourceIdentifier::builder().device_certificate_id("abc").build())
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("deviceCertificateId"), "{}", message(&e));

    // Time-range mode finds the same findings.
    let t0 = DateTime::from_secs(1_768_435_200);
    let t1 = DateTime::from_secs(1_768_435_200 + 3600);
    let ranged: Vec<_> = emu
        .iot
        .list_audit_findings()
        .start_time(t0)
        .end_time(t1)
        .max_results(250)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(ranged.len(), findings.len());
    let empty =
        emu.iot.list_audit_findings().start_time(t0).end_time(DateTime::from_secs(1_768_435_201)).send().await.unwrap();
    assert!(empty.findings.unwrap().is_empty() && empty.next_token.is_none());

    // taskId XOR time range; maxResults bounds; tokens bound to their query; suppressed filter.
    for req in [
        emu.iot.list_audit_findings(),
        emu.iot.list_audit_findings().task_id(&id).start_time(t0).end_time(t1),
        emu.iot.list_audit_findings().start_time(t0),
        emu.iot.list_audit_findings().task_id(&id).end_time(t1),
    ] {
        let e = req.send().await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_invalid_request_exception(), "{e:?}");
    }
    for n in [0, 251] {
        let e = emu.iot.list_audit_findings().task_id(&id).max_results(n).send().await.unwrap_err();
        assert!(message(&e).contains("maxResults"));
    }
    let e = emu
        .iot
        .list_audit_findings()
        .task_id(&id)
        .check_name(AGE)
        .set_next_token(p.next_token)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("nextToken"), "{}", message(&e));
    let e = emu
        .iot
        .list_audit_findings()
        .start_time(DateTime::from_secs(1_768_435_200 - 91 * 86_400))
        .end_time(t1)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("90 days"), "{}", message(&e));
    let suppressed = emu.iot.list_audit_findings().task_id(&id).list_suppressed_findings(true).send().await.unwrap();
    assert!(suppressed.findings.unwrap().is_empty());
    let unsuppressed = emu.iot.list_audit_findings().task_id(&id).list_suppressed_findings(false).send().await.unwrap();
    assert_eq!(unsuppressed.findings.unwrap().len(), 25);
    // An unknown task has no findings (no 404 is modelled).
    let none = emu.iot.list_audit_findings().task_id("0123456789abcdef0123456789abcdef").send().await.unwrap();
    assert!(none.findings.unwrap().is_empty());
}

#[tokio::test]
async fn fleet_drift_makes_consecutive_audits_differ() {
    let emu = Emu::start(&["--fleet-devices", "1000", "--noncompliant-share", "0.1", "--drift-share", "0.3"]);
    emu.enable(&[EXPIRING]).await;
    let mut sets = Vec::new();
    for _ in 0..2 {
        let id = emu.run_audit(&[EXPIRING]).await;
        let f: HashSet<String> = emu
            .iot
            .list_audit_findings()
            .task_id(&id)
            .max_results(250)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.non_compliant_resource.unwrap().resource_identifier.unwrap().device_certificate_id.unwrap())
            .collect();
        sets.push(f);
    }
    let fixed = sets[0].difference(&sets[1]).count();
    let new = sets[1].difference(&sets[0]).count();
    let persisting = sets[0].intersection(&sets[1]).count();
    assert!(fixed > 0 && new > 0 && persisting > 0, "fixed {fixed}, new {new}, persisting {persisting}");
    let fleet = emu.admin_get("fleet").await;
    assert_eq!(fleet["driftEpoch"], 2);
}

#[tokio::test]
async fn failing_checks_and_failed_tasks() {
    let emu = Emu::start(&["--fail-check", "LOGGING_DISABLED_CHECK=INSUFFICIENT_PERMISSIONS"]);
    emu.enable(&[LOGGING, EXPIRING]).await;
    let mixed = emu.run_audit(&[LOGGING, EXPIRING]).await;
    let d = emu.iot.describe_audit_task().task_id(&mixed).send().await.unwrap();
    assert_eq!(d.task_status, Some(AuditTaskStatus::Completed), "a task that ran to the end is COMPLETED");
    let l = &d.audit_details.as_ref().unwrap()[LOGGING];
    assert_eq!(l.check_run_status, Some(aws_sdk_iot::types::AuditCheckRunStatus::Failed));
    assert_eq!(l.error_code.as_deref(), Some("INSUFFICIENT_PERMISSIONS"));
    assert!(l.message.is_some());
    assert_eq!(d.audit_details.as_ref().unwrap()[EXPIRING].error_code, None);
    let failed = emu.run_audit(&[LOGGING]).await;
    let d = emu.iot.describe_audit_task().task_id(&failed).send().await.unwrap();
    assert_eq!(d.task_status, Some(AuditTaskStatus::Failed), "every check failed");
}

/// One case per frequency, including LAST and day 31 in February.
#[tokio::test]
async fn scheduled_audits_fire_on_clock_advance() {
    // 2026-01-15 is a Thursday.
    let emu = Emu::start(&[]);
    emu.enable(&[LOGGING]).await;
    let mk = |name: &str, f: AuditFrequency, dom: Option<&str>, dow: Option<DayOfWeek>| {
        emu.iot
            .create_scheduled_audit()
            .scheduled_audit_name(name)
            .frequency(f)
            .set_day_of_month(dom.map(Into::into))
            .set_day_of_week(dow)
            .target_check_names(LOGGING)
            .send()
    };
    mk("daily", AuditFrequency::Daily, None, None).await.unwrap();
    mk("weekly-sat", AuditFrequency::Weekly, None, Some(DayOfWeek::Sat)).await.unwrap();
    mk("biweekly-mon", AuditFrequency::Biweekly, None, Some(DayOfWeek::Mon)).await.unwrap();
    mk("monthly-31", AuditFrequency::Monthly, Some("31"), None).await.unwrap();
    mk("monthly-last", AuditFrequency::Monthly, Some("LAST"), None).await.unwrap();

    // Through 2026-03-01T00:00:00Z plus a minute for the last runs to finish.
    let r = emu.admin("clock/advance", serde_json::json!({ "to": 1_772_323_200.0 + 120.0 })).await;
    assert!(r["tasksStarted"].as_array().unwrap().len() > 40);
    let all = emu
        .iot
        .list_audit_tasks()
        .start_time(DateTime::from_secs(1_768_435_200))
        .end_time(DateTime::from_secs(1_772_323_200 + 3600))
        .task_type(AuditTaskType::ScheduledAuditTask)
        .max_results(250)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let mut runs: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for t in &all {
        let d = emu.iot.describe_audit_task().task_id(t.task_id.clone().unwrap()).send().await.unwrap();
        assert_eq!(d.task_type, Some(AuditTaskType::ScheduledAuditTask));
        assert_eq!(d.task_status, Some(AuditTaskStatus::Completed));
        runs.entry(d.scheduled_audit_name.unwrap()).or_default().push(d.task_start_time.unwrap().secs());
    }
    for v in runs.values_mut() {
        v.sort();
    }
    let day = |m: u32, d: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp()
    };
    // Daily from Jan 16 through Mar 1: 16 + 28 + 1 = 45 runs.
    assert_eq!(runs["daily"].len(), 45);
    assert_eq!(runs["daily"][0], day(1, 16));
    assert_eq!(
        runs["weekly-sat"],
        vec![day(1, 17), day(1, 24), day(1, 31), day(2, 7), day(2, 14), day(2, 21), day(2, 28)]
    );
    assert_eq!(runs["biweekly-mon"], vec![day(1, 19), day(2, 2), day(2, 16)]);
    assert_eq!(runs["monthly-31"], vec![day(1, 31), day(2, 28)], "day 31 runs on February's last day");
    assert_eq!(runs["monthly-last"], vec![day(1, 31), day(2, 28)]);
    // Scheduled tasks do not count toward the on-demand limit.
    for _ in 0..10 {
        emu.iot.start_on_demand_audit_task().target_check_names(LOGGING).send().await.unwrap();
    }
}

#[tokio::test]
async fn errors_on_the_wire_and_unknown_routes() {
    let emu = Emu::start(&[]);
    // Raw wire: header, status, JSON body.
    let r = emu.http.get(format!("{}/audit/scheduledaudits/nope", emu.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.headers()["x-amzn-ErrorType"].to_str().unwrap().starts_with("ResourceNotFoundException:"));
    assert!(r.headers().contains_key("x-amzn-RequestId"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("nope"));
    // Unknown operations: 404 UnknownOperationException, surfaced as unhandled with its code.
    let r = emu.http.get(format!("{}/audit/relatedresources", emu.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.headers()["x-amzn-ErrorType"].to_str().unwrap().starts_with("UnknownOperationException"));
    // DescribeAuditFinding of an id no audit produced.
    let r = emu.http.get(format!("{}/audit/findings/abc", emu.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.headers()["x-amzn-ErrorType"].to_str().unwrap().starts_with("ResourceNotFoundException"));
    let r = emu.http.delete(format!("{}/audit/findings", emu.url)).send().await.unwrap();
    assert!(r.headers()["x-amzn-ErrorType"].to_str().unwrap().starts_with("UnknownOperationException"));
    // Malformed bodies name the problem.
    let r = emu.http.post(format!("{}/audit/findings", emu.url)).body("{not json").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.headers()["x-amzn-ErrorType"].to_str().unwrap().starts_with("InvalidRequestException"));
    let r = emu
        .http
        .post(format!("{}/audit/findings", emu.url))
        .body(r#"{"taskId":"abc","maxResults":"9"}"#)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("maxResults"), "{body}");
    // Percent-encoded labels are decoded before validation.
    let r = emu.http.get(format!("{}/audit/scheduledaudits/a%20b", emu.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = emu.http.get(format!("{}/audit/scheduledaudits/a%2Db", emu.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404, "a-b is well formed and unknown");
}

#[tokio::test]
async fn throttling_and_injected_faults_are_typed_errors() {
    let emu = Emu::start(&["--rate-limits"]);
    // ListAuditFindings allows 10/s: a burst of 15 gets at least 4 ThrottlingException (400).
    let mut throttled = 0;
    for _ in 0..15 {
        match emu.iot.list_audit_findings().task_id("abc").send().await {
            Ok(_) => {}
            Err(e) => {
                let service = e.as_service_error().expect("a service error");
                assert!(service.is_throttling_exception(), "{e:?}");
                assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
                throttled += 1;
            }
        }
    }
    assert!(throttled >= 4, "throttled {throttled}");
    // Runtime faults: all 5xx, then scripted throttling, then off.
    emu.http
        .put(format!("{}/_emulator/faults", emu.url))
        .json(&serde_json::json!({ "errorShare": 1.0 }))
        .send()
        .await
        .unwrap();
    let e = emu.iot.describe_account_audit_configuration().send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_internal_failure_exception(), "{e:?}");
    assert_eq!(code(&e).as_deref(), Some("InternalFailureException"));
    emu.http
        .put(format!("{}/_emulator/faults", emu.url))
        .json(&serde_json::json!({ "throttleNext": 2 }))
        .send()
        .await
        .unwrap();
    assert!(emu.iot.describe_account_audit_configuration().send().await.is_err());
    assert!(emu.iot.describe_account_audit_configuration().send().await.is_err());
    assert!(emu.iot.describe_account_audit_configuration().send().await.is_ok());
    let bad = emu
        .http
        .put(format!("{}/_emulator/faults", emu.url))
        .json(&serde_json::json!({ "errorShare": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    // The SDK's standard retries ride out injected throttling.
    emu.http
        .put(format!("{}/_emulator/faults", emu.url))
        .json(&serde_json::json!({ "throttleNext": 2 }))
        .send()
        .await
        .unwrap();
    let retrying = aws_sdk_iot::Client::from_conf(
        emu.iot
            .config()
            .to_builder()
            .retry_config(
                aws_sdk_iot::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(10)),
            )
            .build(),
    );
    retrying.describe_account_audit_configuration().send().await.expect("retried past two throttles");
}
