//! Each command: read what it needs from the table, ask `audit_shared::history`, shape rows.
//! What the user typed is checked against what exists first: a name that is not a check, an
//! audit or member the table never saw, a task started after `--at` are refused, saying so,
//! rather than answered with nothing.

use crate::output::{minute, Cell, Column, Rows};
use crate::{Cli, Command};
use audit_shared::aws::dynamodb::{DynamoEpisodeStore, DynamoMemberStore, DynamoTaskStore};
use audit_shared::history::{episodes_until, muted_at, open_findings, period_stats, OpenFilter};
use audit_shared::lifecycle::DAY_MS;
use audit_shared::member::Member;
use audit_shared::ports::{Episode, MemberRecord, MemberStore, PortError, TaskStore};
use audit_shared::resource_lookup::LookupError;
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
    #[error("'{check}' is not an audit check{hint}")]
    UnknownCheck { check: String, hint: String },
    #[error("no run of audit '{audit}' in the table{whose}{known}")]
    NoAudit { audit: String, whose: String, known: String },
    #[error("member {member} is not one this table's hub serves{known}")]
    NoMember { member: String, known: String },
    #[error("no task {task} in the table{whose} (never ingested, or past the retention)")]
    NoTask { task: String, whose: String },
    #[error("task {task}: {why}")]
    NotKept { task: String, why: String },
    #[error("task {task} started {start}, after --at {at}: the history had no such task then")]
    TaskAfterAt { task: String, start: String, at: String },
    #[error("--until {until} is before --since {since}")]
    Period { since: String, until: String },
    #[error("--since {since} is after {end}: the period has not begun")]
    SinceAfterEnd { since: String, end: String },
    #[error("--at does not apply to members: the table keeps only each member's latest state")]
    MembersAt,
    #[error("retire needs --member ACCOUNT:REGION (audit-history members lists them)")]
    RetireWhom,
    #[error("member {0} is the hub's own account-region: it cannot be retired (delete the hub stack instead)")]
    RetireHome(String),
    #[error("--reason is empty: say why the member is retired (the roll-up prints it)")]
    RetireWhy,
    #[error("resource: {0}")]
    Lookup(#[from] LookupError),
    #[error("no resource matches '{0}' (audit-history resource --help lists the forms it takes)")]
    NoResource(String),
    #[error("'{typed}' matches {count} resources, type more of it: {keys}")]
    SeveralResources { typed: String, count: usize, keys: String },
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// The time a command answers at: `--at`, else now — or, when the history already holds a
/// later time than this machine's clock (an emulator's virtual clock runs ahead), that time,
/// so that nothing recorded is left out as "not yet".
fn answer_time(at: Option<i64>, latest: impl IntoIterator<Item = i64>) -> i64 {
    at.unwrap_or_else(|| latest.into_iter().fold(now_ms(), i64::max))
}

/// The times an episode records (to find the latest the history knows).
fn times(e: &Episode) -> impl Iterator<Item = i64> + '_ {
    [e.first_seen].into_iter().chain(e.resolved_at).chain(e.muted_changed_at)
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

fn episode_row(e: &Episode, now: i64) -> Vec<Cell> {
    let age = e.resolved_at.unwrap_or(now) - e.first_seen;
    vec![
        Cell::text(&e.stream),
        Cell::text(e.finding.severity.as_str()),
        Cell::text(e.finding.check_name.as_str()),
        Cell::text(&e.resource_key),
        Cell::Time(Some(e.first_seen)),
        e.resolved_at.map_or_else(|| Cell::text("open"), |r| Cell::Time(Some(r))),
        Cell::Age(Some(age)),
        Cell::Count(e.came_back.into()),
        Cell::yes(e.suppressed),
    ]
}

const EPISODE_COLUMNS: [Column; 9] = [
    Column::plain("audit"),
    Column::plain("severity"),
    Column::plain("check"),
    Column::plain("resource"),
    Column::plain("first_seen"),
    Column::plain("resolved"),
    Column::age("age"),
    Column::plain("came_back"),
    Column::plain("muted"),
];

/// Says on stderr how many muted findings were left out, and how to see them.
fn note_muted(left_out: usize, quiet: bool) {
    if left_out > 0 && !quiet {
        eprintln!("{left_out} muted finding(s) not listed (--include-muted lists them)");
    }
}

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
        s.late_checks.iter().map(|(c, r)| format!("{c} (task {}, started {})", r.task_id, minute(r.start))).collect();
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

/// Whose history a command reads: the hub's own account-region, or one member's.
struct Whose {
    /// The member's key prefix (empty for the hub's own).
    prefix: String,
    /// ` of member ACCOUNT:REGION`, or empty.
    label: String,
    /// The audits (streams) its record says it notified; `None` when the records were not
    /// read (the hub's own, read only if an error is to name them).
    streams: Option<Vec<String>>,
}

/// Resolves `--member`: it must be one the table's member records name. The hub's own
/// account-region (its record says `home`) reads the unprefixed keys.
fn whose(member: Option<&Member>, records: &[MemberRecord]) -> Result<Whose, CommandError> {
    let Some(m) = member else {
        return Ok(Whose { prefix: String::new(), label: String::new(), streams: None });
    };
    let home = records.iter().find(|r| r.home);
    let Some(record) = records.iter().find(|r| r.member == *m) else {
        let known: Vec<String> = records.iter().map(|r| r.member.to_string()).collect();
        let known = match known.is_empty() {
            true => " (the table has no member records: it is not a hub's, or no notification arrived yet)".into(),
            false => format!(" (it serves {}: audit-history members)", known.join(", ")),
        };
        return Err(CommandError::NoMember { member: m.to_string(), known });
    };
    let prefix = m.key_prefix_of(home.map(|h| &h.member));
    Ok(Whose { prefix, label: format!(" of member {m}"), streams: Some(record.streams.clone()) })
}

/// Refuses an audit the table has no run of, naming the ones it has.
async fn known_audit(
    tasks: &DynamoTaskStore,
    members: &DynamoMemberStore,
    audit: &str,
    whose: &Whose,
) -> Result<(), CommandError> {
    if !tasks.recent_runs(audit, i64::MAX, 1).await?.is_empty() {
        return Ok(());
    }
    let streams = match &whose.streams {
        Some(s) => s.clone(),
        None => members.members().await?.into_iter().find(|r| r.home).map(|r| r.streams).unwrap_or_default(),
    };
    let known = match streams.is_empty() {
        true => String::new(),
        false => format!(" (audits it has: {})", streams.join(", ")),
    };
    Err(CommandError::NoAudit { audit: audit.to_owned(), whose: whose.label.clone(), known })
}

/// Refuses a name that is neither a check AWS documents nor one the audit's findings have.
fn known_check(check: &str, episodes: &[Episode]) -> Result<(), CommandError> {
    if audit_shared::catalog(check).is_some() || episodes.iter().any(|e| e.finding.check_name.as_str() == check) {
        return Ok(());
    }
    let upper = check.to_ascii_uppercase();
    let hint = match audit_shared::catalog(&upper) {
        Some(_) => format!(" (did you mean {upper}?)"),
        None => format!(" (checks: {})", audit_shared::CHECKS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")),
    };
    Err(CommandError::UnknownCheck { check: check.to_owned(), hint })
}

/// Runs the command of `cli`.
pub async fn run(client: &aws_sdk_dynamodb::Client, cli: &Cli) -> Result<Rows, CommandError> {
    let base = DynamoTaskStore::new(client.clone(), cli.table.clone(), 400);
    let member_store = DynamoMemberStore::new(client.clone(), cli.table.clone(), base.meter());
    // The member records, read only when they answer or resolve `--member`.
    let records = match cli.member.is_some() || matches!(cli.command, Command::Members { .. } | Command::Retire { .. })
    {
        true => member_store.members().await?,
        false => Vec::new(),
    };
    let whose = whose(cli.member.as_ref(), &records)?;
    let tasks = base.for_member(whose.prefix.clone());
    let store =
        DynamoEpisodeStore::new(client.clone(), cli.table.clone(), 400, tasks.meter()).for_member(whose.prefix.clone());
    let at = cli.at.map(|t| t.timestamp_millis());
    match &cli.command {
        Command::Members { grace_hours } => {
            if cli.at.is_some() {
                return Err(CommandError::MembersAt);
            }
            // The later of now and the latest time the records hold (an emulator's clock ahead).
            let now = answer_time(None, records.iter().filter_map(|r| r.last_notified.max(r.last_audit_start)));
            crate::members::members(&base, records, *grace_hours, now).await
        }
        Command::Retire { reason } => {
            let Some(member) = &cli.member else { return Err(CommandError::RetireWhom) };
            crate::members::retire(&member_store, &records, member, reason, now_ms()).await
        }
        Command::Runs { audit, limit } => {
            known_audit(&tasks, &member_store, audit, &whose).await?;
            // Runs started by `--at` (the bound is exclusive), else every one.
            let before = at.map_or(i64::MAX, |t| t.saturating_add(1));
            let runs = tasks.recent_runs(audit, before, usize::from(*limit)).await?;
            let mut rows = Rows::plain(&["task", "status", "started", "CRITICAL", "HIGH", "MEDIUM", "LOW"]);
            for r in runs {
                let open = |s: &Severity| Cell::Count(r.open.get(s.as_str()).copied().unwrap_or(0).max(0) as u64);
                let mut status = r.task_status.to_string();
                if r.not_read {
                    status.push_str(" (findings not read)");
                }
                rows.push(vec![
                    Cell::Text(r.task_id.clone()),
                    Cell::Text(status),
                    Cell::Time(Some(r.task_start_time)),
                    open(&Severity::Critical),
                    open(&Severity::High),
                    open(&Severity::Medium),
                    open(&Severity::Low),
                ]);
            }
            Ok(rows)
        }
        Command::Open { audit, check, severity, min_age_days, overdue, include_muted } => {
            let severity = match severity {
                Some(s) => Some(Severity::parse_known(s).ok_or_else(|| CommandError::Severity(s.clone()))?),
                None => None,
            };
            known_audit(&tasks, &member_store, audit, &whose).await?;
            let all = episodes(&store, audit, cli.quiet).await?;
            if let Some(c) = check {
                known_check(c, &all)?;
            }
            let filter = OpenFilter {
                check: check.clone(),
                severity,
                min_age_days: *min_age_days,
                overdue: *overdue,
                include_muted: true,
            };
            let now = answer_time(at, all.iter().flat_map(times));
            let (open, muted): (Vec<_>, Vec<_>) = open_findings(all, &filter, &cli.overdue_days, now)
                .into_iter()
                .partition(|o| *include_muted || !o.episode.suppressed);
            note_muted(muted.len(), cli.quiet);
            let mut rows = Rows::new(&[
                Column::plain("severity"),
                Column::plain("check"),
                Column::plain("resource"),
                Column::plain("first_seen"),
                Column::age("age"),
                Column::plain("overdue"),
                Column::plain("came_back"),
                Column::plain("muted"),
            ]);
            for o in open {
                let e = &o.episode;
                rows.push(vec![
                    Cell::text(e.finding.severity.as_str()),
                    Cell::text(e.finding.check_name.as_str()),
                    Cell::text(&e.resource_key),
                    Cell::Time(Some(e.first_seen)),
                    Cell::Age(Some(o.age_ms)),
                    Cell::yes(o.overdue),
                    Cell::Count(e.came_back.into()),
                    Cell::yes(e.suppressed),
                ]);
            }
            Ok(rows)
        }
        Command::Resource { key, include_muted } => {
            let found = crate::resource::episodes(&store, key, cli.quiet).await?;
            let now = answer_time(at, found.iter().flat_map(times));
            let mut shown = episodes_until(found, now);
            let before = shown.len();
            shown.retain(|e| *include_muted || !e.suppressed);
            note_muted(before - shown.len(), cli.quiet);
            let mut rows = Rows::new(&EPISODE_COLUMNS);
            shown.iter().for_each(|e| rows.push(episode_row(e, now)));
            Ok(rows)
        }
        Command::Task { id, include_muted } => {
            let s = tasks
                .load(id)
                .await?
                .ok_or_else(|| CommandError::NoTask { task: id.clone(), whose: whose.label.clone() })?;
            if let Some(at) = at.filter(|at| s.outline.task_start_time > *at) {
                return Err(CommandError::TaskAfterAt {
                    task: id.clone(),
                    start: minute(s.outline.task_start_time),
                    at: minute(at),
                });
            }
            if let Some(why) = task_findings_unknown(&s) {
                return Err(CommandError::NotKept { task: id.clone(), why });
            }
            if !s.late_checks.is_empty() || !s.unread_checks.is_empty() {
                eprintln!("{}", late_note(&s));
            }
            // Muted as they were at the run's start (what its digest and `runs` counted).
            let start = s.outline.task_start_time;
            let mut found: Vec<Episode> = store.run_findings(&s).await?;
            for e in &mut found {
                e.suppressed = muted_at(e, start);
            }
            found.sort_by(|a, b| {
                (&a.finding.severity, &a.finding.check_name, &a.resource_key).cmp(&(
                    &b.finding.severity,
                    &b.finding.check_name,
                    &b.resource_key,
                ))
            });
            let before = found.len();
            found.retain(|e| *include_muted || !e.suppressed);
            note_muted(before - found.len(), cli.quiet);
            let now = answer_time(at, found.iter().flat_map(times));
            let mut rows = Rows::new(&EPISODE_COLUMNS);
            found.iter().for_each(|e| rows.push(episode_row(e, now)));
            Ok(rows)
        }
        Command::Stats { audit, since, until } => {
            let midnight =
                |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis();
            // What the user typed is checked before anything is read.
            if let Some(until) = until.filter(|u| u < since) {
                return Err(CommandError::Period { since: since.to_string(), until: until.to_string() });
            }
            known_audit(&tasks, &member_store, audit, &whose).await?;
            let all = episodes(&store, audit, cli.quiet).await?;
            let now = answer_time(at, all.iter().flat_map(times));
            let today = chrono::DateTime::from_timestamp_millis(now).map_or(*since, |t| t.date_naive());
            let until = until.unwrap_or(today);
            if until < *since {
                return Err(CommandError::Period { since: since.to_string(), until: until.to_string() });
            }
            if midnight(*since) > now {
                let end = if cli.at.is_some() { format!("--at {}", minute(now)) } else { "now".into() };
                return Err(CommandError::SinceAfterEnd { since: since.to_string(), end });
            }
            let (from, to) = (midnight(*since), midnight(until) + DAY_MS);
            // The period ends with `now` included (a run started at `--at` is in it).
            let end = to.min(now.saturating_add(1));
            let stats = period_stats(all, from, end, &cli.overdue_days);
            let mut rows = Rows::new(&[
                Column::plain("severity"),
                Column::plain("opened"),
                Column::plain("came_back"),
                Column::plain("resolved"),
                Column::age("fix_median"),
                Column::age("fix_p90"),
                Column::plain("open_at_end"),
                Column::plain("overdue_at_end"),
            ]);
            for (sev, l) in stats {
                let fix = |f: fn(&audit_shared::lifecycle::FixTimes) -> i64| Cell::Age(l.time_to_fix.as_ref().map(f));
                rows.push(vec![
                    Cell::text(sev.as_str()),
                    Cell::Count(l.opened),
                    Cell::Count(l.came_back),
                    Cell::Count(l.resolved),
                    fix(|t| t.median_ms),
                    fix(|t| t.p90_ms),
                    Cell::Count(l.open_at_end),
                    Cell::Count(l.overdue_at_end),
                ]);
            }
            Ok(rows)
        }
    }
}
