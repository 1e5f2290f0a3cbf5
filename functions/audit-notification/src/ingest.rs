//! The ingest of one task: claim it, read every finding of every non-compliant check (checks
//! in parallel, under one client-side rate limit, reads overlapping writes), checkpoint after
//! each stored page, hand over to a continuation before the deadline, then complete the task
//! and send its digest exactly once.
//!
//! Idempotence: a finding's key is task + check + resource, so writing a page twice changes
//! nothing; progress (next token and stored count) moves only after its page is stored, so a
//! crash re-reads at most the pages since the last checkpoint and counts nothing twice. A lease
//! on the summary item keeps two invocations from working on one task; a busy task is looked at
//! again through the continuation queue.

use crate::config::Config;
use crate::metrics::IngestMetrics;
use audit_shared::chat_digest::render_chat;
use audit_shared::digest::{self, Changes, ChatDelivery, DigestFinding};
use audit_shared::finding::fnv1a;
use audit_shared::ports::{
    AuditReader, Claim, ContinuationQueue, DigestPublisher, FindingsPage, PortError, StoredKey, TaskStore,
};
use audit_shared::summary::{CheckProgress, DigestState, IngestState, TaskOutline, TaskSummary};
use audit_shared::work::{Continuation, Work};
use audit_shared::{TaskStatus, TaskType};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

/// The AWS side of the function.
pub struct Ports<R, S, P, Q> {
    /// Device Defender's audit API.
    pub reader: R,
    /// The findings table.
    pub store: S,
    /// The digest topic (mail).
    pub publisher: P,
    /// The chat topic (AWS Chatbot custom notifications), when configured.
    pub chat: Option<P>,
    /// The continuation queue.
    pub queue: Q,
}

/// What became of one unit of work.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Ingested (now or before) and the digest step done.
    Complete { digest: DigestState, stored: i64 },
    /// Stopped at a checkpoint; a continuation is queued.
    Continued,
    /// Another invocation holds the task; a later look is queued.
    Busy,
    /// Already complete: a duplicate delivery.
    Duplicate,
    /// Nothing to do (e.g. the task no longer exists).
    Skipped(String),
}

/// Spaces calls evenly at a rate shared by every reader.
pub struct RateLimiter {
    next: Mutex<Instant>,
    period: Duration,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Self {
        RateLimiter { next: Mutex::new(Instant::now()), period: Duration::from_secs_f64(1.0 / per_second) }
    }

    /// Waits for the next slot.
    pub async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let at = (*next).max(Instant::now());
            *next = at + self.period;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

enum Msg {
    Page(FindingsPage),
    /// The page token was refused: start the check again from its first page.
    Restart,
}

/// The ingest service, generic over its ports.
pub struct Ingestor<R, S, P, Q> {
    pub ports: Arc<Ports<R, S, P, Q>>,
    pub config: Config,
    pub region: String,
}

impl<R, S, P, Q> Ingestor<R, S, P, Q>
where
    R: AuditReader + 'static,
    S: TaskStore + 'static,
    P: DigestPublisher + 'static,
    Q: ContinuationQueue + 'static,
{
    pub fn new(ports: Ports<R, S, P, Q>, config: Config, region: String) -> Self {
        Ingestor { ports: Arc::new(ports), config, region }
    }

    /// Does one unit of work, stopping by `deadline` (the Lambda's, minus the margin).
    pub async fn process(&self, work: Work, deadline: Instant, owner: &str) -> Result<Outcome, PortError> {
        let started = Instant::now();
        let slice_end = match self.config.max_slice {
            Some(s) => deadline.min(started + s),
            None => deadline,
        };
        let task_id = work.task_id().to_owned();
        let outline = match self.outline(&work).await? {
            Ok(o) => o,
            Err(reason) => {
                warn!(task_id, reason, "skipped");
                return Ok(Outcome::Skipped(reason));
            }
        };
        let fresh = TaskSummary::new(outline, now_ms());
        let claim = self.ports.store.claim(&fresh, owner, now_ms(), self.config.lease.as_millis() as i64).await?;
        let mut summary = match claim {
            Claim::Done(s) => {
                info!(task_id, digest = ?s.digest, "duplicate: task already ingested");
                return Ok(Outcome::Duplicate);
            }
            Claim::Busy { owner: holder, until } => {
                let delay = ((until - now_ms()) / 1000 + 2).clamp(1, 900) as u32;
                info!(task_id, holder, delay, "task busy in another invocation: looking again later");
                self.ports.queue.enqueue(&Continuation::new(&task_id, "lease-busy"), delay).await?;
                return Ok(Outcome::Busy);
            }
            Claim::Acquired(s) => s,
        };
        let mut metrics = IngestMetrics::default();
        if summary.ingest == IngestState::Ingesting {
            let all_read = match self.read_checks(&mut summary, owner, slice_end, &mut metrics).await {
                Ok(done) => done,
                Err(e) => {
                    // Give the lease back so a retry need not wait for it to expire.
                    let _ = self.ports.store.release(&task_id, owner).await;
                    return Err(e);
                }
            };
            metrics.duration_ms = started.elapsed().as_millis() as u64;
            if !all_read {
                self.ports.queue.enqueue(&Continuation::new(&task_id, "deadline"), 0).await?;
                self.ports.store.release(&task_id, owner).await?;
                info!(
                    task_id,
                    pages = metrics.pages_read,
                    stored = metrics.findings_stored,
                    "checkpointed; continuing in a new invocation"
                );
                crate::metrics::emit(&task_id, &summary.outline.audit_stream(), &metrics);
                return Ok(Outcome::Continued);
            }
            summary.ingest = IngestState::Complete;
            summary.severity_counts = summary.compute_severity_counts();
            summary.completed_at = Some(now_ms());
            for c in &summary.outline.checks {
                if let Some(p) = summary.progress.get(c.check_name.as_str()) {
                    if p.stored != c.non_compliant {
                        warn!(task_id, check = %c.check_name, reported = c.non_compliant, stored = p.stored,
                            "stored findings differ from the task's count");
                    }
                }
            }
            self.ports.store.complete(&summary, owner).await?;
            metrics.by_check = summary
                .progress
                .iter()
                .map(|(c, p)| (c.clone(), p.severity.as_ref().map_or("UNKNOWN".into(), |s| s.to_string()), p.stored))
                .collect();
            crate::metrics::emit(&task_id, &summary.outline.audit_stream(), &metrics);
            info!(task_id, status = %summary.outline.task_status, stored = summary.progress.values().map(|p| p.stored).sum::<i64>(),
                pages = summary.pages_read + metrics.pages_read as i64, throttled = metrics.throttles, "ingest complete");
        }
        let digest = self.send_digest(&summary, owner).await;
        let digest = match digest {
            Ok(d) => d,
            Err(e) => {
                let _ = self.ports.store.release(&task_id, owner).await;
                return Err(e);
            }
        };
        self.ports.store.release(&task_id, owner).await?;
        Ok(Outcome::Complete { digest, stored: summary.progress.values().map(|p| p.stored).sum() })
    }

    /// The task's outline: from the notification, or from DescribeAuditTask when the
    /// notification lacks check details or for a continuation without a stored summary.
    async fn outline(&self, work: &Work) -> Result<Result<TaskOutline, String>, PortError> {
        match work {
            Work::Notification(n) if !n.audit_details.is_empty() || n.total_checks_count == 0 => {
                Ok(Ok(TaskOutline::from(n)))
            }
            _ => {
                if let Some(s) = self.ports.store.load(work.task_id()).await? {
                    return Ok(Ok(s.outline));
                }
                match self.ports.reader.describe_task(work.task_id()).await {
                    Ok(o) if o.task_status.is_terminal() => Ok(Ok(o)),
                    Ok(o) => Ok(Err(format!("task is {}, not ended", o.task_status))),
                    Err(PortError::NotFound(m)) => Ok(Err(format!("task not found: {m}"))),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Reads the pending checks until done or `slice_end`. True when every check is done.
    async fn read_checks(
        &self,
        summary: &mut TaskSummary,
        owner: &str,
        slice_end: Instant,
        metrics: &mut IngestMetrics,
    ) -> Result<bool, PortError> {
        let limiter = Arc::new(RateLimiter::new(self.config.findings_rate_limit));
        let permits = Arc::new(Semaphore::new(self.config.read_concurrency));
        let outline = Arc::new(summary.outline.clone());
        let mut set = JoinSet::new();
        let throttled_before = self.ports.reader.throttled_attempts();
        for check in summary.pending_checks() {
            let progress = summary.progress[&check].clone();
            let (ports, limiter, permits, outline, owner) =
                (self.ports.clone(), limiter.clone(), permits.clone(), outline.clone(), owner.to_owned());
            let lease = self.config.lease;
            set.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("semaphore open");
                let r = read_check(ports, outline, check.clone(), progress, owner, limiter, slice_end, lease).await;
                (check, r)
            });
        }
        let mut first_err = None;
        while let Some(joined) = set.join_next().await {
            let (check, result) = joined.map_err(|e| PortError::Transient(format!("reader task failed: {e}")))?;
            match result {
                Ok((progress, pages, stored)) => {
                    metrics.pages_read += pages;
                    metrics.findings_stored += stored;
                    summary.pages_read += pages as i64;
                    summary.progress.insert(check, progress);
                }
                Err(e) => {
                    error!(task_id = %summary.outline.task_id, check, error = %e, "reading a check failed");
                    first_err = first_err.or(Some(e));
                }
            }
        }
        // Every reader has finished: the difference is this slice's (one invocation per process).
        metrics.throttles = self.ports.reader.throttled_attempts().saturating_sub(throttled_before);
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(summary.progress.values().all(|p| p.done))
    }

    fn wants_digest(&self, o: &TaskOutline) -> bool {
        let ended_with_results = matches!(o.task_status, TaskStatus::Completed | TaskStatus::Failed);
        ended_with_results && (o.task_type == TaskType::Scheduled || self.config.on_demand_digest)
    }

    /// Sends the digest at most once; see [`DigestState`].
    async fn send_digest(&self, summary: &TaskSummary, owner: &str) -> Result<DigestState, PortError> {
        let o = &summary.outline;
        let store = &self.ports.store;
        if !matches!(summary.digest, DigestState::Pending | DigestState::Publishing) {
            return Ok(summary.digest);
        }
        if !self.wants_digest(o) {
            store.record_digest(o, None, DigestState::NotWanted, None).await?;
            return Ok(DigestState::NotWanted);
        }
        match store.claim_digest(&o.task_id, owner).await? {
            None => {}
            Some(DigestState::Publishing) => {
                // An invocation died between claiming and recording: it may have published.
                let d = self.build_digest(summary).await?;
                store.record_digest(o, Some(&d), DigestState::Unconfirmed, None).await?;
                error!(task_id = %o.task_id, "digest state unknown after a crash: not sending it again (stored as DIGEST)");
                return Ok(DigestState::Unconfirmed);
            }
            Some(other) => return Ok(other),
        }
        let built = self.build_digest(summary).await;
        let d = match built {
            Ok(d) => d,
            Err(e) => {
                store.record_digest(o, None, DigestState::Pending, None).await?;
                return Err(e);
            }
        };
        let mut d = d;
        let body = digest::render_text(&d, digest::MAX_BODY_BYTES);
        let attributes = digest::message_attributes(&d);
        match self.ports.publisher.publish(&d.subject, &body, &attributes).await {
            Ok(id) => {
                // The chat digest goes out only after the mail digest did, once per claim: a
                // failure is recorded and logged, never retried (it may have reached SNS).
                if let Some(chat) = &self.ports.chat {
                    let delivery = match chat.publish(&d.subject, &render_chat(&d), &attributes).await {
                        Ok(chat_id) => ChatDelivery::Sent(chat_id),
                        Err(e) => {
                            error!(task_id = %o.task_id, error = %e, "chat digest not published (the mail digest was)");
                            ChatDelivery::Failed(e.to_string())
                        }
                    };
                    d.chat = Some(delivery);
                }
                store.record_digest(o, Some(&d), DigestState::Sent, Some(&id)).await?;
                info!(task_id = %o.task_id, subject = %d.subject, message_id = %id, new = d.new_count,
                    resolved = d.resolved_count, persisting = d.persisting_count, "digest sent");
                Ok(DigestState::Sent)
            }
            Err(e) => {
                store.record_digest(o, None, DigestState::Pending, None).await?;
                Err(e)
            }
        }
    }

    /// Compares the stored findings with the previous run of the same audit (by check + resource).
    async fn build_digest(&self, summary: &TaskSummary) -> Result<digest::Digest, PortError> {
        let o = &summary.outline;
        let store = &self.ports.store;
        let mut changes = Changes::default();
        let previous = if o.task_status == TaskStatus::Completed {
            store.previous_run(&o.audit_stream(), o.task_start_time, &o.task_id).await?
        } else {
            None
        };
        if o.task_status == TaskStatus::Completed {
            let hash = |k: &StoredKey| fnv1a(&format!("{}#{}", k.check_name, k.resource_key));
            let listed = |k: StoredKey| DigestFinding {
                severity: k.severity,
                check_name: k.check_name,
                resource_type: k.resource_type,
                resource_key: k.resource_key,
            };
            // Previous run: each finding and whether it was muted (suppressed).
            let mut before: HashMap<u64, bool> = HashMap::new();
            if let Some(p) = &previous {
                each_key(store, &p.outline.task_id, |k| {
                    before.insert(hash(&k), k.suppressed);
                })
                .await?;
            }
            // This run: muted ones are only counted as muted; one muted before and open now is
            // "unmuted", never new.
            let mut now: HashSet<u64> = HashSet::new();
            each_key(store, &o.task_id, |k| {
                let h = hash(&k);
                now.insert(h);
                if k.suppressed {
                    changes.add_muted(k.severity.clone());
                    return;
                }
                match before.get(&h) {
                    Some(false) => changes.persisting += 1,
                    Some(true) => changes.add_unmuted(listed(k)),
                    None => changes.add_new(listed(k)),
                }
            })
            .await?;
            // Resolved: open (not muted) before, gone now. A muted finding that went away, or
            // one open before and muted now, is not a resolution.
            if let Some(p) = &previous {
                each_key(store, &p.outline.task_id, |k| {
                    if !k.suppressed && !now.contains(&hash(&k)) {
                        changes.add_resolved(listed(k));
                    }
                })
                .await?;
            }
        }
        let mut d = digest::build(summary, previous.as_ref(), changes, &self.region);
        // A digest without the suppression list is still worth sending: the error is shown.
        let listed = self.ports.reader.list_suppressions().await.map_err(|e| {
            warn!(task_id = %o.task_id, error = %e, "suppressions not listed for the digest");
            e.to_string()
        });
        // "Expiring soon" is measured from the audit's start (what the digest describes).
        digest::add_suppressions(&mut d, listed, o.task_start_time);
        Ok(d)
    }
}

/// Visits every stored finding key of a task, page by page (bounded memory).
async fn each_key<S: TaskStore>(store: &S, task_id: &str, mut visit: impl FnMut(StoredKey)) -> Result<(), PortError> {
    let mut cursor = None;
    loop {
        let (keys, next) = store.finding_keys(task_id, cursor).await?;
        keys.into_iter().for_each(&mut visit);
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(()),
        }
    }
}

/// Reads one check page by page until done or `slice_end`; a writer stores each page and then
/// checkpoints it, so reading page n+1 overlaps storing page n. Returns the final progress,
/// pages read and findings stored in this slice.
#[allow(clippy::too_many_arguments)]
async fn read_check<R, S, P, Q>(
    ports: Arc<Ports<R, S, P, Q>>,
    outline: Arc<TaskOutline>,
    check: String,
    progress: CheckProgress,
    owner: String,
    limiter: Arc<RateLimiter>,
    slice_end: Instant,
    lease: Duration,
) -> Result<(CheckProgress, u64, u64), PortError>
where
    R: AuditReader + 'static,
    S: TaskStore + 'static,
    P: DigestPublisher + 'static,
    Q: ContinuationQueue + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Msg>(2);
    let writer = {
        let (ports, outline, check, owner) = (ports.clone(), outline.clone(), check.clone(), owner.clone());
        let mut progress = progress.clone();
        tokio::spawn(async move {
            let mut stored = 0u64;
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Restart => progress = CheckProgress::default(),
                    Msg::Page(page) => {
                        ports.store.put_findings(&outline, &page.findings).await?;
                        progress.stored += page.findings.len() as i64;
                        stored += page.findings.len() as u64;
                        if progress.severity.is_none() {
                            progress.severity = page.findings.first().map(|f| f.severity.clone());
                        }
                        progress.done = page.next_token.is_none();
                        progress.next_token = page.next_token;
                    }
                }
                let until = now_ms() + lease.as_millis() as i64;
                ports.store.checkpoint(&outline.task_id, &owner, &check, &progress, 1, until).await?;
            }
            Ok::<_, PortError>((progress, stored))
        })
    };
    let mut token = progress.next_token.clone();
    let mut pages = 0u64;
    let mut failure = None;
    while Instant::now() < slice_end {
        limiter.wait().await;
        match ports.reader.list_findings(&outline.task_id, &check, token.clone()).await {
            Ok(page) => {
                pages += 1;
                let next = page.next_token.clone();
                if tx.send(Msg::Page(page)).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
                match next {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            Err(PortError::InvalidToken(m)) if token.is_some() => {
                warn!(task_id = %outline.task_id, check, reason = %m, "page token refused: reading the check again from the start");
                token = None;
                if tx.send(Msg::Restart).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let (progress, stored) = writer.await.map_err(|e| PortError::Transient(format!("writer task failed: {e}")))??;
    match failure {
        Some(e) => Err(e),
        None => Ok((progress, pages, stored)),
    }
}
