//! AWS STS, as far as an organization deployment needs it: `AssumeRole` and
//! `GetCallerIdentity` on STS's real wire protocol (awsQuery: form-encoded POST to `/`,
//! `Action` and `Version=2011-06-15`, XML answers in the `https://sts.amazonaws.com/doc/2011-06-15/`
//! namespace), so `aws-sdk-sts`, `aws-config`'s assume-role provider and boto3 work against it.
//!
//! Rules and sources are in `docs/reference/sts.md`. In short: roles exist only when declared
//! (`--role`, or `POST /_emulator/roles`) with the accounts their trust policy names; a caller
//! from another account gets `AccessDenied` (403, not in the model: AWS's generic error); the
//! model's limits on `RoleArn` (20–2,048), `RoleSessionName` (2–64, `[\w+=,.@-]*`),
//! `DurationSeconds` (900–43,200, and at most the role's maximum session, default 3,600) and
//! `ExternalId` (2–1,224, `[\w+=,.@:/-]*`) are checked with `ValidationError`. Issued
//! credentials belong to the role's account until they expire (virtual time).

use crate::scope::Caller;
use std::collections::BTreeMap;

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// An STS error.
#[derive(Debug, Clone, PartialEq)]
pub struct StsError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl StsError {
    fn validation(message: impl Into<String>) -> Self {
        StsError { code: "ValidationError", status: 400, message: message.into() }
    }

    /// The XML error document (awsQuery).
    pub fn to_xml(&self, request_id: &str) -> String {
        format!(
            "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            self.code,
            escape(&self.message)
        )
    }
}

/// A role callers may assume.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub arn: String,
    /// Accounts the trust policy names as principals.
    pub trusted_accounts: Vec<String>,
    /// Seconds, 3,600 to 43,200 (IAM's default 3,600).
    pub max_session_secs: i64,
}

impl Role {
    /// Parses `arn:aws:iam::<account>:role/<name>[=<trusted account>,…]`; without trusted
    /// accounts the role trusts its own account only.
    pub fn parse(spec: &str) -> Result<Role, String> {
        let (arn, trusted) = spec.split_once('=').map_or((spec, None), |(a, t)| (a, Some(t)));
        let account = role_account(arn)
            .ok_or_else(|| format!("'{arn}' is not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)"))?;
        let trusted_accounts: Vec<String> = match trusted {
            Some(t) => t.split(',').map(|a| a.trim().to_owned()).collect(),
            None => vec![account.to_owned()],
        };
        if let Some(bad) = trusted_accounts.iter().find(|a| !is_account(a)) {
            return Err(format!("trusted account '{bad}' of {arn} is not a 12-digit account id"));
        }
        Ok(Role { arn: arn.to_owned(), trusted_accounts, max_session_secs: 3600 })
    }

    /// The account that owns the role.
    pub fn account(&self) -> &str {
        role_account(&self.arn).unwrap_or_default()
    }
}

/// Whether `s` is a 12-digit account id.
pub fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn role_account(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    (is_account(account) && resource.starts_with("role/") && resource.len() > 5).then_some(account)
}

fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Temporary credentials issued by `AssumeRole`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Issued {
    pub access_key_id: String,
    pub account: String,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// `<role id>:<session>` (the `AssumedRoleId`): GetCallerIdentity's `UserId` for the session.
    pub user_id: String,
    /// Epoch milliseconds (virtual time).
    pub expires_ms: i64,
}

/// The emulated STS: declared roles and the credentials issued for them.
#[derive(Debug, Default)]
pub struct Sts {
    pub roles: BTreeMap<String, Role>,
    pub issued: BTreeMap<String, Issued>,
    counter: u64,
}

/// What an STS call produced.
#[derive(Debug)]
pub struct StsResult {
    pub xml: String,
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn check_len(
    name: &str,
    v: &str,
    min: usize,
    max: usize,
    allowed: impl Fn(char) -> bool,
    pattern: &str,
) -> Result<(), StsError> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(StsError::validation(format!(
            "1 validation error detected: Value '{v}' at '{name}' failed to satisfy constraint: Member must have length {} {}",
            if n < min { "greater than or equal to" } else { "less than or equal to" },
            if n < min { min } else { max }
        )));
    }
    if !v.chars().all(allowed) {
        return Err(StsError::validation(format!(
            "1 validation error detected: Value '{v}' at '{name}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
        )));
    }
    Ok(())
}

fn word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

impl Sts {
    /// The account temporary credentials belong to, while they are valid at `now_ms`.
    pub fn account_of(&self, access_key_id: &str, now_ms: i64) -> Option<&Issued> {
        self.issued.get(access_key_id).filter(|i| i.expires_ms > now_ms)
    }

    /// Whether `access_key_id` was issued here but has expired.
    pub fn expired(&self, access_key_id: &str, now_ms: i64) -> bool {
        self.issued.get(access_key_id).is_some_and(|i| i.expires_ms <= now_ms)
    }

    /// One awsQuery call (`Action` in `params`) from `caller`.
    pub fn handle(
        &mut self,
        params: &[(String, String)],
        caller: &Caller,
        now_ms: i64,
        request_id: &str,
    ) -> Result<StsResult, StsError> {
        match param(params, "Action").unwrap_or("") {
            "GetCallerIdentity" => Ok(StsResult {
                xml: format!(
                    "<GetCallerIdentityResponse xmlns=\"{XMLNS}\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
                    escape(&caller.arn),
                    escape(&caller.user_id),
                    caller.scope.account
                ),
            }),
            "AssumeRole" => self.assume_role(params, caller, now_ms, request_id),
            other => Err(StsError {
                code: "InvalidAction",
                status: 400,
                message: format!("Could not find operation {other} for version 2011-06-15"),
            }),
        }
    }

    fn assume_role(
        &mut self,
        params: &[(String, String)],
        caller: &Caller,
        now_ms: i64,
        request_id: &str,
    ) -> Result<StsResult, StsError> {
        let arn = param(params, "RoleArn").ok_or_else(|| StsError::validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"))?;
        let session = param(params, "RoleSessionName").ok_or_else(|| StsError::validation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"))?;
        check_len(
            "roleArn",
            arn,
            20,
            2048,
            |c| !c.is_control() || c == '\t' || c == '\n' || c == '\r',
            "[\\u0009\\u000A\\u000D\\u0020-\\u007E\\u0085\\u00A0-\\uD7FF\\uE000-\\uFFFD\\u10000-\\u10FFFF]+",
        )?;
        check_len("roleSessionName", session, 2, 64, |c| word(c) || "+=,.@-".contains(c), "[\\w+=,.@-]*")?;
        if let Some(e) = param(params, "ExternalId") {
            check_len("externalId", e, 2, 1224, |c| word(c) || "+=,.@:/-".contains(c), "[\\w+=,.@:\\/-]*")?;
        }
        let duration = match param(params, "DurationSeconds") {
            None => 3600,
            Some(d) => {
                let d: i64 = d
                    .parse()
                    .map_err(|_| StsError::validation(format!("Value '{d}' at 'durationSeconds' is not an integer")))?;
                if !(900..=43200).contains(&d) {
                    return Err(StsError::validation(format!(
                        "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value {} {}",
                        if d < 900 { "greater than or equal to" } else { "less than or equal to" },
                        if d < 900 { 900 } else { 43200 }
                    )));
                }
                d
            }
        };
        let denied = || StsError {
            code: "AccessDenied",
            status: 403,
            message: format!("User: {} is not authorized to perform: sts:AssumeRole on resource: {arn}", caller.arn),
        };
        let role = self.roles.get(arn).ok_or_else(denied)?;
        if !role.trusted_accounts.contains(&caller.scope.account) {
            return Err(denied());
        }
        if duration > role.max_session_secs {
            return Err(StsError::validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ));
        }
        let account = role.account().to_owned();
        self.counter += 1;
        let access_key_id = format!("ASIA{:016X}", self.counter ^ 0x5EED_0000_0000);
        let role_id = format!("AROA{:017X}", crate::scope::stable_hash(arn));
        let assumed = format!("arn:aws:sts::{account}:assumed-role/{}/{session}", role_name(arn));
        let expires_ms = now_ms + duration * 1000;
        self.issued.insert(
            access_key_id.clone(),
            Issued {
                access_key_id: access_key_id.clone(),
                account: account.clone(),
                arn: assumed.clone(),
                user_id: format!("{role_id}:{session}"),
                expires_ms,
            },
        );
        Ok(StsResult {
            xml: format!(
                "<AssumeRoleResponse xmlns=\"{XMLNS}\"><AssumeRoleResult><AssumedRoleUser><AssumedRoleId>{role_id}:{session}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser><Credentials><AccessKeyId>{access_key_id}</AccessKeyId><SecretAccessKey>emulated-secret-{access_key_id}</SecretAccessKey><SessionToken>emulated-session-{access_key_id}</SessionToken><Expiration>{}</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></AssumeRoleResponse>",
                escape(&assumed),
                iso(expires_ms)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;

    fn caller(account: &str) -> Caller {
        Caller {
            scope: Scope { account: account.into(), region: "us-east-1".into() },
            arn: format!("arn:aws:iam::{account}:user/tester"),
            user_id: "AIDAEMULATED".into(),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn sts() -> Sts {
        let mut s = Sts::default();
        let r = Role::parse("arn:aws:iam::222222222222:role/audit-reader=111111111111").unwrap();
        s.roles.insert(r.arn.clone(), r);
        s
    }

    #[test]
    fn roles_parse_with_their_trusted_accounts() {
        let r = Role::parse("arn:aws:iam::222222222222:role/audit-reader=111111111111,333333333333").unwrap();
        assert_eq!((r.account(), r.trusted_accounts.len()), ("222222222222", 2));
        assert_eq!(Role::parse("arn:aws:iam::222222222222:role/x").unwrap().trusted_accounts, ["222222222222"]);
        assert!(Role::parse("arn:aws:iam::2222:role/x").unwrap_err().contains("not an IAM role ARN"));
        assert!(Role::parse("arn:aws:iam::222222222222:role/x=abc").unwrap_err().contains("trusted account 'abc'"));
    }

    #[test]
    fn assume_role_binds_credentials_to_the_role_account_until_they_expire() {
        let mut s = sts();
        let ok = params(&[
            ("Action", "AssumeRole"),
            ("RoleArn", "arn:aws:iam::222222222222:role/audit-reader"),
            ("RoleSessionName", "hub"),
            ("DurationSeconds", "900"),
        ]);
        let r = s.handle(&ok, &caller("111111111111"), 0, "rid").unwrap();
        assert!(r.xml.contains("<Arn>arn:aws:sts::222222222222:assumed-role/audit-reader/hub</Arn>"), "{}", r.xml);
        assert!(r.xml.contains("<Expiration>1970-01-01T00:15:00Z</Expiration>"));
        let key = s.issued.keys().next().unwrap().clone();
        let issued = s.account_of(&key, 899_999).unwrap();
        assert_eq!(issued.account, "222222222222");
        assert!(issued.user_id.starts_with("AROA") && issued.user_id.ends_with(":hub"), "{}", issued.user_id);
        assert!(r.xml.contains(&format!("<AssumedRoleId>{}</AssumedRoleId>", issued.user_id)));
        assert!(s.account_of(&key, 900_000).is_none() && s.expired(&key, 900_000));
    }

    #[test]
    fn undeclared_or_untrusting_roles_are_denied_and_bad_input_is_named() {
        let mut s = sts();
        let call =
            |s: &mut Sts, p: &[(&str, &str)], from: &str| s.handle(&params(p), &caller(from), 0, "rid").unwrap_err();
        let base = [
            ("Action", "AssumeRole"),
            ("RoleArn", "arn:aws:iam::222222222222:role/audit-reader"),
            ("RoleSessionName", "hub"),
        ];
        let e = call(&mut s, &base, "999999999999");
        assert_eq!((e.code, e.status), ("AccessDenied", 403));
        assert!(e
            .message
            .contains("arn:aws:iam::999999999999:user/tester is not authorized to perform: sts:AssumeRole"));
        let unknown =
            [("Action", "AssumeRole"), ("RoleArn", "arn:aws:iam::222222222222:role/other"), ("RoleSessionName", "hub")];
        assert_eq!(call(&mut s, &unknown, "111111111111").code, "AccessDenied");
        let mut long = base.to_vec();
        long.push(("DurationSeconds", "7200"));
        assert!(call(&mut s, &long, "111111111111").message.contains("MaxSessionDuration"));
        let mut short = base.to_vec();
        short.push(("DurationSeconds", "899"));
        assert!(call(&mut s, &short, "111111111111").message.contains("greater than or equal to 900"));
        let bad_session = [
            ("Action", "AssumeRole"),
            ("RoleArn", "arn:aws:iam::222222222222:role/audit-reader"),
            ("RoleSessionName", "a b"),
        ];
        assert!(call(&mut s, &bad_session, "111111111111").message.contains("'roleSessionName'"));
        assert_eq!(call(&mut s, &[("Action", "AssumeRoleWithSAML")], "111111111111").code, "InvalidAction");
    }

    #[test]
    fn get_caller_identity_names_the_caller() {
        let r = Sts::default()
            .handle(&params(&[("Action", "GetCallerIdentity")]), &caller("111111111111"), 0, "rid")
            .unwrap();
        assert!(
            r.xml.contains("<Account>111111111111</Account>")
                && r.xml.contains("<Arn>arn:aws:iam::111111111111:user/tester</Arn>")
        );
    }
}
