//! The `multicluster` part of the index: ServiceImports and the EndpointSlices labelled with
//! them (`multicluster.kubernetes.io/service-name`), built into entries of their own. They own
//! no PTR records (CoreDNS answers no reverse name from an import) and touch no Service entry.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Index, Objects, Touched};
use crate::cluster::model::{ObjectKey, ServiceImport};
use crate::zone::records::{self, ServiceEntry};

/// The writer's copy of the multicluster objects.
#[derive(Debug, Default)]
pub(super) struct ImportObjects {
    pub(super) imports: HashMap<ObjectKey, ServiceImport>,
    /// The slices labelled with an import.
    pub(super) slices: super::slices::SliceLinks,
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

    /// Recomputes one import's entry. Returns whether it changed.
    pub(super) fn rebuild_import(&self, objects: &Objects, key: &ObjectKey) -> bool {
        let map_key = format!("{}.{}", key.name, key.namespace);
        let new = objects.mc.imports.get(key).map(|import| {
            Arc::new(records::import_entry(
                import,
                &objects.mc.slices.entries_of(key),
            ))
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
