//! The five audit suppression operations through `aws-sdk-iot` against the spawned emulator:
//! every rule of docs/reference/audit-suppressions.md, and audits honouring suppressions.

mod common;

use aws_sdk_iot::primitives::DateTime;
use aws_sdk_iot::types::{PolicyVersionIdentifier, ResourceIdentifier};
use common::{code, message, Emu};
use serde_json::json;
use std::collections::BTreeSet;

const SHARED: &str = "DEVICE_CERTIFICATE_SHARED_CHECK";
const CLIENT_IDS: &str = "CONFLICTING_CLIENT_IDS_CHECK";
const POLICY: &str = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK";
/// START + 30 days, in epoch seconds.
const IN_30_DAYS: i64 = 1_768_435_200 + 30 * 86_400;

fn cert(id: &str) -> ResourceIdentifier {
    ResourceIdentifier::builder().device_certificate_id(id).build()
}

fn client(id: &str) -> ResourceIdentifier {
    ResourceIdentifier::builder().client_id(id).build()
}

/// The resource identifiers of a task's findings of `check`, with their isSuppressed.
async fn findings(emu: &Emu, task: &str, check: &str, suppressed: Option<bool>) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut pages = emu
        .iot
        .list_audit_findings()
        .task_id(task)
        .check_name(check)
        .set_list_suppressed_findings(suppressed)
        .max_results(250)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for f in page.unwrap().findings.unwrap_or_default() {
            let id = f.non_compliant_resource.unwrap().resource_identifier.unwrap();
            let key = id.device_certificate_id.or(id.client_id).unwrap_or_default();
            out.push((key, f.is_suppressed.unwrap_or_default()));
        }
    }
    out
}

#[tokio::test]
async fn create_describe_update_delete_with_every_rule() {
    let emu = Emu::start(&[]);
    emu.enable(&[SHARED, CLIENT_IDS, POLICY]).await;
    let id = "a".repeat(64);
    let create = || emu.iot.create_audit_suppression().check_name(SHARED).resource_identifier(cert(&id));

    // Exactly one of expirationDate and suppressIndefinitely [ours], a future date, a known and
    // enabled check, identifier fields of the check's resource type, description ≤ 1000 of [\p{Graph}\x20].
    let cases = [
        (create().client_request_token("t1"), "expirationDate or suppressIndefinitely"),
        (
            create()
                .client_request_token("t2")
                .expiration_date(DateTime::from_secs(IN_30_DAYS))
                .suppress_indefinitely(true),
            "not both",
        ),
        (create().client_request_token("t3").expiration_date(DateTime::from_secs(1_000_000)), "expirationDate"),
        (create().client_request_token("t4").suppress_indefinitely(true).description("x".repeat(1001)), "description"),
        (create().client_request_token("t5").suppress_indefinitely(true).description("line\nbreak"), "description"),
        (create().client_request_token("bad token!").suppress_indefinitely(true), "clientRequestToken"),
        (
            emu.iot
                .create_audit_suppression()
                .check_name(SHARED)
                .resource_identifier(client("thing-1"))
                .client_request_token("t6")
                .suppress_indefinitely(true),
            "deviceCertificateId",
        ),
        (
            emu.iot
                .create_audit_suppression()
                .check_name("NOT_A_CHECK")
                .resource_identifier(cert(&id))
                .client_request_token("t7")
                .suppress_indefinitely(true),
            "checkName",
        ),
        (
            emu.iot
                .create_audit_suppression()
                .check_name("LOGGING_DISABLED_CHECK")
                .resource_identifier(ResourceIdentifier::builder().account("123456789012").build())
                .client_request_token("t8")
                .suppress_indefinitely(true),
            "not enabled",
        ),
    ];
    for (req, needle) in cases {
        let e = req.send().await.unwrap_err();
        assert_eq!(code(&e).as_deref(), Some("InvalidRequestException"), "{needle}: {e:?}");
        assert!(message(&e).contains(needle), "{needle}: {}", message(&e));
    }
    let e = emu.iot.create_audit_suppression().check_name(SHARED).client_request_token("t9").send().await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidRequestException"), "{e:?}");
    assert!(message(&e).contains("resourceIdentifier"), "{}", message(&e));

    // Create; the same token and request again is an idempotent retry; a new token is a conflict.
    let first = || {
        create()
            .client_request_token("c1")
            .expiration_date(DateTime::from_secs(IN_30_DAYS))
            .description("lab devices share a test certificate")
    };
    first().send().await.unwrap();
    first().send().await.expect("a retry with the same token succeeds");
    let e = create().client_request_token("c2").suppress_indefinitely(true).send().await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("ResourceAlreadyExistsException"), "{e:?}");
    let e = emu
        .iot
        .create_audit_suppression()
        .check_name(CLIENT_IDS)
        .resource_identifier(client("thing-9"))
        .client_request_token("c1")
        .suppress_indefinitely(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidRequestException"), "a token reused for another request");

    // Describe.
    let d =
        emu.iot.describe_audit_suppression().check_name(SHARED).resource_identifier(cert(&id)).send().await.unwrap();
    assert_eq!(d.check_name.as_deref(), Some(SHARED));
    assert_eq!(d.resource_identifier.unwrap().device_certificate_id.as_deref(), Some(id.as_str()));
    assert_eq!(d.expiration_date.map(|t| t.secs()), Some(IN_30_DAYS));
    assert_eq!(d.suppress_indefinitely, Some(false));
    assert_eq!(d.description.as_deref(), Some("lab devices share a test certificate"));
    let e = emu
        .iot
        .describe_audit_suppression()
        .check_name(SHARED)
        .resource_identifier(cert(&"b".repeat(64)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("ResourceNotFoundException"));

    // Update: indefinitely replaces the date; a description alone keeps the rest.
    emu.iot
        .update_audit_suppression()
        .check_name(SHARED)
        .resource_identifier(cert(&id))
        .suppress_indefinitely(true)
        .send()
        .await
        .unwrap();
    emu.iot
        .update_audit_suppression()
        .check_name(SHARED)
        .resource_identifier(cert(&id))
        .description("reviewed 2026-01")
        .send()
        .await
        .unwrap();
    let d =
        emu.iot.describe_audit_suppression().check_name(SHARED).resource_identifier(cert(&id)).send().await.unwrap();
    assert_eq!((d.suppress_indefinitely, d.expiration_date), (Some(true), None));
    assert_eq!(d.description.as_deref(), Some("reviewed 2026-01"));
    let e = emu
        .iot
        .update_audit_suppression()
        .check_name(SHARED)
        .resource_identifier(cert(&"c".repeat(64)))
        .suppress_indefinitely(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("ResourceNotFoundException"));

    // Delete, twice: the model gives DeleteAuditSuppression no ResourceNotFoundException.
    for _ in 0..2 {
        emu.iot.delete_audit_suppression().check_name(SHARED).resource_identifier(cert(&id)).send().await.unwrap();
    }
    let e = emu
        .iot
        .describe_audit_suppression()
        .check_name(SHARED)
        .resource_identifier(cert(&id))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("ResourceNotFoundException"));
    // The token of a deleted suppression may create it again.
    create().client_request_token("c1").suppress_indefinitely(true).send().await.unwrap();
}

#[tokio::test]
async fn list_orders_by_expiration_filters_and_pages() {
    let emu = Emu::start(&[]);
    emu.enable(&[SHARED, CLIENT_IDS, POLICY]).await;
    // 30 client-id suppressions expiring on different days, 3 indefinite, 1 policy suppression.
    for i in 0..30i64 {
        emu.iot
            .create_audit_suppression()
            .check_name(CLIENT_IDS)
            .resource_identifier(client(&format!("thing-{i:03}")))
            .client_request_token(format!("tok-{i}"))
            .expiration_date(DateTime::from_secs(IN_30_DAYS + ((i * 7) % 30) * 86_400))
            .send()
            .await
            .unwrap();
    }
    for i in 0..3 {
        emu.iot
            .create_audit_suppression()
            .check_name(CLIENT_IDS)
            .resource_identifier(client(&format!("forever-{i}")))
            .client_request_token(format!("forever-{i}"))
            .suppress_indefinitely(true)
            .send()
            .await
            .unwrap();
    }
    let policy = ResourceIdentifier::builder()
        .policy_version_identifier(
            PolicyVersionIdentifier::builder().policy_name("fleet-policy-0001").policy_version_id("2").build(),
        )
        .build();
    emu.iot
        .create_audit_suppression()
        .check_name(POLICY)
        .resource_identifier(policy.clone())
        .client_request_token("policy")
        .suppress_indefinitely(true)
        .send()
        .await
        .unwrap();

    let list = |ascending: Option<bool>, check: Option<&str>| {
        emu.iot
            .list_audit_suppressions()
            .set_ascending_order(ascending)
            .set_check_name(check.map(str::to_owned))
            .max_results(7)
            .into_paginator()
            .items()
            .send()
    };
    let mut all = Vec::new();
    let mut items = list(None, Some(CLIENT_IDS));
    while let Some(s) = items.next().await {
        all.push(s.unwrap());
    }
    assert_eq!(all.len(), 33, "every client-id suppression, pages of 7, nothing twice");
    let dates: Vec<Option<i64>> = all.iter().map(|s| s.expiration_date.map(|d| d.secs())).collect();
    let dated: Vec<i64> = dates.iter().flatten().copied().collect();
    assert!(dated.windows(2).all(|w| w[0] <= w[1]), "ascending by expiration by default");
    assert_eq!(dates[30..], [None, None, None], "indefinite ones after every dated one [ours]");
    let names: BTreeSet<String> =
        all.iter().map(|s| s.resource_identifier.clone().unwrap().client_id.unwrap()).collect();
    assert_eq!(names.len(), 33);

    let mut desc = Vec::new();
    let mut items = list(Some(false), None);
    while let Some(s) = items.next().await {
        desc.push(s.unwrap());
    }
    assert_eq!(desc.len(), 34);
    assert_eq!(desc[0].expiration_date, None, "descending: indefinite first");
    let dated: Vec<i64> = desc.iter().filter_map(|s| s.expiration_date.map(|d| d.secs())).collect();
    assert!(dated.windows(2).all(|w| w[0] >= w[1]));

    let by_resource = emu.iot.list_audit_suppressions().resource_identifier(policy).send().await.unwrap();
    let found = by_resource.suppressions.unwrap_or_default();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].check_name, POLICY);

    // A page token of one query refused by another; maxResults bounds.
    let first = emu.iot.list_audit_suppressions().max_results(5).send().await.unwrap();
    let token = first.next_token.expect("more pages");
    let e = emu.iot.list_audit_suppressions().check_name(POLICY).next_token(token).send().await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidRequestException"));
    let e = emu.iot.list_audit_suppressions().max_results(251).send().await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidRequestException"));
}

#[tokio::test]
async fn audits_honour_active_suppressions_only() {
    let emu = Emu::start(&["--noncompliant-share", "0.1", "--drift-share", "0"]);
    emu.enable(&[CLIENT_IDS, SHARED]).await;
    let before = emu.run_audit(&[CLIENT_IDS, SHARED]).await;
    let open = findings(&emu, &before, CLIENT_IDS, None).await;
    assert!(open.len() >= 3, "a few conflicting client ids: {}", open.len());
    assert!(open.iter().all(|(_, s)| !s));
    // Suppress two of them: one for a day, one indefinitely; and every shared certificate.
    let (a, b) = (open[0].0.clone(), open[1].0.clone());
    for (id, days) in [(&a, Some(1)), (&b, None)] {
        let mut req = emu
            .iot
            .create_audit_suppression()
            .check_name(CLIENT_IDS)
            .resource_identifier(client(id))
            .client_request_token(format!("s-{id}"));
        req = match days {
            Some(d) => req.expiration_date(DateTime::from_secs(1_768_435_200 + 60 + d * 86_400)),
            None => req.suppress_indefinitely(true),
        };
        req.send().await.unwrap();
    }
    let shared = findings(&emu, &before, SHARED, None).await;
    for (i, (id, _)) in shared.iter().enumerate() {
        emu.iot
            .create_audit_suppression()
            .check_name(SHARED)
            .resource_identifier(cert(id))
            .client_request_token(format!("shared-{i}"))
            .suppress_indefinitely(true)
            .send()
            .await
            .unwrap();
    }
    // Results already stored are not rewritten.
    assert!(findings(&emu, &before, CLIENT_IDS, None).await.iter().all(|(_, s)| !s));

    let during = emu.run_audit(&[CLIENT_IDS, SHARED]).await;
    let all = findings(&emu, &during, CLIENT_IDS, None).await;
    let suppressed: BTreeSet<String> = all.iter().filter(|(_, s)| *s).map(|(k, _)| k.clone()).collect();
    assert_eq!(suppressed, BTreeSet::from([a.clone(), b.clone()]));
    assert_eq!(
        findings(&emu, &during, CLIENT_IDS, Some(true)).await.len(),
        2,
        "listSuppressedFindings true: only suppressed"
    );
    assert_eq!(findings(&emu, &during, CLIENT_IDS, Some(false)).await.len(), all.len() - 2, "false: only the others");
    let task = emu.iot.describe_audit_task().task_id(&during).send().await.unwrap();
    let details = task.audit_details.unwrap();
    let c = &details[CLIENT_IDS];
    assert_eq!(c.non_compliant_resources_count, Some(all.len() as i64), "the count includes suppressed resources");
    assert_eq!(c.suppressed_non_compliant_resources_count, Some(2));
    assert_eq!(c.check_compliant, Some(false));
    let s = &details[SHARED];
    assert_eq!(s.suppressed_non_compliant_resources_count, s.non_compliant_resources_count);
    assert_eq!(s.check_compliant, Some(true), "every non-compliant resource suppressed: compliant");
    assert_eq!(s.check_run_status.as_ref().map(|r| r.as_str()), Some("COMPLETED_COMPLIANT"));
    let n = emu.admin_get(&format!("notifications/{during}")).await;
    let detail = n["auditDetails"].as_array().unwrap().iter().find(|d| d["checkName"] == SHARED).unwrap().clone();
    assert_eq!(detail["checkRunStatus"], "COMPLETED_COMPLIANT");
    assert_eq!(detail["suppressedNonCompliantResourcesCount"], detail["nonCompliantResourcesCount"]);
    assert_eq!(n["nonCompliantChecksCount"], 1);

    // Two days later the one-day suppression has expired: that finding is open again.
    emu.advance(2.0 * 86_400.0).await;
    let after = emu.run_audit(&[CLIENT_IDS]).await;
    let suppressed: BTreeSet<String> =
        findings(&emu, &after, CLIENT_IDS, Some(true)).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(suppressed, BTreeSet::from([b.clone()]), "the expired suppression stopped applying at its date");
    let view = emu.admin_get("suppressions").await;
    let active: Vec<bool> =
        view["suppressions"].as_array().unwrap().iter().map(|s| s["activeNow"].as_bool().unwrap()).collect();
    assert_eq!(active.iter().filter(|a| !**a).count(), 1, "the admin view shows the expired one: {view}");
    assert_eq!(view["suppressions"][0]["checkName"], json!(CLIENT_IDS));
}

#[tokio::test]
async fn suppression_operations_are_rate_limited_at_aws_quotas() {
    let emu = Emu::start(&["--rate-limits"]);
    let mut throttled = 0;
    for _ in 0..30 {
        if let Err(e) = emu.iot.list_audit_suppressions().send().await {
            assert_eq!(code(&e).as_deref(), Some("ThrottlingException"));
            throttled += 1;
        }
    }
    assert!(throttled > 0, "30 calls at once exceed 10/s");
}
