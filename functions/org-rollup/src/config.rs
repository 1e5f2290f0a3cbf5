//! Configuration, from environment variables only (the template sets them).

use audit_shared::member::{arn_partition, parse_account_names, parse_members, Member};
use audit_shared::settings::Settings;
use std::collections::BTreeMap;

pub use audit_shared::settings::ConfigError;

/// What the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME` (required).
    pub table_name: String,
    /// `DIGEST_TOPIC_ARN` (required): where the roll-up goes; its account-region is the hub's own.
    pub digest_topic_arn: String,
    pub home: Member,
    /// `EXPECTED_MEMBERS` (optional, `ACCOUNT:REGION,…`): members that must report, even if they
    /// never have (a member deployed with a broken notification path shows up as silent).
    pub expected: Vec<Member>,
    /// `SILENT_GRACE_HOURS` (default 24, 1–720): hours after the day a member's scheduled audit
    /// was due before the member is silent.
    pub silent_grace_hours: i64,
    /// `RETIRE_LEFT_ACCOUNTS` (default true): read the organization's accounts (ListAccounts) and
    /// retire members whose account left it or was suspended or closed.
    pub retire_left_accounts: bool,
    /// `ORGANIZATION_ID` (optional, `o-…`): named in the reason of a retirement.
    pub organization_id: String,
    /// `ACCOUNT_NAMES` (optional, `111122223333=payments-prod,…`).
    pub account_names: BTreeMap<String, String>,
    /// `MEMBER_ROLE_NAME` (optional): the role (`<name>-<region>`) read to explain a silent member.
    pub member_role_name: Option<String>,
    /// `MEMBER_TOPIC_NAME` (default `device-defender-audit-notifications`).
    pub member_topic_name: String,
    /// The ARN partition, from `DIGEST_TOPIC_ARN`.
    pub partition: String,
    /// `RETENTION_DAYS` (default 400): how long roll-up records are kept.
    pub retention_days: u32,
    /// `AWS_MAX_ATTEMPTS` (default 10): SDK attempts per call (adaptive retry mode).
    pub max_attempts: u32,
}

impl Config {
    /// Reads the configuration through `get` (the process environment in `main`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Settings::new(get);
        let digest_topic_arn = env.required("DIGEST_TOPIC_ARN")?;
        let home = env.checked("DIGEST_TOPIC_ARN", &digest_topic_arn, Member::of_topic)?;
        let expected = env.optional("EXPECTED_MEMBERS").unwrap_or_default();
        let expected = env.checked("EXPECTED_MEMBERS", &expected, parse_members)?;
        let names = env.optional("ACCOUNT_NAMES").unwrap_or_default();
        let account_names = env.checked("ACCOUNT_NAMES", &names, parse_account_names)?;
        Ok(Config {
            table_name: env.required("TABLE_NAME")?,
            partition: arn_partition(&digest_topic_arn).to_owned(),
            member_role_name: env.optional("MEMBER_ROLE_NAME"),
            member_topic_name: env
                .optional("MEMBER_TOPIC_NAME")
                .unwrap_or_else(|| "device-defender-audit-notifications".into()),
            digest_topic_arn,
            home,
            expected,
            silent_grace_hours: env.in_range("SILENT_GRACE_HOURS", 24, 1..=720)?,
            retire_left_accounts: env.flag("RETIRE_LEFT_ACCOUNTS", true)?,
            organization_id: env.optional("ORGANIZATION_ID").unwrap_or_default(),
            account_names,
            retention_days: env.in_range("RETENTION_DAYS", 400, 1..=3650)?,
            max_attempts: env.in_range("AWS_MAX_ATTEMPTS", 10, 1..=20)?,
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

    const BASE: [(&str, &str); 2] = [("TABLE_NAME", "t"), ("DIGEST_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:d")];

    #[test]
    fn defaults_every_variable_and_bad_values_named() {
        let c = Config::from_lookup(env(&BASE)).unwrap();
        assert_eq!((c.silent_grace_hours, c.retention_days, c.expected.len()), (24, 400, 0));
        assert!(c.retire_left_accounts);
        assert_eq!(c.home.to_string(), "123456789012:us-east-1");
        let mut v = BASE.to_vec();
        v.extend([
            ("EXPECTED_MEMBERS", "111122223333:eu-west-1, 123456789012:us-east-1"),
            ("SILENT_GRACE_HOURS", "200"),
            ("RETIRE_LEFT_ACCOUNTS", "false"),
            ("ACCOUNT_NAMES", "111122223333=payments"),
            ("RETENTION_DAYS", "30"),
        ]);
        let c = Config::from_lookup(env(&v)).unwrap();
        assert_eq!(c.expected.len(), 2);
        assert_eq!((c.silent_grace_hours, c.retention_days), (200, 30));
        assert!(!c.retire_left_accounts);
        assert_eq!(c.account_names.get("111122223333").map(String::as_str), Some("payments"));
        let bad = [
            ("EXPECTED_MEMBERS", "111122223333"),
            ("SILENT_GRACE_HOURS", "721"),
            ("RETIRE_LEFT_ACCOUNTS", "yes"),
            ("ACCOUNT_NAMES", "x=y"),
            ("DIGEST_TOPIC_ARN", "digest"),
        ];
        audit_shared::settings::assert_errors_name_the_variable(&BASE, &bad, |pairs| Config::from_lookup(env(pairs)));
    }
}
