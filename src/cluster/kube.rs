//! The Kubernetes API source: one kube-runtime watcher per kind (and per namespace when
//! `namespaces` is set), slimmed at the edge, turned into [`ClusterEvent`]s.
//!
//! A (re-)list arrives as `Init, InitApply…, InitDone` and is handed over as one `Resync`, so
//! objects that vanished while the watch was down are removed in the same step and nothing
//! flickers. Errors are logged when the API is lost and when it comes back, not per retry;
//! `default_backoff` spaces the retries, and the last good zone keeps being served meanwhile.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;

use super::ClusterEvent;
use super::model::{self, ClusterObject, ModelError, ObjectKey, ObjectKind};
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
}

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

/// The state all watchers of one source share.
struct SourceState<F> {
    apply: F,
    /// Kind → watchers of that kind that have not finished their first list.
    unsynced: Mutex<HashMap<ObjectKind, usize>>,
    /// Set while the API is unreachable, so only changes of state are logged.
    lost: AtomicBool,
    programming: Arc<Histogram>,
    /// Probes the API while it is lost: a watch resumed from its last resourceVersion on a
    /// quiet cluster yields no event, so the watchers alone might never notice the return.
    client: kube::Client,
}

/// Starts the watchers on the current tokio runtime. `apply` receives every batch of events.
/// Aborting the returned handles stops them.
pub fn spawn<F>(
    client: kube::Client,
    options: WatchOptions,
    programming: Arc<Histogram>,
    apply: F,
) -> Vec<tokio::task::AbortHandle>
where
    F: Fn(Vec<ClusterEvent>) + Send + Sync + 'static,
{
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    let mut unsynced = HashMap::new();
    unsynced.insert(ObjectKind::Namespace, 1);
    unsynced.insert(ObjectKind::Service, scopes.len());
    unsynced.insert(ObjectKind::EndpointSlice, scopes.len());
    if options.pods {
        unsynced.insert(ObjectKind::Pod, scopes.len());
    }
    let shared = Arc::new(SourceState {
        apply,
        unsynced: Mutex::new(unsynced),
        lost: AtomicBool::new(false),
        programming,
        client: client.clone(),
    });
    let labelled = |config: watcher::Config| match &options.labels {
        Some(l) => config.labels(l),
        None => config,
    };

    let mut tasks = Vec::new();
    // Namespaces are cluster-scoped and cheap: always watch them all; the index filters.
    tasks.push(tokio::spawn(watch(
        Api::<k8s::Namespace>::all(client.clone()),
        watcher::Config::default(),
        ObjectKind::Namespace,
        None,
        |n| model::Namespace::from_api(n).map(ClusterObject::Namespace),
        shared.clone(),
    )));
    for scope in scopes {
        let api = |client: &kube::Client| match &scope {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
        let (services, slices, pods): (Api<k8s::Service>, Api<k8s::EndpointSlice>, Api<k8s::Pod>) =
            api(&client);
        tasks.push(tokio::spawn(watch(
            services,
            labelled(watcher::Config::default()),
            ObjectKind::Service,
            scope.clone(),
            |s| model::Service::from_api(s).map(ClusterObject::Service),
            shared.clone(),
        )));
        tasks.push(tokio::spawn(watch(
            slices,
            labelled(watcher::Config::default()),
            ObjectKind::EndpointSlice,
            scope.clone(),
            |s| model::EndpointSet::from_api(s).map(ClusterObject::EndpointSet),
            shared.clone(),
        )));
        if options.pods {
            tasks.push(tokio::spawn(watch(
                pods,
                labelled(watcher::Config::default()),
                ObjectKind::Pod,
                scope.clone(),
                |p| model::Pod::from_api(p).map(ClusterObject::Pod),
                shared.clone(),
            )));
        }
    }
    tasks.iter().map(|t| t.abort_handle()).collect()
}

fn key_of<K: Resource>(object: &K) -> ObjectKey {
    let meta = object.meta();
    ObjectKey::new(
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

async fn watch<K, F>(
    api: Api<K>,
    config: watcher::Config,
    kind: ObjectKind,
    scope: Option<String>,
    slim: fn(&K) -> Result<ClusterObject, ModelError>,
    shared: Arc<SourceState<F>>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: Fn(Vec<ClusterEvent>) + Send + Sync + 'static,
{
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut buffer: Option<Vec<ClusterObject>> = None;
    let convert = |object: &K| match slim(object) {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!(kind = kind.as_str(), object = %key_of(object), error = %e, "skipping invalid object");
            None
        }
    };
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(event) => event,
            // 410 Gone: the resourceVersion was compacted away. Routine; the watcher re-lists.
            Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                tracing::debug!(kind = kind.as_str(), "resourceVersion expired: re-listing");
                continue;
            }
            Err(e) => {
                if !shared.lost.swap(true, Ordering::Relaxed) {
                    tracing::warn!(kind = kind.as_str(), error = %e, "lost the Kubernetes API; serving the last good zone and retrying with backoff");
                    tokio::spawn(probe_until_regained(shared.clone()));
                }
                continue;
            }
        };
        if shared.lost.swap(false, Ordering::Relaxed) {
            tracing::info!("Kubernetes API regained");
        }
        match event {
            Event::Apply(object) => {
                let trigger = trigger_time(&object);
                if let Some(o) = convert(&object) {
                    (shared.apply)(vec![ClusterEvent::Upsert(o)]);
                    if kind == ObjectKind::EndpointSlice {
                        shared.programming.observe_since(trigger);
                    }
                }
            }
            Event::Delete(object) => {
                (shared.apply)(vec![ClusterEvent::Delete(kind, key_of(&object))])
            }
            Event::Init => buffer = Some(Vec::new()),
            Event::InitApply(object) => {
                if let Some(o) = convert(&object) {
                    buffer.get_or_insert_with(Vec::new).push(o);
                }
            }
            Event::InitDone => {
                let objects = buffer.take().unwrap_or_default();
                let count = objects.len();
                let mut events = vec![ClusterEvent::Resync {
                    kind,
                    namespace: scope.clone(),
                    objects,
                }];
                let first_sync = {
                    let mut unsynced = shared.unsynced.lock().unwrap_or_else(|p| p.into_inner());
                    match unsynced.get_mut(&kind) {
                        Some(n) => {
                            *n -= 1;
                            let done = *n == 0;
                            if done {
                                unsynced.remove(&kind);
                            }
                            done
                        }
                        None => false,
                    }
                };
                if first_sync {
                    events.push(ClusterEvent::Synced(kind));
                    tracing::info!(
                        kind = kind.as_str(),
                        objects = count,
                        "synced with the Kubernetes API"
                    );
                } else {
                    tracing::debug!(kind = kind.as_str(), objects = count, "re-listed");
                }
                (shared.apply)(events);
            }
        }
    }
}

/// While the API is lost, asks for its version with capped backoff until it answers.
async fn probe_until_regained<F>(shared: Arc<SourceState<F>>)
where
    F: Fn(Vec<ClusterEvent>) + Send + Sync + 'static,
{
    let mut delay = Duration::from_millis(500);
    while shared.lost.load(Ordering::Relaxed) {
        tokio::time::sleep(delay).await;
        if shared.client.apiserver_version().await.is_ok() {
            if shared.lost.swap(false, Ordering::Relaxed) {
                tracing::info!("Kubernetes API regained");
            }
            return;
        }
        delay = (delay * 2).min(Duration::from_secs(30));
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
