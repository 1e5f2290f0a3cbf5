//! The hub: one function serving every member account-region. Each member gets its own
//! [`Ingestor`] (its Device Defender reached through its hub-access role, its keys in the table
//! prefixed by account and region), built on first use and kept for the container's life.
//!
//! Per member, one invocation at a time reads findings (the reader lease): the
//! ListAuditFindings quota (10 calls/s) is per account and region, and each reader paces itself
//! at the whole of it. Other members are read in parallel by other invocations; Lambda's
//! concurrency bounds how many. The lease lasts `LEASE_MS` and is renewed every third of it
//! while the invocation works, so a dead invocation's lapses within one; an invocation that
//! finds it taken queues the task again for when it ends.
//!
//! A member whose findings cannot be read (its role cannot be assumed, the function may not
//! read it, …) is recorded with the reason on its member record, where the roll-up reports it;
//! its notification is dropped (retrying cannot fix a missing role) and no other member waits.

use crate::config::Config;
use crate::ingest::{now_ms, Ingestor, Outcome, Ports};
use audit_shared::confirmation::{PendingConfirmation, Retry};
use audit_shared::member::Member;
use audit_shared::ports::{
    AuditReader, ContinuationQueue, DigestPublisher, EpisodeStore, MemberStore, PortError, ReaderLease, TaskStore,
};
use audit_shared::work::{Continuation, Work};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tracing::{error, info, warn};

/// The ports of one member, being opened.
pub type MemberPorts<R, S, E, P, Q> = Pin<Box<dyn Future<Output = Result<Ports<R, S, E, P, Q>, PortError>> + Send>>;

/// Opens a member's ports.
pub type OpenMember<R, S, E, P, Q> = Box<dyn Fn(&Member) -> MemberPorts<R, S, E, P, Q> + Send + Sync>;

/// Confirms an SNS subscription: `ConfirmSubscription(topic ARN, token)` in the topic's region.
pub type ConfirmSubscription =
    Box<dyn Fn(String, String) -> Pin<Box<dyn Future<Output = Result<(), PortError>> + Send>> + Send + Sync>;

/// The ingestors opened so far, by member.
type Ingestors<R, S, E, P, Q> = tokio::sync::Mutex<HashMap<Member, Arc<Ingestor<R, S, E, P, Q>>>>;

/// Every member's ingestor, and the member records.
pub struct Hub<R, S, E, P, Q, M> {
    /// The hub's own account-region.
    pub home: Member,
    pub config: Config,
    /// Member records and reader leases.
    pub members: M,
    open: OpenMember<R, S, E, P, Q>,
    confirm: ConfirmSubscription,
    ingestors: Ingestors<R, S, E, P, Q>,
}

impl<R, S, E, P, Q, M> Hub<R, S, E, P, Q, M>
where
    R: AuditReader + 'static,
    S: TaskStore + 'static,
    E: EpisodeStore + 'static,
    P: DigestPublisher + 'static,
    Q: ContinuationQueue + 'static,
    M: MemberStore,
{
    /// A hub in `home` whose members' ports `open` builds, and which confirms its members'
    /// queue subscriptions with `confirm`.
    pub fn new(
        home: Member,
        config: Config,
        members: M,
        open: OpenMember<R, S, E, P, Q>,
        confirm: ConfirmSubscription,
    ) -> Self {
        Hub { home, config, members, open, confirm, ingestors: Default::default() }
    }

    /// Answers a request to confirm a subscription of the hub's queue (SNS sends one when a
    /// member's stack subscribes it: the queue's owner confirms). Confirmed only for a topic
    /// named `MEMBER_TOPIC_NAME` in an account-region the hub can read (its hub-access role
    /// could be assumed: a member stack of the organization); anything else is left
    /// unconfirmed, so it can never deliver. A role that cannot be assumed may not exist yet
    /// (IAM is eventually consistent): the hub asks again later, delayed on its continuation
    /// queue, for the token's life, with the reason on the member record; then it gives up
    /// (see [`audit_shared::confirmation`]). `pending`: this is such a retry.
    pub async fn confirm_subscription(
        &self,
        topic_arn: &str,
        token: &str,
        pending: Option<PendingConfirmation>,
    ) -> Result<(), PortError> {
        let member = match Member::of_topic(topic_arn) {
            Ok(m) => m,
            Err(e) => {
                warn!(topic = topic_arn, error = %e, "subscription not confirmed: not a topic ARN");
                return Ok(());
            }
        };
        let name = topic_arn.rsplit(':').next().unwrap_or_default();
        if name != self.config.member_topic_name {
            warn!(topic = topic_arn, expected = %self.config.member_topic_name, "subscription not confirmed: not a member topic");
            return Ok(());
        }
        match self.ingestor(&member).await {
            Ok(_) => {}
            Err(PortError::Permanent(why)) => {
                return self.confirm_later(&member, topic_arn, token, pending, &why).await
            }
            Err(e) => return Err(e),
        }
        (self.confirm)(topic_arn.to_owned(), token.to_owned()).await?;
        info!(member = %member, topic = topic_arn, attempts = pending.map_or(1, |p| p.attempts + 1), "member subscription confirmed: joined");
        // It joined (again, if it was retired); a problem recorded while the role was not
        // assumable yet is over.
        let now = now_ms();
        self.members.note_joined(&member, now).await?;
        self.members.note_problem(&member, None, now).await
    }

    /// The member's role cannot be assumed (`why`): asks again later while the token lives,
    /// recording why on the member record; gives up after.
    async fn confirm_later(
        &self,
        member: &Member,
        topic_arn: &str,
        token: &str,
        pending: Option<PendingConfirmation>,
        why: &str,
    ) -> Result<(), PortError> {
        let now = now_ms();
        let pending = match pending {
            Some(p) => p.next(),
            None => PendingConfirmation::first(topic_arn, token, now),
        };
        let window = self.config.confirm_window.as_millis() as i64;
        match pending.retry(now, self.config.confirm_retry_secs, window) {
            Retry::After { delay_secs, until } => {
                let (home, _) = self.ingestor(&self.home).await?;
                home.ports.queue.retry_confirmation(&pending, delay_secs).await?;
                let until_text = audit_shared::digest::fmt_time(until);
                warn!(member = %member, topic = topic_arn, why, attempt = pending.attempts, delay_secs,
                    "subscription not confirmed yet: the member's role cannot be assumed; asking again later");
                let problem = format!(
                    "subscription of the hub queue not confirmed yet (attempt {}): {why}; asking again until {until_text}",
                    pending.attempts
                );
                self.members.note_problem(member, Some(&problem), now).await
            }
            Retry::GiveUp => {
                error!(member = %member, topic = topic_arn, why, attempts = pending.attempts,
                    "subscription never confirmed: the member's role could not be assumed while the token lived");
                let problem = format!(
                    "subscription of the hub queue never confirmed: the hub-access role could not be assumed in {} attempts while SNS's token lived ({why}); fix the role, then re-create the member's stack instance so that it subscribes again",
                    pending.attempts
                );
                self.members.note_problem(member, Some(&problem), now).await
            }
        }
    }

    /// Drops `member`'s ingestor: the next use opens its access anew.
    async fn forget(&self, member: &Member) {
        self.ingestors.lock().await.remove(member);
    }

    /// The ingestor of `member`, and whether it was opened just now.
    pub async fn ingestor(&self, member: &Member) -> Result<(Arc<Ingestor<R, S, E, P, Q>>, bool), PortError> {
        if let Some(i) = self.ingestors.lock().await.get(member) {
            return Ok((i.clone(), false));
        }
        let ports = (self.open)(member).await?;
        let tag = (*member != self.home).then(|| member.clone());
        let ingestor = Arc::new(Ingestor::new(ports, self.config.clone(), member.region.clone()).of_member(tag));
        let mut cache = self.ingestors.lock().await;
        Ok((cache.entry(member.clone()).or_insert(ingestor).clone(), true))
    }

    /// Reads and records `member`'s scheduled audits (one ListScheduledAudits with each
    /// notification): what the roll-up judges its silence by. Not reading them only leaves the
    /// last ones recorded.
    async fn note_schedules(&self, member: &Member, now: i64) {
        let recorded = match self.ingestor(member).await {
            Ok((ingestor, _)) => match ingestor.ports.reader.scheduled_audits().await {
                Ok(schedules) => self.members.note_schedules(member, &schedules, now).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            warn!(member = %member, error = %e, "scheduled audits not recorded: the roll-up judges silence by the last ones");
        }
    }

    /// Does one unit of work of `member`, stopping by `deadline` (the Lambda's, minus the margin).
    pub async fn process(
        &self,
        member: &Member,
        work: Work,
        deadline: Instant,
        owner: &str,
    ) -> Result<Outcome, PortError> {
        let now = now_ms();
        let notified = matches!(&work, Work::Notification(_));
        if let Work::Notification(n) = &work {
            let stream = n.scheduled_audit_name.as_deref().unwrap_or(audit_shared::summary::ON_DEMAND_STREAM);
            self.members.note_notification(member, &n.task_id, stream, n.task_start_time, now).await?;
        }
        let (ingestor, opened) = match self.ingestor(member).await {
            Ok(i) => i,
            Err(PortError::Permanent(why)) => {
                error!(member = %member, task_id = work.task_id(), why, "member cannot be read: recorded for the roll-up");
                self.members.note_problem(member, Some(&why), now).await?;
                return Ok(Outcome::Skipped(why));
            }
            Err(e) => return Err(e),
        };
        // Held for one lease, renewed every third of it while the work goes on: a dead
        // invocation's lease lapses within a lease.
        let lease = self.config.lease;
        let until = now + lease.as_millis() as i64;
        if let ReaderLease::Busy { holder, until } = self.members.take_reader(member, owner, now, until).await? {
            let delay = ((until - now) / 1000 + 1).clamp(1, 900) as u32;
            info!(member = %member, task_id = work.task_id(), holder, delay, "another invocation reads this member: looking again later");
            let again = Continuation::new(work.task_id(), "reader-busy").of(ingestor.member.clone());
            ingestor.ports.queue.enqueue(&again, delay).await?;
            return Ok(Outcome::Busy);
        }
        let renew = async {
            loop {
                tokio::time::sleep(lease / 3).await;
                // Only extends this invocation's own lease: the renewal in flight when the work
                // ends is dropped, and may reach the table after the release.
                match self.members.renew_reader(member, owner, now_ms() + lease.as_millis() as i64).await {
                    Ok(true) => {}
                    Ok(false) => {
                        warn!(member = %member, "reader lease lost (renewed too late): two readers may share the quota until this one ends");
                    }
                    Err(e) => warn!(member = %member, error = %e, "reader lease not renewed"),
                }
            }
        };
        // Boxed: an ingest's future is large, and two of them inline would double this one's
        // size on the task's stack.
        let read = async {
            match Box::pin(ingestor.process(work.clone(), deadline, owner)).await {
                // The member's session expired under the SDK's cache (it refreshes before the
                // expiry it was told; a clock that jumps, like an emulator's, gets past it):
                // assume the role anew and go on once. The work is checkpointed, so going on
                // repeats nothing.
                Err(PortError::CredentialsExpired(why)) => {
                    warn!(member = %member, why, "member credentials expired: assuming its role again");
                    self.forget(member).await;
                    let ingestor = self.ingestor(member).await?.0;
                    Box::pin(ingestor.process(work, deadline, owner)).await
                }
                outcome => outcome,
            }
        };
        let outcome = tokio::select! {
            outcome = read => outcome,
            never = renew => never,
        };
        if let Err(e) = self.members.release_reader(member, owner).await {
            warn!(member = %member, error = %e, "reader lease not given back: it lapses within a lease");
        }
        if notified && outcome.is_ok() {
            self.note_schedules(member, now).await;
        }
        match &outcome {
            Ok(_) if opened => self.members.note_problem(member, None, now).await?,
            Err(PortError::Permanent(why)) => self.members.note_problem(member, Some(why), now).await?,
            _ => {}
        }
        outcome
    }
}
