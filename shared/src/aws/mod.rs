//! Real adapters of [`crate::ports`] over the AWS SDK (feature `aws`). The only module that
//! names `aws_sdk_*` types. Clients come in from the caller (built once in `main`); endpoints
//! come from the SDK's standard `AWS_ENDPOINT_URL_<SERVICE>` variables.

pub mod dynamodb;
pub mod iot;
pub mod lambda;
pub mod member_access;
pub mod organizations;
pub mod sns;
pub mod sqs;

use crate::ports::PortError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Sorts an SDK error into a [`PortError`] by its code (never by HTTP status: throttling and
/// validation share 400).
pub(crate) fn classify<
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
>(
    op: &str,
    e: SdkError<E, R>,
) -> PortError {
    let detail = |code: &str, msg: &str| format!("{op}: {code}: {msg}");
    match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            let code = err.code().unwrap_or("Unknown");
            let msg = err.message().unwrap_or("");
            match code {
                "ThrottlingException"
                | "LimitExceededException"
                | "InternalFailureException"
                | "InternalServerError"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "ServiceUnavailable"
                | "Throttling"
                | "TooManyRequestsException"
                | "InternalError" => PortError::Transient(detail(code, msg)),
                "ResourceNotFoundException" | "NotFound" | "AWS.SimpleQueueService.NonExistentQueue" => {
                    PortError::NotFound(detail(code, msg))
                }
                "InvalidRequestException" if msg.contains("nextToken") => PortError::InvalidToken(detail(code, msg)),
                "ExpiredTokenException" | "ExpiredToken" => PortError::CredentialsExpired(detail(code, msg)),
                _ => PortError::Permanent(detail(code, msg)),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Transient(format!("{op}: {}", aws_smithy_types::error::display::DisplayErrorContext(&e)))
        }
        _ => PortError::Permanent(format!("{op}: {}", aws_smithy_types::error::display::DisplayErrorContext(&e))),
    }
}
