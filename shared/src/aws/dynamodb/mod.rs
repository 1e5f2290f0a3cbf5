//! The DynamoDB adapters over one table (the single-table design): [`DynamoTaskStore`]
//! (`task_store.rs`: summaries, findings, digests, run history) and [`DynamoSetupStore`]
//! (`setup_store.rs`: config-sync's records), with the item helpers both use and
//! [`create_table`] for local stacks.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | task summary | `TASK#<taskId>` | `SUMMARY` | outline, ingest state and per-check progress, lease, digest state, counts |
//! | finding | `TASK#<taskId>` | `FINDING#<check>#<resourceKey>` | one per check + resource; GSI `byResource`: `RESOURCE#<resourceKey>` / `<startMs>#<taskId>#<check>` |
//! | digest | `TASK#<taskId>` | `DIGEST` | the digest as JSON attributes |
//! | run history | `AUDIT#<scheduledAuditName or ~on-demand>` | `RUN#<startMs, 13 digits>#<taskId>` | one per ingested task: find the previous run |
//! | setup record | `CONFIG#<stackId>` | `STATE` | config-sync's last applied setup, owned audits and suppressions |
//! | drift record | `CONFIG#<stackId>` | `DRIFT#<ms>` | one per drift check that found differences |
//! | start claim | `CONFIG#START` | `<requestId>` | one on-demand audit per CloudFormation request |
//!
//! Every item carries `expiresAt` (epoch seconds, the table's TTL attribute).

mod setup_store;
mod task_store;

pub use setup_store::DynamoSetupStore;
pub use task_store::DynamoTaskStore;

use super::classify;
use crate::ports::PortError;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// A DynamoDB item.
pub(super) type Item = HashMap<String, AttributeValue>;

/// Name of the GSI over resources.
pub const RESOURCE_INDEX: &str = "byResource";

/// Items asked for per Query page when walking a task's findings. DynamoDB stops a page at
/// 1 MB (about 1,800 finding items) whatever the limit, so in AWS this changes nothing; DynamoDB
/// Local, without a limit, materialises every remaining item of the partition for each page
/// (measured: 10^5 findings took 56 s to walk without it, 6.7 s with it).
pub const QUERY_PAGE_LIMIT: i32 = 2000;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `TASK#<taskId>`.
pub fn task_pk(task_id: &str) -> String {
    format!("TASK#{task_id}")
}

/// `FINDING#<check>#<resourceKey>`.
pub fn finding_sk(check: &str, resource_key: &str) -> String {
    format!("FINDING#{check}#{resource_key}")
}

/// `RUN#<startMs>#<taskId>`, sorting by start time.
pub fn run_sk(start_ms: i64, task_id: &str) -> String {
    format!("RUN#{start_ms:013}#{task_id}")
}

/// The key of an item.
pub(super) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// `expiresAt`: now plus `days`, in epoch seconds (the table's TTL attribute).
pub(super) fn expires_in(days: u32) -> AttributeValue {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    n(now + days as i64 * 86_400)
}

pub(super) fn to_item<T: serde::Serialize>(v: &T) -> Result<Item, PortError> {
    serde_dynamo::to_item(v).map_err(|e| PortError::Permanent(format!("cannot encode item: {e}")))
}

pub(super) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, PortError> {
    serde_dynamo::from_item(item).map_err(|e| PortError::Permanent(format!("cannot decode stored item: {e}")))
}

pub(super) fn is_condition_failed<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

/// PutItem, unconditional.
pub(super) async fn put(client: &aws_sdk_dynamodb::Client, table: &str, item: Item) -> Result<(), PortError> {
    client.put_item().table_name(table).set_item(Some(item)).send().await.map_err(|e| classify("PutItem", e))?;
    Ok(())
}

pub(super) fn to_attr<T: serde::Serialize>(v: &T) -> Result<AttributeValue, PortError> {
    serde_dynamo::to_attribute_value(v).map_err(|e| PortError::Permanent(e.to_string()))
}

/// Creates the table as `template.yaml` declares it (keys, the `byResource` index, on-demand
/// billing) and enables TTL on `expiresAt`: for local stacks, where no CloudFormation runs.
/// An existing table is left as it is.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), PortError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, TimeToLiveSpecification,
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("complete")
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder().attribute_name(name).key_type(t).build().expect("complete")
    };
    let r = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("gsi1pk"))
        .attribute_definitions(attr("gsi1sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(RESOURCE_INDEX)
                .key_schema(key("gsi1pk", KeyType::Hash))
                .key_schema(key("gsi1sk", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("complete"),
        )
        .send()
        .await;
    match r {
        Ok(_) => {}
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ResourceInUseException") => return Ok(()),
        Err(e) => return Err(classify("CreateTable", e)),
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().attribute_name("expiresAt").enabled(true).build().expect("complete"),
        )
        .send()
        .await
        .map_err(|e| classify("UpdateTimeToLive", e))?;
    Ok(())
}
