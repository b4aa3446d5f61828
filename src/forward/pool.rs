//! The UDP sockets of one upstream, shared by its queries (RFC 5452's protections kept).
//!
//! An upstream has up to [`SOCKETS`] connected sockets, each bound to a port the kernel picks
//! at random, made when first needed. An attempt takes a random one (another than the query's
//! earlier attempts to this upstream took), a random ID not waiting on it, and waits for its
//! reply on a channel. One reader task per socket takes every datagram waiting when it is
//! readable and hands each to the attempt whose ID and question it matches; anything else is
//! dropped. A socket that has carried [`USES`] queries or lived [`MAX_AGE`] is retired: the
//! next attempt makes a fresh one (a fresh random port), and the old one closes once its last
//! waiting attempt is done. No socket, task or descriptor is made per query.
//!
//! Off-path spoofing must guess the ID (16 bits) and which of the upstream's open ports the
//! query left from; the ports move every [`USES`] queries.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::RngExt;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, oneshot};

use super::sockets::{Permit, classify};
use super::waiters::{Ticket, Waiters};
use super::{Failure, reply};
use crate::dns::WireQuestion;

/// Sockets per upstream at most.
pub(super) const SOCKETS: usize = 32;
/// Queries one socket carries before it is retired.
const USES: u32 = 256;
/// How long one socket is used at most.
const MAX_AGE: Duration = Duration::from_secs(30);
/// The largest UDP payload.
const RECEIVE_BUFFER: usize = 65535;

thread_local! {
    static RECEIVE: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; RECEIVE_BUFFER].into_boxed_slice());
}

/// What a waiting attempt gets: its reply, or the error the socket reported (an ICMP error
/// such as port unreachable, for every attempt waiting on it) as its errno, so a local one
/// (no buffer, no memory) is not blamed on the upstream.
pub(super) type Delivery = Result<Vec<u8>, i32>;

/// One upstream's sockets.
#[derive(Debug)]
pub(super) struct Pool {
    addr: SocketAddr,
    slots: Box<[Mutex<Option<Arc<Shared>>>]>,
}

/// One socket and the attempts waiting on it.
#[derive(Debug)]
struct Shared {
    socket: UdpSocket,
    waiting: Mutex<Waiters<Waiter>>,
    /// Attempts sent on it so far.
    uses: AtomicU32,
    made: Instant,
    /// No new attempt goes out on it; the reader ends once nobody waits.
    retired: AtomicBool,
    /// Wakes the reader to check whether it can end.
    closing: Notify,
    _permit: Permit,
}

#[derive(Debug)]
struct Waiter {
    question: WireQuestion,
    reply_to: oneshot::Sender<Delivery>,
}

/// An attempt's place on a socket: its ID stays reserved until this is dropped.
#[derive(Debug)]
pub(super) struct Lease {
    shared: Arc<Shared>,
    pub slot: usize,
    ticket: Ticket,
}

impl Pool {
    pub(super) fn new(addr: SocketAddr) -> Pool {
        Pool {
            addr,
            slots: (0..SOCKETS).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Sends `request` with a fresh ID on a socket of a slot not in `avoid`; the reply comes
    /// on the returned receiver.
    pub(super) async fn send(
        &self,
        request: &[u8],
        question: &WireQuestion,
        avoid: &[usize],
    ) -> Result<(Lease, oneshot::Receiver<Delivery>), Failure> {
        let slot = pick_slot(avoid);
        let (reply_to, reply) = oneshot::channel();
        let waiter = Waiter {
            question: question.clone(),
            reply_to,
        };
        let (shared, ticket) = self.wait_in(slot, waiter)?;
        let lease = Lease {
            shared,
            slot,
            ticket,
        };
        let message = super::with_id(request, ticket.id);
        lease
            .shared
            .socket
            .send(&message)
            .await
            .map_err(|e| classify("udp send", &e))?;
        Ok((lease, reply))
    }

    /// Registers `waiter` on the socket of `slot` (a fresh one when it has none or its own
    /// is used up), under the slot's lock: a socket is never retired, and its reader never
    /// ends, between being picked and being waited on.
    fn wait_in(&self, slot: usize, waiter: Waiter) -> Result<(Arc<Shared>, Ticket), Failure> {
        let mut current = lock(&self.slots[slot]);
        let shared = match current.as_ref() {
            Some(shared) if shared.usable() => shared.clone(),
            _ => {
                let fresh = Shared::open(self.addr)?;
                if let Some(old) = current.replace(fresh.clone()) {
                    old.retire();
                }
                tokio::spawn(read(fresh.clone()));
                fresh
            }
        };
        let ticket = lock(&shared.waiting).insert(waiter);
        Ok((shared, ticket))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Some(shared) = lock(slot).take() {
                shared.retire();
            }
        }
    }
}

/// A random slot not in `avoid` (when there is one).
fn pick_slot(avoid: &[usize]) -> usize {
    let mut rng = rand::rng();
    loop {
        let slot = rng.random_range(0..SOCKETS);
        if !avoid.contains(&slot) || avoid.len() >= SOCKETS {
            return slot;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn open(addr: SocketAddr) -> Result<Arc<Shared>, Failure> {
        let permit = Permit::take()?;
        let any: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        // Creating and binding a socket involves only this host; connecting makes the kernel
        // drop datagrams from any other address.
        let socket = std::net::UdpSocket::bind(any)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| Failure::Local(format!("udp socket: {e}")))?;
        socket
            .connect(addr)
            .map_err(|e| classify("udp connect", &e))?;
        let socket =
            UdpSocket::from_std(socket).map_err(|e| Failure::Local(format!("udp socket: {e}")))?;
        Ok(Arc::new(Shared {
            socket,
            waiting: Mutex::default(),
            uses: AtomicU32::new(0),
            made: Instant::now(),
            retired: AtomicBool::new(false),
            closing: Notify::new(),
            _permit: permit,
        }))
    }

    /// Counts one more query on it: `false` once it is retired, used up or too old.
    fn usable(&self) -> bool {
        let uses = self.uses.fetch_add(1, Ordering::Relaxed);
        !self.retired.load(Ordering::Relaxed) && uses < USES && self.made.elapsed() < MAX_AGE
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.closing.notify_one();
    }

    /// Retired and nobody waiting: the reader can end.
    fn done(&self) -> bool {
        self.retired.load(Ordering::Relaxed) && lock(&self.waiting).is_empty()
    }

    /// Hands every datagram waiting on the socket to its attempt. `Err` when the socket
    /// failed for good.
    fn drain(&self) -> io::Result<()> {
        // A pending ICMP error (port unreachable) is not readable readiness: ask for it, then
        // clear the error readiness (tokio keeps it until an operation says WouldBlock, and
        // the reader would spin).
        if let Some(error) = self.socket.take_error()? {
            self.fail_all(&error);
        }
        let _ = self.socket.try_io(Interest::ERROR, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
        RECEIVE.with_borrow_mut(|buf| {
            loop {
                match self.socket.try_recv(buf) {
                    Ok(len) => self.deliver(&buf[..len]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if is_transient(&e) => self.fail_all(&e),
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn deliver(&self, datagram: &[u8]) {
        if datagram.len() < 2 {
            return;
        }
        let id = u16::from_be_bytes([datagram[0], datagram[1]]);
        let mut waiting = lock(&self.waiting);
        let matches = waiting
            .get(id)
            .is_some_and(|w| reply::belongs_to(datagram, id, &w.question));
        let waiter = if matches { waiting.take(id) } else { None };
        match waiter {
            // The attempt may have ended meanwhile; then nobody wants it.
            Some(waiter) => drop(waiter.reply_to.send(Ok(datagram.to_vec()))),
            // A spoofing attempt, or a late answer to an attempt that is gone.
            None => {
                tracing::debug!(addr = ?self.socket.peer_addr().ok(), "ignoring a reply that does not match a query")
            }
        }
    }

    fn fail_all(&self, error: &io::Error) {
        let errno = error.raw_os_error().unwrap_or(libc::EIO);
        for waiter in lock(&self.waiting).drain() {
            let _ = waiter.reply_to.send(Err(errno));
        }
    }
}

/// Errors a connected UDP socket reports for one earlier datagram (ICMP), after which it
/// works again.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ENETDOWN
        )
    )
}

/// The socket's reader: until it is retired and nobody waits.
async fn read(shared: Arc<Shared>) {
    let interest = Interest::READABLE | Interest::ERROR;
    loop {
        tokio::select! {
            ready = shared.socket.ready(interest) => {
                let result = ready.and_then(|_| shared.drain());
                if let Err(e) = result {
                    tracing::warn!(error = %e, "upstream socket failed; replacing it");
                    shared.retired.store(true, Ordering::Relaxed);
                    shared.fail_all(&e);
                    return;
                }
            }
            () = shared.closing.notified() => {}
        }
        if shared.done() {
            return;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut waiting = lock(&self.shared.waiting);
        waiting.forget(self.ticket);
        if waiting.is_empty() && self.shared.retired.load(Ordering::Relaxed) {
            self.shared.closing.notify_one();
        }
    }
}
