//! `members` and `retire`: the hub's member account-regions as the roll-up judges them, and
//! retiring one by hand.

use crate::commands::CommandError;
use crate::output::{Cell, Rows};
use audit_shared::aws::dynamodb::{DynamoMemberStore, DynamoTaskStore};
use audit_shared::member::Member;
use audit_shared::membership::{missed_audits, MemberState, MissedAudit};
use audit_shared::ports::{MemberRecord, MemberStore, TaskStore};
use std::collections::BTreeMap;

/// Every member of `records` with its state at `now`; silence judged as the roll-up judges it,
/// with a grace of `grace_hours`.
pub async fn members(
    tasks: &DynamoTaskStore,
    records: Vec<MemberRecord>,
    grace_hours: u16,
    now: i64,
) -> Result<Rows, CommandError> {
    let home = records.iter().find(|r| r.home).map(|r| r.member.clone());
    let grace = i64::from(grace_hours) * 3_600_000;
    let mut rows = member_rows();
    for m in records {
        let missed = match m.retired {
            // A retired member is not expected to report.
            Some(_) => Vec::new(),
            None => {
                // The latest run of each of its scheduled audits, as the roll-up reads them.
                let runs = tasks.for_member(m.member.key_prefix_of(home.as_ref()));
                let mut last_runs = BTreeMap::new();
                for a in m.schedules.iter().flatten() {
                    if let Some(r) = runs.recent_runs(&a.audit, i64::MAX, 1).await?.first() {
                        last_runs.insert(a.audit.clone(), r.task_start_time);
                    }
                }
                missed_audits(m.schedules.as_deref(), &last_runs, m.last_audit_start, m.joined_at, now, grace)
            }
        };
        rows.push(member_row(m, &missed));
    }
    Ok(rows)
}

/// Retires `member` at `now` for `reason`: never the hub's own, never without a reason; once
/// (a second call says so on stderr and changes nothing). Its row after.
pub async fn retire(
    store: &DynamoMemberStore,
    records: &[MemberRecord],
    member: &Member,
    reason: &str,
    now: i64,
) -> Result<Rows, CommandError> {
    if reason.trim().is_empty() {
        return Err(CommandError::RetireWhy);
    }
    if records.iter().any(|r| r.home && r.member == *member) {
        return Err(CommandError::RetireHome(member.to_string()));
    }
    let reason = format!("retired with audit-history: {}", reason.trim());
    if !store.retire(member, &reason, now).await? {
        eprintln!("member {member} was retired already: its retirement is unchanged");
    }
    let mut rows = member_rows();
    for m in store.members().await?.into_iter().filter(|r| r.member == *member) {
        rows.push(member_row(m, &[]));
    }
    Ok(rows)
}

/// The columns `members` and `retire` print.
fn member_rows() -> Rows {
    Rows::plain(&[
        "account",
        "region",
        "state",
        "joined",
        "last_audit",
        "last_task",
        "notified",
        "streams",
        "schedules",
        "missed",
        "problem",
        "retired",
        "retired_why",
    ])
}

/// One member's row; `missed`: its scheduled audits that did not arrive in time (it is silent).
fn member_row(m: MemberRecord, missed: &[MissedAudit]) -> Vec<Cell> {
    let state =
        MemberState::of(m.retired.is_some(), m.problem.is_some(), !missed.is_empty(), m.last_audit_start.is_some());
    let schedules =
        m.schedules.unwrap_or_default().into_iter().map(|a| format!("{} {}", a.audit, a.schedule)).collect();
    vec![
        Cell::Text(m.member.account_id),
        Cell::Text(m.member.region),
        Cell::Text(state.to_string()),
        Cell::Time(m.joined_at),
        Cell::Time(m.last_audit_start),
        Cell::Text(m.last_task.unwrap_or_default()),
        Cell::Time(m.last_notified),
        Cell::List(m.streams),
        Cell::List(schedules),
        Cell::List(missed.iter().map(ToString::to_string).collect()),
        Cell::Text(m.problem.unwrap_or_default()),
        Cell::Time(m.retired.as_ref().map(|r| r.at)),
        Cell::Text(m.retired.map(|r| r.reason).unwrap_or_default()),
    ]
}
