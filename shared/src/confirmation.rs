//! A member topic's subscription of the hub's queue, waiting for the hub to confirm it.
//!
//! A member stack subscribes the hub's queue to its topic; SNS sends the queue a
//! `SubscriptionConfirmation` with a token, and the hub confirms it once the member's
//! hub-access role can be assumed (the proof that the topic belongs to a member stack). The
//! role is created by the same stack and IAM changes are eventually consistent, so the request
//! can arrive before the role can be assumed. The hub then asks again later — the request
//! travels as a [`PendingConfirmation`] on its continuation queue, delayed — for as long as the
//! token lives, and only then gives up.
//!
//! AWS: "Confirmation tokens are valid for two days"
//! (<https://docs.aws.amazon.com/sns/latest/api/API_Subscribe.html>); "Amazon SNS automatically
//! deletes unconfirmed subscriptions after 48 hours"
//! (<https://docs.aws.amazon.com/sns/latest/dg/sns-delete-subscription-topic.html>). Ours: the
//! window is counted from the hub's first attempt (the SNS envelope's `Timestamp` is when SNS
//! sent it; the hub's own clock is the one it can trust), the delays double from a configured
//! first one up to SQS's 900-second maximum `DelaySeconds`.

use serde::{Deserialize, Serialize};

/// How long a subscription confirmation token lives (AWS: two days).
pub const TOKEN_LIFE_MS: i64 = 48 * 3_600_000;

/// SQS's largest `DelaySeconds`.
pub const MAX_DELAY_SECS: u32 = 900;

/// The continuation-queue message carrying a confirmation to try again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PendingConfirmation {
    /// Always `"confirm"`: tells it apart from a continuation.
    pub kind: String,
    /// The member topic whose subscription is to be confirmed.
    pub topic_arn: String,
    /// SNS's confirmation token.
    pub token: String,
    /// The hub's first attempt (epoch ms): the window is counted from it.
    pub first_attempt: i64,
    /// Attempts made so far.
    pub attempts: u32,
}

/// What to do after an attempt found the member's role not assumable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Ask again after `delay_secs`; the window closes at `until` (epoch ms).
    After { delay_secs: u32, until: i64 },
    /// The window is over: give up.
    GiveUp,
}

impl PendingConfirmation {
    /// The first retry of a confirmation attempted (and refused) at `now_ms`.
    pub fn first(topic_arn: &str, token: &str, now_ms: i64) -> Self {
        PendingConfirmation {
            kind: "confirm".into(),
            topic_arn: topic_arn.into(),
            token: token.into(),
            first_attempt: now_ms,
            attempts: 1,
        }
    }

    /// The next attempt's message.
    pub fn next(&self) -> Self {
        PendingConfirmation { attempts: self.attempts + 1, ..self.clone() }
    }

    /// Whether and when to ask again at `now_ms`, the first delay being `first_delay_secs`
    /// (doubling, at most [`MAX_DELAY_SECS`]) within `window_ms` (at most [`TOKEN_LIFE_MS`]).
    pub fn retry(&self, now_ms: i64, first_delay_secs: u32, window_ms: i64) -> Retry {
        let until = self.first_attempt + window_ms.min(TOKEN_LIFE_MS);
        if now_ms >= until {
            return Retry::GiveUp;
        }
        let doubled = (first_delay_secs.max(1) as u64) << self.attempts.saturating_sub(1).min(20);
        let left_secs = ((until - now_ms) / 1000).max(1) as u64;
        let delay = doubled.min(MAX_DELAY_SECS as u64).min(left_secs) as u32;
        Retry::After { delay_secs: delay, until }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_sqs_maximum_and_stop_when_the_token_dies() {
        let p = PendingConfirmation::first("arn:aws:sns:eu-west-1:444455556666:t", "tok", 0);
        assert_eq!(p.retry(0, 30, TOKEN_LIFE_MS), Retry::After { delay_secs: 30, until: TOKEN_LIFE_MS });
        let p4 = p.next().next().next();
        assert_eq!(p4.attempts, 4);
        assert_eq!(p4.retry(1_000, 30, TOKEN_LIFE_MS), Retry::After { delay_secs: 240, until: TOKEN_LIFE_MS });
        let late = p4.next().next().next().next();
        assert_eq!(late.retry(1_000, 30, TOKEN_LIFE_MS), Retry::After { delay_secs: 900, until: TOKEN_LIFE_MS });
        // Never past the window, never past the token's life.
        assert_eq!(
            p.retry(TOKEN_LIFE_MS - 10_000, 30, TOKEN_LIFE_MS),
            Retry::After { delay_secs: 10, until: TOKEN_LIFE_MS }
        );
        assert_eq!(p.retry(TOKEN_LIFE_MS, 30, TOKEN_LIFE_MS), Retry::GiveUp);
        assert_eq!(p.retry(TOKEN_LIFE_MS, 30, 10 * TOKEN_LIFE_MS), Retry::GiveUp, "at most two days");
        assert_eq!(p.retry(5_000, 1, 3_000), Retry::GiveUp);
        // The message round-trips and is told apart by its kind.
        let back: PendingConfirmation = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::to_string(&p).unwrap().contains(r#""kind":"confirm""#));
    }
}
