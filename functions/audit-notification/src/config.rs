//! Configuration, from environment variables only (the template sets them).

use audit_shared::lifecycle::Deadlines;
use audit_shared::member::{arn_partition, Member};
use audit_shared::settings::Settings;
use audit_shared::stall::StallPolicy;
use std::time::Duration;

/// What the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME` (required).
    pub table_name: String,
    /// `DIGEST_TOPIC_ARN` (required): where digests go (the hub's topic).
    pub digest_topic_arn: String,
    /// `CHAT_TOPIC_ARN` (optional): where the chat digest goes (AWS Chatbot's custom
    /// notification schema); none when unset.
    pub chat_topic_arn: Option<String>,
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
    /// `DEADLINE_FALLBACK_SECS` (default 300, 1–900): the time an invocation gives itself when
    /// the runtime's deadline cannot be right (see `audit_shared::aws::lambda::invocation_time`).
    pub deadline_fallback: Duration,
    /// `STALL_RETRY_SECS` (default 10, 1–900) and `MAX_STALLED_INVOCATIONS` (default 5, 1–100):
    /// how continuations that read no page back off, and after how many in a row the run stops
    /// reading (`audit_shared::stall`).
    pub stall: StallPolicy,
    /// `MAX_SLICE_MS` (default: none): stop reading after this long even if time is left
    /// (forces continuations; for tests and for keeping invocations short).
    pub max_slice: Option<Duration>,
    /// `LEASE_MS` (default 120000): how long a claim on a task lasts without a checkpoint, and a
    /// member's reader lease without a renewal.
    pub lease: Duration,
    /// `AWS_MAX_ATTEMPTS` (default 10): SDK attempts per call (adaptive retry mode).
    pub max_attempts: u32,
    /// `OVERDUE_DAYS` (default `CRITICAL=7,HIGH=30,MEDIUM=90,LOW=180`): how long a finding of
    /// each severity may stay open before digests call it overdue.
    pub deadlines: Deadlines,
    /// The hub's own account-region and ARN partition, from `DIGEST_TOPIC_ARN` (the digest
    /// topic lives in the hub).
    pub home: Member,
    pub partition: String,
    /// `MEMBER_ROLE_NAME` (optional): the hub assumes `<name>-<region>` in every other member
    /// account-region (member.yaml's role). Unset: only the hub's own account-region is read.
    pub member_role_name: Option<String>,
    /// `MEMBER_TOPIC_NAME` (default `device-defender-audit-notifications`): the name of member
    /// topics (member.yaml) whose subscriptions of the hub's queue the hub confirms.
    pub member_topic_name: String,
    /// `ACCOUNT_NAMES` (optional, `111122223333=payments-prod,…`): names digests give accounts.
    pub account_names: std::collections::BTreeMap<String, String>,
    /// `CONFIRM_RETRY_SECS` (default 60, 1–900): the first delay before asking again to confirm
    /// a member's subscription whose role could not be assumed yet (then doubling, to 900).
    pub confirm_retry_secs: u32,
    /// `CONFIRM_WINDOW_SECS` (default 172800, the token's two days; 1–172800): how long the
    /// hub keeps asking before it gives a member's subscription up.
    pub confirm_window: Duration,
}

pub use audit_shared::settings::ConfigError;

impl Config {
    /// Reads the configuration through `get` (the process environment in `main`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Settings::new(get);
        let rate: f64 = env.parsed("FINDINGS_RATE_LIMIT", 10.0)?;
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(ConfigError::Invalid {
                name: "FINDINGS_RATE_LIMIT",
                value: env.optional("FINDINGS_RATE_LIMIT").unwrap_or_default(),
                why: "must be a positive number of requests per second".into(),
            });
        }
        let max_slice = match env.optional("MAX_SLICE_MS") {
            None => None,
            Some(_) => Some(Duration::from_millis(env.parsed("MAX_SLICE_MS", 0)?)),
        };
        let deadlines = match env.optional("OVERDUE_DAYS") {
            None => Deadlines::default(),
            Some(v) => env.checked("OVERDUE_DAYS", &v, Deadlines::parse)?,
        };
        let digest_topic_arn = env.required("DIGEST_TOPIC_ARN")?;
        let home = env.checked("DIGEST_TOPIC_ARN", &digest_topic_arn, Member::of_topic)?;
        let partition = arn_partition(&digest_topic_arn).to_owned();
        let member_role_name = env.optional("MEMBER_ROLE_NAME").filter(|v| !v.is_empty());
        if let Some(name) = &member_role_name {
            let ok = (1..=48).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if !ok {
                return Err(ConfigError::Invalid {
                    name: "MEMBER_ROLE_NAME",
                    value: name.clone(),
                    why: "1-48 of letters, digits and +=,.@_- (the role is <name>-<region>, at most 64)".into(),
                });
            }
        }
        let names = env.optional("ACCOUNT_NAMES").unwrap_or_default();
        let account_names = env.checked("ACCOUNT_NAMES", &names, audit_shared::member::parse_account_names)?;
        Ok(Config {
            account_names,
            member_topic_name: env
                .optional("MEMBER_TOPIC_NAME")
                .unwrap_or_else(|| "device-defender-audit-notifications".into()),
            table_name: env.required("TABLE_NAME")?,
            digest_topic_arn,
            home,
            partition,
            member_role_name,
            chat_topic_arn: env.optional("CHAT_TOPIC_ARN"),
            continuation_queue_url: env.required("CONTINUATION_QUEUE_URL")?,
            retention_days: env.in_range("RETENTION_DAYS", 400, 1..=3650)?,
            findings_rate_limit: rate,
            read_concurrency: env.in_range("READ_CONCURRENCY", 4, 1..=17)?,
            on_demand_digest: env.flag("ON_DEMAND_DIGEST", true)?,
            deadline_margin: Duration::from_millis(env.parsed("DEADLINE_MARGIN_MS", 30_000)?),
            deadline_fallback: audit_shared::aws::lambda::deadline_fallback(&env)?,
            stall: StallPolicy {
                first_delay_secs: env.in_range("STALL_RETRY_SECS", 10, 1..=900)?,
                max_stalled: env.in_range("MAX_STALLED_INVOCATIONS", 5, 1..=100)?,
            },
            max_slice,
            lease: Duration::from_millis(env.in_range("LEASE_MS", 120_000, 1_000..=900_000)?),
            max_attempts: env.in_range("AWS_MAX_ATTEMPTS", 10, 1..=20)?,
            deadlines,
            confirm_retry_secs: env.in_range("CONFIRM_RETRY_SECS", 60, 1..=900)?,
            confirm_window: Duration::from_secs(env.in_range("CONFIRM_WINDOW_SECS", 172_800, 1..=172_800)?),
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
        ("DIGEST_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:d"),
        ("CONTINUATION_QUEUE_URL", "http://q"),
    ];

    fn with(extra: (&str, &str)) -> Result<Config, ConfigError> {
        let mut v = BASE.to_vec();
        v.push(extra);
        Config::from_lookup(env(&v))
    }

    #[test]
    fn defaults() {
        let c = Config::from_lookup(env(&BASE)).unwrap();
        assert_eq!((c.retention_days, c.findings_rate_limit, c.on_demand_digest), (400, 10.0, true));
        assert_eq!((c.read_concurrency, c.max_attempts, c.chat_topic_arn.as_deref()), (4, 10, None));
        assert_eq!(
            (c.deadline_margin, c.lease, c.max_slice),
            (Duration::from_secs(30), Duration::from_secs(120), None)
        );
        assert_eq!(c.deadline_fallback, Duration::from_secs(300));
        assert_eq!(c.stall, StallPolicy { first_delay_secs: 10, max_stalled: 5 });
    }

    #[test]
    fn every_variable_is_read_and_a_bad_value_is_named() {
        let set = |k, v| with((k, v)).unwrap();
        assert_eq!(set("RETENTION_DAYS", "30").retention_days, 30);
        assert_eq!(set("FINDINGS_RATE_LIMIT", "2.5").findings_rate_limit, 2.5);
        assert_eq!(set("READ_CONCURRENCY", "2").read_concurrency, 2);
        assert!(!set("ON_DEMAND_DIGEST", "false").on_demand_digest);
        assert_eq!(set("DEADLINE_MARGIN_MS", "5000").deadline_margin, Duration::from_secs(5));
        assert_eq!(set("MAX_SLICE_MS", "700").max_slice, Some(Duration::from_millis(700)));
        assert_eq!(set("LEASE_MS", "60000").lease, Duration::from_secs(60));
        assert_eq!(set("DEADLINE_FALLBACK_SECS", "60").deadline_fallback, Duration::from_secs(60));
        assert_eq!(set("STALL_RETRY_SECS", "1").stall.first_delay_secs, 1);
        assert_eq!(set("MAX_STALLED_INVOCATIONS", "2").stall.max_stalled, 2);
        assert_eq!(set("AWS_MAX_ATTEMPTS", "3").max_attempts, 3);
        assert_eq!(set("MEMBER_ROLE_NAME", "audit-hub-access").member_role_name.as_deref(), Some("audit-hub-access"));
        assert_eq!(
            set("ACCOUNT_NAMES", "111122223333=payments-prod, 444455556666 = fleet eu").account_names,
            [("111122223333".to_string(), "payments-prod".to_string()), ("444455556666".into(), "fleet eu".into())]
                .into_iter()
                .collect()
        );
        let cn = set("DIGEST_TOPIC_ARN", "arn:aws-cn:sns:cn-north-1:111122223333:d");
        assert_eq!((cn.home.to_string(), cn.partition.as_str()), ("111122223333:cn-north-1".into(), "aws-cn"));
        assert_eq!(
            set("CHAT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:c").chat_topic_arn.as_deref(),
            Some("arn:aws:sns:us-east-1:1:c")
        );
        let bad = [
            ("RETENTION_DAYS", "forever"),
            ("RETENTION_DAYS", "0"),
            ("FINDINGS_RATE_LIMIT", "0"),
            ("FINDINGS_RATE_LIMIT", "fast"),
            ("READ_CONCURRENCY", "0"),
            ("ON_DEMAND_DIGEST", "yes"),
            ("DEADLINE_MARGIN_MS", "-1"),
            ("MAX_SLICE_MS", "soon"),
            ("LEASE_MS", "10"),
            ("DEADLINE_FALLBACK_SECS", "0"),
            ("DEADLINE_FALLBACK_SECS", "901"),
            ("STALL_RETRY_SECS", "0"),
            ("MAX_STALLED_INVOCATIONS", "0"),
            ("AWS_MAX_ATTEMPTS", "0"),
            ("OVERDUE_DAYS", "CRITICAL=0"),
            ("OVERDUE_DAYS", "URGENT=3"),
            ("MEMBER_ROLE_NAME", "no spaces"),
            ("ACCOUNT_NAMES", "1234=short"),
            ("DIGEST_TOPIC_ARN", "digest"),
        ];
        audit_shared::settings::assert_errors_name_the_variable(&BASE, &bad, |pairs| Config::from_lookup(env(pairs)));
    }
}
