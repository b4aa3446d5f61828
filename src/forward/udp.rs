//! One query over UDP, retransmitted within its deadline.
//!
//! Each attempt is a fresh socket (a fresh random source port, connected so the kernel drops
//! datagrams from other addresses) and a fresh random ID (RFC 5452). An attempt unanswered
//! after its window (250 ms, then doubling) is followed by the next one, to the next upstream
//! of the query's order or to the same one when there is one; the previous attempt stays open
//! (at most [`OPEN_PER_QUERY`] are), so a late answer to it still counts. A reply counts only
//! when its ID and question match its attempt's. Datagrams are read into one 64 KiB buffer per
//! thread and only the reply's length is copied out.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::sockets::{Permit, classify};
use super::{Failure, Upstream, fresh_id, reply};
use crate::dns::WireQuestion;

/// How long the first attempt waits before the next is sent; each later window doubles.
pub(super) const FIRST_WINDOW: Duration = Duration::from_millis(250);
/// Attempts of one query open at once: with windows of 250 ms, 500 ms, 1 s, 2 s, every attempt
/// of a query within the default 2 s timeout stays open, so a slow upstream's answer to the
/// first datagram still counts when it comes after the third retransmission.
const OPEN_PER_QUERY: usize = 4;
/// The largest UDP payload.
const RECEIVE_BUFFER: usize = 65535;

thread_local! {
    static RECEIVE: RefCell<Box<[u8]>> = RefCell::new(vec![0; RECEIVE_BUFFER].into_boxed_slice());
}

/// What the exchange tells its caller as it goes.
pub(super) trait Observer: Sync {
    /// An attempt went out to `upstream`.
    fn sent(&self, _upstream: &Upstream) {}
    /// An attempt to `upstream` got no answer within its window, or failed.
    fn unanswered(&self, _upstream: &Arc<Upstream>) {}
}

impl Observer for () {}

/// A matching reply and who sent it.
#[derive(Debug)]
pub(super) struct Answer {
    pub reply: Vec<u8>,
    pub upstream: Arc<Upstream>,
    /// From the answered attempt's send to its reply.
    pub rtt: Duration,
}

/// One datagram out, on its own socket.
struct Attempt {
    socket: UdpSocket,
    id: u16,
    upstream: Arc<Upstream>,
    sent: Instant,
    /// Told to the observer as unanswered already.
    reported: bool,
    _permit: Permit,
}

impl Attempt {
    async fn send(upstream: &Arc<Upstream>, request: &[u8]) -> Result<Attempt, Failure> {
        let permit = Permit::take()?;
        let addr = upstream.addr;
        let any: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        // Creating and binding a socket involves only this host.
        let socket = UdpSocket::bind(any)
            .await
            .map_err(|e| Failure::Local(format!("udp socket: {e}")))?;
        socket
            .connect(addr)
            .await
            .map_err(|e| classify("udp connect", &e))?;
        let (id, message) = fresh_id(request);
        socket
            .send(&message)
            .await
            .map_err(|e| classify("udp send", &e))?;
        Ok(Attempt {
            socket,
            id,
            upstream: upstream.clone(),
            sent: Instant::now(),
            reported: false,
            _permit: permit,
        })
    }

    fn report(&mut self, observer: &dyn Observer) {
        if !self.reported {
            self.reported = true;
            observer.unanswered(&self.upstream);
        }
    }

    /// Reads one waiting datagram: `Some` when it is the reply to this attempt.
    fn read(&self, question: &WireQuestion) -> io::Result<Option<Vec<u8>>> {
        // A pending ICMP error (port unreachable): tokio's try_recv only reads on readable
        // readiness, which an error alone does not give.
        if let Some(error) = self.socket.take_error()? {
            return Err(error);
        }
        RECEIVE.with_borrow_mut(|buf| {
            let len = self.socket.try_recv(buf)?;
            let datagram = &buf[..len];
            if reply::belongs_to(datagram, self.id, question) {
                return Ok(Some(datagram.to_vec()));
            }
            // A reply with the wrong ID or question is a spoofing attempt or a stale answer.
            tracing::debug!(upstream = %self.upstream.addr, "ignoring a reply that does not match the query");
            Ok(None)
        })
    }
}

/// Sends `request` to `targets` in turn (round the list again when it ends) until one of the
/// open attempts is answered or `deadline` passes. `first_window` at or past the deadline
/// means one datagram only.
pub(super) async fn exchange(
    targets: &[Arc<Upstream>],
    request: &[u8],
    question: &WireQuestion,
    deadline: Instant,
    first_window: Duration,
    observer: &dyn Observer,
) -> Result<Answer, Failure> {
    Exchange {
        targets,
        request,
        question,
        deadline,
        observer,
        open: VecDeque::with_capacity(OPEN_PER_QUERY),
        made: 0,
        window: first_window,
        resend_at: Instant::now(),
        last: Failure::Upstream("no attempt made".to_owned()),
        refused_by_all: false,
    }
    .run()
    .await
}

struct Exchange<'a> {
    targets: &'a [Arc<Upstream>],
    request: &'a [u8],
    question: &'a WireQuestion,
    deadline: Instant,
    observer: &'a dyn Observer,
    open: VecDeque<Attempt>,
    /// Attempts made so far (the next goes to `targets[made % len]`).
    made: usize,
    /// The next attempt's window.
    window: Duration,
    resend_at: Instant,
    last: Failure,
    /// Every upstream was tried and the last open attempt failed at once (an ICMP error such
    /// as port unreachable): nobody is there to answer, so the exchange ends now rather than
    /// at the timeout, as CoreDNS's forward does.
    refused_by_all: bool,
}

impl Exchange<'_> {
    async fn run(mut self) -> Result<Answer, Failure> {
        if self.targets.is_empty() {
            return Err(self.last);
        }
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                return Err(self.timed_out());
            }
            if now >= self.resend_at {
                self.send_next(now).await?;
            }
            let wake = self.resend_at.min(self.deadline);
            let ready = tokio::select! {
                i = readable(&self.open) => Some(i),
                () = tokio::time::sleep_until(wake.into()) => None,
            };
            if let Some(answer) = ready.and_then(|i| self.receive(i)) {
                return Ok(answer);
            }
            if self.refused_by_all {
                return Err(self.last);
            }
        }
    }

    /// The previous attempts' windows are over: they count as unanswered (they stay open) and
    /// the next attempt goes out. A local failure with nothing open ends the exchange.
    async fn send_next(&mut self, now: Instant) -> Result<(), Failure> {
        for attempt in &mut self.open {
            attempt.report(self.observer);
        }
        let upstream = &self.targets[self.made % self.targets.len()];
        self.made += 1;
        self.resend_at = (now + self.window).min(self.deadline);
        self.window = self.window.saturating_mul(2);
        if self.open.len() == OPEN_PER_QUERY {
            self.open.pop_front();
        }
        match Attempt::send(upstream, self.request).await {
            Ok(attempt) => {
                self.observer.sent(upstream);
                self.open.push_back(attempt);
            }
            Err(Failure::Local(e)) if self.open.is_empty() => return Err(Failure::Local(e)),
            Err(failure) => {
                if let Failure::Upstream(_) = failure {
                    self.observer.unanswered(upstream);
                }
                tracing::debug!(upstream = %upstream.addr, error = %failure, "upstream attempt failed");
                self.last = failure;
                self.next_at_once();
            }
        }
        Ok(())
    }

    /// Handles a readable attempt: its reply, a datagram to ignore, or its failure (an ICMP
    /// error: the next attempt goes out at once when an upstream is still untried).
    fn receive(&mut self, i: usize) -> Option<Answer> {
        match self.open[i].read(self.question) {
            Ok(Some(reply)) => {
                let attempt = &self.open[i];
                Some(Answer {
                    reply,
                    upstream: attempt.upstream.clone(),
                    rtt: attempt.sent.elapsed(),
                })
            }
            Ok(None) => None,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => {
                let mut attempt = self.open.remove(i)?;
                attempt.report(self.observer);
                let failure = classify("udp receive", &e);
                tracing::debug!(upstream = %attempt.upstream.addr, error = %failure, "upstream attempt failed");
                self.last = failure;
                if self.open.is_empty() {
                    self.refused_by_all = self.made >= self.targets.len();
                    self.next_at_once();
                }
                None
            }
        }
    }

    /// After a failure that came at once: while some upstream is untried, try it now.
    fn next_at_once(&mut self) {
        if self.made < self.targets.len() {
            self.resend_at = Instant::now();
        }
    }

    fn timed_out(mut self) -> Failure {
        for attempt in &mut self.open {
            attempt.report(self.observer);
        }
        if self.open.is_empty() {
            return self.last;
        }
        Failure::Upstream(format!(
            "no reply to {} attempt(s) within the timeout",
            self.made
        ))
    }
}

/// Resolves to the index of an open attempt with a datagram or an error waiting; never while
/// none is open. Errors are asked for too: an ICMP port unreachable only raises EPOLLERR, which
/// readable-only readiness never reports.
async fn readable(open: &VecDeque<Attempt>) -> usize {
    if open.is_empty() {
        return std::future::pending().await;
    }
    let interest = Interest::READABLE | Interest::ERROR;
    let waits = open
        .iter()
        .map(|attempt| Box::pin(attempt.socket.ready(interest)));
    let (_, index, _) = futures_util::future::select_all(waits).await;
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{query, rtype};

    /// A loopback upstream: on its datagram number `n`, answers datagram `answer(n)`, if any.
    /// The task ends 3 s after the last datagram, with every datagram and its source.
    async fn upstream(
        answer: impl Fn(usize) -> Option<usize> + Send + 'static,
    ) -> (
        Arc<Upstream>,
        tokio::task::JoinHandle<Vec<(Vec<u8>, SocketAddr)>>,
    ) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let upstream = Arc::new(Upstream::new(socket.local_addr().unwrap()));
        let task = tokio::spawn(async move {
            let mut seen: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
            let mut buf = [0u8; 512];
            while let Ok(Ok((len, peer))) =
                tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buf)).await
            {
                seen.push((buf[..len].to_vec(), peer));
                if let Some(i) = answer(seen.len() - 1) {
                    let (request, to) = &seen[i];
                    let mut reply = request.clone();
                    reply[2] |= 0x80; // QR
                    socket.send_to(&reply, to).await.unwrap();
                }
            }
            seen
        });
        (upstream, task)
    }

    fn probe() -> (Vec<u8>, WireQuestion) {
        let request = query::build("www.example.org", rtype::A, None).unwrap();
        let question = WireQuestion::of(&request).unwrap();
        (request, question)
    }

    #[tokio::test]
    async fn a_lost_datagram_is_sent_again_with_a_fresh_id_and_port() {
        // Drops the first datagram, answers the second.
        let (up, task) = upstream(|n| (n == 1).then_some(1)).await;
        let (request, question) = probe();
        let deadline = Instant::now() + Duration::from_secs(2);
        let answer = exchange(&[up], &request, &question, deadline, FIRST_WINDOW, &())
            .await
            .expect("answered");
        assert!(answer.rtt < FIRST_WINDOW);
        let seen = task.await.unwrap();
        assert_eq!(seen.len(), 2, "one retransmission");
        assert_ne!(seen[0].1.port(), seen[1].1.port(), "a fresh source port");
        assert_eq!(answer.reply[..2], seen[1].0[..2], "the reply to the second");
    }

    #[tokio::test]
    async fn a_late_answer_to_the_first_attempt_still_counts() {
        // Answers the first datagram only when the second arrives.
        let (up, task) = upstream(|n| (n == 1).then_some(0)).await;
        let (request, question) = probe();
        let deadline = Instant::now() + Duration::from_secs(2);
        let answer = exchange(&[up], &request, &question, deadline, FIRST_WINDOW, &())
            .await
            .expect("answered");
        let seen = task.await.unwrap();
        assert_eq!(answer.reply[..2], seen[0].0[..2], "the reply to the first");
    }

    #[tokio::test]
    async fn nothing_answered_fails_at_the_deadline_after_growing_windows() {
        let (up, task) = upstream(|_| None).await;
        let (request, question) = probe();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(1200);
        let failure = exchange(&[up], &request, &question, deadline, FIRST_WINDOW, &())
            .await
            .expect_err("no answer");
        assert!(matches!(failure, Failure::Upstream(_)), "{failure}");
        assert!(start.elapsed() >= Duration::from_millis(1200));
        // Sent at 0, 250 and 750 ms.
        assert_eq!(task.await.unwrap().len(), 3);
    }
}
