//! audit-notification: every finding of every ended audit task into DynamoDB, and a digest
//! people act on. `main.rs` builds the clients and wires [`handler::handle`]; the logic is in
//! [`ingest`] over the ports of `audit_shared::ports`, and in `audit_shared` (digest, summary).

pub mod config;
pub mod digest_step;
pub mod handler;
pub mod hub;
pub mod ingest;
pub mod metrics;
pub mod read_ahead;
pub mod run_view;
pub mod unread;

use audit_shared::aws::dynamodb::{CapacityMeter, DynamoEpisodeStore, DynamoMemberStore, DynamoTaskStore};
use audit_shared::aws::iot::IotAuditReader;
use audit_shared::aws::member_access::MemberAccess;
use audit_shared::aws::sns::SnsDigestPublisher;
use audit_shared::aws::sqs::SqsContinuationQueue;
use std::sync::Arc;

/// The ingestor over the real AWS adapters.
pub type AwsIngestor =
    ingest::Ingestor<IotAuditReader, DynamoTaskStore, DynamoEpisodeStore, SnsDigestPublisher, SqsContinuationQueue>;

/// The hub over the real AWS adapters.
pub type AwsHub = hub::Hub<
    IotAuditReader,
    DynamoTaskStore,
    DynamoEpisodeStore,
    SnsDigestPublisher,
    SqsContinuationQueue,
    DynamoMemberStore,
>;

/// The AWS clients the function uses.
pub struct Clients {
    pub iot: aws_sdk_iot::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl Clients {
    /// All four from one SDK configuration (endpoints from `AWS_ENDPOINT_URL_*`).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Clients {
            iot: aws_sdk_iot::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }
}

/// Builds the real hub: `sdk` is where STS is called from (assuming member roles); the
/// returned meter counts the capacity every store consumes.
pub fn build(clients: Clients, sdk: &aws_config::SdkConfig, config: config::Config) -> (AwsHub, Arc<CapacityMeter>) {
    let store = DynamoTaskStore::new(clients.dynamodb.clone(), config.table_name.clone(), config.retention_days);
    let meter = store.meter();
    let episodes = DynamoEpisodeStore::new(
        clients.dynamodb.clone(),
        config.table_name.clone(),
        config.retention_days,
        meter.clone(),
    );
    let members = DynamoMemberStore::new(clients.dynamodb, config.table_name.clone(), meter.clone())
        .with_home(config.home.clone());
    let publisher = SnsDigestPublisher::new(clients.sns.clone(), config.digest_topic_arn.clone());
    let chat = config.chat_topic_arn.clone().map(|arn| SnsDigestPublisher::new(clients.sns, arn));
    let queue = SqsContinuationQueue::new(clients.sqs, config.continuation_queue_url.clone());
    let access = Arc::new(MemberAccess::new(
        clients.iot.config().clone(),
        sdk.clone(),
        config.home.clone(),
        config.member_role_name.clone(),
        config.partition.clone(),
    ));
    let home = config.home.clone();
    let confirming = access.clone();
    let confirm: hub::ConfirmSubscription = Box::new(move |topic, token| {
        let access = confirming.clone();
        Box::pin(async move { access.confirm_subscription(&topic, &token).await })
    });
    let open: hub::OpenMember<_, _, _, _, _> = Box::new(move |member| {
        let prefix = member.key_prefix(&home);
        let (store, episodes) = (store.for_member(prefix.clone()), episodes.for_member(prefix));
        let (publisher, chat, queue, access, member) =
            (publisher.clone(), chat.clone(), queue.clone(), access.clone(), member.clone());
        Box::pin(async move {
            let reader = IotAuditReader::new(access.iot_client(&member).await?);
            Ok(ingest::Ports { reader, store, episodes: Arc::new(episodes), publisher, chat, queue })
        })
    });
    (hub::Hub::new(config.home.clone(), config, members, open, confirm), meter)
}
