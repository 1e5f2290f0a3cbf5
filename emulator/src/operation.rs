//! The 18 audit operations (13 of configuration, audits, tasks and findings; 5 of finding
//! suppressions): names, the errors each one models, and AWS's default rate limits.

use crate::error::ErrorKind;

/// One audit API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    UpdateAccountAuditConfiguration,
    DescribeAccountAuditConfiguration,
    DeleteAccountAuditConfiguration,
    CreateScheduledAudit,
    ListScheduledAudits,
    DescribeScheduledAudit,
    UpdateScheduledAudit,
    DeleteScheduledAudit,
    StartOnDemandAuditTask,
    DescribeAuditTask,
    ListAuditTasks,
    CancelAuditTask,
    ListAuditFindings,
    CreateAuditSuppression,
    DescribeAuditSuppression,
    UpdateAuditSuppression,
    DeleteAuditSuppression,
    ListAuditSuppressions,
}

impl Op {
    /// All 18, in the reference's order.
    pub const ALL: [Op; 18] = [
        Op::UpdateAccountAuditConfiguration,
        Op::DescribeAccountAuditConfiguration,
        Op::DeleteAccountAuditConfiguration,
        Op::CreateScheduledAudit,
        Op::ListScheduledAudits,
        Op::DescribeScheduledAudit,
        Op::UpdateScheduledAudit,
        Op::DeleteScheduledAudit,
        Op::StartOnDemandAuditTask,
        Op::DescribeAuditTask,
        Op::ListAuditTasks,
        Op::CancelAuditTask,
        Op::ListAuditFindings,
        Op::CreateAuditSuppression,
        Op::DescribeAuditSuppression,
        Op::UpdateAuditSuppression,
        Op::DeleteAuditSuppression,
        Op::ListAuditSuppressions,
    ];

    /// The operation name as AWS spells it.
    pub fn name(self) -> &'static str {
        match self {
            Op::UpdateAccountAuditConfiguration => "UpdateAccountAuditConfiguration",
            Op::DescribeAccountAuditConfiguration => "DescribeAccountAuditConfiguration",
            Op::DeleteAccountAuditConfiguration => "DeleteAccountAuditConfiguration",
            Op::CreateScheduledAudit => "CreateScheduledAudit",
            Op::ListScheduledAudits => "ListScheduledAudits",
            Op::DescribeScheduledAudit => "DescribeScheduledAudit",
            Op::UpdateScheduledAudit => "UpdateScheduledAudit",
            Op::DeleteScheduledAudit => "DeleteScheduledAudit",
            Op::StartOnDemandAuditTask => "StartOnDemandAuditTask",
            Op::DescribeAuditTask => "DescribeAuditTask",
            Op::ListAuditTasks => "ListAuditTasks",
            Op::CancelAuditTask => "CancelAuditTask",
            Op::ListAuditFindings => "ListAuditFindings",
            Op::CreateAuditSuppression => "CreateAuditSuppression",
            Op::DescribeAuditSuppression => "DescribeAuditSuppression",
            Op::UpdateAuditSuppression => "UpdateAuditSuppression",
            Op::DeleteAuditSuppression => "DeleteAuditSuppression",
            Op::ListAuditSuppressions => "ListAuditSuppressions",
        }
    }

    /// Looks an operation up by name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// AWS's default requests per second for this operation (reference §7; the three without a
    /// published figure get 5, an [E] decision; the five suppression operations 10 each, not
    /// adjustable, per the Device Defender quotas page).
    pub fn default_tps(self) -> f64 {
        match self {
            Op::ListAuditFindings
            | Op::CreateAuditSuppression
            | Op::DescribeAuditSuppression
            | Op::UpdateAuditSuppression
            | Op::DeleteAuditSuppression
            | Op::ListAuditSuppressions => 10.0,
            Op::DescribeAuditTask => 25.0,
            _ => 5.0,
        }
    }

    /// True when the service model lists `kind` among this operation's errors (reference §1.1).
    /// The emulator sends no other error for the operation.
    pub fn models(self, kind: ErrorKind) -> bool {
        use ErrorKind::*;
        match kind {
            // Common errors: any operation may answer them.
            Throttling | InternalFailure | UnrecognizedClient | ExpiredToken => true,
            InvalidRequest => self != Op::DescribeAccountAuditConfiguration,
            ResourceNotFound => matches!(
                self,
                Op::DeleteAccountAuditConfiguration
                    | Op::DescribeScheduledAudit
                    | Op::UpdateScheduledAudit
                    | Op::DeleteScheduledAudit
                    | Op::DescribeAuditTask
                    | Op::CancelAuditTask
                    | Op::DescribeAuditSuppression
                    | Op::UpdateAuditSuppression
            ),
            ResourceAlreadyExists => matches!(self, Op::CreateScheduledAudit | Op::CreateAuditSuppression),
            LimitExceeded => {
                matches!(self, Op::CreateScheduledAudit | Op::StartOnDemandAuditTask | Op::CreateAuditSuppression)
            }
            UnknownOperation => false,
        }
    }
}
