//! Continuations that make no progress: an invocation that ends without reading a page of
//! findings (its time ran out before the first one) must not hand over to a new invocation at
//! once, or a bug, a misconfigured timeout or a local runtime's wrong deadline turns into an
//! endless loop of paid invocations. Each such continuation waits longer (SQS `DelaySeconds`,
//! doubling from a configured first delay up to SQS's maximum of 900 s), and after a bounded
//! number in a row the run stops: the checks not read are recorded on the run with the reason
//! and the digest says so.
//!
//! AWS: `DelaySeconds` "Valid values: 0 to 900" (SendMessage,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>).
//! Ours: what counts as progress (a page read), the doubling, and the limit.

use crate::confirmation::MAX_DELAY_SECS;

/// How zero-progress continuations are spaced and when the run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallPolicy {
    /// The delay after the first invocation without progress (then doubling).
    pub first_delay_secs: u32,
    /// Invocations in a row without progress after which the run stops.
    pub max_stalled: u32,
}

/// What follows an invocation that read no page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallStep {
    /// Continue after `delay_secs`; the continuation carries `stalled`.
    Retry {
        /// Invocations in a row that read nothing, this one included.
        stalled: u32,
        /// The continuation's SQS `DelaySeconds`.
        delay_secs: u32,
    },
    /// Stop: `stalled` invocations in a row read nothing.
    GiveUp {
        /// Invocations in a row that read nothing, this one included.
        stalled: u32,
    },
}

impl StallPolicy {
    /// The step after an invocation that read no page, `previous` such invocations having
    /// come right before it.
    pub fn after(&self, previous: u32) -> StallStep {
        let stalled = previous.saturating_add(1);
        if stalled >= self.max_stalled {
            return StallStep::GiveUp { stalled };
        }
        let factor = 1u32.checked_shl(stalled - 1).unwrap_or(u32::MAX);
        StallStep::Retry { stalled, delay_secs: self.first_delay_secs.saturating_mul(factor).min(MAX_DELAY_SECS) }
    }
}

/// Why a run stopped reading after `stalled` invocations read nothing, each with `time_left_ms`
/// to read in (its Lambda deadline minus the margin, or the configured slice).
pub fn stall_reason(stalled: u32, time_left_ms: u64) -> String {
    format!(
        "no page of findings was read in {stalled} invocations in a row: the last had {time_left_ms} ms to read \
         (the Lambda deadline minus DEADLINE_MARGIN_MS, or MAX_SLICE_MS if shorter)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_sqs_maximum_and_the_run_stops_at_the_limit() {
        let p = StallPolicy { first_delay_secs: 10, max_stalled: 5 };
        let steps: Vec<StallStep> = (0..5).map(|n| p.after(n)).collect();
        assert_eq!(
            steps,
            [
                StallStep::Retry { stalled: 1, delay_secs: 10 },
                StallStep::Retry { stalled: 2, delay_secs: 20 },
                StallStep::Retry { stalled: 3, delay_secs: 40 },
                StallStep::Retry { stalled: 4, delay_secs: 80 },
                StallStep::GiveUp { stalled: 5 },
            ]
        );
        let long = StallPolicy { first_delay_secs: 600, max_stalled: 40 };
        assert_eq!(long.after(1), StallStep::Retry { stalled: 2, delay_secs: 900 }, "SQS's maximum");
        assert_eq!(long.after(38), StallStep::Retry { stalled: 39, delay_secs: 900 }, "no overflow");
        assert_eq!(StallPolicy { first_delay_secs: 1, max_stalled: 1 }.after(0), StallStep::GiveUp { stalled: 1 });
        assert!(stall_reason(5, 0).starts_with("no page of findings was read in 5 invocations in a row"));
    }
}
