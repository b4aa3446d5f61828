//! Sources of cluster state. Each source turns what it reads into [`ClusterEvent`]s carrying
//! slim [`model`] objects; nothing downstream sees an API type.

pub mod kube;
pub mod manifests;
pub mod model;

pub use model::{ClusterObject, ObjectKey, ObjectKind};

/// What a source tells the zone index.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterEvent {
    /// An object was created or changed.
    Upsert(ClusterObject),
    /// An object is gone.
    Delete(ObjectKind, ObjectKey),
    /// The complete current set of one kind (a list or re-list), within one namespace when
    /// `namespace` is set: objects of that kind (and namespace) not in it are removed, in the
    /// same step.
    Resync {
        kind: ObjectKind,
        namespace: Option<String>,
        objects: Vec<ClusterObject>,
    },
    /// The kind has been listed completely at least once.
    Synced(ObjectKind),
}
