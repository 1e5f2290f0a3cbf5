//! The narrow interfaces the Lambdas need from AWS, in domain types. Real adapters live in
//! [`crate::aws`] (feature `aws`); tests run them against the emulator and DynamoDB Local.

use crate::digest::Digest;
use crate::finding::Finding;
use crate::lifecycle::OpenEpisode;
use crate::setup::{ActualSetup, SetupRecord, Step};
use crate::stream_head::StreamHead;
use crate::summary::{CheckProgress, LifecycleState, TaskOutline, TaskSummary};
use crate::vocabulary::{TaskStatus, TaskType};
use crate::work::Continuation;
use std::collections::BTreeMap;
use std::future::Future;

/// Why a call to AWS failed, sorted by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The thing asked for does not exist (e.g. an expired task).
    #[error("not found: {0}")]
    NotFound(String),
    /// A page token was refused (expired, or from another query): restart that listing.
    #[error("page token refused: {0}")]
    InvalidToken(String),
    /// Another invocation took over the task (our lease expired): stop without writing more.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// The temporary credentials the call was signed with expired (STS `ExpiredToken`): open
    /// the access anew (assume the role again), then retry.
    #[error("credentials expired: {0}")]
    CredentialsExpired(String),
    /// Worth retrying later (throttling beyond the SDK's retries, 5xx, network).
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying will not help (permissions, validation).
    #[error("{0}")]
    Permanent(String),
}

/// One page of ListAuditFindings.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingsPage {
    pub findings: Vec<Finding>,
    pub next_token: Option<String>,
}

/// A task as ListAuditTasks lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRef {
    pub task_id: String,
    pub task_status: TaskStatus,
    pub task_type: TaskType,
}

/// The Device Defender audit API, as far as ingest needs it.
pub trait AuditReader: Send + Sync {
    /// DescribeAuditTask.
    fn describe_task(&self, task_id: &str) -> impl Future<Output = Result<TaskOutline, PortError>> + Send;
    /// One ListAuditFindings page (250 findings) of one check of a task.
    fn list_findings(
        &self,
        task_id: &str,
        check_name: &str,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<FindingsPage, PortError>> + Send;
    /// Every task started in [start, end] (epoch ms), all pages.
    fn list_tasks(&self, start_ms: i64, end_ms: i64) -> impl Future<Output = Result<Vec<TaskRef>, PortError>> + Send;
    /// Every audit finding suppression of the account (ListAuditSuppressions, all pages).
    fn list_suppressions(&self) -> impl Future<Output = Result<Vec<SuppressionInfo>, PortError>> + Send;
    /// Every scheduled audit of the account with its schedule (ListScheduledAudits, all pages).
    fn scheduled_audits(&self)
        -> impl Future<Output = Result<Vec<crate::membership::AuditSchedule>, PortError>> + Send;
    /// Attempts answered with throttling so far, retried ones included (a running total: take
    /// differences).
    fn throttled_attempts(&self) -> u64;
}

/// The outcome of claiming a task for ingest.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// We hold the lease; here is the stored state to resume from.
    Acquired(TaskSummary),
    /// Ingest and digest are done: a duplicate.
    Done(TaskSummary),
    /// Another invocation holds the lease until `until` (epoch ms).
    Busy { owner: String, until: i64 },
}

/// An audit finding suppression, as a digest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionInfo {
    pub check_name: String,
    /// The resource identifier flattened like a finding's (`field=value|…`).
    pub resource_key: String,
    /// The suppression's description: why it was muted.
    pub description: Option<String>,
    /// Epoch milliseconds; `None` when indefinite.
    pub expiration_ms: Option<i64>,
}

/// Opaque position in a listing of stored keys.
pub type Cursor = String;

/// The DynamoDB table.
pub trait TaskStore: Send + Sync {
    /// Creates the summary or takes over an expired lease; see [`Claim`].
    fn claim(
        &self,
        fresh: &TaskSummary,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> impl Future<Output = Result<Claim, PortError>> + Send;
    /// Records one check's progress after its page is stored; fails with `LeaseLost` when
    /// `owner` no longer holds the lease. Extends the lease to `lease_until`.
    fn checkpoint(
        &self,
        task_id: &str,
        owner: &str,
        check_name: &str,
        progress: &CheckProgress,
        pages: i64,
        lease_until: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Marks ingest complete (counts, history entry). Conditional on the lease.
    fn complete(&self, summary: &TaskSummary, owner: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Moves the digest from PENDING to PUBLISHING for `owner`; returns the state found
    /// when it was not PENDING (then nothing is changed).
    fn claim_digest(
        &self,
        task_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<Option<crate::summary::DigestState>, PortError>> + Send;
    /// Stores the digest item and the final digest state.
    fn record_digest(
        &self,
        outline: &TaskOutline,
        digest: Option<&Digest>,
        state: crate::summary::DigestState,
        message_id: Option<&str>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Gives the lease up (after a checkpoint handed the task to a continuation).
    fn release(&self, task_id: &str, owner: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The summary of a task, if stored.
    fn load(&self, task_id: &str) -> impl Future<Output = Result<Option<TaskSummary>, PortError>> + Send;
    /// The latest COMPLETED and fully ingested run of `stream` that started before
    /// `before_ms` (ties broken by task id).
    fn previous_run(
        &self,
        stream: &str,
        before_ms: i64,
        task_id: &str,
    ) -> impl Future<Output = Result<Option<TaskSummary>, PortError>> + Send;
    /// The latest `n` runs of `stream` started before `before_ms` (any status), newest first.
    fn recent_runs(
        &self,
        stream: &str,
        before_ms: i64,
        n: usize,
    ) -> impl Future<Output = Result<Vec<RunRecord>, PortError>> + Send;
    /// Records where the task's lifecycle step stands.
    fn set_lifecycle(&self, task_id: &str, state: LifecycleState)
        -> impl Future<Output = Result<(), PortError>> + Send;
}

/// One ingested run of an audit stream, as the run history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub task_id: String,
    pub task_status: TaskStatus,
    pub task_start_time: i64,
    /// Open (not muted) findings per severity.
    pub open: BTreeMap<String, i64>,
    /// None of its findings could be read: not a run of the history (never a previous run or
    /// a point of the trend), listed so that people see it.
    pub not_read: bool,
}

/// A finding's episode: when it was first and last seen, when resolved, how often it came back,
/// with the finding as first seen (its details: reason, related resources …).
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub stream: String,
    pub finding: Finding,
    /// The flattened resource key (`field=value|…`).
    pub resource_key: String,
    /// Start of the first run of this episode (epoch ms).
    pub first_seen: i64,
    /// Start of the last run that had it, once resolved.
    pub last_seen: Option<i64>,
    /// Start of the first run without it; `None` while open.
    pub resolved_at: Option<i64>,
    /// Earlier episodes of the same finding, oldest first, as (first seen, resolved at), at most
    /// [`crate::lifecycle::MAX_EPISODE_HISTORY`].
    pub history: Vec<(i64, i64)>,
    /// Times it came back after being resolved (can exceed `history`'s length).
    pub came_back: u32,
    /// Muted now (suppressed in Device Defender).
    pub suppressed: bool,
    /// Start of the run that last muted or unmuted it.
    pub muted_changed_at: Option<i64>,
}

impl Episode {
    /// The stable hash of check + resource (see [`crate::lifecycle::finding_hash`]).
    pub fn hash(&self) -> u64 {
        crate::lifecycle::finding_hash(self.finding.check_name.as_str(), &self.resource_key)
    }

    /// When the previous episode was resolved, if this one came back.
    pub fn previous_resolved(&self) -> Option<i64> {
        self.history.last().map(|(_, r)| *r).filter(|_| self.came_back > 0)
    }

    /// A new episode for a finding, or the next one of a finding that came back (`closed`: its
    /// resolved episode, whose history it carries on).
    pub fn open(stream: &str, finding: &Finding, run_start: i64, closed: Option<&Episode>) -> Episode {
        let (history, came_back) = match closed {
            Some(c) => {
                let mut h = c.history.clone();
                h.push((c.first_seen, c.resolved_at.unwrap_or(run_start)));
                let skip = h.len().saturating_sub(crate::lifecycle::MAX_EPISODE_HISTORY);
                (h.split_off(skip), c.came_back + 1)
            }
            None => (Vec::new(), 0),
        };
        Episode {
            stream: stream.to_owned(),
            resource_key: finding.resource_key(),
            finding: finding.clone(),
            first_seen: run_start,
            last_seen: None,
            resolved_at: None,
            history,
            came_back,
            suppressed: finding.is_suppressed,
            muted_changed_at: None,
        }
    }

    /// Whether the run started at `run_start` had this finding (this episode or an earlier one
    /// covers it): how "what did task X find" is answered from episodes.
    pub fn covers(&self, run_start: i64) -> bool {
        let within = |first: i64, resolved: Option<i64>| first <= run_start && resolved.is_none_or(|r| run_start < r);
        within(self.first_seen, self.resolved_at) || self.history.iter().any(|(f, r)| within(*f, Some(*r)))
    }

    /// What a run loads of an open episode.
    pub fn open_view(&self) -> OpenEpisode {
        OpenEpisode {
            hash: self.hash(),
            check_name: self.finding.check_name.to_string(),
            severity: self.finding.severity.clone(),
            first_seen: self.first_seen,
            previous_resolved: self.previous_resolved(),
            suppressed: self.suppressed,
            muted_changed_at: self.muted_changed_at,
        }
    }
}

/// What one stored page changes in its stream's episodes: O(changes) writes plus one small
/// record of the persisting findings it saw (so a continuation knows them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageChanges {
    pub check_name: String,
    /// The page's number within its check (0-based): the key of its seen record.
    pub page: i64,
    /// Episodes opened (a came-back one carries its history; its resolved item is removed).
    pub opened: Vec<Episode>,
    /// Open episodes muted (`true`) or unmuted (`false`) by this run.
    pub muted: Vec<(u64, bool)>,
    /// Open episodes this page saw again.
    pub seen: Vec<u64>,
}

/// Whether a run may advance its stream's episodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamLock {
    /// This run holds the stream; what the stream's head says of the runs applied before
    /// (which of this run's checks are late is decided from it: [`StreamHead::standing`]).
    Acquired { head: StreamHead },
    /// Another run of the stream is applying its changes until `until` (epoch ms).
    Busy { holder: String, until: i64 },
}

/// The episodes of every audit stream (in the findings table).
pub trait EpisodeStore: Send + Sync {
    /// One page of the open episodes of one shard of a stream.
    fn open_page(
        &self,
        stream: &str,
        shard: u32,
        cursor: Option<Cursor>,
    ) -> impl Future<Output = Result<(Vec<OpenEpisode>, Option<Cursor>), PortError>> + Send;
    /// One page of the findings a task's earlier slices saw again (their seen records).
    fn seen_page(
        &self,
        task_id: &str,
        cursor: Option<Cursor>,
    ) -> impl Future<Output = Result<(Vec<u64>, Option<Cursor>), PortError>> + Send;
    /// The resolved episodes among `hashes` (a finding seen again may be coming back).
    fn resolved_episodes(
        &self,
        stream: &str,
        hashes: &[u64],
    ) -> impl Future<Output = Result<Vec<Episode>, PortError>> + Send;
    /// The open episodes among `hashes` (what a digest lists).
    fn open_episodes(
        &self,
        stream: &str,
        hashes: &[u64],
    ) -> impl Future<Output = Result<Vec<Episode>, PortError>> + Send;
    /// Writes one page's changes (idempotent: writing a page twice leaves the same items).
    fn record_page(
        &self,
        stream: &str,
        task_id: &str,
        run_start: i64,
        changes: &PageChanges,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Closes the open episodes `hashes` at `run_start` (last seen `last_seen`); already closed
    /// ones are skipped.
    fn resolve(
        &self,
        stream: &str,
        run_start: i64,
        last_seen: Option<i64>,
        hashes: &[u64],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Takes the stream for the run (`task_id`, `run_start`) until `until` (epoch ms); see
    /// [`StreamLock`]. Taking it again while holding it extends it.
    fn lock_stream(
        &self,
        stream: &str,
        task_id: &str,
        run_start: i64,
        now_ms: i64,
        until: i64,
    ) -> impl Future<Output = Result<StreamLock, PortError>> + Send;
    /// Records the run as the last applied run of each of `checks` (and as the stream's latest
    /// when `latest`) and lets the stream go, in one write.
    fn unlock_stream(
        &self,
        stream: &str,
        task_id: &str,
        run_start: i64,
        checks: &[String],
        latest: bool,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Lets the stream go without recording anything (the run applied nothing).
    fn release_stream(&self, stream: &str, task_id: &str) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// What the hub knows of one member account-region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub member: crate::member::Member,
    /// When its last audit notification arrived (epoch ms).
    pub last_notified: Option<i64>,
    /// Start of the latest audit it notified (epoch ms): what silence is measured from.
    pub last_audit_start: Option<i64>,
    /// That audit's task and stream.
    pub last_task: Option<String>,
    pub last_stream: Option<String>,
    /// Every audit stream it ever notified.
    pub streams: Vec<String>,
    /// Why its findings could not be read the last time they were tried (its role cannot be
    /// assumed, …), and when; cleared by the next read that works.
    pub problem: Option<String>,
    pub problem_at: Option<i64>,
    /// The hub's own account-region (its keys are unprefixed: see
    /// [`crate::member::Member::key_prefix`]); recorded with each of its notifications.
    pub home: bool,
    /// When it joined: its subscription of the hub's queue was confirmed, or its first
    /// notification arrived (epoch ms). Set again when a retired member comes back.
    pub joined_at: Option<i64>,
    /// Its scheduled audits, as last read from its account; `None` before the hub read them.
    pub schedules: Option<Vec<crate::membership::AuditSchedule>>,
    /// Set when it was retired.
    pub retired: Option<crate::membership::Retirement>,
}

/// Whether an invocation may read a member's findings now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderLease {
    /// Taken: this invocation is the only one reading the member until it gives the lease back
    /// or `until` passes.
    Taken,
    /// Another invocation reads the member until `until` (epoch ms).
    Busy { holder: String, until: i64 },
}

/// The hub's record of its members (in the findings table): which exist, when each last sent a
/// notification, what is wrong with one, and which invocation reads each (the per account-region
/// quota of ListAuditFindings belongs to one reader at a time).
pub trait MemberStore: Send + Sync {
    /// Records that `member`'s audit `task_id` of `stream`, started at `task_start`, was
    /// notified at `at_ms`.
    fn note_notification(
        &self,
        member: &crate::member::Member,
        task_id: &str,
        stream: &str,
        task_start: i64,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Records a problem with `member` (`Some`), or that it is gone (`None`).
    fn note_problem(
        &self,
        member: &crate::member::Member,
        problem: Option<&str>,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Takes `member`'s reader lease for `owner` until `until` (epoch ms); an expired lease is
    /// taken over.
    fn take_reader(
        &self,
        member: &crate::member::Member,
        owner: &str,
        now_ms: i64,
        until: i64,
    ) -> impl Future<Output = Result<ReaderLease, PortError>> + Send;
    /// Extends `member`'s reader lease to `until` if `owner` still holds it: false when it was
    /// given back or taken over. A renewal never takes a free lease, so one that reaches the
    /// table after the release (the work ended while it was in flight) leaves the lease free.
    fn renew_reader(
        &self,
        member: &crate::member::Member,
        owner: &str,
        until: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Gives `member`'s reader lease back, if `owner` holds it.
    fn release_reader(
        &self,
        member: &crate::member::Member,
        owner: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Every member recorded, by account and region.
    fn members(&self) -> impl Future<Output = Result<Vec<MemberRecord>, PortError>> + Send;
    /// Records that `member` joined at `at_ms` (its subscription of the hub's queue was
    /// confirmed): the first time sets when it joined; a retired member is back.
    fn note_joined(
        &self,
        member: &crate::member::Member,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Records `member`'s scheduled audits, read from its account at `at_ms`.
    fn note_schedules(
        &self,
        member: &crate::member::Member,
        schedules: &[crate::membership::AuditSchedule],
        at_ms: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Retires `member` at `at_ms` for `reason`, unless it is retired already: true when this
    /// call retired it.
    fn retire(
        &self,
        member: &crate::member::Member,
        reason: &str,
        at_ms: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Records that a roll-up listed `member`'s retirement (of `at_ms`): later ones leave it out.
    fn note_retirement_reported(
        &self,
        member: &crate::member::Member,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The organization's accounts (AWS Organizations `ListAccounts`).
pub trait OrganizationAccounts: Send + Sync {
    /// Every account of the organization with its status; `Permanent` when the hub may not
    /// list them (it is neither the management account nor allowed by a delegation policy).
    fn accounts(&self) -> impl Future<Output = Result<Vec<crate::membership::OrgAccount>, PortError>> + Send;
}

/// Reads a member's audit configuration (through its hub-access role).
pub trait SetupProbe: Send + Sync {
    /// `member`'s audit configuration; `Permanent` when the member cannot be read (its role).
    fn member_setup(
        &self,
        member: &crate::member::Member,
    ) -> impl Future<Output = Result<crate::member::MemberSetup, PortError>> + Send;
}

/// What the organization roll-up reads and keeps (in the findings table).
pub trait RollupStore: Send + Sync {
    /// The runs of `member`'s `stream`, newest first: every one started after `since`, and
    /// those before it down to the first COMPLETED one (at most `limit` in all), with their
    /// digests' counts.
    fn stream_runs(
        &self,
        member: &crate::member::Member,
        stream: &str,
        since: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<crate::rollup::RunDigest>, PortError>> + Send;
    /// When the last roll-up was made (epoch ms).
    fn last_rollup(&self) -> impl Future<Output = Result<Option<i64>, PortError>> + Send;
    /// Keeps a roll-up (the next one counts new and resolved from its time).
    fn save_rollup(&self, rollup: &crate::rollup::Rollup) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The digest SNS topic.
pub trait DigestPublisher: Send + Sync {
    /// Publishes and returns the SNS message id.
    fn publish(
        &self,
        subject: &str,
        body: &str,
        attributes: &[(String, &'static str, String)],
    ) -> impl Future<Output = Result<String, PortError>> + Send;
}

/// The continuation queue.
pub trait ContinuationQueue: Send + Sync {
    /// Queues a continuation, delivered after `delay_secs` (0–900).
    fn enqueue(&self, c: &Continuation, delay_secs: u32) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Queues a subscription confirmation to try again after `delay_secs` (0–900).
    fn retry_confirmation(
        &self,
        p: &crate::confirmation::PendingConfirmation,
        delay_secs: u32,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// What a setup step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    Done,
    /// CreateScheduledAudit / UpdateScheduledAudit: the audit's ARN.
    AuditArn(String),
    /// StartOnDemandAuditTask: the task id.
    TaskId(String),
}

/// The audit configuration API, as config-sync needs it.
pub trait AuditSetupApi: Send + Sync {
    /// The account's configuration, every scheduled audit and its definition.
    fn read(&self) -> impl Future<Output = Result<ActualSetup, PortError>> + Send;
    /// Runs one plan step; `tags` go on created audits.
    fn apply(
        &self,
        step: &Step,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<StepResult, PortError>> + Send;
}

/// Where config-sync keeps its records (the findings table).
pub trait SetupStore: Send + Sync {
    fn load(&self, stack_id: &str) -> impl Future<Output = Result<Option<SetupRecord>, PortError>> + Send;
    fn save(&self, stack_id: &str, record: &SetupRecord) -> impl Future<Output = Result<(), PortError>> + Send;
    fn forget(&self, stack_id: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    /// True exactly once per `request_id`: whether this request may start an on-demand audit.
    fn claim_start(&self, request_id: &str) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Stores a drift record.
    fn put_drift(
        &self,
        stack_id: &str,
        found: &[String],
        repaired: bool,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
