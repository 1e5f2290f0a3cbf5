//! org-rollup: on a schedule, one message about the whole organization — every member
//! account-region's open findings by severity, what is new and resolved since the last
//! roll-up, overdue counts, the worst accounts, members that went silent and members whose
//! findings cannot be read, members that joined, and — once — members retired since the last
//! one (their account left the organization, read with ListAccounts, or someone retired them).
//! `main.rs` wires; the roll-up itself is `audit_shared::rollup`, the member rules
//! `audit_shared::membership`.

pub mod config;

pub use config::Config;

use audit_shared::member::{diagnose_setup, Member};
use audit_shared::membership::{left_the_organization, Retirement};
use audit_shared::ports::{
    DigestPublisher, MemberRecord, MemberStore, OrganizationAccounts, PortError, RollupStore, SetupProbe,
};
use audit_shared::rollup::{self, MemberInput, Rollup, StreamRuns};
use audit_shared::Severity;
use tracing::{info, warn};

/// Runs a stream's history may hold between two roll-ups and still be counted whole.
pub const MAX_RUNS_PER_STREAM: usize = 100;

/// When nothing was rolled up before, new and resolved count the runs of this last stretch.
pub const FIRST_WINDOW_MS: i64 = 24 * 3_600_000;

/// The ports the roll-up reads and writes.
pub struct RollupPorts<'a, M, S, P, B, O> {
    /// Member records.
    pub members: &'a M,
    /// Runs, digests and past roll-ups.
    pub store: &'a S,
    /// The digest topic.
    pub publisher: &'a P,
    /// A silent member's audit configuration, read to say why it is silent.
    pub probe: &'a B,
    /// The organization's accounts, to retire members that left it (`None`: not read).
    pub organization: Option<&'a O>,
}

/// Makes, sends and keeps one roll-up at `now` (epoch ms): retires the members whose account
/// left the organization, reads each other member's runs, says why each silent member is
/// silent, publishes, and marks the retirements it listed as reported (listed once).
pub async fn roll_up<M, S, P, B, O>(
    ports: RollupPorts<'_, M, S, P, B, O>,
    config: &Config,
    now: i64,
) -> Result<Rollup, PortError>
where
    M: MemberStore,
    S: RollupStore,
    P: DigestPublisher,
    B: SetupProbe,
    O: OrganizationAccounts,
{
    let RollupPorts { members, store, publisher, probe, organization } = ports;
    let since = store.last_rollup().await?.unwrap_or(now - FIRST_WINDOW_MS);
    let mut records = members.members().await?;
    let organization_note = match organization {
        Some(org) => retire_left(members, org, &mut records, config, now).await?,
        None => None,
    };
    let mut inputs = Vec::new();
    for record in records {
        let mut streams = Vec::new();
        // A retired member is only named (once): its runs are not read.
        if record.retired.is_none() {
            for stream in &record.streams {
                let runs = store.stream_runs(&record.member, stream, since, MAX_RUNS_PER_STREAM).await?;
                streams.push(StreamRuns { stream: stream.clone(), runs });
            }
        }
        inputs.push(MemberInput {
            name: config.account_names.get(&record.member.account_id).cloned(),
            member: record.member,
            last_audit: record.last_audit_start,
            joined_at: record.joined_at,
            schedules: record.schedules,
            retired: record.retired,
            problem: record.problem,
            problem_at: record.problem_at,
            streams,
        });
    }
    let mut r = rollup::build(&inputs, &config.expected, now, since, config.silent_grace_hours * 3_600_000);
    r.organization_note = organization_note;
    for line in &mut r.members {
        line.name = line.name.take().or_else(|| config.account_names.get(&line.account_id).cloned());
        if !line.silent {
            continue;
        }
        let Ok(member) = Member::new(&line.account_id, &line.region) else { continue };
        line.setup = Some(match probe.member_setup(&member).await {
            Ok(setup) => diagnose_setup(&setup, &member, &config.member_topic_name).map_or_else(
                || "its audit setup looks right: check its topic's subscription of the hub's queue".to_owned(),
                |why| format!("audit setup: {why}"),
            ),
            Err(PortError::Permanent(why)) => format!("its audit setup cannot be read: {why}"),
            Err(e) => format!("its audit setup could not be read this time: {e}"),
        });
    }
    for line in &mut r.retired {
        line.name = line.name.take().or_else(|| config.account_names.get(&line.account_id).cloned());
    }
    let count = |c: &rollup::Counts, s: &Severity| c.get(s.as_str()).copied().unwrap_or(0).to_string();
    let attributes = vec![
        ("rollup".to_owned(), "String", "organization".to_owned()),
        ("CRITICAL".to_owned(), "Number", count(&r.open, &Severity::Critical)),
        ("HIGH".to_owned(), "Number", count(&r.open, &Severity::High)),
        ("newCRITICAL".to_owned(), "Number", count(&r.new, &Severity::Critical)),
        ("overdueCRITICAL".to_owned(), "Number", count(&r.overdue, &Severity::Critical)),
        ("silent".to_owned(), "Number", r.silent().count().to_string()),
        ("unreadable".to_owned(), "Number", r.with_problems().count().to_string()),
        ("retired".to_owned(), "Number", r.retired.len().to_string()),
    ];
    let body = r.render_text();
    // SNS takes 256 KB; a thousand member lines are ~150 KB.
    let body = if body.len() > 250_000 { truncate(&body, 250_000) } else { body };
    let message_id = publisher.publish(&r.subject(), &body, &attributes).await?;
    store.save_rollup(&r).await?;
    // Listed: later roll-ups leave them out. A failure here lists them once more next time.
    for line in &r.retired {
        let Ok(member) = Member::new(&line.account_id, &line.region) else { continue };
        members.note_retirement_reported(&member, line.at).await?;
    }
    info!(
        message_id,
        members = r.members.len(),
        silent = r.silent().count(),
        unreadable = r.with_problems().count(),
        retired = r.retired.len(),
        "roll-up sent"
    );
    Ok(r)
}

/// Retires every member of `records` whose account the organization no longer has (or
/// suspends or closes), updating `records`; the note the roll-up prints when the organization's
/// accounts cannot be read or trusted (then nobody is retired).
async fn retire_left<M: MemberStore, O: OrganizationAccounts>(
    members: &M,
    org: &O,
    records: &mut [MemberRecord],
    config: &Config,
    now: i64,
) -> Result<Option<String>, PortError> {
    let accounts = match org.accounts().await {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "the organization's accounts cannot be read: members that left are not retired");
            return Ok(Some(format!(
                "The organization's accounts could not be read ({e}): members whose account left it are not retired \
                 automatically; retire one with `audit-history retire ACCOUNT:REGION`, or let the hub read them \
                 (README, \"Members join and leave\")."
            )));
        }
    };
    let active: Vec<Member> = records.iter().filter(|r| r.retired.is_none()).map(|r| r.member.clone()).collect();
    let leaving = match left_the_organization(&active, &accounts, &config.home, &config.organization_id) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, accounts = accounts.len(), "organization account list not trusted");
            return Ok(Some(format!("Nobody was retired: {e}.")));
        }
    };
    for (member, reason) in leaving {
        if members.retire(&member, &reason, now).await? {
            info!(member = %member, reason, "member retired");
        }
        if let Some(r) = records.iter_mut().find(|r| r.member == member) {
            r.retired.get_or_insert(Retirement { at: now, reason, reported: false });
        }
    }
    Ok(None)
}

/// The time a roll-up is made for: the schedule's `scheduledTime` (EventBridge Scheduler's
/// `<aws.scheduler.scheduled-time>`, which the template puts in the event) when the event has
/// one, so a retried invocation makes the same roll-up; else `clock` (epoch ms).
pub fn rollup_time(event: &serde_json::Value, clock: i64) -> i64 {
    event
        .get("scheduledTime")
        .and_then(|t| t.as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(clock, |t| t.timestamp_millis())
}

fn truncate(body: &str, max: usize) -> String {
    let mut end = max;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… (cut: the roll-up is longer than an SNS message)\n", &body[..end])
}
