//! Realism and fault knobs: AWS rate limits (token buckets per operation), injected latency,
//! injected throttling and 5xx errors, scripted throttling, and checks that fail.
//!
//! Order per request (reference §7): latency, then rate limit and injected faults, and only
//! then validation; so a throttled request is throttled whatever it carries.

use crate::error::{ApiError, ErrorKind};
use crate::operation::Op;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Instant;

/// Fault settings: flags at start, replaceable at run time through `PUT /_emulator/faults`.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// Enforce AWS's default rate limit of every operation (ListAuditFindings 10/s,
    /// DescribeAuditTask 25/s, the rest 5/s); excess calls get ThrottlingException.
    #[arg(long, env = "EMULATOR_RATE_LIMITS")]
    pub rate_limits: bool,

    /// Rate limit of one operation in requests/s, overriding the default: OP=TPS
    /// (e.g. ListAuditFindings=20). Applies when --rate-limits is on.
    #[arg(long = "rate-limit", value_name = "OP=TPS")]
    pub rate_limit_overrides: Vec<RateOverride>,

    /// Latency added to every audit API response, in milliseconds.
    #[arg(long, env = "EMULATOR_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Share (0–1) of audit API calls answered with ThrottlingException.
    #[arg(long, env = "EMULATOR_THROTTLE_SHARE", default_value_t = 0.0)]
    pub throttle_share: f64,

    /// Share (0–1) of audit API calls answered with 500 InternalFailureException.
    #[arg(long, env = "EMULATOR_ERROR_SHARE", default_value_t = 0.0)]
    pub error_share: f64,

    /// Throttle the next N audit API calls, whatever the shares.
    #[arg(long, default_value_t = 0)]
    pub throttle_next: u32,

    /// Make a check FAIL in every task: CHECK or CHECK=ERROR_CODE (default INSUFFICIENT_PERMISSIONS).
    /// A task whose checks all fail ends FAILED.
    #[arg(long = "fail-check", value_name = "CHECK[=CODE]")]
    pub failing_checks: Vec<FailingCheck>,
}

/// `OP=TPS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateOverride {
    pub operation: String,
    pub tps: f64,
}

impl FromStr for RateOverride {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (op, tps) = s.split_once('=').ok_or_else(|| format!("expected OP=TPS, got '{s}'"))?;
        Op::from_name(op).ok_or_else(|| format!("'{op}' is not one of the IoT operations the emulator serves"))?;
        let tps: f64 = tps.parse().map_err(|_| format!("'{tps}' is not a number of requests per second"))?;
        if tps <= 0.0 || !tps.is_finite() {
            return Err(format!("rate {tps} must be positive"));
        }
        Ok(RateOverride { operation: op.to_owned(), tps })
    }
}

/// `CHECK[=CODE]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailingCheck {
    pub check_name: String,
    #[serde(default = "default_error_code")]
    pub error_code: String,
}

fn default_error_code() -> String {
    "INSUFFICIENT_PERMISSIONS".to_owned()
}

impl FromStr for FailingCheck {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (check, code) = s.split_once('=').unwrap_or((s, "INSUFFICIENT_PERMISSIONS"));
        if audit_shared::catalog(check).is_none() {
            return Err(format!("'{check}' is not a known audit check"));
        }
        Ok(FailingCheck { check_name: check.to_owned(), error_code: code.to_owned() })
    }
}

impl Faults {
    /// Checks the settings, naming the bad one.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [("throttleShare", self.throttle_share), ("errorShare", self.error_share)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be between 0 and 1, got {v}"));
            }
        }
        for o in &self.rate_limit_overrides {
            RateOverride::from_str(&format!("{}={}", o.operation, o.tps))?;
        }
        for f in &self.failing_checks {
            FailingCheck::from_str(&f.check_name)?;
        }
        Ok(())
    }

    /// The error code a check fails with, if it is set to fail.
    pub fn failure_of(&self, check: &str) -> Option<&str> {
        self.failing_checks.iter().find(|f| f.check_name == check).map(|f| f.error_code.as_str())
    }

    fn tps(&self, op: Op) -> f64 {
        self.rate_limit_overrides.iter().find(|o| o.operation == op.name()).map_or(op.default_tps(), |o| o.tps)
    }
}

/// A token bucket holding one second of burst.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Applies [`Faults`] to incoming calls.
#[derive(Debug)]
pub struct FaultInjector {
    pub faults: Faults,
    buckets: HashMap<Op, Bucket>,
    rng: ChaCha8Rng,
    /// Calls answered with ThrottlingException so far (this account-region's quota exceeded,
    /// or throttling injected): `GET /_emulator/throttled`.
    pub throttled: u64,
}

impl FaultInjector {
    pub fn new(faults: Faults, seed: u64) -> Self {
        FaultInjector { faults, buckets: HashMap::new(), rng: ChaCha8Rng::seed_from_u64(seed ^ 0xFA17), throttled: 0 }
    }

    /// Decides whether this call is throttled or fails before it is looked at, counting throttles.
    pub fn admit(&mut self, op: Op) -> Result<(), ApiError> {
        let r = self.decide(op);
        if matches!(&r, Err(e) if e.kind == ErrorKind::Throttling) {
            self.throttled += 1;
        }
        r
    }

    /// Replaces the settings; rate buckets start full again.
    pub fn set(&mut self, faults: Faults) {
        self.faults = faults;
        self.buckets.clear();
    }

    fn decide(&mut self, op: Op) -> Result<(), ApiError> {
        if self.faults.throttle_next > 0 {
            self.faults.throttle_next -= 1;
            return Err(ApiError::new(ErrorKind::Throttling, "Rate exceeded"));
        }
        if self.faults.rate_limits {
            let tps = self.faults.tps(op);
            let now = Instant::now();
            // A bucket holds one second of calls, and at least one call; it starts full.
            let b = self.buckets.entry(op).or_insert(Bucket { tokens: tps.max(1.0), last: now });
            b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * tps).min(tps.max(1.0));
            b.last = now;
            if b.tokens < 1.0 {
                return Err(ApiError::new(
                    ErrorKind::Throttling,
                    format!("Rate exceeded for {} ({tps} requests per second)", op.name()),
                ));
            }
            b.tokens -= 1.0;
        }
        if self.faults.throttle_share > 0.0 && self.rng.random_bool(self.faults.throttle_share) {
            return Err(ApiError::new(ErrorKind::Throttling, "Rate exceeded"));
        }
        if self.faults.error_share > 0.0 && self.rng.random_bool(self.faults.error_share) {
            return Err(ApiError::new(
                ErrorKind::InternalFailure,
                "An internal failure occurred (injected by the emulator)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_allows_one_second_of_burst_then_throttles() {
        let mut f = FaultInjector::new(Faults { rate_limits: true, ..Faults::default() }, 1);
        let ok = (0..20).filter(|_| f.admit(Op::ListAuditFindings).is_ok()).count();
        assert_eq!(ok, 10);
        assert_eq!(f.admit(Op::DescribeAuditTask).map_err(|e| e.kind), Ok(()));
    }

    #[test]
    fn a_quota_below_one_call_per_second_admits_the_first_call_then_one_per_period() {
        let over = "ListAuditFindings=0.5".parse::<RateOverride>().unwrap();
        let faults = Faults { rate_limits: true, rate_limit_overrides: vec![over], ..Faults::default() };
        let mut f = FaultInjector::new(faults, 1);
        assert!(f.admit(Op::ListAuditFindings).is_ok(), "the bucket starts full");
        assert!(f.admit(Op::ListAuditFindings).is_err(), "then one call per 2 s");
        assert_eq!(f.throttled, 1);
    }

    #[test]
    fn scripted_throttling_counts_down() {
        let mut f = FaultInjector::new(Faults { throttle_next: 2, ..Faults::default() }, 1);
        assert!(f.admit(Op::ListAuditTasks).is_err());
        assert!(f.admit(Op::ListAuditTasks).is_err());
        assert!(f.admit(Op::ListAuditTasks).is_ok());
    }

    #[test]
    fn overrides_and_shares_are_validated() {
        assert!("ListAuditFindings=20".parse::<RateOverride>().is_ok());
        assert!("ListThings=20".parse::<RateOverride>().is_err());
        assert!("ListAuditFindings=-1".parse::<RateOverride>().is_err());
        assert!(Faults { throttle_share: 1.5, ..Faults::default() }.validate().is_err());
        assert_eq!("LOGGING_DISABLED_CHECK".parse::<FailingCheck>().unwrap().error_code, "INSUFFICIENT_PERMISSIONS");
    }
}
