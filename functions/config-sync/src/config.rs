//! Configuration, from environment variables only (the template sets them).

use audit_shared::settings::{ConfigError, Settings};

/// Account quota of scheduled audits (Device Defender: 5 per account and region, not adjustable).
pub const MAX_SCHEDULED_AUDITS: usize = 5;

/// What config-sync reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME` (required): where the applied setup, ownership and drift records live.
    pub table_name: String,
    /// `DIGEST_TOPIC_ARN` (required): where drift reports go.
    pub digest_topic_arn: String,
    /// `RETENTION_DAYS` (default 400, 1–3650): TTL of drift records.
    pub retention_days: u32,
    /// `DRIFT_AUTO_REPAIR` (default false): re-apply the declared setup when drift is found.
    pub drift_auto_repair: bool,
    /// `AWS_MAX_ATTEMPTS` (default 8, 1–20): SDK attempts per call (adaptive retry mode).
    pub max_attempts: u32,
    /// `DEADLINE_FALLBACK_SECS` (default 300, 1–900): the time an invocation gives itself when
    /// the runtime's deadline cannot be right (see `audit_shared::aws::lambda::invocation_time`).
    pub deadline_fallback: std::time::Duration,
    /// Scheduled audits the account may hold ([`MAX_SCHEDULED_AUDITS`]; tests may lower it).
    pub max_audits: usize,
}

impl Config {
    /// Reads the configuration through `get` (the process environment in `main`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Settings::new(get);
        Ok(Config {
            table_name: env.required("TABLE_NAME")?,
            digest_topic_arn: env.required("DIGEST_TOPIC_ARN")?,
            retention_days: env.in_range("RETENTION_DAYS", 400, 1..=3650)?,
            drift_auto_repair: env.flag("DRIFT_AUTO_REPAIR", false)?,
            max_attempts: env.in_range("AWS_MAX_ATTEMPTS", 8, 1..=20)?,
            deadline_fallback: audit_shared::aws::lambda::deadline_fallback(&env)?,
            max_audits: MAX_SCHEDULED_AUDITS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_shared::settings::{assert_errors_name_the_variable, from_pairs};

    const BASE: [(&str, &str); 2] = [("TABLE_NAME", "t"), ("DIGEST_TOPIC_ARN", "arn:aws:sns:us-east-1:1:d")];

    fn read(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut v = BASE.to_vec();
        v.extend_from_slice(extra);
        let s = from_pairs(&v);
        Config::from_lookup(|k| s.optional(k))
    }

    #[test]
    fn defaults_and_every_variable() {
        let c = read(&[]).unwrap();
        assert_eq!((c.retention_days, c.drift_auto_repair, c.max_attempts, c.max_audits), (400, false, 8, 5));
        assert_eq!(c.deadline_fallback.as_secs(), 300);
        assert_eq!(read(&[("DEADLINE_FALLBACK_SECS", "60")]).unwrap().deadline_fallback.as_secs(), 60);
        let c = read(&[("RETENTION_DAYS", "30"), ("DRIFT_AUTO_REPAIR", "true"), ("AWS_MAX_ATTEMPTS", "3")]).unwrap();
        assert_eq!((c.retention_days, c.drift_auto_repair, c.max_attempts), (30, true, 3));
        assert_eq!((c.table_name.as_str(), c.digest_topic_arn.as_str()), ("t", "arn:aws:sns:us-east-1:1:d"));
    }

    #[test]
    fn missing_and_bad_values_are_named() {
        let bad = [
            ("RETENTION_DAYS", "0"),
            ("RETENTION_DAYS", "a year"),
            ("DRIFT_AUTO_REPAIR", "yes"),
            ("AWS_MAX_ATTEMPTS", "0"),
            ("DEADLINE_FALLBACK_SECS", "0"),
            ("DEADLINE_FALLBACK_SECS", "9000"),
        ];
        assert_errors_name_the_variable(&BASE, &bad, |pairs| {
            let s = from_pairs(pairs);
            Config::from_lookup(|k| s.optional(k))
        });
    }
}
