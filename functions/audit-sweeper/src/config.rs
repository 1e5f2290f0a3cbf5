//! Configuration, from environment variables only (the template sets them).

use audit_shared::settings::{ConfigError, Settings};

/// What the sweeper reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME` (required): where ingested tasks are recorded.
    pub table_name: String,
    /// `CONTINUATION_QUEUE_URL` (required): where tasks to ingest are queued.
    pub continuation_queue_url: String,
    /// `RETENTION_DAYS` (default 400, 1–3650): TTL of what the store writes.
    pub retention_days: u32,
    /// `SWEEP_WINDOW_HOURS` (default 72, 1–2160 = AWS's 90 days of audit results): how far back to look.
    pub window_hours: i64,
    /// `AWS_MAX_ATTEMPTS` (default 10, 1–20): SDK attempts per call (adaptive retry mode).
    pub max_attempts: u32,
}

impl Config {
    /// Reads the configuration through `get` (the process environment in `main`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Settings::new(get);
        Ok(Config {
            table_name: env.required("TABLE_NAME")?,
            continuation_queue_url: env.required("CONTINUATION_QUEUE_URL")?,
            retention_days: env.in_range("RETENTION_DAYS", 400, 1..=3650)?,
            window_hours: env.in_range("SWEEP_WINDOW_HOURS", 72, 1..=90 * 24)?,
            max_attempts: env.in_range("AWS_MAX_ATTEMPTS", 10, 1..=20)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_shared::settings::{assert_errors_name_the_variable, from_pairs};

    const BASE: [(&str, &str); 2] = [("TABLE_NAME", "t"), ("CONTINUATION_QUEUE_URL", "http://q")];

    fn read(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut v = BASE.to_vec();
        v.extend_from_slice(extra);
        let s = from_pairs(&v);
        Config::from_lookup(|k| s.optional(k))
    }

    #[test]
    fn defaults_and_every_variable() {
        let c = read(&[]).unwrap();
        assert_eq!((c.retention_days, c.window_hours, c.max_attempts), (400, 72, 10));
        let c = read(&[("RETENTION_DAYS", "30"), ("SWEEP_WINDOW_HOURS", "24"), ("AWS_MAX_ATTEMPTS", "4")]).unwrap();
        assert_eq!((c.retention_days, c.window_hours, c.max_attempts), (30, 24, 4));
        assert_eq!((c.table_name.as_str(), c.continuation_queue_url.as_str()), ("t", "http://q"));
    }

    #[test]
    fn missing_and_bad_values_are_named() {
        let bad = [
            ("RETENTION_DAYS", "0"),
            ("SWEEP_WINDOW_HOURS", "2161"),
            ("SWEEP_WINDOW_HOURS", "3 days"),
            ("AWS_MAX_ATTEMPTS", "99"),
        ];
        assert_errors_name_the_variable(&BASE, &bad, |pairs| {
            let s = from_pairs(pairs);
            Config::from_lookup(|k| s.optional(k))
        });
    }
}
