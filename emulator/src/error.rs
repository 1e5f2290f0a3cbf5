//! The audit API's error responses: one typed error, mapped to the wire in one place.
//!
//! Wire form (reference §1.5): the HTTP status of the error shape, an `x-amzn-ErrorType`
//! header carrying the code, an `x-amzn-RequestId`, and a JSON body `{"message": …}` (plus
//! `resourceId`/`resourceArn` for ResourceAlreadyExists).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The error shapes of the IoT operations, plus the emulator's answer to an unknown route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Throttling,
    ResourceNotFound,
    ResourceAlreadyExists,
    LimitExceeded,
    InternalFailure,
    UnknownOperation,
    /// The request's access key is not one the emulator knows an account for (AWS's common
    /// error for an unknown key).
    UnrecognizedClient,
    /// The request was signed with temporary credentials that have expired.
    ExpiredToken,
}

impl ErrorKind {
    /// The error code, as sent in `x-amzn-ErrorType`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "InvalidRequestException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::ResourceAlreadyExists => "ResourceAlreadyExistsException",
            ErrorKind::LimitExceeded => "LimitExceededException",
            ErrorKind::InternalFailure => "InternalFailureException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
            ErrorKind::UnrecognizedClient => "UnrecognizedClientException",
            ErrorKind::ExpiredToken => "ExpiredTokenException",
        }
    }

    /// The HTTP status of the error shape.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::Throttling => StatusCode::BAD_REQUEST,
            ErrorKind::ResourceNotFound | ErrorKind::UnknownOperation => StatusCode::NOT_FOUND,
            ErrorKind::ResourceAlreadyExists => StatusCode::CONFLICT,
            ErrorKind::LimitExceeded => StatusCode::GONE,
            ErrorKind::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::UnrecognizedClient | ErrorKind::ExpiredToken => StatusCode::FORBIDDEN,
        }
    }
}

/// An error answer of the audit API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// `resourceId` and `resourceArn` of ResourceAlreadyExistsException.
    pub existing: Option<(String, String)>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError { kind, message: message.into(), existing: None }
    }
    /// 400 InvalidRequestException.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }
    /// 404 ResourceNotFoundException.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceNotFound, message)
    }
    /// 410 LimitExceededException.
    pub fn limit(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LimitExceeded, message)
    }
    /// 400 InvalidRequestException in AWS's validation wording, naming the field.
    pub fn field(field: &str, value: impl std::fmt::Display, constraint: impl std::fmt::Display) -> Self {
        Self::invalid(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ))
    }
    /// 400 for a required member that is missing.
    pub fn missing(field: &str) -> Self {
        Self::invalid(format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "message": self.message });
        if let Some((id, arn)) = &self.existing {
            body["resourceId"] = json!(id);
            body["resourceArn"] = json!(arn);
        }
        let mut resp = (self.kind.status(), axum::Json(body)).into_response();
        let header = format!("{}:http://internal.amazon.com/coral/com.amazonaws.iot/", self.kind.code());
        resp.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_str(&header).expect("ascii header"));
        resp
    }
}
