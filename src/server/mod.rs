//! Sockets: UDP and TCP on every listen address, blocks sharing an address share its sockets.
//!
//! UDP: one socket per worker (SO_REUSEPORT), each with one long-lived task and its own
//! buffers; no task per query (only queries that wait for an upstream get one).
//! TCP: a task per connection (bounded), queries answered in order, idle connections closed.
//! DNS over TLS (RFC 7858, a `tls://` address): a TCP listener only, each connection's TLS
//! handshake done by its task, then the same connection loop as plain TCP over the TLS stream.

pub mod batch;
pub mod handler;
pub mod ratelimit;
pub mod tcp_slots;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::dns::{Transport, name, rcode};
use crate::metrics::dns::{Plugin, QueryReport, rcode_name, response_rcode, type_name};
use crate::plugins::Pending;

use tcp_slots::TcpSlots;

pub use handler::{Block, Handled, MAX_TCP_CONNECTIONS, Router, Scratch, bare_reply_to};
/// A TCP connection with no complete query for this long is closed (RFC 7766 §6.2.3).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot bind {proto} {addr}: {source}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bound address: UDP sockets (one per worker, sharing the port with SO_REUSEPORT so the
/// kernel spreads datagrams over them without a shared receive queue) and a TCP listener on the
/// same port (chosen once when the port is 0).
pub struct Listener {
    pub addr: SocketAddr,
    /// Empty for a `tls://` address.
    udp: Vec<UdpSocket>,
    tcp: TcpListener,
}

/// Binds a `tls://` address: TCP only (DNS over TLS has no datagrams).
pub fn bind_tls(addr: SocketAddr) -> Result<Listener, ServerError> {
    let bind_error = |source| ServerError::Bind {
        proto: "tcp",
        addr,
        source,
    };
    let tcp = tcp_listener(addr).map_err(bind_error)?;
    let bound = tcp.local_addr().map_err(bind_error)?;
    Ok(Listener {
        addr: bound,
        udp: Vec::new(),
        tcp,
    })
}

/// A UDP socket with SO_REUSEPORT, bound and non-blocking, for tokio.
fn reuseport_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // `[::]` is IPv6 only, so `0.0.0.0` on the same port can be listened on beside it (a
    // Corefile's `.:53` is both, as Go's dual-stack wildcard).
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// A TCP listener as tokio's `bind` makes one (SO_REUSEADDR, backlog 1024), IPv6 only on an
/// IPv6 address like the UDP sockets.
fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Binds `udp_sockets` UDP sockets then TCP on `addr`. With port 0, the port the first UDP
/// socket got is reused for the rest (retrying a few times if TCP finds it taken), so one
/// number serves both.
pub async fn bind(addr: SocketAddr, udp_sockets: usize) -> Result<Listener, ServerError> {
    let attempts = if addr.port() == 0 { 20 } else { 1 };
    let mut last_error = None;
    let bind_error = |proto, addr, source| ServerError::Bind {
        proto,
        addr,
        source,
    };
    for _ in 0..attempts {
        let first = reuseport_udp(addr).map_err(|e| bind_error("udp", addr, e))?;
        let bound = first.local_addr().map_err(|e| bind_error("udp", addr, e))?;
        let mut udp = vec![first];
        for _ in 1..udp_sockets.max(1) {
            udp.push(reuseport_udp(bound).map_err(|e| bind_error("udp", bound, e))?);
        }
        match tcp_listener(bound) {
            Ok(tcp) => {
                return Ok(Listener {
                    addr: bound,
                    udp,
                    tcp,
                });
            }
            Err(source) => last_error = Some(bind_error("tcp", bound, source)),
        }
    }
    Err(last_error.expect("at least one attempt"))
}

/// Counts queries being answered (read, not yet replied to), so shutdown can drain them.
#[derive(Debug, Default)]
pub struct InFlight(AtomicUsize);

impl InFlight {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.clone())
    }
}

struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A serving listener: its tasks stop when this is dropped or `stop` is called.
#[derive(Debug)]
pub struct Serving {
    pub addr: SocketAddr,
    router: watch::Sender<Router>,
    /// The TLS server configuration of a `tls://` address.
    tls: Option<watch::Sender<Arc<rustls::ServerConfig>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Serving {
    /// Swaps in a new router: queries already being answered finish with the old one.
    pub fn replace(&self, router: Router) {
        self.router.send_replace(router);
    }

    /// What serves the address now.
    pub fn router(&self) -> Router {
        self.router.borrow().clone()
    }

    /// Whether this serves DNS over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Swaps in a new TLS configuration (a reload: certificates read again); connections
    /// already accepted keep theirs. Nothing on a plain address.
    pub fn replace_tls(&self, config: Arc<rustls::ServerConfig>) {
        if let Some(tls) = &self.tls {
            tls.send_replace(config);
        }
    }

    /// Stops receiving (sockets close); connections already accepted finish their queries.
    pub fn stop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Stops serving and waits until the tasks are gone, with the listening sockets they own
    /// (the address can be bound again then).
    pub async fn close(mut self) {
        self.stop();
        for t in std::mem::take(&mut self.tasks) {
            // Cancelled: the task's future, and its sockets, are dropped.
            let _ = t.await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves `router` on `listener` until stopped: a receive task per UDP socket, and at most
/// `tcp_connections` TCP connections at once; with `tls`, each TCP connection is DNS over TLS.
pub fn serve(
    listener: Listener,
    router: Router,
    in_flight: Arc<InFlight>,
    tcp_connections: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Serving {
    let addr = listener.addr;
    let (tx, rx) = watch::channel(router);
    let (tls, tls_rx) = match tls {
        Some(config) => {
            let (tx, rx) = watch::channel(config);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let mut tasks = Vec::new();
    for udp in listener.udp {
        let (udp, rx, in_flight) = (Arc::new(udp), rx.clone(), in_flight.clone());
        tasks.push(tokio::spawn(serve_udp(udp, rx, in_flight)));
    }
    tasks.push(tokio::spawn(serve_tcp(
        listener.tcp,
        rx,
        in_flight,
        tcp_connections.max(1),
        tls_rx,
    )));
    Serving {
        addr,
        router: tx,
        tls,
        tasks,
    }
}

/// The router to use now: a reload publishes a new one, picked up between queries.
fn current(rx: &mut watch::Receiver<Router>, router: &mut Router) {
    if rx.has_changed().unwrap_or(false) {
        *router = rx.borrow_and_update().clone();
    }
}

/// Counts a query in the metrics and writes its log line when the block asks for one.
fn account(
    router: &Router,
    report: &QueryReport,
    request: &[u8],
    transport: Transport,
    peer: SocketAddr,
    response: Option<&[u8]>,
    start: Instant,
) {
    let elapsed = start.elapsed();
    router.metrics.observe(
        report,
        transport,
        peer.is_ipv6(),
        request.len(),
        response,
        elapsed,
    );
    if !report.log.any() {
        return;
    }
    let answers = response
        .and_then(|r| r.get(6..8))
        .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
    let rcode = response.map_or(0, |r| response_rcode(report, r));
    if crate::plugins::log::wanted(report.log, rcode, answers) {
        let qname = name::display(request, crate::dns::HEADER_LEN);
        let rcode = response.map_or("-", |_| rcode_name(rcode));
        tracing::info!(
            target: "clusterdns::query",
            client = %peer,
            proto = transport.label(),
            name = qname.as_str(),
            qtype = type_name(report.qtype),
            rcode,
            size = response.map_or(0, <[u8]>::len),
            duration_us = elapsed.as_micros() as u64,
            "query"
        );
    }
}

/// Panics caught while answering (`coredns_panics_total`).
pub static PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Handles one request with a panic contained to it: counted, logged, answered SERVFAIL, and
/// the socket task keeps serving (as CoreDNS recovers per query).
fn handle_contained<'s>(
    router: &Router,
    request: &[u8],
    transport: Transport,
    peer: SocketAddr,
    scratch: &'s mut Scratch,
    report: &mut QueryReport,
) -> Handled<'s> {
    // Passed through a function with an `FnOnce` bound so the closure may hand out the
    // borrow of `scratch` it owns (inferred as `FnMut`, it could not).
    fn once<R>(f: impl FnOnce() -> R) -> impl FnOnce() -> R {
        f
    }
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(once(move || {
        router.handle(request, transport, peer, scratch, report)
    })));
    attempt.unwrap_or_else(|_| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        tracing::error!(name = %name::display(request, crate::dns::HEADER_LEN), "panic while answering a query: answered SERVFAIL");
        Handled::Panicked
    })
}

/// What was sent for each datagram of a batch, for counting after the batch is sent.
enum Sent {
    /// An answer to the batch's datagram `index`.
    Answer {
        report: QueryReport,
        index: usize,
        start: Instant,
    },
    /// A slipped reply (rate limiting): not a query answered.
    Slip,
}

async fn serve_udp(
    socket: Arc<UdpSocket>,
    mut rx: watch::Receiver<Router>,
    in_flight: Arc<InFlight>,
) {
    let router = rx.borrow_and_update().clone();
    let mut worker = UdpWorker {
        socket,
        rx,
        router,
        in_flight,
        receiver: batch::Receiver::default(),
        sender: batch::Sender::default(),
        answered: Vec::with_capacity(batch::BATCH),
        scratch: Scratch::default(),
    };
    loop {
        if let Err(e) = worker.receiver.receive(&worker.socket).await {
            // ICMP errors surface here on some systems; they concern one peer only.
            tracing::debug!(error = %e, "udp receive failed");
            continue;
        }
        current(&mut worker.rx, &mut worker.router);
        let _guard = worker.in_flight.enter();
        worker.answered.clear();
        for i in 0..worker.receiver.received.len() {
            worker.answer(i);
        }
        worker.sender.flush(&worker.socket).await;
        worker.account_batch();
    }
}

/// One UDP socket's receive loop: its buffers and scratch space, reused batch after batch.
struct UdpWorker {
    socket: Arc<UdpSocket>,
    rx: watch::Receiver<Router>,
    router: Router,
    in_flight: Arc<InFlight>,
    receiver: batch::Receiver,
    sender: batch::Sender,
    /// What was sent for each reply of the batch, for counting after it is sent.
    answered: Vec<Sent>,
    scratch: Scratch,
}

impl UdpWorker {
    /// Answers the batch's datagram `index` into the send batch, or hands it to a task.
    fn answer(&mut self, index: usize) {
        let peer = self.receiver.received[index].1;
        let request = self.receiver.datagram(index);
        if let Some(limiter) = &self.router.rate_limit {
            match limiter.check(peer.ip()) {
                ratelimit::Verdict::Answer => {}
                ratelimit::Verdict::Drop => return,
                ratelimit::Verdict::Slip => {
                    if let Some(reply) =
                        bare_reply_to(request, Transport::Udp, rcode::NOERROR, true)
                    {
                        self.sender.next(peer).extend_from_slice(&reply);
                        self.answered.push(Sent::Slip);
                    }
                    return;
                }
            }
        }
        let start = Instant::now();
        let mut report = QueryReport::default();
        let scratch = &mut self.scratch;
        let router = &self.router;
        match handle_contained(router, request, Transport::Udp, peer, scratch, &mut report) {
            Handled::Reply(response) => {
                self.sender.next(peer).extend_from_slice(response);
                self.answered.push(Sent::Answer {
                    report,
                    index,
                    start,
                });
            }
            Handled::Drop => {}
            Handled::Panicked => {
                self.scratch = Scratch::default();
                if let Some(reply) = bare_reply_to(request, Transport::Udp, rcode::SERVFAIL, false)
                {
                    self.sender.next(peer).extend_from_slice(&reply);
                    self.answered.push(Sent::Answer {
                        report,
                        index,
                        start,
                    });
                }
            }
            Handled::Pending(pending) => {
                report.plugin = Plugin::Forward;
                self.spawn_pending(*pending, request.to_vec(), peer, report, start);
            }
            // `transfer` refuses UDP before writing anything: never here.
            Handled::Transfer(_) => {
                if let Some(reply) = bare_reply_to(request, Transport::Udp, rcode::REFUSED, false) {
                    self.sender.next(peer).extend_from_slice(&reply);
                }
            }
        }
    }

    /// Upstream answers take milliseconds: never hold the receive loop for them.
    fn spawn_pending(
        &self,
        pending: Pending,
        request: Vec<u8>,
        peer: SocketAddr,
        report: QueryReport,
        start: Instant,
    ) {
        let (socket, router) = (self.socket.clone(), self.router.clone());
        let guard = self.in_flight.enter();
        tokio::spawn(async move {
            let _guard = guard;
            let response = pending.resolve().await;
            if let Err(e) = socket.send_to(&response, peer).await {
                tracing::debug!(error = %e, %peer, "udp send failed");
            }
            let answered = Some(response.as_slice());
            account(
                &router,
                &report,
                &request,
                Transport::Udp,
                peer,
                answered,
                start,
            );
        });
    }

    /// Counts (and logs) the answers of the batch just sent.
    fn account_batch(&self) {
        for (n, sent) in self.answered.iter().enumerate() {
            let Sent::Answer {
                report,
                index,
                start,
            } = sent
            else {
                continue;
            };
            let (response, peer) = self.sender.get(n);
            let request = self.receiver.datagram(*index);
            let router = &self.router;
            account(
                router,
                report,
                request,
                Transport::Udp,
                peer,
                Some(response),
                *start,
            );
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    rx: watch::Receiver<Router>,
    in_flight: Arc<InFlight>,
    max_connections: usize,
    tls: Option<watch::Receiver<Arc<rustls::ServerConfig>>>,
) {
    let slots = TcpSlots::new(max_connections);
    loop {
        let Some(permit) = slots.free().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(slot) = slots.take(peer.ip(), permit) else {
            tracing::debug!(%peer, share = slots.per_client(), "tcp client holds its share of connections: closed");
            continue;
        };
        let (rx, in_flight) = (rx.clone(), in_flight.clone());
        let acceptor = tls.as_ref().map(|t| TlsAcceptor::from(t.borrow().clone()));
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let served = match acceptor {
                None => serve_connection(stream, peer, rx, &in_flight).await,
                // A client that does not finish its handshake gets as long as an idle one.
                Some(acceptor) => {
                    match tokio::time::timeout(TCP_IDLE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(stream, peer, rx, &in_flight).await,
                        Ok(Err(e)) => Err(e),
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "tcp connection ended");
            }
            drop(slot);
        });
    }
}

/// One TCP connection, plain or inside TLS: length-prefixed queries answered in order.
async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    mut rx: watch::Receiver<Router>,
    in_flight: &Arc<InFlight>,
) -> std::io::Result<()> {
    let mut scratch = Scratch::default();
    let mut request = Vec::with_capacity(512);
    let mut router = rx.borrow_and_update().clone();
    loop {
        let mut prefix = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut prefix)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let len = usize::from(u16::from_be_bytes(prefix));
        request.resize(len, 0);
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut request)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        current(&mut rx, &mut router);
        let _guard = in_flight.enter();
        let start = Instant::now();
        let pending;
        let mut report = QueryReport::default();
        let response: &[u8] = match handle_contained(
            &router,
            &request,
            Transport::Tcp,
            peer,
            &mut scratch,
            &mut report,
        ) {
            Handled::Reply(r) => r,
            Handled::Drop => continue,
            Handled::Panicked => {
                pending = bare_reply_to(&request, Transport::Tcp, rcode::SERVFAIL, false)
                    .unwrap_or_default();
                // The scratch space may be half-written: start it over.
                scratch = Scratch::default();
                if pending.is_empty() {
                    continue;
                }
                &pending
            }
            Handled::Pending(p) => {
                report.plugin = Plugin::Forward;
                pending = p.resolve().await;
                &pending
            }
            Handled::Transfer(messages) => {
                if !send_messages(&mut stream, &messages).await? {
                    return Ok(());
                }
                let first = messages.first().map(Vec::as_slice);
                account(
                    &router,
                    &report,
                    &request,
                    Transport::Tcp,
                    peer,
                    first,
                    start,
                );
                continue;
            }
        };
        let out = framed(response);
        // A client that sends queries and never reads blocks this write: it gets as long as
        // an idle client, then the connection (and its slot) goes.
        if !send(&mut stream, &out).await? {
            return Ok(());
        }
        account(
            &router,
            &report,
            &request,
            Transport::Tcp,
            peer,
            Some(&out[2..]),
            start,
        );
    }
}

/// A message with its two-octet length in front, as DNS over TCP sends it.
fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 2);
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Sends a zone transfer's messages in order, each with its length. `false`: the client stopped
/// reading for as long as an idle one may (the connection goes).
async fn send_messages<S: AsyncWrite + Unpin>(
    stream: &mut S,
    messages: &[Vec<u8>],
) -> std::io::Result<bool> {
    for message in messages {
        if !send(stream, &framed(message)).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes `out` and flushes it (a TLS stream holds records back until then). `false`: the
/// client stopped reading for as long as an idle one may.
async fn send<S: AsyncWrite + Unpin>(stream: &mut S, out: &[u8]) -> std::io::Result<bool> {
    let written = async {
        stream.write_all(out).await?;
        stream.flush().await
    };
    match tokio::time::timeout(TCP_IDLE_TIMEOUT, written).await {
        Ok(written) => written.map(|()| true),
        Err(_) => Ok(false),
    }
}
