#![recursion_limit = "256"]
//! Lambda entry point: builds the clients once, then sweeps on every scheduled invocation.

use audit_shared::aws::dynamodb::DynamoTaskStore;
use audit_shared::aws::iot::IotAuditReader;
use audit_shared::aws::sqs::SqsContinuationQueue;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

fn required(name: &str) -> Result<String, Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("environment variable {name} is required").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .without_time()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let window = audit_sweeper::window_hours(|k| std::env::var(k).ok())?;
    let (table, queue_url) = (required("TABLE_NAME")?, required("CONTINUATION_QUEUE_URL")?);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::adaptive().with_max_attempts(10))
        .load()
        .await;
    let reader = Arc::new(IotAuditReader::new(aws_sdk_iot::Client::new(&sdk)));
    let store = Arc::new(DynamoTaskStore::new(aws_sdk_dynamodb::Client::new(&sdk), table, 400));
    let queue = Arc::new(SqsContinuationQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url));
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let (reader, store, queue) = (reader.clone(), store.clone(), queue.clone());
        async move { audit_sweeper::sweep(&*reader, &*store, &*queue, window).await.map_err(Error::from) }
    }))
    .await
}
