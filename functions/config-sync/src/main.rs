#![recursion_limit = "256"]
//! Lambda entry point: builds the clients once, then serves invocations.

use audit_shared::aws::dynamodb::DynamoSetupStore;
use audit_shared::aws::iot::IotAuditSetup;
use audit_shared::aws::lambda::{init_logging, sdk_config};
use audit_shared::aws::sns::SnsDigestPublisher;
use config_sync::{handler, Config, Responder, Syncer};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Attempts per CloudFormation response PUT.
const RESPONSE_ATTEMPTS: u32 = 4;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging("info");
    let config = Config::from_lookup(|k| std::env::var(k).ok())?;
    let sdk = sdk_config(config.max_attempts).await;
    let syncer = Arc::new(Syncer {
        api: IotAuditSetup::new(aws_sdk_iot::Client::new(&sdk)),
        store: DynamoSetupStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.table_name.clone(),
            config.retention_days,
        ),
        publisher: SnsDigestPublisher::new(aws_sdk_sns::Client::new(&sdk), config.digest_topic_arn.clone()),
        config,
    });
    let responder = Arc::new(Responder::new(RESPONSE_ATTEMPTS));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (syncer, responder) = (syncer.clone(), responder.clone());
        async move {
            let remaining = event.context.deadline().duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
            handler::handle(syncer, &responder, event.payload, remaining).await.map_err(Error::from)
        }
    }))
    .await
}
