//! Values that differ from run to run: the run tag that keeps creates from
//! colliding with earlier runs, ids that cannot exist, random paths.
//!
//! Nothing here needs to be unpredictable, only different each time, so the
//! seed comes from the standard library's per-process hasher keys and the
//! clock, stirred with SplitMix64; no extra dependency.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A small thread-safe generator (SplitMix64 over an atomic counter).
#[derive(Debug)]
pub struct Random {
    state: AtomicU64,
}

impl Random {
    /// Seeded from the process's hasher keys and the clock.
    pub fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        Random::seeded(hasher.finish())
    }

    /// A fixed sequence, for tests.
    pub fn seeded(seed: u64) -> Self {
        Random {
            state: AtomicU64::new(seed),
        }
    }

    pub fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` lower-case hex digits (at most 16).
    pub fn hex(&self, n: usize) -> String {
        let text = format!("{:016x}", self.next_u64());
        text[..n.min(16)].to_owned()
    }

    /// A random version-4 UUID, hyphenated.
    pub fn uuid(&self) -> String {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

impl Default for Random {
    fn default() -> Self {
        Random::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let random = Random::seeded(7);
        let a = random.uuid();
        let b = random.uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(random.hex(8).len(), 8);
    }
}
