//! Who is calling, and which account-region they address: the account comes from the access
//! key in the request's SigV4 `Authorization` header (a key declared with `--access-key`, or
//! temporary credentials issued by the emulated STS; any other key is the default account),
//! the region from its credential scope (`Credential=<key>/<date>/<region>/<service>/aws4_request`).
//! Signatures are not checked: the emulator trusts its callers, as a local tool should.

use std::collections::BTreeMap;

/// One account-region: its own Device Defender state, fleet, quotas and SNS topics.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub scope: Scope,
    /// Its ARN (a user of the account, or an assumed role).
    pub arn: String,
    pub user_id: String,
}

/// The access key and region of a SigV4 `Authorization` header, when it has them.
pub fn credential_scope(authorization: &str) -> Option<(&str, &str)> {
    let credential = authorization.split(['\u{20}', ',']).find_map(|p| p.trim().strip_prefix("Credential="))?;
    let mut parts = credential.split('/');
    let key = parts.next().filter(|k| !k.is_empty())?;
    let _date = parts.next()?;
    let region = parts.next().filter(|r| !r.is_empty())?;
    Some((key, region))
}

/// Whether `s` looks like an AWS region name (`us-east-1`, `eu-central-2`, `ap-southeast-4`…).
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// Long-term access keys declared for accounts (`--access-key KEY=ACCOUNT`).
#[derive(Debug, Clone, Default)]
pub struct AccessKeys {
    pub keys: BTreeMap<String, String>,
}

impl AccessKeys {
    /// Parses `KEY=ACCOUNT`.
    pub fn parse_entry(spec: &str) -> Result<(String, String), String> {
        let (key, account) = spec.split_once('=').ok_or_else(|| format!("'{spec}' is not KEY=ACCOUNT"))?;
        if key.is_empty() {
            return Err(format!("'{spec}': the access key is empty"));
        }
        if !crate::sts::is_account(account) {
            return Err(format!("'{spec}': '{account}' is not a 12-digit account id"));
        }
        Ok((key.to_owned(), account.to_owned()))
    }
}

/// A stable (cross-version) 64-bit hash: FNV-1a.
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_scope_gives_key_and_region() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDHUB/20261130/eu-west-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(credential_scope(h), Some(("AKIDHUB", "eu-west-1")));
        assert_eq!(credential_scope("AWS4-HMAC-SHA256 Credential=/x"), None);
        assert_eq!(credential_scope("Bearer token"), None);
    }

    #[test]
    fn regions_and_keys_are_checked() {
        assert!(is_region("us-east-1") && is_region("ap-southeast-4") && is_region("us-gov-west-1"));
        assert!(!is_region("useast1") && !is_region("us-east") && !is_region("US-EAST-1"));
        assert_eq!(AccessKeys::parse_entry("AK=111111111111").unwrap(), ("AK".into(), "111111111111".into()));
        assert!(AccessKeys::parse_entry("AK=1").unwrap_err().contains("12-digit"));
        assert!(AccessKeys::parse_entry("AK").unwrap_err().contains("KEY=ACCOUNT"));
    }
}
