//! The ingest of one task: claim it, take its audit stream (one run at a time advances a
//! stream's episodes), read every finding of every non-compliant check (checks in parallel,
//! under one client-side rate limit, reads overlapping writes) while the stream's open episodes
//! load, write what changed page by page (new episodes, mute changes, a seen record) and
//! checkpoint, hand over to a continuation before the deadline, then complete the task, send its
//! digest at most once — every count of it known when the last page is read — and only then
//! close the episodes this run resolved and let the stream go.
//!
//! Idempotence: every write is keyed by stream + finding or task + page, so writing a page twice
//! changes nothing; progress (next token and counts) moves only after its page is written, so a
//! crash re-reads at most the pages since the last checkpoint. A run's view is rebuilt exactly
//! from what it wrote (episodes first seen at its start, seen records): see
//! `audit_shared::lifecycle`. A lease on the summary item keeps two invocations from working on
//! one task; a busy task or stream is looked at again through the continuation queue.

use crate::config::Config;
use crate::metrics::IngestMetrics;
use crate::read_ahead::{HeldPage, ReadAhead, READ_AHEAD_BYTES};
use crate::run_view::{self, RunView};
use crate::unread;
use audit_shared::ports::{
    AuditReader, Claim, ContinuationQueue, DigestPublisher, EpisodeStore, PortError, StreamLock, TaskStore,
};
use audit_shared::stall::{stall_reason, StallStep};
use audit_shared::stream_head::{RunStanding, StreamHead};
use audit_shared::summary::{CheckProgress, DigestState, IngestState, LifecycleState, TaskOutline, TaskSummary};
use audit_shared::work::{Continuation, Work};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

/// The AWS side of the function.
pub struct Ports<R, S, E, P, Q> {
    /// Device Defender's audit API.
    pub reader: R,
    /// The findings table: tasks.
    pub store: S,
    /// The findings table: the episodes of every audit stream (shared with the shard readers).
    pub episodes: Arc<E>,
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

/// How long a run holds its audit stream without taking it again (each slice does).
pub const STREAM_HOLD_MS: i64 = 30 * 60 * 1000;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

enum Msg {
    /// A page, held in the read-ahead budget until written.
    Page(HeldPage),
    /// The page token was refused: start the check again from its first page.
    Restart,
}

/// The ingest service, generic over its ports.
pub struct Ingestor<R, S, E, P, Q> {
    pub ports: Arc<Ports<R, S, E, P, Q>>,
    pub config: Config,
    /// The region of the audits it reads (digests link to its console).
    pub region: String,
    /// The member account-region it reads, when not the hub's own (continuations name it;
    /// digests say whose they are).
    pub member: Option<audit_shared::member::Member>,
}

impl<R, S, E, P, Q> Ingestor<R, S, E, P, Q>
where
    R: AuditReader + 'static,
    S: TaskStore + 'static,
    E: EpisodeStore + 'static,
    P: DigestPublisher + 'static,
    Q: ContinuationQueue + 'static,
{
    pub fn new(ports: Ports<R, S, E, P, Q>, config: Config, region: String) -> Self {
        Ingestor { ports: Arc::new(ports), config, region, member: None }
    }

    /// The same ingestor, reading `member` (`None`: the hub's own account-region).
    pub fn of_member(mut self, member: Option<audit_shared::member::Member>) -> Self {
        self.member = member;
        self
    }

    /// Does one unit of work, stopping by `deadline` (the Lambda's, minus the margin).
    pub async fn process(&self, work: Work, deadline: Instant, owner: &str) -> Result<Outcome, PortError> {
        let started = Instant::now();
        let slice_end = match self.config.max_slice {
            Some(s) => deadline.min(started + s),
            None => deadline,
        };
        let task_id = work.task_id().to_owned();
        let stalled_before = match &work {
            Work::Continue(c) => c.stalled,
            Work::Notification(_) => 0,
        };
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
                self.ports
                    .queue
                    .enqueue(
                        &Continuation::new(&task_id, "lease-busy").of(self.member.clone()).stalled(stalled_before),
                        delay,
                    )
                    .await?;
                return Ok(Outcome::Busy);
            }
            Claim::Acquired(s) => s,
        };
        let stream = match self.take_stream(&mut summary, owner, stalled_before).await {
            Ok(Some(stream)) => stream,
            Ok(None) => return Ok(Outcome::Busy),
            Err(e) => {
                let _ = self.ports.store.release(&task_id, owner).await;
                return Err(e);
            }
        };
        let mut metrics = IngestMetrics::default();
        let mut view: Option<RunView> = None;
        let mut prefetch = None;
        if summary.ingest == IngestState::Ingesting {
            prefetch = self.prefetch_digest(&summary);
            let read = self.read_checks(&mut summary, owner, slice_end, &mut metrics, &stream).await;
            let mut all_read = match read {
                Ok((done, v)) => {
                    view = v;
                    done
                }
                Err(e) => {
                    // Give the lease back so a retry need not wait for it to expire.
                    let _ = self.ports.store.release(&task_id, owner).await;
                    return Err(e);
                }
            };
            metrics.duration_ms = started.elapsed().as_millis() as u64;
            // An invocation that read no page does not hand over at once (see `stall`).
            let stall = match metrics.pages_read {
                0 if !all_read => Some(self.config.stall.after(stalled_before)),
                _ => None,
            };
            if let Some(StallStep::GiveUp { stalled }) = stall {
                let why = stall_reason(stalled, slice_end.saturating_duration_since(started).as_millis() as u64);
                error!(task_id, stalled, reason = %why, "reading stops: the digest names the checks not read");
                let pending = summary.pending_checks();
                unread::withhold(&mut summary, &mut view, &pending, &why);
                all_read = true;
            }
            if !all_read {
                let (stalled, delay) = match stall {
                    Some(StallStep::Retry { stalled, delay_secs }) => (stalled, delay_secs),
                    _ => (0, 0),
                };
                let next = Continuation::new(&task_id, "deadline").of(self.member.clone()).stalled(stalled);
                self.ports.queue.enqueue(&next, delay).await?;
                self.ports.store.release(&task_id, owner).await?;
                if stalled > 0 {
                    warn!(task_id, stalled, delay, "no page read before the deadline: continuing after a delay");
                } else {
                    info!(
                        task_id,
                        pages = metrics.pages_read,
                        stored = metrics.findings_stored,
                        "checkpointed; continuing in a new invocation"
                    );
                }
                crate::metrics::emit(&task_id, &summary.outline.audit_stream(), &metrics);
                return Ok(Outcome::Continued);
            }
            unread::withhold_empty_reads(&self.ports.reader, &mut summary, &mut view).await;
            if summary.lifecycle == LifecycleState::Pending && summary.applied_checks().is_empty() {
                // Nothing read to apply: the run changes no episode.
                let o = &summary.outline;
                self.ports.episodes.release_stream(&o.audit_stream(), &o.task_id).await?;
                // Stored by `complete` below, with the checks not read.
                summary.lifecycle = LifecycleState::NotTracked;
                view = None;
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
        let digest = self.send_digest(&summary, owner, &mut view, prefetch).await;
        let digest = match digest {
            Ok(d) => d,
            Err(e) => {
                let _ = self.ports.store.release(&task_id, owner).await;
                return Err(e);
            }
        };
        if summary.lifecycle == LifecycleState::Pending {
            if let Err(e) = self.close_episodes(&summary, &mut view, &stream).await {
                let _ = self.ports.store.release(&task_id, owner).await;
                return Err(e);
            }
        }
        self.ports.store.release(&task_id, owner).await?;
        Ok(Outcome::Complete { digest, stored: summary.progress.values().map(|p| p.stored).sum() })
    }

    /// Takes the task's audit stream when the task advances it (COMPLETED, lifecycle pending):
    /// `None` when another run holds it (a later look is queued and the lease given back).
    /// Lateness is per check: the checks a run started no earlier applied first are late (not
    /// read, named in the digest); a run late for every check changes no episode.
    /// `stalled`: invocations in a row that read nothing before this one (a later look keeps it).
    async fn take_stream(
        &self,
        summary: &mut TaskSummary,
        owner: &str,
        stalled: u32,
    ) -> Result<Option<StreamRun>, PortError> {
        let o = &summary.outline;
        if summary.lifecycle != LifecycleState::Pending {
            return Ok(Some(StreamRun::default()));
        }
        let (stream, now) = (o.audit_stream(), now_ms());
        let head = match self
            .ports
            .episodes
            .lock_stream(&stream, &o.task_id, o.task_start_time, now, now + STREAM_HOLD_MS)
            .await?
        {
            StreamLock::Acquired { head } => head,
            StreamLock::Busy { holder, until } => {
                let delay = ((until - now) / 1000 + 2).clamp(1, 60) as u32;
                info!(task_id = %o.task_id, stream, holder, delay, "another run of this audit is being applied: looking again later");
                self.ports
                    .queue
                    .enqueue(
                        &Continuation::new(&o.task_id, "stream-busy").of(self.member.clone()).stalled(stalled),
                        delay,
                    )
                    .await?;
                self.ports.store.release(&o.task_id, owner).await?;
                return Ok(None);
            }
        };
        let completed = summary.completed_checks();
        let (apply, late) = match head.standing(&o.task_id, o.task_start_time, &completed) {
            RunStanding::AlreadyApplied => {
                // A retry after the release went through: the run is applied.
                self.ports.episodes.release_stream(&stream, &o.task_id).await?;
                self.ports.store.set_lifecycle(&o.task_id, LifecycleState::Applied).await?;
                summary.lifecycle = LifecycleState::Applied;
                return Ok(Some(StreamRun::default()));
            }
            RunStanding::Applies { apply, late } => (apply, late),
        };
        if !late.is_empty() {
            let later: Vec<String> = late.iter().map(|(c, r)| format!("{c} (task {})", r.task_id)).collect();
            warn!(task_id = %o.task_id, stream, late = ?later,
                "checks a run started no earlier applied first: not applied by this run");
        }
        summary.set_late(late);
        if apply.is_empty() {
            // Nothing is read, so nothing else would notice a task the account does not know:
            // its checks were not run later, they cannot be read at all.
            if let Some(why) = unread::unknown_task(&self.ports.reader, &summary.outline.task_id).await {
                warn!(task_id = %summary.outline.task_id, reason = %why, "findings not read: no check is applied");
                summary.late_checks.clear();
                completed.iter().for_each(|c| summary.set_unread(c, &why));
            }
            self.ports.episodes.release_stream(&stream, &summary.outline.task_id).await?;
            // Stored with the summary when the task completes (the checks not applied with it),
            // so that a retry before then decides again and the same way.
            summary.lifecycle = LifecycleState::NotTracked;
            return Ok(Some(StreamRun::default()));
        }
        Ok(Some(StreamRun { head }))
    }

    /// Closes the episodes this run resolved (after its digest: they are counted already), then
    /// records the run as its checks' last applied one and lets the stream go.
    async fn close_episodes(
        &self,
        summary: &TaskSummary,
        view: &mut Option<RunView>,
        stream: &StreamRun,
    ) -> Result<(), PortError> {
        let o = &summary.outline;
        let v = match view {
            Some(v) => v,
            None => view.insert(run_view::load(&self.ports.episodes, summary).await?),
        };
        let name = o.audit_stream();
        let mut resolved = 0;
        for (check, hashes) in v.set.resolved_by_check() {
            let last_seen = stream.head.last_seen(&check, o.task_start_time);
            self.ports.episodes.resolve(&name, o.task_start_time, last_seen, &hashes).await?;
            resolved += hashes.len();
        }
        let latest = stream.head.is_latest(o.task_start_time);
        let applied = summary.applied_checks();
        self.ports.episodes.unlock_stream(&name, &o.task_id, o.task_start_time, &applied, latest).await?;
        self.ports.store.set_lifecycle(&o.task_id, LifecycleState::Applied).await?;
        info!(task_id = %o.task_id, stream = name, resolved, "episodes closed; stream released");
        Ok(())
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

    /// Reads the pending checks until done or `slice_end`, while the run's view of its stream
    /// loads (pages wait for it before they are classified). True when every check is done;
    /// the view when this run tracks its stream.
    async fn read_checks(
        &self,
        summary: &mut TaskSummary,
        owner: &str,
        slice_end: Instant,
        metrics: &mut IngestMetrics,
        stream: &StreamRun,
    ) -> Result<(bool, Option<RunView>), PortError> {
        if summary.lifecycle != LifecycleState::Pending {
            // Nothing to write: the run changes no episode (its counts are in its summary).
            for p in summary.progress.values_mut() {
                p.done = true;
                p.next_token = None;
            }
            return Ok((true, None));
        }
        let view = Arc::new(tokio::sync::Mutex::new(RunView::empty(summary)));
        let loader = {
            let guard = view.clone().try_lock_owned().expect("the view is new");
            let (ports, summary) = (self.ports.clone(), summary.clone());
            tokio::spawn(async move { run_view::load_into(&ports.episodes, &summary, guard).await })
        };
        let limiter = Arc::new(RateLimiter::new(self.config.findings_rate_limit));
        let permits = Arc::new(Semaphore::new(self.config.read_concurrency));
        let unwritten = ReadAhead::new(READ_AHEAD_BYTES);
        let outline = Arc::new(summary.outline.clone());
        let may_have_closed = stream.head.any_applied();
        let mut set = JoinSet::new();
        let throttled_before = self.ports.reader.throttled_attempts();
        for check in summary.pending_checks() {
            let progress = summary.progress[&check].clone();
            let (ports, limiter, permits, outline, owner, view, unwritten) = (
                self.ports.clone(),
                limiter.clone(),
                permits.clone(),
                outline.clone(),
                owner.to_owned(),
                view.clone(),
                unwritten.clone(),
            );
            let lease = self.config.lease;
            set.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("semaphore open");
                let ctx =
                    CheckReader { ports, outline, owner, limiter, view, unwritten, slice_end, lease, may_have_closed };
                let r = ctx.read(check.clone(), progress).await;
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
        // The loader is done once any page was classified; without pages, wait for it here.
        let loaded =
            loader.await.map_err(|e| PortError::Transient(format!("loading the open episodes failed: {e}")))?;
        // Every reader has finished: the difference is this slice's (one invocation per process).
        metrics.throttles = self.ports.reader.throttled_attempts().saturating_sub(throttled_before);
        if let Some(e) = first_err.or(loaded.err()) {
            return Err(e);
        }
        let view = Arc::try_unwrap(view).map_err(|_| PortError::Transient("the run view is still shared".into()))?;
        Ok((summary.progress.values().all(|p| p.done), Some(view.into_inner())))
    }
}

/// The stream as this run found it.
#[derive(Debug, Clone, Default)]
pub struct StreamRun {
    /// The stream's head when this run took it (empty when it does not hold the stream).
    pub head: StreamHead,
}

/// What reading one check needs.
struct CheckReader<R, S, E, P, Q> {
    ports: Arc<Ports<R, S, E, P, Q>>,
    outline: Arc<TaskOutline>,
    owner: String,
    limiter: Arc<RateLimiter>,
    view: Arc<tokio::sync::Mutex<RunView>>,
    /// Bounds the pages read but not yet written, all checks together.
    unwritten: ReadAhead,
    slice_end: Instant,
    lease: Duration,
    /// Whether resolved episodes may exist (a finding not open may be coming back).
    may_have_closed: bool,
}

impl<R, S, E, P, Q> CheckReader<R, S, E, P, Q>
where
    R: AuditReader + 'static,
    S: TaskStore + 'static,
    E: EpisodeStore + 'static,
    P: DigestPublisher + 'static,
    Q: ContinuationQueue + 'static,
{
    /// Reads one check page by page until done or `slice_end`; a writer writes each page's
    /// changes and then checkpoints it, so reading page n+1 overlaps writing page n. Returns
    /// the final progress, pages read and findings stored in this slice.
    async fn read(self, check: String, progress: CheckProgress) -> Result<(CheckProgress, u64, u64), PortError> {
        let (tx, mut rx) = mpsc::channel::<Msg>(PAGES_BUFFERED);
        let this = Arc::new(self);
        let writer = {
            let (this, check) = (this.clone(), check.clone());
            let mut progress = progress.clone();
            tokio::spawn(async move {
                let mut stored = 0u64;
                while let Some(msg) = rx.recv().await {
                    match msg {
                        Msg::Restart => {
                            progress = CheckProgress::default();
                            this.view.lock().await.set.restart_check();
                        }
                        Msg::Page(page) => {
                            let findings = page.findings()?;
                            run_view::write_page(
                                &this.ports.episodes,
                                &this.view,
                                &this.outline,
                                &check,
                                progress.pages,
                                &findings,
                                this.may_have_closed,
                            )
                            .await?;
                            progress.stored += findings.len() as i64;
                            progress.pages += 1;
                            stored += findings.len() as u64;
                            if progress.severity.is_none() {
                                progress.severity = findings.first().map(|f| f.severity.clone());
                            }
                            progress.done = page.next_token.is_none();
                            progress.next_token = page.next_token;
                        }
                    }
                    let until = now_ms() + this.lease.as_millis() as i64;
                    this.ports
                        .store
                        .checkpoint(&this.outline.task_id, &this.owner, &check, &progress, 1, until)
                        .await?;
                }
                Ok::<_, PortError>((progress, stored))
            })
        };
        let mut token = progress.next_token.clone();
        let mut pages = 0u64;
        let mut failure = None;
        while Instant::now() < this.slice_end {
            this.limiter.wait().await;
            match this.ports.reader.list_findings(&this.outline.task_id, &check, token.clone()).await {
                Ok(page) => {
                    pages += 1;
                    let next = page.next_token.clone();
                    let held = match this.unwritten.hold(page).await {
                        Ok(h) => h,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    };
                    if tx.send(Msg::Page(held)).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                    match next {
                        Some(t) => token = Some(t),
                        None => break,
                    }
                }
                Err(PortError::InvalidToken(m)) if token.is_some() => {
                    warn!(task_id = %this.outline.task_id, check, reason = %m, "page token refused: reading the check again from the start");
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
        let (progress, stored) =
            writer.await.map_err(|e| PortError::Transient(format!("writer task failed: {e}")))??;
        match failure {
            Some(e) => Err(e),
            None => Ok((progress, pages, stored)),
        }
    }
}

/// Pages a check's reader may be ahead of its writer (the bound that matters is the read-ahead
/// budget, [`READ_AHEAD_BYTES`]).
const PAGES_BUFFERED: usize = 64;
