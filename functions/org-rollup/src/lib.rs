//! org-rollup: on a schedule, one message about the whole organization — every member
//! account-region's open findings by severity, what is new and resolved since the last
//! roll-up, overdue counts, the worst accounts, members that went silent and members whose
//! findings cannot be read. `main.rs` wires; the roll-up itself is `audit_shared::rollup`.

pub mod config;

pub use config::Config;

use audit_shared::member::{diagnose_setup, Member};
use audit_shared::ports::{DigestPublisher, MemberStore, PortError, RollupStore, SetupProbe};
use audit_shared::rollup::{self, MemberInput, Rollup, StreamRuns};
use audit_shared::Severity;
use tracing::info;

/// Runs a stream's history may hold between two roll-ups and still be counted whole.
pub const MAX_RUNS_PER_STREAM: usize = 100;

/// When nothing was rolled up before, new and resolved count the runs of this last stretch.
pub const FIRST_WINDOW_MS: i64 = 24 * 3_600_000;

/// Makes, sends and keeps one roll-up at `now` (epoch ms); each silent member's audit
/// configuration is read through `probe` to say why it is silent.
pub async fn roll_up<M: MemberStore, S: RollupStore, P: DigestPublisher, B: SetupProbe>(
    members: &M,
    store: &S,
    publisher: &P,
    probe: &B,
    config: &Config,
    now: i64,
) -> Result<Rollup, PortError> {
    let since = store.last_rollup().await?.unwrap_or(now - FIRST_WINDOW_MS);
    let mut inputs = Vec::new();
    for record in members.members().await? {
        let mut streams = Vec::new();
        for stream in &record.streams {
            let runs = store.stream_runs(&record.member, stream, since, MAX_RUNS_PER_STREAM).await?;
            streams.push(StreamRuns { stream: stream.clone(), runs });
        }
        inputs.push(MemberInput {
            name: config.account_names.get(&record.member.account_id).cloned(),
            member: record.member,
            last_audit: record.last_audit_start,
            problem: record.problem,
            problem_at: record.problem_at,
            streams,
        });
    }
    let mut r = rollup::build(&inputs, &config.expected, now, since, config.silent_after_hours * 3_600_000);
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
    let count = |c: &rollup::Counts, s: &Severity| c.get(s.as_str()).copied().unwrap_or(0).to_string();
    let attributes = vec![
        ("rollup".to_owned(), "String", "organization".to_owned()),
        ("CRITICAL".to_owned(), "Number", count(&r.open, &Severity::Critical)),
        ("HIGH".to_owned(), "Number", count(&r.open, &Severity::High)),
        ("newCRITICAL".to_owned(), "Number", count(&r.new, &Severity::Critical)),
        ("overdueCRITICAL".to_owned(), "Number", count(&r.overdue, &Severity::Critical)),
        ("silent".to_owned(), "Number", r.silent().count().to_string()),
        ("unreadable".to_owned(), "Number", r.with_problems().count().to_string()),
    ];
    let body = r.render_text();
    // SNS takes 256 KB; a thousand member lines are ~150 KB.
    let body = if body.len() > 250_000 { truncate(&body, 250_000) } else { body };
    let message_id = publisher.publish(&r.subject(), &body, &attributes).await?;
    store.save_rollup(&r).await?;
    info!(
        message_id,
        members = r.members.len(),
        silent = r.silent().count(),
        unreadable = r.with_problems().count(),
        "roll-up sent"
    );
    Ok(r)
}

fn truncate(body: &str, max: usize) -> String {
    let mut end = max;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… (cut: the roll-up is longer than an SNS message)\n", &body[..end])
}
