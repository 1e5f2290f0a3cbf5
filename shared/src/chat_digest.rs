//! The digest as a chat message: AWS Chatbot (Amazon Q Developer in chat applications) renders
//! only events it knows and messages in its *custom notification* schema; a plain-text SNS
//! message is not shown in Slack or Teams. This module turns a [`Digest`] into that schema
//! (`version` "1.0", `source` "custom", `content` with title, markdown description, next steps
//! and keywords, `metadata` for threading and filtering). Pure.
//!
//! Source: <https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>. The
//! documentation gives no length limits for the fields; the ones below are ours (see
//! `docs/deploy-review.md`): the description stays within Slack's 3,000-character section text
//! limit, the whole message far within SNS's 256 KB.

use crate::checks::{catalog, failure_remedy};
use crate::digest::Digest;
use crate::finding::resource_label;
use crate::summary::ON_DEMAND_STREAM;
use crate::vocabulary::CheckRunStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Longest title (characters) [ours].
pub const MAX_TITLE_CHARS: usize = 250;
/// Longest description (characters): Slack's section text limit [ours].
pub const MAX_DESCRIPTION_CHARS: usize = 3000;
/// Most next steps shown [ours].
pub const MAX_NEXT_STEPS: usize = 5;
/// Longest next step (characters) [ours].
pub const MAX_NEXT_STEP_CHARS: usize = 300;
/// Most keywords [ours].
pub const MAX_KEYWORDS: usize = 10;
/// Longest keyword (characters) [ours].
pub const MAX_KEYWORD_CHARS: usize = 75;
/// New findings listed at most in the description (the rest are counted).
pub const MAX_LISTED_IN_CHAT: usize = 10;
/// Expiring suppressions listed at most in the description.
pub const MAX_EXPIRING_IN_CHAT: usize = 3;
/// `metadata.eventType` of every chat digest.
pub const EVENT_TYPE: &str = "DeviceDefenderAuditDigest";

/// A custom notification (the schema's top level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatNotification {
    /// Always "1.0".
    pub version: String,
    /// Always "custom".
    pub source: String,
    /// Unique event id: `digest-<taskId>`.
    pub id: String,
    /// What the channel shows.
    pub content: ChatContent,
    /// Threading and filtering.
    pub metadata: ChatMetadata,
}

/// `content` of a custom notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatContent {
    /// Always "client-markdown" (the only value the schema supports).
    pub text_type: String,
    /// The digest's subject.
    pub title: String,
    /// Severity table, worst new findings, failed checks, console link (markdown).
    pub description: String,
    /// What to do: the remedies of the checks with new findings, most severe first.
    pub next_steps: Vec<String>,
    /// Audit, status and the severities with new findings, for channel filtering.
    pub keywords: Vec<String>,
}

/// `metadata` of a custom notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMetadata {
    /// Runs of one audit thread together: `device-defender-audit-<audit>`.
    pub thread_id: String,
    /// One line: the subject.
    pub summary: String,
    /// [`EVENT_TYPE`].
    pub event_type: String,
    /// The task id.
    pub related_resources: Vec<String>,
    /// Task id, previous task id, and open/new counts per severity.
    pub additional_context: BTreeMap<String, String>,
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The chat message of a digest.
pub fn chat_notification(d: &Digest) -> ChatNotification {
    let mut additional_context = BTreeMap::from([("taskId".to_owned(), d.task_id.clone())]);
    if let Some(p) = &d.previous_task_id {
        additional_context.insert("previousTaskId".to_owned(), p.clone());
    }
    for s in &d.severities {
        additional_context.insert(format!("open{}", s.severity), s.open.to_string());
        additional_context.insert(format!("new{}", s.severity), s.new.to_string());
    }
    let stream = if d.task_type == "SCHEDULED_AUDIT_TASK" { d.audit.as_str() } else { ON_DEMAND_STREAM };
    ChatNotification {
        version: "1.0".into(),
        source: "custom".into(),
        id: format!("digest-{}", d.task_id),
        content: ChatContent {
            text_type: "client-markdown".into(),
            title: cut(&d.subject, MAX_TITLE_CHARS),
            description: description(d),
            next_steps: next_steps(d),
            keywords: keywords(d),
        },
        metadata: ChatMetadata {
            thread_id: format!("device-defender-audit-{stream}"),
            summary: d.subject.clone(),
            event_type: EVENT_TYPE.into(),
            related_resources: vec![d.task_id.clone()],
            additional_context,
        },
    }
}

/// The message body published to the chat topic (JSON).
pub fn render_chat(d: &Digest) -> String {
    serde_json::to_string(&chat_notification(d)).unwrap_or_default()
}

fn description(d: &Digest) -> String {
    let mut head = String::new();
    let compared = if d.previous_task_id.is_some() { "compared with the previous run" } else { "first run" };
    let _ = writeln!(head, "*{}* · task `{}` · {} · {compared}", d.audit, d.task_id, d.task_status);
    let _ = writeln!(head, "{} new · {} resolved · {} persisting", d.new_count, d.resolved_count, d.persisting_count);
    if !d.unread.is_empty() {
        let _ = writeln!(head, "*Could not read the findings* of {} (in no count below):", d.unread.len());
        for (check, why) in &d.unread {
            let _ = writeln!(head, "• {check}: {}", cut(why, 200));
        }
    }
    let _ = writeln!(head, "```");
    let _ = writeln!(head, "{:<10}{:>9}{:>8}{:>10}", "severity", "open", "new", "resolved");
    for s in &d.severities {
        let _ = writeln!(
            head,
            "{:<10}{:>9}{:>8}{:>10}",
            s.severity,
            s.open,
            format!("+{}", s.new),
            format!("-{}", s.resolved)
        );
    }
    let _ = writeln!(head, "```");
    if let Some(l) = &d.lifecycle {
        if l.overdue_count > 0 {
            let per: Vec<String> = l.overdue.iter().filter(|(_, n)| **n > 0).map(|(s, n)| format!("{s} {n}")).collect();
            let _ = writeln!(head, "*{} overdue* (open past their deadline): {}", l.overdue_count, per.join(", "));
        }
        if l.came_back_count > 0 {
            let _ = writeln!(head, "{} came back after being fixed", l.came_back_count);
        }
        if let Some(t) = &l.time_to_fix_all {
            let _ = writeln!(
                head,
                "time to fix: median {}, p90 {} ({} fixed)",
                crate::lifecycle::fmt_age(t.median_ms),
                crate::lifecycle::fmt_age(t.p90_ms),
                t.count
            );
        }
    }
    if d.muted_count > 0 || d.unmuted_count > 0 {
        let _ = writeln!(
            head,
            "{} muted (suppressed in Device Defender, in no count above) · {} unmuted since the previous run",
            d.muted_count, d.unmuted_count
        );
    }
    if let Some(s) = d.suppressions.as_ref().filter(|s| !s.expiring.is_empty()) {
        let _ = writeln!(
            head,
            "*{} suppression(s) expire within 7 days*: renew them or fix the findings",
            s.expiring.len()
        );
        for e in s.expiring.iter().take(MAX_EXPIRING_IN_CHAT) {
            let day = chrono::DateTime::from_timestamp_millis(e.expires_at)
                .map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string());
            let _ = writeln!(
                head,
                "• {} `{}` expires {day}: {}",
                e.check_name,
                cut(&e.resource_key, 48),
                cut(e.reason.as_deref().unwrap_or("no reason given"), 120)
            );
        }
    }
    let failed: Vec<_> = d.checks.iter().filter(|c| c.status == CheckRunStatus::Failed.as_str()).collect();
    if !failed.is_empty() {
        let names: Vec<String> = failed
            .iter()
            .map(|c| format!("{} ({})", c.check_name, c.error_code.as_deref().unwrap_or("no error code")))
            .collect();
        let _ = writeln!(head, "*Failed checks:* {}", names.join(", "));
    }
    let tail = format!("Console: {}", d.console_url);
    let mut body = head;
    if d.new_count > 0 {
        let _ = writeln!(body, "*Worst new findings*");
        let budget = MAX_DESCRIPTION_CHARS.saturating_sub(tail.chars().count() + 60);
        let mut shown = 0u64;
        for f in d.new.iter().take(MAX_LISTED_IN_CHAT) {
            let line = format!(
                "• [{}] {} `{}`\n",
                f.severity,
                f.check_name,
                resource_label(&f.resource_type, &f.resource_key)
            );
            if body.chars().count() + line.chars().count() > budget {
                break;
            }
            body.push_str(&line);
            shown += 1;
        }
        if shown < d.new_count {
            let _ = writeln!(body, "… and {} more in the mail digest and the table", d.new_count - shown);
        }
    }
    body.push_str(&tail);
    cut(&body, MAX_DESCRIPTION_CHARS)
}

fn next_steps(d: &Digest) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if steps.len() < MAX_NEXT_STEPS && !steps.contains(&s) {
            steps.push(s);
        }
    };
    for c in d.checks.iter().filter(|c| c.status == CheckRunStatus::Failed.as_str()) {
        push(cut(
            &format!("{}: {}", c.check_name, failure_remedy(c.error_code.as_deref().unwrap_or(""))),
            MAX_NEXT_STEP_CHARS,
        ));
    }
    // New findings are listed most severe first: their checks' remedies, in that order.
    for f in &d.new {
        if let Some(spec) = catalog(&f.check_name) {
            push(cut(&format!("{}: {}", f.check_name, spec.remedy), MAX_NEXT_STEP_CHARS));
        }
    }
    steps
}

fn keywords(d: &Digest) -> Vec<String> {
    let mut k = vec!["DeviceDefender".to_owned(), d.audit.clone(), d.task_status.clone()];
    k.extend(d.severities.iter().filter(|s| s.new > 0).map(|s| format!("new{}", s.severity)));
    k.into_iter().map(|w| cut(&w, MAX_KEYWORD_CHARS)).take(MAX_KEYWORDS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::fixtures::{changes, summary};
    use crate::digest::{build, MAX_LISTED};
    use serde_json::Value;

    #[test]
    fn follows_the_custom_notification_schema() {
        let d = build(&summary("t2", 3, false), Some(&summary("t1", 2, false)), changes(&[1, 2], &[9], 1), "eu-west-1");
        let v: Value = serde_json::from_str(&render_chat(&d)).unwrap();
        assert_eq!((v["version"].as_str(), v["source"].as_str()), (Some("1.0"), Some("custom")));
        assert_eq!(v["id"], "digest-t2");
        assert_eq!(v["content"]["textType"], "client-markdown");
        assert_eq!(v["content"]["title"], d.subject.as_str());
        let desc = v["content"]["description"].as_str().unwrap();
        assert!(desc.contains("CRITICAL") && desc.contains("+2") && desc.contains("-1"), "{desc}");
        assert!(desc.contains("DEVICE_CERTIFICATE_SHARED_CHECK") && desc.contains(&d.console_url), "{desc}");
        let steps = v["content"]["nextSteps"].as_array().unwrap();
        assert_eq!(steps.len(), 1, "one check with new findings, one remedy: {steps:?}");
        assert!(steps[0].as_str().unwrap().starts_with("DEVICE_CERTIFICATE_SHARED_CHECK: "));
        let keywords: Vec<&str> =
            v["content"]["keywords"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(keywords, vec!["DeviceDefender", "daily-fleet-audit", "COMPLETED", "newCRITICAL"]);
        assert_eq!(v["metadata"]["threadId"], "device-defender-audit-daily-fleet-audit");
        assert_eq!(v["metadata"]["eventType"], EVENT_TYPE);
        assert_eq!(v["metadata"]["relatedResources"][0], "t2");
        assert_eq!(v["metadata"]["additionalContext"]["newCRITICAL"], "2");
        assert_eq!(v["metadata"]["additionalContext"]["previousTaskId"], "t1");
    }

    #[test]
    fn checks_not_read_are_said() {
        let mut cur = summary("t", 1306, false);
        cur.set_unread("DEVICE_CERTIFICATE_SHARED_CHECK", "the account does not know task t");
        let d = build(&cur, None, changes(&[], &[], 0), "us-east-1");
        let desc = chat_notification(&d).content.description;
        assert!(desc.contains("*Could not read the findings* of 1"), "{desc}");
        assert!(desc.contains("• DEVICE_CERTIFICATE_SHARED_CHECK: the account does not know task t"), "{desc}");
    }

    #[test]
    fn a_huge_run_stays_within_every_limit() {
        let many: Vec<usize> = (0..MAX_LISTED + 50).collect();
        let d = build(&summary("t", 10_000, true), None, changes(&many, &[], 0), "us-east-1");
        let n = chat_notification(&d);
        assert!(n.content.description.chars().count() <= MAX_DESCRIPTION_CHARS);
        assert!(n.content.title.chars().count() <= MAX_TITLE_CHARS);
        assert!(n.content.next_steps.len() <= MAX_NEXT_STEPS);
        assert!(n.content.next_steps.iter().all(|s| s.chars().count() <= MAX_NEXT_STEP_CHARS));
        assert!(n.content.keywords.len() <= MAX_KEYWORDS);
        let listed = n.content.description.matches("• [").count();
        assert_eq!(listed, MAX_LISTED_IN_CHAT);
        assert!(n.content.description.contains(&format!("… and {} more", MAX_LISTED + 50 - MAX_LISTED_IN_CHAT)));
        assert!(
            n.content.description.contains("Failed checks:")
                && n.content.description.contains("INSUFFICIENT_PERMISSIONS")
        );
        assert!(n.content.next_steps[0].starts_with("AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK: "));
        assert!(render_chat(&d).len() < 16 * 1024);
    }

    #[test]
    fn expiring_suppressions_are_named_with_their_reason() {
        let mut d = build(&summary("t", 3, false), None, changes(&[1], &[], 0), "us-east-1");
        let soon = d.task_start_time + 86_400_000;
        let info = |k: &str| crate::ports::SuppressionInfo {
            check_name: "DEVICE_CERTIFICATE_SHARED_CHECK".into(),
            resource_key: format!("deviceCertificateId={k}"),
            description: Some("lab rack 3 (SEC-142)".into()),
            expiration_ms: Some(soon),
        };
        let start = d.task_start_time;
        crate::digest::add_suppressions(&mut d, Ok((0..5).map(|i| info(&i.to_string())).collect()), start);
        let desc = chat_notification(&d).content.description;
        assert!(desc.contains("*5 suppression(s) expire within 7 days*"), "{desc}");
        assert_eq!(desc.matches("lab rack 3 (SEC-142)").count(), MAX_EXPIRING_IN_CHAT, "{desc}");
        assert!(desc.contains("`deviceCertificateId=0` expires 2026-01-17"), "{desc}");
    }

    #[test]
    fn overdue_came_back_and_time_to_fix_are_said() {
        use crate::lifecycle::{Deadlines, FixTimes, LifecycleStats, DAY_MS};
        use std::collections::{BTreeMap, HashMap};
        let cur = summary("t", 3, false);
        let stats = LifecycleStats {
            overdue: BTreeMap::from([(crate::Severity::Critical, 2), (crate::Severity::Low, 1)]),
            came_back: 4,
            time_to_fix_all: Some(FixTimes { count: 9, median_ms: 3 * DAY_MS, p90_ms: 12 * DAY_MS }),
            ..Default::default()
        };
        let mut d = build(&cur, None, changes(&[1], &[], 0), "us-east-1");
        d.lifecycle = Some(crate::digest_lifecycle::build(
            &stats,
            &Deadlines::default(),
            &HashMap::new(),
            "t",
            &[],
            &cur.open_by_severity(),
        ));
        let desc = chat_notification(&d).content.description;
        assert!(desc.contains("*3 overdue* (open past their deadline): CRITICAL 2, LOW 1"), "{desc}");
        assert!(desc.contains("4 came back after being fixed"), "{desc}");
        assert!(desc.contains("time to fix: median 3 d, p90 12 d (9 fixed)"), "{desc}");
    }
}
