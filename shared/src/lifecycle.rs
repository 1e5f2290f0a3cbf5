//! Finding lifecycle: per audit stream and finding (check + resource), an **episode** — first
//! seen (start of the first run that had it), resolved at (start of the first run without it),
//! how often it came back — and what a digest says about them: ages, overdue against a
//! per-severity deadline, came back, time to fix, a trend.
//!
//! A run sees the stream as an [`OpenSet`]: one compact entry per open episode (16 bytes, so
//! 10^6 open findings cost 16 MB), loaded before the first page is classified, marked as pages
//! arrive. When the last page is read every count of the digest is known; nothing is walked
//! again. Pure: the ingest feeds it what it loads and reads, and writes what it answers.
//!
//! Rules (ours, AWS has no notion of episodes):
//! - only COMPLETED tasks advance a stream, in start order (a run older than the last applied
//!   one changes nothing);
//! - an open episode is resolved only by a run whose check for it completed: a check that
//!   failed or was not run says nothing about its findings;
//! - a muted (suppressed) finding keeps its episode; it is counted apart, never as open, new,
//!   resolved, overdue or fixed;
//! - ages are measured at the run's start (what the digest describes).

use crate::vocabulary::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Partitions an audit stream's episodes are spread over (`EP#<stream>#<shard>`): DynamoDB
/// serves at most 1,000 write units per second per partition, and a first run of 10^6
/// findings writes at the ListAuditFindings ceiling (2,500/s).
pub const EPISODE_SHARDS: u32 = 16;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Age buckets of open findings, in days: `< 7`, `7–30`, `30–90`, `> 90`.
pub const AGE_BUCKETS_DAYS: [i64; 3] = [7, 30, 90];

/// Labels of [`AGE_BUCKETS_DAYS`].
pub const AGE_BUCKET_LABELS: [&str; 4] = ["< 7 d", "7-30 d", "30-90 d", "> 90 d"];

/// Earlier episodes kept per finding (first seen, resolved at): bounds the item size.
pub const MAX_EPISODE_HISTORY: usize = 20;

/// The stable 64-bit identity of a finding within a stream: FNV-1a of `check#resourceKey`.
/// (Two findings share one only with probability ~n²/2^65: 3·10^-8 at 10^6 open findings.)
pub fn finding_hash(check_name: &str, resource_key: &str) -> u64 {
    crate::finding::fnv1a(&format!("{check_name}#{resource_key}"))
}

/// A severity's rank in the digest's order: most severe first, severities AWS adds later last.
pub fn severity_rank(s: &Severity) -> u8 {
    Severity::KNOWN.iter().position(|k| k == s).unwrap_or(Severity::KNOWN.len()) as u8
}

/// The shard of a finding's episodes.
pub fn shard_of(hash: u64) -> u32 {
    (hash % EPISODE_SHARDS as u64) as u32
}

/// How long a finding of each severity may stay open (days), from the template's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
}

impl Default for Deadlines {
    /// CRITICAL 7 d, HIGH 30 d, MEDIUM 90 d, LOW 180 d.
    fn default() -> Self {
        Deadlines { critical: 7, high: 30, medium: 90, low: 180 }
    }
}

/// Why a deadline setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineError {
    #[error("'{0}' is not SEVERITY=days (e.g. CRITICAL=7)")]
    Malformed(String),
    #[error("unknown severity '{0}' (CRITICAL, HIGH, MEDIUM, LOW)")]
    UnknownSeverity(String),
    #[error("deadline '{0}' must be a whole number of days from 1 to 3650")]
    Days(String),
}

impl Deadlines {
    /// Parses `CRITICAL=7,HIGH=30,MEDIUM=90,LOW=180`; severities left out keep their default.
    pub fn parse(s: &str) -> Result<Self, DeadlineError> {
        let mut d = Deadlines::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (sev, days) = part.split_once('=').ok_or_else(|| DeadlineError::Malformed(part.to_owned()))?;
            let days: u32 = days
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=3650).contains(n))
                .ok_or_else(|| DeadlineError::Days(days.trim().to_owned()))?;
            match sev.trim() {
                "CRITICAL" => d.critical = days,
                "HIGH" => d.high = days,
                "MEDIUM" => d.medium = days,
                "LOW" => d.low = days,
                other => return Err(DeadlineError::UnknownSeverity(other.to_owned())),
            }
        }
        Ok(d)
    }

    /// The deadline of a severity in milliseconds; `None` for severities AWS adds later.
    pub fn for_severity(&self, s: &Severity) -> Option<i64> {
        let days = match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Unknown(_) => return None,
        };
        Some(days as i64 * DAY_MS)
    }
}

/// An open episode as stored (what a run loads of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEpisode {
    pub hash: u64,
    pub check_name: String,
    pub severity: Severity,
    /// Start of the first run of this episode (epoch ms).
    pub first_seen: i64,
    /// When the previous episode was resolved, if this one came back.
    pub previous_resolved: Option<i64>,
    /// Muted now.
    pub suppressed: bool,
    /// The run (start, epoch ms) that last changed `suppressed`, if any.
    pub muted_changed_at: Option<i64>,
}

const SEEN: u8 = 1;
const NEW: u8 = 2;
const MUTED: u8 = 4;
const MUTED_BEFORE: u8 = 8;
const CAME_BACK: u8 = 16;

/// One finding in a run's view, packed in 16 bytes (10^6 open findings: 16 MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    hash: u64,
    /// Seconds since the epoch.
    first_seen: u32,
    /// Index into the view's checks.
    check: u8,
    /// Severity index (low 3 bits) and flags (high 5 bits).
    meta: u8,
}

impl Entry {
    fn new(hash: u64, first_seen: u32, check: u8, severity: u8, flags: u8) -> Self {
        Entry { hash, first_seen, check, meta: (severity & 7) | (flags << 3) }
    }

    fn flags(&self) -> u8 {
        self.meta >> 3
    }

    fn has(&self, flag: u8) -> bool {
        self.flags() & flag != 0
    }

    fn set(&mut self, flag: u8) {
        self.meta |= flag << 3;
    }

    fn toggle(&mut self, flag: u8) {
        self.meta ^= flag << 3;
    }

    fn severity(&self) -> usize {
        (self.meta & 7) as usize
    }
}

/// Pushes with a growth of a quarter (not a doubling): at 10^6 entries a doubling would hold
/// three times the set in memory for a moment.
fn push(v: &mut Vec<Entry>, e: Entry) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len() / 4 + 4096);
    }
    v.push(e);
}

/// The `n` smallest items pushed (a bounded max-heap), in ascending order at the end.
struct Smallest<T: Ord> {
    heap: std::collections::BinaryHeap<T>,
    n: usize,
}

impl<T: Ord> Smallest<T> {
    fn new(n: usize) -> Self {
        Smallest { heap: std::collections::BinaryHeap::with_capacity(n + 1), n }
    }

    fn push(&mut self, item: T) {
        if self.heap.len() < self.n {
            self.heap.push(item);
        } else if self.heap.peek().is_some_and(|top| item < *top) {
            self.heap.pop();
            self.heap.push(item);
        }
    }

    fn into_sorted(self) -> Vec<T> {
        self.heap.into_sorted_vec()
    }
}

/// What a run should do about one finding it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Open before, open now, nothing to write but the page's seen record.
    Persisting,
    /// Open before; muted or unmuted since: update the episode's `suppressed`.
    MuteChanged,
    /// Already recorded as new by this run (a page read again after a crash).
    AlreadyNew,
    /// Not open before: a new episode (or one that came back: look for a resolved one).
    New,
}

/// Buckets of a view, by the hash's top bits: each grows, sorts and merges on its own, so
/// growing or merging holds at most a sixteenth of the set twice (at 10^6 open findings one
/// array would hold ~30 MB for a moment, half the function's memory).
const BUCKETS: usize = 16;

fn bucket(hash: u64) -> usize {
    (hash >> 60) as usize
}

/// The stream's open episodes as one run sees them, with what it read so far.
#[derive(Debug)]
pub struct OpenSet {
    run_start_s: u32,
    /// Per bucket, sorted by hash once loaded; new entries are appended to `added`.
    entries: Vec<Vec<Entry>>,
    added: Vec<Vec<Entry>>,
    checks: Vec<String>,
    severities: Vec<Severity>,
    /// Checks this run completed (only they resolve).
    completed: Vec<bool>,
}

fn secs(ms: i64) -> u32 {
    (ms.max(0) / 1000).min(u32::MAX as i64) as u32
}

fn ms(s: u32) -> i64 {
    s as i64 * 1000
}

impl OpenSet {
    /// An empty view for the run starting at `run_start_ms`, whose checks `completed` ran to
    /// the end (their episodes not seen again are resolved).
    pub fn new(run_start_ms: i64, completed: &[String]) -> Self {
        let mut set = OpenSet {
            run_start_s: secs(run_start_ms),
            entries: vec![Vec::new(); BUCKETS],
            added: vec![Vec::new(); BUCKETS],
            checks: Vec::new(),
            severities: Vec::new(),
            completed: Vec::new(),
        };
        for c in completed {
            let i = set.check_index(c);
            set.completed[i as usize] = true;
        }
        set
    }

    /// The index of a check (AWS has 17; past 255 they share the last index, which then
    /// resolves nothing).
    fn check_index(&mut self, check: &str) -> u8 {
        if let Some(i) = self.checks.iter().position(|c| c == check) {
            return i.min(255) as u8;
        }
        if self.checks.len() == 255 {
            self.checks.push("(more than 255 checks)".into());
            self.completed.push(false);
            return 255;
        }
        if self.checks.len() > 255 {
            return 255;
        }
        self.checks.push(check.to_owned());
        self.completed.push(false);
        (self.checks.len() - 1) as u8
    }

    /// The index of a severity (AWS has 4; the eighth and later ones share the last).
    fn severity_index(&mut self, s: &Severity) -> u8 {
        if let Some(i) = self.severities.iter().position(|x| x == s) {
            return i as u8;
        }
        if self.severities.len() >= 8 {
            return 7;
        }
        self.severities.push(s.clone());
        (self.severities.len() - 1) as u8
    }

    /// Adds a stored open episode (loading; call [`OpenSet::loaded`] after the last).
    /// Episodes first seen by this run are this run's new ones (written by an earlier slice).
    /// Runs of one stream may be applied out of order (per check, see
    /// [`crate::stream_head`]): an episode is this run's only if it is of a check this run
    /// applies and was first seen (or its mute changed) at this run's start exactly; a later
    /// run's episodes of other checks are neither new nor changed here.
    pub fn load(&mut self, e: &OpenEpisode) {
        let check = self.check_index(&e.check_name);
        let mine = |t: i64| secs(t) == self.run_start_s && self.completed.get(check as usize).copied().unwrap_or(false);
        let mut flags = 0;
        if mine(e.first_seen) {
            flags |= NEW;
            if e.previous_resolved.is_some() {
                flags |= CAME_BACK;
            }
        }
        if e.suppressed {
            flags |= MUTED;
        }
        // Muted before this run: as stored, unless this run changed it.
        let changed_now = e.muted_changed_at.is_some_and(mine);
        if e.suppressed != changed_now {
            flags |= MUTED_BEFORE;
        }
        let entry = Entry::new(e.hash, secs(e.first_seen), check, self.severity_index(&e.severity), flags);
        push(&mut self.entries[bucket(e.hash)], entry);
    }

    /// Ends loading: sorts for lookups (a hash loaded twice keeps one entry).
    pub fn loaded(&mut self) {
        self.merge();
    }

    fn merge(&mut self) {
        for (entries, added) in self.entries.iter_mut().zip(self.added.iter_mut()) {
            if entries.is_empty() {
                // A first run: everything is in `added`; no copy.
                std::mem::swap(entries, added);
            } else if !added.is_empty() {
                entries.reserve_exact(added.len());
                entries.append(added);
                *added = Vec::new();
            }
            entries.sort_unstable_by_key(|e| e.hash);
            entries.dedup_by(|b, a| {
                if a.hash == b.hash {
                    if b.has(SEEN) {
                        a.set(SEEN);
                    }
                    true
                } else {
                    false
                }
            });
            entries.shrink_to_fit();
        }
    }

    fn find(&mut self, hash: u64) -> Option<&mut Entry> {
        let entries = &mut self.entries[bucket(hash)];
        entries.binary_search_by_key(&hash, |e| e.hash).ok().map(|i| &mut entries[i])
    }

    /// Every entry, bucket by bucket.
    fn all(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().flatten()
    }

    /// Marks a finding this run read in an earlier slice (from the task's seen records).
    pub fn mark_seen(&mut self, hash: u64) {
        if let Some(e) = self.find(hash) {
            e.set(SEEN);
        }
    }

    /// Classifies a finding just read (and marks it seen). `suppressed`: muted in this run.
    pub fn observe(&mut self, hash: u64, suppressed: bool) -> Observation {
        let Some(e) = self.find(hash) else { return Observation::New };
        if e.has(NEW) {
            return Observation::AlreadyNew;
        }
        e.set(SEEN);
        if e.has(MUTED) != suppressed {
            e.toggle(MUTED);
            return Observation::MuteChanged;
        }
        Observation::Persisting
    }

    /// Records a new episode this run wrote (`previous_resolved`: it came back).
    pub fn record_new(
        &mut self,
        hash: u64,
        check_name: &str,
        severity: &Severity,
        suppressed: bool,
        previous_resolved: Option<i64>,
    ) {
        let mut flags = NEW | SEEN;
        if suppressed {
            flags |= MUTED;
        }
        if previous_resolved.is_some() {
            flags |= CAME_BACK;
        }
        let entry =
            Entry::new(hash, self.run_start_s, self.check_index(check_name), self.severity_index(severity), flags);
        push(&mut self.added[bucket(hash)], entry);
    }

    /// Starts a check over (its page token was refused): what was added so far is merged so
    /// that reading it again finds it as already new.
    pub fn restart_check(&mut self) {
        self.merge();
    }

    /// Takes `check` out of the checks this run resolves: its findings could not be read, so
    /// an open episode not seen again is not known to be fixed.
    pub fn withhold(&mut self, check: &str) {
        let i = self.check_index(check) as usize;
        self.completed[i] = false;
    }

    fn resolves(&self, e: &Entry) -> bool {
        !e.has(SEEN | NEW) && self.completed.get(e.check as usize).copied().unwrap_or(false)
    }

    /// Hashes of the episodes this run resolves (open before, not read, check completed),
    /// muted ones included: their episode ends too. By check: a check's resolved episodes were
    /// last seen at its own last run.
    pub fn resolved_by_check(&mut self) -> BTreeMap<String, Vec<u64>> {
        self.merge();
        let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for e in self.all().filter(|e| self.resolves(e)) {
            out.entry(self.checks[e.check as usize].clone()).or_default().push(e.hash);
        }
        out
    }

    /// Every number the digest needs, and the hashes of the findings it lists.
    pub fn stats(&mut self, deadlines: &Deadlines, listed: usize) -> LifecycleStats {
        self.merge();
        let start = ms(self.run_start_s);
        let mut st = LifecycleStats { run_start: start, ..Default::default() };
        // The lists keep only what they show (bounded heaps): memory stays O(listed).
        let mut new = Smallest::new(listed);
        let mut resolved = Smallest::new(listed);
        let mut came_back = Smallest::new(MAX_LIFECYCLE_LISTED);
        let mut unmuted = Smallest::new(listed);
        let mut oldest = Smallest::new(MAX_LIFECYCLE_LISTED);
        let mut overdue = Smallest::new(MAX_LIFECYCLE_LISTED);
        // Ages at resolution per severity index (exact median and p90 need them all; only
        // the resolved ones, a run's changes).
        let mut fix_ages: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
        let ranks: Vec<u8> = self.severities.iter().map(severity_rank).collect();
        for e in self.all() {
            let sev = &self.severities[e.severity()];
            let r = ranks[e.severity()];
            if self.resolves(e) {
                if !e.has(MUTED_BEFORE) {
                    *st.resolved.entry(sev.clone()).or_insert(0) += 1;
                    resolved.push((r, e.hash));
                    fix_ages.entry(e.severity()).or_default().push(start - ms(e.first_seen));
                }
                continue;
            }
            let open_now = e.has(SEEN | NEW) || !self.completed.get(e.check as usize).copied().unwrap_or(false);
            if !open_now {
                continue;
            }
            if e.has(MUTED) {
                *st.muted.entry(sev.clone()).or_insert(0) += 1;
                continue;
            }
            // Open and not muted.
            if e.has(NEW) {
                if e.has(CAME_BACK) {
                    st.came_back += 1;
                    came_back.push((r, e.hash));
                } else {
                    *st.new.entry(sev.clone()).or_insert(0) += 1;
                    new.push((r, e.hash));
                }
            } else if e.has(MUTED_BEFORE) {
                st.unmuted += 1;
                unmuted.push((r, e.hash));
            } else {
                st.persisting += 1;
            }
            // A later run's episode (runs applied out of order) is no older than this run.
            let age = (start - ms(e.first_seen)).max(0);
            let bucket = AGE_BUCKETS_DAYS.iter().position(|d| age < d * DAY_MS).unwrap_or(AGE_BUCKETS_DAYS.len());
            st.open_by_age.entry(sev.clone()).or_insert([0; 4])[bucket] += 1;
            oldest.push((e.first_seen, r, e.hash));
            if deadlines.for_severity(sev).is_some_and(|d| age > d) {
                *st.overdue.entry(sev.clone()).or_insert(0) += 1;
                overdue.push((r, e.first_seen, e.hash));
            }
        }
        let mut all: Vec<i64> = Vec::with_capacity(fix_ages.values().map(Vec::len).sum());
        for (sev_i, mut ages) in fix_ages {
            ages.sort_unstable();
            all.extend_from_slice(&ages);
            st.time_to_fix.insert(self.severities[sev_i].clone(), FixTimes::of(&ages));
        }
        all.sort_unstable();
        st.time_to_fix_all = (!all.is_empty()).then(|| FixTimes::of(&all));
        let hashes = |v: Smallest<(u8, u64)>| -> Vec<u64> { v.into_sorted().into_iter().map(|(_, h)| h).collect() };
        st.listed_new = hashes(new);
        st.listed_resolved = hashes(resolved);
        st.listed_came_back = hashes(came_back);
        st.listed_unmuted = hashes(unmuted);
        st.listed_oldest = oldest.into_sorted().into_iter().map(|(_, _, h)| h).collect();
        st.listed_overdue = overdue.into_sorted().into_iter().map(|(_, _, h)| h).collect();
        st
    }
}

/// Oldest open, overdue and came-back findings listed in a digest.
pub const MAX_LIFECYCLE_LISTED: usize = 20;

/// Median and 90th percentile of an age distribution (ms), nearest rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixTimes {
    pub count: u64,
    pub median_ms: i64,
    pub p90_ms: i64,
}

impl FixTimes {
    /// From ages sorted ascending (not empty).
    pub fn of(sorted: &[i64]) -> Self {
        let rank = |p: f64| {
            let r = (p * sorted.len() as f64).ceil() as usize;
            sorted[r.clamp(1, sorted.len()) - 1]
        };
        FixTimes { count: sorted.len() as u64, median_ms: rank(0.5), p90_ms: rank(0.9) }
    }
}

/// What a run's lifecycle says, counts exact; the `listed_*` hashes are resolved to findings
/// by the caller (most severe first, bounded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LifecycleStats {
    pub run_start: i64,
    pub new: BTreeMap<Severity, u64>,
    pub resolved: BTreeMap<Severity, u64>,
    pub persisting: u64,
    pub muted: BTreeMap<Severity, u64>,
    pub unmuted: u64,
    pub came_back: u64,
    /// Open (not muted) findings per severity, by [`AGE_BUCKETS_DAYS`].
    pub open_by_age: BTreeMap<Severity, [u64; 4]>,
    pub overdue: BTreeMap<Severity, u64>,
    pub time_to_fix: BTreeMap<Severity, FixTimes>,
    pub time_to_fix_all: Option<FixTimes>,
    pub listed_new: Vec<u64>,
    pub listed_resolved: Vec<u64>,
    pub listed_came_back: Vec<u64>,
    pub listed_unmuted: Vec<u64>,
    pub listed_oldest: Vec<u64>,
    pub listed_overdue: Vec<u64>,
}

/// A number of days, for people: `3 d`, `2 h` under a day.
pub fn fmt_age(ms: i64) -> String {
    if ms < DAY_MS {
        format!("{} h", ms.max(0) / 3_600_000)
    } else {
        format!("{} d", ms / DAY_MS)
    }
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sparkline of `values` (oldest first), scaled from 0 to the row's maximum: `▁▂▄█`.
/// Reads in any mail client with a Unicode font; the numbers are printed next to it.
pub fn sparkline(values: &[u64]) -> String {
    let max = values.iter().copied().max().unwrap_or(0);
    values.iter().map(|&v| SPARKS[(v * 7 + max / 2).checked_div(max).unwrap_or(0).min(7) as usize]).collect()
}

/// One row per severity: the sparkline of open findings over the runs, then first → last.
pub fn render_trend(out: &mut String, runs: usize, per_severity: &[(String, Vec<u64>)]) {
    let _ = writeln!(out, "\nOpen findings over the last {runs} runs (oldest first)");
    for (sev, values) in per_severity {
        let (first, last) = (values.first().copied().unwrap_or(0), values.last().copied().unwrap_or(0));
        let _ = writeln!(out, "  {:<9} {:<10} {first} → {last}", sev, sparkline(values));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    fn ep(hash: u64, check: &str, sev: Severity, first_seen: i64) -> OpenEpisode {
        OpenEpisode {
            hash,
            check_name: check.into(),
            severity: sev,
            first_seen,
            previous_resolved: None,
            suppressed: false,
            muted_changed_at: None,
        }
    }

    fn checks() -> Vec<String> {
        vec!["A".into(), "B".into()]
    }

    impl OpenSet {
        /// Every resolved hash, check by check.
        fn resolved(&mut self) -> Vec<u64> {
            self.resolved_by_check().into_values().flatten().collect()
        }
    }

    #[test]
    fn deadlines_parse_with_defaults_and_name_what_is_wrong() {
        let d = Deadlines::parse("CRITICAL=3, LOW=365").unwrap();
        assert_eq!(d, Deadlines { critical: 3, high: 30, medium: 90, low: 365 });
        assert_eq!(Deadlines::parse("").unwrap(), Deadlines::default());
        assert_eq!(Deadlines::parse("URGENT=1").unwrap_err(), DeadlineError::UnknownSeverity("URGENT".into()));
        assert_eq!(Deadlines::parse("HIGH=0").unwrap_err(), DeadlineError::Days("0".into()));
        assert_eq!(Deadlines::parse("HIGH").unwrap_err(), DeadlineError::Malformed("HIGH".into()));
        assert_eq!(d.for_severity(&Severity::Critical), Some(3 * DAY_MS));
        assert_eq!(d.for_severity(&Severity::Unknown("X".into())), None);
    }

    #[test]
    fn a_withheld_check_resolves_nothing_and_its_episodes_stay_open() {
        const T: i64 = 1_700_000_000_000;
        let mut set = OpenSet::new(T, &["A".to_string(), "B".to_string()]);
        set.load(&ep(1, "A", Severity::High, T - DAY_MS));
        set.load(&ep(2, "B", Severity::High, T - DAY_MS));
        set.loaded();
        set.withhold("B");
        let resolved = set.resolved_by_check();
        assert_eq!(resolved.keys().collect::<Vec<_>>(), ["A"], "B was not read: its episode is not fixed");
        let st = set.stats(&Deadlines::default(), 10);
        assert_eq!(st.resolved[&Severity::High], 1);
        assert_eq!(st.open_by_age[&Severity::High].iter().sum::<u64>(), 1, "B's episode is still open");
    }

    #[test]
    fn a_run_applied_after_a_later_one_owns_only_its_checks_episodes() {
        // This run (checks A and B, start T) is applied after a run of check C started later
        // (T + 5 min) and one of check D started at T too: their episodes are not this run's.
        let mut set = OpenSet::new(T, &checks());
        set.load(&ep(1, "C", Severity::High, T + 300_000));
        let mut muted_later = ep(2, "C", Severity::High, T - DAY_MS);
        muted_later.suppressed = true;
        muted_later.muted_changed_at = Some(T + 300_000);
        set.load(&muted_later);
        set.load(&ep(3, "D", Severity::Low, T));
        set.load(&ep(4, "A", Severity::Low, T)); // written by an earlier slice of this run
        set.loaded();
        assert_eq!(set.observe(4, false), Observation::AlreadyNew);
        let st = set.stats(&Deadlines::default(), 10);
        assert_eq!(st.new, BTreeMap::from([(Severity::Low, 1)]), "only 4 is new");
        assert_eq!((st.persisting, st.unmuted), (2, 0), "1 and 3 stay open, unchanged; 2 stays muted");
        assert_eq!(st.open_by_age[&Severity::High], [1, 0, 0, 0], "a later run's episode is no older than 0");
        assert!(set.resolved().is_empty());
    }

    #[test]
    fn resolved_episodes_are_grouped_by_check() {
        let mut set = OpenSet::new(T, &checks());
        set.load(&ep(1, "A", Severity::Low, T - DAY_MS));
        set.load(&ep(2, "B", Severity::Low, T - DAY_MS));
        set.load(&ep(3, "B", Severity::Low, T - DAY_MS));
        set.load(&ep(4, "C", Severity::Low, T - DAY_MS));
        set.loaded();
        let mut by_check = set.resolved_by_check();
        by_check.values_mut().for_each(|v| v.sort_unstable());
        assert_eq!(by_check, BTreeMap::from([("A".to_string(), vec![1]), ("B".to_string(), vec![2, 3])]));
    }

    #[test]
    fn a_run_classifies_new_persisting_resolved_and_ages() {
        let mut set = OpenSet::new(T, &checks());
        set.load(&ep(1, "A", Severity::Critical, T - 10 * DAY_MS)); // persists, overdue (> 7 d)
        set.load(&ep(2, "A", Severity::Critical, T - 3 * DAY_MS)); // resolved after 3 d
        set.load(&ep(3, "B", Severity::Low, T - 100 * DAY_MS)); // persists, > 90 d, not overdue
        set.load(&ep(4, "C", Severity::High, T - 40 * DAY_MS)); // check C not run: stays open
        set.loaded();
        assert_eq!(set.observe(1, false), Observation::Persisting);
        assert_eq!(set.observe(3, false), Observation::Persisting);
        assert_eq!(set.observe(5, false), Observation::New);
        set.record_new(5, "B", &Severity::Low, false, None);
        assert_eq!(set.observe(6, false), Observation::New);
        set.record_new(6, "A", &Severity::Critical, false, Some(T - 2 * DAY_MS));
        assert_eq!(set.resolved(), vec![2]);
        let st = set.stats(&Deadlines::default(), 10);
        assert_eq!(st.new, BTreeMap::from([(Severity::Low, 1)]));
        assert_eq!(st.came_back, 1);
        assert_eq!(st.listed_came_back, vec![6]);
        assert_eq!(st.resolved, BTreeMap::from([(Severity::Critical, 1)]));
        assert_eq!(st.persisting, 3, "1, 3 and 4 (its check did not run)");
        assert_eq!(st.open_by_age[&Severity::Critical], [1, 1, 0, 0], "6 is 0 d old, 1 is 10 d");
        assert_eq!(st.open_by_age[&Severity::Low], [1, 0, 0, 1]);
        assert_eq!(st.open_by_age[&Severity::High], [0, 0, 1, 0]);
        assert_eq!(st.overdue, BTreeMap::from([(Severity::Critical, 1), (Severity::High, 1)]));
        assert_eq!(st.listed_overdue, vec![1, 4], "most severe first");
        assert_eq!(st.listed_oldest[0], 3);
        assert_eq!(st.time_to_fix_all, Some(FixTimes { count: 1, median_ms: 3 * DAY_MS, p90_ms: 3 * DAY_MS }));
    }

    #[test]
    fn muted_findings_keep_their_episode_and_are_counted_apart() {
        let mut set = OpenSet::new(T, &checks());
        set.load(&OpenEpisode { suppressed: true, ..ep(1, "A", Severity::High, T - DAY_MS) }); // muted, stays
        set.load(&OpenEpisode { suppressed: true, ..ep(2, "A", Severity::High, T - DAY_MS) }); // unmuted now
        set.load(&ep(3, "A", Severity::High, T - DAY_MS)); // muted now
        set.load(&OpenEpisode { suppressed: true, ..ep(4, "A", Severity::High, T - 50 * DAY_MS) }); // gone
        set.loaded();
        assert_eq!(set.observe(1, true), Observation::Persisting);
        assert_eq!(set.observe(2, false), Observation::MuteChanged);
        assert_eq!(set.observe(3, true), Observation::MuteChanged);
        set.record_new(9, "A", &Severity::High, true, None);
        assert_eq!(set.resolved(), vec![4], "a muted episode ends too");
        let st = set.stats(&Deadlines::default(), 10);
        assert_eq!(st.muted, BTreeMap::from([(Severity::High, 3)]), "1, 3 and the new muted 9");
        assert_eq!(st.unmuted, 1);
        assert!(st.resolved.is_empty(), "a muted finding going away is no fix");
        assert!(st.new.is_empty());
        assert_eq!(st.time_to_fix_all, None);
    }

    #[test]
    fn a_continued_run_rebuilds_the_same_view_from_what_was_written() {
        // Slice 1 read finding 1 (persisting, seen record), wrote 7 as new and unmuted 2.
        let mut set = OpenSet::new(T, &checks());
        set.load(&ep(1, "A", Severity::Medium, T - 20 * DAY_MS));
        set.load(&ep(2, "A", Severity::Medium, T - 20 * DAY_MS)); // stored unmuted by this run
        set.load(&ep(3, "A", Severity::Medium, T - 20 * DAY_MS));
        set.load(&ep(7, "A", Severity::Medium, T));
        set.loaded();
        set.mark_seen(1);
        set.mark_seen(2);
        let mut second = OpenSet::new(T, &checks());
        second.load(&ep(1, "A", Severity::Medium, T - 20 * DAY_MS));
        second.load(&OpenEpisode { muted_changed_at: Some(T), ..ep(2, "A", Severity::Medium, T - 20 * DAY_MS) });
        second.load(&ep(3, "A", Severity::Medium, T - 20 * DAY_MS));
        second.load(&ep(7, "A", Severity::Medium, T));
        second.loaded();
        second.mark_seen(1);
        second.mark_seen(2);
        assert_eq!(second.observe(7, false), Observation::AlreadyNew, "a page read again");
        assert_eq!(second.resolved(), vec![3]);
        let st = second.stats(&Deadlines::default(), 10);
        assert_eq!((st.persisting, st.unmuted), (1, 1));
        assert_eq!(st.new, BTreeMap::from([(Severity::Medium, 1)]));
    }

    #[test]
    fn a_restarted_check_does_not_count_its_new_findings_twice() {
        let mut set = OpenSet::new(T, &checks());
        set.loaded();
        set.record_new(1, "A", &Severity::Low, false, None);
        set.restart_check();
        assert_eq!(set.observe(1, false), Observation::AlreadyNew);
        assert_eq!(set.stats(&Deadlines::default(), 10).new[&Severity::Low], 1);
    }

    #[test]
    fn a_view_spread_over_every_bucket_reads_as_one_set() {
        // A hash with each top nibble (each bucket): loaded, seen, added and resolved.
        let h = |top: u64, low: u64| (top << 60) | low;
        let mut set = OpenSet::new(T, &checks());
        for top in (0..16).rev() {
            set.load(&ep(h(top, 1), "A", Severity::High, T - DAY_MS)); // persists
            set.load(&ep(h(top, 2), "A", Severity::High, T - DAY_MS)); // resolved
        }
        set.load(&ep(h(5, 1), "A", Severity::High, T - DAY_MS)); // loaded twice: one entry
        set.loaded();
        for top in 0..16 {
            assert_eq!(set.observe(h(top, 1), false), Observation::Persisting);
            assert_eq!(set.observe(h(top, 3), false), Observation::New);
            set.record_new(h(top, 3), "A", &Severity::High, false, None);
        }
        set.restart_check();
        assert_eq!(set.observe(h(9, 3), false), Observation::AlreadyNew, "added ones are found once merged");
        set.record_new(h(9, 4), "B", &Severity::Low, false, None);
        assert_eq!(set.resolved(), (0..16).map(|top| h(top, 2)).collect::<Vec<_>>(), "every bucket, in hash order");
        let st = set.stats(&Deadlines::default(), 100);
        assert_eq!(st.persisting, 16);
        assert_eq!(st.new, BTreeMap::from([(Severity::High, 16), (Severity::Low, 1)]));
        assert_eq!(st.resolved, BTreeMap::from([(Severity::High, 16)]));
        assert_eq!(st.listed_new.len(), 17);
    }

    #[test]
    fn fix_times_use_nearest_rank() {
        let ages: Vec<i64> = (1..=10).collect();
        assert_eq!(FixTimes::of(&ages), FixTimes { count: 10, median_ms: 5, p90_ms: 9 });
        assert_eq!(FixTimes::of(&[4]), FixTimes { count: 1, median_ms: 4, p90_ms: 4 });
    }

    #[test]
    fn sparklines_scale_to_the_row() {
        assert_eq!(sparkline(&[0, 0]), "▁▁");
        assert_eq!(sparkline(&[1, 2, 4, 8]), "▂▃▅█");
        let mut out = String::new();
        render_trend(&mut out, 3, &[("CRITICAL".into(), vec![5, 3, 0])]);
        assert!(out.contains("CRITICAL  █▅▁"), "{out}");
        assert!(out.contains("5 → 0"));
    }

    #[test]
    fn a_million_entries_fit_in_16_megabytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
    }

    #[test]
    fn lists_keep_the_smallest_in_order() {
        let mut s = Smallest::new(3);
        [5, 1, 4, 2, 3, 0].into_iter().for_each(|x| s.push(x));
        assert_eq!(s.into_sorted(), vec![0, 1, 2]);
    }
}
