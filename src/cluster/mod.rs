//! Sources of cluster state. Each source turns what it reads into [`ClusterEvent`]s carrying
//! slim [`model`] objects; nothing downstream sees an API type. A source hands its events to a
//! [`Sink`]: the zone index's one writer, on a thread of its own, so a source never applies a
//! change itself (nor waits for one to be applied) on a thread that serves queries.

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

/// What a source sends to the index's writer: events applied together, and what to run once
/// they are served.
pub struct Batch {
    pub events: Vec<ClusterEvent>,
    /// Runs on the writer's thread after the events are visible to queries (the kube source
    /// measures DNS programming latency with it).
    pub then: Option<Box<dyn FnOnce() + Send>>,
}

impl Batch {
    pub fn new(events: Vec<ClusterEvent>) -> Batch {
        Batch { events, then: None }
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("events", &self.events.len())
            .field("then", &self.then.is_some())
            .finish()
    }
}

/// Where a source sends its batches. Bounded: a source that outruns the writer waits (an
/// async watcher without blocking its worker; the manifests thread blocking).
pub type Sink = tokio::sync::mpsc::Sender<Batch>;
