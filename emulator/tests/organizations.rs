//! AWS Organizations `ListAccounts` through `aws-sdk-organizations`, as the hub's roll-up calls
//! it: the management account (`--account-id`) and `--organization-reader` accounts list every
//! member, anyone else is refused; leaving and state changes (admin API) show; `MaxResults` is
//! checked and pages visit every member once.

mod common;

use aws_sdk_organizations::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_organizations::error::ProvideErrorMetadata;
use aws_sdk_organizations::types::{AccountState, AccountStatus};
use common::Emu;
use serde_json::{json, Value};

const MANAGEMENT: &str = "123456789012";
const HUB: &str = "111111111111";
const MEMBER: &str = "222222222222";
const OTHER: &str = "333333333333";
const READER_ROLE_ACCOUNT: &str = "444444444444";
const READER_ROLE: &str = "arn:aws:iam::444444444444:role/org-reader";

fn start() -> Emu {
    Emu::start(&[
        "--access-key",
        &format!("HUBKEY={HUB}"),
        "--access-key",
        &format!("MEMBERKEY={MEMBER}"),
        "--account",
        OTHER,
        "--role",
        &format!("{READER_ROLE}={HUB}"),
        "--organization-reader",
        HUB,
        "--organization-reader",
        READER_ROLE_ACCOUNT,
        "--organization-id",
        "o-a1b2c3d4e5",
    ])
}

fn org(emu: &Emu, key: &str, token: Option<String>) -> aws_sdk_organizations::Client {
    aws_sdk_organizations::Client::from_conf(
        aws_sdk_organizations::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(key, "secret", token, None, "tests"))
            .endpoint_url(&emu.url)
            .retry_config(aws_sdk_organizations::config::retry::RetryConfig::disabled())
            .build(),
    )
}

/// Every account id, through the SDK's paginator (`page_size` is `MaxResults`).
async fn listed(c: &aws_sdk_organizations::Client, page_size: Option<i32>) -> Vec<String> {
    let mut pages = c.list_accounts().set_max_results(page_size).into_paginator().send();
    let mut ids = Vec::new();
    while let Some(page) = pages.next().await {
        ids.extend(page.expect("ListAccounts answers").accounts().iter().map(|a| a.id().unwrap().to_owned()));
    }
    ids
}

async fn error_code(c: &aws_sdk_organizations::Client, max: Option<i32>, token: Option<&str>) -> (String, String) {
    let e = c.list_accounts().set_max_results(max).set_next_token(token.map(str::to_owned)).send().await.unwrap_err();
    let s = e.as_service_error().expect("a service error");
    (s.code().unwrap_or_default().to_owned(), s.message().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn the_management_account_and_readers_list_every_member_and_others_are_denied() {
    let emu = start();
    let all = [HUB, MANAGEMENT, MEMBER, OTHER, READER_ROLE_ACCOUNT];
    let management = org(&emu, "test", None);
    assert_eq!(listed(&management, None).await, all);

    let page = management.list_accounts().send().await.unwrap();
    assert!(page.next_token().is_none());
    let member = page.accounts().iter().find(|a| a.id() == Some(MEMBER)).unwrap();
    assert_eq!(member.arn(), Some("arn:aws:organizations::123456789012:account/o-a1b2c3d4e5/222222222222"));
    assert_eq!((member.email(), member.name()), (Some("222222222222@example.com"), Some("account-222222222222")));
    assert_eq!((member.state(), member.status()), (Some(&AccountState::Active), Some(&AccountStatus::Active)));
    assert_eq!(member.joined_method().map(|m| m.as_str()), Some("CREATED"));
    // The virtual start (common::START, 2026-01-15T00:00:00Z).
    assert_eq!(member.joined_timestamp().map(|t| t.secs()), Some(1_768_435_200));

    // A reader by access key, and one through an assumed role's session.
    assert_eq!(listed(&org(&emu, "HUBKEY", None), None).await, all);
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new("HUBKEY", "secret", None, None, "tests"))
            .endpoint_url(&emu.url)
            .build(),
    );
    let creds = sts.assume_role().role_arn(READER_ROLE).role_session_name("rollup").send().await.unwrap();
    let creds = creds.credentials.unwrap();
    let session = org(&emu, &creds.access_key_id, Some(creds.session_token));
    assert_eq!(listed(&session, None).await, all);

    // A member that is neither.
    let (code, message) = error_code(&org(&emu, "MEMBERKEY", None), None, None).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("AccessDeniedException", "You don't have permissions to access this resource.")
    );
}

#[tokio::test]
async fn leaving_and_state_changes_are_listed_and_the_account_itself_goes_on() {
    let emu = start();
    let management = org(&emu, "test", None);
    let closed = emu.admin(&format!("organization/accounts/{OTHER}/state"), json!({ "state": "CLOSED" })).await;
    assert_eq!(closed["accounts"][3], json!({ "id": OTHER, "state": "CLOSED", "status": "SUSPENDED" }));
    let r = emu.http.delete(format!("{}/_emulator/organization/accounts/{MEMBER}", emu.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let page = management.list_accounts().send().await.unwrap();
    let ids: Vec<&str> = page.accounts().iter().filter_map(|a| a.id()).collect();
    assert_eq!(ids, [HUB, MANAGEMENT, OTHER, READER_ROLE_ACCOUNT]);
    let other = page.accounts().iter().find(|a| a.id() == Some(OTHER)).unwrap();
    assert_eq!((other.state(), other.status()), (Some(&AccountState::Closed), Some(&AccountStatus::Suspended)));

    // The account that left still has its Device Defender, but is in no organization.
    let iot = aws_sdk_iot::Client::from_conf(
        aws_sdk_iot::Config::builder()
            .behavior_version(aws_sdk_iot::config::BehaviorVersion::latest())
            .region(aws_sdk_iot::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_iot::config::Credentials::new("MEMBERKEY", "secret", None, None, "tests"))
            .endpoint_url(&emu.url)
            .build(),
    );
    iot.describe_account_audit_configuration().send().await.expect("the account still exists");
    let (code, _) = error_code(&org(&emu, "MEMBERKEY", None), None, None).await;
    assert_eq!(code, "AWSOrganizationsNotInUseException");

    let view = emu.admin_get("organization").await;
    assert_eq!((view["id"].as_str(), view["managementAccountId"].as_str()), (Some("o-a1b2c3d4e5"), Some(MANAGEMENT)));
    assert_eq!(view["departed"], json!([MEMBER]));
    assert_eq!(view["readers"], json!([HUB, READER_ROLE_ACCOUNT]));

    // Unknown accounts are named; the management account and readers cannot leave.
    let state = |id: &str, body: Value| {
        emu.http.post(format!("{}/_emulator/organization/accounts/{id}/state", emu.url)).json(&body).send()
    };
    let r = state("999999999999", json!({ "state": "ACTIVE" })).await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("999999999999"));
    assert_eq!(state(MEMBER, json!({ "state": "ACTIVE" })).await.unwrap().status(), 404);
    assert_eq!(state(OTHER, json!({ "state": "GONE" })).await.unwrap().status(), 400);
    for (id, status) in [(MANAGEMENT, 409), (HUB, 409), ("999999999999", 404)] {
        let r = emu.http.delete(format!("{}/_emulator/organization/accounts/{id}", emu.url)).send().await.unwrap();
        assert_eq!(r.status(), status, "DELETE {id}");
    }

    // A reset brings the organization back as the options made it.
    emu.admin("reset", json!({})).await;
    assert_eq!(listed(&management, None).await.len(), 5);
}

#[tokio::test]
async fn max_results_is_checked_and_pages_of_one_visit_every_member() {
    let emu = start();
    let management = org(&emu, "test", None);
    for max in [0, 21] {
        let (code, message) = error_code(&management, Some(max), None).await;
        assert_eq!(code, "InvalidInputException", "MaxResults {max}");
        assert!(message.contains(&format!("Value '{max}' at 'maxResults'")), "{message}");
    }
    assert_eq!(error_code(&management, None, Some("not-a-token")).await.0, "InvalidInputException");

    // By hand: one account a page, a token while more remain.
    let mut token = None;
    let mut ids = Vec::new();
    loop {
        let page = management.list_accounts().max_results(1).set_next_token(token).send().await.unwrap();
        assert_eq!(page.accounts().len(), 1);
        ids.push(page.accounts()[0].id().unwrap().to_owned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(ids, [HUB, MANAGEMENT, MEMBER, OTHER, READER_ROLE_ACCOUNT]);
    assert_eq!(listed(&management, Some(1)).await, ids);
    assert_eq!(listed(&management, Some(2)).await, ids);
}

#[tokio::test]
async fn other_actions_of_the_service_are_unknown_and_a_bad_organization_id_is_refused() {
    let emu = start();
    let r = emu
        .http
        .post(&emu.url)
        .header("x-amz-target", "AWSOrganizationsV20161128.DescribeOrganization")
        .header("content-type", "application/x-amz-json-1.1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/x-amz-json-1.1");
    assert_eq!(r.json::<Value>().await.unwrap()["__type"], "UnknownOperationException");

    for (flag, value) in [("--organization-id", "o-short"), ("--organization-reader", "12345")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_device-defender-emulator"))
            .args(["--port", "0", flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{flag} '{value}'")), "{err}");
    }
}
