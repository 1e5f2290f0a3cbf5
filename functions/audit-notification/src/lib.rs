//! audit-notification: every finding of every ended audit task into DynamoDB, and a digest
//! people act on. `main.rs` builds the clients and wires [`handler::handle`]; the logic is in
//! [`ingest`] over the ports of `audit_shared::ports`, and in `audit_shared` (digest, summary).

pub mod config;
pub mod digest_step;
pub mod handler;
pub mod ingest;
pub mod metrics;
pub mod run_view;

use audit_shared::aws::dynamodb::{DynamoEpisodeStore, DynamoTaskStore};
use audit_shared::aws::iot::IotAuditReader;
use audit_shared::aws::sns::SnsDigestPublisher;
use audit_shared::aws::sqs::SqsContinuationQueue;

/// The ingestor over the real AWS adapters.
pub type AwsIngestor =
    ingest::Ingestor<IotAuditReader, DynamoTaskStore, DynamoEpisodeStore, SnsDigestPublisher, SqsContinuationQueue>;

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

/// Builds the real ingestor.
pub fn build(clients: Clients, config: config::Config, region: String) -> AwsIngestor {
    let store = DynamoTaskStore::new(clients.dynamodb.clone(), config.table_name.clone(), config.retention_days);
    let episodes =
        DynamoEpisodeStore::new(clients.dynamodb, config.table_name.clone(), config.retention_days, store.meter());
    let ports = ingest::Ports {
        reader: IotAuditReader::new(clients.iot),
        store,
        episodes: std::sync::Arc::new(episodes),
        publisher: SnsDigestPublisher::new(clients.sns.clone(), config.digest_topic_arn.clone()),
        chat: config.chat_topic_arn.clone().map(|arn| SnsDigestPublisher::new(clients.sns, arn)),
        queue: SqsContinuationQueue::new(clients.sqs, config.continuation_queue_url.clone()),
    };
    ingest::Ingestor::new(ports, config, region)
}
