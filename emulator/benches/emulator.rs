//! `make bench` (emulator part): how fast the emulator serves ListAuditFindings pages of 250
//! on loopback, and its memory with 10^6 findings stored. Prints a table; asserts nothing
//! about time.
//!
//! Spawns the release binary with a fleet of 1,000,000 devices, every one failing
//! DEVICE_CERTIFICATE_EXPIRING_CHECK, runs one audit of that check (10^6 findings), then pages
//! through it with raw HTTP from 1, 2 and 4 concurrent readers.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn page(http: &reqwest::Client, url: &str, task: &str, token: Option<String>) -> (usize, Option<String>) {
    let mut body = json!({ "taskId": task, "maxResults": 250 });
    if let Some(t) = token {
        body["nextToken"] = json!(t);
    }
    let v: Value = http.post(format!("{url}/audit/findings")).json(&body).send().await.unwrap().json().await.unwrap();
    let n = v["findings"].as_array().map_or(0, Vec::len);
    (n, v["nextToken"].as_str().map(str::to_owned))
}

#[tokio::main]
async fn main() {
    let devices: u32 = std::env::var("BENCH_FINDINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_device-defender-emulator"))
        .args(["--port", "0", "--frozen-clock", "--noncompliant-share", "1.0", "--task-duration-secs", "1"])
        .args(["--fleet-devices", &devices.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("emulator starts");
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    let http = reqwest::Client::new();
    let rss_idle = status_kb(pid, "VmRSS:");

    let check = "DEVICE_CERTIFICATE_EXPIRING_CHECK";
    let cfg = json!({ "roleArn": "arn:aws:iam::123456789012:role/audit", "auditCheckConfigurations": { check: { "enabled": true } } });
    assert!(http.patch(format!("{url}/audit/configuration")).json(&cfg).send().await.unwrap().status().is_success());
    let t0 = Instant::now();
    let v: Value = http
        .post(format!("{url}/audit/tasks"))
        .json(&json!({ "targetCheckNames": [check] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task = v["taskId"].as_str().unwrap().to_owned();
    http.post(format!("{url}/_emulator/clock/advance")).json(&json!({ "seconds": 2 })).send().await.unwrap();
    let audit_ms = t0.elapsed().as_millis();
    let d: Value = http.get(format!("{url}/audit/tasks/{task}")).send().await.unwrap().json().await.unwrap();
    let stored = d["auditDetails"][check]["nonCompliantResourcesCount"].as_u64().unwrap();
    let rss_stored = status_kb(pid, "VmRSS:");

    println!("emulator benchmark: {stored} findings stored in one task (audit computed in {audit_ms} ms)");
    println!("memory: idle {} MB, with findings {} MB", rss_idle / 1024, rss_stored / 1024);
    println!();
    println!("| readers | pages | findings | seconds | pages/s | findings/s |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let pages_per_reader = 1_000usize;
    for readers in [1usize, 2, 4] {
        let start = Instant::now();
        let mut joins = Vec::new();
        for _ in 0..readers {
            let (http, url, task) = (http.clone(), url.clone(), task.clone());
            joins.push(tokio::spawn(async move {
                let (mut pages, mut findings, mut token) = (0usize, 0usize, None);
                while pages < pages_per_reader {
                    let (n, next) = page(&http, &url, &task, token).await;
                    pages += 1;
                    findings += n;
                    token = next;
                    if token.is_none() {
                        break;
                    }
                }
                (pages, findings)
            }));
        }
        let (mut pages, mut findings) = (0, 0);
        for j in joins {
            let (p, f) = j.await.unwrap();
            pages += p;
            findings += f;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "| {readers} | {pages} | {findings} | {secs:.2} | {:.0} | {:.0} |",
            pages as f64 / secs,
            findings as f64 / secs
        );
    }
    // One full read of the task, to check nothing is lost at depth.
    let start = Instant::now();
    let (mut total, mut token, mut pages) = (0u64, None, 0u64);
    loop {
        let (n, next) = page(&http, &url, &task, token).await;
        total += n as u64;
        pages += 1;
        token = next;
        if token.is_none() {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!();
    println!(
        "full read: {total} of {stored} findings in {pages} pages, {secs:.1} s ({:.0} pages/s)",
        pages as f64 / secs
    );
    println!("peak RSS of the emulator: {} MB", status_kb(pid, "VmHWM:") / 1024);
    assert_eq!(total, stored, "a full read returns every finding");
    let _ = child.kill();
    let _ = child.wait();
}
