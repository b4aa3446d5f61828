//! The response cache for forwarded answers (never the cluster zone's: the index already is
//! one). Entries are upstream replies as bytes; a hit patches ID, flags and TTLs into a copy.
//!
//! TTLs follow CoreDNS's `cache`: a positive entry lives for its smallest record TTL clamped
//! to `[min_ttl, max_ttl]`, a negative one (NXDOMAIN, NODATA) for min(SOA TTL, SOA MINIMUM)
//! (RFC 2308 §5) clamped to `negative_max_ttl`, an upstream SERVFAIL for `servfail_ttl`.
//! Every record is served with the entry's remaining TTL.
//!
//! Time comes from the cache's [`Clock`] (the real one from [`Cache::new`], a test's from
//! [`Cache::with_clock`]): every freshness decision (remaining TTL, the stale window, prefetch)
//! reads it, so callers never read the time themselves ([`Cache::remaining`]). moka keeps its
//! own clock, which cannot be replaced: its expiry (TTL plus the stale window) only bounds how
//! long an entry holds memory; it never decides what a lookup returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;

use crate::config::CacheConfig;
use crate::dns::rcode;
use crate::forward::reply::Reply;

/// The TTL of an answer served stale (RFC 8767 §4 suggests 30 seconds).
pub const STALE_TTL: u32 = 30;
/// A popular entry is refreshed when less than this share of its TTL is left.
const PREFETCH_REMAINING_PERCENT: u32 = 10;

/// The cache key: lower-cased wire name, type, class, DO and CD bits.
pub type Key = Box<[u8]>;

/// Where the cache reads the time: [`Instant::now`] in the server, a clock the test moves in
/// tests.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// What a cached upstream reply says, which decides its lifetime and its metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyClass {
    /// NOERROR with answers.
    Success,
    /// NXDOMAIN, or NOERROR without answers (NODATA), with an SOA.
    Denial,
    /// An upstream SERVFAIL (cached for `servfail_ttl`).
    ServFail,
}

impl ReplyClass {
    /// The `type` label CoreDNS's cache metrics use.
    pub fn label(self) -> &'static str {
        match self {
            ReplyClass::Success => "success",
            ReplyClass::Denial | ReplyClass::ServFail => "denial",
        }
    }
}

#[derive(Debug)]
pub struct Entry {
    pub reply: Reply,
    pub class: ReplyClass,
    stored: Instant,
    /// Seconds the entry is fresh.
    ttl: u32,
    hits: AtomicU32,
    /// Set while a prefetch for this entry is under way.
    refreshing: AtomicBool,
}

impl Entry {
    /// Seconds of freshness left at `now` (whole seconds of age are taken off), or `None`
    /// once expired (see [`Cache::remaining`], which reads the cache's clock).
    fn remaining(&self, now: Instant) -> Option<u32> {
        let age = now.saturating_duration_since(self.stored).as_secs();
        u64::from(self.ttl)
            .checked_sub(age)
            .filter(|r| *r > 0)
            .map(|r| r as u32)
    }

    /// How long the entry is fresh.
    fn lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.ttl))
    }
}

/// What a lookup found.
pub enum Lookup {
    Fresh {
        entry: Arc<Entry>,
        ttl: u32,
        /// The entry is popular and nearly expired: the caller should refresh it now.
        prefetch: bool,
    },
    /// Expired but within `serve_stale`: usable if upstreams fail.
    Stale(Arc<Entry>),
    Miss,
}

/// Counters exported as CoreDNS's `coredns_cache_*`.
#[derive(Debug, Default)]
pub struct CacheMetrics {
    pub hits_success: AtomicU64,
    pub hits_denial: AtomicU64,
    pub misses: AtomicU64,
    pub prefetch: AtomicU64,
    pub served_stale: AtomicU64,
    pub entries_success: AtomicI64,
    pub entries_denial: AtomicI64,
}

pub struct Cache {
    /// Hashed with foldhash (seeded per process): moka rehashes every key when it sweeps the
    /// removed entries of a churning cache, and SipHash made that a fifth of a miss's cost.
    entries: moka::sync::Cache<Key, Arc<Entry>, foldhash::quality::RandomState>,
    config: CacheConfig,
    clock: Clock,
    pub metrics: Arc<CacheMetrics>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("entries", &self.entries.entry_count())
            .field("config", &self.config)
            .finish()
    }
}

/// Entries stay in moka until their TTL plus the stale window has passed (by moka's clock: a
/// bound on memory only; [`Cache::lookup`] decides freshness by the cache's clock).
struct EntryExpiry {
    stale: Duration,
}

impl moka::Expiry<Key, Arc<Entry>> for EntryExpiry {
    fn expire_after_create(&self, _: &Key, entry: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(u64::from(entry.ttl)) + self.stale)
    }

    // A refreshed entry (prefetch, re-fetch after expiry) starts a new lifetime; moka's default
    // would keep the old entry's expiry.
    fn expire_after_update(
        &self,
        _: &Key,
        entry: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(Duration::from_secs(u64::from(entry.ttl)) + self.stale)
    }
}

impl Cache {
    /// A cache on the real clock.
    pub fn new(config: CacheConfig) -> Cache {
        Cache::with_clock(config, Arc::new(Instant::now))
    }

    /// A cache that reads the time from `clock` (tests move it by hand).
    pub fn with_clock(config: CacheConfig, clock: Clock) -> Cache {
        let metrics = Arc::new(CacheMetrics::default());
        let counters = metrics.clone();
        let entries = moka::sync::Cache::builder()
            .max_capacity(config.capacity)
            .weigher(|key: &Key, entry: &Arc<Entry>| weight(key, entry))
            .expire_after(EntryExpiry {
                stale: config.serve_stale,
            })
            .eviction_listener(move |_key, entry: Arc<Entry>, _cause: RemovalCause| {
                entry_counter(&counters, entry.class).fetch_sub(1, Ordering::Relaxed);
            })
            .build_with_hasher(foldhash::quality::RandomState::default());
        Cache {
            entries,
            config,
            clock,
            metrics,
        }
    }

    /// Seconds of freshness `entry` has left now (by the cache's clock), or `None` once
    /// expired: the TTL to serve an entry with that the caller holds (as [`Cache::insert`]
    /// returns it).
    pub fn remaining(&self, entry: &Entry) -> Option<u32> {
        let left = entry.remaining((self.clock)())?;
        Some(self.served_ttl(entry, left))
    }

    pub fn lookup(&self, key: &Key) -> Lookup {
        let Some(entry) = self.entries.get(key) else {
            self.metrics.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss;
        };
        let now = (self.clock)();
        let age = now.saturating_duration_since(entry.stored);
        let lifetime = entry.lifetime();
        match entry.remaining(now) {
            Some(ttl) => {
                let hits = entry.hits.fetch_add(1, Ordering::Relaxed) + 1;
                let counter = match entry.class {
                    ReplyClass::Success => &self.metrics.hits_success,
                    ReplyClass::Denial | ReplyClass::ServFail => &self.metrics.hits_denial,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let left = lifetime.saturating_sub(age);
                let prefetch = self.config.prefetch > 0
                    && hits >= self.config.prefetch
                    && entry.class == ReplyClass::Success
                    && left.as_millis() * 100
                        <= lifetime.as_millis() * u128::from(PREFETCH_REMAINING_PERCENT)
                    && !entry.refreshing.swap(true, Ordering::Relaxed);
                Lookup::Fresh {
                    ttl: self.served_ttl(&entry, ttl),
                    entry,
                    prefetch,
                }
            }
            None => {
                self.metrics.misses.fetch_add(1, Ordering::Relaxed);
                // moka may still hold an entry past the window (its clock is not ours).
                if age < lifetime + self.config.serve_stale {
                    Lookup::Stale(entry)
                } else {
                    Lookup::Miss
                }
            }
        }
    }

    /// Stores a reply if it is cacheable and returns the entry (for serving it at once). A
    /// reply that is not stored is handed back with the TTL to serve it with: the capped one
    /// for a name in the cache's zones (CoreDNS caps every reply through `cache`, stored or
    /// not), `None` (as the upstream sent it) outside them.
    pub fn insert(&self, key: Key, reply: Reply) -> Result<Arc<Entry>, (Reply, Option<u32>)> {
        let in_zones = self.config.zones.is_empty() || self.under(&key, &self.config.zones);
        let lifetime = self.lifetime(&reply).filter(|_| in_zones);
        let Some((class, ttl)) = lifetime else {
            return Err((reply, None));
        };
        if ttl == 0 || reply.truncated() || !self.caches(&key, class) {
            return Err((reply, Some(ttl)));
        }
        let entry = Arc::new(Entry {
            reply,
            class,
            stored: (self.clock)(),
            ttl,
            hits: AtomicU32::new(0),
            refreshing: AtomicBool::new(false),
        });
        entry_counter(&self.metrics, class).fetch_add(1, Ordering::Relaxed);
        self.entries.insert(key, entry.clone());
        Ok(entry)
    }

    /// The TTL a hit is served with: the time left, or with `keepttl` the stored TTL.
    fn served_ttl(&self, entry: &Entry, left: u32) -> u32 {
        if self.config.keep_ttl {
            entry.ttl
        } else {
            left
        }
    }

    /// Whether a reply of `class` for the key's name may be stored: not under a zone its
    /// class is disabled for.
    fn caches(&self, key: &Key, class: ReplyClass) -> bool {
        let disabled = match class {
            ReplyClass::Success => &self.config.disable_success,
            ReplyClass::Denial => &self.config.disable_denial,
            ReplyClass::ServFail => return true,
        };
        disabled.is_empty() || !self.under(key, disabled)
    }

    /// Is the key's name in one of `zones`?
    fn under(&self, key: &Key, zones: &[String]) -> bool {
        let mut name = String::new();
        crate::dns::name::lower_dotted(key, 0, &mut name);
        zones.iter().any(|z| crate::zone::lookup::in_zone(&name, z))
    }

    /// Counts a stale answer served.
    pub fn served_stale(&self) {
        self.metrics.served_stale.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a prefetch started.
    pub fn prefetched(&self) {
        self.metrics.prefetch.fetch_add(1, Ordering::Relaxed);
    }

    /// Entries held now (approximate: moka applies writes in batches).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What class of entry a reply makes and for how long, or `None` if it is not cached.
    fn lifetime(&self, reply: &Reply) -> Option<(ReplyClass, u32)> {
        let c = &self.config;
        match reply.rcode {
            rcode::NOERROR if reply.answer_count > 0 => {
                let ttl = reply.min_ttl?.clamp(c.min_ttl, c.max_ttl);
                Some((ReplyClass::Success, ttl))
            }
            rcode::NOERROR | rcode::NXDOMAIN => {
                // RFC 2308 §5: without an SOA there is no negative TTL: not cached.
                let min = c.negative_min_ttl.unwrap_or(c.min_ttl);
                let ttl = reply
                    .negative_ttl?
                    .clamp(min.min(c.negative_max_ttl), c.negative_max_ttl);
                Some((ReplyClass::Denial, ttl))
            }
            rcode::SERVFAIL if c.servfail_ttl > 0 => Some((ReplyClass::ServFail, c.servfail_ttl)),
            _ => None,
        }
    }
}

/// What one unit of `capacity` holds: an entry of up to this many bytes (answer, key and
/// bookkeeping) counts one; a larger one counts one per this many bytes started, so the cache
/// holds at most `capacity` × 512 bytes whatever the answers' sizes.
pub const UNIT_BYTES: usize = 512;
/// The bookkeeping of an entry besides its answer and key: the entry, its `Arc` and moka's
/// node, roughly.
const ENTRY_OVERHEAD: usize = 160;

fn weight(key: &Key, entry: &Entry) -> u32 {
    let bytes = key.len() + entry.reply.size() + ENTRY_OVERHEAD;
    u32::try_from(bytes.div_ceil(UNIT_BYTES)).unwrap_or(u32::MAX)
}

fn entry_counter(metrics: &CacheMetrics, class: ReplyClass) -> &AtomicI64 {
    match class {
        ReplyClass::Success => &metrics.entries_success,
        ReplyClass::Denial | ReplyClass::ServFail => &metrics.entries_denial,
    }
}

#[cfg(test)]
mod tests;
