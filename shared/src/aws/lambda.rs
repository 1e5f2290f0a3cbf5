//! What every Lambda's `main` does before it serves: JSON logs and the SDK
//! configuration (endpoints from `AWS_ENDPOINT_URL_<SERVICE>`, adaptive retries), and the time
//! an invocation has.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Lambda's longest function timeout: "900 seconds (15 minutes)"
/// (<https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);

/// `DEADLINE_FALLBACK_SECS` (default 300, 1–900): the time an invocation gives itself when the
/// runtime's deadline cannot be right (see [`invocation_time`]); every function that budgets its
/// time reads it so.
pub fn deadline_fallback<F: Fn(&str) -> Option<String>>(
    env: &crate::settings::Settings<F>,
) -> Result<Duration, crate::settings::ConfigError> {
    Ok(Duration::from_secs(env.in_range("DEADLINE_FALLBACK_SECS", 300, 1..=MAX_TIMEOUT.as_secs())?))
}

/// The time an invocation has, from its Runtime API deadline (`context.deadline()`, the
/// `Lambda-Runtime-Deadline-Ms` header: "The date that the function times out in Unix time
/// milliseconds", <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>).
///
/// In AWS the header is right. Local runtimes have sent other things (`cargo lambda watch`
/// 1.9 sends the timeout itself, `600000`, which reads as 1970): a deadline already past when
/// the invocation starts, or further away than Lambda's 15-minute maximum, cannot be right, so
/// `fallback` is used instead and the second value says why (one warning for the log).
pub fn invocation_time(deadline: SystemTime, now: SystemTime, fallback: Duration) -> (Duration, Option<String>) {
    let header = deadline.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let why = match deadline.duration_since(now) {
        Err(_) | Ok(Duration::ZERO) => "is already past when the invocation starts",
        Ok(left) if left > MAX_TIMEOUT => "is further away than Lambda's 15-minute maximum",
        Ok(left) => return (left, None),
    };
    let warning = format!(
        "the runtime's deadline (Lambda-Runtime-Deadline-Ms {header}, which the Runtime API defines as Unix-epoch \
         milliseconds) {why}: a local runtime's mistake? Using DEADLINE_FALLBACK_SECS={} instead",
        fallback.as_secs()
    );
    (fallback, Some(warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_that_cannot_be_right_is_replaced_by_the_fallback() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let fallback = Duration::from_secs(300);
        let in_ms = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        // AWS: epoch milliseconds, at most 15 minutes ahead.
        assert_eq!(invocation_time(now + Duration::from_secs(899), now, fallback), (Duration::from_secs(899), None));
        assert_eq!(invocation_time(now + MAX_TIMEOUT, now, fallback), (MAX_TIMEOUT, None));
        // cargo lambda watch: the timeout itself, 600000 ms after 1970.
        let (left, warning) = invocation_time(in_ms(600_000), now, fallback);
        assert_eq!(left, fallback);
        let warning = warning.unwrap();
        assert!(warning.contains("Lambda-Runtime-Deadline-Ms 600000"), "{warning}");
        assert!(warning.contains("already past") && warning.contains("DEADLINE_FALLBACK_SECS=300"), "{warning}");
        assert_eq!(invocation_time(now, now, fallback).0, fallback, "no time at all at the start");
        // Microseconds instead of milliseconds: centuries away.
        let (left, warning) = invocation_time(now + Duration::from_secs(901), now, fallback);
        assert_eq!(left, fallback);
        assert!(warning.unwrap().contains("15-minute maximum"));
    }
}
