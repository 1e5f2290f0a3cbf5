//! audit-sweeper: on a schedule, lists the audit tasks of a recent window and queues every
//! ended task that was never ingested (a lost notification) or whose ingest stalled, on the
//! continuation queue that audit-notification consumes.

pub mod config;

pub use config::Config;

use audit_shared::ports::{AuditReader, ContinuationQueue, PortError, TaskStore};
use audit_shared::work::{needs_sweep, Continuation};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::info;

/// One sweep; returns what it queued.
pub async fn sweep<R: AuditReader, S: TaskStore, Q: ContinuationQueue>(
    reader: &R,
    store: &S,
    queue: &Q,
    window_hours: i64,
) -> Result<Value, PortError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    let tasks = reader.list_tasks(now - window_hours * 3_600_000, now).await?;
    let mut queued = Vec::new();
    for t in &tasks {
        if !t.task_status.is_terminal() {
            continue;
        }
        let stored = store.load(&t.task_id).await?;
        if needs_sweep(&t.task_status, stored.as_ref(), now) {
            queue.enqueue(&Continuation::new(&t.task_id, "sweeper"), 0).await?;
            info!(task_id = %t.task_id, stored = stored.is_some(), "queued a task that was not ingested");
            queued.push(t.task_id.clone());
        }
    }
    info!(listed = tasks.len(), queued = queued.len(), "sweep done");
    Ok(json!({ "listed": tasks.len(), "queued": queued }))
}
