//! `audit-history`: asks the findings table what the digests summarise — the runs of an audit,
//! its open findings (by check, severity, age, overdue), one resource's history, the findings
//! of one task, and the lifecycle statistics of a period — without the console.
//!
//! Default AWS credentials and region; locally the same `AWS_ENDPOINT_URL_DYNAMODB` the
//! functions use (e.g. `make up`'s DynamoDB Local).

mod commands;
mod output;

use audit_shared::lifecycle::Deadlines;
use clap::{Parser, Subcommand};
use output::Format;

/// Asks the Device Defender audit history (the stack's findings table).
#[derive(Debug, Parser)]
#[command(name = "audit-history", version)]
pub struct Cli {
    /// The findings table (the stack's `FindingsTableName` output).
    #[arg(long, env = "TABLE_NAME", global = true, default_value = "")]
    table: String,
    /// How to print the answer.
    #[arg(long, short, value_enum, default_value = "table", global = true)]
    output: Format,
    /// Deadlines per severity in days, as the stack's `OVERDUE_DAYS` (e.g. CRITICAL=7,HIGH=30).
    #[arg(long, env = "OVERDUE_DAYS", global = true, default_value = "", value_parser = parse_deadlines)]
    overdue_days: Deadlines,
    /// Answer as of this time (RFC 3339, e.g. 2026-11-01T00:00:00Z) instead of now: ages,
    /// overdue, and the end of a period.
    #[arg(long, global = true)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// No progress lines on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// A hub's member account-region (ACCOUNT:REGION) to ask about; omit for the hub's own.
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
    /// The runs of an audit, newest first: task, status, start, open findings per severity.
    Runs {
        /// The scheduled audit's name, or `~on-demand`.
        #[arg(long)]
        audit: String,
        /// Runs listed at most.
        #[arg(long, default_value_t = 20)]
        limit: usize,
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
        /// Only those open at least this many days.
        #[arg(long)]
        min_age_days: Option<i64>,
        /// Only those past their severity's deadline.
        #[arg(long)]
        overdue: bool,
        /// Muted (suppressed) findings too.
        #[arg(long)]
        include_muted: bool,
    },
    /// Every episode one resource had, in every audit and check (its resource key, as the
    /// digests print it, e.g. `deviceCertificateId=ab12…`).
    Resource {
        /// The resource key: `field=value`, several joined by `|` (e.g. policyName=p|policyVersionId=1).
        key: String,
    },
    /// The findings of one task, rebuilt from the episodes of its audit.
    Task {
        /// The audit task id.
        id: String,
    },
    /// Lifecycle statistics of a period per severity: opened, came back, resolved, time to fix,
    /// open and overdue at its end.
    Stats {
        #[arg(long)]
        audit: String,
        /// First day (YYYY-MM-DD, UTC), included.
        #[arg(long)]
        since: chrono::NaiveDate,
        /// Last day (YYYY-MM-DD, UTC), included; default today.
        #[arg(long)]
        until: Option<chrono::NaiveDate>,
    },
    /// The member account-regions a hub serves: latest audit, when notified, streams, and why
    /// one cannot be read.
    Members,
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
    match commands::run(&client, &cli).await {
        Ok(rows) => {
            let stdout = std::io::stdout();
            if let Err(e) = rows.write(cli.output, &mut stdout.lock()) {
                eprintln!("audit-history: cannot write the answer: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("audit-history: {e}");
            std::process::exit(1);
        }
    }
}
