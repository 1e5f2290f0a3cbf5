//! Configuration, from environment variables only (the template sets them).

use std::time::Duration;

/// What the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME` (required).
    pub table_name: String,
    /// `DIGEST_TOPIC_ARN` (required): where digests go.
    pub digest_topic_arn: String,
    /// `CONTINUATION_QUEUE_URL` (required): the SQS queue this function also consumes.
    pub continuation_queue_url: String,
    /// `RETENTION_DAYS` (default 400): TTL of every item.
    pub retention_days: u32,
    /// `FINDINGS_RATE_LIMIT` (default 10): ListAuditFindings calls per second, all checks together.
    pub findings_rate_limit: f64,
    /// `READ_CONCURRENCY` (default 4): checks read in parallel.
    pub read_concurrency: usize,
    /// `ON_DEMAND_DIGEST` (default true): send digests for on-demand audits too.
    pub on_demand_digest: bool,
    /// `DEADLINE_MARGIN_MS` (default 30000): stop reading this long before the Lambda deadline.
    pub deadline_margin: Duration,
    /// `MAX_SLICE_MS` (default: none): stop reading after this long even if time is left
    /// (forces continuations; for tests and for keeping invocations short).
    pub max_slice: Option<Duration>,
    /// `LEASE_MS` (default 120000): how long a claim on a task lasts without a checkpoint.
    pub lease: Duration,
    /// `AWS_MAX_ATTEMPTS` (default 10): SDK attempts per call (adaptive retry mode).
    pub max_attempts: u32,
}

/// A missing or unreadable variable, named.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is invalid: {why}")]
    Invalid { name: &'static str, value: String, why: String },
}

impl Config {
    /// Reads the configuration through `get` (the process environment in `main`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let required =
            |name: &'static str| get(name).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name));
        fn parse<T: std::str::FromStr>(name: &'static str, raw: Option<String>, default: T) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            match raw.filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => {
                    v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { name, value: v, why: e.to_string() })
                }
            }
        }
        let rate: f64 = parse("FINDINGS_RATE_LIMIT", get("FINDINGS_RATE_LIMIT"), 10.0)?;
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(ConfigError::Invalid {
                name: "FINDINGS_RATE_LIMIT",
                value: rate.to_string(),
                why: "must be a positive number of requests per second".into(),
            });
        }
        let concurrency: usize = parse("READ_CONCURRENCY", get("READ_CONCURRENCY"), 4)?;
        if concurrency == 0 {
            return Err(ConfigError::Invalid {
                name: "READ_CONCURRENCY",
                value: "0".into(),
                why: "must be at least 1".into(),
            });
        }
        let max_slice: Option<u64> = match get("MAX_SLICE_MS").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(v) => Some(parse("MAX_SLICE_MS", Some(v), 0)?),
        };
        Ok(Config {
            table_name: required("TABLE_NAME")?,
            digest_topic_arn: required("DIGEST_TOPIC_ARN")?,
            continuation_queue_url: required("CONTINUATION_QUEUE_URL")?,
            retention_days: parse("RETENTION_DAYS", get("RETENTION_DAYS"), 400)?,
            findings_rate_limit: rate,
            read_concurrency: concurrency,
            on_demand_digest: parse("ON_DEMAND_DIGEST", get("ON_DEMAND_DIGEST"), true)?,
            deadline_margin: Duration::from_millis(parse("DEADLINE_MARGIN_MS", get("DEADLINE_MARGIN_MS"), 30_000)?),
            max_slice: max_slice.map(Duration::from_millis),
            lease: Duration::from_millis(parse("LEASE_MS", get("LEASE_MS"), 120_000)?),
            max_attempts: parse("AWS_MAX_ATTEMPTS", get("AWS_MAX_ATTEMPTS"), 10)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("TABLE_NAME", "t"),
        ("DIGEST_TOPIC_ARN", "arn:aws:sns:us-east-1:1:d"),
        ("CONTINUATION_QUEUE_URL", "http://q"),
    ];

    #[test]
    fn defaults_and_errors_name_the_variable() {
        let c = Config::from_lookup(env(&BASE)).unwrap();
        assert_eq!((c.retention_days, c.findings_rate_limit, c.on_demand_digest), (400, 10.0, true));
        let e = Config::from_lookup(env(&BASE[..2])).unwrap_err();
        assert!(e.to_string().contains("CONTINUATION_QUEUE_URL"));
        let mut bad = BASE.to_vec();
        bad.push(("RETENTION_DAYS", "forever"));
        assert!(Config::from_lookup(env(&bad)).unwrap_err().to_string().contains("RETENTION_DAYS"));
        let mut bad = BASE.to_vec();
        bad.push(("FINDINGS_RATE_LIMIT", "0"));
        assert!(Config::from_lookup(env(&bad)).is_err());
        let mut off = BASE.to_vec();
        off.push(("ON_DEMAND_DIGEST", "false"));
        assert!(!Config::from_lookup(env(&off)).unwrap().on_demand_digest);
    }
}
