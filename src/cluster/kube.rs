//! The Kubernetes API source: one kube-runtime watcher per kind (and per namespace when
//! `namespaces` is set), slimmed at the edge, turned into [`ClusterEvent`]s.
//!
//! A (re-)list arrives as `Init, InitApply…, InitDone` and is handed over as one `Resync`, so
//! objects that vanished while the watch was down are removed in the same step and nothing
//! flickers. Batches go to the index's writer ([`Sink`]); a watcher never applies them itself.
//!
//! A kind is synced once every watcher of it (one per namespace with `namespaces`) has listed
//! once: each watcher counts once, however often it re-lists. "Lost the Kubernetes API" is
//! logged at the first failure of any watcher, "regained" once every watcher that failed has
//! had a list page, a watch event or a probe list succeed: `Init`, which the watcher emits
//! before each list attempt, proves nothing, so retries during an outage log nothing. Retries
//! back off (kube-runtime's default schedule, reset only by a success), the last good zone
//! keeps being served, and a failing watcher probes its API with a one-object list, so a
//! resumed watch that has nothing to say is noticed all the same.
//!
//! With `multicluster` zones ServiceImports are watched too (a CRD, not always installed: an
//! API without the resource is one warning, and the kind counts as listed and empty), and the
//! EndpointSlices of imports even with `noendpoints` (then only those, by label selector).

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use kube::Resource;
use kube::api::{Api, ListParams};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::model::{self, ClusterObject, ModelError, ObjectKey, ObjectKind};
use super::{Batch, ClusterEvent, Sink};
use crate::config::ClusterSource;
use crate::k8s;
use crate::metrics::Histogram;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeError {
    #[error("bad Kubernetes API endpoint {url:?}: {message}")]
    BadEndpoint { url: String, message: String },
    #[error("cannot load kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no Kubernetes API configuration: not running in a cluster ({in_cluster}) and no usable kubeconfig ($KUBECONFIG or ~/.kube/config: {kubeconfig})"
    )]
    NoConfig {
        in_cluster: String,
        kubeconfig: String,
    },
    #[error("cannot build the Kubernetes API client: {0}")]
    Client(String),
}

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// Watch only these namespaces (server-side); empty watches all.
    pub namespaces: Vec<String>,
    /// A label selector for Services, EndpointSlices and Pods.
    pub labels: Option<String>,
    /// Watch Pods (only `pods = "verified"` needs them: the heaviest watch in a cluster).
    pub pods: bool,
    /// Watch EndpointSlices (off with CoreDNS's `noendpoints`).
    pub endpoints: bool,
    /// Watch ServiceImports, and the EndpointSlices labelled with them even without
    /// `endpoints` (`multicluster` zones).
    pub multicluster: bool,
}

/// The label selector that picks the EndpointSlices of ServiceImports (existence).
const IMPORT_SLICES: &str = k8s::MCS_SERVICE_NAME_LABEL;
/// Without the ServiceImport resource, the API is asked again this often (quietly).
const CRD_RECHECK: Duration = Duration::from_secs(60);

/// Builds a client from the configured source, as CoreDNS's kubernetes plugin: a plain URL, a
/// kubeconfig (and context), or in-cluster then `$KUBECONFIG` / `~/.kube/config`.
pub async fn connect(source: &ClusterSource) -> Result<kube::Client, KubeError> {
    let config = match source {
        ClusterSource::Endpoint(url) => {
            let uri = url
                .parse()
                .map_err(|e: http::uri::InvalidUri| KubeError::BadEndpoint {
                    url: url.clone(),
                    message: e.to_string(),
                })?;
            kube::Config::new(uri)
        }
        ClusterSource::Kubeconfig { path, context } => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                KubeError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            let options = kube::config::KubeConfigOptions {
                context: context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|source| KubeError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?
        }
        ClusterSource::InCluster => match kube::Config::incluster() {
            Ok(c) => c,
            Err(in_cluster) => kube::Config::from_kubeconfig(&Default::default())
                .await
                .map_err(|kubeconfig| KubeError::NoConfig {
                    in_cluster: in_cluster.to_string(),
                    kubeconfig: kubeconfig.to_string(),
                })?,
        },
        ClusterSource::Manifests(_) => {
            return Err(KubeError::Client(
                "a manifests directory is not an API".into(),
            ));
        }
    };
    kube::Client::try_from(config).map_err(|e| KubeError::Client(e.to_string()))
}

/// A failing watcher's first probe comes after this long; later ones back off to `PROBE_MAX`.
const PROBE_MIN: Duration = Duration::from_millis(500);
const PROBE_MAX: Duration = Duration::from_secs(10);
/// A probe that has no answer by then has failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause between retries (kube-runtime's default backoff ends there too).
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Which watchers have finished their first list, per kind. A kind is synced when every
/// watcher of it has; a watcher counts once, however often it re-lists (a 410 re-list of one
/// namespace is not the first list of another).
#[derive(Debug, Default)]
pub struct SyncTracker {
    /// Kind → the watchers of that kind that have not finished a list yet.
    pending: HashMap<ObjectKind, HashSet<usize>>,
    next: usize,
}

impl SyncTracker {
    /// A new watcher of `kind`; returns its id.
    pub fn register(&mut self, kind: ObjectKind) -> usize {
        let id = self.next;
        self.next += 1;
        self.pending.entry(kind).or_default().insert(id);
        id
    }

    /// Watcher `id` of `kind` finished a list. True when that completes the kind's first sync.
    pub fn listed(&mut self, kind: ObjectKind, id: usize) -> bool {
        let Some(pending) = self.pending.get_mut(&kind) else {
            return false;
        };
        if !pending.remove(&id) || !pending.is_empty() {
            return false;
        }
        self.pending.remove(&kind);
        true
    }
}

/// One watcher's part in its source's health: the source is lost from the first failure of any
/// watcher until every watcher that failed has succeeded again.
#[derive(Debug)]
struct WatcherHealth<'a> {
    /// How many of the source's watchers are failing now.
    source: &'a AtomicUsize,
    failing: bool,
}

impl<'a> WatcherHealth<'a> {
    fn new(source: &'a AtomicUsize) -> Self {
        WatcherHealth {
            source,
            failing: false,
        }
    }

    /// A request failed. True when the source was healthy until now: log "lost".
    fn failed(&mut self) -> bool {
        if self.failing {
            return false;
        }
        self.failing = true;
        self.source.fetch_add(1, Ordering::AcqRel) == 0
    }

    /// A list or watch succeeded. True when no watcher is failing any more: log "regained".
    fn succeeded(&mut self) -> bool {
        if !self.failing {
            return false;
        }
        self.failing = false;
        self.source.fetch_sub(1, Ordering::AcqRel) == 1
    }
}

/// Does this event prove a request succeeded? `Init` comes before a list is even asked for.
fn proves_success<K>(event: &Event<K>) -> bool {
    !matches!(event, Event::Init)
}

/// The state all watchers of one source share.
struct SourceState {
    sink: Sink,
    sync: Mutex<SyncTracker>,
    /// Watchers failing now: "lost" and "regained" are logged when it leaves and returns to 0.
    failing: AtomicUsize,
    programming: Arc<Histogram>,
}

/// One watcher: what it watches and its id in the [`SyncTracker`].
#[derive(Debug, Clone)]
struct WatcherId {
    kind: ObjectKind,
    scope: Option<String>,
    id: usize,
}

/// Starts the watchers on the current tokio runtime; every batch goes to `sink`. Aborting the
/// returned handles stops them.
pub fn spawn(
    client: kube::Client,
    options: WatchOptions,
    programming: Arc<Histogram>,
    sink: Sink,
) -> Vec<tokio::task::AbortHandle> {
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    let shared = Arc::new(SourceState {
        sink,
        sync: Mutex::new(SyncTracker::default()),
        failing: AtomicUsize::new(0),
        programming,
    });
    let watcher_id = |kind, scope: &Option<String>| WatcherId {
        kind,
        scope: scope.clone(),
        id: shared
            .sync
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .register(kind),
    };
    let labelled = |config: watcher::Config| match &options.labels {
        Some(l) => config.labels(l),
        None => config,
    };

    let mut tasks = Vec::new();
    // Namespaces are cluster-scoped and cheap: always watch them all; the index filters.
    tasks.push(tokio::spawn(watch(
        Api::<k8s::Namespace>::all(client.clone()),
        watcher::Config::default(),
        watcher_id(ObjectKind::Namespace, &None),
        |n| model::Namespace::from_api(n).map(ClusterObject::Namespace),
        shared.clone(),
    )));
    for scope in &scopes {
        tasks.push(tokio::spawn(watch(
            scoped_api::<k8s::Service>(&client, scope),
            labelled(watcher::Config::default()),
            watcher_id(ObjectKind::Service, scope),
            |s| model::Service::from_api(s).map(ClusterObject::Service),
            shared.clone(),
        )));
        if options.endpoints || options.multicluster {
            // `noendpoints` with multicluster: only the slices of imports.
            let config = match (&options.labels, options.endpoints) {
                (_, true) => labelled(watcher::Config::default()),
                (Some(l), false) => {
                    watcher::Config::default().labels(&format!("{l},{IMPORT_SLICES}"))
                }
                (None, false) => watcher::Config::default().labels(IMPORT_SLICES),
            };
            tasks.push(tokio::spawn(watch(
                scoped_api::<k8s::EndpointSlice>(&client, scope),
                config,
                watcher_id(ObjectKind::EndpointSlice, scope),
                |s| model::EndpointSet::from_api(s).map(ClusterObject::EndpointSet),
                shared.clone(),
            )));
        }
        if options.pods {
            tasks.push(tokio::spawn(watch(
                scoped_api::<k8s::Pod>(&client, scope),
                labelled(watcher::Config::default()),
                watcher_id(ObjectKind::Pod, scope),
                |p| model::Pod::from_api(p).map(ClusterObject::Pod),
                shared.clone(),
            )));
        }
        if options.multicluster {
            tasks.push(tokio::spawn(watch_imports(
                scoped_api::<k8s::ServiceImport>(&client, scope),
                watcher_id(ObjectKind::ServiceImport, scope),
                shared.clone(),
            )));
        }
    }
    tasks.iter().map(|t| t.abort_handle()).collect()
}

fn scoped_api<K>(client: &kube::Client, scope: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn key_of<K: Resource>(object: &K) -> ObjectKey {
    let meta = object.meta();
    ObjectKey::new(
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// One watcher's loop: events to batches, failures to backoff and probes.
async fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    me: WatcherId,
    slim: fn(&K) -> Result<ClusterObject, ModelError>,
    shared: Arc<SourceState>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let kind = me.kind.as_str();
    let mut stream = watcher::watcher(api.clone(), config).boxed();
    let mut backoff = watcher::DefaultBackoff::default();
    let mut health = WatcherHealth::new(&shared.failing);
    let mut probe_delay = PROBE_MIN;
    // After a failure the stream is not polled (no retry) before this.
    let mut retry_at: Option<Instant> = None;
    let mut list = Relist::new(me, slim);
    loop {
        let (wait, events) = (retry_at, &mut stream);
        let next = async move {
            if let Some(at) = wait {
                tokio::time::sleep_until(at).await;
            }
            events.next().await
        };
        let item = if health.failing {
            tokio::select! {
                item = next => item,
                answered = probe(&api, probe_delay) => {
                    if !answered {
                        probe_delay = (probe_delay * 2).min(PROBE_MAX);
                    } else if health.succeeded() {
                        tracing::info!("Kubernetes API regained");
                    }
                    // Answered: retry at once rather than at the end of the backoff.
                    retry_at = retry_at.filter(|_| !answered);
                    continue;
                }
            }
        } else {
            next.await
        };
        retry_at = None;
        let Some(item) = item else { return };
        let event = match item {
            Ok(event) => event,
            // 410 Gone: the resourceVersion was compacted away. Routine; the watcher re-lists.
            Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                tracing::debug!(kind, "resourceVersion expired: re-listing");
                continue;
            }
            Err(e) => {
                if health.failed() {
                    tracing::warn!(kind, error = %e, "lost the Kubernetes API; serving the last good zone and retrying with backoff");
                } else {
                    tracing::debug!(kind, error = %e, "Kubernetes API request failed");
                }
                probe_delay = PROBE_MIN;
                retry_at = Some(Instant::now() + backoff.next().unwrap_or(BACKOFF_MAX));
                continue;
            }
        };
        if proves_success(&event) {
            backoff.reset();
            if health.succeeded() {
                tracing::info!("Kubernetes API regained");
            }
        }
        let Some(batch) = list.batch(event, &shared) else {
            continue;
        };
        if shared.sink.send(batch).await.is_err() {
            return; // the index is gone: the source is being stopped
        }
    }
}

fn slim_import(import: &k8s::ServiceImport) -> Result<ClusterObject, ModelError> {
    model::ServiceImport::from_api(import).map(ClusterObject::ServiceImport)
}

/// ServiceImports, once the API has them. Without the resource (a 404: no Multi-Cluster
/// Services CRD installed) or the right to list it (403) that is logged once, the kind counts
/// as listed (empty) so the rest is served, and the API is asked again every
/// [`CRD_RECHECK`]. An API that does not answer yet is asked again with backoff (the other
/// watchers report it). Once a list succeeds the watcher takes over.
async fn watch_imports(api: Api<k8s::ServiceImport>, me: WatcherId, shared: Arc<SourceState>) {
    let (mut missing, mut retry) = (false, PROBE_MIN);
    loop {
        let wait = match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if matches!(status.code, 403 | 404) => {
                if !missing {
                    missing = true;
                    tracing::warn!(
                        resource = "serviceimports.multicluster.x-k8s.io/v1alpha1",
                        "{}: multicluster zones answer no imports until that changes; serving the rest",
                        why_no_imports(status.code)
                    );
                    let batch = Relist::new(me.clone(), slim_import).listed(&shared);
                    if shared.sink.send(batch).await.is_err() {
                        return;
                    }
                }
                CRD_RECHECK
            }
            Err(e) => {
                tracing::debug!(error = %e, "listing ServiceImports failed; asking again");
                retry = (retry * 2).min(BACKOFF_MAX);
                retry
            }
        };
        tokio::time::sleep(wait).await;
    }
    if missing {
        tracing::info!("the ServiceImport resource is there now: watching it");
    }
    watch(api, watcher::Config::default(), me, slim_import, shared).await
}

fn why_no_imports(code: u16) -> &'static str {
    if code == 404 {
        "the Kubernetes API has no ServiceImport resource (Multi-Cluster Services CRD not installed)"
    } else {
        "not allowed to list ServiceImports (grant list and watch on serviceimports.multicluster.x-k8s.io)"
    }
}

/// Asks the API, after `delay`, for one object of what a failing watcher watches.
async fn probe<K>(api: &Api<K>, delay: Duration) -> bool
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    tokio::time::sleep(delay).await;
    let one = ListParams::default().limit(1);
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, api.list(&one)).await,
        Ok(Ok(_))
    )
}

/// Turns one watcher's events into batches: objects slimmed (invalid ones skipped with a
/// warning), a list buffered until it is complete.
struct Relist<K> {
    me: WatcherId,
    slim: fn(&K) -> Result<ClusterObject, ModelError>,
    buffer: Option<Vec<ClusterObject>>,
}

impl<K: Resource> Relist<K> {
    fn new(me: WatcherId, slim: fn(&K) -> Result<ClusterObject, ModelError>) -> Self {
        Relist {
            me,
            slim,
            buffer: None,
        }
    }

    fn convert(&self, object: &K) -> Option<ClusterObject> {
        match (self.slim)(object) {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::warn!(kind = self.me.kind.as_str(), object = %key_of(object), error = %e, "skipping invalid object");
                None
            }
        }
    }

    /// The batch for `event`, if it completes one.
    fn batch(&mut self, event: Event<K>, shared: &SourceState) -> Option<Batch> {
        let kind = self.me.kind;
        match event {
            Event::Apply(object) => {
                let o = self.convert(&object)?;
                let mut batch = Batch::new(vec![ClusterEvent::Upsert(o)]);
                if kind == ObjectKind::EndpointSlice {
                    let (programming, trigger) =
                        (shared.programming.clone(), trigger_time(&object));
                    batch.then = Some(Box::new(move || programming.observe_since(trigger)));
                }
                Some(batch)
            }
            Event::Delete(object) => Some(Batch::new(vec![ClusterEvent::Delete(
                kind,
                key_of(&object),
            )])),
            Event::Init => {
                self.buffer = Some(Vec::new());
                None
            }
            Event::InitApply(object) => {
                if let Some(o) = self.convert(&object) {
                    self.buffer.get_or_insert_with(Vec::new).push(o);
                }
                None
            }
            Event::InitDone => Some(self.listed(shared)),
        }
    }

    /// A complete list: one `Resync`, and `Synced` when it completes the kind's first sync.
    fn listed(&mut self, shared: &SourceState) -> Batch {
        let objects = self.buffer.take().unwrap_or_default();
        let count = objects.len();
        let kind = self.me.kind;
        let mut events = vec![ClusterEvent::Resync {
            kind,
            namespace: self.me.scope.clone(),
            objects,
        }];
        let first_sync = shared
            .sync
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .listed(kind, self.me.id);
        if first_sync {
            events.push(ClusterEvent::Synced(kind));
            tracing::info!(
                kind = kind.as_str(),
                objects = count,
                "synced with the Kubernetes API"
            );
        } else {
            tracing::debug!(kind = kind.as_str(), objects = count, "listed");
        }
        Batch::new(events)
    }
}

/// When the change an object reflects happened: the trigger-time annotation, else now.
fn trigger_time<K: Resource>(object: &K) -> SystemTime {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(k8s::TRIGGER_TIME_ANNOTATION))
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(SystemTime::from)
        .unwrap_or_else(SystemTime::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_synced_when_each_of_its_watchers_has_listed_once() {
        let mut sync = SyncTracker::default();
        let ns = sync.register(ObjectKind::Namespace);
        let (svc_a, svc_b) = (
            sync.register(ObjectKind::Service),
            sync.register(ObjectKind::Service),
        );
        assert!(sync.listed(ObjectKind::Namespace, ns));
        assert!(!sync.listed(ObjectKind::Service, svc_a));
        // a re-lists (410) before b has listed at all: still not synced.
        assert!(!sync.listed(ObjectKind::Service, svc_a));
        assert!(!sync.listed(ObjectKind::Service, svc_a));
        assert!(sync.listed(ObjectKind::Service, svc_b), "b completes it");
        // Later lists change nothing.
        assert!(!sync.listed(ObjectKind::Service, svc_b));
        assert!(!sync.listed(ObjectKind::Namespace, ns));
    }

    #[test]
    fn lost_and_regained_are_reported_once_per_outage_of_the_source() {
        let failing = AtomicUsize::new(0);
        let (mut a, mut b) = (WatcherHealth::new(&failing), WatcherHealth::new(&failing));
        assert!(!a.succeeded(), "a success while healthy reports nothing");
        assert!(a.failed(), "the first failure: lost");
        assert!(!a.failed() && !a.failed(), "retries report nothing");
        assert!(
            !b.failed(),
            "another watcher failing too: still the same outage"
        );
        assert!(!a.succeeded(), "b still fails");
        assert!(!a.failed(), "a again: not a new outage, b never recovered");
        assert!(!b.succeeded());
        assert!(a.succeeded(), "the last failing watcher recovers: regained");
        assert!(a.failed(), "a new outage");
    }

    #[test]
    fn init_proves_nothing_and_data_proves_a_request_succeeded() {
        assert!(!proves_success::<k8s::Namespace>(&Event::Init));
        assert!(proves_success::<k8s::Namespace>(&Event::InitDone));
        let ns = k8s::Namespace::default();
        assert!(proves_success(&Event::InitApply(ns.clone())));
        assert!(proves_success(&Event::Apply(ns.clone())));
        assert!(proves_success(&Event::Delete(ns)));
    }
}
