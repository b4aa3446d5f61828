//! One query over TCP: a reused idle connection (closed after `expire`) or a fresh one, a
//! fresh random ID, the reply matched to the question.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::sockets::{Permit, classify};
use super::{Failure, Upstream, fresh_id, reply};
use crate::dns::WireQuestion;

/// An upstream connection and its place in the descriptor budget.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) permit: Permit,
}

pub(super) async fn exchange(
    upstream: &Upstream,
    request: &[u8],
    question: &WireQuestion,
    expire: Duration,
) -> Result<Vec<u8>, Failure> {
    // A reused connection may have been closed by the upstream: then one fresh try.
    let reused = take_idle(upstream, expire);
    let had_reused = reused.is_some();
    if let Some(conn) = reused
        && let Ok(r) = exchange_on(conn, upstream, request, question).await
    {
        return Ok(r);
    }
    let conn = connect(upstream.addr).await?;
    exchange_on(conn, upstream, request, question)
        .await
        .map_err(|e| match e {
            Failure::Upstream(e) if had_reused => {
                Failure::Upstream(format!("{e} (after a reused connection failed)"))
            }
            e => e,
        })
}

pub(super) async fn connect(addr: SocketAddr) -> Result<Conn, Failure> {
    let permit = Permit::take()?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| Failure::Local(format!("tcp socket: {e}")))?;
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| classify("tcp connect", &e))?;
    let _ = stream.set_nodelay(true);
    Ok(Conn { stream, permit })
}

fn take_idle(upstream: &Upstream, expire: Duration) -> Option<Conn> {
    let mut idle = upstream.idle_tcp.lock().unwrap_or_else(|p| p.into_inner());
    idle.retain(|(_, since)| since.elapsed() < expire);
    idle.pop().map(|(c, _)| c)
}

async fn exchange_on(
    mut conn: Conn,
    upstream: &Upstream,
    request: &[u8],
    question: &WireQuestion,
) -> Result<Vec<u8>, Failure> {
    let (id, message) = fresh_id(request);
    let len = u16::try_from(message.len())
        .map_err(|_| Failure::Local("query too long for TCP".to_owned()))?;
    let mut out = Vec::with_capacity(message.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&message);
    let stream = &mut conn.stream;
    stream
        .write_all(&out)
        .await
        .map_err(|e| classify("tcp send", &e))?;
    loop {
        let mut prefix = [0u8; 2];
        stream
            .read_exact(&mut prefix)
            .await
            .map_err(|e| classify("tcp receive", &e))?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream
            .read_exact(&mut reply)
            .await
            .map_err(|e| classify("tcp receive", &e))?;
        if reply::belongs_to(&reply, id, question) {
            let mut idle = upstream.idle_tcp.lock().unwrap_or_else(|p| p.into_inner());
            idle.push((conn, Instant::now()));
            return Ok(reply);
        }
        tracing::debug!(upstream = %upstream.addr, "ignoring a TCP reply that does not match the query");
    }
}
