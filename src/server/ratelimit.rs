//! Response-rate limiting per client prefix over UDP (off by default): a reflection attack
//! with spoofed sources gets at most `per_second` answers per /24 (IPv4) or /56 (IPv6) per
//! second. Beyond it every second response is a bare truncated reply ("slip"), so a real client
//! behind the prefix retries over TCP (never limited); the rest are dropped.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dashmap::DashMap;

/// Prefixes remembered at most; beyond, the table starts over (a flood of spoofed sources must
/// not grow memory without bound).
const MAX_PREFIXES: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    /// Send a truncated empty reply instead.
    Slip,
    Drop,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_second: u32,
    start: Instant,
    /// Prefix → (second it counts, responses in that second).
    windows: DashMap<u128, (u64, u32)>,
    pub limited: AtomicU64,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            per_second,
            start: Instant::now(),
            windows: DashMap::new(),
            limited: AtomicU64::new(0),
        }
    }

    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    fn prefix(ip: IpAddr) -> u128 {
        match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4) & 0xffff_ff00),
            IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 72) - 1)) | 1,
        }
    }

    pub fn check(&self, ip: IpAddr) -> Verdict {
        let now = self.start.elapsed().as_secs();
        if self.windows.len() > MAX_PREFIXES {
            self.windows.clear();
        }
        let mut entry = self.windows.entry(Self::prefix(ip)).or_insert((now, 0));
        let (second, count) = entry.value_mut();
        if *second != now {
            *second = now;
            *count = 0;
        }
        *count += 1;
        if *count <= self.per_second {
            return Verdict::Answer;
        }
        self.limited.fetch_add(1, Ordering::Relaxed);
        if (*count - self.per_second) % 2 == 1 {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_the_rate_half_slip_and_half_drop_per_prefix() {
        let rl = RateLimiter::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let same_prefix: IpAddr = "192.0.2.200".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..7)
            .map(|i| rl.check(if i % 2 == 0 { a } else { same_prefix }))
            .collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Answer,
                Verdict::Answer,
                Verdict::Answer,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop
            ]
        );
        assert_eq!(
            rl.check(other),
            Verdict::Answer,
            "another prefix has its own budget"
        );
    }
}
