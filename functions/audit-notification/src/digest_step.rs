//! The digest of a task, at most once: built from the run's view of its stream (every count
//! known when the last page was read; only the listed findings are fetched), published to the
//! mail topic, then to the chat topic if one is set.

use crate::ingest::Ingestor;
use crate::run_view::{self, RunView};
use audit_shared::chat_digest::render_chat;
use audit_shared::digest::{self, Changes, ChatDelivery, DigestFinding, MAX_LISTED};
use audit_shared::digest_lifecycle::{self, Listed, TREND_RUNS};
use audit_shared::ports::{
    AuditReader, ContinuationQueue, DigestPublisher, EpisodeStore, PortError, SuppressionInfo, TaskStore,
};
use audit_shared::summary::{DigestState, LifecycleState, TaskOutline, TaskSummary};
use audit_shared::{TaskStatus, TaskType};
use std::collections::HashSet;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

/// What a digest reads that does not depend on the findings (the account's suppressions,
/// ListAuditSuppressions), started when the reading starts so that it is there when the last
/// page is read. Dropped unused (the invocation hands over to a continuation), it is aborted.
pub(crate) struct DigestPrefetch(JoinHandle<Result<Vec<SuppressionInfo>, PortError>>);

impl DigestPrefetch {
    /// The suppressions as the prefetch read them.
    async fn suppressions(mut self) -> Result<Vec<SuppressionInfo>, PortError> {
        (&mut self.0).await.unwrap_or_else(|e| Err(PortError::Transient(format!("listing suppressions failed: {e}"))))
    }
}

impl Drop for DigestPrefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<R, S, E, P, Q> Ingestor<R, S, E, P, Q>
where
    R: AuditReader + 'static,
    S: TaskStore + 'static,
    E: EpisodeStore + 'static,
    P: DigestPublisher + 'static,
    Q: ContinuationQueue + 'static,
{
    fn wants_digest(&self, o: &TaskOutline) -> bool {
        let ended_with_results = matches!(o.task_status, TaskStatus::Completed | TaskStatus::Failed);
        ended_with_results && (o.task_type == TaskType::Scheduled || self.config.on_demand_digest)
    }

    /// Starts reading what the digest of `summary` will need whatever the findings are, when
    /// it is still to be sent.
    pub(crate) fn prefetch_digest(&self, summary: &TaskSummary) -> Option<DigestPrefetch> {
        let pending = matches!(summary.digest, DigestState::Pending | DigestState::Publishing);
        (pending && self.wants_digest(&summary.outline)).then(|| {
            let ports = self.ports.clone();
            DigestPrefetch(tokio::spawn(async move { ports.reader.list_suppressions().await }))
        })
    }

    /// Sends the digest at most once; see [`DigestState`].
    pub(crate) async fn send_digest(
        &self,
        summary: &TaskSummary,
        owner: &str,
        view: &mut Option<RunView>,
        prefetch: Option<DigestPrefetch>,
    ) -> Result<DigestState, PortError> {
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
                let d = self.build_digest(summary, view, prefetch).await?;
                store.record_digest(o, Some(&d), DigestState::Unconfirmed, None).await?;
                error!(task_id = %o.task_id, "digest state unknown after a crash: not sending it again (stored as DIGEST)");
                return Ok(DigestState::Unconfirmed);
            }
            Some(other) => return Ok(other),
        }
        let mut d = match self.build_digest(summary, view, prefetch).await {
            Ok(d) => d,
            Err(e) => {
                store.record_digest(o, None, DigestState::Pending, None).await?;
                return Err(e);
            }
        };
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
                    resolved = d.resolved_count, persisting = d.persisting_count,
                    overdue = d.lifecycle.as_ref().map_or(0, |l| l.overdue_count), "digest sent");
                Ok(DigestState::Sent)
            }
            Err(e) => {
                store.record_digest(o, None, DigestState::Pending, None).await?;
                Err(e)
            }
        }
    }

    /// The digest: this run against its stream's episodes (when it advanced them), the checks
    /// against the previous run, and the account's suppressions (`prefetch`ed, or read now).
    async fn build_digest(
        &self,
        summary: &TaskSummary,
        view: &mut Option<RunView>,
        prefetch: Option<DigestPrefetch>,
    ) -> Result<digest::Digest, PortError> {
        let o = &summary.outline;
        let store = &self.ports.store;
        let completed = o.task_status == TaskStatus::Completed;
        let previous = async {
            match completed {
                true => store.previous_run(&o.audit_stream(), o.task_start_time, &o.task_id).await,
                false => Ok(None),
            }
        };
        let suppressions = async {
            match prefetch {
                Some(p) => p.suppressions().await,
                None => self.ports.reader.list_suppressions().await,
            }
        };
        let mut changes = Changes::default();
        let mut lifecycle = None;
        let (previous, suppressions) = if completed && summary.lifecycle == LifecycleState::Pending {
            let v = match view {
                Some(v) => v,
                None => view.insert(run_view::load(&self.ports.episodes, summary).await?),
            };
            let deadlines = &self.config.deadlines;
            let stats = v.set.stats(deadlines, MAX_LISTED);
            let known = v.known();
            // The listed findings not opened by this invocation, the trend, the previous run and
            // the suppressions are read at once.
            let stream = o.audit_stream();
            let (listed, earlier, previous, suppressions) = tokio::join!(
                self.listed(o, &stats, known),
                store.recent_runs(&stream, o.task_start_time, TREND_RUNS - 1),
                previous,
                suppressions
            );
            // A run none of whose findings were read is no point of the trend.
            let (listed, earlier) = (listed?, earlier?.into_iter().filter(|r| !r.not_read).collect::<Vec<_>>());
            let finding = |h: &u64| listed.get(h).map(|(f, _, _)| f.clone());
            stats.listed_new.iter().filter_map(finding).for_each(|f| changes.add_new(f));
            stats.listed_resolved.iter().filter_map(finding).for_each(|f| changes.add_resolved(f));
            stats.listed_unmuted.iter().filter_map(finding).for_each(|f| changes.add_unmuted(f));
            // The lists are bounded; the counts are the view's, exact.
            changes.new_by_severity = stats.new.clone();
            changes.resolved_by_severity = stats.resolved.clone();
            changes.muted_by_severity = stats.muted.clone();
            changes.unmuted_count = stats.unmuted;
            changes.persisting = stats.persisting;
            lifecycle = Some(digest_lifecycle::build(
                &stats,
                deadlines,
                &listed,
                &o.task_id,
                &earlier,
                &summary.open_by_severity(),
            ));
            (previous?, suppressions)
        } else {
            let (previous, suppressions) = tokio::join!(previous, suppressions);
            (previous?, suppressions)
        };
        let mut d = digest::build(summary, previous.as_ref(), changes, &self.region);
        d.lifecycle = lifecycle;
        d.member = self.member.as_ref().map(|m| match self.config.account_names.get(&m.account_id) {
            Some(name) => format!("{name} {m}"),
            None => m.to_string(),
        });
        if completed && summary.lifecycle == LifecycleState::NotTracked {
            let why = match (summary.late_checks.is_empty(), summary.unread_checks.is_empty()) {
                (true, false) => "its findings could not be read (see below)",
                (false, false) => {
                    "runs started no earlier applied some of its checks first, and the others could not be read"
                }
                _ => "runs started no earlier applied every check of this one first",
            };
            d.not_compared = Some(format!("{why}; it changes no finding's history"));
        }
        d.subject = digest::subject(&d);
        // A digest without the suppression list is still worth sending: the error is shown.
        let listed = suppressions.map_err(|e| {
            warn!(task_id = %o.task_id, error = %e, "suppressions not listed for the digest");
            e.to_string()
        });
        // "Expiring soon" is measured from the audit's start (what the digest describes).
        digest::add_suppressions(&mut d, listed, o.task_start_time);
        Ok(d)
    }

    /// The details of the findings a digest lists: those this invocation opened are `known`;
    /// the others are read (open episodes, or resolved ones when a retry finds them closed).
    async fn listed(
        &self,
        o: &TaskOutline,
        stats: &audit_shared::lifecycle::LifecycleStats,
        known: std::collections::HashMap<u64, crate::run_view::Known>,
    ) -> Result<Listed, PortError> {
        let mut wanted: Vec<u64> = [
            &stats.listed_new,
            &stats.listed_resolved,
            &stats.listed_unmuted,
            &stats.listed_came_back,
            &stats.listed_oldest,
            &stats.listed_overdue,
        ]
        .iter()
        .flat_map(|l| l.iter().copied())
        .filter(|h| !known.contains_key(h))
        .collect::<HashSet<u64>>()
        .into_iter()
        .collect();
        wanted.sort_unstable();
        let stream = o.audit_stream();
        let mut found =
            if wanted.is_empty() { Vec::new() } else { self.ports.episodes.open_episodes(&stream, &wanted).await? };
        let have: HashSet<u64> = found.iter().map(|e| e.hash()).collect();
        let missing: Vec<u64> = wanted.into_iter().filter(|h| !have.contains(h)).collect();
        if !missing.is_empty() {
            found.extend(self.ports.episodes.resolved_episodes(&stream, &missing).await?);
        }
        let mut out: Listed = found
            .into_iter()
            .map(|e| {
                let f = DigestFinding {
                    severity: e.finding.severity.clone(),
                    check_name: e.finding.check_name.to_string(),
                    resource_type: e.finding.resource_type.to_string(),
                    resource_key: e.resource_key.clone(),
                };
                (e.hash(), (f, e.first_seen, e.previous_resolved()))
            })
            .collect();
        out.extend(known);
        Ok(out)
    }
}
