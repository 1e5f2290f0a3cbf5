//! The services at `POST /`: SQS (awsJson1.0, `X-Amz-Target: AmazonSQS.*`), Organizations
//! (awsJson1.1, `X-Amz-Target: AWSOrganizationsV20161128.*`, [`crate::organizations`]), and SNS
//! and STS (awsQuery forms, told apart by `Action`), each answered in its own wire format for
//! the caller's account-region.

use crate::scope::Caller;
use crate::server::{lock, Emu, Emulator};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// `POST /`: SQS (awsJson1.0, `X-Amz-Target: AmazonSQS.*`), Organizations (awsJson1.1,
/// `X-Amz-Target: AWSOrganizationsV20161128.*`), STS (awsQuery, `AssumeRole`,
/// `GetCallerIdentity`) or SNS (awsQuery form).
pub(crate) async fn query_or_json_action(
    State(emu): Emu,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(action) = target.strip_prefix(crate::organizations::TARGET_PREFIX) {
        // Answers its own errors (the caller's too) in awsJson1.1.
        return crate::organizations::action(&emu, action, &headers, &bytes);
    }
    let mut params: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    params.extend(form_urlencoded::parse(q.unwrap_or_default().as_bytes()).into_owned());
    let caller = match emu.caller(&headers) {
        Ok(c) => c,
        Err(e) => {
            // The one caller error: expired temporary credentials (STS's modeled code).
            let xml = crate::sts::StsError { code: "ExpiredTokenException", status: 400, message: e.message }
                .to_xml(&uuid::Uuid::new_v4().to_string());
            return (StatusCode::BAD_REQUEST, [("content-type", "text/xml")], xml).into_response();
        }
    };
    if let Some(action) = target.strip_prefix("AmazonSQS.") {
        return sqs_action(&emu, action, &bytes, &caller);
    }
    let action = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.as_str()).unwrap_or("");
    if crate::served::STS.iter().any(|op| op.name == action) {
        return sts_action(&emu, &params, &caller);
    }
    sns_action(&emu, &params, &caller)
}

fn sts_action(emu: &Arc<Emulator>, params: &[(String, String)], caller: &Caller) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let now = emu.now_ms();
    match lock(&emu.sts).handle(params, caller, now, &request_id) {
        Ok(r) => (StatusCode::OK, [("content-type", "text/xml")], r.xml).into_response(),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            [("content-type", "text/xml")],
            e.to_xml(&request_id),
        )
            .into_response(),
    }
}

fn sqs_action(emu: &Emulator, action: &str, bytes: &Bytes, caller: &Caller) -> Response {
    let body: Value = if bytes.is_empty() { json!({}) } else { serde_json::from_slice(bytes).unwrap_or(Value::Null) };
    let result = if body.is_object() {
        let now = emu.now_ms();
        lock(&emu.sqs).handle(action, &body, now, &caller.user_id)
    } else {
        Err(crate::sqs::SqsError {
            code: "InvalidParameterValue",
            message: "the request body must be a JSON object".into(),
        })
    };
    let (status, v) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_json()),
    };
    (status, [("content-type", "application/x-amz-json-1.0")], v.to_string()).into_response()
}

fn sns_action(emu: &Arc<Emulator>, params: &[(String, String)], caller: &Caller) -> Response {
    emu.sync();
    let request_id = uuid::Uuid::new_v4().to_string();
    let now = emu.now_ms();
    let result = lock(&emu.sns).handle(params, now, &request_id, &caller.scope);
    let (status, xml) = match result {
        Ok(r) => {
            emu.to_queues(r.to_queues);
            if let Some(p) = r.published {
                emu.deliver(p);
            }
            (StatusCode::OK, r.xml)
        }
        Err(e) => (StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.to_xml(&request_id)),
    };
    (status, [("content-type", "text/xml")], xml).into_response()
}
