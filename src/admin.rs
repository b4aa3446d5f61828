//! The admin HTTP endpoints, as CoreDNS's `health`, `ready` and `prometheus` plugins serve them:
//! `GET /health` (200 while the process serves), `GET /ready` (200 once every source synced and
//! every listener is bound, else 503 with the reason), `GET /metrics` (Prometheus text).
//!
//! Served by hyper's HTTP/1.1 server, deliberately kept small: one request per connection,
//! GET/HEAD only (else 405), bounded request head size (431 past it) and time. Probes and
//! scrapers need nothing more.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::cache::CacheMetrics;
use crate::forward::Forwarder;
use crate::metrics::dns::DnsMetrics;
use crate::metrics::exposition::Page;
use crate::metrics::{Histogram, process};
use crate::zone::Index;

/// Longest request head read (hyper's smallest read buffer); a longer one gets 431.
const MAX_REQUEST: usize = 8192;
/// A client that has not sent its request head by then is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one connection, response included: a client that does not read its
/// response is dropped too.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

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
        crate::metrics::expansions::SEARCH_EXPANSIONS.write(&mut page);
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

/// The routers serving each listen address, for `GET /explain`.
#[derive(Debug, Default)]
pub struct Explainer {
    routers: std::sync::Mutex<Vec<(std::net::SocketAddr, crate::server::handler::Router)>>,
}

impl Explainer {
    /// The routers now serving (after every start and reload).
    pub fn set(&self, routers: Vec<(std::net::SocketAddr, crate::server::handler::Router)>) {
        *self.routers.lock().unwrap_or_else(|p| p.into_inner()) = routers;
    }

    /// `/explain?name=NAME[&type=TYPE][&listen=ADDR]`: the report of the router on `listen`
    /// (the first one by default), as asked from 127.0.0.1.
    fn explain(&self, query: &str) -> Result<String, String> {
        let (mut name, mut qtype, mut listen) = (None, "A".to_owned(), None);
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("name", v)) => name = Some(v.to_owned()),
                Some(("type", v)) => qtype = v.to_ascii_uppercase(),
                Some(("listen", v)) => listen = Some(v.to_owned()),
                _ => return Err(format!("unknown parameter {pair:?} (name, type, listen)")),
            }
        }
        let name = name.ok_or("name=… is missing")?;
        let qtype: hickory_proto::rr::RecordType = qtype
            .parse()
            .map_err(|_| format!("{qtype:?} is not a record type"))?;
        let routers = self.routers.lock().unwrap_or_else(|p| p.into_inner());
        let router = match &listen {
            Some(addr) => routers.iter().find(|(a, _)| a.to_string() == *addr),
            None => routers.first(),
        };
        let (_, router) =
            router.ok_or_else(|| format!("no listener {}", listen.unwrap_or_default()))?;
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Ok(router.explain(&name, qtype, peer))
    }
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
            (self.metrics, "/metrics /explain"),
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

/// Serves one admin listener forever: each connection on its own task, so a slow or failing
/// client delays nobody else and never stops the accept loop.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    readiness: Arc<Readiness>,
    registry: Arc<Registry>,
    explainer: Arc<Explainer>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .max_buf_size(MAX_REQUEST)
        .keep_alive(false);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: back off, then go on accepting.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (readiness, registry, explainer) =
            (readiness.clone(), registry.clone(), explainer.clone());
        let service = service_fn(move |request: Request<Incoming>| {
            let state = (&*readiness, &*registry, &*explainer);
            std::future::ready(Ok::<_, Infallible>(respond(&request, routes, state)))
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "admin connection failed"),
                Err(_) => tracing::debug!("admin connection timed out"),
            }
        });
    }
}

/// The reply to one request. hyper leaves the body out for `HEAD` (keeping its length).
fn respond(
    request: &Request<Incoming>,
    routes: Routes,
    (readiness, registry, explainer): (&Readiness, &Registry, &Explainer),
) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain";
    let (status, content_type, body) =
        if request.method() != Method::GET && request.method() != Method::HEAD {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                TEXT,
                "method not allowed\n".to_owned(),
            )
        } else {
            match request.uri().path() {
                "/health" if routes.health => (StatusCode::OK, TEXT, "OK".to_owned()),
                "/ready" if routes.ready => match readiness.check() {
                    Ok(()) => (StatusCode::OK, TEXT, "OK".to_owned()),
                    Err(why) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
                },
                "/metrics" if routes.metrics => (
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    registry.render(),
                ),
                "/explain" if routes.metrics => {
                    match explainer.explain(request.uri().query().unwrap_or("")) {
                        Ok(report) => (StatusCode::OK, TEXT, report),
                        Err(why) => (StatusCode::BAD_REQUEST, TEXT, format!("{why}\n")),
                    }
                }
                _ => (
                    StatusCode::NOT_FOUND,
                    TEXT,
                    "404 page not found\n".to_owned(),
                ),
            }
        };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::PROGRAMMING_BUCKETS;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const ALL: Routes = Routes {
        health: true,
        ready: true,
        metrics: true,
    };

    /// Serves `routes` on a loopback port with fresh state.
    async fn start(routes: Routes) -> (SocketAddr, Arc<Readiness>) {
        let mut bound = bind(&[("127.0.0.1:0".parse().unwrap(), routes)])
            .await
            .unwrap();
        let (listener, routes) = bound.pop().unwrap();
        let addr = listener.local_addr().unwrap();
        let readiness = Arc::new(Readiness::default());
        let registry = Arc::new(Registry::new(Arc::new(Histogram::new(PROGRAMMING_BUCKETS))));
        tokio::spawn(serve(
            listener,
            routes,
            readiness.clone(),
            registry,
            Arc::default(),
        ));
        (addr, readiness)
    }

    /// Sends `request` as is and reads until the server closes (at most 15 s).
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut reply))
            .await
            .expect("the server closes the connection")
            .unwrap();
        String::from_utf8(reply).unwrap()
    }

    /// Status, lower-cased head, body.
    fn parse(reply: &str) -> (u16, String, String) {
        let (head, body) = reply.split_once("\r\n\r\n").expect("a full response head");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        let text = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        parse(&exchange(addr, text.as_bytes()).await)
    }

    #[tokio::test]
    async fn endpoints_answer_with_status_content_type_and_body() {
        let (addr, readiness) = start(ALL).await;
        let (status, head, body) = request(addr, "GET", "/health").await;
        assert_eq!((status, body.as_str()), (200, "OK"));
        assert!(head.contains("\r\ncontent-type: text/plain\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-length: 2\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");

        let (status, _, body) = request(addr, "GET", "/ready?verbose").await;
        assert_eq!(status, 503);
        assert_eq!(body, "listeners not bound yet\n");
        readiness.set_listeners_bound();
        assert_eq!(request(addr, "GET", "/ready").await.0, 200);
        readiness.set_shutting_down();
        let (status, _, body) = request(addr, "GET", "/ready").await;
        assert_eq!((status, body.as_str()), (503, "shutting down\n"));

        let (status, head, body) = request(addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{head}"
        );
        assert!(body.contains("\ncoredns_panics_total 0\n"), "{body}");

        let (status, _, body) = request(addr, "GET", "/nope").await;
        assert_eq!((status, body.as_str()), (404, "404 page not found\n"));
    }

    #[tokio::test]
    async fn head_has_the_length_but_no_body_and_other_methods_get_405() {
        let (addr, _) = start(ALL).await;
        let (status, head, body) = request(addr, "HEAD", "/metrics").await;
        assert_eq!(status, 200);
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("a content-length")
            .parse()
            .unwrap();
        assert!(length > 1000, "{head}");
        assert_eq!(body, "", "HEAD sends no body");

        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let (status, head, body) = request(addr, method, "/health").await;
            assert_eq!(status, 405, "{method}");
            assert!(head.contains("\r\nallow: get, head\r\n"), "{head}");
            assert_eq!(body, "method not allowed\n");
        }
    }

    #[tokio::test]
    async fn routes_not_served_on_an_address_are_404() {
        let (addr, _) = start(Routes {
            health: true,
            ..Routes::default()
        })
        .await;
        assert_eq!(request(addr, "GET", "/health").await.0, 200);
        assert_eq!(request(addr, "GET", "/ready").await.0, 404);
        assert_eq!(request(addr, "GET", "/metrics").await.0, 404);
    }

    #[tokio::test]
    async fn malformed_or_oversized_requests_are_refused_and_the_server_goes_on() {
        let (addr, _) = start(ALL).await;
        let (status, _, _) = parse(&exchange(addr, b"\x00\x01garbage\r\n\r\n").await);
        assert_eq!(status, 400);
        let huge = format!(
            "GET /health HTTP/1.1\r\nHost: test\r\nX-Filler: {}\r\n\r\n",
            "a".repeat(2 * MAX_REQUEST)
        );
        let (status, _, _) = parse(&exchange(addr, huge.as_bytes()).await);
        assert_eq!(status, 431);
        // A client that vanishes mid-request.
        let mut gone = TcpStream::connect(addr).await.unwrap();
        gone.write_all(b"GET /hea").await.unwrap();
        drop(gone);
        assert_eq!(request(addr, "GET", "/health").await.0, 200);
    }

    #[tokio::test]
    async fn a_stalled_client_blocks_nobody_and_is_dropped_after_the_header_timeout() {
        let (addr, _) = start(ALL).await;
        let mut stalled = Vec::new();
        for _ in 0..20 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: te")
                .await
                .unwrap();
            stalled.push(s);
        }
        let started = Instant::now();
        for _ in 0..5 {
            assert_eq!(request(addr, "GET", "/health").await.0, 200);
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "others were served at once: {:?}",
            started.elapsed()
        );
        // The stalled ones are closed, without a response, once REQUEST_TIMEOUT passes.
        for s in &mut stalled {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(
                REQUEST_TIMEOUT + Duration::from_secs(3),
                s.read_to_end(&mut rest),
            )
            .await;
            assert!(read.is_ok(), "still open after {:?}", started.elapsed());
            assert_eq!(String::from_utf8_lossy(&rest), "");
        }
        assert!(started.elapsed() >= REQUEST_TIMEOUT - Duration::from_millis(500));
    }
}
