//! Metrics: lock-free primitives (counting stays off the query path's critical section), the
//! per-listener DNS request metrics, and the Prometheus text exposition.

pub mod dns;
pub mod expansions;
pub mod exposition;
pub mod process;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// A Prometheus-style histogram over fixed bucket bounds, updated with atomics.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One counter per bound, plus `+Inf`; cumulative counts are computed when exported.
    buckets: Vec<AtomicU64>,
    /// The sum in units of `1 / scale` (nanoseconds for seconds, bytes for sizes).
    sum_units: AtomicU64,
    scale: f64,
    count: AtomicU64,
}

/// CoreDNS's `dns_programming_duration_seconds` buckets: 1 ms doubling up to ~9 min.
pub const PROGRAMMING_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192, 16.384, 32.768, 65.536, 131.072, 262.144, 524.288,
];

/// CoreDNS's request and forward duration buckets: 0.25 ms doubling up to ~8 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
    2.048, 4.096, 8.192,
];

/// CoreDNS's request/response size buckets, in bytes.
pub const SIZE_BUCKETS: &[f64] = &[
    0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0, 16e3, 32e3, 48e3, 64e3,
];

/// A snapshot of a histogram: cumulative bucket counts, sum and count.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    /// The sum of observations (seconds, or units for a units histogram).
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    /// A histogram of seconds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram::with_scale(bounds, 1e9)
    }

    /// A histogram of whole units (bytes).
    pub fn of_units(bounds: &'static [f64]) -> Self {
        Histogram::with_scale(bounds, 1.0)
    }

    fn with_scale(bounds: &'static [f64], scale: f64) -> Self {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_units: AtomicU64::new(0),
            scale,
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        let i = self
            .bounds
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_units
            .fetch_add((seconds * self.scale) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observes the time elapsed since `start` (zero if `start` is in the future).
    pub fn observe_since(&self, start: SystemTime) {
        let elapsed = SystemTime::now().duration_since(start).unwrap_or_default();
        self.observe(elapsed.as_secs_f64());
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .chain(std::iter::once(&f64::INFINITY))
            .zip(&self.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            sum_seconds: self.sum_units.load(Ordering::Relaxed) as f64 / self.scale,
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.1, 1), (1.0, 2), (f64::INFINITY, 3)]);
        assert_eq!(s.count, 3);
        assert!((s.sum_seconds - 5.55).abs() < 1e-6);
    }
}
