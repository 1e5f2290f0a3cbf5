//! Every knob of the emulator, as command-line flags (each also readable from an `EMULATOR_*`
//! environment variable). `device-defender-emulator --help` lists them.

use crate::faults::Faults;
use clap::Parser;
use std::collections::BTreeMap;

/// A local AWS IoT Device Defender (audits, finding suppressions, tags), with the SNS, SQS, STS
/// and Organizations calls its users make, a synthetic fleet, a virtual clock, and the SNS hop
/// to a local Lambda.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "device-defender-emulator",
    version,
    about,
    long_about = None,
    after_help = crate::served::help_summary(),
    args_override_self = true
)]
pub struct Options {
    /// Print every operation the emulator serves as a markdown table, and exit.
    #[arg(long)]
    pub operations: bool,

    /// Port to listen on (127.0.0.1). 0 picks a free port; the chosen address is printed.
    #[arg(long, env = "EMULATOR_PORT", default_value_t = 4566)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "EMULATOR_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Account id used in ARNs and notifications.
    #[arg(long, env = "EMULATOR_ACCOUNT_ID", default_value = "123456789012")]
    pub account_id: String,

    /// Region used in ARNs.
    #[arg(long, env = "EMULATOR_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Seed of the synthetic fleet, task ids and fault injection: same seed, same run.
    #[arg(long, env = "EMULATOR_SEED", default_value_t = 42)]
    pub seed: u64,

    /// Number of devices in the synthetic fleet (each has a certificate and a client id;
    /// CA certificates, policies and role aliases scale with it).
    #[arg(long, env = "EMULATOR_FLEET_DEVICES", default_value_t = 1000)]
    pub fleet_devices: u32,

    /// Share (0–1) of resources that fail a typical check. Checks weigh it (rare problems
    /// such as weak keys are rarer); 1.0 makes every resource of every check non-compliant.
    #[arg(long, env = "EMULATOR_NONCOMPLIANT_SHARE", default_value_t = 0.05)]
    pub noncompliant_share: f64,

    /// Share (0–1) of each check's problems fixed after every completed audit, replaced by as
    /// many new ones, so consecutive audits differ. 0 freezes the fleet.
    #[arg(long, env = "EMULATOR_DRIFT_SHARE", default_value_t = 0.2)]
    pub drift_share: f64,

    /// Seconds (virtual) an audit task stays IN_PROGRESS; its checks finish one by one within it.
    #[arg(long, env = "EMULATOR_TASK_DURATION_SECS", default_value_t = 5.0)]
    pub task_duration_secs: f64,

    /// Stop the virtual clock: time moves only through POST /_emulator/clock/advance.
    /// Without it the clock follows real time (plus every advance).
    #[arg(long, env = "EMULATOR_FROZEN_CLOCK")]
    pub frozen_clock: bool,

    /// Start of the virtual clock, RFC 3339 (default: the real time at start).
    #[arg(long, env = "EMULATOR_START_TIME")]
    pub start_time: Option<String>,

    /// Hours after midnight UTC at which scheduled audits start.
    #[arg(long, env = "EMULATOR_SCHEDULE_HOUR", default_value_t = 0)]
    pub schedule_hour: u32,

    /// Days tasks and findings are kept (AWS: 90).
    #[arg(long, env = "EMULATOR_RETENTION_DAYS", default_value_t = 90)]
    pub retention_days: u32,

    /// Scheduled audits allowed per account (AWS: 5).
    #[arg(long, env = "EMULATOR_MAX_SCHEDULED_AUDITS", default_value_t = 5)]
    pub max_scheduled_audits: usize,

    /// On-demand tasks allowed IN_PROGRESS at once (AWS: 10).
    #[arg(long, env = "EMULATOR_MAX_ON_DEMAND_TASKS", default_value_t = 10)]
    pub max_on_demand_tasks: usize,

    /// Severity of a check's findings, overriding the catalog: CHECK=CRITICAL|HIGH|MEDIUM|LOW.
    #[arg(long = "severity", value_name = "CHECK=SEVERITY", value_parser = parse_pair)]
    pub severities: Vec<(String, String)>,

    /// URL that SNS `lambda` subscriptions are delivered to; `{function}` is replaced by the
    /// function name from the subscription endpoint ARN. Default: `cargo lambda watch`.
    #[arg(
        long,
        env = "EMULATOR_LAMBDA_INVOKE_URL",
        default_value = "http://127.0.0.1:9000/2015-03-31/functions/{function}/invocations"
    )]
    pub lambda_invoke_url: String,

    /// Play the Lambda event source mapping of an SQS queue: QUEUE=FUNCTION creates the queue
    /// and delivers its messages as SQS events to the function (at --lambda-invoke-url).
    #[arg(long = "sqs-lambda", value_name = "QUEUE=FUNCTION", value_parser = parse_pair)]
    pub sqs_lambda: Vec<(String, String)>,

    /// Attempts per Lambda delivery (SNS retries failed deliveries).
    #[arg(long, env = "EMULATOR_DELIVERY_ATTEMPTS", default_value_t = 3)]
    pub delivery_attempts: u32,

    /// Another account the emulator serves (repeatable), besides --account-id: each of its
    /// regions has its own Device Defender, fleet, quotas and SNS topics.
    #[arg(long = "account", value_name = "ACCOUNT_ID")]
    pub accounts: Vec<String>,

    /// A long-term access key of an account: requests signed with KEY act in ACCOUNT (their
    /// region is the SigV4 credential scope's). Other keys act in --account-id.
    #[arg(long = "access-key", value_name = "KEY=ACCOUNT_ID")]
    pub access_keys: Vec<String>,

    /// A role STS lets callers assume: ARN[=TRUSTED_ACCOUNT,…] (default: its own account).
    /// Any other role ARN is refused with AccessDenied.
    #[arg(long = "role", value_name = "ROLE_ARN[=ACCOUNTS]")]
    pub roles: Vec<String>,

    /// Id of the AWS organization every served account belongs to (Organizations `ListAccounts`):
    /// `o-` and 10–32 lowercase letters or digits. Its management account is --account-id.
    #[arg(long, env = "EMULATOR_ORGANIZATION_ID", default_value = "o-emulator000")]
    pub organization_id: String,

    /// An account that may call Organizations `ListAccounts` besides the management account
    /// (repeatable): a delegated administrator, or an account the management account's
    /// resource-based delegation policy allows. It is declared like --account.
    #[arg(long = "organization-reader", value_name = "ACCOUNT_ID")]
    pub organization_readers: Vec<String>,

    /// Log as JSON lines instead of text.
    #[arg(long, env = "EMULATOR_LOG_JSON")]
    pub log_json: bool,

    #[command(flatten)]
    pub faults: Faults,
}

/// Declared accounts, long-term access keys (key → account) and roles.
pub type Identities = (Vec<String>, BTreeMap<String, String>, Vec<crate::sts::Role>);

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got '{s}'"))
}

impl Options {
    /// Options for in-process use (tests, benchmarks): port 0, frozen clock, then `args`
    /// (flags as on the command line; later flags override earlier ones).
    pub fn from_args(args: &[&str]) -> Result<Self, clap::Error> {
        let base = ["device-defender-emulator", "--port", "0", "--frozen-clock"];
        Options::try_parse_from(base.iter().chain(args.iter()))
    }

    /// The declared accounts, long-term keys and roles, validated.
    pub fn identities(&self) -> Result<Identities, String> {
        if !crate::sts::is_account(&self.account_id) {
            return Err(format!("--account-id '{}' is not a 12-digit account id", self.account_id));
        }
        if !crate::scope::is_region(&self.region) {
            return Err(format!("--region '{}' is not a region", self.region));
        }
        let mut accounts = vec![self.account_id.clone()];
        for a in &self.accounts {
            if !crate::sts::is_account(a) {
                return Err(format!("--account '{a}' is not a 12-digit account id"));
            }
            accounts.push(a.clone());
        }
        let keys = self
            .access_keys
            .iter()
            .map(|k| crate::scope::AccessKeys::parse_entry(k).map_err(|e| format!("--access-key {e}")))
            .collect::<Result<_, _>>()?;
        let roles: Vec<crate::sts::Role> = self
            .roles
            .iter()
            .map(|r| crate::sts::Role::parse(r).map_err(|e| format!("--role {e}")))
            .collect::<Result<_, _>>()?;
        accounts.extend(roles.iter().map(|r| r.account().to_owned()));
        for r in &self.organization_readers {
            if !crate::sts::is_account(r) {
                return Err(format!("--organization-reader '{r}' is not a 12-digit account id"));
            }
            accounts.push(r.clone());
        }
        Ok((accounts, keys, roles))
    }

    /// Severity overrides as a map, validated.
    pub fn severity_overrides(&self) -> Result<BTreeMap<String, audit_shared::Severity>, String> {
        self.severities
            .iter()
            .map(|(check, sev)| {
                if audit_shared::catalog(check).is_none() {
                    return Err(format!("--severity: unknown check '{check}'"));
                }
                audit_shared::Severity::parse_known(sev)
                    .map(|s| (check.clone(), s))
                    .ok_or_else(|| format!("--severity: '{sev}' is not CRITICAL, HIGH, MEDIUM or LOW"))
            })
            .collect()
    }
}
