//! The virtual clock: real time (unless frozen) plus everything advanced through the admin API.

use std::time::Instant;

/// A clock whose time is `start + advanced (+ real time elapsed, unless frozen)`.
#[derive(Debug, Clone)]
pub struct Clock {
    start_ms: i64,
    started: Instant,
    advanced_ms: i64,
    frozen: bool,
}

impl Clock {
    pub fn new(start_ms: i64, frozen: bool) -> Self {
        Clock { start_ms, started: Instant::now(), advanced_ms: 0, frozen }
    }

    /// Now, in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        let real = if self.frozen { 0 } else { self.started.elapsed().as_millis() as i64 };
        self.start_ms + self.advanced_ms + real
    }

    /// Moves time forward (never back).
    pub fn advance(&mut self, ms: i64) {
        self.advanced_ms += ms.max(0);
    }

    /// True when only advances move time.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_advanced() {
        let mut c = Clock::new(1_000, true);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(500);
        c.advance(-100);
        assert_eq!(c.now_ms(), 1_500);
        assert!(Clock::new(0, false).now_ms() >= 0);
    }
}
