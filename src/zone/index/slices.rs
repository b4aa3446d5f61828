//! EndpointSlices as the entries of the objects they are labelled with use them: a Service's
//! (`kubernetes.io/service-name`) or a ServiceImport's (`multicluster`), each kept apart.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::model::ObjectKey;
use crate::zone::records::SliceEntry;

#[derive(Debug, Default)]
pub(super) struct SliceLinks {
    /// Each slice as its owner's entry uses it (the slice itself is not kept).
    slices: HashMap<ObjectKey, Arc<SliceEntry>>,
    /// Owner key → names of the slices labelled with it.
    /// A sorted `Vec`, not a `BTreeSet`: nearly every Service has one slice, and a B-tree node
    /// costs ~300 bytes even for one name.
    slices_of: HashMap<ObjectKey, Vec<Box<str>>>,
}

impl SliceLinks {
    pub(super) fn keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.slices.keys()
    }

    pub(super) fn contains(&self, key: &ObjectKey) -> bool {
        self.slices.contains_key(key)
    }

    /// The names of the slices labelled with `owner`, sorted.
    pub(super) fn names_of(&self, owner: &ObjectKey) -> &[Box<str>] {
        self.slices_of.get(owner).map_or(&[], Vec::as_slice)
    }

    /// The entries of the slices labelled with `owner`, in name order.
    pub(super) fn entries_of(&self, owner: &ObjectKey) -> Vec<Arc<SliceEntry>> {
        self.names_of(owner)
            .iter()
            .filter_map(|name| self.slices.get(&ObjectKey::new(&owner.namespace, &**name)))
            .cloned()
            .collect()
    }

    /// Puts slice `key` as `entry` (`None`: not one of ours any more). Returns the owners whose
    /// entries change: none when the slice is as it was.
    pub(super) fn upsert(&mut self, key: &ObjectKey, entry: Option<SliceEntry>) -> Vec<ObjectKey> {
        if self.slices.get(key).map(|s| &**s) == entry.as_ref() {
            return Vec::new();
        }
        let mut touched: Vec<ObjectKey> = self.remove(key).into_iter().collect();
        let Some(entry) = entry else {
            return touched;
        };
        if let Some(owner) = owner(key, &entry) {
            let names = self.slices_of.entry(owner.clone()).or_default();
            if let Err(at) = names.binary_search_by(|n| (**n).cmp(key.name.as_str())) {
                names.reserve_exact(1);
                names.insert(at, key.name.as_str().into());
            }
            touched.push(owner);
        }
        self.slices.insert(key.clone(), Arc::new(entry));
        touched
    }

    /// Drops slice `key`; returns the owner whose entry changes.
    pub(super) fn remove(&mut self, key: &ObjectKey) -> Option<ObjectKey> {
        let old = self.slices.remove(key)?;
        let owner = owner(key, &old)?;
        if let Some(names) = self.slices_of.get_mut(&owner) {
            names.retain(|n| **n != *key.name);
            if names.is_empty() {
                self.slices_of.remove(&owner);
            }
        }
        Some(owner)
    }
}

/// The object a slice is labelled with, in the slice's namespace.
fn owner(key: &ObjectKey, entry: &SliceEntry) -> Option<ObjectKey> {
    let service = entry.service.as_deref()?;
    Some(ObjectKey::new(&key.namespace, service))
}
