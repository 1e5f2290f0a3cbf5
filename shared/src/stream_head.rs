//! An audit stream's head: which run last applied each check to the stream's episodes, and so
//! which checks of a run that ends out of order are late.
//!
//! Runs of one stream may end in any order. Scheduled runs of one audit share their checks, but
//! on-demand audits share one stream (`~on-demand`) and each runs its own checks: an audit of
//! check X started at 10:00 may end after an audit of check Y started at 10:05 was applied. A
//! run is therefore late per check: for a check that a run started no earlier already applied
//! (its episodes have moved past this run), and for no other. The late checks are not applied
//! (their findings never change the history); the run's other checks are.

use std::collections::BTreeMap;

/// One applied run of a stream: its start (epoch ms) and task id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedRun {
    /// The run's start (epoch ms).
    pub start: i64,
    /// The run's task id.
    pub task_id: String,
}

/// What the stream's head says when a run takes the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamHead {
    /// The latest run (by start) applied to the stream, any check.
    pub last_run: Option<AppliedRun>,
    /// Per check, the latest run that applied it. Empty on a head written before runs were
    /// recorded per check: every check then counts as applied by `last_run`.
    pub check_runs: BTreeMap<String, AppliedRun>,
}

/// How a run stands against its stream's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStanding {
    /// This very run was applied already (a retry after its release): nothing to do.
    AlreadyApplied,
    /// The run applies `apply`; `late` are checks a run started no earlier applied first.
    Applies {
        /// The checks this run applies.
        apply: Vec<String>,
        /// The checks it does not apply, with the run that applied each first.
        late: BTreeMap<String, AppliedRun>,
    },
}

impl StreamHead {
    /// The latest run that applied `check`.
    pub fn last_run_of(&self, check: &str) -> Option<&AppliedRun> {
        if self.check_runs.is_empty() {
            self.last_run.as_ref()
        } else {
            self.check_runs.get(check)
        }
    }

    /// Whether any run was applied before (resolved episodes may exist).
    pub fn any_applied(&self) -> bool {
        self.last_run.is_some() || !self.check_runs.is_empty()
    }

    /// How the run `task_id` started at `start`, which completed `checks`, stands: a check is
    /// late when another run that started no earlier (the same start included: two audits
    /// started in the same millisecond are ordered by which is applied first) applied it.
    pub fn standing(&self, task_id: &str, start: i64, checks: &[String]) -> RunStanding {
        let applied_by_me = |r: &AppliedRun| r.task_id == task_id && r.start == start;
        if checks.iter().any(|c| self.last_run_of(c).is_some_and(applied_by_me))
            || (checks.is_empty() && self.last_run.as_ref().is_some_and(applied_by_me))
        {
            return RunStanding::AlreadyApplied;
        }
        let mut apply = Vec::new();
        let mut late = BTreeMap::new();
        for c in checks {
            match self.last_run_of(c) {
                Some(r) if r.start >= start => {
                    late.insert(c.clone(), r.clone());
                }
                _ => apply.push(c.clone()),
            }
        }
        RunStanding::Applies { apply, late }
    }

    /// When this run's checks last had a run applied before it (what a finding it resolves was
    /// last seen at), per check.
    pub fn last_seen(&self, check: &str, start: i64) -> Option<i64> {
        self.last_run_of(check).map(|r| r.start).filter(|s| *s < start)
    }

    /// Whether a run started at `start` is the stream's latest applied one once applied.
    pub fn is_latest(&self, start: i64) -> bool {
        self.last_run.as_ref().is_none_or(|r| r.start < start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: i64, task: &str) -> AppliedRun {
        AppliedRun { start, task_id: task.into() }
    }

    fn checks(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_run_is_late_only_for_the_checks_a_later_run_applied() {
        let mut head = StreamHead { last_run: Some(run(1_000, "y")), ..Default::default() };
        head.check_runs.insert("Y".into(), run(1_000, "y"));
        // X started earlier, ends later: Y's run did not touch X.
        assert_eq!(
            head.standing("x", 900, &checks(&["X"])),
            RunStanding::Applies { apply: checks(&["X"]), late: BTreeMap::new() }
        );
        // A run of X and Y started earlier applies X and is late for Y.
        match head.standing("xy", 900, &checks(&["X", "Y"])) {
            RunStanding::Applies { apply, late } => {
                assert_eq!(apply, checks(&["X"]));
                assert_eq!(late.get("Y"), Some(&run(1_000, "y")));
            }
            other => panic!("{other:?}"),
        }
        // The same start: the one applied first wins the check.
        match head.standing("y2", 1_000, &checks(&["Y"])) {
            RunStanding::Applies { apply, late } => assert!(apply.is_empty() && late.contains_key("Y")),
            other => panic!("{other:?}"),
        }
        assert_eq!(head.standing("y", 1_000, &checks(&["Y"])), RunStanding::AlreadyApplied);
        assert!(head.is_latest(1_001) && !head.is_latest(1_000));
        assert_eq!(head.last_seen("Y", 2_000), Some(1_000));
        assert_eq!(head.last_seen("X", 2_000), None);
        assert_eq!(head.last_seen("Y", 1_000), None, "not seen before a run of the same start");
    }

    #[test]
    fn a_head_without_per_check_runs_counts_every_check_as_applied_by_its_last_run() {
        let head = StreamHead { last_run: Some(run(1_000, "y")), ..Default::default() };
        match head.standing("x", 900, &checks(&["X"])) {
            RunStanding::Applies { apply, late } => assert!(apply.is_empty() && late.contains_key("X")),
            other => panic!("{other:?}"),
        }
        assert_eq!(head.last_seen("X", 2_000), Some(1_000));
        assert!(head.any_applied() && !StreamHead::default().any_applied());
    }
}
