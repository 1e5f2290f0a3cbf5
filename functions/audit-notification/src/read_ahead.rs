//! Pages read ahead of their writers, all checks together: held encoded (JSON, a fraction of
//! the memory of the decoded findings) and bounded in bytes. While the stream's open episodes
//! load, the readers keep reading into this budget instead of leaving rate-limit slots unused;
//! when writing is slower than reading, the budget is what bounds memory.

use audit_shared::finding::Finding;
use audit_shared::ports::{FindingsPage, PortError};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bytes of encoded pages the readers may hold, all checks together: device-certificate
/// findings take ~0.35 KB each encoded (~90 KB a page), so at the quota (10 pages/s) about 4.5 s
/// of reading, past the ~3.6 s the open episodes of a 10^5-finding stream take to load on the
/// bench machine; 8 MB took the 10^6-finding bench past its 64 MB (README, Benchmarks).
pub const READ_AHEAD_BYTES: usize = 4 << 20;

/// The shared budget (counted in KiB).
#[derive(Clone)]
pub struct ReadAhead {
    kib: Arc<Semaphore>,
    budget_kib: u32,
}

/// A page read and not yet written: its findings encoded, its place in the budget held until
/// it is dropped.
pub struct HeldPage {
    encoded: Vec<u8>,
    /// The token of the page after it (`None`: the check's last page).
    pub next_token: Option<String>,
    _held: OwnedSemaphorePermit,
}

impl ReadAhead {
    /// A budget of `bytes` (at least 1 KiB).
    pub fn new(bytes: usize) -> Self {
        let budget_kib = (bytes / 1024).clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize)) as u32;
        ReadAhead { kib: Arc::new(Semaphore::new(budget_kib as usize)), budget_kib }
    }

    /// Encodes `page` and waits until it fits the budget (a page larger than the whole budget
    /// waits for all of it).
    pub async fn hold(&self, page: FindingsPage) -> Result<HeldPage, PortError> {
        let encoded = serde_json::to_vec(&page.findings)
            .map_err(|e| PortError::Permanent(format!("cannot hold a page of findings: {e}")))?;
        let kib = (encoded.len().div_ceil(1024) as u32).clamp(1, self.budget_kib);
        let held = self.kib.clone().acquire_many_owned(kib).await.expect("the budget is never closed");
        Ok(HeldPage { encoded, next_token: page.next_token, _held: held })
    }

    /// KiB of the budget free now.
    pub fn free_kib(&self) -> usize {
        self.kib.available_permits()
    }
}

impl HeldPage {
    /// The page's findings, decoded.
    pub fn findings(&self) -> Result<Vec<Finding>, PortError> {
        serde_json::from_slice(&self.encoded)
            .map_err(|e| PortError::Permanent(format!("cannot read back a held page of findings: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_shared::{CheckName, ResourceType, Severity};
    use std::collections::BTreeMap;

    fn finding(i: usize) -> Finding {
        Finding {
            task_id: "a1b2c3".into(),
            check_name: if i % 2 == 0 {
                CheckName::new("DEVICE_CERTIFICATE_EXPIRING_CHECK")
            } else {
                CheckName::new("A_CHECK_AWS_ADDS_LATER")
            },
            finding_id: (i % 3 != 0).then(|| format!("f-{i}")),
            severity: if i % 2 == 0 { Severity::parse("MEDIUM") } else { Severity::parse("URGENT") },
            resource_type: ResourceType::parse("DEVICE_CERTIFICATE"),
            resource: BTreeMap::from([("deviceCertificateId".to_owned(), format!("{i:064x}"))]),
            additional_info: if i % 4 == 0 {
                BTreeMap::from([("k".into(), "v \"quoted\" ü".into())])
            } else {
                BTreeMap::new()
            },
            reason_code: Some("CERTIFICATE_EXPIRING".into()),
            reason: (i % 5 != 0).then(|| "Certificate is expiring".into()),
            finding_time: Some(1_700_000_000_123 + i as i64),
            related_resources: (i % 7 == 0).then(|| r#"[{"resourceType":"IOT_POLICY"}]"#.into()),
            is_suppressed: i % 6 == 0,
        }
    }

    #[tokio::test]
    async fn a_held_page_reads_back_as_it_was_read() {
        let ahead = ReadAhead::new(1 << 20);
        let findings: Vec<Finding> = (0..250).map(finding).collect();
        let held = ahead.hold(FindingsPage { findings: findings.clone(), next_token: Some("t".into()) }).await.unwrap();
        assert_eq!(held.next_token.as_deref(), Some("t"));
        assert_eq!(held.findings().unwrap(), findings);
    }

    #[tokio::test]
    async fn pages_wait_once_the_budget_is_held_and_go_on_as_pages_are_written() {
        let page = FindingsPage { findings: (0..250).map(finding).collect(), next_token: None };
        let one = serde_json::to_vec(&page.findings).unwrap().len().div_ceil(1024);
        // Room for two pages, not three.
        let ahead = ReadAhead::new((2 * one + one / 2) * 1024);
        let first = ahead.hold(page.clone()).await.unwrap();
        let _second = ahead.hold(page.clone()).await.unwrap();
        let third = tokio::spawn({
            let (ahead, page) = (ahead.clone(), page.clone());
            async move { ahead.hold(page).await.unwrap() }
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "a third page does not fit");
        drop(first);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), third).await.unwrap().unwrap();
        assert_eq!(third.findings().unwrap().len(), 250);
        assert!(ahead.free_kib() < one, "two pages held");
    }

    #[tokio::test]
    async fn a_page_larger_than_the_budget_waits_for_all_of_it_rather_than_forever() {
        let ahead = ReadAhead::new(1024);
        let page = FindingsPage { findings: (0..250).map(finding).collect(), next_token: None };
        let held = ahead.hold(page.clone()).await.unwrap();
        assert_eq!(ahead.free_kib(), 0);
        drop(held);
        assert_eq!(ahead.hold(page).await.unwrap().findings().unwrap().len(), 250);
    }
}
