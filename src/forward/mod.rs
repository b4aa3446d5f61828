//! The forwarder: sends a query to upstream resolvers (CoreDNS `forward`).
//!
//! - **Attempts** (`udp.rs`, `pool.rs`, `tcp.rs`): every attempt has a fresh random ID and,
//!   over UDP, goes out on one of its upstream's pooled sockets (up to 32 per upstream, each on
//!   a random port, retired after 256 queries or 30 s; another socket than the query's earlier
//!   attempts to that upstream used); a reply counts only when ID and question match (RFC
//!   5452). An unanswered UDP datagram is sent again, to the next upstream of the query's order
//!   or to the same one when there is one, after 250 ms, then 500 ms, 1 s…, all inside
//!   `timeout`; the previous attempt stays open, so its late answer still counts. TC moves to
//!   TCP on the upstream that sent it. Over TCP each upstream gets its share of `timeout`.
//! - **Health** (`health.rs`): an unanswered attempt starts a health check (`. IN NS`) of its
//!   upstream; `max_fails` failed checks in a row mark it down, an answered check brings it
//!   back. Failed queries themselves count for nothing.
//! - **DNS over TLS** (`dot.rs`, `tls.rs`): a `tls://` upstream is only ever asked over TLS,
//!   on one connection kept open and shared, queries pipelined and matched by ID; its
//!   certificate verified against `tls_ca` or the system roots. A forwarder with one tries
//!   its upstreams one by one, each by its own transport and with its share of `timeout`.
//! - **Bounds**: `max_concurrent` queries in flight (then REFUSED), no socket made per query,
//!   every upstream socket within a budget derived from the descriptor limit
//!   (`sockets.rs`). A local failure (no descriptor, no buffer, no port) fails the query at once
//!   (SERVFAIL) and says nothing about the upstream.

mod dot;
mod health;
mod pool;
pub mod reply;
mod resolv;
mod sockets;
mod tcp;
pub mod tls;
mod udp;
mod waiters;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;

use crate::config::{ForwardConfig, ForwardTo, Policy};
use crate::dns::{Transport, WireQuestion, query, rtype};
use crate::metrics::{Histogram, LATENCY_BUCKETS};

/// The smallest time given to one upstream over TCP.
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
    /// This host could not send the query (descriptors, buffers, ports): not the upstreams'
    /// fault, and not counted against them.
    #[error("cannot send upstream: {0}")]
    Local(String),
    #[error("cannot read upstreams from {path}: {message}")]
    ResolvConf { path: String, message: String },
    #[error("{key}: {message}")]
    Tls { key: &'static str, message: String },
}

/// Why an attempt got no answer.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// This host could not make or use a socket: says nothing about the upstream.
    #[error("{0}")]
    Local(String),
    /// The upstream did not answer in time, refused, or broke the connection.
    #[error("{0}")]
    Upstream(String),
}

/// Per-upstream counters, exported as CoreDNS's `coredns_forward_*{to}`.
#[derive(Debug)]
pub struct UpstreamMetrics {
    /// Attempts sent (each retransmission counts, as each CoreDNS `Connect` does).
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
    /// Consecutive failed health checks; `max_fails` of them mark it down.
    fails: AtomicU32,
    /// A forwarding loop was detected through it: never used again.
    looped: AtomicBool,
    /// Set while a health-check task runs for it.
    probing: AtomicBool,
    /// Its UDP sockets, shared by the queries.
    udp: pool::Pool,
    /// Idle TCP connections, reused until `expire`.
    idle_tcp: std::sync::Mutex<Vec<(tcp::Conn, Instant)>>,
    /// Set for a `tls://` upstream: it is asked over TLS only.
    tls: Option<dot::Dot>,
    pub metrics: UpstreamMetrics,
}

impl Upstream {
    fn new(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            fails: AtomicU32::new(0),
            looped: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            udp: pool::Pool::new(addr),
            idle_tcp: std::sync::Mutex::new(Vec::new()),
            tls: None,
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

    /// Is it a `tls://` upstream?
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// One exchange over a stream: TLS for a `tls://` upstream, else TCP.
    async fn over_stream(
        &self,
        request: &[u8],
        question: &WireQuestion,
        expire: Duration,
    ) -> Result<Vec<u8>, Failure> {
        match &self.tls {
            Some(dot) => dot.exchange(self.addr, request, question, expire).await,
            None => tcp::exchange(self, request, question, expire).await,
        }
    }
}

#[derive(Debug)]
pub struct Forwarder {
    pub upstreams: Vec<Arc<Upstream>>,
    config: ForwardConfig,
    next: AtomicUsize,
    in_flight: AtomicUsize,
    pub max_concurrent_rejects: AtomicU64,
    /// Some upstream is `tls://`: upstreams are tried one by one, each by its transport.
    any_tls: bool,
}

/// Releases a concurrency slot when the exchange ends, however it ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The forwarder hears of every attempt: counted when sent, checked when unanswered.
impl udp::Observer for Arc<Forwarder> {
    fn sent(&self, upstream: &Upstream) {
        upstream.metrics.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn unanswered(&self, upstream: &Arc<Upstream>) {
        self.suspect(upstream);
    }
}

impl Forwarder {
    /// Builds the pool; resolv.conf upstreams are read now, TLS files too.
    pub fn new(config: ForwardConfig) -> Result<Forwarder, ForwardError> {
        let mut addrs: Vec<(SocketAddr, bool)> = Vec::new();
        for to in &config.to {
            match to {
                ForwardTo::Addr(a) => addrs.push((*a, false)),
                ForwardTo::Tls(a) => addrs.push((*a, true)),
                ForwardTo::ResolvConf(path) => {
                    addrs.extend(resolv::read(path)?.into_iter().map(|a| (a, false)));
                }
            }
        }
        addrs.dedup();
        if addrs.is_empty() {
            return Err(ForwardError::NoUpstream);
        }
        let any_tls = addrs.iter().any(|(_, tls)| *tls);
        let client = if any_tls {
            Some(
                tls::client_config(&config.tls).map_err(|e| ForwardError::Tls {
                    key: e.key,
                    message: e.message,
                })?,
            )
        } else {
            None
        };
        let upstreams = addrs
            .into_iter()
            .map(|(addr, tls)| {
                let mut upstream = Upstream::new(addr);
                if let (true, Some(client)) = (tls, &client) {
                    let name = tls::server_name(&config.tls, addr.ip());
                    upstream.tls = Some(dot::Dot::new(client.clone(), name));
                }
                Arc::new(upstream)
            })
            .collect();
        Ok(Forwarder {
            upstreams,
            config,
            next: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_concurrent_rejects: AtomicU64::new(0),
            any_tls,
        })
    }

    /// Is this name (lower-case, dotted) forwarded: under `from` and not under an `except` zone?
    pub fn forwards(&self, qname: &str) -> bool {
        crate::zone::lookup::in_zone(qname, &self.config.from)
            && !self
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

    /// Takes a place among the queries in flight, or `Overloaded` past `max_concurrent`.
    fn slot(&self) -> Result<Slot<'_>, ForwardError> {
        let max = self.config.max_concurrent;
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(&self.in_flight);
        if max > 0 && before >= max {
            self.max_concurrent_rejects.fetch_add(1, Ordering::Relaxed);
            return Err(ForwardError::Overloaded(max));
        }
        Ok(slot)
    }

    /// Sends `request` (the client's message) upstream and returns the first matching reply.
    /// The client's flags, EDNS and question go as they came; only the ID is replaced.
    pub async fn exchange(
        self: &Arc<Self>,
        request: &[u8],
        question: &WireQuestion,
        transport: Transport,
    ) -> Result<Vec<u8>, ForwardError> {
        let _slot = self.slot()?;
        let use_tcp =
            self.config.force_tcp || (transport == Transport::Tcp && !self.config.prefer_udp);
        let deadline = Instant::now() + self.config.timeout;
        let order = self.order();
        if order.is_empty() {
            return Err(ForwardError::NoUpstream);
        }
        let answer = if use_tcp || self.any_tls {
            self.one_by_one(&order, request, question, deadline, use_tcp)
                .await
        } else {
            self.over_udp(&order, request, question, deadline).await
        };
        match answer {
            Ok(answer) => {
                let metrics = &answer.upstream.metrics;
                metrics.duration.observe(answer.rtt.as_secs_f64());
                metrics.responses[usize::from(answer.reply[3] & 0x0f)]
                    .fetch_add(1, Ordering::Relaxed);
                Ok(answer.reply)
            }
            Err(Failure::Local(e)) => {
                tracing::debug!(error = %e, "query not sent upstream");
                Err(ForwardError::Local(e))
            }
            Err(Failure::Upstream(e)) => Err(ForwardError::AllFailed(e)),
        }
    }

    /// UDP with retransmission; a truncated reply is asked again over TCP of the upstream that
    /// sent it, in the time left.
    async fn over_udp(
        self: &Arc<Self>,
        order: &[Arc<Upstream>],
        request: &[u8],
        question: &WireQuestion,
        deadline: Instant,
    ) -> Result<udp::Answer, Failure> {
        let answer =
            udp::exchange(order, request, question, deadline, udp::FIRST_WINDOW, self).await?;
        if answer.reply[2] & crate::dns::flag::TC == 0 {
            return Ok(answer);
        }
        let upstream = answer.upstream;
        tracing::debug!(upstream = %upstream.addr, "truncated reply: retrying over TCP");
        self.tcp_within(
            &upstream,
            request,
            question,
            deadline.saturating_duration_since(Instant::now()),
        )
        .await
    }

    /// Each upstream in turn, each with its share of the time left: over TLS for a `tls://`
    /// one, else over TCP when `use_tcp`, else over UDP.
    async fn one_by_one(
        self: &Arc<Self>,
        order: &[Arc<Upstream>],
        request: &[u8],
        question: &WireQuestion,
        deadline: Instant,
        use_tcp: bool,
    ) -> Result<udp::Answer, Failure> {
        let mut last = Failure::Upstream("no attempt made".to_owned());
        for (i, upstream) in order.iter().enumerate() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let left = deadline - now;
            let share = (left / (order.len() - i) as u32).max(MIN_ATTEMPT).min(left);
            let attempt = if use_tcp || upstream.is_tls() {
                self.tcp_within(upstream, request, question, share).await
            } else {
                let alone = std::slice::from_ref(upstream);
                self.over_udp(alone, request, question, now + share).await
            };
            match attempt {
                Ok(answer) => return Ok(answer),
                Err(Failure::Local(e)) => return Err(Failure::Local(e)),
                Err(failure) => last = failure,
            }
        }
        Err(last)
    }

    /// One TCP (or TLS) exchange with `upstream` within `budget`; unanswered, it starts a
    /// check.
    async fn tcp_within(
        self: &Arc<Self>,
        upstream: &Arc<Upstream>,
        request: &[u8],
        question: &WireQuestion,
        budget: Duration,
    ) -> Result<udp::Answer, Failure> {
        use udp::Observer;
        self.sent(upstream);
        let started = Instant::now();
        let work = upstream.over_stream(request, question, self.config.expire);
        let result = match tokio::time::timeout(budget, work).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Upstream(format!("no reply within {budget:?}"))),
        };
        match result {
            Ok(reply) => Ok(udp::Answer {
                reply,
                upstream: upstream.clone(),
                rtt: started.elapsed(),
            }),
            Err(failure) => {
                if let Failure::Upstream(e) = &failure {
                    tracing::debug!(upstream = %upstream.addr, error = %e, "upstream attempt failed");
                    self.unanswered(upstream);
                }
                Err(failure)
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

fn fresh_id(request: &[u8]) -> (u16, Vec<u8>) {
    let id: u16 = rand::rng().random();
    (id, with_id(request, id))
}

/// A copy of `request` with message ID `id`.
fn with_id(request: &[u8], id: u16) -> Vec<u8> {
    let mut message = request.to_vec();
    message[0..2].copy_from_slice(&id.to_be_bytes());
    message
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
        let expire = forwarder.config.expire;
        let queries = sent.into_iter().map(|(name, upstream)| async move {
            // HINFO, the type CoreDNS's loop plugin probes with.
            let Some(probe) = query::build(&name, rtype::HINFO, None) else {
                return;
            };
            let Some(question) = WireQuestion::of(&probe) else {
                return;
            };
            // One datagram (no retransmission): it waits the whole window for its answer.
            // A `tls://` upstream is only ever asked over TLS.
            let deadline = Instant::now() + LOOP_PROBE_WINDOW;
            if upstream.is_tls() {
                let ask = upstream.over_stream(&probe, &question, expire);
                let _ = tokio::time::timeout(LOOP_PROBE_WINDOW, ask).await;
                return;
            }
            let targets = std::slice::from_ref(&upstream);
            let _ =
                udp::exchange(targets, &probe, &question, deadline, LOOP_PROBE_WINDOW, &()).await;
        });
        futures_util::future::join_all(queries).await;
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        probes.retain(|(_, u)| !forwarder.upstreams.iter().any(|f| Arc::ptr_eq(f, u)));
        if probes.is_empty() {
            self.active.store(false, Ordering::Relaxed);
        }
    }
}
