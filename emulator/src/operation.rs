//! The 13 audit operations: names, the errors each one models, and AWS's default rate limits.

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
}

impl Op {
    /// All 13, in the reference's order.
    pub const ALL: [Op; 13] = [
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
        }
    }

    /// Looks an operation up by name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// AWS's default requests per second for this operation (reference §7; the three without a
    /// published figure get 5, an [E] decision).
    pub fn default_tps(self) -> f64 {
        match self {
            Op::ListAuditFindings => 10.0,
            Op::DescribeAuditTask => 25.0,
            _ => 5.0,
        }
    }

    /// True when the service model lists `kind` among this operation's errors (reference §1.1).
    /// The emulator sends no other error for the operation.
    pub fn models(self, kind: ErrorKind) -> bool {
        use ErrorKind::*;
        match kind {
            Throttling | InternalFailure => true,
            InvalidRequest => self != Op::DescribeAccountAuditConfiguration,
            ResourceNotFound => matches!(
                self,
                Op::DeleteAccountAuditConfiguration
                    | Op::DescribeScheduledAudit
                    | Op::UpdateScheduledAudit
                    | Op::DeleteScheduledAudit
                    | Op::DescribeAuditTask
                    | Op::CancelAuditTask
            ),
            ResourceAlreadyExists => self == Op::CreateScheduledAudit,
            LimitExceeded => matches!(self, Op::CreateScheduledAudit | Op::StartOnDemandAuditTask),
            UnknownOperation => false,
        }
    }
}
