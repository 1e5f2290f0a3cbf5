//! Reading request input off the wire with errors that name the field: JSON bodies (any
//! key order, integer or fractional epoch-second timestamps, `null` as absent), query strings
//! (percent-decoded) and URI labels.

use crate::error::ApiError;
use serde_json::{Map, Value};

/// A request's JSON body.
#[derive(Debug, Default)]
pub struct Body(pub Map<String, Value>);

impl Body {
    /// Parses a body; an empty body is `{}`.
    pub fn parse(bytes: &[u8]) -> Result<Body, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => Ok(Body(m)),
            Ok(_) => Err(ApiError::invalid("The request body must be a JSON object")),
            Err(e) => Err(ApiError::invalid(format!("The request body is not valid JSON: {e}"))),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// An optional string member.
    pub fn str(&self, field: &str) -> Result<Option<&str>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(type_error(field, v, "a string")),
        }
    }

    /// An optional integer member.
    pub fn int(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(v) => Err(type_error(field, v, "an integer")),
        }
    }

    /// An optional boolean member.
    pub fn bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(type_error(field, v, "a boolean")),
        }
    }

    /// An optional timestamp member (epoch seconds, integer or fractional), in milliseconds.
    pub fn timestamp_ms(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(secs) if secs.is_finite() && secs.abs() < 1e13 => Ok(Some((secs * 1000.0).round() as i64)),
                _ => Err(type_error(field, &Value::Number(n.clone()), "a timestamp in epoch seconds")),
            },
            Some(v) => Err(type_error(field, v, "a timestamp in epoch seconds (a JSON number)")),
        }
    }

    /// An optional list of strings.
    pub fn str_list(&self, field: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(type_error(&format!("{field}.{}", i + 1), other, "a string")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(type_error(field, v, "a list of strings")),
        }
    }

    /// An optional list member of any items.
    pub fn list(&self, field: &str) -> Result<Option<&Vec<Value>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(v) => Err(type_error(field, v, "a list")),
        }
    }

    /// An optional object (structure or map) member.
    pub fn object(&self, field: &str) -> Result<Option<Body>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Body(m.clone()))),
            Some(v) => Err(type_error(field, v, "an object")),
        }
    }
}

fn type_error(field: &str, v: &Value, expected: &str) -> ApiError {
    let shown = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    ApiError::invalid(format!(
        "Value '{}' at '{field}' must be {expected}",
        shown.chars().take(100).collect::<String>()
    ))
}

/// Length check in characters, with AWS's wording.
pub fn check_length(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        let constraint = if min == max {
            format!("Member must have length {min}")
        } else if n < min {
            format!("Member must have length greater than or equal to {min}")
        } else {
            format!("Member must have length less than or equal to {max}")
        };
        return Err(ApiError::field(field, value, constraint));
    }
    Ok(())
}

/// Every character allowed by `ok`, with the pattern named in the error.
pub fn check_chars(field: &str, value: &str, pattern: &str, ok: impl Fn(char) -> bool) -> Result<(), ApiError> {
    if value.is_empty() || !value.chars().all(ok) {
        return Err(ApiError::field(
            field,
            value,
            format!("Member must satisfy regular expression pattern: {pattern}"),
        ));
    }
    Ok(())
}

/// `scheduledAuditName`: 1–128, `[a-zA-Z0-9_-]+`.
pub fn check_audit_name(name: &str) -> Result<(), ApiError> {
    check_length("scheduledAuditName", name, 1, 128)?;
    check_chars("scheduledAuditName", name, "[a-zA-Z0-9_-]+", |c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `taskId`: 1–40, `[a-zA-Z0-9-]+`.
pub fn check_task_id(id: &str) -> Result<(), ApiError> {
    check_length("taskId", id, 1, 40)?;
    check_chars("taskId", id, "[a-zA-Z0-9-]+", |c| c.is_ascii_alphanumeric() || c == '-')
}

/// The query string as decoded pairs; a repeated parameter is an error.
pub fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(ApiError::invalid(format!("Query parameter '{k}' is given more than once")));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

/// One decoded query parameter.
pub fn query_get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// An integer query parameter.
pub fn query_int(pairs: &[(String, String)], name: &str) -> Result<Option<i64>, ApiError> {
    query_get(pairs, name)
        .map(|v| v.parse::<i64>().map_err(|_| ApiError::field(name, v, "Member must be an integer")))
        .transpose()
}

/// An ISO 8601 / RFC 3339 timestamp query parameter, in epoch milliseconds.
pub fn query_timestamp_ms(pairs: &[(String, String)], name: &str) -> Result<Option<i64>, ApiError> {
    query_get(pairs, name)
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v).map(|t| t.timestamp_millis()).map_err(|_| {
                ApiError::field(name, v, "Member must be an ISO 8601 timestamp such as 2024-05-01T12:00:00Z")
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_members_are_typed_and_errors_name_the_field() {
        let b = Body::parse(br#"{"maxResults":"5","startTime":1714651200.5,"endTime":1714651200,"x":null}"#).unwrap();
        let e = b.int("maxResults").unwrap_err();
        assert!(e.message.contains("maxResults"), "{}", e.message);
        assert_eq!(b.timestamp_ms("startTime").unwrap(), Some(1_714_651_200_500));
        assert_eq!(b.timestamp_ms("endTime").unwrap(), Some(1_714_651_200_000));
        assert_eq!(b.str("x").unwrap(), None);
        assert!(Body::parse(b"").unwrap().0.is_empty());
        assert!(Body::parse(b"[1]").is_err());
        assert!(Body::parse(b"{").is_err());
    }

    #[test]
    fn labels_and_query() {
        assert!(check_audit_name("weekly-1_a").is_ok());
        assert!(check_audit_name("bad name").is_err());
        assert!(check_audit_name(&"a".repeat(129)).is_err());
        assert!(check_task_id("a3aea009955e501a31b764abe1bebd3d").is_ok());
        assert!(check_task_id("a_b").is_err());
        let q = query_pairs(Some("startTime=2024-05-01T12%3A00%3A00Z&endTime=2024-05-02T12%3A00%3A00.5Z")).unwrap();
        assert_eq!(query_timestamp_ms(&q, "endTime").unwrap(), Some(1_714_651_200_500));
        assert!(query_pairs(Some("a=1&a=2")).is_err());
    }
}
