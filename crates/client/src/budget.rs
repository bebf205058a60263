//! The retry budget: retries may be at most a fraction of recent requests plus
//! a small floor per second, so a failing upstream sees bounded extra load.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many slots the window is cut into: old traffic leaves it a slot at a time.
const SLOTS: usize = 10;

/// A budget shared by every call of one [`Policy`](crate::Policy).
///
/// Over the last `window`, retries may not exceed `ratio` × requests +
/// `floor_per_second` × window seconds. The floor lets a quiet client retry
/// at all; the ratio keeps a busy one from doubling an outage (Finagle's and
/// Envoy's retry budgets work the same way).
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    floor: f64,
    slot: Duration,
    ring: Mutex<Ring>,
}

#[derive(Debug)]
struct Ring {
    origin: Instant,
    /// Index of the newest slot since `origin`.
    head: u64,
    slots: [(u64, u64); SLOTS],
}

impl RetryBudget {
    /// `ratio` of recent requests (clamped to 0..=1000), plus
    /// `floor_per_second` over a `window` (at least 10 ms).
    pub fn new(ratio: f64, floor_per_second: f64, window: Duration) -> Self {
        let window = window.max(Duration::from_millis(10));
        let ratio = if ratio.is_finite() {
            ratio.clamp(0.0, 1000.0)
        } else {
            0.0
        };
        let floor = if floor_per_second.is_finite() {
            floor_per_second.max(0.0) * window.as_secs_f64()
        } else {
            0.0
        };
        Self {
            ratio,
            floor,
            slot: window / SLOTS as u32,
            ring: Mutex::new(Ring {
                origin: Instant::now(),
                head: 0,
                slots: [(0, 0); SLOTS],
            }),
        }
    }

    /// No limit: every retry the other rules allow is made.
    pub fn unlimited() -> Self {
        Self::new(1000.0, 1e9, Duration::from_secs(10))
    }

    fn with_ring<T>(&self, f: impl FnOnce(&mut Ring) -> T) -> T {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let now = u64::try_from(ring.origin.elapsed().as_nanos() / self.slot.as_nanos().max(1))
            .unwrap_or(u64::MAX);
        if now.saturating_sub(ring.head) >= SLOTS as u64 {
            ring.slots = [(0, 0); SLOTS];
        } else {
            for i in ring.head + 1..=now {
                ring.slots[(i % SLOTS as u64) as usize] = (0, 0);
            }
        }
        ring.head = ring.head.max(now);
        f(&mut ring)
    }

    /// Counts a new call (its first attempt).
    pub fn deposit(&self) {
        self.with_ring(|r| {
            let i = (r.head % SLOTS as u64) as usize;
            r.slots[i].0 += 1;
        });
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_withdraw(&self) -> bool {
        self.with_ring(|r| {
            let (requests, retries) = r
                .slots
                .iter()
                .fold((0u64, 0u64), |(a, b), s| (a + s.0, b + s.1));
            let allowed = self.ratio * requests as f64 + self.floor;
            let ok = (retries + 1) as f64 <= allowed;
            if ok {
                let i = (r.head % SLOTS as u64) as usize;
                r.slots[i].1 += 1;
            }
            ok
        })
    }

    /// Calls and retries counted in the current window.
    pub fn recent(&self) -> (u64, u64) {
        self.with_ring(|r| r.slots.iter().fold((0, 0), |(a, b), s| (a + s.0, b + s.1)))
    }
}

impl Default for RetryBudget {
    /// 10% of recent requests plus one retry a second, over 10 s.
    fn default() -> Self {
        Self::new(0.1, 1.0, Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_stop_at_the_ratio_plus_the_floor() {
        let b = RetryBudget::new(0.1, 0.5, Duration::from_secs(10));
        for _ in 0..100 {
            b.deposit();
        }
        // 10% of 100, plus 0.5/s over 10 s.
        let granted = (0..100).filter(|_| b.try_withdraw()).count();
        assert_eq!(granted, 15);
        assert_eq!(b.recent(), (100, 15));
    }

    #[test]
    fn the_floor_lets_a_quiet_client_retry() {
        let b = RetryBudget::new(0.2, 1.0, Duration::from_secs(3));
        assert_eq!((0..10).filter(|_| b.try_withdraw()).count(), 3);
    }

    #[test]
    fn unlimited_never_refuses() {
        let b = RetryBudget::unlimited();
        assert!((0..10_000).all(|_| b.try_withdraw()));
    }
}
