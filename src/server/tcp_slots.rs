//! TCP connection slots of a listener: at most `total` connections at once, and at most a
//! quarter of them (at least one) per client address (/32 for IPv4, /64 for IPv6), so a few
//! clients that open connections and never read cannot take TCP away from everyone else.

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
            per_client: (total / 4).max(1),
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

    #[tokio::test]
    async fn a_client_holds_at_most_a_quarter_and_gets_its_slots_back() {
        let slots = TcpSlots::new(8);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(
                slots
                    .take(a, slots.free().await.unwrap())
                    .expect("within the share"),
            );
        }
        assert!(
            slots.take(a, slots.free().await.unwrap()).is_none(),
            "a third"
        );
        assert!(
            slots.take(b, slots.free().await.unwrap()).is_some(),
            "another client"
        );
        held.pop();
        assert!(
            slots.take(a, slots.free().await.unwrap()).is_some(),
            "one given back"
        );
        let v6a: IpAddr = "fd00::1".parse().unwrap();
        let v6b: IpAddr = "fd00::2".parse().unwrap();
        let _x = slots.take(v6a, slots.free().await.unwrap()).unwrap();
        let _y = slots.take(v6b, slots.free().await.unwrap()).unwrap();
        assert!(
            slots.take(v6a, slots.free().await.unwrap()).is_none(),
            "one /64 is one client"
        );
    }
}
