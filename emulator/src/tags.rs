//! IoT's tagging operations for the resources the emulator holds — scheduled audits, the one
//! IoT resource with an ARN here: TagResource (`POST /tags`), UntagResource (`POST /untag`)
//! and ListTagsForResource (`GET /tags?resourceArn=`), and the `tags` CreateScheduledAudit
//! takes. Tags follow the model's `Tag` shape (`Key` 1–128 characters of
//! `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`, optional `Value` 0–256) and AWS's limit of 50 tags per
//! resource. Sources: `docs/reference/emulator-services.md`.

use crate::error::ApiError;
use crate::state::AuditState;
use crate::wire::{check_chars, check_length, Body};
use serde_json::{json, Value};

/// A tag: key and optional value.
pub type Tag = (String, Option<String>);

/// Tags a resource may carry (AWS's tagging limit).
pub const MAX_TAGS: usize = 50;

fn check_key(field: &str, key: &str) -> Result<(), ApiError> {
    check_length(field, key, 1, 128)?;
    check_chars(field, key, r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$", |c| {
        c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
    })
}

/// `tags`: a list of `{Key, Value}`, each checked against the model.
pub(crate) fn parse_tags(body: &Body) -> Result<Vec<Tag>, ApiError> {
    let Some(items) = body.list("tags")? else { return Ok(Vec::new()) };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("tags.{}", i + 1);
            let Value::Object(m) = item else {
                return Err(ApiError::invalid(format!("{field} must be an object with Key and Value")));
            };
            let t = Body(m.clone());
            let key = t.str("Key")?.ok_or_else(|| ApiError::missing(&format!("{field}.member.Key")))?;
            check_key(&format!("{field}.member.Key"), key)?;
            let value = t.str("Value")?;
            if let Some(v) = value {
                check_length(&format!("{field}.member.Value"), v, 0, 256)?;
            }
            Ok((key.to_owned(), value.map(str::to_owned)))
        })
        .collect()
}

/// Lays `new` over `have` (a new value for a key replaces the old one).
fn merge(have: &mut Vec<Tag>, new: Vec<Tag>) {
    for (k, v) in new {
        match have.iter_mut().find(|(hk, _)| *hk == k) {
            Some(t) => t.1 = v,
            None => have.push((k, v)),
        }
    }
}

/// LimitExceededException when `have` with `new` laid over it would carry more than 50 tags.
pub(crate) fn check_tag_count(have: &[Tag], new: &[Tag]) -> Result<(), ApiError> {
    let mut all = have.to_vec();
    merge(&mut all, new.to_vec());
    if all.len() > MAX_TAGS {
        return Err(ApiError::limit(format!(
            "A resource can have at most {MAX_TAGS} tags; this request would give it {}",
            all.len()
        )));
    }
    Ok(())
}

fn tags_json(tags: &[Tag]) -> Value {
    json!(tags
        .iter()
        .map(|(k, v)| match v {
            Some(v) => json!({ "Key": k, "Value": v }),
            None => json!({ "Key": k }),
        })
        .collect::<Vec<_>>())
}

impl AuditState {
    /// The tags of the resource `arn` names, when it exists in this account-region.
    fn tags_of(&mut self, arn: &str) -> Result<&mut Vec<Tag>, ApiError> {
        check_length("resourceArn", arn, 1, 2048)?;
        self.scheduled
            .iter_mut()
            .find(|a| a.arn == arn)
            .map(|a| &mut a.tags)
            .ok_or_else(|| ApiError::not_found(format!("Resource {arn} does not exist")))
    }

    /// TagResource: adds tags, or replaces the values of keys the resource already has.
    pub fn tag_resource(&mut self, body: &Body) -> Result<Value, ApiError> {
        let arn = body.str("resourceArn")?.ok_or_else(|| ApiError::missing("resourceArn"))?.to_owned();
        if body.list("tags")?.is_none() {
            return Err(ApiError::missing("tags"));
        }
        let new = parse_tags(body)?;
        let have = self.tags_of(&arn)?;
        check_tag_count(have, &new)?;
        merge(have, new);
        Ok(json!({}))
    }

    /// UntagResource: removes the keys given (keys the resource lacks are ignored).
    pub fn untag_resource(&mut self, body: &Body) -> Result<Value, ApiError> {
        let arn = body.str("resourceArn")?.ok_or_else(|| ApiError::missing("resourceArn"))?.to_owned();
        let keys = body.str_list("tagKeys")?.ok_or_else(|| ApiError::missing("tagKeys"))?;
        for (i, k) in keys.iter().enumerate() {
            check_key(&format!("tagKeys.{}", i + 1), k)?;
        }
        self.tags_of(&arn)?.retain(|(k, _)| !keys.contains(k));
        Ok(json!({}))
    }

    /// ListTagsForResource: every tag in one page (a resource has at most 50).
    pub fn list_tags(&mut self, arn: Option<&str>) -> Result<Value, ApiError> {
        let arn = arn.ok_or_else(|| ApiError::missing("resourceArn"))?;
        Ok(json!({ "tags": tags_json(self.tags_of(arn)?) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Body {
        Body::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn merge_replaces_values_and_the_limit_counts_distinct_keys() {
        let mut have = vec![("team".to_owned(), Some("iot".to_owned()))];
        merge(&mut have, vec![("team".into(), Some("sec".into())), ("tier".into(), None)]);
        assert_eq!(have, vec![("team".into(), Some("sec".into())), ("tier".into(), None)]);
        let fifty: Vec<Tag> = (0..50).map(|i| (format!("k{i}"), None)).collect();
        assert!(check_tag_count(&fifty, &[("k0".into(), Some("v".into()))]).is_ok());
        let e = check_tag_count(&fifty, &[("k50".into(), None)]).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::LimitExceeded);
    }

    #[test]
    fn tags_are_checked_against_the_model() {
        let long = "k".repeat(129);
        let e = parse_tags(&body(json!({ "tags": [{ "Key": long }] }))).unwrap_err();
        assert!(e.message.contains("tags.1.member.Key"), "{}", e.message);
        let e = parse_tags(&body(json!({ "tags": [{ "Key": "k", "Value": "v".repeat(257) }] }))).unwrap_err();
        assert!(e.message.contains("tags.1.member.Value"), "{}", e.message);
        let e = parse_tags(&body(json!({ "tags": [{ "Key": "a#b" }] }))).unwrap_err();
        assert!(e.message.contains("regular expression"), "{}", e.message);
        assert_eq!(
            parse_tags(&body(json!({ "tags": [{ "Key": "team", "Value": "" }] }))).unwrap()[0].1.as_deref(),
            Some("")
        );
    }
}
