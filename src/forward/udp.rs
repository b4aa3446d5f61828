//! One query over UDP, retransmitted within its deadline.
//!
//! Each attempt goes out on one of its upstream's pooled sockets (`pool.rs`: a random socket
//! on a random port, another than the query's earlier attempts to that upstream used) with a
//! fresh random ID (RFC 5452). An attempt unanswered after its window (250 ms, then doubling)
//! is followed by the next one, to the next upstream of the query's order or to the same one
//! when there is one; the previous attempt stays open (at most [`OPEN_PER_QUERY`] are), so a
//! late answer to it still counts. A reply counts only when its ID and question match its
//! attempt's.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::pool::{Delivery, Lease};
use super::sockets::classify;
use super::{Failure, Upstream};
use crate::dns::WireQuestion;

/// How long the first attempt waits before the next is sent; each later window doubles.
pub(super) const FIRST_WINDOW: Duration = Duration::from_millis(250);
/// Attempts of one query open at once: with windows of 250 ms, 500 ms, 1 s, 2 s, every attempt
/// of a query within the default 2 s timeout stays open, so a slow upstream's answer to the
/// first datagram still counts when it comes after the third retransmission.
const OPEN_PER_QUERY: usize = 4;

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

/// One datagram out, waiting on its pooled socket.
struct Attempt {
    reply: oneshot::Receiver<Delivery>,
    lease: Lease,
    upstream: Arc<Upstream>,
    sent: Instant,
    /// Told to the observer as unanswered already.
    reported: bool,
}

impl Attempt {
    async fn send(
        upstream: &Arc<Upstream>,
        request: &[u8],
        question: &WireQuestion,
        open: &VecDeque<Attempt>,
    ) -> Result<Attempt, Failure> {
        // Another socket (another port) than the query's open attempts to it use.
        let avoid: smallvec::SmallVec<[usize; OPEN_PER_QUERY]> = open
            .iter()
            .filter(|a| Arc::ptr_eq(&a.upstream, upstream))
            .map(|a| a.lease.slot)
            .collect();
        let (lease, reply) = upstream.udp.send(request, question, &avoid).await?;
        Ok(Attempt {
            reply,
            lease,
            upstream: upstream.clone(),
            sent: Instant::now(),
            reported: false,
        })
    }

    fn report(&mut self, observer: &dyn Observer) {
        if !self.reported {
            self.reported = true;
            observer.unanswered(&self.upstream);
        }
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
                got = delivered(&mut self.open) => Some(got),
                () = tokio::time::sleep_until(wake.into()) => None,
            };
            if let Some(answer) = ready.and_then(|(i, got)| self.receive(i, got)) {
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
        match Attempt::send(upstream, self.request, self.question, &self.open).await {
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

    /// Handles what came for an open attempt: its reply, or its failure (an ICMP error: the
    /// next attempt goes out at once when an upstream is still untried).
    fn receive(&mut self, i: usize, got: Delivery) -> Option<Answer> {
        match got {
            Ok(reply) => {
                let attempt = &self.open[i];
                Some(Answer {
                    reply,
                    upstream: attempt.upstream.clone(),
                    rtt: attempt.sent.elapsed(),
                })
            }
            Err(errno) => {
                let mut attempt = self.open.remove(i)?;
                attempt.report(self.observer);
                let failure = classify("udp receive", &io::Error::from_raw_os_error(errno));
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

/// Resolves to the index of an open attempt and what came for it; never while none is open.
async fn delivered(open: &mut VecDeque<Attempt>) -> (usize, Delivery) {
    if open.is_empty() {
        return std::future::pending().await;
    }
    let waits = open.iter_mut().map(|attempt| &mut attempt.reply);
    let (got, index, _) = futures_util::future::select_all(waits).await;
    // A closed channel: the socket's reader ended without an answer for it.
    (index, got.unwrap_or(Err(libc::EPIPE)))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::net::UdpSocket;

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

    #[tokio::test]
    async fn a_port_nobody_listens_on_fails_at_once() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let up = Arc::new(Upstream::new(closed.local_addr().unwrap()));
        drop(closed);
        let (request, question) = probe();
        let start = Instant::now();
        let deadline = start + Duration::from_secs(5);
        let failure = exchange(&[up], &request, &question, deadline, FIRST_WINDOW, &())
            .await
            .expect_err("nobody answers");
        assert!(matches!(failure, Failure::Upstream(_)), "{failure}");
        assert!(start.elapsed() < FIRST_WINDOW, "took {:?}", start.elapsed());
    }

    #[tokio::test]
    async fn queries_share_the_upstreams_pooled_sockets() {
        let (up, task) = upstream(Some).await;
        let (request, question) = probe();
        let queries = 300;
        for _ in 0..queries {
            let deadline = Instant::now() + Duration::from_secs(2);
            exchange(
                std::slice::from_ref(&up),
                &request,
                &question,
                deadline,
                FIRST_WINDOW,
                &(),
            )
            .await
            .expect("answered");
        }
        drop(up);
        let seen = task.await.unwrap();
        assert_eq!(seen.len(), queries);
        let ports: std::collections::HashSet<u16> =
            seen.iter().map(|(_, from)| from.port()).collect();
        let ids: std::collections::HashSet<[u8; 2]> =
            seen.iter().map(|(m, _)| [m[0], m[1]]).collect();
        // Not a socket per query, but several (the spread an off-path guesser faces).
        assert!(
            ports.len() <= super::super::pool::SOCKETS,
            "{} ports",
            ports.len()
        );
        assert!(ports.len() >= 8, "{} ports", ports.len());
        assert!(
            ids.len() > queries * 9 / 10,
            "IDs repeat: {} distinct",
            ids.len()
        );
    }
}
