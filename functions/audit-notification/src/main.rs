#![recursion_limit = "256"]
//! Lambda entry point: builds the clients once, then serves invocations.

use audit_notification::{build, config::Config, handler, Clients};
use audit_shared::aws::lambda::{init_logging, invocation_time, sdk_config};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;
use std::time::SystemTime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging("info,aws_config=warn,aws_smithy_runtime=warn");
    let config = Config::from_lookup(|k| std::env::var(k).ok())?;
    let sdk = sdk_config(config.max_attempts).await;
    let fallback = config.deadline_fallback;
    let (hub, meter) = build(Clients::from_sdk(&sdk), &sdk, config);
    let hub = Arc::new(hub);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (hub, meter) = (hub.clone(), meter.clone());
        async move {
            let (remaining, warning) = invocation_time(event.context.deadline(), SystemTime::now(), fallback);
            if let Some(w) = warning {
                tracing::warn!("{w}");
            }
            let (writes, reads) = (meter.write_units(), meter.read_units());
            let r = handler::handle(&hub, event.payload, &event.context.request_id, remaining).await;
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
