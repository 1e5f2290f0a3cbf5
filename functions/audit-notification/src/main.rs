#![recursion_limit = "256"]
//! Lambda entry point: builds the clients once, then serves invocations.

use audit_notification::{build, config::Config, handler, Clients};
use audit_shared::aws::lambda::{init_logging, sdk_config};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging("info,aws_config=warn,aws_smithy_runtime=warn");
    let config = Config::from_lookup(|k| std::env::var(k).ok())?;
    let sdk = sdk_config(config.max_attempts).await;
    let region = sdk.region().map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
    let ingestor = Arc::new(build(Clients::from_sdk(&sdk), config, region));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ingestor = ingestor.clone();
        async move {
            let remaining = event.context.deadline().duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
            let meter = ingestor.ports.store.meter();
            let (writes, reads) = (meter.write_units(), meter.read_units());
            let r = handler::handle(&ingestor, event.payload, &event.context.request_id, remaining).await;
            // What this invocation cost the table, as DynamoDB reported it (indexes included).
            tracing::info!(
                write_units = meter.write_units() - writes,
                read_units = meter.read_units() - reads,
                "dynamodb capacity consumed"
            );
            r.map_err(Error::from)
        }
    }))
    .await
}
