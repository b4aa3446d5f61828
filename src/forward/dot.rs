//! DNS over TLS (RFC 7858) to one upstream: one connection, kept open and shared by every
//! query. Queries are pipelined (RFC 7766 §6.2.1.1): each goes out as it comes, with a fresh
//! random ID not in use on the connection, and replies are matched to their queries by ID in
//! whatever order they arrive. A writer task sends the queued queries (several in one TLS
//! write when they queue up), a reader task hands each reply to its query; the connection is
//! closed after `expire` without a query in flight, and the next query opens a new one.
//!
//! A certificate that does not verify fails the handshake: the query fails (SERVFAIL in the
//! end), the reason is logged once per upstream until it changes, and nothing is ever sent in
//! plain text instead.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::sockets::Permit;
use super::waiters::{Ticket, Waiters};
use super::{Failure, reply, tcp};
use crate::dns::WireQuestion;

/// How one `tls://` upstream is reached: its TLS settings and its current connection.
pub(super) struct Dot {
    connector: TlsConnector,
    name: ServerName<'static>,
    current: tokio::sync::Mutex<Current>,
}

impl std::fmt::Debug for Dot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dot").field("name", &self.name).finish()
    }
}

#[derive(Default)]
struct Current {
    session: Option<Arc<Session>>,
    /// The last connection attempt's failure and when it ended: the queries that waited for
    /// it share it rather than each trying again.
    failed: Option<(Instant, String)>,
    /// The last handshake failure logged (logged again only when the reason changes).
    logged: Option<String>,
}

impl Dot {
    pub(super) fn new(config: Arc<ClientConfig>, name: ServerName<'static>) -> Dot {
        Dot {
            connector: TlsConnector::from(config),
            name,
            current: tokio::sync::Mutex::new(Current::default()),
        }
    }

    /// One query to `addr` and its reply. A query on a reused connection the upstream closed
    /// under it is asked once more on a fresh connection.
    pub(super) async fn exchange(
        &self,
        addr: SocketAddr,
        request: &[u8],
        question: &WireQuestion,
        expire: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let (session, reused) = self.session(addr, expire).await?;
        match session.ask(request, question).await {
            Err(Failure::Upstream(e)) if reused && !session.is_open() => {
                tracing::debug!(upstream = %addr, error = %e, "reused TLS connection failed: asking on a fresh one");
                let (session, _) = self.session(addr, expire).await?;
                session.ask(request, question).await
            }
            result => result,
        }
    }

    /// The open connection, or a new one (`true`: it was open already). Queries arriving
    /// during a handshake wait for it and share its outcome.
    async fn session(
        &self,
        addr: SocketAddr,
        expire: Duration,
    ) -> Result<(Arc<Session>, bool), Failure> {
        let asked = Instant::now();
        let mut current = self.current.lock().await;
        if let Some(session) = current.session.as_ref().filter(|s| s.is_open()) {
            return Ok((session.clone(), true));
        }
        if let Some((at, e)) = &current.failed
            && *at >= asked
        {
            return Err(Failure::Upstream(e.clone()));
        }
        match self.connect(addr, expire, &mut current).await {
            Ok(session) => {
                current.failed = None;
                current.session = Some(session.clone());
                Ok((session, false))
            }
            Err(failure) => {
                if let Failure::Upstream(e) = &failure {
                    current.failed = Some((Instant::now(), e.clone()));
                }
                Err(failure)
            }
        }
    }

    async fn connect(
        &self,
        addr: SocketAddr,
        expire: Duration,
        current: &mut Current,
    ) -> Result<Arc<Session>, Failure> {
        let tcp::Conn { stream, permit } = tcp::connect(addr).await?;
        let stream = match self.connector.connect(self.name.clone(), stream).await {
            Ok(stream) => stream,
            Err(e) => {
                let e = format!("TLS handshake: {e}");
                if current.logged.as_ref() != Some(&e) {
                    tracing::warn!(upstream = %addr, server_name = ?self.name, error = %e, "cannot connect to upstream over TLS; it counts as failed");
                    current.logged = Some(e.clone());
                }
                return Err(Failure::Upstream(e));
            }
        };
        if current.logged.take().is_some() {
            tracing::info!(upstream = %addr, "TLS connection to upstream established");
        }
        Ok(Session::start(stream, permit, addr, expire))
    }
}

/// One open connection: where queries are queued and replies awaited.
struct Session {
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    waiting: Mutex<Waiting>,
    /// Tells the reader to stop (the writer failed).
    stop: Notify,
}

/// The queries in flight, by ID; `open` false once the connection is done with.
struct Waiting {
    open: bool,
    replies: Waiters<oneshot::Sender<Vec<u8>>>,
}

impl Session {
    fn start(
        stream: TlsStream<TcpStream>,
        permit: Permit,
        addr: SocketAddr,
        expire: Duration,
    ) -> Arc<Session> {
        let (reader, writer) = tokio::io::split(stream);
        let (outgoing, queue) = mpsc::unbounded_channel();
        let session = Arc::new(Session {
            outgoing,
            waiting: Mutex::new(Waiting {
                open: true,
                replies: Waiters::default(),
            }),
            stop: Notify::new(),
        });
        let writing = tokio::spawn(write_queued(writer, queue, Arc::downgrade(&session), addr));
        tokio::spawn(read_replies(
            reader,
            session.clone(),
            writing,
            permit,
            addr,
            expire,
        ));
        session
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_open(&self) -> bool {
        self.waiting().open
    }

    /// Sends `request` with an ID of its own and waits for the reply with that ID.
    async fn ask(&self, request: &[u8], question: &WireQuestion) -> Result<Vec<u8>, Failure> {
        let (reply_to, reply) = oneshot::channel();
        let ticket = self.register(reply_to)?;
        let _forget = Forget(self, ticket);
        let id = ticket.id;
        let len = u16::try_from(request.len())
            .map_err(|_| Failure::Local("query too long for TCP".to_owned()))?;
        let mut frame = Vec::with_capacity(request.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&id.to_be_bytes());
        frame.extend_from_slice(&request[2..]);
        self.outgoing
            .send(frame)
            .map_err(|_| Failure::Upstream("TLS connection closed".to_owned()))?;
        let reply = reply
            .await
            .map_err(|_| Failure::Upstream("TLS connection closed before the reply".to_owned()))?;
        if !reply::belongs_to(&reply, id, question) {
            return Err(Failure::Upstream(
                "reply over TLS does not match the question".to_owned(),
            ));
        }
        Ok(reply)
    }

    /// A random ID no query in flight here has, with where its reply goes.
    fn register(&self, reply_to: oneshot::Sender<Vec<u8>>) -> Result<Ticket, Failure> {
        let mut waiting = self.waiting();
        if !waiting.open {
            return Err(Failure::Upstream("TLS connection closed".to_owned()));
        }
        Ok(waiting.replies.insert(reply_to))
    }

    /// Hands a reply to the query with its ID; `false` when none waits for it.
    fn deliver(&self, message: Vec<u8>) -> bool {
        let Some(id) = message.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            return false;
        };
        match self.waiting().replies.take(id) {
            Some(reply_to) => reply_to.send(message).is_ok(),
            None => false,
        }
    }

    /// No query in flight: closed, and `true`. Checked under the lock queries register under.
    fn close_if_idle(&self) -> bool {
        let mut waiting = self.waiting();
        if waiting.replies.is_empty() {
            waiting.open = false;
        }
        !waiting.open
    }

    /// Closed: the queries in flight fail now.
    fn close(&self) {
        let mut waiting = self.waiting();
        waiting.open = false;
        waiting.replies.drain().for_each(drop);
    }
}

/// Forgets a query's ID however its wait ends (answered, failed, timed out).
struct Forget<'a>(&'a Session, Ticket);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.waiting().replies.forget(self.1);
    }
}

/// Writes the queued queries, each batch in one write, until the session is gone.
async fn write_queued(
    mut writer: WriteHalf<TlsStream<TcpStream>>,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
    session: std::sync::Weak<Session>,
    addr: SocketAddr,
) {
    while let Some(mut batch) = queue.recv().await {
        while let Ok(more) = queue.try_recv() {
            batch.extend_from_slice(&more);
        }
        let written = async {
            writer.write_all(&batch).await?;
            writer.flush().await
        };
        if let Err(e) = written.await {
            tracing::debug!(upstream = %addr, error = %e, "TLS send failed");
            if let Some(session) = session.upgrade() {
                session.close();
                session.stop.notify_one();
            }
            return;
        }
    }
}

/// Reads replies and hands them out until the upstream closes, an error, or `expire` with
/// nothing in flight; then the session closes and the writer stops.
async fn read_replies(
    mut reader: ReadHalf<TlsStream<TcpStream>>,
    session: Arc<Session>,
    writing: tokio::task::JoinHandle<()>,
    _permit: Permit,
    addr: SocketAddr,
    expire: Duration,
) {
    let mut received: Vec<u8> = Vec::with_capacity(4096);
    let mut idle_until = tokio::time::Instant::now() + expire;
    loop {
        while let Some(message) = next_frame(&mut received) {
            if !session.deliver(message) {
                tracing::debug!(upstream = %addr, "ignoring a TLS reply no query waits for");
            }
            idle_until = tokio::time::Instant::now() + expire;
        }
        tokio::select! {
            read = reader.read_buf(&mut received) => match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(upstream = %addr, error = %e, "TLS receive failed");
                    break;
                }
            },
            () = tokio::time::sleep_until(idle_until) => {
                if session.close_if_idle() {
                    break;
                }
                idle_until = tokio::time::Instant::now() + expire;
            }
            () = session.stop.notified() => break,
        }
    }
    session.close();
    writing.abort();
}

/// Takes one length-prefixed message off the front of `received`, when it is all there.
fn next_frame(received: &mut Vec<u8>) -> Option<Vec<u8>> {
    let len = usize::from(u16::from_be_bytes([*received.first()?, *received.get(1)?]));
    if received.len() < 2 + len {
        return None;
    }
    let message = received[2..2 + len].to_vec();
    received.drain(..2 + len);
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole_and_in_order() {
        let mut received = vec![0, 2, 0xaa, 0xbb, 0, 3, 1, 2];
        assert_eq!(next_frame(&mut received), Some(vec![0xaa, 0xbb]));
        assert_eq!(
            next_frame(&mut received),
            None,
            "the second is not all there"
        );
        received.push(3);
        assert_eq!(next_frame(&mut received), Some(vec![1, 2, 3]));
        assert!(received.is_empty());
        assert_eq!(next_frame(&mut received), None);
    }
}
