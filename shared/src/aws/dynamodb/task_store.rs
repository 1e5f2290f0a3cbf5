//! [`crate::ports::TaskStore`] over `aws-sdk-dynamodb`: task summaries, findings, digests and
//! run history (items described in the module above).

use super::{
    expires_in, from_item, is_condition_failed, key, n, run_sk, s, task_pk, to_attr, to_item, CapacityMeter, Item,
};
use crate::aws::classify;
use crate::digest::Digest;
use crate::ports::{Claim, PortError, RunRecord, TaskStore};
use crate::summary::{CheckProgress, DigestState, IngestState, LifecycleState, TaskOutline, TaskSummary};
use crate::vocabulary::TaskStatus;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The table.
#[derive(Clone, Debug)]
pub struct DynamoTaskStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention_days: u32,
    meter: Arc<CapacityMeter>,
    /// The member's key prefix (see [`crate::member::Member::key_prefix`]): empty for the hub's own.
    prefix: String,
}

impl DynamoTaskStore {
    /// The task items of `table`, kept `retention_days`, of the hub's own account-region.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, retention_days: u32) -> Self {
        DynamoTaskStore { client, table, retention_days, meter: Arc::default(), prefix: String::new() }
    }

    /// The same table, for the member whose keys start with `prefix` (same client and meter).
    pub fn for_member(&self, prefix: String) -> Self {
        DynamoTaskStore { prefix, ..self.clone() }
    }

    fn task_pk(&self, task_id: &str) -> String {
        task_pk(&format!("{}{task_id}", self.prefix))
    }

    fn stream_pk(&self, stream: &str) -> String {
        format!("AUDIT#{}{stream}", self.prefix)
    }

    /// The meter this store reports consumed capacity to (share it with the episode store).
    pub fn meter(&self) -> Arc<CapacityMeter> {
        self.meter.clone()
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn expires_at(&self) -> AttributeValue {
        expires_in(self.retention_days)
    }

    fn summary_item(&self, summary: &TaskSummary) -> Result<Item, PortError> {
        let mut item = to_item(summary)?;
        item.insert("pk".into(), s(self.task_pk(&summary.outline.task_id)));
        item.insert("sk".into(), s("SUMMARY"));
        item.insert("auditStream".into(), s(summary.outline.audit_stream()));
        item.insert("expiresAt".into(), self.expires_at());
        Ok(item)
    }

    fn key(&self, task_id: &str, sk: &str) -> Item {
        key(self.task_pk(task_id), sk)
    }

    async fn get(&self, task_id: &str) -> Result<Option<TaskSummary>, PortError> {
        self.meter.get(&self.client, &self.table, self.key(task_id, "SUMMARY")).await?.map(from_item).transpose()
    }
}

fn digest_str(d: DigestState) -> String {
    serde_json::to_value(d).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn ingest_str(i: IngestState) -> String {
    serde_json::to_value(i).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn lifecycle_str(l: LifecycleState) -> String {
    serde_json::to_value(l).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

impl TaskStore for DynamoTaskStore {
    async fn claim(&self, fresh: &TaskSummary, owner: &str, now_ms: i64, lease_ms: i64) -> Result<Claim, PortError> {
        let mut mine = fresh.clone();
        mine.lease_owner = Some(owner.to_owned());
        mine.lease_until = now_ms + lease_ms;
        mine.invocations = 1;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.summary_item(&mine)?))
            .condition_expression("attribute_not_exists(pk)");
        if self.meter.put(put).await? {
            return Ok(Claim::Acquired(mine));
        }
        // It exists: take it over if there is work left and no live lease.
        let upd = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(&fresh.outline.task_id, "SUMMARY")))
            .update_expression("SET leaseOwner = :me, leaseUntil = :until ADD invocations :one")
            .condition_expression(
                "(ingest = :ingesting OR digest IN (:pending, :publishing) OR lifecycle = :lpending) \
                 AND (leaseUntil < :now OR leaseOwner = :me)",
            )
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(now_ms + lease_ms))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":ingesting", s(ingest_str(IngestState::Ingesting)))
            .expression_attribute_values(":pending", s(digest_str(DigestState::Pending)))
            .expression_attribute_values(":publishing", s(digest_str(DigestState::Publishing)))
            .expression_attribute_values(":lpending", s(lifecycle_str(LifecycleState::Pending)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match upd {
            Ok(out) => Ok(Claim::Acquired(from_item(out.attributes.unwrap_or_default())?)),
            Err(e) if is_condition_failed(&e) => {
                let stored = self
                    .get(&fresh.outline.task_id)
                    .await?
                    .ok_or_else(|| PortError::Transient("summary vanished while claiming".into()))?;
                let done = stored.ingest == IngestState::Complete
                    && !matches!(stored.digest, DigestState::Pending | DigestState::Publishing)
                    && stored.lifecycle != LifecycleState::Pending;
                if done {
                    Ok(Claim::Done(stored))
                } else {
                    Ok(Claim::Busy { owner: stored.lease_owner.clone().unwrap_or_default(), until: stored.lease_until })
                }
            }
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

    async fn checkpoint(
        &self,
        task_id: &str,
        owner: &str,
        check_name: &str,
        progress: &CheckProgress,
        pages: i64,
        lease_until: i64,
    ) -> Result<(), PortError> {
        let p = serde_dynamo::to_attribute_value(progress).map_err(|e| PortError::Permanent(e.to_string()))?;
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(task_id, "SUMMARY")))
            .update_expression("SET progress.#c = :p, leaseUntil = :until ADD pagesRead :n")
            .condition_expression("leaseOwner = :me")
            .expression_attribute_names("#c", check_name)
            .expression_attribute_values(":p", p)
            .expression_attribute_values(":until", n(lease_until))
            .expression_attribute_values(":n", n(pages))
            .expression_attribute_values(":me", s(owner));
        if self.meter.update(r).await? {
            Ok(())
        } else {
            Err(PortError::LeaseLost(format!("task {task_id}: another invocation took over")))
        }
    }

    async fn complete(&self, summary: &TaskSummary, owner: &str) -> Result<(), PortError> {
        let o = &summary.outline;
        let mut history: Item = HashMap::new();
        history.insert("pk".into(), s(self.stream_pk(&o.audit_stream())));
        history.insert("sk".into(), s(run_sk(o.task_start_time, &o.task_id)));
        history.insert("taskId".into(), s(&o.task_id));
        history.insert("taskStatus".into(), s(o.task_status.as_str()));
        history.insert("taskType".into(), s(o.task_type.as_str()));
        history.insert("taskStartTime".into(), n(o.task_start_time));
        history.insert("severityCounts".into(), to_attr(&summary.severity_counts)?);
        history.insert("open".into(), to_attr(&summary.open_by_severity())?);
        history.insert("expiresAt".into(), self.expires_at());
        if summary.nothing_read() {
            // Not a run of the history: never the previous run, no point of the trend.
            history.insert("notRead".into(), AttributeValue::Bool(true));
        }
        let put_summary = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.summary_item(summary)?))
            .condition_expression("leaseOwner = :me")
            .expression_attribute_values(":me", s(owner))
            .build()
            .map_err(|e| PortError::Permanent(e.to_string()))?;
        let put_history = Put::builder()
            .table_name(&self.table)
            .set_item(Some(history))
            .build()
            .map_err(|e| PortError::Permanent(e.to_string()))?;
        let r = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_summary).build())
            .transact_items(TransactWriteItem::builder().put(put_history).build())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match r {
            Ok(out) => {
                self.meter.add_writes(out.consumed_capacity());
                Ok(())
            }
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("TransactionCanceledException") => {
                Err(PortError::LeaseLost(format!("task {}: lease lost before completing", o.task_id)))
            }
            Err(e) => Err(classify("TransactWriteItems", e)),
        }
    }

    async fn claim_digest(&self, task_id: &str, owner: &str) -> Result<Option<DigestState>, PortError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(task_id, "SUMMARY")))
            .update_expression("SET digest = :publishing")
            .condition_expression("digest = :pending AND leaseOwner = :me")
            .expression_attribute_values(":publishing", s(digest_str(DigestState::Publishing)))
            .expression_attribute_values(":pending", s(digest_str(DigestState::Pending)))
            .expression_attribute_values(":me", s(owner));
        if self.meter.update(r).await? {
            return Ok(None);
        }
        let stored = self.get(task_id).await?.ok_or_else(|| PortError::Transient("summary vanished".into()))?;
        if stored.lease_owner.as_deref() != Some(owner) {
            return Err(PortError::LeaseLost(format!("task {task_id}: lease lost before the digest")));
        }
        Ok(Some(stored.digest))
    }

    async fn record_digest(
        &self,
        outline: &TaskOutline,
        digest: Option<&Digest>,
        state: DigestState,
        message_id: Option<&str>,
    ) -> Result<(), PortError> {
        if let Some(d) = digest {
            let mut item = to_item(d)?;
            item.insert("pk".into(), s(self.task_pk(&outline.task_id)));
            item.insert("sk".into(), s("DIGEST"));
            item.insert("auditStream".into(), s(outline.audit_stream()));
            item.insert("expiresAt".into(), self.expires_at());
            self.meter.put(self.client.put_item().table_name(&self.table).set_item(Some(item))).await?;
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(&outline.task_id, "SUMMARY")))
            .expression_attribute_values(":d", s(digest_str(state)));
        req = match message_id {
            Some(m) => {
                req.update_expression("SET digest = :d, digestMessageId = :m").expression_attribute_values(":m", s(m))
            }
            None => req.update_expression("SET digest = :d"),
        };
        self.meter.update(req).await?;
        Ok(())
    }

    async fn release(&self, task_id: &str, owner: &str) -> Result<(), PortError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(task_id, "SUMMARY")))
            .update_expression("SET leaseUntil = :zero REMOVE leaseOwner")
            .condition_expression("leaseOwner = :me")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":me", s(owner));
        // A failed condition: another invocation holds it now, or it was given back already.
        self.meter.update(r).await?;
        Ok(())
    }

    async fn load(&self, task_id: &str) -> Result<Option<TaskSummary>, PortError> {
        self.get(task_id).await
    }

    async fn previous_run(
        &self,
        stream: &str,
        before_ms: i64,
        task_id: &str,
    ) -> Result<Option<TaskSummary>, PortError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk < :bound")
            .expression_attribute_values(":pk", s(self.stream_pk(stream)))
            .expression_attribute_values(":bound", s(run_sk(before_ms, task_id)))
            .scan_index_forward(false)
            .limit(25)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("Query", e))?;
            for item in page.items() {
                let completed = item.get("taskStatus").and_then(|v| v.as_s().ok()).map(String::as_str)
                    == Some("COMPLETED")
                    && !not_read(item);
                let id = item.get("taskId").and_then(|v| v.as_s().ok());
                if let (true, Some(id)) = (completed, id) {
                    return self.get(id).await;
                }
            }
        }
        Ok(None)
    }

    async fn recent_runs(&self, stream: &str, before_ms: i64, count: usize) -> Result<Vec<RunRecord>, PortError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk < :bound")
            .expression_attribute_values(":pk", s(self.stream_pk(stream)))
            .expression_attribute_values(":bound", s(run_sk(before_ms, "")))
            .scan_index_forward(false)
            .limit(count.clamp(1, 1000) as i32)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        self.meter.add_read(out.consumed_capacity());
        Ok(out.items().iter().filter_map(run_record).collect())
    }

    async fn set_lifecycle(&self, task_id: &str, state: LifecycleState) -> Result<(), PortError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(task_id, "SUMMARY")))
            .update_expression("SET lifecycle = :l")
            .expression_attribute_values(":l", s(lifecycle_str(state)));
        self.meter.update(req).await?;
        Ok(())
    }
}

/// Whether a run history item is of a run none of whose findings could be read (not a run of
/// the history: never a previous run, a point of the trend or a member's latest run).
pub(crate) fn not_read(item: &Item) -> bool {
    item.get("notRead").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
}

/// A run history item, read back.
pub fn run_record(item: &Item) -> Option<RunRecord> {
    let get_s = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
    let open = item
        .get("open")
        .and_then(|v| v.as_m().ok())
        .map(|m| {
            m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?))).collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    Some(RunRecord {
        task_id: get_s("taskId")?.clone(),
        task_status: TaskStatus::parse(get_s("taskStatus")?),
        task_start_time: item.get("taskStartTime")?.as_n().ok()?.parse().ok()?,
        open,
        not_read: not_read(item),
    })
}
