//! The emulated account: configuration, scheduled audits, tasks and the fleet, and the event
//! loop that moves them along the virtual clock.
//!
//! Invariant: nothing here does I/O or reads a clock; every method gets `now` in epoch
//! milliseconds, so the whole lifecycle is driven (and tested) deterministically.

use crate::account::{AccountConfig, ScheduledAudit};
use crate::fleet::{Fleet, FleetOptions};
use crate::tasks::{CheckResult, Task};
use audit_shared::{AuditNotification, Schedule, Severity, TaskType};
use chrono::{Duration, TimeZone, Utc};
use std::collections::BTreeMap;

/// Limits and timings of the account.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_scheduled_audits: usize,
    pub max_on_demand_tasks: usize,
    pub task_duration_ms: i64,
    pub retention_ms: i64,
    pub schedule_offset_ms: i64,
}

/// A notification to publish: the SNS topic and the message.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic_arn: String,
    pub notification: AuditNotification,
}

/// The emulated account's audit state.
#[derive(Debug)]
pub struct AuditState {
    pub account_id: String,
    pub region: String,
    pub seed: u64,
    pub limits: Limits,
    pub config: AccountConfig,
    pub scheduled: Vec<ScheduledAudit>,
    pub tasks: Vec<Task>,
    pub fleet: Fleet,
    pub severities: BTreeMap<String, Severity>,
    /// Audit finding suppressions.
    pub suppressions: crate::suppressions::Suppressions,
    /// Sequence for scheduled audits and tasks (creation order, page keys, task ids).
    pub next_seq: u64,
    /// Notifications produced by the last calls, drained by the server.
    pub outgoing: Vec<Outgoing>,
}

/// What the event loop did.
#[derive(Debug, Default, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub tasks_started: Vec<String>,
    pub tasks_ended: Vec<String>,
    /// The account-region of each ended task (task ids repeat across account-regions).
    #[serde(skip)]
    pub ended_in: Vec<(crate::scope::Scope, String)>,
}

enum Event {
    CheckFinishes { task: usize, check: usize },
    ScheduledRun { audit: usize },
}

impl AuditState {
    pub fn new(
        account_id: String,
        region: String,
        seed: u64,
        limits: Limits,
        fleet: FleetOptions,
        severities: BTreeMap<String, Severity>,
    ) -> Self {
        AuditState {
            account_id,
            region,
            seed,
            limits,
            config: AccountConfig::default(),
            scheduled: Vec::new(),
            tasks: Vec::new(),
            fleet: Fleet::new(fleet),
            suppressions: Default::default(),
            severities,
            next_seq: 0,
            outgoing: Vec::new(),
        }
    }

    /// Severity of a check's findings (override, else catalog).
    pub fn severity(&self, check: &str) -> Severity {
        self.severities
            .get(check)
            .cloned()
            .or_else(|| audit_shared::catalog(check).map(|c| c.severity.clone()))
            .unwrap_or(Severity::Medium)
    }

    /// The first run of a schedule after `now`.
    pub fn first_run(&self, schedule: &Schedule, now_ms: i64) -> i64 {
        let now = Utc.timestamp_millis_opt(now_ms).single().expect("valid time");
        schedule.next_run(now, Duration::milliseconds(self.limits.schedule_offset_ms)).timestamp_millis()
    }

    fn next_event(&self, now_ms: i64) -> Option<(i64, Event)> {
        let mut best: Option<(i64, Event)> = None;
        let mut consider = |t: i64, e: Event| {
            if t <= now_ms && best.as_ref().is_none_or(|(bt, _)| t < *bt) {
                best = Some((t, e));
            }
        };
        for (ti, task) in self.tasks.iter().enumerate().filter(|(_, t)| !t.status.is_terminal()) {
            for (ci, c) in task.checks.iter().enumerate() {
                if matches!(c.result, CheckResult::Running) {
                    consider(c.finishes_ms, Event::CheckFinishes { task: ti, check: ci });
                }
            }
        }
        for (ai, a) in self.scheduled.iter().enumerate() {
            consider(a.next_run_ms, Event::ScheduledRun { audit: ai });
        }
        best
    }

    /// Runs everything due up to `now`, in time order: checks finishing (and with them tasks
    /// completing, notifications, fleet drift), scheduled audits firing; then drops tasks older
    /// than the retention period. `failing` maps a check to the error code it fails with.
    pub fn advance(&mut self, now_ms: i64, failing: &dyn Fn(&str) -> Option<String>) -> Progress {
        let mut progress = Progress::default();
        while let Some((at, event)) = self.next_event(now_ms) {
            match event {
                Event::CheckFinishes { task, check } => {
                    self.finish_check(task, check, at, failing);
                    if let Some(id) = self.complete_if_done(task) {
                        progress.tasks_ended.push(id);
                    }
                }
                Event::ScheduledRun { audit } => {
                    let a = &self.scheduled[audit];
                    let (name, targets) = (a.name.clone(), a.targets.clone());
                    let offset = Duration::milliseconds(self.limits.schedule_offset_ms);
                    let prev = Utc.timestamp_millis_opt(at).single().expect("valid time");
                    self.scheduled[audit].next_run_ms = a.schedule.run_after_run(prev, offset).timestamp_millis();
                    let id = self.start_task(TaskType::Scheduled, Some(name), targets, at);
                    progress.tasks_started.push(id);
                }
            }
        }
        let horizon = now_ms - self.limits.retention_ms;
        self.tasks.retain(|t| t.start_ms >= horizon);
        progress
    }

    /// Milliseconds until the next scheduled run, if any audit is scheduled.
    pub fn next_scheduled_run_ms(&self) -> Option<i64> {
        self.scheduled.iter().map(|a| a.next_run_ms).min()
    }
}
