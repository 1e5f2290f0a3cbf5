//! DescribeAuditFinding and IoT's tagging operations through `aws-sdk-iot`.

mod common;

use aws_sdk_iot::types::{AuditFrequency, Tag};
use common::{code, Emu};

const EXPIRING: &str = "DEVICE_CERTIFICATE_EXPIRING_CHECK";
const LOGGING: &str = "LOGGING_DISABLED_CHECK";

#[tokio::test]
async fn describe_audit_finding_answers_what_list_audit_findings_returned() {
    let emu = Emu::start(&["--noncompliant-share", "0.2"]);
    emu.enable(&[EXPIRING, LOGGING]).await;
    let task = emu.run_audit(&[EXPIRING, LOGGING]).await;
    let listed = emu.iot.list_audit_findings().task_id(&task).max_results(250).send().await.unwrap().findings.unwrap();
    assert!(listed.len() > 10, "{} findings", listed.len());
    for f in listed.iter().step_by(7) {
        let id = f.finding_id.clone().unwrap();
        let described = emu.iot.describe_audit_finding().finding_id(&id).send().await.unwrap().finding.unwrap();
        assert_eq!(&described, f, "the same finding as listed");
    }
    // An id no audit produced, a listed id altered, a malformed one.
    let id = listed[0].finding_id.clone().unwrap();
    let mut altered = id.clone();
    altered.replace_range(id.len() - 1.., if id.ends_with('0') { "1" } else { "0" });
    for unknown in ["0".repeat(42), altered, "f-1".to_owned()] {
        let e = emu.iot.describe_audit_finding().finding_id(&unknown).send().await.unwrap_err();
        assert_eq!(code(&e).as_deref(), Some("ResourceNotFoundException"), "{unknown}");
    }
    let e = emu.iot.describe_audit_finding().finding_id("not/valid").send().await.unwrap_err();
    assert!(code(&e).is_some(), "a malformed id is refused");
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

#[tokio::test]
async fn scheduled_audits_keep_their_tags_and_take_more() {
    let emu = Emu::start(&[]);
    emu.enable(&[LOGGING]).await;
    let arn = emu
        .iot
        .create_scheduled_audit()
        .scheduled_audit_name("daily")
        .frequency(AuditFrequency::Daily)
        .target_check_names(LOGGING)
        .tags(tag("team", "iot"))
        .send()
        .await
        .unwrap()
        .scheduled_audit_arn
        .unwrap();
    let tags = |emu: &Emu, arn: String| {
        let iot = emu.iot.clone();
        async move {
            let out = iot.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
            out.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect::<Vec<_>>()
        }
    };
    assert_eq!(tags(&emu, arn.clone()).await, [("team".to_owned(), Some("iot".to_owned()))]);
    emu.iot
        .tag_resource()
        .resource_arn(&arn)
        .tags(tag("team", "security"))
        .tags(tag("tier", "prod"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(&emu, arn.clone()).await,
        [("team".to_owned(), Some("security".to_owned())), ("tier".to_owned(), Some("prod".to_owned()))]
    );
    emu.iot.untag_resource().resource_arn(&arn).tag_keys("team").tag_keys("absent").send().await.unwrap();
    assert_eq!(tags(&emu, arn.clone()).await, [("tier".to_owned(), Some("prod".to_owned()))]);
    // Limits of the model and of tagging: 50 tags, keys 1–128.
    let mut many = emu.iot.tag_resource().resource_arn(&arn);
    for i in 0..50 {
        many = many.tags(tag(&format!("k{i}"), "v"));
    }
    let e = many.send().await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("LimitExceededException"));
    let e = emu.iot.tag_resource().resource_arn(&arn).tags(tag(&"k".repeat(129), "v")).send().await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("InvalidRequestException"));
    // Unknown resources, and a deleted audit's tags go with it.
    let other = arn.replace("daily", "weekly");
    let e = emu.iot.list_tags_for_resource().resource_arn(&other).send().await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("ResourceNotFoundException"));
    let e = emu.iot.tag_resource().resource_arn(&other).tags(tag("a", "b")).send().await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("ResourceNotFoundException"));
    emu.iot.delete_scheduled_audit().scheduled_audit_name("daily").send().await.unwrap();
    let e = emu.iot.untag_resource().resource_arn(&arn).tag_keys("tier").send().await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("ResourceNotFoundException"));
}
