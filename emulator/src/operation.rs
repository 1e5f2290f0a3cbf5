//! The IoT operations the emulator serves: the Device Defender audit operations (configuration,
//! scheduled audits, tasks, findings), the finding suppression operations, and IoT's tagging
//! operations for the resources it holds: names, request lines, the errors each one models,
//! and AWS's default rate limits. [`crate::served`] lists them with the SNS, SQS and STS actions.

use crate::error::ErrorKind;

/// One IoT API operation.
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
    DescribeAuditFinding,
    CreateAuditSuppression,
    DescribeAuditSuppression,
    UpdateAuditSuppression,
    DeleteAuditSuppression,
    ListAuditSuppressions,
    TagResource,
    UntagResource,
    ListTagsForResource,
}

impl Op {
    /// All of them, in the reference's order.
    pub const ALL: [Op; 22] = [
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
        Op::DescribeAuditFinding,
        Op::CreateAuditSuppression,
        Op::DescribeAuditSuppression,
        Op::UpdateAuditSuppression,
        Op::DeleteAuditSuppression,
        Op::ListAuditSuppressions,
        Op::TagResource,
        Op::UntagResource,
        Op::ListTagsForResource,
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
            Op::DescribeAuditFinding => "DescribeAuditFinding",
            Op::CreateAuditSuppression => "CreateAuditSuppression",
            Op::DescribeAuditSuppression => "DescribeAuditSuppression",
            Op::UpdateAuditSuppression => "UpdateAuditSuppression",
            Op::DeleteAuditSuppression => "DeleteAuditSuppression",
            Op::ListAuditSuppressions => "ListAuditSuppressions",
            Op::TagResource => "TagResource",
            Op::UntagResource => "UntagResource",
            Op::ListTagsForResource => "ListTagsForResource",
        }
    }

    /// The request line (method and path) of the IoT API reference.
    pub fn request(self) -> &'static str {
        match self {
            Op::UpdateAccountAuditConfiguration => "PATCH /audit/configuration",
            Op::DescribeAccountAuditConfiguration => "GET /audit/configuration",
            Op::DeleteAccountAuditConfiguration => "DELETE /audit/configuration",
            Op::CreateScheduledAudit => "POST /audit/scheduledaudits/{scheduledAuditName}",
            Op::ListScheduledAudits => "GET /audit/scheduledaudits",
            Op::DescribeScheduledAudit => "GET /audit/scheduledaudits/{scheduledAuditName}",
            Op::UpdateScheduledAudit => "PATCH /audit/scheduledaudits/{scheduledAuditName}",
            Op::DeleteScheduledAudit => "DELETE /audit/scheduledaudits/{scheduledAuditName}",
            Op::StartOnDemandAuditTask => "POST /audit/tasks",
            Op::DescribeAuditTask => "GET /audit/tasks/{taskId}",
            Op::ListAuditTasks => "GET /audit/tasks",
            Op::CancelAuditTask => "PUT /audit/tasks/{taskId}/cancel",
            Op::ListAuditFindings => "POST /audit/findings",
            Op::DescribeAuditFinding => "GET /audit/findings/{findingId}",
            Op::CreateAuditSuppression => "POST /audit/suppressions/create",
            Op::DescribeAuditSuppression => "POST /audit/suppressions/describe",
            Op::UpdateAuditSuppression => "PATCH /audit/suppressions/update",
            Op::DeleteAuditSuppression => "POST /audit/suppressions/delete",
            Op::ListAuditSuppressions => "POST /audit/suppressions/list",
            Op::TagResource => "POST /tags",
            Op::UntagResource => "POST /untag",
            Op::ListTagsForResource => "GET /tags?resourceArn={resourceArn}",
        }
    }

    /// Looks an operation up by name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// AWS's default requests per second for this operation (reference §7; those without a
    /// published figure — three audit operations, DescribeAuditFinding and the tagging
    /// operations — get 5, an [E] decision; the five suppression operations 10 each, not
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
                    | Op::DescribeAuditFinding
                    | Op::TagResource
                    | Op::UntagResource
                    | Op::ListTagsForResource
                    | Op::DescribeScheduledAudit
                    | Op::UpdateScheduledAudit
                    | Op::DeleteScheduledAudit
                    | Op::DescribeAuditTask
                    | Op::CancelAuditTask
                    | Op::DescribeAuditSuppression
                    | Op::UpdateAuditSuppression
            ),
            ResourceAlreadyExists => matches!(self, Op::CreateScheduledAudit | Op::CreateAuditSuppression),
            LimitExceeded => matches!(
                self,
                Op::CreateScheduledAudit | Op::StartOnDemandAuditTask | Op::CreateAuditSuppression | Op::TagResource
            ),
            UnknownOperation => false,
        }
    }
}
