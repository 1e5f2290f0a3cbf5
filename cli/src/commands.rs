//! Each command: read what it needs from the table, ask `audit_shared::history`, shape rows.

use crate::output::Rows;
use crate::{Cli, Command};
use audit_shared::aws::dynamodb::{DynamoEpisodeStore, DynamoMemberStore, DynamoTaskStore};
use audit_shared::history::{open_findings, period_stats, OpenFilter};
use audit_shared::lifecycle::{fmt_age, DAY_MS};
use audit_shared::ports::{Episode, MemberStore, PortError, TaskStore};
use audit_shared::summary::{IngestState, LifecycleState, TaskSummary};
use audit_shared::{Severity, TaskStatus};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a command could not answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("reading the table failed: {0}")]
    Table(#[from] PortError),
    #[error("unknown severity '{0}' (CRITICAL, HIGH, MEDIUM, LOW)")]
    Severity(String),
    #[error("no task {0} in the table (never ingested, or past the retention)")]
    NoTask(String),
    #[error("task {task}: {why}")]
    NotKept { task: String, why: String },
    #[error("--until {until} is before --since {since}")]
    Period { since: String, until: String },
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// Reads every episode of an audit, printing progress on stderr every 10,000 unless quiet.
async fn episodes(store: &DynamoEpisodeStore, audit: &str, quiet: bool) -> Result<Vec<Episode>, PortError> {
    let mut all = Vec::new();
    store
        .each_episode(audit, |e| {
            all.push(e);
            if !quiet && all.len() % 10_000 == 0 {
                eprintln!("… {} episodes of {audit} read", all.len());
            }
        })
        .await?;
    if !quiet && all.len() >= 10_000 {
        eprintln!("{} episodes of {audit} read", all.len());
    }
    Ok(all)
}

fn episode_row(e: &Episode, now: i64) -> Vec<String> {
    let age = e.resolved_at.unwrap_or(now) - e.first_seen;
    vec![
        e.stream.clone(),
        e.finding.severity.to_string(),
        e.finding.check_name.to_string(),
        e.resource_key.clone(),
        day(e.first_seen),
        e.resolved_at.map_or_else(|| "open".into(), day),
        fmt_age(age),
        e.came_back.to_string(),
        if e.suppressed { "yes".into() } else { "".into() },
    ]
}

const EPISODE_COLUMNS: [&str; 9] =
    ["audit", "severity", "check", "resource", "first_seen", "resolved", "age", "came_back", "muted"];

/// Why the history cannot say what a task found, when it cannot: its findings were not kept
/// (not read, or every check late) or are still being read. `None`: the episodes answer, for
/// the checks it applied (a task none of whose checks completed found nothing: no rows).
fn task_findings_unknown(s: &TaskSummary) -> Option<String> {
    let completed = s.completed_checks();
    if s.outline.task_status != TaskStatus::Completed {
        return (!completed.is_empty()).then(|| {
            format!(
                "the task ended {}; only a COMPLETED task's findings are kept, so its {} completed check(s) were not read",
                s.outline.task_status,
                completed.len()
            )
        });
    }
    if s.ingest != IngestState::Complete {
        return Some("its findings are still being read; ask again once its digest is out".into());
    }
    if s.lifecycle == LifecycleState::Pending {
        // What it resolved is not closed yet: those findings would still look open at its start.
        return Some("its changes to the history are still being applied; ask again in a minute".into());
    }
    if s.lifecycle == LifecycleState::NotTracked && !completed.is_empty() {
        return Some(format!("its findings were not kept. {}", late_note(s)));
    }
    None
}

/// Which checks of a task were not applied to the history, and which run applied each first.
fn late_note(s: &TaskSummary) -> String {
    let late: Vec<String> =
        s.late_checks.iter().map(|(c, r)| format!("{c} (task {}, started {})", r.task_id, day(r.start))).collect();
    let unread: Vec<String> = s.unread_checks.iter().map(|(c, why)| format!("{c} ({why})")).collect();
    let mut notes = Vec::new();
    if !late.is_empty() {
        notes.push(format!(
            "Not applied to the history, because a run started no earlier applied them first (their findings are not listed): {}",
            late.join(", ")
        ));
    }
    if !unread.is_empty() {
        notes.push(format!(
            "Not applied to the history, because their findings could not be read (not listed): {}",
            unread.join(", ")
        ));
    }
    if notes.is_empty() {
        return "a run started no earlier was applied first".into();
    }
    notes.join("\n")
}

/// Runs the command of `cli`.
pub async fn run(client: &aws_sdk_dynamodb::Client, cli: &Cli) -> Result<Rows, CommandError> {
    // A member's keys start with its account and region (the hub's own are unprefixed).
    let prefix = cli.member.as_ref().map_or_else(String::new, |m| format!("{}#{}#", m.account_id, m.region));
    let tasks = DynamoTaskStore::new(client.clone(), cli.table.clone(), 400).for_member(prefix.clone());
    let store = DynamoEpisodeStore::new(client.clone(), cli.table.clone(), 400, tasks.meter()).for_member(prefix);
    let now = cli.at.map_or_else(now_ms, |t| t.timestamp_millis());
    match &cli.command {
        Command::Members => {
            let members = DynamoMemberStore::new(client.clone(), cli.table.clone(), tasks.meter()).members().await?;
            let mut rows =
                Rows::new(&["account", "region", "last_audit", "last_task", "notified", "streams", "problem"]);
            for m in members {
                rows.push(vec![
                    m.member.account_id,
                    m.member.region,
                    m.last_audit_start.map(day).unwrap_or_default(),
                    m.last_task.unwrap_or_default(),
                    m.last_notified.map(day).unwrap_or_default(),
                    m.streams.join(" "),
                    m.problem.unwrap_or_default(),
                ]);
            }
            Ok(rows)
        }
        Command::Runs { audit, limit } => {
            let runs = tasks.recent_runs(audit, i64::MAX, *limit).await?;
            let mut rows = Rows::new(&["task", "status", "started", "CRITICAL", "HIGH", "MEDIUM", "LOW"]);
            for r in runs {
                let open = |s: &str| r.open.get(s).copied().unwrap_or(0).to_string();
                let mut status = r.task_status.to_string();
                if r.not_read {
                    status.push_str(" (findings not read)");
                }
                rows.push(vec![
                    r.task_id,
                    status,
                    day(r.task_start_time),
                    open("CRITICAL"),
                    open("HIGH"),
                    open("MEDIUM"),
                    open("LOW"),
                ]);
            }
            Ok(rows)
        }
        Command::Open { audit, check, severity, min_age_days, overdue, include_muted } => {
            let severity = match severity {
                Some(s) => Some(Severity::parse_known(s).ok_or_else(|| CommandError::Severity(s.clone()))?),
                None => None,
            };
            let filter = OpenFilter {
                check: check.clone(),
                severity,
                min_age_days: *min_age_days,
                overdue: *overdue,
                include_muted: *include_muted,
            };
            let open = open_findings(episodes(&store, audit, cli.quiet).await?, &filter, &cli.overdue_days, now);
            let mut rows =
                Rows::new(&["severity", "check", "resource", "first_seen", "age", "overdue", "came_back", "muted"]);
            for o in open {
                let e = &o.episode;
                rows.push(vec![
                    e.finding.severity.to_string(),
                    e.finding.check_name.to_string(),
                    e.resource_key.clone(),
                    day(e.first_seen),
                    fmt_age(o.age_ms),
                    if o.overdue { "yes".into() } else { "".into() },
                    e.came_back.to_string(),
                    if e.suppressed { "yes".into() } else { "".into() },
                ]);
            }
            Ok(rows)
        }
        Command::Resource { key } => {
            let mut found = store.resource_history(key).await?;
            found.sort_by(|a, b| (&a.stream, a.first_seen).cmp(&(&b.stream, b.first_seen)));
            let mut rows = Rows::new(&EPISODE_COLUMNS);
            for e in &found {
                // Earlier episodes first, then the stored one.
                for (f, r) in &e.history {
                    let past =
                        Episode { first_seen: *f, resolved_at: Some(*r), came_back: 0, suppressed: false, ..e.clone() };
                    rows.push(episode_row(&past, now));
                }
                rows.push(episode_row(e, now));
            }
            Ok(rows)
        }
        Command::Task { id } => {
            let s = tasks.load(id).await?.ok_or_else(|| CommandError::NoTask(id.clone()))?;
            if let Some(why) = task_findings_unknown(&s) {
                return Err(CommandError::NotKept { task: id.clone(), why });
            }
            if !s.late_checks.is_empty() || !s.unread_checks.is_empty() {
                eprintln!("{}", late_note(&s));
            }
            let mut found = store.run_findings(&s).await?;
            found.sort_by(|a, b| {
                (&a.finding.severity, &a.finding.check_name, &a.resource_key).cmp(&(
                    &b.finding.severity,
                    &b.finding.check_name,
                    &b.resource_key,
                ))
            });
            let mut rows = Rows::new(&EPISODE_COLUMNS);
            found.iter().for_each(|e| rows.push(episode_row(e, now)));
            Ok(rows)
        }
        Command::Stats { audit, since, until } => {
            let midnight =
                |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis();
            let until = until.unwrap_or_else(|| chrono::Utc::now().date_naive());
            if until < *since {
                return Err(CommandError::Period { since: since.to_string(), until: until.to_string() });
            }
            let (from, to) = (midnight(*since), midnight(until) + DAY_MS);
            let stats =
                period_stats(episodes(&store, audit, cli.quiet).await?, from, to.min(now.max(from)), &cli.overdue_days);
            let mut rows = Rows::new(&[
                "severity",
                "opened",
                "came_back",
                "resolved",
                "fix_median",
                "fix_p90",
                "open_at_end",
                "overdue_at_end",
            ]);
            for (sev, l) in stats {
                let fix = |f: fn(&audit_shared::lifecycle::FixTimes) -> i64| {
                    l.time_to_fix.as_ref().map_or("-".into(), |t| fmt_age(f(t)))
                };
                rows.push(vec![
                    sev.to_string(),
                    l.opened.to_string(),
                    l.came_back.to_string(),
                    l.resolved.to_string(),
                    fix(|t| t.median_ms),
                    fix(|t| t.p90_ms),
                    l.open_at_end.to_string(),
                    l.overdue_at_end.to_string(),
                ]);
            }
            Ok(rows)
        }
    }
}
