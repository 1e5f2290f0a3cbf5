//! [`crate::ports::TaskStore`] over `aws-sdk-dynamodb`: task summaries, findings, digests and
//! run history (items described in the module above).

use super::{
    expires_in, finding_sk, from_item, is_condition_failed, key, n, put, run_sk, s, task_pk, to_attr, to_item, Item,
    QUERY_PAGE_LIMIT,
};
use crate::aws::classify;
use crate::digest::Digest;
use crate::finding::Finding;
use crate::ports::{Claim, Cursor, PortError, StoredKey, TaskStore};
use crate::summary::{CheckProgress, DigestState, IngestState, TaskOutline, TaskSummary};
use crate::vocabulary::Severity;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, Put, PutRequest, TransactWriteItem, WriteRequest};
use std::collections::HashMap;
use std::time::Duration;

/// The table.
#[derive(Clone, Debug)]
pub struct DynamoTaskStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention_days: u32,
}

impl DynamoTaskStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, retention_days: u32) -> Self {
        DynamoTaskStore { client, table, retention_days }
    }

    fn expires_at(&self) -> AttributeValue {
        expires_in(self.retention_days)
    }

    fn summary_item(&self, summary: &TaskSummary) -> Result<Item, PortError> {
        let mut item = to_item(summary)?;
        item.insert("pk".into(), s(task_pk(&summary.outline.task_id)));
        item.insert("sk".into(), s("SUMMARY"));
        item.insert("auditStream".into(), s(summary.outline.audit_stream()));
        item.insert("expiresAt".into(), self.expires_at());
        Ok(item)
    }

    fn key(task_id: &str, sk: &str) -> Item {
        key(task_pk(task_id), sk)
    }

    async fn get(&self, task_id: &str) -> Result<Option<TaskSummary>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(task_id, "SUMMARY")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// Writes up to 25 items, retrying unprocessed ones with backoff.
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), PortError> {
        let mut pending: Vec<WriteRequest> = items
            .into_iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(i)).build().expect("item set"))
                    .build()
            })
            .collect();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending.clone())
                .send()
                .await
                .map_err(|e| classify("BatchWriteItem", e))?;
            pending = out.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
            if pending.is_empty() {
                break;
            }
            attempt += 1;
            if attempt > 10 {
                return Err(PortError::Transient(format!(
                    "BatchWriteItem: {} items still unprocessed after 10 retries",
                    pending.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
        }
        Ok(())
    }
}

fn digest_str(d: DigestState) -> String {
    serde_json::to_value(d).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn ingest_str(i: IngestState) -> String {
    serde_json::to_value(i).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
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
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => return Ok(Claim::Acquired(mine)),
            Err(e) if is_condition_failed(&e) => {}
            Err(e) => return Err(classify("PutItem", e)),
        }
        // It exists: take it over if there is work left and no live lease.
        let upd = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&fresh.outline.task_id, "SUMMARY")))
            .update_expression("SET leaseOwner = :me, leaseUntil = :until ADD invocations :one")
            .condition_expression(
                "(ingest = :ingesting OR digest IN (:pending, :publishing)) AND (leaseUntil < :now OR leaseOwner = :me)",
            )
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(now_ms + lease_ms))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":ingesting", s(ingest_str(IngestState::Ingesting)))
            .expression_attribute_values(":pending", s(digest_str(DigestState::Pending)))
            .expression_attribute_values(":publishing", s(digest_str(DigestState::Publishing)))
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
                    && !matches!(stored.digest, DigestState::Pending | DigestState::Publishing);
                if done {
                    Ok(Claim::Done(stored))
                } else {
                    Ok(Claim::Busy { owner: stored.lease_owner.clone().unwrap_or_default(), until: stored.lease_until })
                }
            }
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

    async fn put_findings(&self, outline: &TaskOutline, findings: &[Finding]) -> Result<(), PortError> {
        let expires = self.expires_at();
        let stream = outline.audit_stream();
        let mut items = Vec::with_capacity(findings.len());
        for f in findings {
            let key = f.resource_key();
            let mut item = to_item(f)?;
            item.insert("pk".into(), s(task_pk(&outline.task_id)));
            item.insert("sk".into(), s(finding_sk(f.check_name.as_str(), &key)));
            item.insert("gsi1pk".into(), s(format!("RESOURCE#{key}")));
            item.insert(
                "gsi1sk".into(),
                s(format!("{:013}#{}#{}", outline.task_start_time, outline.task_id, f.check_name)),
            );
            item.insert("resourceKey".into(), s(key));
            item.insert("auditStream".into(), s(stream.clone()));
            item.insert("taskStartTime".into(), n(outline.task_start_time));
            item.insert("expiresAt".into(), expires.clone());
            items.push(item);
        }
        // BatchWriteItem rejects two puts of one key in a request: a page never repeats a
        // resource, but keep the last of any duplicate to be safe.
        let mut seen = std::collections::HashSet::new();
        items.reverse();
        items.retain(|i| seen.insert(i["sk"].as_s().cloned().unwrap_or_default()));
        items.reverse();
        let mut set = tokio::task::JoinSet::new();
        for chunk in items.chunks(25) {
            let this = self.clone();
            let chunk = chunk.to_vec();
            set.spawn(async move { this.batch_put(chunk).await });
        }
        let mut first_err = None;
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(e) => first_err = first_err.or(Some(PortError::Transient(format!("write task failed: {e}")))),
            }
        }
        first_err.map_or(Ok(()), Err)
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
            .set_key(Some(Self::key(task_id, "SUMMARY")))
            .update_expression("SET progress.#c = :p, leaseUntil = :until ADD pagesRead :n")
            .condition_expression("leaseOwner = :me")
            .expression_attribute_names("#c", check_name)
            .expression_attribute_values(":p", p)
            .expression_attribute_values(":until", n(lease_until))
            .expression_attribute_values(":n", n(pages))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => {
                Err(PortError::LeaseLost(format!("task {task_id}: another invocation took over")))
            }
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

    async fn complete(&self, summary: &TaskSummary, owner: &str) -> Result<(), PortError> {
        let o = &summary.outline;
        let mut history: Item = HashMap::new();
        history.insert("pk".into(), s(format!("AUDIT#{}", o.audit_stream())));
        history.insert("sk".into(), s(run_sk(o.task_start_time, &o.task_id)));
        history.insert("taskId".into(), s(&o.task_id));
        history.insert("taskStatus".into(), s(o.task_status.as_str()));
        history.insert("taskType".into(), s(o.task_type.as_str()));
        history.insert("taskStartTime".into(), n(o.task_start_time));
        history.insert("severityCounts".into(), to_attr(&summary.severity_counts)?);
        history.insert("expiresAt".into(), self.expires_at());
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
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
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
            .set_key(Some(Self::key(task_id, "SUMMARY")))
            .update_expression("SET digest = :publishing")
            .condition_expression("digest = :pending AND leaseOwner = :me")
            .expression_attribute_values(":publishing", s(digest_str(DigestState::Publishing)))
            .expression_attribute_values(":pending", s(digest_str(DigestState::Pending)))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match r {
            Ok(_) => Ok(None),
            Err(e) if is_condition_failed(&e) => {
                let stored = self.get(task_id).await?.ok_or_else(|| PortError::Transient("summary vanished".into()))?;
                if stored.lease_owner.as_deref() != Some(owner) {
                    return Err(PortError::LeaseLost(format!("task {task_id}: lease lost before the digest")));
                }
                Ok(Some(stored.digest))
            }
            Err(e) => Err(classify("UpdateItem", e)),
        }
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
            item.insert("pk".into(), s(task_pk(&outline.task_id)));
            item.insert("sk".into(), s("DIGEST"));
            item.insert("auditStream".into(), s(outline.audit_stream()));
            item.insert("expiresAt".into(), self.expires_at());
            put(&self.client, &self.table, item).await?;
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&outline.task_id, "SUMMARY")))
            .expression_attribute_values(":d", s(digest_str(state)));
        req = match message_id {
            Some(m) => {
                req.update_expression("SET digest = :d, digestMessageId = :m").expression_attribute_values(":m", s(m))
            }
            None => req.update_expression("SET digest = :d"),
        };
        req.send().await.map_err(|e| classify("UpdateItem", e))?;
        Ok(())
    }

    async fn release(&self, task_id: &str, owner: &str) -> Result<(), PortError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(task_id, "SUMMARY")))
            .update_expression("SET leaseUntil = :zero REMOVE leaseOwner")
            .condition_expression("leaseOwner = :me")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(classify("UpdateItem", e)),
        }
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
            .expression_attribute_values(":pk", s(format!("AUDIT#{stream}")))
            .expression_attribute_values(":bound", s(run_sk(before_ms, task_id)))
            .scan_index_forward(false)
            .limit(25)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("Query", e))?;
            for item in page.items() {
                let completed =
                    item.get("taskStatus").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("COMPLETED");
                let id = item.get("taskId").and_then(|v| v.as_s().ok());
                if let (true, Some(id)) = (completed, id) {
                    return self.get(id).await;
                }
            }
        }
        Ok(None)
    }

    async fn finding_keys(
        &self,
        task_id: &str,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<StoredKey>, Option<Cursor>), PortError> {
        let start = cursor.map(|c| HashMap::from([("pk".to_owned(), s(task_pk(task_id))), ("sk".to_owned(), s(c))]));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :f)")
            .expression_attribute_values(":pk", s(task_pk(task_id)))
            .expression_attribute_values(":f", s("FINDING#"))
            .projection_expression("sk, checkName, resourceKey, resourceType, #sev, isSuppressed")
            .expression_attribute_names("#sev", "severity")
            .consistent_read(true)
            .limit(QUERY_PAGE_LIMIT)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        let get = |i: &Item, k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let keys = out
            .items()
            .iter()
            .map(|i| StoredKey {
                check_name: get(i, "checkName"),
                resource_key: get(i, "resourceKey"),
                resource_type: get(i, "resourceType"),
                severity: Severity::parse(&get(i, "severity")),
                suppressed: i.get("isSuppressed").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
            })
            .collect();
        let next = out.last_evaluated_key().and_then(|k| k.get("sk")).and_then(|v| v.as_s().ok()).cloned();
        Ok((keys, next))
    }
}
