//! The account's audit configuration and scheduled audits: operations 1–8.

use crate::error::{ApiError, ErrorKind};
use crate::pagination;
use crate::state::AuditState;
use crate::wire::{check_audit_name, check_length, Body};
use audit_shared::{catalog, Schedule, CHECKS};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One check's stored configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckConfig {
    pub enabled: bool,
    pub configuration: BTreeMap<String, String>,
}

/// The SNS notification target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnsTarget {
    pub target_arn: Option<String>,
    pub role_arn: Option<String>,
    pub enabled: bool,
}

/// The account audit configuration.
#[derive(Debug, Clone, Default)]
pub struct AccountConfig {
    /// False until the first successful update, and again after a delete.
    pub configured: bool,
    pub role_arn: Option<String>,
    pub sns: Option<SnsTarget>,
    /// Only checks ever set are stored; the rest read as disabled.
    pub checks: BTreeMap<String, CheckConfig>,
}

impl AccountConfig {
    /// True when the check is enabled.
    pub fn is_enabled(&self, check: &str) -> bool {
        self.checks.get(check).is_some_and(|c| c.enabled)
    }
}

/// A scheduled audit.
#[derive(Debug, Clone)]
pub struct ScheduledAudit {
    pub seq: u64,
    pub name: String,
    pub arn: String,
    pub schedule: Schedule,
    pub targets: Vec<String>,
    pub tags: Vec<(String, Option<String>)>,
    pub next_run_ms: i64,
}

impl ScheduledAudit {
    fn summary(&self) -> Value {
        let mut v = json!({
            "scheduledAuditName": self.name,
            "scheduledAuditArn": self.arn,
            "frequency": self.schedule.frequency().as_str(),
        });
        if let Some(d) = self.schedule.day_of_month() {
            v["dayOfMonth"] = json!(d);
        }
        if let Some(d) = self.schedule.day_of_week() {
            v["dayOfWeek"] = json!(d.as_str());
        }
        v
    }
}

/// Validates `targetCheckNames`: non-empty, every name known and enabled. Duplicates collapse.
pub fn validate_targets(config: &AccountConfig, names: &[String]) -> Result<Vec<String>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::field("targetCheckNames", "[]", "Member must contain at least one check name"));
    }
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if catalog(n).is_none() {
            return Err(ApiError::invalid(format!("targetCheckNames: '{n}' is not a valid audit check name")));
        }
        if !config.is_enabled(n) {
            return Err(ApiError::invalid(format!(
                "targetCheckNames: check '{n}' is not enabled in the account audit configuration"
            )));
        }
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    Ok(out)
}

fn check_role_arn(field: &str, arn: &str) -> Result<(), ApiError> {
    check_length(field, arn, 20, 2048)
}

fn schedule_error(e: audit_shared::ScheduleError) -> ApiError {
    ApiError::invalid(e.to_string())
}

impl AuditState {
    /// UpdateAccountAuditConfiguration.
    pub fn update_config(&mut self, body: &Body) -> Result<Value, ApiError> {
        let role = body.str("roleArn")?;
        if let Some(r) = role {
            check_role_arn("roleArn", r)?;
        }
        let mut sns = None;
        if let Some(targets) = body.object("auditNotificationTargetConfigurations")? {
            for (key, value) in &targets.0 {
                if key != "SNS" {
                    return Err(ApiError::field(
                        "auditNotificationTargetConfigurations",
                        key,
                        "Map keys must satisfy enum value set: [SNS]",
                    ));
                }
                let Value::Object(t) = value else {
                    return Err(ApiError::invalid("auditNotificationTargetConfigurations.SNS must be an object"));
                };
                let t = Body(t.clone());
                let target_arn = t.str("targetArn")?.map(str::to_owned);
                let role_arn = t.str("roleArn")?.map(str::to_owned);
                if let Some(a) = &target_arn {
                    check_length("auditNotificationTargetConfigurations.SNS.targetArn", a, 0, 2048)?;
                }
                if let Some(r) = &role_arn {
                    check_role_arn("auditNotificationTargetConfigurations.SNS.roleArn", r)?;
                }
                let enabled = t.bool("enabled")?.unwrap_or(false);
                if enabled && (target_arn.is_none() || role_arn.is_none()) {
                    return Err(ApiError::invalid(
                        "auditNotificationTargetConfigurations.SNS: an enabled target needs both targetArn and roleArn",
                    ));
                }
                sns = Some(SnsTarget { target_arn, role_arn, enabled });
            }
        }
        let mut checks: BTreeMap<String, CheckConfig> = BTreeMap::new();
        if let Some(cfgs) = body.object("auditCheckConfigurations")? {
            for (name, value) in &cfgs.0 {
                let Some(spec) = catalog(name) else {
                    return Err(ApiError::invalid(format!(
                        "auditCheckConfigurations: '{name}' is not a valid audit check name"
                    )));
                };
                let Value::Object(c) = value else {
                    return Err(ApiError::invalid(format!("auditCheckConfigurations.{name} must be an object")));
                };
                let c = Body(c.clone());
                // `enabled` is a boolean with default false: the Rust SDK leaves it out when false.
                let enabled = c.bool("enabled")?.unwrap_or(false);
                let mut configuration = BTreeMap::new();
                if let Some(conf) = c.object("configuration")? {
                    for (key, v) in &conf.0 {
                        let field = format!("auditCheckConfigurations.{name}.configuration.{key}");
                        let Some(cs) = spec.config.filter(|cs| cs.key == key) else {
                            return Err(ApiError::invalid(format!(
                                "{field}: check {name} does not take configuration '{key}'"
                            )));
                        };
                        let Value::String(s) = v else {
                            return Err(ApiError::invalid(format!("{field} must be a string")));
                        };
                        check_length(&field, s, 1, 64)?;
                        match s.parse::<u32>() {
                            Ok(days) if (cs.min..=cs.max).contains(&days) => {}
                            _ => {
                                return Err(ApiError::field(
                                    &field,
                                    s,
                                    format!("Member must be a number of days from {} to {}", cs.min, cs.max),
                                ))
                            }
                        }
                        configuration.insert(key.clone(), s.clone());
                    }
                }
                checks.insert(name.clone(), CheckConfig { enabled, configuration });
            }
        }
        if !self.config.configured {
            if !checks.values().any(|c| c.enabled) {
                return Err(ApiError::invalid(
                    "auditCheckConfigurations: the first audit configuration must enable at least one check",
                ));
            }
            if role.is_none() && self.config.role_arn.is_none() {
                return Err(ApiError::missing("roleArn"));
            }
        }
        for (name, c) in &checks {
            if !c.enabled {
                if let Some(a) = self.scheduled.iter().find(|a| a.targets.contains(name)) {
                    return Err(ApiError::invalid(format!(
                        "auditCheckConfigurations.{name}: the check cannot be disabled while scheduled audit '{}' targets it; \
                         remove it from the audit or delete the audit first",
                        a.name
                    )));
                }
            }
        }
        // Everything is valid: merge.
        if let Some(r) = role {
            self.config.role_arn = Some(r.to_owned());
        }
        if let Some(t) = sns {
            self.config.sns = Some(t);
        }
        for (name, c) in checks {
            self.config.checks.insert(name, c);
        }
        self.config.configured = true;
        Ok(json!({}))
    }

    /// DescribeAccountAuditConfiguration: every known check, enabled or not.
    pub fn describe_config(&self) -> Value {
        let mut out = Map::new();
        if let Some(r) = &self.config.role_arn {
            out.insert("roleArn".into(), json!(r));
        }
        if let Some(t) = &self.config.sns {
            let mut sns = Map::new();
            if let Some(a) = &t.target_arn {
                sns.insert("targetArn".into(), json!(a));
            }
            if let Some(r) = &t.role_arn {
                sns.insert("roleArn".into(), json!(r));
            }
            sns.insert("enabled".into(), json!(t.enabled));
            out.insert("auditNotificationTargetConfigurations".into(), json!({ "SNS": sns }));
        }
        let mut checks = Map::new();
        for spec in CHECKS {
            let c = self.config.checks.get(spec.name).cloned().unwrap_or_default();
            let mut v = json!({ "enabled": c.enabled });
            if !c.configuration.is_empty() {
                v["configuration"] = json!(c.configuration);
            }
            checks.insert(spec.name.into(), v);
        }
        out.insert("auditCheckConfigurations".into(), Value::Object(checks));
        Value::Object(out)
    }

    /// DeleteAccountAuditConfiguration.
    pub fn delete_config(&mut self, delete_scheduled_audits: Option<&str>) -> Result<Value, ApiError> {
        let flag = match delete_scheduled_audits {
            None => false,
            Some("true") => true,
            Some("false") => false,
            Some(other) => return Err(ApiError::field("deleteScheduledAudits", other, "Member must be true or false")),
        };
        if !self.config.configured {
            return Err(ApiError::not_found("The account has no audit configuration to delete"));
        }
        if !self.scheduled.is_empty() && !flag {
            return Err(ApiError::invalid(format!(
                "deleteScheduledAudits: {} scheduled audit(s) exist; set deleteScheduledAudits=true to delete them with the configuration",
                self.scheduled.len()
            )));
        }
        self.scheduled.clear();
        self.config = AccountConfig::default();
        Ok(json!({}))
    }

    fn audit_arn(&self, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:scheduledaudit/{name}", self.region, self.account_id)
    }

    /// CreateScheduledAudit. Validation order: name, frequency/day, checks, tags, 409, 410.
    pub fn create_scheduled(&mut self, name: &str, body: &Body, now_ms: i64) -> Result<Value, ApiError> {
        check_audit_name(name)?;
        let frequency = body.str("frequency")?.ok_or_else(|| ApiError::missing("frequency"))?;
        let schedule =
            Schedule::from_wire(frequency, body.str("dayOfMonth")?, body.str("dayOfWeek")?).map_err(schedule_error)?;
        let names = body.str_list("targetCheckNames")?.ok_or_else(|| ApiError::missing("targetCheckNames"))?;
        let targets = validate_targets(&self.config, &names)?;
        let tags = crate::tags::parse_tags(body)?;
        crate::tags::check_tag_count(&[], &tags)?;
        if let Some(existing) = self.scheduled.iter().find(|a| a.name == name) {
            let mut e =
                ApiError::new(ErrorKind::ResourceAlreadyExists, format!("Scheduled audit '{name}' already exists"));
            e.existing = Some((existing.name.clone(), existing.arn.clone()));
            return Err(e);
        }
        if self.scheduled.len() >= self.limits.max_scheduled_audits {
            return Err(ApiError::limit(format!(
                "The account already has {} scheduled audits, the maximum allowed",
                self.scheduled.len()
            )));
        }
        let arn = self.audit_arn(name);
        let next_run_ms = self.first_run(&schedule, now_ms);
        self.next_seq += 1;
        self.scheduled.push(ScheduledAudit {
            seq: self.next_seq,
            name: name.to_owned(),
            arn: arn.clone(),
            schedule,
            targets,
            tags,
            next_run_ms,
        });
        Ok(json!({ "scheduledAuditArn": arn }))
    }

    /// ListScheduledAudits, in creation order.
    pub fn list_scheduled(&self, next_token: Option<&str>, max_results: Option<i64>) -> Result<Value, ApiError> {
        let limit = pagination::page_size(max_results)?;
        let digest = pagination::query_digest("ListScheduledAudits", &[]);
        let after = pagination::decode(next_token, &digest, 1)?.map(|k| k[0]);
        let mut items = self.scheduled.iter().filter(|a| after.is_none_or(|s| a.seq > s));
        let page: Vec<&ScheduledAudit> = items.by_ref().take(limit).collect();
        let mut out = json!({ "scheduledAudits": page.iter().map(|a| a.summary()).collect::<Vec<_>>() });
        if let (Some(last), Some(_)) = (page.last(), items.next()) {
            out["nextToken"] = json!(pagination::encode(&[last.seq], &digest));
        }
        Ok(out)
    }

    fn find_audit(&self, name: &str) -> Result<usize, ApiError> {
        check_audit_name(name)?;
        self.scheduled
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| ApiError::not_found(format!("Scheduled audit '{name}' does not exist")))
    }

    /// DescribeScheduledAudit.
    pub fn describe_scheduled(&self, name: &str) -> Result<Value, ApiError> {
        let a = &self.scheduled[self.find_audit(name)?];
        let mut v = a.summary();
        v["targetCheckNames"] = json!(a.targets);
        Ok(v)
    }

    /// UpdateScheduledAudit: the given fields are laid over the stored audit.
    pub fn update_scheduled(&mut self, name: &str, body: &Body, now_ms: i64) -> Result<Value, ApiError> {
        check_audit_name(name)?;
        let frequency = body.str("frequency")?;
        let dom = body.str("dayOfMonth")?;
        let dow = body.str("dayOfWeek")?;
        let names = body.str_list("targetCheckNames")?;
        let idx = self.find_audit(name)?;
        let current = &self.scheduled[idx];
        let freq = frequency.map(str::to_owned).unwrap_or_else(|| current.schedule.frequency().to_string());
        let changed_freq = frequency.is_some_and(|f| f != current.schedule.frequency().as_str());
        // A changed frequency drops the stored day field that no longer fits.
        let keep = |stored: Option<String>| if changed_freq { None } else { stored };
        let dom = dom.map(str::to_owned).or_else(|| keep(current.schedule.day_of_month()));
        let dow = dow.map(str::to_owned).or_else(|| keep(current.schedule.day_of_week().map(|d| d.to_string())));
        let schedule = Schedule::from_wire(&freq, dom.as_deref(), dow.as_deref()).map_err(schedule_error)?;
        let targets = match names {
            Some(n) => validate_targets(&self.config, &n)?,
            None => current.targets.clone(),
        };
        let reschedule = schedule != current.schedule;
        let next = if reschedule { self.first_run(&schedule, now_ms) } else { current.next_run_ms };
        let a = &mut self.scheduled[idx];
        a.schedule = schedule;
        a.targets = targets;
        a.next_run_ms = next;
        Ok(json!({ "scheduledAuditArn": a.arn }))
    }

    /// DeleteScheduledAudit. Tasks it produced remain.
    pub fn delete_scheduled(&mut self, name: &str) -> Result<Value, ApiError> {
        let idx = self.find_audit(name)?;
        self.scheduled.remove(idx);
        Ok(json!({}))
    }
}
