//! TCP connection slots of a listener: at most `total` connections at once, and at most a
//! quarter of them per client address (/32 for IPv4, /64 for IPv6), so a few clients that open
//! connections and never read cannot take TCP away from everyone else. A client may always
//! hold four (or `total`, when smaller): a tiny limit is the operator's choice.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub struct TcpSlots {
    total: Arc<Semaphore>,
    per_client: usize,
    /// Connections held per client prefix (entries with none are removed).
    held: Mutex<HashMap<u128, usize>>,
}

/// One connection's slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<TcpSlots>,
    client: u128,
    _permit: OwnedSemaphorePermit,
}

impl TcpSlots {
    pub fn new(total: usize) -> Arc<TcpSlots> {
        let total = total.max(1);
        Arc::new(TcpSlots {
            total: Arc::new(Semaphore::new(total)),
            per_client: (total / 4).max(total.min(4)),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for a free slot overall (the accept loop waits here, so the excess stays in the
    /// kernel's accept queue).
    pub async fn free(&self) -> Option<OwnedSemaphorePermit> {
        self.total.clone().acquire_owned().await.ok()
    }

    /// Takes the slot `permit` for a connection from `ip`; `None` when that client already
    /// holds its share (the connection is closed at once).
    pub fn take(self: &Arc<Self>, ip: IpAddr, permit: OwnedSemaphorePermit) -> Option<Slot> {
        let client = prefix(ip);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(client).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            client,
            _permit: permit,
        })
    }

    pub fn per_client(&self) -> usize {
        self.per_client
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

/// The client's address as a key: the IPv4 address, or the IPv6 /64 (a host's addresses).
fn prefix(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => (u128::from(v6) >> 64) | (1 << 127),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn take(slots: &Arc<TcpSlots>, ip: &str) -> Option<Slot> {
        slots.take(ip.parse().unwrap(), slots.free().await.unwrap())
    }

    #[tokio::test]
    async fn a_client_holds_at_most_a_quarter_and_gets_its_slots_back() {
        let slots = TcpSlots::new(32);
        assert_eq!(slots.per_client(), 8);
        assert_eq!(
            TcpSlots::new(3).per_client(),
            3,
            "a tiny limit is one client's"
        );
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(take(&slots, "127.0.0.2").await.expect("within the share"));
        }
        assert!(take(&slots, "127.0.0.2").await.is_none(), "a ninth");
        assert!(take(&slots, "127.0.0.3").await.is_some(), "another client");
        held.pop();
        assert!(take(&slots, "127.0.0.2").await.is_some(), "one given back");
        let mut v6 = Vec::new();
        for _ in 0..7 {
            v6.push(take(&slots, "fd00::1").await.unwrap());
        }
        v6.push(take(&slots, "fd00::2").await.unwrap());
        assert!(
            take(&slots, "fd00::1").await.is_none(),
            "one /64 is one client"
        );
    }
}
