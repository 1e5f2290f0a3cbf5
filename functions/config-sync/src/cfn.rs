//! The CloudFormation custom resource protocol: the typed request (`aws_lambda_events`), the
//! response (at most 4,096 bytes, as CloudFormation requires), and its delivery: one PUT to the
//! presigned `ResponseURL`, retried on transient failures.

use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceRequest, CloudFormationCustomResourceResponse as Response,
    CloudFormationCustomResourceResponseStatus as Status,
};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tracing::error;

/// CloudFormation refuses a response body larger than this (bytes).
pub const MAX_RESPONSE_BYTES: usize = 4096;

/// What a custom resource request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// The resource is created: apply the setup.
    Create,
    /// Its properties changed: apply the new setup.
    Update,
    /// The resource (or stack) is deleted: undo what the stack owns, per `OnDelete`.
    Delete,
}

/// A custom resource request, whatever its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Create, Update or Delete.
    pub kind: RequestKind,
    /// The request's id (one on-demand audit per request).
    pub request_id: String,
    /// Where the response goes (a presigned S3 URL).
    pub response_url: String,
    /// The stack's ARN.
    pub stack_id: String,
    /// The resource's logical id in the template.
    pub logical_resource_id: String,
    /// The physical id: the one CloudFormation sent (Update, Delete) or a new one (Create).
    pub physical_resource_id: String,
    /// `ResourceProperties` as CloudFormation sent them (every scalar a string).
    pub properties: Value,
}

/// A request that could not be read; `answer` holds what is needed to still answer FAILED,
/// when the event carried a `ResponseURL`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// What was wrong with the event.
    pub reason: String,
    /// The fields needed to answer, as far as the event had them.
    pub answer: Option<Box<Request>>,
}

fn text(event: &Value, name: &str) -> Option<String> {
    event.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The physical id given to a new resource: stable per stack and logical id.
fn new_physical_id(stack_id: &str, logical: &str) -> String {
    let name = stack_id.split('/').nth(1).unwrap_or("stack");
    format!("{name}-{logical}-audit-configuration")
}

impl Request {
    /// Reads a custom resource request (an event with `RequestType`) through the typed
    /// `CloudFormationCustomResourceRequest`.
    pub fn parse(event: &Value) -> Result<Request, Unreadable> {
        let typed = serde_json::from_value::<CloudFormationCustomResourceRequest>(event.clone());
        let r = match typed {
            Ok(CloudFormationCustomResourceRequest::Create(c)) => Request {
                kind: RequestKind::Create,
                physical_resource_id: new_physical_id(&c.stack_id, &c.logical_resource_id),
                request_id: c.request_id,
                response_url: c.response_url,
                stack_id: c.stack_id,
                logical_resource_id: c.logical_resource_id,
                properties: c.resource_properties,
            },
            Ok(CloudFormationCustomResourceRequest::Update(u)) => Request {
                kind: RequestKind::Update,
                request_id: u.request_id,
                response_url: u.response_url,
                stack_id: u.stack_id,
                logical_resource_id: u.logical_resource_id,
                physical_resource_id: u.physical_resource_id,
                properties: u.resource_properties,
            },
            Ok(CloudFormationCustomResourceRequest::Delete(d)) => Request {
                kind: RequestKind::Delete,
                request_id: d.request_id,
                response_url: d.response_url,
                stack_id: d.stack_id,
                logical_resource_id: d.logical_resource_id,
                physical_resource_id: d.physical_resource_id,
                properties: d.resource_properties,
            },
            Ok(_) => return Err(Unreadable { reason: "unknown RequestType".into(), answer: Self::salvage(event) }),
            Err(e) => {
                let request_type = text(event, "RequestType").unwrap_or_default();
                return Err(Unreadable {
                    reason: format!("not a valid CloudFormation {request_type} request: {e}"),
                    answer: Self::salvage(event),
                });
            }
        };
        if r.response_url.is_empty() {
            return Err(Unreadable { reason: "ResponseURL is empty".into(), answer: None });
        }
        Ok(r)
    }

    /// What can be answered from an event the typed request refused: only with a ResponseURL.
    fn salvage(event: &Value) -> Option<Box<Request>> {
        let response_url = text(event, "ResponseURL")?;
        let stack_id = text(event, "StackId").unwrap_or_default();
        let logical_resource_id = text(event, "LogicalResourceId").unwrap_or_default();
        Some(Box::new(Request {
            kind: RequestKind::Create,
            request_id: text(event, "RequestId").unwrap_or_default(),
            physical_resource_id: text(event, "PhysicalResourceId")
                .unwrap_or_else(|| new_physical_id(&stack_id, &logical_resource_id)),
            response_url,
            stack_id,
            logical_resource_id,
            properties: Value::Null,
        }))
    }

    /// The response to this request: SUCCESS with `data`, or FAILED with `reason`; cut to fit
    /// [`MAX_RESPONSE_BYTES`] (the reason first, then the largest data values, each named in
    /// the reason).
    pub fn response(&self, outcome: Result<HashMap<String, String>, String>, success_reason: &str) -> Response {
        let mut r = Response::default();
        r.physical_resource_id = self.physical_resource_id.clone();
        r.stack_id = self.stack_id.clone();
        r.request_id = self.request_id.clone();
        r.logical_resource_id = self.logical_resource_id.clone();
        r.no_echo = false;
        match outcome {
            Ok(data) => {
                r.status = Status::Success;
                r.reason = Some(success_reason.to_owned());
                r.data = data;
            }
            Err(reason) => {
                r.status = Status::Failed;
                r.reason = Some(reason);
            }
        }
        fit(r)
    }
}

fn size(r: &Response) -> usize {
    serde_json::to_vec(r).map_or(usize::MAX, |v| v.len())
}

/// Cuts a response to [`MAX_RESPONSE_BYTES`].
fn fit(mut r: Response) -> Response {
    let mut dropped = Vec::new();
    while size(&r) > MAX_RESPONSE_BYTES {
        let reason_len = r.reason.as_deref().map_or(0, str::len);
        let largest = r.data.iter().max_by_key(|(_, v)| v.len()).map(|(k, v)| (k.clone(), v.len()));
        match largest {
            // Data first when a value is larger than the reason: the reason says why.
            Some((k, len)) if len >= reason_len.min(1000) => {
                r.data.remove(&k);
                dropped.push(k);
            }
            _ => {
                let over = size(&r) - MAX_RESPONSE_BYTES;
                let reason = r.reason.take().unwrap_or_default();
                let mut keep = reason.len().saturating_sub(over + 4);
                while !reason.is_char_boundary(keep) {
                    keep -= 1;
                }
                r.reason = Some(format!("{}…", &reason[..keep]));
                if keep == 0 {
                    break;
                }
            }
        }
        if !dropped.is_empty() && size(&r) <= MAX_RESPONSE_BYTES {
            let note = format!(" (left out of Data to fit CloudFormation's 4 KB response: {})", dropped.join(", "));
            let mut with_note = r.clone();
            with_note.reason = Some(format!("{}{note}", r.reason.as_deref().unwrap_or("")));
            if size(&with_note) <= MAX_RESPONSE_BYTES {
                r = with_note;
            }
            dropped.clear();
        }
    }
    r
}

/// The HTTP(S) client that PUTs CloudFormation responses.
pub type ResponseClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<hyper::body::Bytes>,
>;

/// Delivers responses to CloudFormation.
#[derive(Clone)]
pub struct Responder {
    http: ResponseClient,
    attempts: u32,
}

/// Why a response could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("could not deliver the CloudFormation response to {url}: {last}")]
pub struct DeliveryError {
    /// The presigned URL, without its query (the signature).
    pub url: String,
    /// The last failure.
    pub last: String,
}

impl Responder {
    /// A responder for HTTPS (presigned S3 URLs, native roots) and plain HTTP (local runs),
    /// trying each PUT up to `attempts` times; an error when the system's CA certificates do
    /// not load (no HTTPS response could be delivered then).
    pub fn new(attempts: u32) -> Result<Responder, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| format!("the system's CA certificates do not load: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Ok(Responder { http, attempts: attempts.max(1) })
    }

    /// PUTs `response` to `url`, retrying transient failures with backoff.
    pub async fn deliver(&self, url: &str, response: &Response) -> Result<(), DeliveryError> {
        let shown = url.split('?').next().unwrap_or(url).to_owned();
        let text = serde_json::to_string(response).unwrap_or_default();
        let mut last = String::new();
        for attempt in 0..self.attempts {
            // The presigned URL is signed without a content type: send none.
            let req = hyper::Request::put(url)
                .header("content-length", text.len())
                .body(http_body_util::Full::new(hyper::body::Bytes::from(text.clone())))
                .map_err(|e| DeliveryError { url: shown.clone(), last: format!("not a usable URL: {e}") })?;
            match tokio::time::timeout(Duration::from_secs(30), self.http.request(req)).await {
                Ok(Ok(r)) if r.status().is_success() => return Ok(()),
                Ok(Ok(r)) => last = format!("HTTP {}", r.status()),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out after 30 s".into(),
            }
            if attempt + 1 < self.attempts {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
        error!(error = %last, "could not deliver the CloudFormation response");
        Err(DeliveryError { url: shown, last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str) -> Value {
        let mut e = json!({
            "RequestType": kind,
            "ServiceToken": "arn:aws:lambda:us-east-1:1:function:f",
            "ResponseURL": "https://s3.example/r?X-Amz-Signature=abc",
            "StackId": "arn:aws:cloudformation:us-east-1:1:stack/my-stack/guid",
            "RequestId": "req-1",
            "LogicalResourceId": "AuditConfiguration",
            "ResourceType": "Custom::IotAuditConfiguration",
            "ResourceProperties": { "Checks": ["A"] },
        });
        if kind != "Create" {
            e["PhysicalResourceId"] = json!("phys-1");
        }
        if kind == "Update" {
            e["OldResourceProperties"] = json!({});
        }
        e
    }

    #[test]
    fn each_kind_parses_and_create_gets_a_stable_physical_id() {
        let c = Request::parse(&event("Create")).unwrap();
        assert_eq!(
            (c.kind, c.physical_resource_id.as_str()),
            (RequestKind::Create, "my-stack-AuditConfiguration-audit-configuration")
        );
        assert_eq!(c.properties, json!({ "Checks": ["A"] }));
        let u = Request::parse(&event("Update")).unwrap();
        assert_eq!((u.kind, u.physical_resource_id.as_str()), (RequestKind::Update, "phys-1"));
        let d = Request::parse(&event("Delete")).unwrap();
        assert_eq!((d.kind, d.request_id.as_str()), (RequestKind::Delete, "req-1"));
    }

    #[test]
    fn an_unreadable_request_is_still_answerable_when_it_has_a_response_url() {
        let mut e = event("Update");
        e.as_object_mut().unwrap().remove("PhysicalResourceId");
        let err = Request::parse(&e).unwrap_err();
        assert!(err.reason.contains("PhysicalResourceId"), "{}", err.reason);
        assert_eq!(err.answer.unwrap().response_url, "https://s3.example/r?X-Amz-Signature=abc");
        let mut e = event("Replace");
        e.as_object_mut().unwrap().remove("ResponseURL");
        assert!(Request::parse(&e).unwrap_err().answer.is_none());
    }

    #[test]
    fn responses_fit_in_4096_bytes_and_say_what_was_cut() {
        let r = Request::parse(&event("Create")).unwrap();
        let failed = r.response(Err("x".repeat(10_000)), "");
        assert!(size(&failed) <= MAX_RESPONSE_BYTES && failed.status == Status::Failed);
        assert!(failed.reason.as_deref().unwrap().ends_with('…'));
        let mut data = HashMap::new();
        data.insert("EnabledChecks".to_owned(), "C".repeat(5000));
        data.insert("Steps".to_owned(), "3".to_owned());
        let ok = r.response(Ok(data), "Create applied");
        assert!(size(&ok) <= MAX_RESPONSE_BYTES, "{}", size(&ok));
        assert_eq!(ok.data.get("Steps").map(String::as_str), Some("3"));
        assert!(!ok.data.contains_key("EnabledChecks"));
        assert!(ok.reason.as_deref().unwrap().contains("EnabledChecks"), "{:?}", ok.reason);
        let wire: Value = serde_json::to_value(&ok).unwrap();
        for field in
            ["Status", "Reason", "PhysicalResourceId", "StackId", "RequestId", "LogicalResourceId", "NoEcho", "Data"]
        {
            assert!(wire.get(field).is_some(), "{field} missing: {wire}");
        }
        assert_eq!(wire["Status"], "SUCCESS");
    }
}
