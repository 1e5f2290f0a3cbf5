//! The digest as a chat message: AWS Chatbot (Amazon Q Developer in chat applications) renders
//! only events it knows and messages in its *custom notification* schema; a plain-text SNS
//! message is not shown in Slack or Teams. This module turns a [`Digest`] into that schema
//! (`version` "1.0", `source` "custom", `content` with title, markdown description, next steps
//! and keywords, `metadata` for threading and filtering). Pure.
//!
//! Sources (quoted; `docs/deploy-review.md`, section "The chat digest", keeps the same list):
//! - CHATBOT, <https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>:
//!   `id` "Unique event identifier." (no length or pattern given); "When
//!   textType=client-markdown, AWS Chatbot renders notifications in the target chat platform's
//!   markdown"; `threadId` groups "notification updates by grouping them in a thread". No length
//!   limit is given for any field.
//! - IOT-TASK, <https://docs.aws.amazon.com/iot/latest/apireference/API_AuditTaskMetadata.html>:
//!   `taskId` "Maximum length of 40. Pattern: `[a-zA-Z0-9\-]+`" (unique per account-region only).
//! - SLACK, <https://docs.slack.dev/messaging/formatting-message-text/>: "The mrkdwn argument is
//!   the default formatting method when publishing a message"; in mrkdwn "Surround text with
//!   \*asterisks\* for bold face - Surround text with \_underscores\_ for italics" (Slack's
//!   formatting help), and `**x**` is not bold.
//! - TEAMS, <https://learn.microsoft.com/en-us/microsoftteams/platform/resources/bot-v3/bots-text-formats>:
//!   Markdown "bold `**text**`", "italic `*text*`", "unordered list `* text`"; unordered lists
//!   are rendered on desktop only (✖ iOS, ✖ Android); preformatted text on all.
//! - TEAMS-CARD, <https://learn.microsoft.com/en-us/adaptive-cards/authoring-cards/text-features>:
//!   Adaptive Card text supports only "Bold `**Bold**`", "Italic `_Italic_`", "Bulleted list
//!   `- Item 1`", numbered lists and `[Title](url)`; "Not supported: … Anything not in the table
//!   above" (so no code).
//! - TEAMS-NEWLINE, <https://github.com/MicrosoftDocs/msteams-docs/issues/740> ("1 linebreak
//!   gives 1 linebreak in Emulator/Web, but ignored in Teams") and
//!   <https://github.com/microsoft/AdaptiveCards/issues/5538> ("Markdown requires two
//!   consecutive \n characters").
//!
//! Decisions [ours]:
//! - `*x*` is bold in Slack and italic in Teams, `**x**` bold in Teams and literal in Slack: the
//!   description uses no emphasis at all (no `*`, `_` or `~` markers of ours), so it reads the
//!   same in both. Whether Teams shows it as a message or an Adaptive Card, AWS does not say.
//! - What is not ours (ids, names, resource keys, error texts, suppression reasons) is inline
//!   code: Slack and Teams show it verbatim, markers included; an Adaptive Card would show the
//!   backticks, still readable.
//! - Every line is its own paragraph (a blank line between), since Teams drops single line
//!   breaks; lists are `- ` items (a list in Teams and in an Adaptive Card, a plain dash line in
//!   Slack). The counts per severity are such a list, not a code-block table (no code in an
//!   Adaptive Card, no fixed-width columns then). Links are bare URLs.
//! - `id` = `digest-<taskId>` for the hub's own account-region, `digest-<account>-<region>-<taskId>`
//!   for a member (task ids repeat across members): at most 7 + 12 + 1 + 14 + 1 + 40 characters,
//!   within the pattern of task ids plus digits and dashes.
//! - `threadId` = `device-defender-audit-<stream>` for the hub's own account-region (unchanged,
//!   so existing threads continue), `device-defender-audit-<account>-<region>-<stream>` for a
//!   member: every member's default audit has the same name, and one thread per member and
//!   audit keeps their runs apart. `additionalContext.member` = `ACCOUNT:REGION`, and the
//!   member's account is a related resource.
//! - Lengths: the description stays within Slack's 3,000-character section text limit, the
//!   whole message far within SNS's 256 KB.

use crate::checks::{catalog, failure_remedy};
use crate::digest::{member_pair, Digest};
use crate::finding::resource_label;
use crate::member::Member;
use crate::vocabulary::CheckRunStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
/// What every `threadId` starts with.
pub const THREAD_PREFIX: &str = "device-defender-audit-";

/// A custom notification (the schema's top level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatNotification {
    /// Always "1.0".
    pub version: String,
    /// Always "custom".
    pub source: String,
    /// Unique event id: `digest-<taskId>`, or `digest-<account>-<region>-<taskId>` for a member.
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
    /// Counts per severity, worst new findings, failed checks, console link: markdown that
    /// reads the same in Slack and Teams (no emphasis, see the module's notes).
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
    /// Runs of one audit of one member thread together: `device-defender-audit-[<account>-<region>-]<stream>`.
    pub thread_id: String,
    /// One line: the subject.
    pub summary: String,
    /// [`EVENT_TYPE`].
    pub event_type: String,
    /// The task id, and the member's account when the audit ran in a member.
    pub related_resources: Vec<String>,
    /// Task id, previous task id, member (`ACCOUNT:REGION`) and open/new counts per severity.
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

/// Text that is not ours, shown verbatim: inline code on one line, its own backticks made quotes.
fn code(s: &str) -> String {
    let inner: String = s
        .chars()
        .map(|c| match c {
            '`' => '\'',
            '\n' | '\r' | '\t' => ' ',
            c => c,
        })
        .collect();
    let inner = inner.trim();
    if inner.is_empty() {
        "(empty)".to_owned()
    } else {
        format!("`{inner}`")
    }
}

/// A markdown list: one `- ` item a line.
fn list(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().map(|i| format!("- {i}")).collect::<Vec<_>>().join("\n")
}

/// The member a digest's audit ran in, when not the hub's own account-region.
struct ChatMember {
    /// `ACCOUNT:REGION` (the label itself if it does not end in one).
    pair: String,
    /// The 12-digit account, when the label ends in a pair.
    account: Option<String>,
    /// `<account>-<region>`: what ids and threads carry.
    slug: String,
}

/// The member of a digest from its label `[name ]ACCOUNT:REGION` (the name is left out of ids,
/// threads and context: it can change); a label that does not end in a pair is kept whole,
/// made id-safe.
fn member_of(d: &Digest) -> Option<ChatMember> {
    let label = d.member.as_deref()?;
    Some(match member_pair(label).map(Member::parse) {
        Some(Ok(m)) => ChatMember {
            pair: m.to_string(),
            slug: format!("{}-{}", m.account_id, m.region),
            account: Some(m.account_id),
        },
        _ => ChatMember {
            pair: label.to_owned(),
            account: None,
            slug: label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect(),
        },
    })
}

/// The chat message of a digest.
pub fn chat_notification(d: &Digest) -> ChatNotification {
    let member = member_of(d);
    let mut additional_context = BTreeMap::from([("taskId".to_owned(), d.task_id.clone())]);
    if let Some(p) = &d.previous_task_id {
        additional_context.insert("previousTaskId".to_owned(), p.clone());
    }
    for s in &d.severities {
        additional_context.insert(format!("open{}", s.severity), s.open.to_string());
        additional_context.insert(format!("new{}", s.severity), s.new.to_string());
    }
    let mut related_resources = vec![d.task_id.clone()];
    let (id, thread_id) = match &member {
        Some(m) => {
            additional_context.insert("member".to_owned(), m.pair.clone());
            related_resources.extend(m.account.clone());
            let slug = &m.slug;
            (format!("digest-{slug}-{}", d.task_id), format!("{THREAD_PREFIX}{slug}-{}", d.audit_stream()))
        }
        None => (format!("digest-{}", d.task_id), format!("{THREAD_PREFIX}{}", d.audit_stream())),
    };
    ChatNotification {
        version: "1.0".into(),
        source: "custom".into(),
        id,
        content: ChatContent {
            text_type: "client-markdown".into(),
            title: cut(&d.subject, MAX_TITLE_CHARS),
            description: description(d),
            next_steps: next_steps(d),
            keywords: keywords(d),
        },
        metadata: ChatMetadata {
            thread_id,
            summary: d.subject.clone(),
            event_type: EVENT_TYPE.into(),
            related_resources,
            additional_context,
        },
    }
}

/// The message body published to the chat topic (JSON).
pub fn render_chat(d: &Digest) -> String {
    serde_json::to_string(&chat_notification(d)).unwrap_or_default()
}

/// Paragraphs and lists are joined with a blank line: Teams ignores a single line break.
const BLOCK_GAP: &str = "\n\n";

fn description(d: &Digest) -> String {
    let mut blocks: Vec<String> = Vec::new();
    let compared = if d.previous_task_id.is_some() { "compared with the previous run" } else { "first run" };
    blocks.push(format!("Audit {} · task {} · {} · {compared}", code(&d.audit), code(&d.task_id), d.task_status));
    if let Some(m) = &d.member {
        blocks.push(format!("Account and region: {}", code(m)));
    }
    blocks.push(format!("{} new · {} resolved · {} persisting", d.new_count, d.resolved_count, d.persisting_count));
    if !d.unread.is_empty() {
        let n = d.unread.len();
        blocks.push(format!(
            "Could not read the findings of {n} check{} (in no count below):",
            if n == 1 { "" } else { "s" }
        ));
        blocks.push(list(d.unread.iter().map(|(check, why)| format!("{check}: {}", code(&cut(why, 200))))));
    }
    if !d.severities.is_empty() {
        blocks.push("Open findings by severity:".to_owned());
        blocks.push(list(
            d.severities
                .iter()
                .map(|s| format!("{}: {} open · +{} new · -{} resolved", s.severity, s.open, s.new, s.resolved)),
        ));
    }
    let mut notes: Vec<String> = Vec::new();
    if let Some(l) = &d.lifecycle {
        if l.overdue_count > 0 {
            let per: Vec<String> = l.overdue.iter().filter(|(_, n)| **n > 0).map(|(s, n)| format!("{s} {n}")).collect();
            notes.push(format!("{} overdue (open past their deadline): {}", l.overdue_count, per.join(", ")));
        }
        if l.came_back_count > 0 {
            notes.push(format!("{} came back after being fixed", l.came_back_count));
        }
        if let Some(t) = &l.time_to_fix_all {
            notes.push(format!(
                "time to fix: median {}, p90 {} ({} fixed)",
                crate::lifecycle::fmt_age(t.median_ms),
                crate::lifecycle::fmt_age(t.p90_ms),
                t.count
            ));
        }
    }
    if !notes.is_empty() {
        // A lead line of its own: two lists parted by a blank line only are one list in markdown.
        blocks.push("Deadlines and fixes:".to_owned());
        blocks.push(list(notes));
    }
    if d.muted_count > 0 || d.unmuted_count > 0 {
        blocks.push(format!(
            "{} muted (suppressed in Device Defender, in no count above) · {} unmuted since the previous run",
            d.muted_count, d.unmuted_count
        ));
    }
    if let Some(s) = d.suppressions.as_ref().filter(|s| !s.expiring.is_empty()) {
        blocks
            .push(format!("{} suppression(s) expire within 7 days: renew them or fix the findings", s.expiring.len()));
        blocks.push(list(s.expiring.iter().take(MAX_EXPIRING_IN_CHAT).map(|e| {
            let day = chrono::DateTime::from_timestamp_millis(e.expires_at)
                .map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string());
            let reason = e.reason.as_deref().map_or_else(|| "no reason given".to_owned(), |r| code(&cut(r, 120)));
            format!("{} {} expires {day}: {reason}", e.check_name, code(&cut(&e.resource_key, 48)))
        })));
    }
    let failed: Vec<_> = d.checks.iter().filter(|c| c.status == CheckRunStatus::Failed.as_str()).collect();
    if !failed.is_empty() {
        let names: Vec<String> = failed
            .iter()
            .map(|c| format!("{} ({})", c.check_name, c.error_code.as_deref().unwrap_or("no error code")))
            .collect();
        blocks.push(format!("Failed checks: {}", names.join(", ")));
    }
    let tail = format!("Console: {}", d.console_url);
    let mut body = blocks.join(BLOCK_GAP);
    if d.new_count > 0 {
        body.push_str(BLOCK_GAP);
        body.push_str("Worst new findings:");
        let budget = MAX_DESCRIPTION_CHARS.saturating_sub(tail.chars().count() + 70);
        let mut shown = 0u64;
        let mut sep = BLOCK_GAP;
        for f in d.new.iter().take(MAX_LISTED_IN_CHAT) {
            let line = format!(
                "{sep}- [{}] {} {}",
                f.severity,
                f.check_name,
                code(&resource_label(&f.resource_type, &f.resource_key))
            );
            if body.chars().count() + line.chars().count() > budget {
                break;
            }
            body.push_str(&line);
            sep = "\n";
            shown += 1;
        }
        if shown < d.new_count {
            body.push_str(BLOCK_GAP);
            body.push_str(&format!("… and {} more in the mail digest and the table", d.new_count - shown));
        }
    }
    body.push_str(BLOCK_GAP);
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
        assert!(desc.contains("- CRITICAL: 3 open · +2 new · -1 resolved"), "{desc}");
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
        assert!(desc.contains("Could not read the findings of 1 check (in no count below):"), "{desc}");
        assert!(desc.contains("\n\n- DEVICE_CERTIFICATE_SHARED_CHECK: `the account does not know task t`"), "{desc}");
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
        let listed = n.content.description.matches("\n- [").count();
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
        assert!(desc.contains("5 suppression(s) expire within 7 days: renew them"), "{desc}");
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
        assert!(desc.contains("- 3 overdue (open past their deadline): CRITICAL 2, LOW 1"), "{desc}");
        assert!(desc.contains("4 came back after being fixed"), "{desc}");
        assert!(desc.contains("time to fix: median 3 d, p90 12 d (9 fixed)"), "{desc}");
    }

    fn member_digest(member: Option<&str>, task: &str, audit: &str) -> Digest {
        let mut d = build(&summary(task, 3, false), None, changes(&[1], &[], 0), "eu-west-1");
        d.audit = audit.into();
        d.member = member.map(Into::into);
        d
    }

    #[test]
    fn the_same_task_id_in_two_members_gives_two_ids_and_threads() {
        let home = chat_notification(&member_digest(None, "t2", "daily-fleet-audit"));
        let a = chat_notification(&member_digest(Some("444455556666:eu-west-1"), "t2", "daily-fleet-audit"));
        let b = chat_notification(&member_digest(Some("777788889999:eu-west-1"), "t2", "daily-fleet-audit"));
        let a_named =
            chat_notification(&member_digest(Some("fleet eu 444455556666:eu-west-1"), "t2", "daily-fleet-audit"));
        // The hub's own account-region: unchanged, so existing threads continue.
        assert_eq!(home.id, "digest-t2");
        assert_eq!(home.metadata.thread_id, "device-defender-audit-daily-fleet-audit");
        assert_eq!(a.id, "digest-444455556666-eu-west-1-t2");
        assert_eq!(b.id, "digest-777788889999-eu-west-1-t2");
        assert_eq!(a.metadata.thread_id, "device-defender-audit-444455556666-eu-west-1-daily-fleet-audit");
        assert_ne!(a.metadata.thread_id, b.metadata.thread_id, "same audit name, two members, two threads");
        assert_ne!(a.metadata.thread_id, home.metadata.thread_id);
        assert_eq!(
            (&a_named.id, &a_named.metadata.thread_id),
            (&a.id, &a.metadata.thread_id),
            "a name changes nothing"
        );
        let c = &a.metadata.additional_context;
        assert_eq!(c.get("member").map(String::as_str), Some("444455556666:eu-west-1"));
        assert_eq!(a_named.metadata.additional_context.get("member"), c.get("member"));
        assert_eq!(a.metadata.related_resources, vec!["t2", "444455556666"]);
        assert!(!home.metadata.additional_context.contains_key("member"));
        assert_eq!(home.metadata.related_resources, vec!["t2"]);
        assert!(a_named.content.description.contains("Account and region: `fleet eu 444455556666:eu-west-1`"));
        assert!(!home.content.description.contains("Account and region"));
    }

    #[test]
    fn one_thread_per_member_and_audit() {
        let threads: Vec<String> = [
            (None, "daily-fleet-audit"),
            (None, "weekly-audit"),
            (Some("444455556666:eu-west-1"), "daily-fleet-audit"),
            (Some("444455556666:eu-west-1"), "weekly-audit"),
            (Some("444455556666:us-east-1"), "daily-fleet-audit"),
        ]
        .iter()
        .map(|(m, audit)| chat_notification(&member_digest(*m, "t", audit)).metadata.thread_id)
        .collect();
        let distinct: std::collections::BTreeSet<&String> = threads.iter().collect();
        assert_eq!(distinct.len(), threads.len(), "{threads:?}");
        // On-demand runs share one stream per member.
        let mut d = member_digest(Some("444455556666:eu-west-1"), "t", "on-demand audit");
        d.task_type = "ON_DEMAND_AUDIT_TASK".into();
        assert_eq!(chat_notification(&d).metadata.thread_id, "device-defender-audit-444455556666-eu-west-1-~on-demand");
        d.member = None;
        assert_eq!(chat_notification(&d).metadata.thread_id, "device-defender-audit-~on-demand");
    }

    #[test]
    fn ids_and_threads_stay_id_safe_and_bounded() {
        let longest_task = "a".repeat(40);
        let d = member_digest(Some("named member 444455556666:ap-southeast-2"), &longest_task, "daily-fleet-audit");
        let n = chat_notification(&d);
        assert_eq!(n.id.len(), "digest-".len() + 12 + 1 + "ap-southeast-2".len() + 1 + 40);
        assert!(n.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{}", n.id);
        // A label that does not end in ACCOUNT:REGION still keeps members apart.
        let odd = chat_notification(&member_digest(Some("lab rack"), "t", "daily-fleet-audit"));
        assert_eq!(odd.id, "digest-lab-rack-t");
        assert_eq!(odd.metadata.additional_context.get("member").map(String::as_str), Some("lab rack"));
        assert_eq!(odd.metadata.related_resources, vec!["t"]);
    }

    /// Emphasis markers outside inline code: any `*` or `~`, and a `_` that starts or ends a
    /// word (`A_B` inside a word is no marker in Slack or in CommonMark).
    fn emphasis_markers(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for line in text.lines() {
            let outside: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
            let chars: Vec<char> = outside.chars().collect();
            for (i, c) in chars.iter().enumerate() {
                let word = |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(|c| c.is_alphanumeric());
                let marker = match c {
                    '*' | '~' => true,
                    '_' => !word(i.checked_sub(1)) || !word(Some(i + 1)),
                    _ => false,
                };
                if marker {
                    found.push(line.to_owned());
                    break;
                }
            }
        }
        found
    }

    /// A digest with every section of the description: unread and failed checks, lifecycle,
    /// muted, expiring suppressions (a reason full of markers), a member, new findings.
    fn everything() -> Digest {
        use crate::lifecycle::{Deadlines, FixTimes, LifecycleStats, DAY_MS};
        use std::collections::HashMap;
        let mut cur = summary("t2", 3, true);
        cur.set_unread("DEVICE_CERTIFICATE_SHARED_CHECK", "denied on resource: * (role _x_)");
        let mut d = build(&cur, Some(&summary("t1", 2, false)), changes(&[1, 2], &[9], 1), "eu-west-1");
        let stats = LifecycleStats {
            overdue: BTreeMap::from([(crate::Severity::Critical, 2)]),
            came_back: 1,
            time_to_fix_all: Some(FixTimes { count: 9, median_ms: 3 * DAY_MS, p90_ms: 12 * DAY_MS }),
            ..Default::default()
        };
        d.lifecycle = Some(crate::digest_lifecycle::build(
            &stats,
            &Deadlines::default(),
            &HashMap::new(),
            "t2",
            &[],
            &cur.open_by_severity(),
        ));
        d.muted_count = 2;
        let soon = d.task_start_time + 86_400_000;
        let start = d.task_start_time;
        crate::digest::add_suppressions(
            &mut d,
            Ok(vec![crate::ports::SuppressionInfo {
                check_name: "DEVICE_CERTIFICATE_SHARED_CHECK".into(),
                resource_key: "clientId=_sensor*1_".into(),
                description: Some("*lab* rack `3` _until_ ~May~".into()),
                expiration_ms: Some(soon),
            }]),
            start,
        );
        d.member = Some("fleet_eu 444455556666:eu-west-1".into());
        d
    }

    #[test]
    fn the_description_has_no_emphasis_markers() {
        let d = everything();
        let desc = chat_notification(&d).content.description;
        for part in ["Could not read", "overdue", "muted", "suppression(s)", "Failed checks:", "Worst new findings:"] {
            assert!(desc.contains(part), "{part} missing: {desc}");
        }
        assert_eq!(emphasis_markers(&desc), Vec::<String>::new(), "{desc}");
        // Text that is not ours keeps its characters, inside inline code.
        assert!(desc.contains("`denied on resource: * (role _x_)`"), "{desc}");
        assert!(desc.contains("`clientId=_sensor*1_`"), "{desc}");
        assert!(desc.contains("`*lab* rack '3' _until_ ~May~`"), "{desc}");
        // What the old text did, for contrast: Slack's bold is Teams' italic.
        assert!(!emphasis_markers("*daily-fleet-audit* · task `t2`").is_empty());
        assert!(!emphasis_markers("*Failed checks:* A (B)").is_empty());
    }

    #[test]
    fn every_line_is_a_paragraph_or_a_list_item() {
        // Teams ignores a single line break: two lines in a row are list items, else a blank
        // line parts them. No line starts what markdown would read as a heading, quote or
        // ordered list.
        let desc = chat_notification(&everything()).content.description;
        let lines: Vec<&str> = desc.lines().collect();
        for pair in lines.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let apart = a.is_empty() || b.is_empty() || (a.starts_with("- ") && b.starts_with("- "));
            assert!(apart, "{a:?} then {b:?} would run together in Teams:\n{desc}");
        }
        // Two lists parted by a blank line only would be one list.
        for three in lines.windows(3) {
            let merged = three[0].starts_with("- ") && three[1].is_empty() && three[2].starts_with("- ");
            assert!(!merged, "{:?} and {:?} would be one list:\n{desc}", three[0], three[2]);
        }
        for l in &lines {
            let digits = l.chars().take_while(char::is_ascii_digit).count();
            assert!(!l.starts_with('#') && !l.starts_with('>') && !l.starts_with('+'), "{l}");
            assert!(!(digits > 0 && l[digits..].starts_with(". ")), "{l}");
            assert!(!l.starts_with("```"), "{l}");
        }
    }
}
