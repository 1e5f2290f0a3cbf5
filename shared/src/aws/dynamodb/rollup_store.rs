//! [`crate::ports::RollupStore`] over `aws-sdk-dynamodb`, in the findings table: a stream's
//! runs from its run history (`AUDIT#<prefix><stream>` / `RUN#…`, newest first) with the counts
//! of their digests (`TASK#<prefix><taskId>` / `DIGEST`, read by key, only the counts
//! projected), and the roll-ups (`ROLLUP` / `<ms, 13 digits>`, their totals; they expire after
//! the retention).

use super::{batch_get_items, expires_in, key, n, s, task_pk, to_attr, CapacityMeter, Item};
use crate::aws::classify;
use crate::member::Member;
use crate::ports::{PortError, RollupStore};
use crate::rollup::{Counts, Rollup, RunDigest};
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use std::sync::Arc;

const ROLLUP_PK: &str = "ROLLUP";

/// The table, as the roll-up reads it.
#[derive(Clone, Debug)]
pub struct DynamoRollupStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention_days: u32,
    /// The hub's own account-region (its keys are unprefixed).
    home: Member,
    meter: Arc<CapacityMeter>,
}

impl DynamoRollupStore {
    /// The roll-up's view of `table` in a hub whose own account-region is `home`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, retention_days: u32, home: Member) -> Self {
        DynamoRollupStore { client, table, retention_days, home, meter: Arc::default() }
    }

    /// The capacity this store consumed.
    pub fn meter(&self) -> Arc<CapacityMeter> {
        self.meter.clone()
    }
}

fn number(item: &Item, k: &str) -> Option<i64> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn counts(item: Option<&aws_sdk_dynamodb::types::AttributeValue>) -> Counts {
    let Some(m) = item.and_then(|v| v.as_m().ok()) else { return Counts::new() };
    m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?))).collect()
}

/// A digest item's `severities` (open/new/resolved per severity) and `lifecycle.overdue`.
fn digest_counts(item: &Item) -> (Counts, Counts, Counts) {
    let (mut new, mut resolved) = (Counts::new(), Counts::new());
    if let Some(lines) = item.get("severities").and_then(|v| v.as_l().ok()) {
        for line in lines.iter().filter_map(|l| l.as_m().ok()) {
            let Some(sev) = line.get("severity").and_then(|v| v.as_s().ok()) else { continue };
            let get =
                |k: &str| line.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            if get("new") > 0 {
                new.insert(sev.clone(), get("new"));
            }
            if get("resolved") > 0 {
                resolved.insert(sev.clone(), get("resolved"));
            }
        }
    }
    let overdue = counts(item.get("lifecycle").and_then(|v| v.as_m().ok()).and_then(|m| m.get("overdue")));
    (new, resolved, overdue)
}

impl RollupStore for DynamoRollupStore {
    async fn stream_runs(
        &self,
        member: &Member,
        stream: &str,
        since: i64,
        limit: usize,
    ) -> Result<Vec<RunDigest>, PortError> {
        let prefix = member.key_prefix(&self.home);
        let mut runs = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :run)")
            .expression_attribute_values(":pk", s(format!("AUDIT#{prefix}{stream}")))
            .expression_attribute_values(":run", s("RUN#"))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100) as i32)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .into_paginator()
            .send();
        'pages: while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("Query", e))?;
            self.meter.add_read(page.consumed_capacity());
            for item in page.items().iter().filter(|i| !super::task_store::not_read(i)) {
                let (Some(task_id), Some(start)) =
                    (item.get("taskId").and_then(|v| v.as_s().ok()), number(item, "taskStartTime"))
                else {
                    continue;
                };
                runs.push(RunDigest {
                    task_id: task_id.clone(),
                    task_start_time: start,
                    task_status: item.get("taskStatus").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
                    open: counts(item.get("open")),
                    ..RunDigest::default()
                });
                let completed = item.get("taskStatus").and_then(|v| v.as_s().ok()).is_some_and(|s| s == "COMPLETED");
                if (start <= since && completed) || runs.len() >= limit {
                    break 'pages;
                }
            }
        }
        let keys = runs.iter().map(|r| key(task_pk(&format!("{prefix}{}", r.task_id)), "DIGEST")).collect::<Vec<_>>();
        for chunk in keys.chunks(100) {
            let found = batch_get_items(
                &self.client,
                &self.table,
                chunk.to_vec(),
                Some("taskId, severities, lifecycle.overdue"),
                &self.meter,
            )
            .await?;
            for item in found {
                let Some(task) = item.get("taskId").and_then(|v| v.as_s().ok()) else { continue };
                if let Some(run) = runs.iter_mut().find(|r| &r.task_id == task) {
                    (run.new, run.resolved, run.overdue) = digest_counts(&item);
                }
            }
        }
        Ok(runs)
    }

    async fn last_rollup(&self) -> Result<Option<i64>, PortError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(ROLLUP_PK))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        self.meter.add_read(out.consumed_capacity());
        Ok(out.items().first().and_then(|i| number(i, "at")))
    }

    async fn save_rollup(&self, rollup: &Rollup) -> Result<(), PortError> {
        // The totals only: a thousand member lines would approach the 400 KB item limit, and
        // the next roll-up needs just the time.
        let mut item = key(ROLLUP_PK.into(), &format!("{:013}", rollup.at));
        item.insert("at".into(), n(rollup.at));
        item.insert("since".into(), n(rollup.since));
        item.insert("members".into(), n(rollup.members.len() as i64));
        item.insert("silent".into(), n(rollup.silent().count() as i64));
        item.insert("unreadable".into(), n(rollup.with_problems().count() as i64));
        for (name, c) in
            [("open", &rollup.open), ("new", &rollup.new), ("resolved", &rollup.resolved), ("overdue", &rollup.overdue)]
        {
            item.insert(name.into(), to_attr(c)?);
        }
        item.insert("expiresAt".into(), expires_in(self.retention_days));
        self.meter.put(self.client.put_item().table_name(&self.table).set_item(Some(item))).await?;
        Ok(())
    }
}
