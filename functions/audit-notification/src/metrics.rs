//! CloudWatch embedded metric format (EMF): one JSON line on stdout per task, which CloudWatch
//! Logs turns into metrics without any API call.

use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Namespace of every metric.
pub const NAMESPACE: &str = "DeviceDefenderAudit";

/// Metrics of one ingest slice of one task.
#[derive(Debug, Default, Clone)]
pub struct IngestMetrics {
    pub pages_read: u64,
    pub findings_stored: u64,
    pub throttles: u64,
    pub duration_ms: u64,
    /// Findings per check and per severity (once the task is complete).
    pub by_check: Vec<(String, String, i64)>,
}

/// The EMF document (printed as one line).
pub fn document(task_id: &str, audit: &str, m: &IngestMetrics) -> Value {
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    let mut root = Map::new();
    let mut metrics = vec![
        json!({"Name": "PagesRead", "Unit": "Count"}),
        json!({"Name": "FindingsStored", "Unit": "Count"}),
        json!({"Name": "Throttles", "Unit": "Count"}),
        json!({"Name": "IngestDuration", "Unit": "Milliseconds"}),
    ];
    root.insert("PagesRead".into(), json!(m.pages_read));
    root.insert("FindingsStored".into(), json!(m.findings_stored));
    root.insert("Throttles".into(), json!(m.throttles));
    root.insert("IngestDuration".into(), json!(m.duration_ms));
    let mut directives = vec![json!({"Namespace": NAMESPACE, "Dimensions": [["Audit"]], "Metrics": metrics.clone()})];
    // Findings per check and severity: one metric name per severity, the check as a property
    // would not be a dimension, so give each check its own metric.
    metrics.clear();
    for (check, severity, n) in &m.by_check {
        let name = format!("Findings.{severity}.{check}");
        root.insert(name.clone(), json!(n));
        metrics.push(json!({"Name": name, "Unit": "Count"}));
    }
    if !metrics.is_empty() {
        directives.push(json!({"Namespace": NAMESPACE, "Dimensions": [["Audit"]], "Metrics": metrics}));
    }
    root.insert("_aws".into(), json!({"Timestamp": ts, "CloudWatchMetrics": directives}));
    root.insert("Audit".into(), json!(audit));
    root.insert("taskId".into(), json!(task_id));
    Value::Object(root)
}

/// Prints the EMF line.
pub fn emit(task_id: &str, audit: &str, m: &IngestMetrics) {
    println!("{}", document(task_id, audit, m));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_declares_every_metric_it_carries() {
        let m = IngestMetrics {
            pages_read: 3,
            findings_stored: 600,
            throttles: 1,
            duration_ms: 42,
            by_check: vec![("DEVICE_CERTIFICATE_EXPIRING_CHECK".into(), "MEDIUM".into(), 600)],
        };
        let d = document("t", "daily", &m);
        let declared: Vec<String> = d["_aws"]["CloudWatchMetrics"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|x| x["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap().to_owned()))
            .collect();
        for name in &declared {
            assert!(d.get(name).is_some(), "{name} declared but missing");
        }
        assert_eq!(d["Findings.MEDIUM.DEVICE_CERTIFICATE_EXPIRING_CHECK"], 600);
        assert_eq!(d["Audit"], "daily");
    }
}
