//! Queries waiting for their replies on one socket or connection, by message ID.
//!
//! A reply takes its waiter out at once, but the query lets go of its ID only later, when its
//! task runs; meanwhile another query may draw the same ID. So each waiter carries a ticket,
//! and letting go removes the entry only when it is still the same waiter's.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rand::RngExt;

/// A waiter's ID and which registration under that ID it is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    pub id: u16,
    seq: u64,
}

#[derive(Debug)]
pub(super) struct Waiters<V> {
    by_id: HashMap<u16, (u64, V)>,
    registered: u64,
}

impl<V> Default for Waiters<V> {
    fn default() -> Self {
        Waiters {
            by_id: HashMap::new(),
            registered: 0,
        }
    }
}

impl<V> Waiters<V> {
    /// Registers `value` under a random ID no other waiter holds (RFC 5452).
    pub(super) fn insert(&mut self, value: V) -> Ticket {
        self.registered += 1;
        let seq = self.registered;
        let mut rng = rand::rng();
        loop {
            let id: u16 = rng.random();
            if let Entry::Vacant(slot) = self.by_id.entry(id) {
                slot.insert((seq, value));
                return Ticket { id, seq };
            }
        }
    }

    pub(super) fn get(&self, id: u16) -> Option<&V> {
        self.by_id.get(&id).map(|(_, v)| v)
    }

    /// Takes the waiter of `id` out (its reply came).
    pub(super) fn take(&mut self, id: u16) -> Option<V> {
        self.by_id.remove(&id).map(|(_, v)| v)
    }

    /// Lets go of `ticket`'s registration, if it is still there.
    pub(super) fn forget(&mut self, ticket: Ticket) {
        if let Entry::Occupied(entry) = self.by_id.entry(ticket.id)
            && entry.get().0 == ticket.seq
        {
            entry.remove();
        }
    }

    /// Takes every waiter out.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = V> + '_ {
        self.by_id.drain().map(|(_, (_, v))| v)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_forget_leaves_a_newer_waiter_with_the_same_id() {
        let mut waiters = Waiters::default();
        let first = waiters.insert("first");
        assert_eq!(waiters.take(first.id), Some("first"));
        // Another query draws the same ID before the first lets go of it.
        waiters.by_id.insert(first.id, (99, "second"));
        waiters.forget(first);
        assert_eq!(waiters.get(first.id), Some(&"second"));
        waiters.forget(Ticket {
            id: first.id,
            seq: 99,
        });
        assert!(waiters.is_empty());
    }

    #[test]
    fn ids_are_distinct_among_waiters() {
        let mut waiters = Waiters::default();
        let ids: std::collections::HashSet<u16> = (0..1000).map(|i| waiters.insert(i).id).collect();
        assert_eq!(ids.len(), 1000);
    }
}
