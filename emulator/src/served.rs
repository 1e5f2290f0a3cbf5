//! Every operation the emulator serves, in one table: the IoT operations of [`Op`] and the
//! SNS, SQS, STS and Organizations actions. `device-defender-emulator --operations` prints it
//! as markdown, `--help` summarises it, and README.md and ARCHITECTURE.md carry the markdown
//! between `<!-- operations:begin -->` and `<!-- operations:end -->` (a test keeps them equal).

use crate::operation::Op;

/// The AWS service an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// IoT Device Defender (rest-json).
    Iot,
    /// SNS (awsQuery).
    Sns,
    /// SQS (awsJson1.0).
    Sqs,
    /// STS (awsQuery).
    Sts,
    /// AWS Organizations (awsJson1.1).
    Organizations,
}

impl Service {
    /// The service's name and wire protocol, as the table shows them.
    pub fn label(self) -> &'static str {
        match self {
            Service::Iot => "IoT (rest-json)",
            Service::Sns => "SNS (awsQuery, `POST /`)",
            Service::Sqs => "SQS (awsJson1.0, `POST /`)",
            Service::Sts => "STS (awsQuery, `POST /`)",
            Service::Organizations => "Organizations (awsJson1.1, `POST /`)",
        }
    }
}

/// One operation the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub service: Service,
    /// The operation name as AWS spells it.
    pub name: &'static str,
    /// How it is addressed: the IoT request line, `Action=…` or `X-Amz-Target: …`.
    pub request: &'static str,
}

const fn sns(name: &'static str, request: &'static str) -> Served {
    Served { service: Service::Sns, name, request }
}

const fn sqs(name: &'static str, request: &'static str) -> Served {
    Served { service: Service::Sqs, name, request }
}

const fn sts(name: &'static str, request: &'static str) -> Served {
    Served { service: Service::Sts, name, request }
}

/// The SNS actions (`sns.rs` dispatches exactly these).
pub const SNS: [Served; 13] = [
    sns("CreateTopic", "Action=CreateTopic"),
    sns("DeleteTopic", "Action=DeleteTopic"),
    sns("ListTopics", "Action=ListTopics"),
    sns("GetTopicAttributes", "Action=GetTopicAttributes"),
    sns("SetTopicAttributes", "Action=SetTopicAttributes"),
    sns("Subscribe", "Action=Subscribe"),
    sns("ConfirmSubscription", "Action=ConfirmSubscription"),
    sns("Unsubscribe", "Action=Unsubscribe"),
    sns("ListSubscriptions", "Action=ListSubscriptions"),
    sns("ListSubscriptionsByTopic", "Action=ListSubscriptionsByTopic"),
    sns("GetSubscriptionAttributes", "Action=GetSubscriptionAttributes"),
    sns("SetSubscriptionAttributes", "Action=SetSubscriptionAttributes"),
    sns("Publish", "Action=Publish"),
];

/// The SQS actions (`sqs` dispatches exactly these).
pub const SQS: [Served; 12] = [
    sqs("CreateQueue", "X-Amz-Target: AmazonSQS.CreateQueue"),
    sqs("DeleteQueue", "X-Amz-Target: AmazonSQS.DeleteQueue"),
    sqs("GetQueueUrl", "X-Amz-Target: AmazonSQS.GetQueueUrl"),
    sqs("ListQueues", "X-Amz-Target: AmazonSQS.ListQueues"),
    sqs("GetQueueAttributes", "X-Amz-Target: AmazonSQS.GetQueueAttributes"),
    sqs("PurgeQueue", "X-Amz-Target: AmazonSQS.PurgeQueue"),
    sqs("SendMessage", "X-Amz-Target: AmazonSQS.SendMessage"),
    sqs("SendMessageBatch", "X-Amz-Target: AmazonSQS.SendMessageBatch"),
    sqs("ReceiveMessage", "X-Amz-Target: AmazonSQS.ReceiveMessage"),
    sqs("DeleteMessage", "X-Amz-Target: AmazonSQS.DeleteMessage"),
    sqs("DeleteMessageBatch", "X-Amz-Target: AmazonSQS.DeleteMessageBatch"),
    sqs("ChangeMessageVisibility", "X-Amz-Target: AmazonSQS.ChangeMessageVisibility"),
];

/// The STS actions.
pub const STS: [Served; 2] =
    [sts("AssumeRole", "Action=AssumeRole"), sts("GetCallerIdentity", "Action=GetCallerIdentity")];

/// The Organizations actions (`organizations.rs` dispatches exactly these).
pub const ORGANIZATIONS: [Served; 1] = [Served {
    service: Service::Organizations,
    name: "ListAccounts",
    request: "X-Amz-Target: AWSOrganizationsV20161128.ListAccounts",
}];

/// Every operation, IoT first.
pub fn all() -> Vec<Served> {
    let iot = Op::ALL.iter().map(|op| Served { service: Service::Iot, name: op.name(), request: op.request() });
    iot.chain(SNS).chain(SQS).chain(STS).chain(ORGANIZATIONS).collect()
}

/// Whether `name` is an SQS action the emulator serves.
pub fn is_sqs(name: &str) -> bool {
    SQS.iter().any(|op| op.name == name)
}

/// The table as markdown: a count line, then one row per operation (IoT rows with AWS's
/// default TPS, which `--rate-limits` applies).
pub fn markdown() -> String {
    let ops = all();
    let count = |s: Service| ops.iter().filter(|o| o.service == s).count();
    let mut out = format!(
        "{} operations: {} IoT, {} SNS, {} SQS, {} STS, {} Organizations.\n\n| service | operation | request | default TPS |\n|---|---|---|---|\n",
        ops.len(),
        count(Service::Iot),
        count(Service::Sns),
        count(Service::Sqs),
        count(Service::Sts),
        count(Service::Organizations)
    );
    for o in &ops {
        let tps = match (o.service, Op::from_name(o.name)) {
            (Service::Iot, Some(op)) => format!("{}", op.default_tps()),
            _ => "–".to_owned(),
        };
        out.push_str(&format!("| {} | {} | `{}` | {tps} |\n", o.service.label(), o.name, o.request));
    }
    out
}

/// The `--help` summary: how many operations of which service, and where the full list is.
pub fn help_summary() -> String {
    let ops = all();
    let names = |s: Service| ops.iter().filter(|o| o.service == s).map(|o| o.name).collect::<Vec<_>>().join(", ");
    format!(
        "Serves {} operations (--operations prints them as a markdown table):\n  IoT: {}\n  SNS: {}\n  SQS: {}\n  STS: {}\n  Organizations: {}",
        ops.len(),
        names(Service::Iot),
        names(Service::Sns),
        names(Service::Sqs),
        names(Service::Sts),
        names(Service::Organizations)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_service_and_every_op_is_listed() {
        let ops = all();
        for (i, a) in ops.iter().enumerate() {
            assert!(!ops[i + 1..].iter().any(|b| b.service == a.service && b.name == a.name), "{} twice", a.name);
        }
        assert_eq!(ops.iter().filter(|o| o.service == Service::Iot).count(), Op::ALL.len());
        let md = markdown();
        assert!(
            md.starts_with(&format!("{} operations: 22 IoT, 13 SNS, 12 SQS, 2 STS, 1 Organizations.", ops.len())),
            "{md}"
        );
        assert!(md.contains("| IoT (rest-json) | DescribeAuditFinding | `GET /audit/findings/{findingId}` | 5 |"));
        assert!(help_summary().contains("SQS: CreateQueue, DeleteQueue"));
        assert!(help_summary().contains("Organizations: ListAccounts"));
        assert!(md.contains(
            "| Organizations (awsJson1.1, `POST /`) | ListAccounts | `X-Amz-Target: AWSOrganizationsV20161128.ListAccounts` | – |"
        ));
    }
}
