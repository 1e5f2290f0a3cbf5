//! [`DigestPublisher`] over `aws-sdk-sns`.

use super::classify;
use crate::ports::{DigestPublisher, PortError};
use aws_sdk_sns::types::MessageAttributeValue;

/// Publishes digests to one topic.
#[derive(Clone, Debug)]
pub struct SnsDigestPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsDigestPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String) -> Self {
        SnsDigestPublisher { client, topic_arn }
    }
}

impl DigestPublisher for SnsDigestPublisher {
    async fn publish(
        &self,
        subject: &str,
        body: &str,
        attributes: &[(String, &'static str, String)],
    ) -> Result<String, PortError> {
        let mut req = self.client.publish().topic_arn(&self.topic_arn).subject(subject).message(body);
        for (name, data_type, value) in attributes {
            let v = MessageAttributeValue::builder()
                .data_type(*data_type)
                .string_value(value)
                .build()
                .map_err(|e| PortError::Permanent(format!("message attribute {name}: {e}")))?;
            req = req.message_attributes(name, v);
        }
        let out = req.send().await.map_err(|e| classify("Publish", e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}
