//! A run's view of its audit stream (`audit_shared::lifecycle::OpenSet`): loaded from the
//! stream's open episodes and the task's seen records, fed page by page, and what each page
//! writes (new episodes, a came-back one's history carried on, mute changes, the seen record).

use audit_shared::digest::{DigestFinding, MAX_LISTED};
use audit_shared::finding::Finding;
use audit_shared::lifecycle::{
    finding_hash, severity_rank, Observation, OpenSet, EPISODE_SHARDS, MAX_LIFECYCLE_LISTED,
};
use audit_shared::ports::{Episode, EpisodeStore, PageChanges, PortError};
use audit_shared::summary::{TaskOutline, TaskSummary};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::{mpsc, Mutex, OwnedMutexGuard};
use tracing::info;

/// A listed finding: its details, first seen, and when its previous episode was resolved.
pub type Known = (DigestFinding, i64, Option<i64>);

/// What a run knows of its stream.
#[derive(Debug)]
pub struct RunView {
    pub set: OpenSet,
    /// The most severe findings this invocation opened, new and came back, by (severity rank,
    /// hash) — the order the digest lists them in — so it need not read them back.
    pub opened_new: BTreeMap<(u8, u64), Known>,
    pub opened_back: BTreeMap<(u8, u64), Known>,
}

/// Keeps `map` at the `cap` smallest keys.
fn keep_first(map: &mut BTreeMap<(u8, u64), Known>, key: (u8, u64), value: Known, cap: usize) {
    if map.len() >= cap && map.last_key_value().is_some_and(|(last, _)| *last < key) {
        return;
    }
    map.insert(key, value);
    if map.len() > cap {
        map.pop_last();
    }
}

impl RunView {
    /// The details of what this invocation opened, by hash.
    pub fn known(&self) -> HashMap<u64, Known> {
        self.opened_new.iter().chain(&self.opened_back).map(|((_, h), k)| (*h, k.clone())).collect()
    }
}

impl RunView {
    /// Nothing loaded yet, for the run of `summary` (its completed checks resolve).
    pub fn empty(summary: &TaskSummary) -> Self {
        // Only the checks this run applies: a late check's episodes are another run's.
        let completed = summary.applied_checks();
        RunView {
            set: OpenSet::new(summary.outline.task_start_time, &completed),
            opened_new: BTreeMap::new(),
            opened_back: BTreeMap::new(),
        }
    }
}

/// Loads the view of `summary`'s run (every shard, then the task's seen records).
pub async fn load<E: EpisodeStore + 'static>(episodes: &Arc<E>, summary: &TaskSummary) -> Result<RunView, PortError> {
    let view = Arc::new(Mutex::new(RunView::empty(summary)));
    let guard = view.clone().try_lock_owned().expect("the view is new");
    load_into(episodes, summary, guard).await?;
    Ok(Arc::try_unwrap(view).expect("loaded").into_inner())
}

/// Loads into a view whose lock the caller took (writers wait on it meanwhile): the shards are
/// read concurrently, their pages folded in as they come (never all held at once).
pub async fn load_into<E: EpisodeStore + 'static>(
    episodes: &Arc<E>,
    summary: &TaskSummary,
    mut view: OwnedMutexGuard<RunView>,
) -> Result<(), PortError> {
    let (stream, started) = (summary.outline.audit_stream(), std::time::Instant::now());
    let (tx, mut rx) = mpsc::channel(4);
    let mut readers = tokio::task::JoinSet::new();
    // Four shards at a time: each page in flight is up to 1 MB.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(4));
    for shard in 0..EPISODE_SHARDS {
        let (episodes, stream, tx, in_flight) = (episodes.clone(), stream.clone(), tx.clone(), in_flight.clone());
        readers.spawn(async move {
            let _slot = in_flight.acquire_owned().await.expect("semaphore open");
            let mut cursor = None;
            loop {
                let (page, next) = episodes.open_page(&stream, shard, cursor).await?;
                if tx.send(page).await.is_err() {
                    return Ok(());
                }
                match next {
                    Some(c) => cursor = Some(c),
                    None => return Ok::<_, PortError>(()),
                }
            }
        });
    }
    drop(tx);
    let mut open = 0usize;
    while let Some(page) = rx.recv().await {
        open += page.len();
        page.iter().for_each(|e| view.set.load(e));
    }
    while let Some(r) = readers.join_next().await {
        r.map_err(|e| PortError::Transient(format!("episode reader failed: {e}")))??;
    }
    view.set.loaded();
    let mut cursor = None;
    loop {
        let (seen, next) = episodes.seen_page(&summary.outline.task_id, cursor).await?;
        seen.into_iter().for_each(|h| view.set.mark_seen(h));
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    // How long the reading may have waited for it (pages wait for the view to be classified).
    info!(task_id = %summary.outline.task_id, stream, open, ms = started.elapsed().as_millis() as u64, "run view loaded");
    Ok(())
}

/// Classifies one page against the view, writes what changed, then records it in the view.
/// `may_have_closed`: the stream has had a run, so a finding not open may be coming back.
pub async fn write_page<E: EpisodeStore>(
    episodes: &Arc<E>,
    view: &Mutex<RunView>,
    outline: &TaskOutline,
    check: &str,
    page_no: i64,
    findings: &[Finding],
    may_have_closed: bool,
) -> Result<(), PortError> {
    let stream = outline.audit_stream();
    let mut changes = PageChanges { check_name: check.to_owned(), page: page_no, ..Default::default() };
    let mut candidates: Vec<(u64, &Finding)> = Vec::new();
    {
        let mut v = view.lock().await;
        for f in findings {
            let hash = finding_hash(f.check_name.as_str(), &f.resource_key());
            match v.set.observe(hash, f.is_suppressed) {
                Observation::Persisting => changes.seen.push(hash),
                Observation::MuteChanged => {
                    changes.seen.push(hash);
                    changes.muted.push((hash, f.is_suppressed));
                }
                Observation::AlreadyNew => {}
                Observation::New => candidates.push((hash, f)),
            }
        }
    }
    let closed: HashMap<u64, Episode> = if may_have_closed && !candidates.is_empty() {
        let hashes: Vec<u64> = candidates.iter().map(|(h, _)| *h).collect();
        episodes.resolved_episodes(&stream, &hashes).await?.into_iter().map(|e| (e.hash(), e)).collect()
    } else {
        HashMap::new()
    };
    changes.opened =
        candidates.iter().map(|(h, f)| Episode::open(&stream, f, outline.task_start_time, closed.get(h))).collect();
    episodes.record_page(&stream, &outline.task_id, outline.task_start_time, &changes).await?;
    let mut v = view.lock().await;
    for e in &changes.opened {
        let hash = e.hash();
        v.set.record_new(hash, e.finding.check_name.as_str(), &e.finding.severity, e.suppressed, e.previous_resolved());
        if e.suppressed {
            continue;
        }
        let listed = DigestFinding {
            severity: e.finding.severity.clone(),
            check_name: e.finding.check_name.to_string(),
            resource_type: e.finding.resource_type.to_string(),
            resource_key: e.resource_key.clone(),
        };
        let key = (severity_rank(&e.finding.severity), hash);
        let known = (listed, e.first_seen, e.previous_resolved());
        if e.came_back > 0 {
            keep_first(&mut v.opened_back, key, known, MAX_LIFECYCLE_LISTED);
        } else {
            keep_first(&mut v.opened_new, key, known, MAX_LISTED);
        }
    }
    Ok(())
}
