#![recursion_limit = "256"]
//! Lambda entry point: builds the clients once, then sweeps on every scheduled invocation.

use audit_shared::aws::dynamodb::DynamoTaskStore;
use audit_shared::aws::iot::IotAuditReader;
use audit_shared::aws::lambda::{init_logging, sdk_config};
use audit_shared::aws::sqs::SqsContinuationQueue;
use audit_sweeper::Config;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging("info");
    let config = Config::from_lookup(|k| std::env::var(k).ok())?;
    let sdk = sdk_config(config.max_attempts).await;
    let reader = Arc::new(IotAuditReader::new(aws_sdk_iot::Client::new(&sdk)));
    let store = Arc::new(DynamoTaskStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
        config.retention_days,
    ));
    let queue =
        Arc::new(SqsContinuationQueue::new(aws_sdk_sqs::Client::new(&sdk), config.continuation_queue_url.clone()));
    let window = config.window_hours;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let (reader, store, queue) = (reader.clone(), store.clone(), queue.clone());
        async move { audit_sweeper::sweep(&*reader, &*store, &*queue, window).await.map_err(Error::from) }
    }))
    .await
}
