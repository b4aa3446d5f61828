//! Batched UDP I/O: `recvmmsg` takes every datagram waiting on the socket (up to [`BATCH`]) in
//! one system call and `sendmmsg` sends all their answers in one more. Under load this halves
//! the system calls per query or better; the kernel's UDP path is most of a query's cost.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams taken per `recvmmsg`.
pub const BATCH: usize = 32;
/// Room for one datagram. A query is far smaller (EDNS payload sizes go to 4096); a longer
/// datagram is cut and then fails to parse (FORMERR), as any malformed query does.
pub const SLOT: usize = 4096;

/// Receive buffers for one socket, reused across batches. (The kernel-facing headers hold raw
/// pointers, so they are made per batch and never held across an `.await`.)
pub struct Receiver {
    bufs: Vec<Vec<u8>>,
    /// Length and source of each datagram of the last batch.
    pub received: Vec<(usize, SocketAddr)>,
}

impl Default for Receiver {
    fn default() -> Self {
        Receiver {
            bufs: (0..BATCH).map(|_| vec![0u8; SLOT]).collect(),
            received: Vec::with_capacity(BATCH),
        }
    }
}

fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

impl Receiver {
    /// Waits for datagrams and takes every one waiting (at least one).
    pub async fn receive(&mut self, socket: &UdpSocket) -> std::io::Result<()> {
        loop {
            socket.readable().await?;
            let Receiver { bufs, received } = self;
            let result = socket.try_io(Interest::READABLE, || {
                let mut headers: MultiHeaders<SockaddrStorage> =
                    MultiHeaders::preallocate(BATCH, None);
                let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
                    .iter_mut()
                    .map(|b| [IoSliceMut::new(&mut b[..])])
                    .collect();
                let results = nix::sys::socket::recvmmsg(
                    socket.as_raw_fd(),
                    &mut headers,
                    iovs.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                )
                .map_err(std::io::Error::from)?;
                received.clear();
                for r in results {
                    if let Some(addr) = r.address.as_ref().and_then(to_std) {
                        received.push((r.bytes, addr));
                    }
                }
                Ok(())
            });
            match result {
                Ok(()) if !self.received.is_empty() => return Ok(()),
                Ok(()) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The `i`th datagram of the last batch.
    pub fn datagram(&self, i: usize) -> &[u8] {
        let (len, _) = self.received[i];
        &self.bufs[i][..len.min(SLOT)]
    }
}

/// Answers of one batch, sent together.
#[derive(Default)]
pub struct Sender {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<SocketAddr>,
    used: usize,
}

impl Sender {
    /// A buffer for the next answer (cleared), to be sent to `peer`.
    pub fn next(&mut self, peer: SocketAddr) -> &mut Vec<u8> {
        if self.used == self.bufs.len() {
            self.bufs.push(Vec::with_capacity(512));
            self.addrs.push(peer);
        }
        self.addrs[self.used] = peer;
        let buf = &mut self.bufs[self.used];
        buf.clear();
        self.used += 1;
        buf
    }

    /// The answer at `i` and its destination.
    pub fn get(&self, i: usize) -> (&[u8], SocketAddr) {
        (&self.bufs[i], self.addrs[i])
    }

    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Sends every answer: one `sendmmsg` for as many as the socket takes, then one by one.
    pub async fn flush(&mut self, socket: &UdpSocket) {
        let count = self.used;
        if count == 0 {
            return;
        }
        let mut sent = 0;
        let bufs = &self.bufs[..count];
        let addrs: Vec<Option<SockaddrStorage>> = self.addrs[..count]
            .iter()
            .map(|a| Some(SockaddrStorage::from(*a)))
            .collect();
        let result = socket.try_io(Interest::WRITABLE, || {
            let mut headers: MultiHeaders<SockaddrStorage> = MultiHeaders::preallocate(count, None);
            let iovs: Vec<[IoSlice<'_>; 1]> = bufs.iter().map(|b| [IoSlice::new(b)]).collect();
            let results = nix::sys::socket::sendmmsg(
                socket.as_raw_fd(),
                &mut headers,
                iovs.iter(),
                &addrs,
                [] as [ControlMessage<'_>; 0],
                MsgFlags::MSG_DONTWAIT,
            )
            .map_err(std::io::Error::from)?;
            Ok(results.count())
        });
        if let Ok(n) = result {
            sent = n;
        }
        // What the batch call did not take (a full send buffer, an error on one peer): one by
        // one, waiting as needed.
        for i in sent..count {
            let (buf, peer) = (&self.bufs[i], self.addrs[i]);
            if let Err(e) = socket.send_to(buf, peer).await {
                tracing::debug!(error = %e, %peer, "udp send failed");
            }
        }
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_of_datagrams_is_received_and_answered_together() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        for i in 0..5u8 {
            client.send_to(&[i; 3], to).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rx = Receiver::default();
        rx.receive(&server).await.unwrap();
        assert_eq!(rx.received.len(), 5, "all five in one call");
        let from = client.local_addr().unwrap();
        let mut tx = Sender::default();
        for i in 0..rx.received.len() {
            assert_eq!(rx.received[i].1, from);
            let reply = rx.datagram(i).to_vec();
            tx.next(from).extend_from_slice(&reply);
        }
        tx.flush(&server).await;
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        for _ in 0..5 {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            got.push(buf[..n].to_vec());
        }
        got.sort();
        assert_eq!(got, (0..5u8).map(|i| vec![i; 3]).collect::<Vec<_>>());
    }
}
