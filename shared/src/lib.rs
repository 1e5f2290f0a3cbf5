//! Domain of the Device Defender audit tools, shared by the Lambdas and the local emulator.
//!
//! Invariant: this crate does no I/O and names no `aws_sdk_*` type. It holds the audit
//! vocabulary ([`vocabulary`], [`checks`]), the SNS audit notification ([`notification`]) and
//! the scheduled-audit day rules ([`schedule`]) as plain types and pure functions.

pub mod checks;
pub mod notification;
pub mod schedule;
pub mod vocabulary;

pub use checks::{catalog, CheckName, CheckSpec, CHECKS};
pub use notification::{AuditNotification, NotificationCheckDetail};
pub use schedule::{DayOfMonth, Schedule, ScheduleError};
pub use vocabulary::{CheckRunStatus, DayOfWeek, Frequency, ResourceType, Severity, TaskStatus, TaskType};
