//! The member: one AWS account in one region, the unit Device Defender audits (its
//! configuration, scheduled audits, quotas and 90-day findings are all per account and region).
//!
//! A hub ingests the audits of many members. Task ids are unique only within a member (AWS
//! promises nothing more), so everything the hub stores is keyed by member as well:
//! [`Member::key_prefix`]. The hub's own account-region (the *home* member) keeps unprefixed
//! keys, so a single-account deployment reads and writes exactly what it always did; no other
//! member's key can equal a home key because task ids and scheduled audit names never contain
//! `#` (their patterns are `[a-zA-Z0-9-]+` and `[a-zA-Z0-9_-]+`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// One account-region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// 12-digit account id.
    pub account_id: String,
    /// Region code, e.g. `eu-west-1`.
    pub region: String,
}

/// Why a string does not name a member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("account id '{0}' is not 12 digits")]
    BadAccount(String),
    #[error("region '{0}' is not a region code (like eu-west-1)")]
    BadRegion(String),
    #[error("'{0}' is not an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>)")]
    BadTopicArn(String),
    #[error("'{0}' is not ACCOUNT:REGION (like 111122223333:eu-west-1)")]
    BadPair(String),
}

/// Whether `s` looks like a region code: lowercase letters and digits in dash-separated parts,
/// at least three (`us-east-1`, `us-gov-west-1`, `cn-north-1`), ending in a number.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

impl Member {
    /// A member, checked: 12 digits and a region code.
    pub fn new(account_id: &str, region: &str) -> Result<Member, MemberError> {
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MemberError::BadAccount(account_id.chars().take(40).collect()));
        }
        if !is_region(region) {
            return Err(MemberError::BadRegion(region.chars().take(40).collect()));
        }
        Ok(Member { account_id: account_id.into(), region: region.into() })
    }

    /// The account-region of an SNS topic: `arn:<partition>:sns:<region>:<account>:<name>`.
    pub fn of_topic(arn: &str) -> Result<Member, MemberError> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _, "sns", region, account, name] if !name.is_empty() => {
                Member::new(account, region).map_err(|_| MemberError::BadTopicArn(arn.chars().take(200).collect()))
            }
            _ => Err(MemberError::BadTopicArn(arn.chars().take(200).collect())),
        }
    }

    /// Parses `ACCOUNT:REGION`.
    pub fn parse(pair: &str) -> Result<Member, MemberError> {
        match pair.trim().split_once(':') {
            Some((a, r)) => Member::new(a.trim(), r.trim()),
            None => Err(MemberError::BadPair(pair.chars().take(60).collect())),
        }
    }

    /// What every key of this member's items starts with, seen from a hub whose own
    /// account-region is `home`: nothing for the home member, `<account>#<region>#` otherwise.
    pub fn key_prefix(&self, home: &Member) -> String {
        self.key_prefix_of(Some(home))
    }

    /// [`Member::key_prefix`] where the home may be unknown (a table written before the hub
    /// recorded which member is its own): every member is prefixed then.
    pub fn key_prefix_of(&self, home: Option<&Member>) -> String {
        if home == Some(self) {
            String::new()
        } else {
            format!("{}#{}#", self.account_id, self.region)
        }
    }

    /// The member a key prefix names, the inverse of [`Member::key_prefix`].
    pub fn from_key_prefix(prefix: &str, home: &Member) -> Option<Member> {
        if prefix.is_empty() {
            return Some(home.clone());
        }
        let (account, rest) = prefix.strip_suffix('#')?.split_once('#')?;
        Member::new(account, rest).ok()
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.account_id, self.region)
    }
}

/// The partition of an ARN (`aws`, `aws-cn`, `aws-us-gov`; `aws` when it names none).
pub fn arn_partition(arn: &str) -> &str {
    arn.split(':').nth(1).filter(|p| !p.is_empty()).unwrap_or("aws")
}

/// Parses a list of members, `ACCOUNT:REGION` separated by commas or whitespace (empty: none).
pub fn parse_members(list: &str) -> Result<Vec<Member>, MemberError> {
    let mut out: Vec<Member> = list
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(Member::parse)
        .collect::<Result<_, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// What a member's audit configuration says (DescribeAccountAuditConfiguration), as far as
/// reaching the hub depends on it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSetup {
    /// The audit role; none when audits were never configured.
    pub role_arn: Option<String>,
    /// The SNS notification target and whether it is enabled.
    pub notification_target: Option<(String, bool)>,
    /// Checks enabled.
    pub enabled_checks: usize,
}

/// Why a member's setup cannot send the hub its audits (none when it looks right): what the
/// roll-up says of a silent member. `topic_name` is the member topic's name (member.yaml's).
pub fn diagnose_setup(setup: &MemberSetup, member: &Member, topic_name: &str) -> Option<String> {
    let expected =
        |arn: &str| Member::of_topic(arn).is_ok_and(|m| m == *member) && arn.rsplit(':').next() == Some(topic_name);
    if setup.role_arn.is_none() {
        return Some("audits are not configured (no audit role): its member stack did not apply".into());
    }
    if setup.enabled_checks == 0 {
        return Some("no audit check is enabled".into());
    }
    match &setup.notification_target {
        None => Some("audit notifications are not configured".into()),
        Some((_, false)) => Some("audit notifications are disabled".into()),
        Some((arn, true)) if !expected(arn) => {
            Some(format!("audits notify {arn}, not this member's topic {topic_name}"))
        }
        Some(_) => None,
    }
}

/// Parses account names, `111122223333=payments-prod,…` (empty: none); an error names the bad
/// entry.
pub fn parse_account_names(list: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut names = std::collections::BTreeMap::new();
    for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
        match pair.split_once('=').map(|(a, n)| (a.trim(), n.trim())) {
            Some((account, name))
                if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() =>
            {
                names.insert(account.to_owned(), name.to_owned());
            }
            _ => return Err(format!("'{}' is not a 12-digit account id = a name", pair.trim())),
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(a: &str, r: &str) -> Member {
        Member::new(a, r).unwrap()
    }

    #[test]
    fn members_are_checked_and_named_in_errors() {
        assert_eq!(m("111122223333", "eu-west-1").to_string(), "111122223333:eu-west-1");
        assert!(matches!(Member::new("1111", "eu-west-1"), Err(MemberError::BadAccount(a)) if a == "1111"));
        assert!(matches!(Member::new("11112222333x", "eu-west-1"), Err(MemberError::BadAccount(_))));
        for bad in ["", "eu", "EU-WEST-1", "eu-west", "eu--1", "eu-west-1a"] {
            assert!(matches!(Member::new("111122223333", bad), Err(MemberError::BadRegion(_))), "{bad}");
        }
        assert!(is_region("us-gov-west-1") && is_region("cn-north-1") && is_region("ap-southeast-5"));
    }

    #[test]
    fn the_topic_arn_names_the_member() {
        assert_eq!(
            Member::of_topic("arn:aws:sns:eu-west-1:111122223333:audit").unwrap(),
            m("111122223333", "eu-west-1")
        );
        assert_eq!(
            Member::of_topic("arn:aws-cn:sns:cn-north-1:111122223333:a:b").unwrap(),
            m("111122223333", "cn-north-1"),
            "names may hold colons only in the last part"
        );
        for bad in
            ["", "arn:aws:sqs:eu-west-1:111122223333:q", "arn:aws:sns:eu-west-1:111122223333:", "arn:aws:sns:x:1:t"]
        {
            assert!(matches!(Member::of_topic(bad), Err(MemberError::BadTopicArn(_))), "{bad}");
        }
    }

    #[test]
    fn key_prefixes_keep_members_apart_and_the_home_member_unprefixed() {
        let home = m("111122223333", "us-east-1");
        let other = m("444455556666", "us-east-1");
        let other_region = m("111122223333", "eu-west-1");
        assert_eq!(home.key_prefix(&home), "");
        assert_eq!(other.key_prefix(&home), "444455556666#us-east-1#");
        assert_eq!(home.key_prefix_of(None), "111122223333#us-east-1#", "no known home: every member prefixed");
        assert_ne!(other_region.key_prefix(&home), home.key_prefix(&home));
        for member in [&home, &other, &other_region] {
            assert_eq!(Member::from_key_prefix(&member.key_prefix(&home), &home).as_ref(), Some(member));
        }
        assert_eq!(Member::from_key_prefix("nonsense", &home), None);
    }

    #[test]
    fn a_setup_that_cannot_reach_the_hub_is_explained() {
        let member = m("444455556666", "eu-west-1");
        let topic = "arn:aws:sns:eu-west-1:444455556666:device-defender-audit-notifications";
        let good = MemberSetup {
            role_arn: Some("arn:aws:iam::444455556666:role/audit".into()),
            notification_target: Some((topic.into(), true)),
            enabled_checks: 14,
        };
        let name = "device-defender-audit-notifications";
        assert_eq!(diagnose_setup(&good, &member, name), None);
        let why = |s: MemberSetup| diagnose_setup(&s, &member, name).unwrap();
        assert!(why(MemberSetup::default()).contains("not configured"));
        assert!(why(MemberSetup { enabled_checks: 0, ..good.clone() }).contains("no audit check"));
        assert!(
            why(MemberSetup { notification_target: None, ..good.clone() }).contains("notifications are not configured")
        );
        assert!(
            why(MemberSetup { notification_target: Some((topic.into(), false)), ..good.clone() }).contains("disabled")
        );
        let elsewhere = "arn:aws:sns:eu-west-1:444455556666:ops-alerts";
        assert!(why(MemberSetup { notification_target: Some((elsewhere.into(), true)), ..good.clone() })
            .contains(elsewhere));
        let other_region = "arn:aws:sns:us-east-1:444455556666:device-defender-audit-notifications";
        assert!(
            why(MemberSetup { notification_target: Some((other_region.into(), true)), ..good }).contains("us-east-1")
        );
    }

    #[test]
    fn account_names_parse_and_a_bad_entry_is_named() {
        let n = parse_account_names("111122223333=payments-prod, 444455556666 = fleet eu,").unwrap();
        assert_eq!(n.get("444455556666").map(String::as_str), Some("fleet eu"));
        assert_eq!(n.len(), 2);
        assert!(parse_account_names("1234=short").unwrap_err().contains("'1234=short'"));
        assert!(parse_account_names("111122223333=").is_err());
    }

    #[test]
    fn lists_parse_sorted_without_duplicates_and_name_a_bad_entry() {
        let l = parse_members("444455556666:eu-west-1, 111122223333:us-east-1\n444455556666:eu-west-1").unwrap();
        assert_eq!(l, vec![m("111122223333", "us-east-1"), m("444455556666", "eu-west-1")]);
        assert_eq!(parse_members(" ").unwrap(), vec![]);
        assert!(matches!(parse_members("111122223333"), Err(MemberError::BadPair(p)) if p == "111122223333"));
        assert!(matches!(parse_members("111122223333:moon"), Err(MemberError::BadRegion(r)) if r == "moon"));
    }
}
