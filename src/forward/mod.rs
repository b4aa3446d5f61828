//! The forwarder: sends a query to upstream resolvers (CoreDNS `forward`).
//!
//! Every attempt uses a fresh random ID and, over UDP, a fresh socket (so a fresh random source
//! port); a reply counts only when ID and question match. TC moves the same upstream to TCP. A
//! failed attempt moves to the next upstream; the whole exchange is bounded by `timeout`.
//! Consecutive failures mark an upstream down; a health probe (`. IN NS`) brings it back.

pub mod reply;
mod resolv;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::config::{ForwardConfig, ForwardTo, Policy};
use crate::dns::{Transport, WireQuestion, query, rtype};
use crate::metrics::{Histogram, LATENCY_BUCKETS};

/// Largest reply read over UDP.
const UDP_REPLY_BUFFER: usize = 65535;
/// Bounds a health probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The smallest time given to one upstream attempt.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    #[error("too many queries in flight upstream (max_concurrent {0})")]
    Overloaded(usize),
    #[error("no usable upstream")]
    NoUpstream,
    #[error("every upstream failed; last: {0}")]
    AllFailed(String),
    #[error("cannot read upstreams from {path}: {message}")]
    ResolvConf { path: String, message: String },
}

/// Per-upstream counters, exported as CoreDNS's `coredns_forward_*{to}`.
#[derive(Debug)]
pub struct UpstreamMetrics {
    pub requests: AtomicU64,
    /// Responses by rcode (0..=15), as `coredns_forward_responses_total{rcode}`.
    pub responses: [AtomicU64; 16],
    pub duration: Histogram,
    pub healthcheck_failures: AtomicU64,
}

/// One upstream resolver.
#[derive(Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    /// Consecutive failures; `max_fails` of them mark it down.
    fails: AtomicU32,
    /// A forwarding loop was detected through it: never used again.
    looped: AtomicBool,
    /// Set while a health-probe task runs for it.
    probing: AtomicBool,
    /// Idle TCP connections, reused until `expire`.
    idle_tcp: std::sync::Mutex<Vec<(TcpStream, Instant)>>,
    pub metrics: UpstreamMetrics,
}

impl Upstream {
    fn new(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            fails: AtomicU32::new(0),
            looped: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            idle_tcp: std::sync::Mutex::new(Vec::new()),
            metrics: UpstreamMetrics {
                requests: AtomicU64::new(0),
                responses: std::array::from_fn(|_| AtomicU64::new(0)),
                duration: Histogram::new(LATENCY_BUCKETS),
                healthcheck_failures: AtomicU64::new(0),
            },
        }
    }

    fn down(&self, max_fails: u32) -> bool {
        max_fails > 0 && self.fails.load(Ordering::Relaxed) >= max_fails
    }

    /// Marks that queries sent here come back to this server.
    pub fn mark_looped(&self) {
        if !self.looped.swap(true, Ordering::Relaxed) {
            tracing::error!(upstream = %self.addr, "forwarding loop detected: queries sent to this upstream come back to this server; not forwarding to it");
        }
    }

    pub fn is_looped(&self) -> bool {
        self.looped.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct Forwarder {
    pub upstreams: Vec<Arc<Upstream>>,
    config: ForwardConfig,
    next: AtomicUsize,
    in_flight: AtomicUsize,
    pub max_concurrent_rejects: AtomicU64,
}

/// Releases a concurrency slot when the exchange ends, however it ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Forwarder {
    /// Builds the pool; resolv.conf upstreams are read now.
    pub fn new(config: ForwardConfig) -> Result<Forwarder, ForwardError> {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for to in &config.to {
            match to {
                ForwardTo::Addr(a) => addrs.push(*a),
                ForwardTo::ResolvConf(path) => addrs.extend(resolv::read(path)?),
            }
        }
        addrs.dedup();
        if addrs.is_empty() {
            return Err(ForwardError::NoUpstream);
        }
        Ok(Forwarder {
            upstreams: addrs
                .into_iter()
                .map(|a| Arc::new(Upstream::new(a)))
                .collect(),
            config,
            next: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_concurrent_rejects: AtomicU64::new(0),
        })
    }

    /// Is this name (lower-case, dotted) forwarded at all, or under an `except` zone?
    pub fn forwards(&self, qname: &str) -> bool {
        !self
            .config
            .except
            .iter()
            .any(|z| crate::zone::lookup::in_zone(qname, z))
    }

    /// The upstreams in the order this query tries them: usable ones by policy; when every
    /// one is down, one at random (the health check may be what is broken).
    fn order(&self) -> Vec<Arc<Upstream>> {
        let live: Vec<&Arc<Upstream>> = self.upstreams.iter().filter(|u| !u.is_looped()).collect();
        if live.is_empty() {
            return Vec::new();
        }
        let mut up: Vec<Arc<Upstream>> = live
            .iter()
            .filter(|u| !u.down(self.config.max_fails))
            .map(|u| Arc::clone(u))
            .collect();
        if up.is_empty() {
            let i = rand::rng().random_range(0..live.len());
            return vec![Arc::clone(live[i])];
        }
        match self.config.policy {
            Policy::Sequential => {}
            Policy::RoundRobin => {
                let start = self.next.fetch_add(1, Ordering::Relaxed) % up.len();
                up.rotate_left(start);
            }
            Policy::Random => {
                let mut rng = rand::rng();
                for i in (1..up.len()).rev() {
                    up.swap(i, rng.random_range(0..=i));
                }
            }
        }
        up
    }

    /// Sends `request` (the client's message) upstream and returns the first matching reply.
    /// The client's flags, EDNS and question go as they came; only the ID is replaced.
    pub async fn exchange(
        self: &Arc<Self>,
        request: &[u8],
        question: &WireQuestion,
        transport: Transport,
    ) -> Result<Vec<u8>, ForwardError> {
        let max = self.config.max_concurrent;
        if max > 0 && self.in_flight.fetch_add(1, Ordering::Relaxed) >= max {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.max_concurrent_rejects.fetch_add(1, Ordering::Relaxed);
            return Err(ForwardError::Overloaded(max));
        }
        if max == 0 {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        let _slot = Slot(&self.in_flight);
        let use_tcp =
            self.config.force_tcp || (transport == Transport::Tcp && !self.config.prefer_udp);
        let deadline = Instant::now() + self.config.timeout;
        let order = self.order();
        if order.is_empty() {
            return Err(ForwardError::NoUpstream);
        }
        let mut last_error = String::from("no attempt made");
        for (i, upstream) in order.iter().enumerate() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let left = deadline - now;
            let share = (left / (order.len() - i) as u32).max(MIN_ATTEMPT).min(left);
            upstream.metrics.requests.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            match attempt(upstream, request, question, use_tcp, share, &self.config).await {
                Ok(reply) => {
                    upstream
                        .metrics
                        .duration
                        .observe(started.elapsed().as_secs_f64());
                    upstream.metrics.responses[usize::from(reply[3] & 0x0f)]
                        .fetch_add(1, Ordering::Relaxed);
                    if upstream.fails.swap(0, Ordering::Relaxed) >= self.config.max_fails
                        && self.config.max_fails > 0
                    {
                        tracing::info!(upstream = %upstream.addr, "upstream up");
                    }
                    return Ok(reply);
                }
                Err(e) => {
                    last_error = format!("{}: {e}", upstream.addr);
                    tracing::debug!(upstream = %upstream.addr, error = %e, "upstream attempt failed");
                    self.failed(upstream);
                }
            }
        }
        Err(ForwardError::AllFailed(last_error))
    }

    /// Counts a failure; on the one that marks the upstream down, starts probing it.
    fn failed(self: &Arc<Self>, upstream: &Arc<Upstream>) {
        let fails = upstream.fails.fetch_add(1, Ordering::Relaxed) + 1;
        if self.config.max_fails > 0 && fails == self.config.max_fails {
            tracing::warn!(upstream = %upstream.addr, fails, "upstream down");
        }
        if !upstream.probing.swap(true, Ordering::Relaxed) {
            let (this, upstream) = (self.clone(), upstream.clone());
            tokio::spawn(async move { this.probe_until_healthy(upstream).await });
        }
    }

    /// Probes `. IN NS` every `health_check` until the upstream answers.
    async fn probe_until_healthy(self: Arc<Self>, upstream: Arc<Upstream>) {
        let probe = query::health_probe();
        let question = WireQuestion::of(&probe).expect("a question");
        loop {
            tokio::time::sleep(self.config.health_check).await;
            let ok = attempt(
                &upstream,
                &probe,
                &question,
                self.config.force_tcp,
                PROBE_TIMEOUT,
                &self.config,
            )
            .await
            .is_ok();
            if ok {
                let was = upstream.fails.swap(0, Ordering::Relaxed);
                if self.config.max_fails > 0 && was >= self.config.max_fails {
                    tracing::info!(upstream = %upstream.addr, "upstream up");
                }
                upstream.probing.store(false, Ordering::Relaxed);
                return;
            }
            upstream
                .metrics
                .healthcheck_failures
                .fetch_add(1, Ordering::Relaxed);
            let fails = upstream.fails.fetch_add(1, Ordering::Relaxed) + 1;
            if self.config.max_fails > 0 && fails == self.config.max_fails {
                tracing::warn!(upstream = %upstream.addr, fails, "upstream down");
            }
        }
    }

    /// The timeout after which every upstream is given up on.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// Queries in flight upstream now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// One attempt at one upstream within `budget`: UDP (then TCP on TC) or TCP alone.
async fn attempt(
    upstream: &Upstream,
    request: &[u8],
    question: &WireQuestion,
    use_tcp: bool,
    budget: Duration,
    config: &ForwardConfig,
) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + budget;
    let work = async {
        if !use_tcp {
            let reply = exchange_udp(upstream.addr, request, question).await?;
            if reply[2] & crate::dns::flag::TC == 0 {
                return Ok(reply);
            }
            tracing::debug!(upstream = %upstream.addr, "truncated reply: retrying over TCP");
        }
        exchange_tcp(upstream, request, question, config.expire).await
    };
    match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no reply within {budget:?}")),
    }
}

fn fresh_id(request: &[u8]) -> (u16, Vec<u8>) {
    let id: u16 = rand::rng().random();
    let mut message = request.to_vec();
    message[0..2].copy_from_slice(&id.to_be_bytes());
    (id, message)
}

async fn exchange_udp(
    addr: SocketAddr,
    request: &[u8],
    question: &WireQuestion,
) -> Result<Vec<u8>, String> {
    let (id, message) = fresh_id(request);
    let bind: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    // A fresh socket per query: the kernel picks a random source port. Connecting it makes
    // the kernel drop datagrams from any other address.
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("udp bind: {e}"))?;
    socket
        .connect(addr)
        .await
        .map_err(|e| format!("udp connect: {e}"))?;
    socket
        .send(&message)
        .await
        .map_err(|e| format!("udp send: {e}"))?;
    let mut buf = vec![0u8; UDP_REPLY_BUFFER];
    loop {
        let len = socket
            .recv(&mut buf)
            .await
            .map_err(|e| format!("udp receive: {e}"))?;
        if reply::belongs_to(&buf[..len], id, question) {
            buf.truncate(len);
            return Ok(buf);
        }
        // A reply with the wrong ID or question is a spoofing attempt or a stale answer.
        tracing::debug!(upstream = %addr, "ignoring a reply that does not match the query");
    }
}

async fn exchange_tcp(
    upstream: &Upstream,
    request: &[u8],
    question: &WireQuestion,
    expire: Duration,
) -> Result<Vec<u8>, String> {
    // A reused connection may have been closed by the upstream: then one fresh try.
    let reused = take_idle(upstream, expire);
    let had_reused = reused.is_some();
    if let Some(stream) = reused
        && let Ok(r) = exchange_on(stream, upstream, request, question).await
    {
        return Ok(r);
    }
    let stream = TcpStream::connect(upstream.addr)
        .await
        .map_err(|e| format!("tcp connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    exchange_on(stream, upstream, request, question)
        .await
        .map_err(|e| {
            if had_reused {
                format!("{e} (after a reused connection failed)")
            } else {
                e
            }
        })
}

fn take_idle(upstream: &Upstream, expire: Duration) -> Option<TcpStream> {
    let mut idle = upstream.idle_tcp.lock().unwrap_or_else(|p| p.into_inner());
    idle.retain(|(_, since)| since.elapsed() < expire);
    idle.pop().map(|(s, _)| s)
}

async fn exchange_on(
    mut stream: TcpStream,
    upstream: &Upstream,
    request: &[u8],
    question: &WireQuestion,
) -> Result<Vec<u8>, String> {
    let (id, message) = fresh_id(request);
    let len = u16::try_from(message.len()).map_err(|_| "query too long for TCP".to_owned())?;
    let mut out = Vec::with_capacity(message.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&message);
    stream
        .write_all(&out)
        .await
        .map_err(|e| format!("tcp send: {e}"))?;
    loop {
        let mut prefix = [0u8; 2];
        stream
            .read_exact(&mut prefix)
            .await
            .map_err(|e| format!("tcp receive: {e}"))?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream
            .read_exact(&mut reply)
            .await
            .map_err(|e| format!("tcp receive: {e}"))?;
        if reply::belongs_to(&reply, id, question) {
            let mut idle = upstream.idle_tcp.lock().unwrap_or_else(|p| p.into_inner());
            idle.push((stream, Instant::now()));
            return Ok(reply);
        }
        tracing::debug!(upstream = %upstream.addr, "ignoring a TCP reply that does not match the query");
    }
}

/// Names this server sent upstream to detect a forwarding loop (CoreDNS `loop`): one that
/// arrives here again came back through that upstream.
#[derive(Debug, Default)]
pub struct LoopProbes {
    /// Cheap check on the query path: only set while probes are out.
    active: AtomicBool,
    probes: std::sync::Mutex<Vec<(String, Arc<Upstream>)>>,
}

/// How long a probe waits before it is forgotten.
const LOOP_PROBE_WINDOW: Duration = Duration::from_secs(5);

impl LoopProbes {
    /// Is `qname` (lower-case) one of our probes? If so, its upstream is marked looped.
    pub fn is_probe(&self, qname: &str) -> bool {
        if !self.active.load(Ordering::Relaxed) {
            return false;
        }
        let probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        match probes.iter().find(|(name, _)| name == qname) {
            Some((_, upstream)) => {
                upstream.mark_looped();
                true
            }
            None => false,
        }
    }

    /// Sends one probe per upstream of `forwarder`, named under `zone` so that a looped probe
    /// reaches the same server block. Call once the listeners are bound.
    pub async fn probe(self: Arc<Self>, forwarder: Arc<Forwarder>, zone: String) {
        let mut sent = Vec::new();
        for upstream in &forwarder.upstreams {
            let (a, b): (u64, u64) = (rand::rng().random(), rand::rng().random());
            let name = if zone.is_empty() {
                format!("{a:016x}.{b:016x}")
            } else {
                format!("{a:016x}.{b:016x}.{zone}")
            };
            self.probes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((name.clone(), upstream.clone()));
            sent.push((name, upstream.clone()));
        }
        self.active.store(true, Ordering::Relaxed);
        let queries = sent.into_iter().map(|(name, upstream)| async move {
            // HINFO, the type CoreDNS's loop plugin probes with.
            let Some(probe) = query::build(&name, rtype::HINFO, None) else {
                return;
            };
            let Some(question) = WireQuestion::of(&probe) else {
                return;
            };
            let _ = tokio::time::timeout(
                LOOP_PROBE_WINDOW,
                exchange_udp(upstream.addr, &probe, &question),
            )
            .await;
        });
        futures_util::future::join_all(queries).await;
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        probes.retain(|(_, u)| !forwarder.upstreams.iter().any(|f| Arc::ptr_eq(f, u)));
        if probes.is_empty() {
            self.active.store(false, Ordering::Relaxed);
        }
    }
}
