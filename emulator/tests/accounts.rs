//! Several accounts and regions in one emulator, and STS: every account-region has its own
//! Device Defender (state, fleet, quotas), chosen by the request's access key and SigV4 region;
//! `AssumeRole` hands out credentials bound to the role's account, only for declared roles
//! that trust the caller. Through `aws-sdk-iot`, `aws-sdk-sts` and `aws-sdk-sns`.

mod common;

use aws_sdk_iot::config::{BehaviorVersion, Credentials, Region};
use common::Emu;
use serde_json::json;

const HUB: &str = "111111111111";
const MEMBER: &str = "222222222222";
const ROLE: &str = "arn:aws:iam::222222222222:role/audit-hub-reader";
const CHECK: &str = "DEVICE_CERTIFICATE_SHARED_CHECK";

fn iot(emu: &Emu, key: &str, region: &str, token: Option<String>) -> aws_sdk_iot::Client {
    aws_sdk_iot::Client::from_conf(
        aws_sdk_iot::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(Credentials::new(key, "secret", token, None, "tests"))
            .endpoint_url(&emu.url)
            .retry_config(aws_sdk_iot::config::retry::RetryConfig::disabled())
            .build(),
    )
}

fn sts(emu: &Emu, key: &str) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(key, "secret", None, None, "tests"))
            .endpoint_url(&emu.url)
            .build(),
    )
}

fn start() -> Emu {
    Emu::start(&[
        "--access-key",
        &format!("HUBKEY={HUB}"),
        "--access-key",
        &format!("MEMBERKEY={MEMBER}"),
        "--role",
        &format!("{ROLE}={HUB}"),
    ])
}

async fn enable_and_audit(c: &aws_sdk_iot::Client) -> String {
    c.update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .audit_check_configurations(CHECK, aws_sdk_iot::types::AuditCheckConfiguration::builder().enabled(true).build())
        .send()
        .await
        .unwrap();
    c.start_on_demand_audit_task().target_check_names(CHECK).send().await.unwrap().task_id.unwrap()
}

#[tokio::test]
async fn each_account_region_has_its_own_device_defender() {
    let emu = start();
    let hub = iot(&emu, "HUBKEY", "us-east-1", None);
    let member_us = iot(&emu, "MEMBERKEY", "us-east-1", None);
    let member_eu = iot(&emu, "MEMBERKEY", "eu-west-1", None);
    let t_hub = enable_and_audit(&hub).await;
    // Nothing configured in the member's regions: its configuration is its own.
    let cfg = member_us.describe_account_audit_configuration().send().await.unwrap();
    assert!(cfg.audit_check_configurations.unwrap_or_default().values().all(|c| !c.enabled));
    let t_us = enable_and_audit(&member_us).await;
    let t_eu = enable_and_audit(&member_eu).await;
    // One seed: the same task ids in every account-region (ids are not unique across accounts).
    assert_eq!((t_hub.as_str(), t_us.as_str()), (t_us.as_str(), t_eu.as_str()));
    emu.advance(120.0).await;
    let counts = |c: aws_sdk_iot::Client, t: String| async move {
        let d = c.describe_audit_task().task_id(t).send().await.unwrap();
        d.audit_details.unwrap()[CHECK].non_compliant_resources_count.unwrap()
    };
    let (a, b, c) = (
        counts(hub.clone(), t_hub.clone()).await,
        counts(member_us.clone(), t_us).await,
        counts(member_eu, t_eu).await,
    );
    assert!(a != b || b != c, "the fleets differ by account-region: {a} {b} {c}");
    // The default account (any other key) is a fourth Device Defender: no such task there.
    let e = emu.iot.describe_audit_task().task_id(&t_hub).send().await.unwrap_err();
    assert_eq!(e.into_service_error().meta().code(), Some("ResourceNotFoundException"));
    let accounts = emu.admin_get("accounts").await;
    assert_eq!(accounts["accountRegions"].as_array().unwrap().len(), 4, "{accounts}");
    // Admin calls name their account-region.
    let n = emu.admin_get(&format!("notifications/{t_hub}?account={HUB}&region=us-east-1")).await;
    assert_eq!(n["accountId"], HUB);
}

#[tokio::test]
async fn quotas_are_per_account_region() {
    let emu = Emu::start(&[
        "--access-key",
        &format!("HUBKEY={HUB}"),
        "--access-key",
        &format!("MEMBERKEY={MEMBER}"),
        "--rate-limits",
    ]);
    let hub = iot(&emu, "HUBKEY", "us-east-1", None);
    let member = iot(&emu, "MEMBERKEY", "us-east-1", None);
    // DescribeAccountAuditConfiguration: 5 TPS each; a burst of 5 in one account leaves the
    // other's bucket full.
    for _ in 0..5 {
        hub.describe_account_audit_configuration().send().await.unwrap();
    }
    let throttled = hub.describe_account_audit_configuration().send().await.unwrap_err();
    assert_eq!(throttled.into_service_error().meta().code(), Some("ThrottlingException"));
    for _ in 0..5 {
        member.describe_account_audit_configuration().send().await.unwrap();
    }
}

#[tokio::test]
async fn assume_role_gives_credentials_in_the_roles_account() {
    let emu = start();
    let out = sts(&emu, "HUBKEY")
        .assume_role()
        .role_arn(ROLE)
        .role_session_name("audit-hub")
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let user = out.assumed_role_user.unwrap();
    assert_eq!(user.arn, "arn:aws:sts::222222222222:assumed-role/audit-hub-reader/audit-hub");
    let creds = out.credentials.unwrap();
    assert!(creds.access_key_id.starts_with("ASIA"));
    // GetCallerIdentity with them: the member account, the assumed-role ARN.
    let me = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                creds.access_key_id.clone(),
                creds.secret_access_key.clone(),
                Some(creds.session_token.clone()),
                None,
                "assumed",
            ))
            .endpoint_url(&emu.url)
            .build(),
    );
    let id = me.get_caller_identity().send().await.unwrap();
    assert_eq!((id.account(), id.arn()), (Some(MEMBER), Some(user.arn.as_str())));
    // As AWS: the session's UserId is the role id and the session name (the AssumedRoleId).
    assert_eq!(id.user_id(), Some(user.assumed_role_id.as_str()));
    assert!(user.assumed_role_id.starts_with("AROA") && user.assumed_role_id.ends_with(":audit-hub"));
    // The audit API with them acts in the member account: the member's task, not the hub's.
    let member = iot(&emu, "MEMBERKEY", "eu-west-1", None);
    let task = enable_and_audit(&member).await;
    let as_role = iot(&emu, &creds.access_key_id, "eu-west-1", Some(creds.session_token.clone()));
    assert!(as_role.describe_audit_task().task_id(&task).send().await.is_ok());
    // 15 minutes later they have expired.
    emu.advance(901.0).await;
    let e = as_role.describe_audit_task().task_id(&task).send().await.unwrap_err();
    assert_eq!(e.into_service_error().meta().code(), Some("ExpiredTokenException"));
}

#[tokio::test]
async fn roles_not_declared_or_not_trusting_the_caller_are_refused() {
    let emu = start();
    let denied = |e: aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>| {
        let e = e.into_service_error();
        (e.meta().code().map(str::to_owned), e.meta().message().map(str::to_owned))
    };
    // The member itself is not trusted by the role (only the hub is).
    let (code, msg) =
        denied(sts(&emu, "MEMBERKEY").assume_role().role_arn(ROLE).role_session_name("x1").send().await.unwrap_err());
    assert_eq!(code.as_deref(), Some("AccessDenied"));
    assert!(msg
        .unwrap()
        .contains("arn:aws:iam::222222222222:user/emulator is not authorized to perform: sts:AssumeRole"));
    let other = "arn:aws:iam::222222222222:role/not-declared";
    let (code, _) =
        denied(sts(&emu, "HUBKEY").assume_role().role_arn(other).role_session_name("x1").send().await.unwrap_err());
    assert_eq!(code.as_deref(), Some("AccessDenied"));
    let (code, msg) = denied(
        sts(&emu, "HUBKEY")
            .assume_role()
            .role_arn(ROLE)
            .role_session_name("x1")
            .duration_seconds(7200)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(code.as_deref(), Some("ValidationError"));
    assert!(msg.unwrap().contains("MaxSessionDuration"));
    // Declared at run time through the admin API, then assumable.
    emu.admin("roles", json!({ "roleArn": other, "trustedAccounts": [HUB], "maxSessionSecs": 7200 })).await;
    assert!(sts(&emu, "HUBKEY")
        .assume_role()
        .role_arn(other)
        .role_session_name("x1")
        .duration_seconds(7200)
        .send()
        .await
        .is_ok());
}

#[tokio::test]
async fn topics_are_created_in_the_callers_account_region_and_subscribed_across_accounts() {
    let emu = start();
    let sns = |key: &str, region: &str| {
        aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .region(aws_sdk_sns::config::Region::new(region.to_owned()))
                .credentials_provider(aws_sdk_sns::config::Credentials::new(key, "secret", None, None, "tests"))
                .endpoint_url(&emu.url)
                .build(),
        )
    };
    let topic = sns("MEMBERKEY", "eu-west-1").create_topic().name("audit").send().await.unwrap().topic_arn.unwrap();
    assert_eq!(topic, "arn:aws:sns:eu-west-1:222222222222:audit");
    let sub = sns("HUBKEY", "us-east-1")
        .subscribe()
        .topic_arn(&topic)
        .protocol("lambda")
        .endpoint("arn:aws:lambda:us-east-1:111111111111:function:audit-notification")
        .send()
        .await
        .unwrap();
    assert!(sub.subscription_arn.unwrap().starts_with(&topic));
    let hub_topics = sns("HUBKEY", "us-east-1").list_topics().send().await.unwrap().topics.unwrap_or_default();
    assert!(hub_topics.is_empty(), "the member's topic is not listed in the hub's account");
}

/// SNS to SQS across accounts (the hub's fan-in): the topic owner's subscription of another
/// account's queue waits for confirmation; the queue gets a `SubscriptionConfirmation` with a
/// token, nothing published reaches it until `ConfirmSubscription`, then every message arrives
/// in SNS's JSON envelope with its topic ARN.
#[tokio::test]
async fn a_cross_account_queue_subscription_is_confirmed_by_token_then_gets_envelopes() {
    let emu = start();
    let sns = |key: &str, region: &str| {
        aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .region(aws_sdk_sns::config::Region::new(region.to_owned()))
                .credentials_provider(aws_sdk_sns::config::Credentials::new(key, "secret", None, None, "tests"))
                .endpoint_url(&emu.url)
                .build(),
        )
    };
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "secret", None, None, "tests"))
            .endpoint_url(&emu.url)
            .build(),
    );
    let url = sqs.create_queue().queue_name("fan-in").send().await.unwrap().queue_url.unwrap();
    let queue_arn = "arn:aws:sqs:us-east-1:123456789012:fan-in";
    let member = sns("MEMBERKEY", "eu-west-1");
    let topic = member.create_topic().name("audit").send().await.unwrap().topic_arn.unwrap();
    let sub = member.subscribe().topic_arn(&topic).protocol("sqs").endpoint(queue_arn).send().await.unwrap();
    assert_eq!(sub.subscription_arn.as_deref(), Some("pending confirmation"));
    member.publish().topic_arn(&topic).message("before").send().await.unwrap();

    let receive = || async {
        let r = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        let msgs = r.messages.unwrap_or_default();
        for m in &msgs {
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
        msgs.into_iter()
            .map(|m| serde_json::from_str::<serde_json::Value>(&m.body.unwrap()).unwrap())
            .collect::<Vec<_>>()
    };
    let got = receive().await;
    assert_eq!(got.len(), 1, "only the confirmation request: {got:?}");
    assert_eq!(got[0]["Type"], "SubscriptionConfirmation");
    assert_eq!(got[0]["TopicArn"], topic.as_str());
    let token = got[0]["Token"].as_str().unwrap();
    assert!(got[0]["SubscribeURL"].as_str().unwrap().contains("Action=ConfirmSubscription"));

    let bad = sns("test", "eu-west-1").confirm_subscription().topic_arn(&topic).token("forged").send().await;
    assert!(bad.is_err(), "a wrong token confirms nothing");
    let confirmed =
        sns("test", "eu-west-1").confirm_subscription().topic_arn(&topic).token(token).send().await.unwrap();
    assert!(confirmed.subscription_arn.unwrap().starts_with(&topic));
    member.publish().topic_arn(&topic).message("after").subject("s").send().await.unwrap();
    let got = receive().await;
    assert_eq!(got.len(), 1);
    assert_eq!((got[0]["Type"].as_str(), got[0]["Message"].as_str()), (Some("Notification"), Some("after")));
    assert_eq!(got[0]["TopicArn"], topic.as_str());

    // The queue owner's own subscription needs no confirmation.
    let own = sns("test", "us-east-1").create_topic().name("own").send().await.unwrap().topic_arn.unwrap();
    let sub =
        sns("test", "us-east-1").subscribe().topic_arn(&own).protocol("sqs").endpoint(queue_arn).send().await.unwrap();
    assert!(sub.subscription_arn.unwrap().starts_with(&own));
    sns("test", "us-east-1").publish().topic_arn(&own).message("mine").send().await.unwrap();
    assert_eq!(receive().await[0]["Message"], "mine");
}

#[tokio::test]
async fn undeclared_accounts_and_bad_options_are_named() {
    let emu = start();
    emu.admin("accounts", json!({ "accountId": "333333333333", "accessKeyId": "NEWKEY" })).await;
    let fresh = iot(&emu, "NEWKEY", "ap-southeast-2", None);
    assert!(fresh.describe_account_audit_configuration().send().await.is_ok());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_device-defender-emulator"))
        .args(["--port", "0", "--access-key", "K=12"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'12' is not a 12-digit account id"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
