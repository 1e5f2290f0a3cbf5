//! [`crate::ports::MemberStore`] over `aws-sdk-dynamodb`, in the findings table:
//!
//! - `MEMBERS` / `<account>:<region>`: one item per member (last notification, last problem,
//!   when it joined, its scheduled audits, its retirement: [`crate::membership`]).
//!   One partition holds every member so the roll-up reads them with one Query (1,000 members
//!   are ~300 KB, one page). Each notification writes it once: a burst of 1,000 members ending
//!   their daily audits together is ~1,000 WCU, one second of one partition's 1,000 WCU/s, and the
//!   SDK retries what a burst throttles.
//! - `MEMBER#<account>:<region>` / `READER`: the member's reader lease, in its own partition
//!   (taken and given back by every slice of every ingest, so kept off the shared one).
//!
//! The hub's own account-region's record says so (`home`), so a reader of the table (the
//! `audit-history` CLI) knows which member's keys are unprefixed.
//!
//! Neither expires: there is one per member, and a member that stops sending is exactly what
//! the roll-up must keep showing.

use super::{key, n, s, CapacityMeter, Item};
use crate::aws::classify;
use crate::member::Member;
use crate::membership::{AuditSchedule, Retirement};
use crate::ports::{MemberRecord, MemberStore, PortError, ReaderLease};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use std::sync::Arc;

/// Partition of the member records.
const MEMBERS_PK: &str = "MEMBERS";

/// The table's member records.
#[derive(Clone, Debug)]
pub struct DynamoMemberStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    meter: Arc<CapacityMeter>,
    /// The hub's own account-region, marked `home` in its record.
    home: Option<Member>,
}

impl DynamoMemberStore {
    /// Member records in `table`; capacity is counted on `meter`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, meter: Arc<CapacityMeter>) -> Self {
        DynamoMemberStore { client, table, meter, home: None }
    }

    /// The same store, marking `home`'s record as the hub's own when it notifies.
    pub fn with_home(self, home: Member) -> Self {
        DynamoMemberStore { home: Some(home), ..self }
    }

    /// An UpdateItem of `key`'s item.
    fn update(&self, key: Item) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).set_key(Some(key))
    }

    fn record_key(member: &Member) -> Item {
        key(MEMBERS_PK.into(), &member.to_string())
    }

    fn reader_key(member: &Member) -> Item {
        key(format!("MEMBER#{member}"), "READER")
    }
}

fn record(item: &Item) -> Option<MemberRecord> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let number = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
    Some(MemberRecord {
        member: Member::parse(&text("sk")?).ok()?,
        last_notified: number("lastNotified"),
        last_audit_start: number("lastAuditStart"),
        last_task: text("lastTask"),
        last_stream: text("lastStream"),
        streams: item.get("streams").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default(),
        problem: text("problem"),
        problem_at: number("problemAt"),
        home: item.get("home").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        joined_at: number("joinedAt"),
        schedules: item.get("schedules").and_then(|v| v.as_m().ok()).map(|m| {
            m.iter()
                .filter_map(|(audit, s)| {
                    Some(AuditSchedule { audit: audit.clone(), schedule: s.as_s().ok()?.parse().ok()? })
                })
                .collect()
        }),
        retired: number("retiredAt").map(|at| Retirement {
            at,
            reason: text("retiredReason").unwrap_or_default(),
            reported: item.get("retirementReported").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        }),
    })
}

impl MemberStore for DynamoMemberStore {
    async fn note_notification(
        &self,
        member: &Member,
        task_id: &str,
        stream: &str,
        task_start: i64,
        at_ms: i64,
    ) -> Result<(), PortError> {
        let update = |latest: bool| {
            let req = self
                .update(Self::record_key(member))
                .expression_attribute_values(":at", n(at_ms))
                .expression_attribute_values(":streams", AttributeValue::Ss(vec![stream.to_owned()]))
                .expression_attribute_values(":home", AttributeValue::Bool(self.home.as_ref() == Some(member)));
            match latest {
                // The latest audit so far: it becomes the member's last; a retired member that
                // sends one is back.
                true => req
                    .update_expression(
                        "SET lastNotified = :at, lastAuditStart = :start, lastTask = :task, lastStream = :stream, \
                         home = :home, joinedAt = if_not_exists(joinedAt, :at) ADD streams :streams \
                         REMOVE retiredAt, retiredReason, retirementReported",
                    )
                    .condition_expression("attribute_not_exists(lastAuditStart) OR lastAuditStart <= :start")
                    .expression_attribute_values(":start", n(task_start))
                    .expression_attribute_values(":task", s(task_id))
                    .expression_attribute_values(":stream", s(stream)),
                // An older audit notified late (a retry, the sweeper): only its stream and the time.
                false => req.update_expression(
                    "SET lastNotified = :at, home = :home, joinedAt = if_not_exists(joinedAt, :at) ADD streams :streams",
                ),
            }
        };
        if !self.meter.update(update(true)).await? {
            self.meter.update(update(false)).await?;
        }
        Ok(())
    }

    async fn note_problem(&self, member: &Member, problem: Option<&str>, at_ms: i64) -> Result<(), PortError> {
        let req = self.update(Self::record_key(member));
        let req = match problem {
            Some(p) => req
                .update_expression("SET problem = :p, problemAt = :at")
                .expression_attribute_values(":p", s(p.chars().take(1_000).collect::<String>()))
                .expression_attribute_values(":at", n(at_ms)),
            // Clearing touches only a member that has a problem (no write on every ingest).
            None => {
                req.update_expression("REMOVE problem, problemAt").condition_expression("attribute_exists(problem)")
            }
        };
        self.meter.update(req).await?;
        Ok(())
    }

    async fn take_reader(
        &self,
        member: &Member,
        owner: &str,
        now_ms: i64,
        until: i64,
    ) -> Result<ReaderLease, PortError> {
        let req = self
            .update(Self::reader_key(member))
            .update_expression("SET holder = :me, holderUntil = :until")
            .condition_expression("attribute_not_exists(holder) OR holder = :me OR holderUntil < :now")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now_ms));
        if self.meter.update(req).await? {
            return Ok(ReaderLease::Taken);
        }
        let item = self.meter.get(&self.client, &self.table, Self::reader_key(member)).await?.unwrap_or_default();
        let (holder, until) = super::lease_holder(&item);
        Ok(ReaderLease::Busy { holder, until: until.unwrap_or(now_ms) })
    }

    async fn renew_reader(&self, member: &Member, owner: &str, until: i64) -> Result<bool, PortError> {
        let req = self
            .update(Self::reader_key(member))
            .update_expression("SET holderUntil = :until")
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(until));
        self.meter.update(req).await
    }

    async fn release_reader(&self, member: &Member, owner: &str) -> Result<(), PortError> {
        let req = self
            .update(Self::reader_key(member))
            .update_expression("REMOVE holder, holderUntil")
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(owner));
        // A failed condition: taken over after it expired, or given back already.
        self.meter.update(req).await?;
        Ok(())
    }

    async fn note_joined(&self, member: &Member, at_ms: i64) -> Result<(), PortError> {
        let update = || self.update(Self::record_key(member)).expression_attribute_values(":at", n(at_ms));
        // A retired member whose stack subscribes again is back, joined anew.
        let back = update()
            .update_expression("SET joinedAt = :at REMOVE retiredAt, retiredReason, retirementReported")
            .condition_expression("attribute_exists(retiredAt)");
        if !self.meter.update(back).await? {
            self.meter.update(update().update_expression("SET joinedAt = if_not_exists(joinedAt, :at)")).await?;
        }
        Ok(())
    }

    async fn note_schedules(&self, member: &Member, schedules: &[AuditSchedule], at_ms: i64) -> Result<(), PortError> {
        let map = schedules.iter().map(|a| (a.audit.clone(), s(a.schedule.to_string()))).collect();
        let req = self
            .update(Self::record_key(member))
            .update_expression("SET schedules = :s, schedulesAt = :at")
            .expression_attribute_values(":s", AttributeValue::M(map))
            .expression_attribute_values(":at", n(at_ms));
        self.meter.update(req).await?;
        Ok(())
    }

    async fn retire(&self, member: &Member, reason: &str, at_ms: i64) -> Result<bool, PortError> {
        let req = self
            .update(Self::record_key(member))
            .update_expression("SET retiredAt = :at, retiredReason = :why, retirementReported = :no")
            .condition_expression("attribute_not_exists(retiredAt)")
            .expression_attribute_values(":at", n(at_ms))
            .expression_attribute_values(":why", s(reason.chars().take(1_000).collect::<String>()))
            .expression_attribute_values(":no", AttributeValue::Bool(false));
        self.meter.update(req).await
    }

    async fn note_retirement_reported(&self, member: &Member, at_ms: i64) -> Result<(), PortError> {
        // Only that retirement: one undone and done again meanwhile is listed by the next roll-up.
        let req = self
            .update(Self::record_key(member))
            .update_expression("SET retirementReported = :yes")
            .condition_expression("retiredAt = :at")
            .expression_attribute_values(":at", n(at_ms))
            .expression_attribute_values(":yes", AttributeValue::Bool(true));
        self.meter.update(req).await?;
        Ok(())
    }

    async fn members(&self) -> Result<Vec<MemberRecord>, PortError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(MEMBERS_PK))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("Query", e))?;
            self.meter.add_read(page.consumed_capacity());
            out.extend(page.items().iter().filter_map(record));
        }
        Ok(out)
    }
}
