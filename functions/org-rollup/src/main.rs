#![recursion_limit = "256"]
//! Lambda entry point: builds the clients once, then rolls up on every scheduled invocation.

use audit_shared::aws::dynamodb::{DynamoMemberStore, DynamoRollupStore};
use audit_shared::aws::lambda::{init_logging, sdk_config};
use audit_shared::aws::member_access::MemberAccess;
use audit_shared::aws::organizations::OrganizationsDirectory;
use audit_shared::aws::sns::SnsDigestPublisher;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use org_rollup::{Config, RollupPorts};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging("info");
    let config = Arc::new(Config::from_lookup(|k| std::env::var(k).ok())?);
    let sdk = sdk_config(config.max_attempts).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let store = Arc::new(DynamoRollupStore::new(
        ddb.clone(),
        config.table_name.clone(),
        config.retention_days,
        config.home.clone(),
    ));
    let members = Arc::new(DynamoMemberStore::new(ddb, config.table_name.clone(), store.meter()));
    let publisher = Arc::new(SnsDigestPublisher::new(aws_sdk_sns::Client::new(&sdk), config.digest_topic_arn.clone()));
    let probe = Arc::new(MemberAccess::new(
        aws_sdk_iot::Config::new(&sdk),
        sdk.clone(),
        config.home.clone(),
        config.member_role_name.clone(),
        config.partition.clone(),
    ));
    let organization = Arc::new(OrganizationsDirectory::new(aws_sdk_organizations::Client::new(&sdk)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (members, store, publisher, probe, organization, config) =
            (members.clone(), store.clone(), publisher.clone(), probe.clone(), organization.clone(), config.clone());
        async move {
            let clock = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
            let now = org_rollup::rollup_time(&event.payload, clock);
            let ports = RollupPorts {
                members: &*members,
                store: &*store,
                publisher: &*publisher,
                probe: &*probe,
                organization: config.retire_left_accounts.then_some(&*organization),
            };
            let r = org_rollup::roll_up(ports, &config, now).await?;
            Ok::<_, Error>(json!({
                "at": r.at,
                "members": r.members.len(),
                "silent": r.silent().count(),
                "unreadable": r.with_problems().count(),
                "retired": r.retired.len(),
            }))
        }
    }))
    .await
}
