//! The `multicluster` part of the index: ServiceImports and the EndpointSlices labelled with
//! them (`multicluster.kubernetes.io/service-name`), built into entries of their own. They own
//! no PTR records (CoreDNS answers no reverse name from an import) and touch no Service entry.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Index, Objects, Touched};
use crate::cluster::model::{EndpointSet, ObjectKey, ServiceImport};
use crate::zone::records::{self, ServiceEntry, SliceEntry};

/// The writer's copy of the multicluster objects.
#[derive(Debug, Default)]
pub(super) struct ImportObjects {
    pub(super) imports: HashMap<ObjectKey, ServiceImport>,
    /// Each slice as its import's entry uses it.
    slices: HashMap<ObjectKey, Arc<SliceEntry>>,
    /// Import key → names of the slices labelled with it, sorted.
    slices_of: HashMap<ObjectKey, Vec<Box<str>>>,
}

impl ImportObjects {
    pub(super) fn slice_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.slices.keys()
    }
}

impl Index {
    /// The entry of the ServiceImport `name.namespace`.
    pub fn import(&self, key: &str) -> Option<Arc<ServiceEntry>> {
        self.imports.get(key).map(|e| Arc::clone(e.value()))
    }

    /// Every ServiceImport entry, by key (a copy of the handles, for a zone transfer).
    pub fn import_entries(&self) -> Vec<(Box<str>, Arc<ServiceEntry>)> {
        super::handles(&self.imports)
    }

    pub(super) fn upsert_import(
        &self,
        objects: &mut Objects,
        key: ObjectKey,
        import: ServiceImport,
        touched: &mut Touched,
    ) {
        if objects.mc.imports.get(&key) == Some(&import) {
            return;
        }
        objects.mc.imports.insert(key.clone(), import);
        touched.imports.insert(key);
    }

    pub(super) fn delete_import(
        &self,
        objects: &mut Objects,
        key: &ObjectKey,
        touched: &mut Touched,
    ) {
        if objects.mc.imports.remove(key).is_some() {
            touched.imports.insert(key.clone());
        }
    }

    /// A slice as its import's entry uses it; a slice that lost its label is unlinked.
    pub(super) fn upsert_import_slice(
        &self,
        objects: &mut Objects,
        key: &ObjectKey,
        set: &EndpointSet,
        touched: &mut Touched,
    ) {
        let new = records::import_slice_entry(set, self.options.build);
        if objects.mc.slices.get(key).map(|s| &**s) == new.as_ref() {
            return;
        }
        self.delete_import_slice(objects, key, touched);
        let Some(new) = new else { return };
        if let Some(service) = &new.service {
            let import_key = ObjectKey::new(&key.namespace, &**service);
            let names = objects.mc.slices_of.entry(import_key.clone()).or_default();
            if let Err(at) = names.binary_search_by(|n| (**n).cmp(key.name.as_str())) {
                names.insert(at, key.name.as_str().into());
            }
            touched.imports.insert(import_key);
        }
        objects.mc.slices.insert(key.clone(), Arc::new(new));
    }

    pub(super) fn delete_import_slice(
        &self,
        objects: &mut Objects,
        key: &ObjectKey,
        touched: &mut Touched,
    ) {
        let Some(old) = objects.mc.slices.remove(key) else {
            return;
        };
        if let Some(service) = &old.service {
            let import_key = ObjectKey::new(&key.namespace, &**service);
            if let Some(names) = objects.mc.slices_of.get_mut(&import_key) {
                names.retain(|n| **n != *key.name);
                if names.is_empty() {
                    objects.mc.slices_of.remove(&import_key);
                }
            }
            touched.imports.insert(import_key);
        }
    }

    /// Recomputes one import's entry. Returns whether it changed.
    pub(super) fn rebuild_import(&self, objects: &Objects, key: &ObjectKey) -> bool {
        let map_key = format!("{}.{}", key.name, key.namespace);
        let new = objects.mc.imports.get(key).map(|import| {
            let slices: Vec<Arc<SliceEntry>> = (objects.mc.slices_of.get(key).into_iter())
                .flatten()
                .filter_map(|name| {
                    let slice_key = ObjectKey::new(&key.namespace, &**name);
                    objects.mc.slices.get(&slice_key)
                })
                .cloned()
                .collect();
            Arc::new(records::import_entry(import, &slices))
        });
        let old = self.import(&map_key);
        if old.as_deref() == new.as_deref() {
            return false;
        }
        match new {
            Some(entry) => {
                self.imports.insert(map_key.as_str().into(), entry);
            }
            None => {
                self.imports.remove(map_key.as_str());
            }
        }
        true
    }
}
