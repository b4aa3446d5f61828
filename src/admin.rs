//! The admin HTTP endpoints, as CoreDNS's `health`, `ready` and `prometheus` plugins serve them:
//! `GET /health` (200 while the process serves), `GET /ready` (200 once every source synced and
//! every listener is bound, else 503 with the reason), `GET /metrics` (Prometheus text).
//!
//! A deliberately small HTTP/1.1 server: one request per connection, GET/HEAD only, bounded
//! request size and time. Probes and scrapers need nothing more.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cache::CacheMetrics;
use crate::forward::Forwarder;
use crate::metrics::dns::DnsMetrics;
use crate::metrics::exposition::Page;
use crate::metrics::{Histogram, process};
use crate::zone::Index;

/// Longest request head read.
const MAX_REQUEST: usize = 8192;
/// A client that has not sent its request head by then is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What `/ready` reports on.
#[derive(Debug, Default)]
pub struct Readiness {
    listeners_bound: AtomicBool,
    shutting_down: AtomicBool,
    /// The cluster zones' indexes of the running config.
    zones: Mutex<Vec<Arc<Index>>>,
}

impl Readiness {
    pub fn set_listeners_bound(&self) {
        self.listeners_bound.store(true, Ordering::Relaxed);
    }

    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    pub fn set_zones(&self, zones: Vec<Arc<Index>>) {
        *self.zones.lock().unwrap_or_else(|p| p.into_inner()) = zones;
    }

    /// `Ok` when ready, else why not.
    pub fn check(&self) -> Result<(), String> {
        if self.shutting_down.load(Ordering::Relaxed) {
            return Err("shutting down".into());
        }
        let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        let waiting = zones.iter().filter(|i| !i.is_synced()).count();
        if waiting > 0 {
            return Err(format!(
                "{waiting} cluster source(s) not synced with the Kubernetes API yet"
            ));
        }
        if !self.listeners_bound.load(Ordering::Relaxed) {
            return Err("listeners not bound yet".into());
        }
        Ok(())
    }
}

/// A block's cache and forwarder as the metrics page shows them.
#[derive(Debug, Clone)]
pub struct ResolverMetrics {
    /// `dns://addr` of the block's first listener.
    pub server: String,
    /// The block's zones, as CoreDNS's `zones` label (`.` / `corp.example.`), space-separated.
    pub zones: String,
    pub cache: Option<Arc<CacheMetrics>>,
    pub forwarder: Arc<Forwarder>,
}

/// Everything `/metrics` exports. Updated on (re)configuration; read only when scraped.
#[derive(Debug)]
pub struct Registry {
    start_time: f64,
    pub programming: Arc<Histogram>,
    pub reload_failed: AtomicU64,
    listeners: Mutex<Vec<Arc<DnsMetrics>>>,
    resolvers: Mutex<Vec<ResolverMetrics>>,
}

impl Registry {
    pub fn new(programming: Arc<Histogram>) -> Registry {
        Registry {
            start_time: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            programming,
            reload_failed: AtomicU64::new(0),
            listeners: Mutex::default(),
            resolvers: Mutex::default(),
        }
    }

    pub fn set(&self, listeners: Vec<Arc<DnsMetrics>>, resolvers: Vec<ResolverMetrics>) {
        *self.listeners.lock().unwrap_or_else(|p| p.into_inner()) = listeners;
        *self.resolvers.lock().unwrap_or_else(|p| p.into_inner()) = resolvers;
    }

    /// The whole `/metrics` page.
    pub fn render(&self) -> String {
        let mut page = Page::default();
        page.family(
            "coredns_build_info",
            "gauge",
            "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
        );
        page.sample(
            "coredns_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", env!("CLUSTERDNS_GIT_COMMIT")),
                ("goversion", "rust"),
            ],
            1.0,
        );
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for family in DnsMetrics::FAMILIES {
            DnsMetrics::write_headers(&mut page, family);
            for l in &listeners {
                l.write(&mut page, family);
            }
        }
        let resolvers = self
            .resolvers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        write_cache(&mut page, &resolvers);
        write_forward(&mut page, &resolvers);

        page.family(
            "coredns_kubernetes_dns_programming_duration_seconds",
            "histogram",
            "Histogram of the time (in seconds) it took to program a dns instance.",
        );
        page.histogram(
            "coredns_kubernetes_dns_programming_duration_seconds",
            &[("service_kind", "headless_with_selector")],
            &self.programming.snapshot(),
        );
        page.family(
            "coredns_panics_total",
            "counter",
            "A metrics that counts the number of panics.",
        );
        page.sample(
            "coredns_panics_total",
            &[],
            crate::server::PANICS.load(Ordering::Relaxed) as f64,
        );
        page.family(
            "coredns_reload_failed_total",
            "counter",
            "Counter of the number of failed reload attempts.",
        );
        page.sample(
            "coredns_reload_failed_total",
            &[],
            self.reload_failed.load(Ordering::Relaxed) as f64,
        );
        process::write(&mut page, self.start_time);
        page.finish()
    }
}

fn write_cache(page: &mut Page, resolvers: &[ResolverMetrics]) {
    let caches: Vec<(&ResolverMetrics, &Arc<CacheMetrics>)> = resolvers
        .iter()
        .filter_map(|r| r.cache.as_ref().map(|c| (r, c)))
        .collect();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    page.family(
        "coredns_cache_entries",
        "gauge",
        "The number of elements in the cache.",
    );
    for (r, c) in &caches {
        for (kind, n) in [
            ("success", &c.entries_success),
            ("denial", &c.entries_denial),
        ] {
            let labels = [
                ("server", r.server.as_str()),
                ("type", kind),
                ("zones", r.zones.as_str()),
                ("view", ""),
            ];
            page.sample(
                "coredns_cache_entries",
                &labels,
                n.load(Ordering::Relaxed).max(0) as f64,
            );
        }
    }
    page.family(
        "coredns_cache_hits_total",
        "counter",
        "The count of cache hits.",
    );
    for (r, c) in &caches {
        for (kind, n) in [("success", &c.hits_success), ("denial", &c.hits_denial)] {
            let labels = [
                ("server", r.server.as_str()),
                ("type", kind),
                ("zones", r.zones.as_str()),
                ("view", ""),
            ];
            page.sample("coredns_cache_hits_total", &labels, load(n));
        }
    }
    for (name, help, pick) in [
        (
            "coredns_cache_misses_total",
            "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
            (|c: &CacheMetrics| &c.misses) as fn(&CacheMetrics) -> &AtomicU64,
        ),
        (
            "coredns_cache_prefetch_total",
            "The number of times the cache has prefetched a cached item.",
            |c: &CacheMetrics| &c.prefetch,
        ),
        (
            "coredns_cache_served_stale_total",
            "The number of requests served from stale cache entries.",
            |c: &CacheMetrics| &c.served_stale,
        ),
    ] {
        page.family(name, "counter", help);
        for (r, c) in &caches {
            let labels = [
                ("server", r.server.as_str()),
                ("zones", r.zones.as_str()),
                ("view", ""),
            ];
            page.sample(name, &labels, load(pick(c)));
        }
    }
}

/// Forward metrics are labelled by upstream only (as CoreDNS's), so blocks sharing an upstream
/// are summed into one series.
fn write_forward(page: &mut Page, resolvers: &[ResolverMetrics]) {
    #[derive(Default)]
    struct Totals {
        requests: u64,
        responses: [u64; 16],
        healthcheck_failures: u64,
        durations: Vec<crate::metrics::HistogramSnapshot>,
    }
    let mut by_upstream: BTreeMap<String, Totals> = BTreeMap::new();
    let mut rejects = 0;
    let mut seen: Vec<*const Forwarder> = Vec::new();
    for r in resolvers {
        let ptr = Arc::as_ptr(&r.forwarder);
        if seen.contains(&ptr) {
            continue;
        }
        seen.push(ptr);
        rejects += r.forwarder.max_concurrent_rejects.load(Ordering::Relaxed);
        for u in &r.forwarder.upstreams {
            let t = by_upstream.entry(u.addr.to_string()).or_default();
            t.requests += u.metrics.requests.load(Ordering::Relaxed);
            for (i, n) in u.metrics.responses.iter().enumerate() {
                t.responses[i] += n.load(Ordering::Relaxed);
            }
            t.healthcheck_failures += u.metrics.healthcheck_failures.load(Ordering::Relaxed);
            t.durations.push(u.metrics.duration.snapshot());
        }
    }
    page.family(
        "coredns_forward_requests_total",
        "counter",
        "Counter of requests made per upstream.",
    );
    for (to, t) in &by_upstream {
        page.sample(
            "coredns_forward_requests_total",
            &[("to", to)],
            t.requests as f64,
        );
    }
    page.family(
        "coredns_forward_responses_total",
        "counter",
        "Counter of responses received per upstream.",
    );
    for (to, t) in &by_upstream {
        for (rcode, n) in t.responses.iter().enumerate() {
            if *n > 0 {
                let name = crate::metrics::dns::rcode_name(rcode as u16);
                page.sample(
                    "coredns_forward_responses_total",
                    &[("rcode", name), ("to", to)],
                    *n as f64,
                );
            }
        }
    }
    page.family(
        "coredns_forward_request_duration_seconds",
        "histogram",
        "Histogram of the time each request took.",
    );
    for (to, t) in &by_upstream {
        let mut merged = t.durations[0].clone();
        for d in &t.durations[1..] {
            for (b, (_, n)) in merged.buckets.iter_mut().zip(&d.buckets) {
                b.1 += n;
            }
            merged.sum_seconds += d.sum_seconds;
            merged.count += d.count;
        }
        page.histogram(
            "coredns_forward_request_duration_seconds",
            &[("to", to)],
            &merged,
        );
    }
    page.family(
        "coredns_forward_healthcheck_failures_total",
        "counter",
        "Counter of the number of failed healthchecks.",
    );
    for (to, t) in &by_upstream {
        page.sample(
            "coredns_forward_healthcheck_failures_total",
            &[("to", to)],
            t.healthcheck_failures as f64,
        );
    }
    page.family(
        "coredns_forward_max_concurrent_rejects_total",
        "counter",
        "Counter of the number of queries rejected because the concurrent queries were at maximum.",
    );
    page.sample(
        "coredns_forward_max_concurrent_rejects_total",
        &[],
        rejects as f64,
    );
}

/// Which endpoints one admin address serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routes {
    pub health: bool,
    pub ready: bool,
    pub metrics: bool,
}

impl Routes {
    /// `/health /ready`, for the startup line.
    pub fn describe(&self) -> String {
        [
            (self.health, "/health"),
            (self.ready, "/ready"),
            (self.metrics, "/metrics"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, p)| *p)
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// Binds every admin address (sharing one listener when two endpoints share an address).
pub async fn bind(
    addrs: &[(SocketAddr, Routes)],
) -> Result<Vec<(TcpListener, Routes)>, std::io::Error> {
    let mut out = Vec::new();
    for (addr, routes) in addrs {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot bind admin address {addr}: {e}"))
        })?;
        out.push((listener, *routes));
    }
    Ok(out)
}

/// Serves one admin listener forever.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    readiness: Arc<Readiness>,
    registry: Arc<Registry>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (readiness, registry) = (readiness.clone(), registry.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                REQUEST_TIMEOUT,
                answer(stream, routes, &readiness, &registry),
            )
            .await;
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    routes: Routes,
    readiness: &Readiness,
    registry: &Registry,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = if method != "GET" && method != "HEAD" {
        (405, "text/plain", "method not allowed\n".to_owned())
    } else {
        match path {
            "/health" if routes.health => (200, "text/plain", "OK".to_owned()),
            "/ready" if routes.ready => match readiness.check() {
                Ok(()) => (200, "text/plain", "OK".to_owned()),
                Err(why) => (503, "text/plain", format!("{why}\n")),
            },
            "/metrics" if routes.metrics => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                registry.render(),
            ),
            _ => (404, "text/plain", "404 page not found\n".to_owned()),
        }
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&response).await?;
    stream.shutdown().await
}
