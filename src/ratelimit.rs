//! A token bucket: the global cap on RSTs per second (pure; the clock is passed in).
use crate::time::Instant;

/// Allows `rate` events per second on average, in bursts of at most `rate` (one second's worth).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u32,
    /// Tokens in millionths, so refills at microsecond resolution stay exact.
    micro_tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32, now: Instant) -> Self {
        TokenBucket {
            rate,
            micro_tokens: u64::from(rate) * 1_000_000,
            last: now,
        }
    }

    /// Takes one token at `now`; false when the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_since(self.last).as_micros() as u64;
        self.last = self.last.max(now);
        let cap = u64::from(self.rate) * 1_000_000;
        self.micro_tokens = (self.micro_tokens + elapsed * u64::from(self.rate)).min(cap);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }

    /// Changes the rate (configuration reload), keeping at most a second's worth of tokens.
    pub fn set_rate(&mut self, rate: u32) {
        self.rate = rate;
        self.micro_tokens = self.micro_tokens.min(u64::from(rate) * 1_000_000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::from_secs(10);
        let mut b = TokenBucket::new(100, t0);
        let burst = (0..1000).filter(|_| b.take(t0)).count();
        assert_eq!(burst, 100);
        // Over the next second, one token every 10 ms.
        let mut allowed = 0;
        for ms in 1..=1000 {
            if b.take(t0 + Duration::from_millis(ms)) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 100);
        // A clock that goes back gives nothing extra.
        assert!(!b.take(t0));
    }

    #[test]
    fn lowering_the_rate_drops_extra_tokens() {
        let t0 = Instant::from_secs(1);
        let mut b = TokenBucket::new(1000, t0);
        b.set_rate(2);
        assert_eq!((0..10).filter(|_| b.take(t0)).count(), 2);
    }
}
