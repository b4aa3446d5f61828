//! The cache's time logic on a clock the test moves: no sleeps, and every boundary checked on
//! both sides. Replies are built as wire bytes and read by [`Reply::parse`], as upstream
//! replies are.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::dns::rtype;

/// A clock that stands still until the test moves it.
#[derive(Clone)]
struct TestClock {
    start: Instant,
    elapsed_ms: Arc<AtomicU64>,
}

impl TestClock {
    fn new() -> TestClock {
        TestClock {
            start: Instant::now(),
            elapsed_ms: Arc::default(),
        }
    }

    fn advance(&self, by: Duration) {
        self.elapsed_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    /// Moves the clock to `at` after the start (never backwards).
    fn set(&self, at: Duration) {
        let at = at.as_millis() as u64;
        assert!(
            at >= self.elapsed_ms.load(Ordering::Relaxed),
            "clock moved back"
        );
        self.elapsed_ms.store(at, Ordering::Relaxed);
    }

    fn clock(&self) -> Clock {
        let (start, elapsed) = (self.start, self.elapsed_ms.clone());
        Arc::new(move || start + Duration::from_millis(elapsed.load(Ordering::Relaxed)))
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Nothing clamped away, nothing prefetched, nothing served stale, SERVFAIL not cached.
fn config() -> CacheConfig {
    CacheConfig {
        capacity: 1000,
        min_ttl: 0,
        max_ttl: 86_400,
        negative_max_ttl: 86_400,
        servfail_ttl: 0,
        prefetch: 0,
        serve_stale: Duration::ZERO,
        negative_min_ttl: None,
        keep_ttl: false,
        zones: Vec::new(),
        disable_success: Vec::new(),
        disable_denial: Vec::new(),
    }
}

fn new_cache(config: CacheConfig) -> (Cache, TestClock) {
    let clock = TestClock::new();
    (Cache::with_clock(config, clock.clock()), clock)
}

fn key(name: &str) -> Key {
    name.as_bytes().into()
}

// --- replies as wire bytes ---

fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

fn record(name: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut out = wire_name(name);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // IN
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
    out
}

fn a(ttl: u32) -> Vec<u8> {
    record("q.example", rtype::A, ttl, &[192, 0, 2, 1])
}

/// An authority SOA with record TTL `ttl` and MINIMUM `minimum`.
fn soa(ttl: u32, minimum: u32) -> Vec<u8> {
    let mut rdata = wire_name("ns.example");
    rdata.extend(wire_name("hostmaster.example"));
    for field in [1u32, 7200, 1800, 86_400, minimum] {
        rdata.extend_from_slice(&field.to_be_bytes());
    }
    record("example", rtype::SOA, ttl, &rdata)
}

/// A reply to `q.example A` with these answer and authority records.
fn reply_with(rcode: u8, truncated: bool, answers: &[Vec<u8>], authority: &[Vec<u8>]) -> Reply {
    let mut m = vec![0xbe, 0xef];
    m.push(0x81 | if truncated { 0x02 } else { 0 }); // QR, RD (and TC)
    m.push(0x80 | rcode); // RA
    for count in [1, answers.len(), authority.len(), 0] {
        m.extend_from_slice(&(count as u16).to_be_bytes());
    }
    m.extend(wire_name("q.example"));
    m.extend_from_slice(&[0, 1, 0, 1]);
    for r in answers.iter().chain(authority) {
        m.extend_from_slice(r);
    }
    Reply::parse(&m).expect("the test's reply parses")
}

fn positive(ttl: u32) -> Reply {
    reply_with(rcode::NOERROR, false, &[a(ttl)], &[])
}

fn nxdomain(soa_ttl: u32, minimum: u32) -> Reply {
    reply_with(rcode::NXDOMAIN, false, &[], &[soa(soa_ttl, minimum)])
}

fn nodata(soa_ttl: u32, minimum: u32) -> Reply {
    reply_with(rcode::NOERROR, false, &[], &[soa(soa_ttl, minimum)])
}

fn servfail() -> Reply {
    reply_with(rcode::SERVFAIL, false, &[], &[])
}

// --- what a lookup found, in a form assert_eq! can show ---

#[derive(Debug, PartialEq, Eq)]
enum Found {
    Fresh { ttl: u32, prefetch: bool },
    Stale,
    Miss,
}

fn found(cache: &Cache, key: &Key) -> Found {
    match cache.lookup(key) {
        Lookup::Fresh { ttl, prefetch, .. } => Found::Fresh { ttl, prefetch },
        Lookup::Stale(_) => Found::Stale,
        Lookup::Miss => Found::Miss,
    }
}

fn fresh(ttl: u32) -> Found {
    Found::Fresh {
        ttl,
        prefetch: false,
    }
}

/// The TTL an inserted reply is cached for (`None`: not cached).
fn cached_ttl(config: CacheConfig, reply: Reply) -> Option<(ReplyClass, u32)> {
    let (cache, _) = new_cache(config);
    let entry = cache.insert(key("k"), reply).ok()?;
    let ttl = cache.remaining(&entry).expect("fresh when inserted");
    assert_eq!(found(&cache, &key("k")), fresh(ttl), "lookup agrees");
    Some((entry.class, ttl))
}

#[test]
fn the_ttl_counts_down_with_the_clock_and_the_entry_expires_at_exactly_its_ttl() {
    let (cache, clock) = new_cache(config());
    let k = key("www");
    assert_eq!(found(&cache, &k), Found::Miss);
    let entry = cache.insert(k.clone(), positive(60)).expect("cached");
    assert_eq!(cache.remaining(&entry), Some(60));
    assert_eq!(found(&cache, &k), fresh(60));

    clock.advance(secs(3));
    assert_eq!(found(&cache, &k), fresh(57));
    assert_eq!(cache.remaining(&entry), Some(57));
    // Whole seconds of age are taken off: 5.999 s old is 5 s old.
    clock.set(millis(5_999));
    assert_eq!(found(&cache, &k), fresh(55));
    clock.set(millis(59_999));
    assert_eq!(found(&cache, &k), fresh(1));
    assert_eq!(cache.remaining(&entry), Some(1));

    clock.set(secs(60));
    assert_eq!(cache.remaining(&entry), None);
    assert_eq!(found(&cache, &k), Found::Miss, "expired at exactly the TTL");

    // A re-fetched reply starts a new lifetime.
    let entry = cache.insert(k.clone(), positive(60)).expect("cached");
    assert_eq!(cache.remaining(&entry), Some(60));
    assert_eq!(found(&cache, &k), fresh(60));
}

#[test]
fn positive_ttls_are_the_smallest_record_ttl_clamped_to_min_and_max_ttl() {
    let clamped = CacheConfig {
        min_ttl: 10,
        max_ttl: 300,
        ..config()
    };
    let success = |ttl| Some((ReplyClass::Success, ttl));
    assert_eq!(cached_ttl(clamped.clone(), positive(2)), success(10));
    assert_eq!(cached_ttl(clamped.clone(), positive(10)), success(10));
    assert_eq!(cached_ttl(clamped.clone(), positive(100)), success(100));
    assert_eq!(cached_ttl(clamped.clone(), positive(300)), success(300));
    assert_eq!(cached_ttl(clamped.clone(), positive(3600)), success(300));
    let two = reply_with(rcode::NOERROR, false, &[a(200), a(50)], &[]);
    assert_eq!(cached_ttl(clamped, two), success(50), "the smallest TTL");
    // With min_ttl 0 a TTL-0 answer is passed on, not cached.
    assert_eq!(cached_ttl(config(), positive(0)), None);
}

#[test]
fn nxdomain_and_nodata_live_for_the_soa_negative_ttl_clamped_to_negative_max_ttl() {
    let negative = CacheConfig {
        negative_max_ttl: 100,
        ..config()
    };
    let denial = |ttl| Some((ReplyClass::Denial, ttl));
    // RFC 2308 §5: min(SOA TTL, SOA MINIMUM).
    assert_eq!(cached_ttl(negative.clone(), nxdomain(900, 60)), denial(60));
    assert_eq!(cached_ttl(negative.clone(), nxdomain(30, 60)), denial(30));
    assert_eq!(
        cached_ttl(negative.clone(), nxdomain(3600, 600)),
        denial(100)
    );
    assert_eq!(cached_ttl(negative.clone(), nodata(900, 45)), denial(45));
    assert_eq!(cached_ttl(negative.clone(), nodata(20, 45)), denial(20));
    assert_eq!(cached_ttl(negative, nodata(7200, 7200)), denial(100));
    // min_ttl raises a short negative TTL, but never above negative_max_ttl.
    let raised = CacheConfig {
        min_ttl: 10,
        negative_max_ttl: 100,
        ..config()
    };
    assert_eq!(cached_ttl(raised, nxdomain(900, 2)), denial(10));
    let capped = CacheConfig {
        min_ttl: 10,
        negative_max_ttl: 5,
        ..config()
    };
    assert_eq!(cached_ttl(capped, nxdomain(900, 60)), denial(5));

    // And a denial expires at its negative TTL.
    let (cache, clock) = new_cache(config());
    cache.insert(key("nx"), nxdomain(900, 60)).expect("cached");
    clock.set(millis(59_999));
    assert_eq!(found(&cache, &key("nx")), fresh(1));
    clock.set(secs(60));
    assert_eq!(found(&cache, &key("nx")), Found::Miss);
}

#[test]
fn a_negative_reply_without_an_soa_is_not_cached() {
    let (cache, _) = new_cache(config());
    let bare_nxdomain = reply_with(rcode::NXDOMAIN, false, &[], &[]);
    let bare_nodata = reply_with(rcode::NOERROR, false, &[], &[]);
    // An SOA in the answer section is no negative TTL either.
    let soa_as_answer = reply_with(rcode::NXDOMAIN, false, &[soa(900, 60)], &[]);
    for (name, reply) in [
        ("nxdomain", bare_nxdomain),
        ("nodata", bare_nodata),
        ("soa-answer", soa_as_answer),
    ] {
        assert!(cache.insert(key(name), reply).is_err(), "{name} cached");
        assert_eq!(found(&cache, &key(name)), Found::Miss, "{name}");
    }
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.metrics.entries_denial.load(Ordering::Relaxed), 0);
}

#[test]
fn an_upstream_servfail_is_cached_for_servfail_ttl_and_only_when_it_is_set() {
    assert!(new_cache(config()).0.insert(key("sf"), servfail()).is_err());

    let (cache, clock) = new_cache(CacheConfig {
        servfail_ttl: 30,
        min_ttl: 60,
        ..config()
    });
    let entry = cache.insert(key("sf"), servfail()).expect("cached");
    assert_eq!(entry.class, ReplyClass::ServFail);
    assert_eq!(
        cache.remaining(&entry),
        Some(30),
        "servfail_ttl, not min_ttl"
    );
    clock.set(millis(29_999));
    assert_eq!(found(&cache, &key("sf")), fresh(1));
    clock.set(secs(30));
    assert_eq!(found(&cache, &key("sf")), Found::Miss);
    // Other errors are never cached.
    let refused = reply_with(rcode::REFUSED, false, &[], &[]);
    assert!(cache.insert(key("refused"), refused).is_err());
}

#[test]
fn truncated_replies_are_not_cached() {
    let (cache, _) = new_cache(config());
    let tc_answer = reply_with(rcode::NOERROR, true, &[a(300)], &[]);
    let tc_denial = reply_with(rcode::NXDOMAIN, true, &[], &[soa(900, 60)]);
    assert!(cache.insert(key("a"), tc_answer).is_err());
    assert!(cache.insert(key("nx"), tc_denial).is_err());
    assert_eq!(found(&cache, &key("a")), Found::Miss);
    assert_eq!(found(&cache, &key("nx")), Found::Miss);
    // The same reply without TC is.
    assert!(cache.insert(key("a"), positive(300)).is_ok());
    assert_eq!(found(&cache, &key("a")), fresh(300));
}

#[test]
fn prefetch_comes_after_enough_hits_in_the_last_tenth_of_the_ttl_and_once_per_entry() {
    let (cache, clock) = new_cache(CacheConfig {
        prefetch: 3,
        ..config()
    });
    let k = key("hot");
    cache.insert(k.clone(), positive(100)).expect("cached");
    // Popular early: hits 1 and 2 now, hit 3 with 11 s (11%) left.
    assert_eq!(found(&cache, &k), fresh(100));
    assert_eq!(found(&cache, &k), fresh(100));
    clock.set(secs(89));
    assert_eq!(found(&cache, &k), fresh(11), "more than 10% left");
    clock.set(millis(89_999));
    assert_eq!(found(&cache, &k), fresh(11), "still just over 10% left");
    // 10 s (10%) left: the first lookup asks for a refresh, the next ones do not.
    clock.set(secs(90));
    let first = Found::Fresh {
        ttl: 10,
        prefetch: true,
    };
    assert_eq!(found(&cache, &k), first);
    assert_eq!(found(&cache, &k), fresh(10), "only once while refreshing");
    clock.set(secs(99));
    assert_eq!(found(&cache, &k), fresh(1), "only once while refreshing");

    // The refresh replaces the entry; the new one counts its own hits and refreshes again.
    cache.insert(k.clone(), positive(100)).expect("cached");
    assert_eq!(found(&cache, &k), fresh(100));
    clock.advance(secs(95));
    assert_eq!(found(&cache, &k), fresh(5));
    let third = Found::Fresh {
        ttl: 5,
        prefetch: true,
    };
    assert_eq!(found(&cache, &k), third, "the third hit of the new entry");
}

#[test]
fn prefetch_needs_the_configured_number_of_hits_and_only_for_answers() {
    let (cache, clock) = new_cache(CacheConfig {
        prefetch: 3,
        ..config()
    });
    cache.insert(key("late"), positive(100)).expect("cached");
    cache.insert(key("nx"), nxdomain(100, 100)).expect("cached");
    clock.set(secs(95));
    assert_eq!(found(&cache, &key("late")), fresh(5), "hit 1");
    assert_eq!(found(&cache, &key("late")), fresh(5), "hit 2");
    let due = Found::Fresh {
        ttl: 5,
        prefetch: true,
    };
    assert_eq!(found(&cache, &key("late")), due, "hit 3");
    for _ in 0..5 {
        assert_eq!(
            found(&cache, &key("nx")),
            fresh(5),
            "a denial is not prefetched"
        );
    }

    // prefetch = 0: never.
    let (cache, clock) = new_cache(config());
    cache.insert(key("late"), positive(100)).expect("cached");
    clock.set(secs(99));
    for _ in 0..10 {
        assert_eq!(found(&cache, &key("late")), fresh(1));
    }
    assert_eq!(cache.metrics.hits_success.load(Ordering::Relaxed), 10);
}

#[test]
fn an_expired_entry_is_stale_within_the_serve_stale_window_and_a_miss_beyond() {
    let (cache, clock) = new_cache(CacheConfig {
        serve_stale: secs(60),
        ..config()
    });
    let k = key("old");
    let stored = cache.insert(k.clone(), positive(30)).expect("cached");
    clock.set(millis(29_999));
    assert_eq!(found(&cache, &k), fresh(1));
    clock.set(secs(30));
    match cache.lookup(&k) {
        Lookup::Stale(entry) => assert!(Arc::ptr_eq(&entry, &stored), "the stored entry"),
        _ => panic!("expected Stale at the TTL"),
    }
    assert_eq!(cache.remaining(&stored), None, "stale is not fresh");
    clock.set(millis(89_999));
    assert_eq!(found(&cache, &k), Found::Stale, "TTL + window - 1 ms");
    clock.set(secs(90));
    assert_eq!(found(&cache, &k), Found::Miss, "TTL + window");
    clock.advance(secs(3600));
    assert_eq!(found(&cache, &k), Found::Miss);

    // serve_stale = 0: expired is a miss at once.
    let (cache, clock) = new_cache(config());
    cache.insert(k.clone(), positive(30)).expect("cached");
    clock.set(secs(30));
    assert_eq!(found(&cache, &k), Found::Miss);
}

#[test]
fn metrics_count_hits_misses_and_entries_by_class() {
    let (cache, clock) = new_cache(CacheConfig {
        servfail_ttl: 30,
        serve_stale: secs(60),
        ..config()
    });
    let m = cache.metrics.clone();
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let entries = || {
        cache.len();
        (
            m.entries_success.load(Ordering::Relaxed),
            m.entries_denial.load(Ordering::Relaxed),
        )
    };

    assert_eq!(found(&cache, &key("a")), Found::Miss);
    assert_eq!((load(&m.misses), load(&m.hits_success)), (1, 0));
    cache.insert(key("a"), positive(60)).expect("cached");
    cache.insert(key("b"), positive(60)).expect("cached");
    cache.insert(key("nx"), nxdomain(60, 60)).expect("cached");
    cache.insert(key("sf"), servfail()).expect("cached");
    assert!(
        cache
            .insert(key("tc"), reply_with(rcode::NOERROR, true, &[a(60)], &[]))
            .is_err()
    );
    assert_eq!(entries(), (2, 2), "SERVFAIL counts as a denial");
    assert_eq!(cache.len(), 4);

    found(&cache, &key("a"));
    found(&cache, &key("a"));
    found(&cache, &key("b"));
    found(&cache, &key("nx"));
    found(&cache, &key("sf"));
    assert_eq!(load(&m.hits_success), 3);
    assert_eq!(load(&m.hits_denial), 2);
    assert_eq!(load(&m.misses), 1);

    // Replacing an entry does not count it twice.
    cache.insert(key("a"), positive(60)).expect("cached");
    assert_eq!(entries(), (2, 2));

    // A stale lookup is a miss, not a hit.
    clock.set(secs(60));
    assert_eq!(found(&cache, &key("b")), Found::Stale);
    assert_eq!((load(&m.misses), load(&m.hits_success)), (2, 3));

    cache.served_stale();
    cache.prefetched();
    cache.prefetched();
    assert_eq!((load(&m.served_stale), load(&m.prefetch)), (1, 2));
}

#[test]
fn capacity_bounds_bytes_so_large_answers_count_for_their_size() {
    let (cache, _clock) = new_cache(CacheConfig {
        capacity: 40,
        ..config()
    });
    // Answers of about 4 kB (250 A records) weigh 9 units each: 40 units hold four of them.
    let big: Vec<Vec<u8>> = (0..250).map(|_| a(300)).collect();
    let big = reply_with(rcode::NOERROR, false, &big, &[]);
    assert!(big.size() > 8 * UNIT_BYTES, "{} bytes", big.size());
    for i in 0..50 {
        cache
            .insert(key(&format!("big{i}.example")), big.clone())
            .unwrap();
    }
    let held = cache.len();
    assert!((1..=4).contains(&held), "{held} large entries held");
    // Small answers weigh one unit each: forty of them fit.
    let (cache, _clock) = new_cache(CacheConfig {
        capacity: 40,
        ..config()
    });
    for i in 0..40 {
        cache
            .insert(key(&format!("s{i}.example")), positive(300))
            .unwrap();
    }
    assert!(cache.len() >= 36, "{} small entries held", cache.len());
}

/// A cache key as the server builds it: wire name, type A, class IN, flags.
fn wire_key(name: &str) -> Key {
    let mut k = wire_name(name);
    k.extend_from_slice(&[0, 1, 0, 1, 0]);
    k.into()
}

#[test]
fn keepttl_serves_the_stored_ttl_until_the_entry_expires() {
    let (cache, clock) = new_cache(CacheConfig {
        keep_ttl: true,
        ..config()
    });
    let k = key("www");
    let entry = cache.insert(k.clone(), positive(60)).expect("cached");
    clock.set(secs(59));
    assert_eq!(found(&cache, &k), fresh(60), "not counted down");
    assert_eq!(cache.remaining(&entry), Some(60));
    clock.set(secs(60));
    assert_eq!(found(&cache, &k), Found::Miss, "still expires at its TTL");
}

#[test]
fn disabled_zones_and_the_cached_zones_decide_what_is_stored() {
    let (cache, _) = new_cache(CacheConfig {
        zones: vec!["example.org".into(), "example.net".into()],
        disable_success: vec!["no.example.org".into()],
        disable_denial: vec!["example.net".into()],
        ..config()
    });
    let stored = |name: &str, reply: Reply| cache.insert(wire_key(name), reply).is_ok();
    assert!(stored("a.example.org", positive(60)));
    assert!(
        stored("a.no.example.org", nxdomain(60, 60)),
        "denial still cached"
    );
    assert!(
        !stored("a.no.example.org", positive(60)),
        "success disabled"
    );
    assert!(!stored("NO.example.org", positive(60)), "case-insensitive");
    assert!(stored("a.example.net", positive(60)));
    assert!(
        !stored("a.example.net", nxdomain(60, 60)),
        "denial disabled"
    );
    assert!(
        !stored("example.com", positive(60)),
        "outside the cached zones"
    );
    assert!(!stored("xexample.org", positive(60)), "a label boundary");
}

#[test]
fn denial_has_its_own_minimum_ttl() {
    let separate = CacheConfig {
        min_ttl: 30,
        negative_min_ttl: Some(2),
        ..config()
    };
    assert_eq!(
        cached_ttl(separate.clone(), nxdomain(1, 1)),
        Some((ReplyClass::Denial, 2))
    );
    assert_eq!(
        cached_ttl(separate, positive(1)),
        Some((ReplyClass::Success, 30))
    );
    let shared = CacheConfig {
        min_ttl: 30,
        ..config()
    };
    assert_eq!(
        cached_ttl(shared, nxdomain(1, 1)),
        Some((ReplyClass::Denial, 30))
    );
}
