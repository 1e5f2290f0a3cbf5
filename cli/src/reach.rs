//! Reaching the table before asking it: one DescribeTable first, so that what stands in the way
//! — no region, no credentials, an endpoint that does not answer or is not DynamoDB, a table
//! that does not exist, a call the credentials may not make — is said in one line a person can
//! act on, instead of the SDK's nested error.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;

/// Errors longer than this are cut (the rest is rarely what a person acts on).
const MAX_ERROR_CHARS: usize = 400;

/// `text` on one line, at most [`MAX_ERROR_CHARS`] characters.
pub fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// Where the SDK sends DynamoDB calls: the endpoint variables it reads, else AWS's.
fn endpoint(region: &str) -> String {
    ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.is_empty()))
        .unwrap_or_else(|| format!("DynamoDB in {region}"))
}

/// Checks that `table` can be read, or says in one line why not.
pub async fn table(client: &aws_sdk_dynamodb::Client, sdk: &aws_config::SdkConfig, table: &str) -> Result<(), String> {
    let Some(region) = sdk.region() else {
        return Err("no AWS region: set AWS_REGION (or AWS_PROFILE naming a profile with a region)".into());
    };
    let at = endpoint(region.as_ref());
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(()),
        // Credentials allowed to read but not to describe the table: the reads will tell.
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("AccessDeniedException") => Ok(()),
        Err(e) => Err(one_line(&explain(&e, table, region.as_ref(), &at))),
    }
}

/// The innermost cause of an error: what actually went wrong (`Connection refused`, …).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What is wrong with the credentials, when an error chain says they could not be loaded.
fn credentials_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_credential_types::provider::error::CredentialsError;
    let mut cause = Some(e);
    while let Some(c) = cause {
        match c.downcast_ref::<CredentialsError>() {
            // No provider of the default chain had any.
            Some(CredentialsError::CredentialsNotLoaded(_)) => {
                return Some("none found in the environment, the profiles, web identity, ECS or EC2 metadata".into())
            }
            Some(other) => return Some(root_cause(other)),
            None => cause = c.source(),
        }
    }
    None
}

fn explain(
    e: &SdkError<DescribeTableError, aws_sdk_dynamodb::config::http::HttpResponse>,
    table: &str,
    region: &str,
    at: &str,
) -> String {
    if let Some(problem) = credentials_problem(e) {
        return format!(
            "no AWS credentials ({problem}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (aws configure)"
        );
    }
    match e {
        SdkError::ServiceError(s) => match (s.err().code(), s.err().message()) {
            (Some("ResourceNotFoundException"), _) => format!(
                "table '{table}' does not exist in {region} ({at}): check --table or TABLE_NAME (the stack's \
                 FindingsTableName output) and the region"
            ),
            (Some(code), message) => {
                format!("{at} refused DescribeTable of table '{table}': {code}: {}", message.unwrap_or("no message"))
            }
            (None, _) => format!(
                "{at} answered HTTP {} to DescribeTable, not as DynamoDB answers: check AWS_ENDPOINT_URL_DYNAMODB",
                s.raw().status().as_u16()
            ),
        },
        SdkError::TimeoutError(_) => format!("{at} did not answer in time: check the endpoint and the network"),
        SdkError::DispatchFailure(_) => format!("cannot reach {at}: {}", root_cause(e)),
        SdkError::ResponseError(_) => format!(
            "{at} answered something that is not a DynamoDB response ({}): check AWS_ENDPOINT_URL_DYNAMODB",
            root_cause(e)
        ),
        _ => format!("DescribeTable of table '{table}' at {at} failed: {}", root_cause(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
        let long = "x ".repeat(1000);
        let cut = one_line(&long);
        assert!(cut.chars().count() == MAX_ERROR_CHARS + 1 && cut.ends_with('…'));
    }
}
