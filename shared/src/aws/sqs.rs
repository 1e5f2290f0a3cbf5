//! [`ContinuationQueue`] over `aws-sdk-sqs`.

use super::classify;
use crate::ports::{ContinuationQueue, PortError};
use crate::work::Continuation;

/// Sends continuations to one queue.
#[derive(Clone, Debug)]
pub struct SqsContinuationQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsContinuationQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        SqsContinuationQueue { client, queue_url }
    }
}

impl ContinuationQueue for SqsContinuationQueue {
    async fn enqueue(&self, c: &Continuation, delay_secs: u32) -> Result<(), PortError> {
        let body = serde_json::to_string(c).map_err(|e| PortError::Permanent(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay_secs.min(900) as i32)
            .send()
            .await
            .map_err(|e| classify("SendMessage", e))?;
        Ok(())
    }
}
