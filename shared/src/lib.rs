//! Domain of the Device Defender audit tools, shared by the Lambdas and the local emulator.
//!
//! Invariant: the domain modules do no I/O and name no `aws_sdk_*` type. They hold the audit
//! vocabulary ([`vocabulary`], [`checks`]), the SNS audit notification ([`notification`]),
//! what the function is asked to do ([`work`]), the account-regions a hub serves ([`member`]), their life from joined to retired ([`membership`]) and their roll-up ([`rollup`]), task summaries and ingest progress
//! ([`summary`]), findings ([`finding`]) and what a person types for a resource ([`resource_lookup`]), the digest ([`digest`]) and the scheduled-audit day
//! rules ([`schedule`]) as plain types and pure functions; [`settings`] reads each function's
//! environment the same way. [`ports`] names what the Lambdas need
//! from AWS as traits over those types; the real adapters are in `aws` (feature `aws`), the
//! only module that touches the SDK.

#[cfg(feature = "aws")]
pub mod aws;
pub mod chat_digest;
pub mod checks;
pub mod confirmation;
pub mod digest;
pub mod digest_lifecycle;
pub mod drift_report;
pub mod finding;
pub mod history;
pub mod lifecycle;
pub mod member;
pub mod membership;
pub mod notification;
pub mod ports;
pub mod resource_lookup;
pub mod rollup;
pub mod schedule;
pub mod settings;
pub mod setup;
pub mod stall;
pub mod stream_head;
pub mod summary;
pub mod suppression;
pub mod vocabulary;
pub mod work;

pub use checks::{catalog, CheckName, CheckSpec, CHECKS};
pub use notification::{AuditNotification, NotificationCheckDetail};
pub use schedule::{DayOfMonth, Schedule, ScheduleError};
pub use vocabulary::{CheckRunStatus, DayOfWeek, Frequency, ResourceType, Severity, TaskStatus, TaskType};
