//! The narrow interfaces the Lambdas need from AWS, in domain types. Real adapters live in
//! [`crate::aws`] (feature `aws`); tests run them against the emulator and DynamoDB Local.

use crate::digest::Digest;
use crate::finding::Finding;
use crate::setup::{ActualSetup, SetupRecord, Step};
use crate::summary::{CheckProgress, TaskOutline, TaskSummary};
use crate::vocabulary::{Severity, TaskStatus, TaskType};
use crate::work::Continuation;
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

/// A stored finding, as much as a digest comparison needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub check_name: String,
    pub resource_key: String,
    pub resource_type: String,
    pub severity: Severity,
    /// Suppressed in Device Defender when found: muted in digests.
    pub suppressed: bool,
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
    /// Writes finding items (idempotent: the key is task + check + resource).
    fn put_findings(
        &self,
        outline: &TaskOutline,
        findings: &[Finding],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
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
    /// One page of a task's stored finding keys.
    fn finding_keys(
        &self,
        task_id: &str,
        cursor: Option<Cursor>,
    ) -> impl Future<Output = Result<(Vec<StoredKey>, Option<Cursor>), PortError>> + Send;
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
