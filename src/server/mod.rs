//! Sockets: UDP and TCP on every listen address, blocks sharing an address share its sockets.
//!
//! UDP: a few long-lived tasks per socket, each with its own buffers; no task per query.
//! TCP: a task per connection (bounded), queries answered in order, idle connections closed.

pub mod handler;
pub mod resolve;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

pub use handler::{Block, Handled, Router, Scratch, Transport};

/// Largest UDP datagram read; anything longer is cut and fails to parse.
const UDP_RECV_BUFFER: usize = 65535;
/// Most concurrent TCP connections per listener; more wait in the accept queue.
pub const MAX_TCP_CONNECTIONS: usize = 1024;
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

/// A bound address: both sockets on the same port (chosen once when the port is 0).
pub struct Listener {
    pub addr: SocketAddr,
    udp: UdpSocket,
    tcp: TcpListener,
}

/// Binds UDP then TCP on `addr`. With port 0, the port UDP got is reused for TCP (retrying a
/// few times if TCP finds it taken), so one number serves both.
pub async fn bind(addr: SocketAddr) -> Result<Listener, ServerError> {
    let attempts = if addr.port() == 0 { 20 } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                proto: "udp",
                addr,
                source,
            })?;
        let bound = udp.local_addr().map_err(|source| ServerError::Bind {
            proto: "udp",
            addr,
            source,
        })?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => {
                return Ok(Listener {
                    addr: bound,
                    udp,
                    tcp,
                });
            }
            Err(source) => {
                last_error = Some(ServerError::Bind {
                    proto: "tcp",
                    addr: bound,
                    source,
                })
            }
        }
    }
    Err(last_error.expect("at least one attempt"))
}

/// Serves `router` on `listener` until the runtime shuts down.
pub fn serve(listener: Listener, router: Router, udp_workers: usize) {
    let udp = Arc::new(listener.udp);
    for _ in 0..udp_workers.max(1) {
        let (udp, router) = (udp.clone(), router.clone());
        tokio::spawn(async move { serve_udp(udp, router).await });
    }
    tokio::spawn(serve_tcp(listener.tcp, router));
}

async fn serve_udp(socket: Arc<UdpSocket>, router: Router) {
    let mut buf = vec![0u8; UDP_RECV_BUFFER];
    let mut scratch = Scratch::default();
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors surface here on some systems; they concern one peer only.
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        match router.handle(&buf[..len], Transport::Udp, &mut scratch) {
            Handled::Reply(response) => {
                if let Err(e) = socket.send_to(response, peer).await {
                    tracing::debug!(error = %e, %peer, "udp send failed");
                }
            }
            Handled::Drop => {}
            Handled::Pending(pending) => {
                // Upstream answers take milliseconds: never hold the receive loop for them.
                let socket = socket.clone();
                tokio::spawn(async move {
                    let response = pending.resolve().await;
                    if let Err(e) = socket.send_to(&response, peer).await {
                        tracing::debug!(error = %e, %peer, "udp send failed");
                    }
                });
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, router: Router) {
    let permits = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
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
        let router = router.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, &router).await {
                tracing::debug!(error = %e, %peer, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

async fn serve_connection(mut stream: TcpStream, router: &Router) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut scratch = Scratch::default();
    let mut request = Vec::with_capacity(512);
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
        let pending;
        let response: &[u8] = match router.handle(&request, Transport::Tcp, &mut scratch) {
            Handled::Reply(r) => r,
            Handled::Drop => continue,
            Handled::Pending(p) => {
                pending = p.resolve().await;
                &pending
            }
        };
        let mut out = Vec::with_capacity(response.len() + 2);
        out.extend_from_slice(&(response.len() as u16).to_be_bytes());
        out.extend_from_slice(response);
        stream.write_all(&out).await?;
    }
}
