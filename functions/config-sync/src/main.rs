#![recursion_limit = "256"]
//! Lambda entry point: builds the clients once, then serves invocations. It never stops at
//! start-up: CloudFormation waits for an answer, so a configuration that cannot be read is
//! served as a FAILED answer to every custom resource request, naming what was wrong.

use audit_shared::aws::dynamodb::DynamoSetupStore;
use audit_shared::aws::iot::IotAuditSetup;
use audit_shared::aws::lambda::{init_logging, invocation_time, sdk_config};
use audit_shared::aws::sns::SnsDigestPublisher;
use config_sync::{handler, Config, Responder, Syncer};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;
use std::time::SystemTime;
use tracing::error;

/// Attempts per CloudFormation response PUT.
const RESPONSE_ATTEMPTS: u32 = 4;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging("info");
    // Without the system's CA certificates no response can reach CloudFormation's HTTPS URL:
    // every invocation then fails with that reason (in the function's log and its error).
    let responder = match Responder::new(RESPONSE_ATTEMPTS) {
        Ok(r) => Arc::new(r),
        Err(why) => {
            error!(why, "config-sync cannot answer CloudFormation");
            return lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
                let why = why.clone();
                async move { Err::<Value, Error>(Error::from(format!("config-sync cannot start: {why}"))) }
            }))
            .await;
        }
    };
    let config = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            let why = e.to_string();
            error!(why, "config-sync cannot start: answering every CloudFormation request FAILED");
            return lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
                let (responder, why) = (responder.clone(), why.clone());
                async move { handler::refuse(&responder, event.payload, &why).await.map_err(Error::from) }
            }))
            .await;
        }
    };
    let sdk = sdk_config(config.max_attempts).await;
    let fallback = config.deadline_fallback;
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
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (syncer, responder) = (syncer.clone(), responder.clone());
        async move {
            let (remaining, warning) = invocation_time(event.context.deadline(), SystemTime::now(), fallback);
            if let Some(w) = warning {
                tracing::warn!("{w}");
            }
            handler::handle(syncer, &responder, event.payload, remaining).await.map_err(Error::from)
        }
    }))
    .await
}
