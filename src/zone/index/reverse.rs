//! Address → PTR owners, one map per address family.
//!
//! Every ready endpoint and ClusterIP has an entry, so this is the index's largest table (at
//! 50k Services / 500k endpoints, 31% of the heap when keyed by `IpAddr`). An `IpAddr` key is 17
//! bytes and pads each bucket to 56; an IPv4 address as a `u32` makes it 40, and IPv6 addresses
//! (`u128`) live in their own map.

use std::net::IpAddr;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::{PtrOwner, PtrOwners};

#[derive(Debug, Default)]
pub(super) struct ReverseMap {
    v4: DashMap<u32, PtrOwners>,
    v6: DashMap<u128, PtrOwners>,
}

impl ReverseMap {
    /// Calls `f` with the owners of `ip` (under a shard read lock).
    pub(super) fn with<R>(&self, ip: IpAddr, f: impl FnOnce(&[PtrOwner]) -> R) -> R {
        match ip {
            IpAddr::V4(v4) => match self.v4.get(&u32::from(v4)) {
                Some(owners) => f(owners.value()),
                None => f(&[]),
            },
            IpAddr::V6(v6) => match self.v6.get(&u128::from(v6)) {
                Some(owners) => f(owners.value()),
                None => f(&[]),
            },
        }
    }

    /// Replaces `service`'s owners at `ip` by `owners`, under that address's shard lock.
    pub(super) fn replace(&self, ip: IpAddr, service: &str, owners: &[PtrOwner]) {
        match ip {
            IpAddr::V4(v4) => replace_in(&self.v4, u32::from(v4), service, owners),
            IpAddr::V6(v6) => replace_in(&self.v6, u128::from(v6), service, owners),
        }
    }

    /// Takes `service` off `ip`, and the address out when nobody owns it any more.
    pub(super) fn release(&self, ip: IpAddr, service: &str) {
        match ip {
            IpAddr::V4(v4) => release_in(&self.v4, u32::from(v4), service),
            IpAddr::V6(v6) => release_in(&self.v6, u128::from(v6), service),
        }
    }

    /// Owners at every address together.
    #[cfg(test)]
    pub(super) fn owner_count(&self) -> usize {
        self.v4.iter().map(|e| e.value().len()).sum::<usize>()
            + self.v6.iter().map(|e| e.value().len()).sum::<usize>()
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

fn replace_in<K: Eq + std::hash::Hash>(
    map: &DashMap<K, PtrOwners>,
    key: K,
    service: &str,
    owners: &[PtrOwner],
) {
    let mut entry = map.entry(key).or_default();
    let list = entry.value_mut();
    list.retain(|o| o.service() != service);
    list.extend(owners.iter().cloned());
    list.sort();
}

fn release_in<K: Eq + std::hash::Hash>(map: &DashMap<K, PtrOwners>, key: K, service: &str) {
    if let Entry::Occupied(mut entry) = map.entry(key) {
        entry.get_mut().retain(|o| o.service() != service);
        if entry.get().is_empty() {
            entry.remove();
        }
    }
}
