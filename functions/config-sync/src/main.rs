#![recursion_limit = "256"]
//! Lambda entry point: builds the clients once, then serves invocations.

use audit_shared::aws::dynamodb::DynamoSetupStore;
use audit_shared::aws::iot::IotAuditSetup;
use audit_shared::aws::lambda::{init_logging, required_env, sdk_config};
use audit_shared::aws::sns::SnsDigestPublisher;
use config_sync::{SyncConfig, Syncer};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging("info");
    let config = SyncConfig::from_lookup(|k| std::env::var(k).ok())?;
    let (table, topic) = (required_env("TABLE_NAME")?, required_env("DIGEST_TOPIC_ARN")?);
    let sdk = sdk_config(8).await;
    let syncer = Arc::new(Syncer {
        api: IotAuditSetup::new(aws_sdk_iot::Client::new(&sdk)),
        store: DynamoSetupStore::new(aws_sdk_dynamodb::Client::new(&sdk), table, 400),
        publisher: SnsDigestPublisher::new(aws_sdk_sns::Client::new(&sdk), topic),
        config,
        http: config_sync::response_client(),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let syncer = syncer.clone();
        async move {
            let remaining = event.context.deadline().duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
            syncer.handle(event.payload, remaining).await.map_err(Error::from)
        }
    }))
    .await
}
