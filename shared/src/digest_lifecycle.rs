//! The lifecycle part of a digest: age of open findings per severity, overdue against the
//! deadlines, findings that came back, time to fix, and the trend of open findings over the
//! last runs. Pure: built from a run's [`LifecycleStats`], the listed findings' details and the
//! stream's run history; rendered as plain text that reads in any mail client.

use crate::digest::DigestFinding;
use crate::finding::resource_label;
use crate::lifecycle::{fmt_age, render_trend, Deadlines, FixTimes, LifecycleStats, AGE_BUCKET_LABELS};
use crate::ports::RunRecord;
use crate::vocabulary::Severity;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// Runs the trend covers (this one included).
pub const TREND_RUNS: usize = 10;

/// A listed finding with its episode's dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgedFinding {
    #[serde(flatten)]
    pub finding: DigestFinding,
    /// Start of the first run of its episode (epoch ms).
    pub first_seen: i64,
    /// When its previous episode was resolved (findings that came back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_resolved: Option<i64>,
}

/// One severity's open findings over the last runs, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrendRow {
    pub severity: String,
    pub open: Vec<u64>,
}

/// The lifecycle section of a digest (counts exact, lists bounded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleSection {
    pub deadlines: Deadlines,
    /// Open (not muted) findings per severity by age: < 7 d, 7–30 d, 30–90 d, > 90 d.
    pub open_by_age: BTreeMap<String, [u64; 4]>,
    /// Open longer than their severity's deadline, per severity.
    pub overdue: BTreeMap<String, u64>,
    pub overdue_count: u64,
    /// The most severe overdue findings, oldest first within a severity.
    pub overdue_listed: Vec<AgedFinding>,
    /// The oldest open findings.
    pub oldest: Vec<AgedFinding>,
    /// Resolved in an earlier run and open again now.
    pub came_back_count: u64,
    pub came_back: Vec<AgedFinding>,
    /// Age at resolution of the findings this run resolved, per severity and in all.
    pub time_to_fix: BTreeMap<String, FixTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_fix_all: Option<FixTimes>,
    /// Task ids of the runs the trend covers, oldest first (this one last).
    pub trend_runs: Vec<String>,
    pub trend: Vec<TrendRow>,
}

impl LifecycleSection {
    /// Overdue findings of a severity.
    pub fn overdue_of(&self, s: &Severity) -> u64 {
        self.overdue.get(s.as_str()).copied().unwrap_or(0)
    }
}

/// What the digest knows of a listed finding: its details, first seen, and when its previous
/// episode was resolved (if it came back).
pub type Listed = HashMap<u64, (DigestFinding, i64, Option<i64>)>;

/// Builds the section. `details` resolves the stats' listed hashes (those missing are left
/// out of the lists, never out of the counts); `earlier` are the stream's previous runs, newest
/// first; `open_now` this run's open findings per severity.
pub fn build(
    stats: &LifecycleStats,
    deadlines: &Deadlines,
    details: &Listed,
    task_id: &str,
    earlier: &[RunRecord],
    open_now: &BTreeMap<String, i64>,
) -> LifecycleSection {
    let aged = |hashes: &[u64]| -> Vec<AgedFinding> {
        hashes
            .iter()
            .filter_map(|h| {
                let (f, first_seen, previous_resolved) = details.get(h)?;
                Some(AgedFinding { finding: f.clone(), first_seen: *first_seen, previous_resolved: *previous_resolved })
            })
            .collect()
    };
    let mut runs: Vec<(&str, &BTreeMap<String, i64>)> =
        earlier.iter().take(TREND_RUNS - 1).map(|r| (r.task_id.as_str(), &r.open)).collect();
    runs.reverse();
    runs.push((task_id, open_now));
    let trend = Severity::KNOWN
        .iter()
        .map(|s| TrendRow {
            severity: s.to_string(),
            open: runs.iter().map(|(_, open)| open.get(s.as_str()).copied().unwrap_or(0).max(0) as u64).collect(),
        })
        .collect();
    LifecycleSection {
        deadlines: deadlines.clone(),
        open_by_age: stats.open_by_age.iter().map(|(s, b)| (s.to_string(), *b)).collect(),
        overdue: stats.overdue.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        overdue_count: stats.overdue.values().sum(),
        overdue_listed: aged(&stats.listed_overdue),
        oldest: aged(&stats.listed_oldest),
        came_back_count: stats.came_back,
        came_back: aged(&stats.listed_came_back),
        time_to_fix: stats.time_to_fix.iter().map(|(s, t)| (s.to_string(), *t)).collect(),
        time_to_fix_all: stats.time_to_fix_all,
        trend_runs: runs.iter().map(|(t, _)| t.to_string()).collect(),
        trend,
    }
}

fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d").to_string())
}

/// The section as text: age table, overdue, time to fix, trend (the lists are rendered by
/// [`render_lists`], within the body's budget).
pub fn render_summary(out: &mut String, l: &LifecycleSection) {
    let _ = writeln!(
        out,
        "\nAge of open findings   {:>8} {:>8} {:>8} {:>8}   overdue (deadline)",
        AGE_BUCKET_LABELS[0], AGE_BUCKET_LABELS[1], AGE_BUCKET_LABELS[2], AGE_BUCKET_LABELS[3]
    );
    for s in Severity::KNOWN {
        let b = l.open_by_age.get(s.as_str()).copied().unwrap_or([0; 4]);
        let deadline =
            l.deadlines.for_severity(s).map_or(String::new(), |d| format!("({} d)", d / crate::lifecycle::DAY_MS));
        let _ = writeln!(
            out,
            "  {:<20} {:>8} {:>8} {:>8} {:>8}   {} {}",
            s.as_str(),
            b[0],
            b[1],
            b[2],
            b[3],
            l.overdue_of(s),
            deadline
        );
    }
    if l.came_back_count > 0 {
        let _ = writeln!(out, "\nCame back (resolved before, open again): {}", l.came_back_count);
    }
    match &l.time_to_fix_all {
        Some(all) => {
            let per: Vec<String> = Severity::KNOWN
                .iter()
                .filter_map(|s| {
                    let t = l.time_to_fix.get(s.as_str())?;
                    Some(format!("{} {} / {}", s.as_str(), fmt_age(t.median_ms), fmt_age(t.p90_ms)))
                })
                .collect();
            let _ = writeln!(
                out,
                "\nTime to fix (age when resolved, median / p90): {} / {} over {} fixed; {}",
                fmt_age(all.median_ms),
                fmt_age(all.p90_ms),
                all.count,
                per.join(", ")
            );
        }
        None => {
            let _ = writeln!(out, "\nTime to fix: nothing resolved in this run.");
        }
    }
    let rows: Vec<(String, Vec<u64>)> = l.trend.iter().map(|r| (r.severity.clone(), r.open.clone())).collect();
    render_trend(out, l.trend_runs.len(), &rows);
}

/// The lists (overdue, came back, oldest) as (title, lines, total count): the body adds lines
/// while its budget allows.
pub fn render_lists(l: &LifecycleSection, run_start: i64) -> Vec<(String, Vec<String>, u64)> {
    let line = |a: &AgedFinding, extra: String| {
        format!(
            "  [{}] {}  {}  open {}{}\n",
            a.finding.severity,
            a.finding.check_name,
            resource_label(&a.finding.resource_type, &a.finding.resource_key),
            fmt_age(run_start - a.first_seen),
            extra
        )
    };
    vec![
        (
            "Overdue findings (open longer than their severity's deadline)".to_owned(),
            l.overdue_listed.iter().map(|a| line(a, format!(", since {}", day(a.first_seen)))).collect(),
            l.overdue_count,
        ),
        (
            "Came back (fixed before, open again)".to_owned(),
            l.came_back
                .iter()
                .map(|a| line(a, a.previous_resolved.map_or(String::new(), |r| format!(", fixed {}", day(r)))))
                .collect(),
            l.came_back_count,
        ),
        (
            "Oldest open findings".to_owned(),
            l.oldest.iter().map(|a| line(a, format!(", since {}", day(a.first_seen)))).collect(),
            l.oldest.len() as u64,
        ),
    ]
}
