//! End to end through the real compiled bootstraps, with notifications delivered by the
//! emulator: `local-stack demo` on free ports must reach its second digest, and `local-org`
//! (`make demo-org`) its roll-up.

use std::net::TcpListener;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The number right after the first `after` in `line`.
fn number_after(line: &str, after: &str) -> usize {
    let rest = &line[line.find(after).unwrap_or_else(|| panic!("{after} in {line}")) + after.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn local_stack_demo_reaches_the_second_digest() {
    for bin in ["audit-notification", "config-sync", "audit-sweeper"] {
        assert!(
            system_tests::debug_bin(bin).exists(),
            "{bin} is not built: run the workspace build first (make test does)"
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_local-stack"))
        .arg("demo")
        .env("EMULATOR_PORT", free_port().to_string())
        .env("DYNAMODB_PORT", free_port().to_string())
        .env("INVOKE_PORT", free_port().to_string())
        .env("FLEET_DEVICES", "2000")
        .env("FUNCTION_LOG", "info")
        .output()
        .expect("local-stack runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("CloudFormation response: \"SUCCESS\""), "{stdout}");
    assert_eq!(stdout.matches("digest published:").count(), 2, "{stdout}");
    assert!(stdout.contains("Compared with the previous run"), "the second digest compares: {stdout}");
    assert!(stdout.contains("Resolved findings ("), "the fleet drifted: {stdout}");
    assert_eq!(stdout.matches("stored: TASK#").count(), 2);
    // After the last run, the stream's open episodes are exactly that run's findings.
    let last = stdout.lines().rfind(|l| l.starts_with("stored: TASK#")).unwrap();
    assert_eq!(number_after(last, "its "), number_after(last, "("), "{last}");
    // Every run's findings rebuilt from the episodes are exactly what ListAuditFindings returns.
    for line in stdout.lines().filter(|l| l.starts_with("stored: TASK#")) {
        assert_eq!(number_after(line, "its "), number_after(line, "ListAuditFindings: "), "{line}");
    }
    assert!(stdout.contains("Age of open findings") && stdout.contains("Time to fix (age when resolved"), "{stdout}");
    assert!(stdout.contains("suppressions now: 5"), "config-sync created the five suppressions: {stdout}");
    assert!(stdout.contains("Muted (suppressed in Device Defender; in none of the counts above): "), "{stdout}");
    assert!(stdout.contains("Suppressions expiring within 7 days"), "{stdout}");
    assert!(stdout.contains("--- Chat digest"), "the chat topic got a digest: {stdout}");
    assert!(stdout.contains("\"source\": \"custom\"") && stdout.contains("\"textType\": \"client-markdown\""));
    // The functions' own log lines, prefixed with their name, still JSON.
    let logged = stdout
        .lines()
        .filter_map(|l| l.split_once(" | "))
        .filter(|(name, line)| name.trim() == "audit-notification" && line.contains("digest sent"))
        .map(|(_, line)| serde_json::from_str::<serde_json::Value>(line).expect("a JSON log line"))
        .collect::<Vec<_>>();
    assert_eq!(logged.len(), 2, "each digest is logged by audit-notification: {stdout}");
    assert!(logged.iter().all(|l| l["level"] == "INFO"), "{logged:?}");
}

#[test]
fn local_org_demo_reaches_every_member_digest_and_the_roll_up() {
    for bin in ["audit-notification", "org-rollup"] {
        assert!(
            system_tests::debug_bin(bin).exists(),
            "{bin} is not built: run the workspace build first (make test does)"
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_local-org"))
        .env("EMULATOR_PORT", free_port().to_string())
        .env("DYNAMODB_PORT", free_port().to_string())
        .env("INVOKE_PORT", free_port().to_string())
        .output()
        .expect("local-org runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo-org failed:\n{stdout}\n{stderr}");
    // Readable: no function log line in the output (they go to the file it names).
    assert!(!stdout.contains("\"level\""), "log lines in the demo's output: {stdout}");
    assert!(stdout.contains("Function logs: ") && stdout.contains("demo-org/functions.log"), "{stdout}");
    // Join: three members joined, labs' subscription left pending.
    assert_eq!(stdout.matches(": joined\n").count(), 3, "{stdout}");
    assert!(stdout.contains("labs (555566667777) us-east-1: left pending: its role cannot be assumed"), "{stdout}");
    for tag in ["[payments-prod eu-west-1] ", "[payments-prod us-east-1] ", "[fleet-eu eu-west-1] "] {
        assert!(stdout.contains(&format!("    {tag}daily-device-audit")), "a digest for {tag}: {stdout}");
    }
    // Report: the first roll-up names who joined, and that labs cannot be read.
    let first = &stdout[stdout.find("[4]").unwrap()..stdout.find("[5]").unwrap()];
    assert!(first.contains("Subject: Organization roll-up: 4 account-regions"), "{first}");
    assert!(first.contains("1 unreadable") && !first.contains("silent"), "unreadable, not also silent: {first}");
    assert!(first.contains("Joined since the last roll-up (3)"), "{first}");
    assert!(
        first.contains("labs (555566667777) us-east-1: subscription of the hub queue not confirmed yet"),
        "{first}"
    );
    assert!(first.contains("1. payments-prod (111122223333)"), "the worst account first: {first}");
    // Silent and retire: day 3.
    let third = &stdout[stdout.find("[6]").unwrap()..stdout.find("[7]").unwrap()];
    assert!(third.contains("Organization roll-up: 3 account-regions"), "{third}");
    assert!(third.contains("1 silent") && third.contains("1 retired"), "{third}");
    assert!(third.contains("fleet-eu (444455556666) eu-west-1: DAILY audit daily-device-audit was due"), "{third}");
    assert!(third.contains("audit notifications are disabled"), "{third}");
    assert!(third.contains("labs (555566667777) us-east-1: retired"), "{third}");
    assert!(third.contains("account 555566667777 is no longer in organization o-emulator000"), "{third}");
    // Once.
    assert!(stdout.contains("labs (555566667777) named: no"), "{stdout}");
    let members = &stdout[stdout.find("[8]").unwrap()..];
    assert!(members.contains("555566667777  us-east-1   retired"), "{members}");
    assert!(members.contains("444455556666  eu-west-1   silent      2026"), "as the roll-up judged it: {members}");
    assert!(members.contains("111122223333  eu-west-1   reporting"), "{members}");
}

/// The demo's members enable what member.yaml enables.
#[test]
fn the_demo_members_enable_the_checks_member_yaml_enables() {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../member.yaml")).unwrap();
    let targets = &yaml[yaml.find("TargetCheckNames:").unwrap()..];
    let listed: Vec<&str> = targets.lines().skip(1).map_while(|l| l.trim().strip_prefix("- ")).map(str::trim).collect();
    assert_eq!(listed, system_tests::MEMBER_CHECKS.to_vec());
}
