//! config-sync: the account's audit configuration and scheduled audits as code.
//!
//! `main.rs` wires; [`handler`] takes an invocation (a CloudFormation custom resource request,
//! the daily drift check, or a dry run) to [`sync::Syncer`], the service over the ports; [`cfn`]
//! is CloudFormation's protocol (typed request, ≤ 4 KB response, delivery); [`config`] the
//! environment.

pub mod cfn;
pub mod config;
pub mod handler;
pub mod sync;

pub use cfn::Responder;
pub use config::Config;
pub use sync::{SyncError, Syncer, OWNER_TAG};
