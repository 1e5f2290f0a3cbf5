//! The DynamoDB adapters over one table (the single-table design): [`DynamoTaskStore`]
//! (`task_store.rs`: summaries, digests, run history), [`DynamoEpisodeStore`]
//! (`episode_store.rs`: the finding lifecycle), [`DynamoMemberStore`] (`member_store.rs`: the
//! hub's members) and [`DynamoSetupStore`] (`setup_store.rs`:
//! config-sync's records), with the item helpers they use, the [`CapacityMeter`] they report
//! consumed capacity to, and [`create_table`] for local stacks.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | task summary | `TASK#<taskId>` | `SUMMARY` | outline, ingest state and per-check progress, lease, digest and lifecycle state, counts |
//! | seen record | `TASK#<taskId>` | `SEEN#<check>#<page, 6 digits>` | the open episodes one stored page saw again (8-byte hashes): how a continuation knows them |
//! | digest | `TASK#<taskId>` | `DIGEST` | the digest as JSON attributes |
//! | run history | `AUDIT#<stream>` | `RUN#<startMs, 13 digits>#<taskId>` | one per ingested task: previous run, trend (`open` per severity) |
//! | open episode | `EP#<stream>#<shard 00–15>` | `O#<hash, 16 hex>` | one per open finding (check + resource) of a stream: the finding as first seen, `firstSeen`, history; GSI `byResource`: `RESOURCE#<resourceKey>` / `<stream>#<check>` |
//! | resolved episode | `EP#<stream>#<shard>` | `R#<hash>` | the same, closed: `resolvedAt`, `lastSeen`; expires after the retention |
//! | stream head | `EP#<stream>` | `HEAD` | the last applied run, and the run holding the stream |
//! | member | `MEMBERS` | `<account>:<region>` | one per member account-region: last notification, last problem (the roll-up reads them) |
//! | reader lease | `MEMBER#<account>:<region>` | `READER` | the one invocation reading the member's findings (its ListAuditFindings quota) |
//! | roll-up | `ROLLUP` | `<ms, 13 digits>` | one per organization roll-up: its time and totals (the next counts new/resolved from it) |
//! | setup record | `CONFIG#<stackId>` | `STATE` | config-sync's last applied setup, owned audits and suppressions |
//! | drift record | `CONFIG#<stackId>` | `DRIFT#<ms>` | one per drift check that found differences |
//! | start claim | `CONFIG#START` | `<requestId>` | one on-demand audit per CloudFormation request |
//!
//! `<stream>` is the scheduled audit's name, or `~on-demand`. `<taskId>` and `<stream>` are
//! prefixed `<account>#<region>#` for every member but the hub's own account-region
//! ([`crate::member::Member::key_prefix`]): task ids are unique only within an account-region. Every item but open episodes and
//! stream heads carries `expiresAt` (epoch seconds, the table's TTL attribute): an open episode
//! lasts until a run of its stream no longer finds it.

pub mod episode_store;
mod member_store;
mod rollup_store;
mod setup_store;
mod task_store;

pub use episode_store::DynamoEpisodeStore;
pub use member_store::DynamoMemberStore;
pub use rollup_store::DynamoRollupStore;
pub use setup_store::DynamoSetupStore;
pub use task_store::DynamoTaskStore;

use super::classify;
use crate::ports::PortError;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::client::result::SdkError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Capacity units the stores consumed, as DynamoDB reports them (`ReturnConsumedCapacity`
/// TOTAL: the table and its indexes), summed over every call that asked.
#[derive(Debug, Default)]
pub struct CapacityMeter {
    write_milli: AtomicU64,
    read_milli: AtomicU64,
}

impl CapacityMeter {
    fn add(counter: &AtomicU64, c: Option<&ConsumedCapacity>) {
        if let Some(units) = c.and_then(|c| c.capacity_units) {
            counter.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
        }
    }

    /// Adds a write's consumed capacity.
    pub fn add_write(&self, c: Option<&ConsumedCapacity>) {
        Self::add(&self.write_milli, c);
    }

    /// Adds a batch write's consumed capacity.
    pub fn add_writes(&self, c: &[ConsumedCapacity]) {
        c.iter().for_each(|c| self.add_write(Some(c)));
    }

    /// Adds a read's consumed capacity.
    pub fn add_read(&self, c: Option<&ConsumedCapacity>) {
        Self::add(&self.read_milli, c);
    }

    /// Adds a batch read's consumed capacity.
    pub fn add_reads(&self, c: &[ConsumedCapacity]) {
        c.iter().for_each(|c| self.add_read(Some(c)));
    }

    /// Write units consumed so far.
    pub fn write_units(&self) -> f64 {
        self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Read units consumed so far.
    pub fn read_units(&self) -> f64 {
        self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Sends an UpdateItem asking for its consumed capacity, and counts it: `true` when it was
    /// applied, `false` when its condition failed.
    pub(super) async fn update(
        &self,
        req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> Result<bool, PortError> {
        self.applied("UpdateItem", req.return_consumed_capacity(ReturnConsumedCapacity::Total).send().await)
    }

    /// The same for a PutItem.
    pub(super) async fn put(
        &self,
        req: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    ) -> Result<bool, PortError> {
        self.applied("PutItem", req.return_consumed_capacity(ReturnConsumedCapacity::Total).send().await)
    }

    /// Counts a conditional write's capacity: `true` when applied, `false` when its condition
    /// failed, an error naming `op` otherwise.
    fn applied<O: WriteOutput, E, R>(&self, op: &str, sent: Result<O, SdkError<E, R>>) -> Result<bool, PortError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        match sent {
            Ok(out) => {
                self.add_write(out.consumed());
                Ok(true)
            }
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(classify(op, e)),
        }
    }

    /// A strongly consistent GetItem of `key` (`None`: no such item), its capacity counted.
    pub(super) async fn get(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table: &str,
        key: Item,
    ) -> Result<Option<Item>, PortError> {
        let out = client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        self.add_read(out.consumed_capacity());
        Ok(out.item)
    }
}

/// A write's output, which reports the capacity it consumed.
trait WriteOutput {
    fn consumed(&self) -> Option<&ConsumedCapacity>;
}

impl WriteOutput for aws_sdk_dynamodb::operation::update_item::UpdateItemOutput {
    fn consumed(&self) -> Option<&ConsumedCapacity> {
        self.consumed_capacity()
    }
}

impl WriteOutput for aws_sdk_dynamodb::operation::put_item::PutItemOutput {
    fn consumed(&self) -> Option<&ConsumedCapacity> {
        self.consumed_capacity()
    }
}

/// Who holds a lease item (`holder`, `holderUntil`; empty and `None` when free or missing), as
/// a condition that failed on it found it.
pub(super) fn lease_holder(item: &Item) -> (String, Option<i64>) {
    let holder = item.get("holder").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    let until = item.get("holderUntil").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
    (holder, until)
}

/// A DynamoDB item.
pub(super) type Item = HashMap<String, AttributeValue>;

/// Name of the GSI over resources.
pub const RESOURCE_INDEX: &str = "byResource";

/// Items asked for per Query page when walking many items (open episodes). DynamoDB stops a page at
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

/// Runs a batch call until nothing is left unprocessed: `call` sends what is pending and returns
/// what it got back and what DynamoDB left unprocessed; retried 10 times with exponential
/// backoff (AWS's advice for `UnprocessedKeys`/`UnprocessedItems`), then a transient error
/// naming `op`. Returns everything got back.
pub(super) async fn until_processed<T, R, Fut>(
    op: &str,
    mut pending: Vec<T>,
    mut call: impl FnMut(Vec<T>) -> Fut,
) -> Result<Vec<R>, PortError>
where
    Fut: std::future::Future<Output = Result<(Vec<R>, Vec<T>), PortError>>,
{
    let (mut got, mut attempt) = (Vec::new(), 0u32);
    while !pending.is_empty() {
        let (more, left) = call(pending).await?;
        got.extend(more);
        pending = left;
        attempt += 1;
        if !pending.is_empty() {
            if attempt > 10 {
                return Err(PortError::Transient(format!(
                    "{op}: {} still unprocessed after 10 retries",
                    pending.len()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(25 << attempt.min(6))).await;
        }
    }
    Ok(got)
}

/// One BatchGetItem of at most 100 keys (strongly consistent, only `projection` when given),
/// until every key is processed; capacity counted on `meter`.
pub(super) async fn batch_get_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
    projection: Option<&str>,
    meter: &CapacityMeter,
) -> Result<Vec<Item>, PortError> {
    use aws_sdk_dynamodb::types::KeysAndAttributes;
    until_processed("BatchGetItem", keys, |pending| {
        let ka = KeysAndAttributes::builder()
            .set_keys(Some(pending))
            .consistent_read(true)
            .set_projection_expression(projection.map(str::to_owned))
            .build()
            .map_err(|e| PortError::Permanent(e.to_string()));
        async move {
            let out = client
                .batch_get_item()
                .request_items(table, ka?)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify("BatchGetItem", e))?;
            meter.add_reads(out.consumed_capacity());
            let found = out.responses.and_then(|mut r| r.remove(table)).unwrap_or_default();
            Ok((found, out.unprocessed_keys.and_then(|mut m| m.remove(table)).map(|k| k.keys).unwrap_or_default()))
        }
    })
    .await
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
