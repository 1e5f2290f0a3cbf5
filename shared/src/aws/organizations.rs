//! [`OrganizationAccounts`] over `aws-sdk-organizations`: `ListAccounts`, every page.
//!
//! Only the organization's management account, a delegated administrator, or an account the
//! management account's resource-based delegation policy allows may call it; anyone else gets
//! `AccessDeniedException` (`Permanent` here: the roll-up says so and retires nobody).
//! Sources: docs/reference/organization.md ("Members join and leave").

use super::classify;
use crate::membership::OrgAccount;
use crate::ports::{OrganizationAccounts, PortError};

/// The organization's account list, read with the hub's credentials.
#[derive(Clone, Debug)]
pub struct OrganizationsDirectory {
    client: aws_sdk_organizations::Client,
}

impl OrganizationsDirectory {
    /// Reads accounts with `client`.
    pub fn new(client: aws_sdk_organizations::Client) -> Self {
        OrganizationsDirectory { client }
    }
}

impl OrganizationAccounts for OrganizationsDirectory {
    async fn accounts(&self) -> Result<Vec<OrgAccount>, PortError> {
        let mut pages = self.client.list_accounts().into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListAccounts", e))?;
            for a in page.accounts() {
                let Some(id) = a.id() else { continue };
                // `State` is the newer field (CLOSED included); `Status` the older one.
                let status = a
                    .state()
                    .map(|s| s.as_str().to_owned())
                    .or_else(|| a.status().map(|s| s.as_str().to_owned()))
                    .unwrap_or_default();
                out.push(OrgAccount { id: id.to_owned(), status });
            }
        }
        Ok(out)
    }
}
