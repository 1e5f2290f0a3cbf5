//! [`crate::ports::EpisodeStore`] over `aws-sdk-dynamodb`: the finding lifecycle's items
//! (described in the module above). A steady-state run writes only what changed: a new episode
//! is one put, a resolution a put and a delete, a mute change one update, plus one seen record
//! (~2 KB) per page of 250 findings.

use super::{expires_in, from_item, is_condition_failed, key, n, s, task_pk, to_item, CapacityMeter, Item};
use crate::aws::classify;
use crate::finding::Finding;
use crate::lifecycle::{shard_of, OpenEpisode, EPISODE_SHARDS};
use crate::ports::{Cursor, Episode, EpisodeStore, PageChanges, PortError, StreamLock};
use crate::stream_head::{AppliedRun, StreamHead};
use crate::summary::TaskSummary;
use crate::vocabulary::Severity;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, ReturnConsumedCapacity, WriteRequest};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Keys read per BatchGetItem (its limit).
const BATCH_GET: usize = 100;
/// Requests per BatchWriteItem (its limit).
const BATCH_WRITE: usize = 25;

/// `EP#<stream>#<shard>`: the partition of a finding's episodes.
pub fn episode_pk(stream: &str, hash: u64) -> String {
    shard_pk(stream, shard_of(hash))
}

/// `EP#<stream>#<shard, 2 digits>`.
pub fn shard_pk(stream: &str, shard: u32) -> String {
    format!("EP#{stream}#{shard:02}")
}

/// `O#<hash>` (open) or `R#<hash>` (resolved), the hash in 16 hex digits.
pub fn episode_sk(open: bool, hash: u64) -> String {
    format!("{}#{hash:016x}", if open { "O" } else { "R" })
}

/// `EP#<stream>` / `HEAD`: the stream's last applied run and the run holding it.
pub fn head_key(stream: &str) -> Item {
    key(format!("EP#{stream}"), "HEAD")
}

fn hash_of_sk(sk: &str) -> Option<u64> {
    u64::from_str_radix(sk.get(2..)?, 16).ok()
}

/// An episode as stored: the finding as first seen, flattened, and the lifecycle fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpisodeItem {
    #[serde(flatten)]
    pub finding: Finding,
    pub resource_key: String,
    pub audit_stream: String,
    pub first_seen: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_resolved: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<(i64, i64)>,
    #[serde(default)]
    pub came_back: u32,
    #[serde(default)]
    pub muted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_changed_at: Option<i64>,
}

impl From<EpisodeItem> for Episode {
    fn from(i: EpisodeItem) -> Self {
        Episode {
            stream: i.audit_stream,
            finding: i.finding,
            resource_key: i.resource_key,
            first_seen: i.first_seen,
            last_seen: i.last_seen,
            resolved_at: i.resolved_at,
            history: i.history,
            came_back: i.came_back,
            suppressed: i.muted,
            muted_changed_at: i.muted_changed_at,
        }
    }
}

impl From<&Episode> for EpisodeItem {
    fn from(e: &Episode) -> Self {
        EpisodeItem {
            finding: e.finding.clone(),
            resource_key: e.resource_key.clone(),
            audit_stream: e.stream.clone(),
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            resolved_at: e.resolved_at,
            previous_resolved: e.previous_resolved(),
            history: e.history.clone(),
            came_back: e.came_back,
            muted: e.suppressed,
            muted_changed_at: e.muted_changed_at,
        }
    }
}

/// The stored form of an episode, with its keys and index attributes (`byResource`:
/// `RESOURCE#<resourceKey>` / `<stream>#<check>`); resolved ones expire `retention_days` after
/// their resolution, open ones never (they close when their stream runs without them).
/// `prefix` is the member's key prefix (empty for the hub's own account-region).
pub fn episode_item(e: &Episode, retention_days: u32, prefix: &str) -> Result<Item, PortError> {
    let open = e.resolved_at.is_none();
    let mut item = to_item(&EpisodeItem::from(e))?;
    let hash = e.hash();
    let stream = format!("{prefix}{}", e.stream);
    item.insert("pk".into(), s(episode_pk(&stream, hash)));
    item.insert("sk".into(), s(episode_sk(open, hash)));
    item.insert("gsi1pk".into(), s(format!("RESOURCE#{}", e.resource_key)));
    item.insert("gsi1sk".into(), s(format!("{stream}#{}", e.finding.check_name)));
    if let Some(r) = e.resolved_at {
        item.insert("expiresAt".into(), n(r / 1000 + retention_days as i64 * 86_400));
    }
    Ok(item)
}

/// The episodes of a stored item (any item of the table: `None` when not an episode).
pub fn decode_episode(item: Item) -> Result<Option<Episode>, PortError> {
    let is_episode = item.get("pk").and_then(|v| v.as_s().ok()).is_some_and(|p| p.starts_with("EP#"))
        && item.get("sk").and_then(|v| v.as_s().ok()).is_some_and(|s| s != "HEAD");
    if !is_episode {
        return Ok(None);
    }
    Ok(Some(from_item::<EpisodeItem>(item)?.into()))
}

/// The table's episodes.
#[derive(Clone, Debug)]
pub struct DynamoEpisodeStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention_days: u32,
    meter: Arc<CapacityMeter>,
    /// The member's key prefix (see [`crate::member::Member::key_prefix`]): empty for the hub's own.
    prefix: String,
}

impl DynamoEpisodeStore {
    /// Episodes in `table`; seen records expire after `retention_days`; capacity is counted on `meter`.
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: String,
        retention_days: u32,
        meter: Arc<CapacityMeter>,
    ) -> Self {
        DynamoEpisodeStore { client, table, retention_days, meter, prefix: String::new() }
    }

    /// The same table, for the member whose keys start with `prefix` (same client and meter).
    pub fn for_member(&self, prefix: String) -> Self {
        DynamoEpisodeStore { prefix, ..self.clone() }
    }

    /// A stream or task id as this member's keys spell it.
    fn scoped(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Sends `items` in requests of `size`, every request at once (`send` sends one), and
    /// gathers what they got back; a request task that died is a transient error naming `op`.
    async fn all_at_once<T, R, Fut>(
        &self,
        op: &str,
        items: Vec<T>,
        size: usize,
        send: impl Fn(Self, Vec<T>) -> Fut,
    ) -> Result<Vec<R>, PortError>
    where
        T: Clone,
        R: Send + 'static,
        Fut: std::future::Future<Output = Result<Vec<R>, PortError>> + Send + 'static,
    {
        let mut requests = tokio::task::JoinSet::new();
        for chunk in items.chunks(size) {
            requests.spawn(send(self.clone(), chunk.to_vec()));
        }
        let mut got = Vec::new();
        while let Some(r) = requests.join_next().await {
            got.extend(r.map_err(|e| PortError::Transient(format!("{op} task failed: {e}")))??);
        }
        Ok(got)
    }

    /// Gets items by key (BatchGetItem, strongly consistent, unprocessed keys retried), the
    /// requests of 100 keys concurrently.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, PortError> {
        self.all_at_once("BatchGetItem", keys, BATCH_GET, |this, chunk| async move {
            super::batch_get_items(&this.client, &this.table, chunk, None, &this.meter).await
        })
        .await
    }

    /// Writes (puts and deletes) in BatchWriteItem requests of 25, all at once (a page's 11 at
    /// most: one after the other, a check's writer is bound by DynamoDB's latency, not its
    /// throughput), unprocessed ones retried. The keys are distinct: no order is needed.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), PortError> {
        self.all_at_once("BatchWriteItem", requests, BATCH_WRITE, |this, chunk| async move {
            this.batch_write_one(chunk).await.map(|()| Vec::<()>::new())
        })
        .await?;
        Ok(())
    }

    /// One BatchWriteItem of at most 25 requests, until every request is processed.
    async fn batch_write_one(&self, requests: Vec<WriteRequest>) -> Result<(), PortError> {
        super::until_processed("BatchWriteItem", requests, |pending| async move {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify("BatchWriteItem", e))?;
            self.meter.add_writes(out.consumed_capacity());
            Ok((Vec::<()>::new(), out.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default()))
        })
        .await?;
        Ok(())
    }

    async fn episodes(&self, stream: &str, open: bool, hashes: &[u64]) -> Result<Vec<Episode>, PortError> {
        let keys = hashes.iter().map(|h| key(episode_pk(stream, *h), &episode_sk(open, *h))).collect();
        self.batch_get(keys).await?.into_iter().filter_map(|i| decode_episode(i).transpose()).collect()
    }

    /// Every episode of a stream (open and resolved), shard by shard: what the history CLI and
    /// the per-task view read. `visit` sees each once.
    pub async fn each_episode(&self, stream: &str, mut visit: impl FnMut(Episode)) -> Result<(), PortError> {
        let stream = &self.scoped(stream);
        for shard in 0..EPISODE_SHARDS {
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(shard_pk(stream, shard)))
                .limit(super::QUERY_PAGE_LIMIT)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("Query", e))?;
                self.meter.add_read(page.consumed_capacity());
                for item in page.items.unwrap_or_default() {
                    if let Some(e) = decode_episode(item)? {
                        visit(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// The findings of a task, rebuilt from its stream's episodes (the per-task view: no
    /// per-task copy is stored): the episodes of the checks it completed and applied that
    /// were open at its start — what ListAuditFindings returns for it. Nothing for a task that
    /// applied no check (not COMPLETED, or late for every check: see `late_checks`). Reads the
    /// stream's every episode.
    pub async fn run_findings(&self, summary: &TaskSummary) -> Result<Vec<Episode>, PortError> {
        let checks = summary.applied_checks();
        let (stream, run_start) = (summary.outline.audit_stream(), summary.outline.task_start_time);
        let mut out = Vec::new();
        if checks.is_empty() {
            return Ok(out);
        }
        self.each_episode(&stream, |e| {
            if checks.iter().any(|c| c == e.finding.check_name.as_str()) && e.covers(run_start) {
                out.push(e);
            }
        })
        .await?;
        Ok(out)
    }

    /// Whether an item of the `byResource` index is this member's: its `gsi1sk` is
    /// `<prefix><stream>#<check>`, and the hub's own (empty prefix) have no member prefix (their
    /// stream names hold no `#`, so theirs is the only `#`).
    fn is_mine(&self, item: &Item) -> bool {
        let sk = item.get("gsi1sk").and_then(|v| v.as_s().ok()).map_or("", String::as_str);
        match self.prefix.is_empty() {
            true => sk.matches('#').count() == 1,
            false => sk.starts_with(&self.prefix),
        }
    }

    /// Every episode a resource ever had, in every stream and check of this member (the
    /// `byResource` index).
    pub async fn resource_history(&self, resource_key: &str) -> Result<Vec<Episode>, PortError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(super::RESOURCE_INDEX)
            .key_condition_expression("gsi1pk = :r")
            .expression_attribute_values(":r", s(format!("RESOURCE#{resource_key}")))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("Query", e))?;
            self.meter.add_read(page.consumed_capacity());
            for item in page.items.unwrap_or_default() {
                if self.is_mine(&item) {
                    out.extend(decode_episode(item)?);
                }
            }
        }
        Ok(out)
    }

    /// Every episode of this member whose resource key starts with one of `prefixes`: a Scan of
    /// the whole `byResource` index (a partition key cannot be matched by prefix), for keys a
    /// person typed only the start of. `visited` is told how many index items were read so far.
    pub async fn resources_starting_with(
        &self,
        prefixes: &[String],
        mut visited: impl FnMut(usize),
    ) -> Result<Vec<Episode>, PortError> {
        if prefixes.is_empty() {
            return Ok(Vec::new());
        }
        let filter: Vec<String> = (0..prefixes.len()).map(|i| format!("begins_with(gsi1pk, :p{i})")).collect();
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .index_name(super::RESOURCE_INDEX)
            .filter_expression(filter.join(" OR "))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for (i, p) in prefixes.iter().enumerate() {
            scan = scan.expression_attribute_values(format!(":p{i}"), s(format!("RESOURCE#{p}")));
        }
        let mut pages = scan.into_paginator().send();
        let (mut out, mut read) = (Vec::new(), 0usize);
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("Scan", e))?;
            self.meter.add_read(page.consumed_capacity());
            read += page.scanned_count().max(0) as usize;
            visited(read);
            for item in page.items.unwrap_or_default() {
                if self.is_mine(&item) {
                    out.extend(decode_episode(item)?);
                }
            }
        }
        Ok(out)
    }

    /// An UpdateItem of the head of `stream` (already scoped to the member).
    fn head_update(&self, stream: &str) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).set_key(Some(head_key(stream)))
    }

    /// The stream's head: its latest applied run and each check's.
    pub async fn head(&self, stream: &str) -> Result<StreamHead, PortError> {
        let stream = &self.scoped(stream);
        let item = self.meter.get(&self.client, &self.table, head_key(stream)).await?;
        Ok(item.as_ref().map(stream_head).unwrap_or_default())
    }
}

fn last_run(item: &Item) -> Option<(i64, String)> {
    let start = item.get("lastRunStart")?.as_n().ok()?.parse().ok()?;
    let task = item.get("lastRunTask")?.as_s().ok()?.clone();
    Some((start, task))
}

/// The head attribute recording the last run that applied `check`: `checkRun.<check>`, a map
/// `{start, task}` (one top-level attribute per check, so one update sets any of them).
const CHECK_RUN: &str = "checkRun.";

/// The stream head as a run finds it: the latest run and each check's last run.
fn stream_head(item: &Item) -> StreamHead {
    let check_runs = item
        .iter()
        .filter_map(|(name, v)| {
            let check = name.strip_prefix(CHECK_RUN)?;
            let m = v.as_m().ok()?;
            let start = m.get("start")?.as_n().ok()?.parse().ok()?;
            let task_id = m.get("task")?.as_s().ok()?.clone();
            Some((check.to_owned(), AppliedRun { start, task_id }))
        })
        .collect();
    StreamHead { last_run: last_run(item).map(|(start, task_id)| AppliedRun { start, task_id }), check_runs }
}

fn put_request(item: Item) -> WriteRequest {
    WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().expect("item set")).build()
}

fn delete_request(k: Item) -> WriteRequest {
    WriteRequest::builder().delete_request(DeleteRequest::builder().set_key(Some(k)).build().expect("key set")).build()
}

fn open_episode(item: &Item) -> Option<OpenEpisode> {
    let get_s = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
    let get_n = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    Some(OpenEpisode {
        hash: hash_of_sk(get_s("sk")?)?,
        check_name: get_s("checkName")?.clone(),
        severity: Severity::parse(get_s("severity").map_or("", |s| s.as_str())),
        first_seen: get_n("firstSeen")?,
        previous_resolved: get_n("previousResolved"),
        suppressed: item.get("muted").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        muted_changed_at: get_n("mutedChangedAt"),
    })
}

/// The seen record's hashes: 8 bytes each, little-endian.
fn pack_hashes(hashes: &[u64]) -> Blob {
    Blob::new(hashes.iter().flat_map(|h| h.to_le_bytes()).collect::<Vec<u8>>())
}

fn unpack_hashes(b: &[u8]) -> impl Iterator<Item = u64> + '_ {
    b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
}

impl EpisodeStore for DynamoEpisodeStore {
    async fn open_page(
        &self,
        stream: &str,
        shard: u32,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<OpenEpisode>, Option<Cursor>), PortError> {
        let stream = &self.scoped(stream);
        let pk = shard_pk(stream, shard);
        let start = cursor.map(|c| HashMap::from([("pk".to_owned(), s(&pk)), ("sk".to_owned(), s(c))]));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :o)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":o", s("O#"))
            .projection_expression("sk, checkName, #sev, firstSeen, previousResolved, muted, mutedChangedAt")
            .expression_attribute_names("#sev", "severity")
            .consistent_read(true)
            .limit(super::QUERY_PAGE_LIMIT)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        self.meter.add_read(out.consumed_capacity());
        let open = out.items().iter().map(|i| {
            open_episode(i)
                .ok_or_else(|| PortError::Permanent(format!("open episode item {pk} {:?} lacks a field", i.get("sk"))))
        });
        let open = open.collect::<Result<Vec<_>, _>>()?;
        let next = out.last_evaluated_key().and_then(|k| k.get("sk")).and_then(|v| v.as_s().ok()).cloned();
        Ok((open, next))
    }

    async fn seen_page(&self, task_id: &str, cursor: Option<Cursor>) -> Result<(Vec<u64>, Option<Cursor>), PortError> {
        let pk = task_pk(&self.scoped(task_id));
        let start = cursor.map(|c| HashMap::from([("pk".to_owned(), s(&pk)), ("sk".to_owned(), s(c))]));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :seen)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":seen", s("SEEN#"))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        self.meter.add_read(out.consumed_capacity());
        let mut hashes = Vec::new();
        for item in out.items() {
            if let Some(AttributeValue::B(b)) = item.get("hashes") {
                hashes.extend(unpack_hashes(b.as_ref()));
            }
        }
        let next = out.last_evaluated_key().and_then(|k| k.get("sk")).and_then(|v| v.as_s().ok()).cloned();
        Ok((hashes, next))
    }

    async fn resolved_episodes(&self, stream: &str, hashes: &[u64]) -> Result<Vec<Episode>, PortError> {
        let stream = &self.scoped(stream);
        self.episodes(stream, false, hashes).await
    }

    async fn open_episodes(&self, stream: &str, hashes: &[u64]) -> Result<Vec<Episode>, PortError> {
        let stream = &self.scoped(stream);
        self.episodes(stream, true, hashes).await
    }

    async fn record_page(
        &self,
        stream: &str,
        task_id: &str,
        run_start: i64,
        changes: &PageChanges,
    ) -> Result<(), PortError> {
        let stream = &self.scoped(stream);
        let mut requests = Vec::new();
        for e in &changes.opened {
            requests.push(put_request(episode_item(e, self.retention_days, &self.prefix)?));
            if e.came_back > 0 {
                requests.push(delete_request(key(episode_pk(stream, e.hash()), &episode_sk(false, e.hash()))));
            }
        }
        if !changes.seen.is_empty() {
            let mut seen =
                key(task_pk(&self.scoped(task_id)), &format!("SEEN#{}#{:06}", changes.check_name, changes.page));
            seen.insert("hashes".into(), AttributeValue::B(pack_hashes(&changes.seen)));
            seen.insert("expiresAt".into(), expires_in(self.retention_days));
            requests.push(put_request(seen));
        }
        self.batch_write(requests).await?;
        for (hash, muted) in &changes.muted {
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(episode_pk(stream, *hash), &episode_sk(true, *hash))))
                .update_expression("SET muted = :m, mutedChangedAt = :t")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":m", AttributeValue::Bool(*muted))
                .expression_attribute_values(":t", n(run_start));
            // A failed condition: closed meanwhile (cannot happen while the run holds the
            // stream), nothing to mute.
            self.meter.update(r).await?;
        }
        Ok(())
    }

    async fn resolve(
        &self,
        stream: &str,
        run_start: i64,
        last_seen: Option<i64>,
        hashes: &[u64],
    ) -> Result<(), PortError> {
        let stream = &self.scoped(stream);
        for chunk in hashes.chunks(BATCH_GET) {
            let open = self.episodes(stream, true, chunk).await?;
            let mut requests = Vec::with_capacity(open.len() * 2);
            for mut e in open {
                let hash = e.hash();
                e.resolved_at = Some(run_start);
                e.last_seen = last_seen.or(Some(e.first_seen));
                requests.push(put_request(episode_item(&e, self.retention_days, &self.prefix)?));
                requests.push(delete_request(key(episode_pk(stream, hash), &episode_sk(true, hash))));
            }
            self.batch_write(requests).await?;
        }
        Ok(())
    }

    async fn lock_stream(
        &self,
        stream: &str,
        task_id: &str,
        run_start: i64,
        now_ms: i64,
        until: i64,
    ) -> Result<StreamLock, PortError> {
        let stream = &self.scoped(stream);
        // Which of the run's checks are late is decided from the head while holding the stream
        // (only the holder writes the per-check runs): lateness is per check, not per stream.
        let r = self
            .head_update(stream)
            .update_expression("SET holder = :me, holderStart = :start, holderUntil = :until")
            .condition_expression("attribute_not_exists(holder) OR holder = :me OR holderUntil < :now")
            .expression_attribute_values(":me", s(task_id))
            .expression_attribute_values(":start", n(run_start))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match r {
            Ok(out) => {
                self.meter.add_write(out.consumed_capacity());
                Ok(StreamLock::Acquired { head: out.attributes.as_ref().map(stream_head).unwrap_or_default() })
            }
            Err(e) if is_condition_failed(&e) => {
                let item = self.meter.get(&self.client, &self.table, head_key(stream)).await?.unwrap_or_default();
                let (holder, until) = super::lease_holder(&item);
                Ok(StreamLock::Busy { holder, until: until.unwrap_or(0) })
            }
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

    async fn unlock_stream(
        &self,
        stream: &str,
        task_id: &str,
        run_start: i64,
        checks: &[String],
        latest: bool,
    ) -> Result<(), PortError> {
        let stream = &self.scoped(stream);
        let mut sets: Vec<String> = Vec::new();
        let mut r = self
            .head_update(stream)
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(task_id));
        if !checks.is_empty() {
            let run = HashMap::from([("start".to_owned(), n(run_start)), ("task".to_owned(), s(task_id))]);
            r = r.expression_attribute_values(":run", AttributeValue::M(run));
        }
        for (i, check) in checks.iter().enumerate() {
            sets.push(format!("#c{i} = :run"));
            r = r.expression_attribute_names(format!("#c{i}"), format!("{CHECK_RUN}{check}"));
        }
        if latest {
            sets.push("lastRunStart = :start, lastRunTask = :me".into());
            r = r.expression_attribute_values(":start", n(run_start));
        }
        let set = if sets.is_empty() { String::new() } else { format!("SET {} ", sets.join(", ")) };
        let r = r.update_expression(format!("{set}REMOVE holder, holderStart, holderUntil"));
        // A failed condition: already let go (a retry after the unlock went through).
        self.meter.update(r).await?;
        Ok(())
    }

    async fn release_stream(&self, stream: &str, task_id: &str) -> Result<(), PortError> {
        let stream = &self.scoped(stream);
        let r = self
            .head_update(stream)
            .update_expression("REMOVE holder, holderStart, holderUntil")
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(task_id));
        // A failed condition: not held by this run (any more).
        self.meter.update(r).await?;
        Ok(())
    }
}
