//! Findings a run could not read: checks the task reports findings for that ListAuditFindings
//! answered with none (a task the account does not know, or no longer keeps), and the checks
//! left when reading stalled (`audit_shared::stall`). They are recorded on the summary with
//! the reason (`unreadChecks`), resolve nothing, and the digest names them.

use crate::run_view::RunView;
use audit_shared::ports::{AuditReader, PortError};
use audit_shared::summary::TaskSummary;
use tracing::{error, warn};

/// Records `checks` as not read (with `why`): done, not applied, resolving nothing.
pub fn withhold(summary: &mut TaskSummary, view: &mut Option<RunView>, checks: &[String], why: &str) {
    for check in checks {
        summary.set_unread(check, why);
        if let Some(v) = view.as_mut() {
            v.set.withhold(check);
        }
    }
}

/// Checks read to the end that gave none of the findings the task reports are not applied
/// (they would resolve every open finding of the check). DescribeAuditTask then says whether
/// the account knows the task at all (we model ListAuditFindings answering a task it does not
/// know with an empty page; its model has no not-found error): if it does not, no check of the
/// task is applied, its compliant ones neither.
pub async fn withhold_empty_reads<R: AuditReader>(reader: &R, summary: &mut TaskSummary, view: &mut Option<RunView>) {
    let empty = summary.read_empty();
    if empty.is_empty() {
        return;
    }
    let task_id = summary.outline.task_id.clone();
    let unknown = unknown_task(reader, &task_id).await;
    let every_check = summary.applied_checks();
    for (check, reported) in empty {
        let why = match &unknown {
            Some(why) => format!("{why}: ListAuditFindings returned none of the {reported} findings it reports"),
            None => format!("ListAuditFindings returned none of the {reported} findings the task reports"),
        };
        error!(task_id, check, reported, reason = %why, "findings not read: the check is not applied");
        withhold(summary, view, std::slice::from_ref(&check), &why);
    }
    if let Some(why) = unknown {
        let rest: Vec<String> = every_check.into_iter().filter(|c| !summary.unread_checks.contains_key(c)).collect();
        withhold(summary, view, &rest, &why);
    }
}

/// Why the account does not know `task_id`, when DescribeAuditTask says so (a notification
/// replayed from elsewhere, or past Device Defender's retention); `None` when it knows it or
/// cannot tell.
pub async fn unknown_task<R: AuditReader>(reader: &R, task_id: &str) -> Option<String> {
    match reader.describe_task(task_id).await {
        Err(PortError::NotFound(_)) => {
            Some(format!("the account does not know task {task_id} (DescribeAuditTask: not found)"))
        }
        Ok(_) => None,
        Err(e) => {
            warn!(task_id, error = %e, "DescribeAuditTask failed: whether the account knows the task is not known");
            None
        }
    }
}
