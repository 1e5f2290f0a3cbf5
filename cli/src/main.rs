//! `audit-history`: asks the findings table what the digests summarise — the runs of an audit,
//! its open findings (by check, severity, age, overdue), one resource's history, the findings
//! of one task, and the lifecycle statistics of a period — without the console.
//!
//! Default AWS credentials and region; locally the same `AWS_ENDPOINT_URL_DYNAMODB` the
//! functions use (e.g. `make up`'s DynamoDB Local).

mod commands;
mod members;
mod output;
mod reach;
mod resource;

use audit_shared::lifecycle::Deadlines;
use clap::{Parser, Subcommand};
use output::Format;

/// Runs listed at most by `runs` (DynamoDB returns at most this many in one Query page here).
pub const MAX_RUNS: i64 = 1000;
/// The largest `--min-age-days`: a hundred years, older than any finding can be.
pub const MAX_AGE_DAYS: i64 = 36_500;

/// Asks the Device Defender audit history (the stack's findings table).
#[derive(Debug, Parser)]
#[command(name = "audit-history", version)]
pub struct Cli {
    /// The findings table (the stack's `FindingsTableName` output).
    #[arg(long, env = "TABLE_NAME", global = true, default_value = "")]
    table: String,
    /// How to print the answer: an aligned table, or JSON / CSV for programs (identifiers stay
    /// strings, counts are numbers, ages are seconds in `<name>_seconds`, times RFC 3339).
    #[arg(long, short, value_enum, default_value = "table", global = true)]
    output: Format,
    /// Deadlines per severity in days, as the stack's `OVERDUE_DAYS` (e.g. CRITICAL=7,HIGH=30).
    #[arg(long, env = "OVERDUE_DAYS", global = true, default_value = "", value_parser = parse_deadlines)]
    overdue_days: Deadlines,
    /// Answer as the history stood at this time (RFC 3339, e.g. 2026-11-01T00:00:00Z) instead
    /// of now: the runs started by then, what was open then and its age, the end of a period.
    #[arg(long, global = true)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// No progress lines on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// A hub's member account-region, as `members` prints it (ACCOUNT:REGION, e.g.
    /// 444455556666:eu-west-1); omit for the hub's own.
    #[arg(long, global = true, value_parser = parse_member)]
    member: Option<audit_shared::member::Member>,
    #[command(subcommand)]
    command: Command,
}

fn parse_member(s: &str) -> Result<audit_shared::member::Member, String> {
    audit_shared::member::Member::parse(s).map_err(|e| e.to_string())
}

fn parse_deadlines(s: &str) -> Result<Deadlines, String> {
    Deadlines::parse(s).map_err(|e| e.to_string())
}

/// What to ask.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The runs of an audit, newest first: task, status, start, open findings per severity
    /// (muted ones not counted).
    Runs {
        /// The scheduled audit's name, or `~on-demand`.
        #[arg(long)]
        audit: String,
        /// Runs listed at most (1 to 1000).
        #[arg(long, default_value_t = 20, allow_negative_numbers = true,
              value_parser = clap::value_parser!(u16).range(1..=MAX_RUNS))]
        limit: u16,
    },
    /// The open findings of an audit, oldest first, with their age.
    Open {
        #[arg(long)]
        audit: String,
        /// Only this check (e.g. DEVICE_CERTIFICATE_EXPIRING_CHECK).
        #[arg(long)]
        check: Option<String>,
        /// Only this severity (CRITICAL, HIGH, MEDIUM, LOW).
        #[arg(long)]
        severity: Option<String>,
        /// Only those open at least this many days (0 to 36500).
        #[arg(long, allow_negative_numbers = true,
              value_parser = clap::value_parser!(u32).range(0..=MAX_AGE_DAYS))]
        min_age_days: Option<u32>,
        /// Only those past their severity's deadline.
        #[arg(long)]
        overdue: bool,
        /// Muted (suppressed) findings too.
        #[arg(long)]
        include_muted: bool,
    },
    /// Every episode one resource had, in every audit and check: its key as the history
    /// stores it (`deviceCertificateId=ab12…`), with short field names
    /// (`policyName=p|policyVersionId=1`), or as digests print it (`p v1`, a client id, a
    /// certificate id or its first characters, `49433105b942388e…`).
    Resource {
        /// The resource, in any of the forms above.
        key: String,
        /// Muted (suppressed) episodes too.
        #[arg(long)]
        include_muted: bool,
    },
    /// The findings of one task, rebuilt from the episodes of its audit.
    Task {
        /// The audit task id.
        id: String,
        /// Muted (suppressed) findings too.
        #[arg(long)]
        include_muted: bool,
    },
    /// Lifecycle statistics of a period per severity: opened, came back, resolved, time to fix,
    /// open and overdue at its end.
    Stats {
        #[arg(long)]
        audit: String,
        /// First day (YYYY-MM-DD, UTC), included.
        #[arg(long)]
        since: chrono::NaiveDate,
        /// Last day (YYYY-MM-DD, UTC), included; default the day of `--at` (today without it).
        #[arg(long)]
        until: Option<chrono::NaiveDate>,
    },
    /// The member account-regions a hub serves: state (joined, reporting, silent, unreadable,
    /// retired; silent as the roll-up judges it, against each member's own scheduled audits),
    /// latest audit, when notified, streams, scheduled audits, the audits that did not arrive,
    /// why one cannot be read, and why one was retired.
    Members {
        /// Hours past the day a member's audit was due before it is silent: the hub's
        /// SilentGraceHours (1 to 720).
        #[arg(long, env = "SILENT_GRACE_HOURS", default_value_t = 24,
              value_parser = clap::value_parser!(u16).range(1..=720))]
        grace_hours: u16,
    },
    /// Retires the member named by --member (its account left, or its stack instance was
    /// deleted): the next roll-up lists it once, then no roll-up counts or names it. It comes
    /// back by itself if it notifies again or its stack subscribes again.
    Retire {
        /// Why (recorded, and printed by the roll-up): e.g. "decommissioned, SEC-210".
        #[arg(long)]
        reason: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if cli.table.is_empty() {
        eprintln!("audit-history: no table: pass --table or set TABLE_NAME (the stack's FindingsTableName output)");
        std::process::exit(2);
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let answer = match reach::table(&client, &sdk, &cli.table).await {
        Ok(()) => commands::run(&client, &cli).await.map_err(|e| reach::one_line(&e.to_string())),
        Err(why) => Err(why),
    };
    match answer {
        Ok(rows) => {
            let stdout = std::io::stdout();
            match rows.write(cli.output, &mut stdout.lock()) {
                Ok(()) => {}
                // The reader stopped reading (`| head`): nothing is wrong.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => {
                    eprintln!("audit-history: cannot write the answer: {e}");
                    std::process::exit(1);
                }
            }
        }
        Err(why) => {
            eprintln!("audit-history: {why}");
            std::process::exit(1);
        }
    }
}
