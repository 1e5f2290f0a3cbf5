//! [`ContinuationQueue`] over `aws-sdk-sqs`.

use super::classify;
use crate::confirmation::PendingConfirmation;
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

impl SqsContinuationQueue {
    /// Sends `message` as JSON, delivered after `delay_secs` (at most SQS's 900).
    async fn send(&self, message: &impl serde::Serialize, delay_secs: u32) -> Result<(), PortError> {
        let body = serde_json::to_string(message).map_err(|e| PortError::Permanent(e.to_string()))?;
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

impl ContinuationQueue for SqsContinuationQueue {
    async fn enqueue(&self, c: &Continuation, delay_secs: u32) -> Result<(), PortError> {
        self.send(c, delay_secs).await
    }

    async fn retry_confirmation(&self, p: &PendingConfirmation, delay_secs: u32) -> Result<(), PortError> {
        self.send(p, delay_secs).await
    }
}
