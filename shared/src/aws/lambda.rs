//! What every Lambda's `main` does before it serves: JSON logs and the SDK
//! configuration (endpoints from `AWS_ENDPOINT_URL_<SERVICE>`, adaptive retries).

/// JSON logs on stdout, without timestamps (CloudWatch adds them), filtered by `RUST_LOG` or
/// else `default_filter`.
pub fn init_logging(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter)))
        .without_time()
        .init();
}

/// The SDK configuration: adaptive retries (client-side rate adaptation on throttling) with
/// `max_attempts` attempts.
pub async fn sdk_config(max_attempts: u32) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::adaptive().with_max_attempts(max_attempts))
        .load()
        .await
}
