//! Rate limits kept by one replica: a token bucket per key (a client's address, a user name),
//! refilled continuously, answering how long to wait when empty. Replicas that share a store count
//! there instead ([`crate::store`]'s `count_hit`) and fall back to these while it cannot count.

use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::cache::Cache;

/// Keys tracked at most; beyond it, full buckets are forgotten first, then the fullest.
const KEYS_KEPT: usize = 100_000;

/// A bucket's tokens when it was last used, and when that was; it expires once full again.
type Bucket = (f64, Instant);

pub(crate) struct RateLimiter<K> {
    per_minute: u32,
    buckets: Cache<K, Bucket, Instant>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `per_minute` requests a minute, in bursts of up to as many; 0 never limits.
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Cache::new(KEYS_KEPT),
        }
    }

    /// Requests a minute allowed; 0 never limits.
    pub(crate) fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// `Ok` to go ahead, or `Err(seconds)` to wait before the next request.
    pub(crate) fn check(&self, key: K, now: Instant) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(self.per_minute) / 60.0;
        let full = f64::from(self.per_minute);
        // A bucket that has expired is full again: the same as a new one.
        let new = || ((full, now), now);
        self.buckets.upsert(key, now, new, |(tokens, at), full_at| {
            *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(full);
            *at = now;
            let answer = if *tokens >= 1.0 {
                *tokens -= 1.0;
                Ok(())
            } else {
                Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
            };
            *full_at = now + Duration::from_secs_f64((full - *tokens) / rate);
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_refilled() {
        let limiter = RateLimiter::new(3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(ip, t0), Ok(()));
        }
        assert_eq!(
            limiter.check(ip, t0),
            Err(20),
            "one request refills in 20 s"
        );
        assert_eq!(
            limiter.check(other, t0),
            Ok(()),
            "each address has its own bucket"
        );
        assert_eq!(limiter.check(ip, t0 + Duration::from_secs(21)), Ok(()));
        assert_eq!(RateLimiter::new(0).check(ip, t0), Ok(()));
    }
}
