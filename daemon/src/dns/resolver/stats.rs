//! The resolver's counters (monotonic, lock-free) and the snapshot the API,
//! `/metrics` and `dns-serve --stats` read.

use std::sync::atomic::{Ordering, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

use super::Resolver;

/// A monotonic counter: 64-bit where the CPU has 64-bit atomics, 32-bit
/// (wrapping) on 32-bit MIPS, which has none.
#[derive(Debug, Default)]
pub struct Counter(
    #[cfg(target_has_atomic = "64")] std::sync::atomic::AtomicU64,
    #[cfg(not(target_has_atomic = "64"))] std::sync::atomic::AtomicU32,
);

impl Counter {
    #[cfg(target_has_atomic = "64")]
    pub fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
        self.0.fetch_add(v, order)
    }
    #[cfg(target_has_atomic = "64")]
    pub fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
    #[cfg(not(target_has_atomic = "64"))]
    pub fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
        u64::from(self.0.fetch_add(v as u32, order))
    }
    #[cfg(not(target_has_atomic = "64"))]
    pub fn load(&self, order: Ordering) -> u64 {
        u64::from(self.0.load(order))
    }
}

/// Counters (monotonic) for the API and the tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub queries: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub malformed: Counter,
    pub servfail: Counter,
    pub upstream_failures: Counter,
    pub blocked: Counter,
    /// Answers asked again another way because their CNAME chain matched a
    /// rule whose traffic leaves elsewhere.
    pub rerouted: Counter,
    pub set_elements: Counter,
    pub set_errors: Counter,
    pub set_skipped: Counter,
    /// Queries dropped because their client was over its rate.
    pub rate_limited: Counter,
    /// Queries from senders that get no answers (not clients, not on a
    /// `dns_listen` network): answered REFUSED, or dropped over `REFUSED_RATE`.
    pub refused: Counter,
    /// TCP connections closed at once because `TCP_MAX_CONNECTIONS` were open.
    pub tcp_rejected: Counter,
    /// Cache entries dropped by config changes (routes whose resolvers changed).
    pub cache_invalidated: Counter,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub queries: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub malformed: u64,
    pub servfail: u64,
    pub upstream_failures: u64,
    pub blocked: u64,
    pub rerouted: u64,
    pub set_elements: u64,
    pub set_errors: u64,
    pub set_skipped: u64,
    pub rate_limited: u64,
    pub refused: u64,
    pub tcp_rejected: u64,
    pub cache_invalidated: u64,
    /// Sources with a rate-limit bucket now (at most `limit::SOURCES`).
    pub rate_sources: usize,
    /// Forwards answered SERVFAIL at once: their route's in-flight table was full.
    pub forwards_over_cap: u64,
    pub cache_entries: usize,
    pub cache_bytes: usize,
    /// Answer received → elements in the kernel, µs (over the last samples).
    pub insert_p50_us: u64,
    pub insert_p99_us: u64,
    pub insert_samples: usize,
}

impl Resolver {
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        let (entries, bytes) = {
            let c = self.cache.lock().unwrap();
            (c.len(), c.bytes())
        };
        let mut lat = self.latencies.lock().unwrap().clone();
        lat.sort_unstable();
        let pct = |p: usize| {
            lat.get((lat.len() * p / 100).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0) as u64
        };
        StatsSnapshot {
            queries: s.queries.load(Relaxed),
            cache_hits: s.cache_hits.load(Relaxed),
            cache_misses: s.cache_misses.load(Relaxed),
            malformed: s.malformed.load(Relaxed),
            servfail: s.servfail.load(Relaxed),
            upstream_failures: s.upstream_failures.load(Relaxed),
            blocked: s.blocked.load(Relaxed),
            rerouted: s.rerouted.load(Relaxed),
            set_elements: s.set_elements.load(Relaxed),
            set_errors: s.set_errors.load(Relaxed),
            set_skipped: s.set_skipped.load(Relaxed),
            rate_limited: s.rate_limited.load(Relaxed),
            refused: s.refused.load(Relaxed),
            tcp_rejected: s.tcp_rejected.load(Relaxed),
            cache_invalidated: s.cache_invalidated.load(Relaxed),
            rate_sources: self.limiter.lock().unwrap().len(),
            forwards_over_cap: self.over_cap.load(Relaxed) as u64,
            cache_entries: entries,
            cache_bytes: bytes,
            insert_p50_us: pct(50),
            insert_p99_us: pct(99),
            insert_samples: lat.len(),
        }
    }
}
