//! Questions asked of the finding history (the `audit-history` CLI): open findings filtered by
//! check, severity, age and deadline; the lifecycle statistics of a period; one resource's
//! episodes. Pure: over episodes read from the table.

use crate::lifecycle::{Deadlines, FixTimes, DAY_MS};
use crate::ports::Episode;
use crate::vocabulary::Severity;
use std::collections::BTreeMap;

/// Which open findings to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenFilter {
    pub check: Option<String>,
    pub severity: Option<Severity>,
    /// Open at least this many days.
    pub min_age_days: Option<u32>,
    /// Only those past their severity's deadline.
    pub overdue: bool,
    /// Muted (suppressed) ones too.
    pub include_muted: bool,
}

/// An open finding with its age at `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenFinding {
    pub episode: Episode,
    pub age_ms: i64,
    pub overdue: bool,
}

/// `e` as it stood at `at` (epoch ms): the episode of its finding that was open then (the
/// stored one, or an earlier one of its history, with the times it had come back by then) and
/// whether it was muted then; `None` when the finding was not open at `at`.
pub fn as_of(mut e: Episode, at: i64) -> Option<Episode> {
    let within = |first: i64, resolved: Option<i64>| first <= at && resolved.is_none_or(|r| at < r);
    if !within(e.first_seen, e.resolved_at) {
        let (i, (first, _)) = e.history.iter().enumerate().find(|(_, (f, r))| within(*f, Some(*r)))?;
        // An earlier episode: open then, not resolved yet, back as often as episodes preceded it.
        e.came_back = e.came_back.saturating_sub((e.history.len() - i) as u32);
        e.first_seen = *first;
        e.resolved_at = None;
    }
    e.suppressed = muted_at(&e, at);
    Some(e)
}

/// Whether `e` was muted at `at` (epoch ms): as it is now, unless it was muted or unmuted
/// since, when it was the other way.
pub fn muted_at(e: &Episode, at: i64) -> bool {
    e.suppressed ^ e.muted_changed_at.is_some_and(|m| m > at)
}

/// Every episode the findings `found` had by `at` (epoch ms), each as it stood then: the
/// earlier ones of a finding's history (never muted), then the stored one; an episode resolved
/// after `at` is open, one begun after it is left out. By stream, oldest first.
pub fn episodes_until(found: Vec<Episode>, at: i64) -> Vec<Episode> {
    let mut spans = Vec::new();
    for e in found {
        for (first, resolved) in &e.history {
            spans.push(Episode {
                first_seen: *first,
                resolved_at: Some(*resolved),
                came_back: 0,
                suppressed: false,
                muted_changed_at: None,
                ..e.clone()
            });
        }
        spans.push(e);
    }
    let mut shown: Vec<Episode> = spans
        .into_iter()
        .filter(|e| e.first_seen <= at)
        .map(|mut e| {
            e.resolved_at = e.resolved_at.filter(|r| *r <= at);
            e.suppressed = muted_at(&e, at);
            e
        })
        .collect();
    shown.sort_by(|a, b| (&a.stream, a.first_seen).cmp(&(&b.stream, b.first_seen)));
    shown
}

/// The episodes open at `now` (epoch ms; an earlier time answers as the history stood then:
/// a finding first seen later is left out, one resolved since is in) passing `filter`, oldest
/// first, aged at `now`.
pub fn open_findings(
    episodes: impl IntoIterator<Item = Episode>,
    filter: &OpenFilter,
    deadlines: &Deadlines,
    now: i64,
) -> Vec<OpenFinding> {
    let mut out: Vec<OpenFinding> = episodes
        .into_iter()
        .filter_map(|e| as_of(e, now))
        .filter(|e| filter.include_muted || !e.suppressed)
        .filter(|e| filter.check.as_deref().is_none_or(|c| e.finding.check_name.as_str() == c))
        .filter(|e| filter.severity.as_ref().is_none_or(|s| e.finding.severity == *s))
        .map(|e| {
            let age_ms = now - e.first_seen;
            let overdue = !e.suppressed && deadlines.for_severity(&e.finding.severity).is_some_and(|d| age_ms > d);
            OpenFinding { episode: e, age_ms, overdue }
        })
        .filter(|o| filter.min_age_days.is_none_or(|d| o.age_ms >= i64::from(d) * DAY_MS))
        .filter(|o| !filter.overdue || o.overdue)
        .collect();
    out.sort_by(|a, b| {
        (a.episode.first_seen, &a.episode.finding.check_name, &a.episode.resource_key).cmp(&(
            b.episode.first_seen,
            &b.episode.finding.check_name,
            &b.episode.resource_key,
        ))
    });
    out
}

/// What happened to one severity's findings in a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodLine {
    /// Episodes that began in the period (new, or came back).
    pub opened: u64,
    /// Of those, findings that had been resolved before.
    pub came_back: u64,
    /// Episodes resolved in the period (muted ones left out).
    pub resolved: u64,
    /// Age at resolution of those.
    pub time_to_fix: Option<FixTimes>,
    /// Open (not muted) at the end of the period, and of those past the deadline.
    pub open_at_end: u64,
    pub overdue_at_end: u64,
}

/// Lifecycle statistics per severity over `[from, to)` (epoch ms), a line for every known
/// severity (zeros included) and for any other the episodes have. Episodes earlier than the
/// one stored (a finding's history) count for opened and resolved too.
pub fn period_stats(
    episodes: impl IntoIterator<Item = Episode>,
    from: i64,
    to: i64,
    deadlines: &Deadlines,
) -> BTreeMap<Severity, PeriodLine> {
    let mut lines: BTreeMap<Severity, PeriodLine> =
        Severity::KNOWN.iter().map(|s| (s.clone(), PeriodLine::default())).collect();
    let mut ages: BTreeMap<Severity, Vec<i64>> = BTreeMap::new();
    let within = |t: i64| from <= t && t < to;
    for e in episodes {
        let sev = e.finding.severity.clone();
        let line = lines.entry(sev.clone()).or_default();
        let mut spans: Vec<(i64, Option<i64>, bool)> =
            e.history.iter().enumerate().map(|(i, (f, r))| (*f, Some(*r), i > 0)).collect();
        spans.push((e.first_seen, e.resolved_at, !e.history.is_empty() || e.came_back > 0));
        for (first, resolved, came_back) in spans {
            if within(first) {
                line.opened += 1;
                line.came_back += came_back as u64;
            }
            if let Some(r) = resolved.filter(|r| within(*r)) {
                if !e.suppressed {
                    line.resolved += 1;
                    ages.entry(sev.clone()).or_default().push(r - first);
                }
            }
            let open_at_end = first < to && resolved.is_none_or(|r| r >= to);
            if open_at_end && !e.suppressed {
                line.open_at_end += 1;
                if deadlines.for_severity(&sev).is_some_and(|d| to - first > d) {
                    line.overdue_at_end += 1;
                }
            }
        }
    }
    for (sev, mut a) in ages {
        a.sort_unstable();
        if let Some(l) = lines.get_mut(&sev) {
            l.time_to_fix = Some(FixTimes::of(&a));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Finding;
    use std::collections::BTreeMap as Map;

    fn episode(
        check: &str,
        sev: Severity,
        id: &str,
        first: i64,
        resolved: Option<i64>,
        history: Vec<(i64, i64)>,
    ) -> Episode {
        let finding = Finding {
            task_id: "t".into(),
            check_name: check.into(),
            finding_id: None,
            severity: sev,
            resource_type: crate::vocabulary::ResourceType::DeviceCertificate,
            resource: Map::from([("deviceCertificateId".to_owned(), id.to_owned())]),
            additional_info: Map::new(),
            reason_code: None,
            reason: None,
            finding_time: None,
            related_resources: None,
            is_suppressed: false,
        };
        let came_back = history.len() as u32;
        Episode {
            stream: "daily".into(),
            resource_key: finding.resource_key(),
            finding,
            first_seen: first,
            last_seen: None,
            resolved_at: resolved,
            history,
            came_back,
            suppressed: false,
            muted_changed_at: None,
        }
    }

    #[test]
    fn open_findings_filter_by_check_severity_age_and_deadline() {
        let now = 100 * DAY_MS;
        let all = vec![
            episode("A", Severity::Critical, "1", now - 10 * DAY_MS, None, vec![]),
            episode("A", Severity::Critical, "2", now - DAY_MS, None, vec![]),
            episode("B", Severity::Low, "3", now - 50 * DAY_MS, None, vec![]),
            episode("A", Severity::Critical, "4", now - 90 * DAY_MS, Some(now - DAY_MS), vec![]),
        ];
        let d = Deadlines::default();
        let ids = |f: &OpenFilter| -> Vec<String> {
            open_findings(all.clone(), f, &d, now).iter().map(|o| o.episode.resource_key.clone()).collect()
        };
        assert_eq!(
            ids(&OpenFilter::default()),
            ["deviceCertificateId=3", "deviceCertificateId=1", "deviceCertificateId=2"]
        );
        assert_eq!(ids(&OpenFilter { overdue: true, ..Default::default() }), ["deviceCertificateId=1"]);
        assert_eq!(ids(&OpenFilter { check: Some("B".into()), ..Default::default() }), ["deviceCertificateId=3"]);
        assert_eq!(
            ids(&OpenFilter { min_age_days: Some(5), severity: Some(Severity::Critical), ..Default::default() }),
            ["deviceCertificateId=1"]
        );
    }

    #[test]
    fn open_findings_at_an_earlier_time_answer_as_the_history_stood_then() {
        let d = Deadlines::default();
        let all = vec![
            episode("A", Severity::Critical, "later", 30 * DAY_MS, None, vec![]),
            episode("A", Severity::Critical, "fixed-since", 5 * DAY_MS, Some(25 * DAY_MS), vec![]),
            // Open days 2-8, back from day 15: at day 20 its current episode, at day 6 the first.
            episode("A", Severity::Critical, "back", 15 * DAY_MS, None, vec![(2 * DAY_MS, 8 * DAY_MS)]),
        ];
        let at = |t: i64| -> Vec<(String, i64)> {
            open_findings(all.clone(), &OpenFilter::default(), &d, t)
                .iter()
                .map(|o| (o.episode.resource_key.clone(), o.age_ms / DAY_MS))
                .collect()
        };
        assert_eq!(
            at(20 * DAY_MS),
            [("deviceCertificateId=fixed-since".into(), 15), ("deviceCertificateId=back".into(), 5)]
        );
        assert_eq!(
            at(6 * DAY_MS),
            [("deviceCertificateId=back".into(), 4), ("deviceCertificateId=fixed-since".into(), 1)]
        );
        assert_eq!(at(10 * DAY_MS), [("deviceCertificateId=fixed-since".into(), 5)]);
        let back_at = |t: i64| {
            let o = open_findings(all.clone(), &OpenFilter::default(), &d, t);
            o.iter().find(|o| o.episode.resource_key.ends_with("back")).map(|o| o.episode.came_back)
        };
        assert_eq!((back_at(6 * DAY_MS), back_at(20 * DAY_MS)), (Some(0), Some(1)), "not back yet at day 6");
        assert_eq!(at(40 * DAY_MS).len(), 2, "now: the open ones");
    }

    #[test]
    fn a_resource_s_episodes_until_a_time_are_those_begun_by_then_as_they_stood() {
        // Open days 2-8, back from day 15 (muted on day 18).
        let mut back = episode("A", Severity::Critical, "back", 15 * DAY_MS, None, vec![(2 * DAY_MS, 8 * DAY_MS)]);
        (back.suppressed, back.muted_changed_at) = (true, Some(18 * DAY_MS));
        let spans = |t: i64| -> Vec<(i64, Option<i64>, bool)> {
            episodes_until(vec![back.clone()], t).iter().map(|e| (e.first_seen, e.resolved_at, e.suppressed)).collect()
        };
        assert_eq!(spans(5 * DAY_MS), [(2 * DAY_MS, None, false)], "open then, resolved later");
        assert_eq!(spans(16 * DAY_MS), [(2 * DAY_MS, Some(8 * DAY_MS), false), (15 * DAY_MS, None, false)]);
        assert_eq!(spans(20 * DAY_MS), [(2 * DAY_MS, Some(8 * DAY_MS), false), (15 * DAY_MS, None, true)]);
        assert!(spans(DAY_MS).is_empty(), "nothing begun yet");
    }

    #[test]
    fn a_finding_muted_since_was_not_muted_then() {
        let mut muted = episode("A", Severity::High, "m", DAY_MS, None, vec![]);
        (muted.suppressed, muted.muted_changed_at) = (true, Some(10 * DAY_MS));
        let listed =
            |t: i64| open_findings(vec![muted.clone()], &OpenFilter::default(), &Deadlines::default(), t).len();
        assert_eq!((listed(5 * DAY_MS), listed(12 * DAY_MS)), (1, 0));
    }

    #[test]
    fn period_stats_count_episodes_past_and_present() {
        let d = Deadlines::default();
        let all = vec![
            // Opened day 5, fixed day 8, back day 12, still open.
            episode("A", Severity::Critical, "1", 12 * DAY_MS, None, vec![(5 * DAY_MS, 8 * DAY_MS)]),
            // Opened before the period, fixed within it after 20 days.
            episode("A", Severity::Critical, "2", -10 * DAY_MS, Some(10 * DAY_MS), vec![]),
        ];
        let s = period_stats(all, 0, 20 * DAY_MS, &d);
        assert_eq!(s.keys().cloned().collect::<Vec<_>>(), Severity::KNOWN.to_vec(), "every severity, LOW too");
        assert_eq!(s[&Severity::Low], PeriodLine::default());
        let c = &s[&Severity::Critical];
        assert_eq!((c.opened, c.came_back, c.resolved, c.open_at_end, c.overdue_at_end), (2, 1, 2, 1, 1));
        assert_eq!(c.time_to_fix, Some(FixTimes { count: 2, median_ms: 3 * DAY_MS, p90_ms: 20 * DAY_MS }));
    }
}
