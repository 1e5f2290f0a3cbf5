//! Opaque, stable page tokens and `maxResults` checking.
//!
//! A token carries the key of the last item served (keyset pagination: items added or removed
//! meanwhile cause no duplicates or gaps) and a digest of the query it belongs to. Every page
//! gets a fresh token (the Rust paginator stops silently on an echoed one). A token that does
//! not decode, or comes back with other filters, is an InvalidRequestException.

use crate::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Default and bounds of `maxResults`.
pub const DEFAULT_MAX_RESULTS: i64 = 25;
pub const MAX_MAX_RESULTS: i64 = 250;

/// Checks `maxResults` (1–250) and applies the default of 25.
pub fn page_size(max_results: Option<i64>) -> Result<usize, ApiError> {
    match max_results {
        None => Ok(DEFAULT_MAX_RESULTS as usize),
        Some(n) if (1..=MAX_MAX_RESULTS).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::field("maxResults", n, "Member must have value between 1 and 250")),
    }
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Key of the last item served.
    k: Vec<u64>,
    /// Digest of the query.
    q: String,
}

/// Digest of a query's filters (everything but `nextToken` and `maxResults`).
pub fn query_digest(op: &str, filters: &[(&str, Option<String>)]) -> String {
    let mut h = Sha256::new();
    h.update(op.as_bytes());
    for (name, value) in filters {
        h.update([0u8]);
        h.update(name.as_bytes());
        if let Some(v) = value {
            h.update([1u8]);
            h.update(v.as_bytes());
        }
    }
    hex::encode(&h.finalize()[..12])
}

/// A token for the page after the item with key `key`.
pub fn encode(key: &[u64], digest: &str) -> String {
    let json = serde_json::to_vec(&Token { k: key.to_vec(), q: digest.to_owned() }).expect("token serialises");
    URL_SAFE_NO_PAD.encode(json)
}

/// The key a token resumes after; `None` for the first page.
pub fn decode(token: Option<&str>, digest: &str, key_len: usize) -> Result<Option<Vec<u64>>, ApiError> {
    let Some(token) = token else { return Ok(None) };
    let bad = || ApiError::invalid(format!("nextToken '{}' is not a valid token for this request", truncate(token)));
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let t: Token = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if t.q != digest {
        return Err(ApiError::invalid("nextToken was issued for a request with different parameters"));
    }
    if t.k.len() != key_len {
        return Err(bad());
    }
    Ok(Some(t.k))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound_to_the_query() {
        let d = query_digest("ListAuditTasks", &[("taskType", Some("X".into()))]);
        let t = encode(&[3, 4], &d);
        assert_eq!(decode(Some(&t), &d, 2).unwrap(), Some(vec![3, 4]));
        let other = query_digest("ListAuditTasks", &[("taskType", None)]);
        assert!(decode(Some(&t), &other, 2).is_err());
        assert!(decode(Some("garbage!"), &d, 2).is_err());
        assert_ne!(encode(&[1], &d), encode(&[2], &d));
    }

    #[test]
    fn max_results_bounds() {
        assert_eq!(page_size(None).unwrap(), 25);
        assert_eq!(page_size(Some(250)).unwrap(), 250);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(251)).is_err());
    }
}
