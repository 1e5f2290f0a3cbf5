//! AWS Organizations, as far as the hub's roll-up needs it: `ListAccounts` on its real wire
//! protocol (awsJson1.1: `POST /`, `X-Amz-Target: AWSOrganizationsV20161128.ListAccounts`,
//! `application/x-amz-json-1.1`, errors as `{"__type", "Message"}` with HTTP 400), so
//! `aws-sdk-organizations` and boto3 work against it.
//!
//! The organization holds every account the emulator serves (`--account-id`, `--account`,
//! the accounts of `--access-key`, `--role` and `--organization-reader`, and those declared
//! later through the admin API) except those that left it (`DELETE
//! /_emulator/organization/accounts/<id>`); its management account is `--account-id`, its id
//! `--organization-id`. Only the management account and the `--organization-reader` accounts
//! may list it. Rules and sources: `docs/reference/emulator-services.md` ("Organizations").

use crate::pagination;
use crate::server::{lock, Emulator};
use crate::wire::Body;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The `X-Amz-Target` prefix of the Organizations actions.
pub const TARGET_PREFIX: &str = "AWSOrganizationsV20161128.";

/// The default and largest `MaxResults` of `ListAccounts` (the model's maximum: 20).
pub const MAX_RESULTS: i64 = 20;

/// Whether `s` is an organization id: `o-` and 10–32 lowercase letters or digits.
pub fn is_organization_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// Where an account is in its lifecycle (the `State` of Organizations' `Account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountState {
    /// Sign-up started but not completed.
    PendingActivation,
    /// Fully operational.
    Active,
    /// AWS has restricted access.
    Suspended,
    /// A closure is under way.
    PendingClosure,
    /// Closed (reinstatable for 90 days).
    Closed,
}

impl AccountState {
    /// Every state, as the `State` enum lists them.
    pub const ALL: [AccountState; 5] = [
        AccountState::PendingActivation,
        AccountState::Active,
        AccountState::Suspended,
        AccountState::PendingClosure,
        AccountState::Closed,
    ];

    /// The wire name (`ACTIVE`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::PendingActivation => "PENDING_ACTIVATION",
            AccountState::Active => "ACTIVE",
            AccountState::Suspended => "SUSPENDED",
            AccountState::PendingClosure => "PENDING_CLOSURE",
            AccountState::Closed => "CLOSED",
        }
    }

    /// The state of a wire name.
    pub fn parse(s: &str) -> Option<AccountState> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The older `Status` (ACTIVE, SUSPENDED, PENDING_CLOSURE) that goes with the state: a
    /// closed account's status is SUSPENDED (CloseAccount's documentation), one pending
    /// activation ACTIVE (ours: the status had no value for it).
    pub fn status(self) -> &'static str {
        match self {
            AccountState::PendingActivation | AccountState::Active => "ACTIVE",
            AccountState::Suspended | AccountState::Closed => "SUSPENDED",
            AccountState::PendingClosure => "PENDING_CLOSURE",
        }
    }
}

/// An Organizations error: its code (`__type`), message and, for `InvalidInputException`,
/// its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgError {
    /// The error shape's name (`__type`).
    pub code: &'static str,
    /// `Message`.
    pub message: String,
    /// `Reason` (an `InvalidInputExceptionReason`).
    pub reason: Option<&'static str>,
}

impl OrgError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        OrgError { code, message: message.into(), reason: None }
    }

    fn invalid_input(reason: &'static str, message: impl Into<String>) -> Self {
        OrgError { code: "InvalidInputException", message: message.into(), reason: Some(reason) }
    }

    /// The awsJson error body.
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "__type": self.code, "Message": self.message });
        if let Some(r) = self.reason {
            v["Reason"] = json!(r);
        }
        v
    }
}

/// Why the admin API refused an organization change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeError {
    /// The account is not in the organization (never was, or left).
    NotFound(String),
    /// The change is not allowed (the management account or a reader leaving).
    Conflict(String),
}

/// The organization: its id, management account, readers, and the members' states.
#[derive(Debug, Clone)]
pub struct Organization {
    /// `o-…`.
    pub id: String,
    /// `--account-id`.
    pub management: String,
    /// Accounts besides the management account that may call `ListAccounts`.
    pub readers: BTreeSet<String>,
    /// When every member joined (epoch milliseconds): the emulator's virtual start.
    pub joined_ms: i64,
    /// States other than ACTIVE.
    states: BTreeMap<String, AccountState>,
    /// Accounts that left.
    departed: BTreeSet<String>,
}

impl Organization {
    /// A validated organization; every member ACTIVE.
    pub fn new(id: &str, management: &str, readers: &[String], joined_ms: i64) -> Result<Self, String> {
        if !is_organization_id(id) {
            return Err(format!("--organization-id '{id}' does not match ^o-[a-z0-9]{{10,32}}$"));
        }
        if let Some(bad) = readers.iter().find(|r| !crate::sts::is_account(r)) {
            return Err(format!("--organization-reader '{bad}' is not a 12-digit account id"));
        }
        Ok(Organization {
            id: id.to_owned(),
            management: management.to_owned(),
            readers: readers.iter().cloned().collect(),
            joined_ms,
            states: BTreeMap::new(),
            departed: BTreeSet::new(),
        })
    }

    /// The organization of `--organization-id`, managed by `--account-id`, its readers
    /// `--organization-reader`, every member joined at the virtual start `start_ms`.
    pub fn from_options(opts: &crate::Options, start_ms: i64) -> Result<Self, String> {
        Organization::new(&opts.organization_id, &opts.account_id, &opts.organization_readers, start_ms)
    }

    /// The members (of the emulator's `declared` accounts, those that did not leave) and their
    /// states, by account id.
    pub fn members<'a>(&'a self, declared: &'a BTreeSet<String>) -> impl Iterator<Item = (&'a str, AccountState)> {
        declared
            .iter()
            .filter(|a| !self.departed.contains(*a))
            .map(|a| (a.as_str(), self.states.get(a).copied().unwrap_or(AccountState::Active)))
    }

    fn check_member(&self, account: &str, declared: &BTreeSet<String>) -> Result<(), ChangeError> {
        if self.departed.contains(account) {
            Err(ChangeError::NotFound(format!("account {account} has left organization {}", self.id)))
        } else if !declared.contains(account) {
            Err(ChangeError::NotFound(format!("account {account} is not in organization {}", self.id)))
        } else {
            Ok(())
        }
    }

    /// Sets a member's state.
    pub fn set_state(
        &mut self,
        account: &str,
        state: AccountState,
        declared: &BTreeSet<String>,
    ) -> Result<(), ChangeError> {
        self.check_member(account, declared)?;
        self.states.insert(account.to_owned(), state);
        Ok(())
    }

    /// The member leaves the organization (the account itself goes on existing). The
    /// management account cannot leave, nor can a reader (a delegated administrator).
    pub fn leave(&mut self, account: &str, declared: &BTreeSet<String>) -> Result<(), ChangeError> {
        self.check_member(account, declared)?;
        if account == self.management {
            return Err(ChangeError::Conflict(format!(
                "account {account} is the management account of {}: it cannot leave the organization",
                self.id
            )));
        }
        if self.readers.contains(account) {
            return Err(ChangeError::Conflict(format!(
                "account {account} is an organization reader (a delegated administrator): it cannot leave the organization"
            )));
        }
        self.departed.insert(account.to_owned());
        self.states.remove(account);
        Ok(())
    }

    /// One `Account` object.
    fn account_json(&self, id: &str, state: AccountState) -> Value {
        json!({
            "Id": id,
            "Arn": format!("arn:aws:organizations::{}:account/{}/{id}", self.management, self.id),
            "Email": format!("{id}@example.com"),
            "Name": format!("account-{id}"),
            "Status": state.status(),
            "State": state.as_str(),
            "JoinedMethod": "CREATED",
            "JoinedTimestamp": self.joined_ms as f64 / 1000.0,
        })
    }

    /// `ListAccounts` with the request `body`, called from account `caller`.
    pub fn list_accounts(&self, body: &[u8], caller: &str, declared: &BTreeSet<String>) -> Result<Value, OrgError> {
        let body = Body::parse(body).map_err(|e| OrgError::new("SerializationException", e.message))?;
        let max = body.int("MaxResults").map_err(|e| OrgError::new("SerializationException", e.message))?;
        let token = body.str("NextToken").map_err(|e| OrgError::new("SerializationException", e.message))?;
        if self.departed.contains(caller) {
            return Err(OrgError::new(
                "AWSOrganizationsNotInUseException",
                "Your account isn't a member of an organization.",
            ));
        }
        if caller != self.management && !self.readers.contains(caller) {
            return Err(OrgError::new("AccessDeniedException", "You don't have permissions to access this resource."));
        }
        let size = match max {
            None => MAX_RESULTS as usize,
            Some(n) if (1..=MAX_RESULTS).contains(&n) => n as usize,
            Some(n) => {
                let (reason, bound) = if n < 1 {
                    ("MIN_VALUE_EXCEEDED", "greater than or equal to 1")
                } else {
                    ("MAX_VALUE_EXCEEDED", "less than or equal to 20")
                };
                return Err(OrgError::invalid_input(
                    reason,
                    format!("1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value {bound}"),
                ));
            }
        };
        let digest = pagination::query_digest("ListAccounts", &[]);
        let after = pagination::decode(token.filter(|t| !t.is_empty()), &digest, 1)
            .map_err(|e| OrgError::invalid_input("INVALID_NEXT_TOKEN", e.message))?
            .map(|k| k[0]);
        let mut rest =
            self.members(declared).filter(|(id, _)| after.is_none_or(|a| id.parse::<u64>().is_ok_and(|n| n > a)));
        let page: Vec<(&str, AccountState)> = rest.by_ref().take(size).collect();
        let mut out = json!({ "Accounts": page.iter().map(|(id, st)| self.account_json(id, *st)).collect::<Vec<_>>() });
        if let (Some((last, _)), Some(_)) = (page.last(), rest.next()) {
            let key = last.parse::<u64>().expect("account ids are 12 digits");
            out["NextToken"] = json!(pagination::encode(&[key], &digest));
        }
        Ok(out)
    }

    /// The admin view: id, management account, readers, members with their state and status,
    /// and the accounts that left.
    pub fn view(&self, declared: &BTreeSet<String>) -> Value {
        let accounts: Vec<Value> = self
            .members(declared)
            .map(|(id, st)| json!({ "id": id, "state": st.as_str(), "status": st.status() }))
            .collect();
        json!({
            "id": self.id,
            "managementAccountId": self.management,
            "readers": self.readers,
            "accounts": accounts,
            "departed": self.departed,
        })
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/x-amz-json-1.1")], body.to_string()).into_response()
}

/// One Organizations call (`action` is the target after [`TARGET_PREFIX`]).
pub(crate) fn action(emu: &Emulator, action: &str, headers: &HeaderMap, bytes: &Bytes) -> Response {
    let caller = match emu.caller(headers) {
        Ok(c) => c,
        Err(e) => return answer(StatusCode::BAD_REQUEST, OrgError::new(e.kind.code(), e.message).to_json()),
    };
    let result = match action {
        "ListAccounts" => {
            let declared = lock(&emu.tenants).accounts.clone();
            lock(&emu.organization).list_accounts(bytes, &caller.scope.account, &declared)
        }
        other => Err(OrgError::new(
            "UnknownOperationException",
            format!("The emulator serves ListAccounts of Organizations, not {other}"),
        )),
    };
    match result {
        Ok(v) => answer(StatusCode::OK, v),
        Err(e) => answer(StatusCode::BAD_REQUEST, e.to_json()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MGMT: &str = "123456789012";

    fn declared() -> BTreeSet<String> {
        ["123456789012", "111111111111", "222222222222", "333333333333"].iter().map(|s| s.to_string()).collect()
    }

    fn org() -> Organization {
        Organization::new("o-emulator000", MGMT, &["111111111111".into()], 1_768_435_200_000).unwrap()
    }

    fn ids(v: &Value) -> Vec<&str> {
        v["Accounts"].as_array().unwrap().iter().map(|a| a["Id"].as_str().unwrap()).collect()
    }

    #[test]
    fn organization_ids_and_readers_are_checked() {
        assert!(is_organization_id("o-emulator000") && is_organization_id(&format!("o-{}", "a1".repeat(16))));
        assert!(
            !is_organization_id("o-short")
                && !is_organization_id("o-UPPERCASE00")
                && !is_organization_id("x-abcdefghij")
        );
        assert!(!is_organization_id(&format!("o-{}", "a".repeat(33))));
        assert!(Organization::new("o-bad", MGMT, &[], 0).unwrap_err().contains("--organization-id 'o-bad'"));
        assert!(Organization::new("o-emulator000", MGMT, &["12".into()], 0).unwrap_err().contains("'12'"));
    }

    #[test]
    fn states_map_to_the_older_status() {
        let pairs: Vec<(&str, &str)> = AccountState::ALL.iter().map(|s| (s.as_str(), s.status())).collect();
        assert_eq!(
            pairs,
            [
                ("PENDING_ACTIVATION", "ACTIVE"),
                ("ACTIVE", "ACTIVE"),
                ("SUSPENDED", "SUSPENDED"),
                ("PENDING_CLOSURE", "PENDING_CLOSURE"),
                ("CLOSED", "SUSPENDED")
            ]
        );
        assert_eq!(AccountState::parse("CLOSED"), Some(AccountState::Closed));
        assert_eq!(AccountState::parse("closed"), None);
    }

    #[test]
    fn the_management_account_and_readers_list_every_member() {
        let (o, d) = (org(), declared());
        let all = o.list_accounts(b"", MGMT, &d).unwrap();
        assert_eq!(ids(&all), ["111111111111", "123456789012", "222222222222", "333333333333"]);
        assert!(all.get("NextToken").is_none());
        let a = &all["Accounts"][2];
        assert_eq!(a["Arn"], "arn:aws:organizations::123456789012:account/o-emulator000/222222222222");
        assert_eq!(
            (a["Email"].as_str(), a["Name"].as_str()),
            (Some("222222222222@example.com"), Some("account-222222222222"))
        );
        assert_eq!(
            (a["State"].as_str(), a["Status"].as_str(), a["JoinedMethod"].as_str()),
            (Some("ACTIVE"), Some("ACTIVE"), Some("CREATED"))
        );
        assert_eq!(a["JoinedTimestamp"].as_f64(), Some(1_768_435_200.0));
        assert_eq!(o.list_accounts(b"{}", "111111111111", &d).unwrap(), all);
        let e = o.list_accounts(b"{}", "222222222222", &d).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("AccessDeniedException", "You don't have permissions to access this resource.")
        );
    }

    #[test]
    fn leaving_and_state_changes_show_and_the_management_account_stays() {
        let (mut o, d) = (org(), declared());
        o.set_state("333333333333", AccountState::Closed, &d).unwrap();
        o.leave("222222222222", &d).unwrap();
        let v = o.list_accounts(b"{}", MGMT, &d).unwrap();
        assert_eq!(ids(&v), ["111111111111", "123456789012", "333333333333"]);
        assert_eq!(
            (v["Accounts"][2]["State"].as_str(), v["Accounts"][2]["Status"].as_str()),
            (Some("CLOSED"), Some("SUSPENDED"))
        );
        assert!(matches!(o.leave("222222222222", &d), Err(ChangeError::NotFound(m)) if m.contains("has left")));
        assert!(
            matches!(o.set_state("999999999999", AccountState::Active, &d), Err(ChangeError::NotFound(m)) if m.contains("999999999999"))
        );
        assert!(matches!(o.leave(MGMT, &d), Err(ChangeError::Conflict(m)) if m.contains("management account")));
        assert!(matches!(o.leave("111111111111", &d), Err(ChangeError::Conflict(_))));
        // A caller whose account left is in no organization.
        o.readers.insert("222222222222".into());
        assert_eq!(o.list_accounts(b"{}", "222222222222", &d).unwrap_err().code, "AWSOrganizationsNotInUseException");
        let view = o.view(&d);
        assert_eq!(view["departed"], json!(["222222222222"]));
        assert_eq!(view["accounts"][2], json!({ "id": "333333333333", "state": "CLOSED", "status": "SUSPENDED" }));
    }

    #[test]
    fn pages_visit_every_member_once_and_tokens_are_checked() {
        let (o, d) = (org(), declared());
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let body = json!({ "MaxResults": 1, "NextToken": token }).to_string();
            let page = o.list_accounts(body.as_bytes(), MGMT, &d).unwrap();
            assert_eq!(page["Accounts"].as_array().unwrap().len(), 1);
            seen.extend(ids(&page).into_iter().map(str::to_owned));
            match page["NextToken"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, d.iter().cloned().collect::<Vec<_>>());
        let two = o.list_accounts(br#"{"MaxResults": 2}"#, MGMT, &d).unwrap();
        assert_eq!(ids(&two).len(), 2);
        for (max, reason) in [(0, "MIN_VALUE_EXCEEDED"), (21, "MAX_VALUE_EXCEEDED")] {
            let e = o.list_accounts(json!({ "MaxResults": max }).to_string().as_bytes(), MGMT, &d).unwrap_err();
            assert_eq!((e.code, e.reason), ("InvalidInputException", Some(reason)), "{e:?}");
        }
        let e = o.list_accounts(br#"{"NextToken": "garbage"}"#, MGMT, &d).unwrap_err();
        assert_eq!((e.code, e.reason), ("InvalidInputException", Some("INVALID_NEXT_TOKEN")));
        assert_eq!(e.to_json()["Reason"], "INVALID_NEXT_TOKEN");
        assert_eq!(o.list_accounts(br#"{"MaxResults": "1"}"#, MGMT, &d).unwrap_err().code, "SerializationException");
        assert_eq!(
            o.list_accounts(br#"{"NextToken": ""}"#, MGMT, &d).unwrap(),
            o.list_accounts(b"{}", MGMT, &d).unwrap()
        );
    }
}
