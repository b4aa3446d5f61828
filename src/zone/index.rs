//! The zone index: cluster events in, ready-to-serve entries out.
//!
//! One writer, any number of readers. In the server the writer is a thread of its own
//! ([`spawn_writer`]): sources send it batches and go on, so an apply (a re-list of 100k
//! objects after an outage) never runs on, or blocks, a thread that serves queries. Readers use
//! sharded concurrent maps and never wait on the writer for longer than one map insert; every
//! entry is built aside and swapped in whole (a Service's entry, the owner list of an address).
//! A change recomputes only the Services it touches; the serial moves only when an answer
//! changes. ServiceImports and the slices labelled with them (`multicluster`) are kept apart
//! (`index/imports.rs`): their entries answer only the multicluster zones and own no PTR records.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use smallvec::SmallVec;

mod imports;
mod reverse;
mod slices;

use super::external::{ExternalEntry, external_entry};
use super::records::{self, BuildOptions, ServiceEntry};
use crate::cluster::model::{ClusterObject, External, ObjectKey, ObjectKind, Service};
use crate::cluster::{Batch, ClusterEvent, Sink};

/// Batches the writer's queue holds before sources wait.
const WRITER_QUEUE: usize = 256;
/// At most this many queued batches are applied as one (each touched Service rebuilt once).
const MAX_COALESCED: usize = 64;
/// An apply at least this long is logged at info level (a big re-list).
const SLOW_APPLY: Duration = Duration::from_millis(250);

/// A PTR record some Service owns at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtrOwner {
    /// The target without the zone (`name.ns.svc` or `label.name.ns.svc`), shared with the
    /// Service's entry; the owning Service is read from it.
    pub target: Arc<str>,
    /// A ClusterIP (which wins over endpoint names, as in CoreDNS) or an endpoint address.
    pub cluster_ip: bool,
}

impl PtrOwner {
    /// `name.namespace` of the owning Service.
    pub fn service(&self) -> &str {
        let key = self.target.strip_suffix(".svc").unwrap_or(&self.target);
        if self.cluster_ip {
            return key;
        }
        // `label.name.namespace`: name and namespace are one label each (checked at the edge),
        // so they are read from the right, whatever the endpoint label holds.
        match key.rfind('.').and_then(|dot| key[..dot].rfind('.')) {
            Some(dot) => &key[dot + 1..],
            None => key,
        }
    }
}

/// Owners sort by Service, then target, then kind.
impl Ord for PtrOwner {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.service(), &*self.target, self.cluster_ip).cmp(&(
            other.service(),
            &*other.target,
            other.cluster_ip,
        ))
    }
}

impl PartialOrd for PtrOwner {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The namespaces with live pods at one IP, each with how many: nearly always one, inline.
/// A host-network pod counts [`HOST_NETWORK_WEIGHT`].
type PodNamespaces = SmallVec<[(Box<str>, u32); 1]>;

/// What a host-network pod counts at its (the node's) IP: more than one pod, so its IP never
/// names one pod's namespace (autopath), while `pods verified` still finds it there.
const HOST_NETWORK_WEIGHT: u32 = 2;

/// The PTR owners of one address: nearly always one, kept inline (no allocation per address).
pub type PtrOwners = SmallVec<[PtrOwner; 1]>;

/// What the index needs to know from the configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexOptions {
    pub build: BuildOptions,
    /// Expose only these namespaces (lower-case); empty exposes all.
    pub namespaces: Vec<String>,
    /// Keep Pods (only `pods = "verified"` needs them).
    pub track_pods: bool,
    /// Ignore EndpointSlices (CoreDNS `noendpoints`): none is watched or kept, but for those
    /// of ServiceImports with `multicluster`.
    pub no_endpoints: bool,
    /// Keep ServiceImports and the EndpointSlices labelled with them (`multicluster` zones).
    pub multicluster: bool,
}

/// The zone's data. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Index {
    options: IndexOptions,
    /// `name.namespace` → entry.
    services: DashMap<Box<str>, Arc<ServiceEntry>>,
    /// `name.namespace` → external addresses, only for the Services that have some.
    external: DashMap<Box<str>, Arc<ExternalEntry>>,
    /// `name.namespace` → entry of a ServiceImport (`multicluster`; no PTRs).
    imports: DashMap<Box<str>, Arc<ServiceEntry>>,
    /// Namespaces that exist (a Namespace object, or at least one Service in it).
    namespaces: DashMap<Box<str>, ()>,
    /// Address → the PTR records owned there.
    reverse: reverse::ReverseMap,
    /// Pod IP → namespaces of the live pods with that IP (`pods = "verified"`).
    /// Each namespace with the number of its live pods there; counted as pods change, so no
    /// per-IP list of pods is kept.
    pod_ips: DashMap<IpAddr, PodNamespaces>,
    /// SOA serial: Unix time of the last change visible in DNS.
    serial: AtomicU32,
    synced: AtomicBool,
    writer: Mutex<Objects>,
}

/// The source of truth the entries are computed from; only writers touch it.
#[derive(Debug, Default)]
struct Objects {
    namespaces: HashSet<String>,
    services: HashMap<ObjectKey, Service>,
    /// The slices labelled with a Service.
    slices: slices::SliceLinks,
    /// Pod → (IP, terminating, host network): all the index needs (the key holds namespace
    /// and name).
    pods: HashMap<ObjectKey, (Option<IpAddr>, bool, bool)>,
    /// Pod IP → keys of the pods that have it.
    services_per_namespace: HashMap<String, usize>,
    synced: HashSet<ObjectKind>,
    /// ServiceImports and their slices (`multicluster`).
    mc: imports::ImportObjects,
}

/// What one batch of events touched.
#[derive(Default)]
struct Touched {
    services: BTreeSet<ObjectKey>,
    /// ServiceImports to rebuild.
    imports: BTreeSet<ObjectKey>,
    namespaces: BTreeSet<String>,
    /// A pod IP appeared in or vanished from a namespace.
    pods_changed: bool,
}

impl Index {
    pub fn new(options: IndexOptions) -> Self {
        Index {
            options,
            services: DashMap::new(),
            external: DashMap::new(),
            imports: DashMap::new(),
            namespaces: DashMap::new(),
            reverse: reverse::ReverseMap::default(),
            pod_ips: DashMap::new(),
            serial: AtomicU32::new(unix_now()),
            synced: AtomicBool::new(false),
            writer: Mutex::new(Objects::default()),
        }
    }

    // === reads (the query path) ===

    pub fn service(&self, key: &str) -> Option<Arc<ServiceEntry>> {
        self.services.get(key).map(|e| Arc::clone(e.value()))
    }

    /// The external addresses of a Service (`name.namespace`), if it has any.
    pub fn external(&self, key: &str) -> Option<Arc<ExternalEntry>> {
        self.external.get(key).map(|e| Arc::clone(e.value()))
    }

    /// The Services with `ip` among their external addresses, by key.
    pub fn externals_at(&self, ip: IpAddr) -> Vec<Box<str>> {
        let wanted = External::Ip(ip);
        let mut keys: Vec<Box<str>> = self
            .external
            .iter()
            .filter(|e| e.value().addrs.contains(&wanted))
            .map(|e| e.key().clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Every Service entry, by key (a copy of the handles, for a zone transfer).
    pub fn service_entries(&self) -> Vec<(Box<str>, Arc<ServiceEntry>)> {
        handles(&self.services)
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.namespaces.contains_key(namespace)
    }

    /// Is the namespace served (the `namespaces` option)?
    pub fn exposes(&self, namespace: &str) -> bool {
        self.exposed(namespace)
    }

    /// The names of the EndpointSlices labelled with the Service `key` (`name.namespace`), from
    /// the writer's copy (takes its lock: for diagnostics, not the query path).
    pub fn slice_names(&self, key: &str) -> Vec<String> {
        let Some((name, namespace)) = key.split_once('.') else {
            return Vec::new();
        };
        let objects = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        (objects
            .slices
            .names_of(&ObjectKey::new(namespace, name))
            .iter())
        .map(|n| n.to_string())
        .collect()
    }

    /// Calls `f` with the PTR owners of `ip` (under a shard read lock: keep `f` short).
    pub fn with_ptr_owners<R>(&self, ip: IpAddr, f: impl FnOnce(&[PtrOwner]) -> R) -> R {
        self.reverse.with(ip, f)
    }

    /// The namespace of the one live pod with this IP, if exactly one pod has it and does not
    /// share its node's address (what autopath may trust; coredns#2842, #7178).
    pub fn sole_pod_namespace<R>(&self, ip: IpAddr, f: impl FnOnce(&str) -> R) -> Option<R> {
        let entry = self.pod_ips.get(&ip)?;
        match entry.value().as_slice() {
            [(namespace, 1)] => Some(f(namespace)),
            _ => None,
        }
    }

    /// Is there a live pod with this IP in this namespace?
    pub fn pod_ip_in_namespace(&self, ip: IpAddr, namespace: &str) -> bool {
        self.pod_ips
            .get(&ip)
            .is_some_and(|nss| nss.iter().any(|(n, _)| &**n == namespace))
    }

    pub fn serial(&self) -> u32 {
        self.serial.load(Ordering::Relaxed)
    }

    /// Has every watched kind been listed completely once?
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    // === writes ===

    /// Applies a batch of events; entries of every Service they touch are rebuilt once at the end.
    /// In the server only the writer thread ([`spawn_writer`]) calls this; tests, benches and
    /// fuzz targets call it directly.
    pub fn apply(&self, events: impl IntoIterator<Item = ClusterEvent>) {
        let mut objects = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut touched = Touched::default();
        for event in events {
            self.apply_one(&mut objects, event, &mut touched);
        }
        let mut changed = false;
        for key in &touched.services {
            changed |= self.rebuild_service(&objects, key);
        }
        for key in &touched.imports {
            changed |= self.rebuild_import(&objects, key);
        }
        for ns in &touched.namespaces {
            let exists = objects.namespaces.contains(ns)
                || objects
                    .services_per_namespace
                    .get(ns)
                    .is_some_and(|n| *n > 0);
            let present = self.namespaces.contains_key(ns.as_str());
            if exists != present {
                changed = true;
                if exists {
                    self.namespaces.insert(ns.as_str().into(), ());
                } else {
                    self.namespaces.remove(ns.as_str());
                }
            }
        }
        changed |= touched.pods_changed;
        if changed {
            self.serial.fetch_max(unix_now(), Ordering::Relaxed);
        }
        let needed = |k: &ObjectKind| match k {
            ObjectKind::Pod => self.options.track_pods,
            ObjectKind::EndpointSlice => !self.options.no_endpoints || self.options.multicluster,
            ObjectKind::ServiceImport => self.options.multicluster,
            _ => true,
        };
        if !self.is_synced()
            && (ObjectKind::ALL.iter())
                .filter(|k| needed(k))
                .all(|k| objects.synced.contains(k))
        {
            self.synced.store(true, Ordering::Release);
        }
    }

    fn exposed(&self, namespace: &str) -> bool {
        self.options.namespaces.is_empty() || self.options.namespaces.iter().any(|n| n == namespace)
    }

    fn apply_one(&self, objects: &mut Objects, event: ClusterEvent, touched: &mut Touched) {
        match event {
            ClusterEvent::Upsert(object) => self.upsert(objects, object, touched),
            ClusterEvent::Delete(kind, key) => self.delete(objects, kind, &key, touched),
            ClusterEvent::Resync {
                kind,
                namespace,
                objects: list,
            } => {
                let keep: HashSet<ObjectKey> = list.iter().map(|o| lower_key(&o.key())).collect();
                let in_scope =
                    |k: &ObjectKey| namespace.as_deref().is_none_or(|ns| k.namespace == ns);
                let existing: Vec<ObjectKey> = match kind {
                    ObjectKind::Namespace => objects
                        .namespaces
                        .iter()
                        .map(|n| ObjectKey::new("", n))
                        .collect(),
                    ObjectKind::Service => objects.services.keys().cloned().collect(),
                    // With `noendpoints` and `multicluster` only the imports' slices are kept.
                    ObjectKind::EndpointSlice => (objects.slices.keys())
                        .chain((objects.mc.slices.keys()).filter(|k| !objects.slices.contains(k)))
                        .cloned()
                        .collect(),
                    ObjectKind::Pod => objects.pods.keys().cloned().collect(),
                    ObjectKind::ServiceImport => objects.mc.imports.keys().cloned().collect(),
                };
                for key in existing
                    .into_iter()
                    .filter(|k| in_scope(k) && !keep.contains(k))
                {
                    self.delete(objects, kind, &key, touched);
                }
                for object in list {
                    self.upsert(objects, object, touched);
                }
            }
            ClusterEvent::Synced(kind) => {
                objects.synced.insert(kind);
            }
        }
    }

    fn upsert(&self, objects: &mut Objects, object: ClusterObject, touched: &mut Touched) {
        let key = lower_key(&object.key());
        if object.kind() != ObjectKind::Namespace && !self.exposed(&key.namespace) {
            return;
        }
        match object {
            ClusterObject::Namespace(_) => {
                if self.exposed(&key.name) && objects.namespaces.insert(key.name.clone()) {
                    touched.namespaces.insert(key.name);
                }
            }
            ClusterObject::Service(svc) => {
                if objects.services.get(&key) == Some(&svc) {
                    return;
                }
                if objects.services.insert(key.clone(), svc).is_none() {
                    *objects
                        .services_per_namespace
                        .entry(key.namespace.clone())
                        .or_default() += 1;
                    touched.namespaces.insert(key.namespace.clone());
                }
                touched.services.insert(key);
            }
            ClusterObject::EndpointSet(set) => {
                if self.options.multicluster {
                    let entry = records::import_slice_entry(&set, self.options.build);
                    touched
                        .imports
                        .extend(objects.mc.slices.upsert(&key, entry));
                }
                if !self.options.no_endpoints {
                    // Only what answers use is kept (a changed option builds a new index from
                    // a new source, so nothing dropped here is needed later).
                    let entry = records::slice_entry(&set, self.options.build);
                    touched
                        .services
                        .extend(objects.slices.upsert(&key, Some(entry)));
                }
            }
            ClusterObject::ServiceImport(import) => {
                if self.options.multicluster {
                    self.upsert_import(objects, key, import, touched);
                }
            }
            ClusterObject::Pod(pod) => {
                let state = (pod.ip, pod.terminating, pod.host_network);
                if !self.options.track_pods || objects.pods.get(&key) == Some(&state) {
                    return;
                }
                if let Some((Some(ip), false, host)) = objects.pods.insert(key.clone(), state) {
                    touched.pods_changed |= self.count_pod(ip, &key.namespace, weight(host), false);
                }
                if let (Some(ip), false, host) = state {
                    touched.pods_changed |= self.count_pod(ip, &key.namespace, weight(host), true);
                }
            }
        }
    }

    /// A slice as its Service's entry uses it.
    fn delete(
        &self,
        objects: &mut Objects,
        kind: ObjectKind,
        key: &ObjectKey,
        touched: &mut Touched,
    ) {
        let key = lower_key(key);
        match kind {
            ObjectKind::Namespace => {
                if objects.namespaces.remove(&key.name) {
                    touched.namespaces.insert(key.name);
                }
            }
            ObjectKind::Service => {
                if objects.services.remove(&key).is_some() {
                    if let Some(n) = objects.services_per_namespace.get_mut(&key.namespace) {
                        *n = n.saturating_sub(1);
                    }
                    touched.namespaces.insert(key.namespace.clone());
                    touched.services.insert(key);
                }
            }
            ObjectKind::EndpointSlice => {
                touched.services.extend(objects.slices.remove(&key));
                touched.imports.extend(objects.mc.slices.remove(&key));
            }
            ObjectKind::ServiceImport => self.delete_import(objects, &key, touched),
            ObjectKind::Pod => {
                if let Some((Some(ip), false, host)) = objects.pods.remove(&key) {
                    touched.pods_changed |= self.count_pod(ip, &key.namespace, weight(host), false);
                }
            }
        }
    }

    /// Recomputes one Service's entry and its PTRs. Returns whether anything changed.
    fn rebuild_service(&self, objects: &Objects, key: &ObjectKey) -> bool {
        let map_key = format!("{}.{}", key.name, key.namespace);
        let external_changed = self.rebuild_external(&map_key, objects.services.get(key));
        let new = objects
            .services
            .get(key)
            .map(|svc| Arc::new(records::service_entry(svc, &objects.slices.entries_of(key))));
        let old = self.service(&map_key);
        if old.as_deref() == new.as_deref() {
            return external_changed;
        }
        // The name before the PTRs that point to it; the PTRs gone before the name.
        match new {
            Some(entry) => {
                self.services.insert(map_key.as_str().into(), entry.clone());
                self.swap_ptrs(&map_key, old.as_deref(), Some(&entry));
            }
            None => {
                self.swap_ptrs(&map_key, old.as_deref(), None);
                self.services.remove(map_key.as_str());
            }
        }
        true
    }

    /// Recomputes a Service's external addresses; whether they changed.
    fn rebuild_external(&self, map_key: &str, service: Option<&Service>) -> bool {
        let new = service.and_then(external_entry);
        let old = self.external(map_key);
        if old.as_deref() == new.as_ref() {
            return false;
        }
        match new {
            Some(entry) => {
                self.external.insert(map_key.into(), Arc::new(entry));
            }
            None => {
                self.external.remove(map_key);
            }
        }
        true
    }

    /// Moves the PTR records `service` owns from `old` to `new`. The owner list of each address
    /// it owns now is rebuilt and replaced under that address's shard lock, so an address that
    /// keeps an owner is never seen without one; addresses it no longer owns are cleared last.
    fn swap_ptrs(&self, service: &str, old: Option<&ServiceEntry>, new: Option<&ServiceEntry>) {
        let mut mine: HashMap<IpAddr, PtrOwners> = HashMap::new();
        for (ip, target, cluster_ip) in new.into_iter().flat_map(ServiceEntry::ptr_owners) {
            let owners = mine.entry(ip).or_default();
            let ptr = PtrOwner {
                target: target.clone(),
                cluster_ip,
            };
            if !owners.contains(&ptr) {
                owners.push(ptr);
            }
        }
        for (ip, owners) in mine.iter() {
            self.reverse.replace(*ip, service, owners);
        }
        for (ip, _, _) in old.into_iter().flat_map(ServiceEntry::ptr_owners) {
            if !mine.contains_key(&ip) {
                self.reverse.release(ip, service);
            }
        }
    }

    /// Counts a live pod at `ip` in `namespace` in or out, `weight` times. Returns whether the
    /// namespace appeared there or vanished (what `pods verified` answers change on).
    fn count_pod(&self, ip: IpAddr, namespace: &str, weight: u32, add: bool) -> bool {
        let emptied = {
            let mut entry = self.pod_ips.entry(ip).or_default();
            let list = entry.value_mut();
            match (list.iter().position(|(n, _)| **n == *namespace), add) {
                (Some(i), true) => {
                    list[i].1 += weight;
                    return false;
                }
                (Some(i), false) if list[i].1 > weight => {
                    list[i].1 -= weight;
                    return false;
                }
                (Some(i), false) => {
                    list.remove(i);
                    list.is_empty()
                }
                (None, true) => {
                    list.push((namespace.into(), weight));
                    return true;
                }
                // Not counted here (cannot happen while counts follow the pods); the entry
                // may have just been created empty by `or_default`.
                (None, false) => {
                    let created = list.is_empty();
                    drop(entry);
                    if created {
                        self.pod_ips.remove_if(&ip, |_, list| list.is_empty());
                    }
                    return false;
                }
            }
        };
        // The entry guard is dropped: removing under it would deadlock the shard.
        if emptied {
            self.pod_ips.remove_if(&ip, |_, list| list.is_empty());
        }
        true
    }
}

/// What a live pod counts at its IP (see [`HOST_NETWORK_WEIGHT`]).
fn weight(host_network: bool) -> u32 {
    if host_network { HOST_NETWORK_WEIGHT } else { 1 }
}

/// Starts the index's one writer, a thread that applies every batch the returned [`Sink`]
/// receives, together with the batches that queued up meanwhile. It ends when every sender is
/// gone (the source stopped).
pub fn spawn_writer(index: Arc<Index>) -> std::io::Result<Sink> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(WRITER_QUEUE);
    std::thread::Builder::new()
        .name("index-writer".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut events = first.events;
                let mut then: Vec<Box<dyn FnOnce() + Send>> = first.then.into_iter().collect();
                for _ in 1..MAX_COALESCED {
                    let Ok(more) = rx.try_recv() else { break };
                    events.extend(more.events);
                    then.extend(more.then);
                }
                let count = events.len();
                let started = Instant::now();
                index.apply(events);
                let elapsed = started.elapsed();
                if elapsed >= SLOW_APPLY {
                    tracing::info!(
                        events = count,
                        elapsed_ms = elapsed.as_millis() as u64,
                        "index: large update applied"
                    );
                }
                for f in then {
                    f();
                }
            }
        })?;
    Ok(tx)
}

fn lower_key(key: &ObjectKey) -> ObjectKey {
    ObjectKey::new(
        key.namespace.to_ascii_lowercase(),
        key.name.to_ascii_lowercase(),
    )
}

fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// Every entry of `map`, by key (a copy of the handles: the map moves on meanwhile).
fn handles<V>(map: &DashMap<Box<str>, Arc<V>>) -> Vec<(Box<str>, Arc<V>)> {
    let mut all: Vec<_> = map
        .iter()
        .map(|e| (e.key().clone(), Arc::clone(e.value())))
        .collect();
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::model::{Endpoint, EndpointSet, Port, ServiceKind};
    use std::sync::atomic::AtomicUsize;

    fn headless(ns: &str, name: &str) -> ClusterEvent {
        ClusterEvent::Upsert(ClusterObject::Service(Service {
            namespace: ns.into(),
            name: name.into(),
            kind: ServiceKind::Headless,
            ports: vec![],
            external: Box::default(),
        }))
    }

    /// A slice of `service` with one ready endpoint per `(address, pod name)`.
    fn slice(ns: &str, name: &str, service: &str, endpoints: &[(IpAddr, String)]) -> ClusterEvent {
        ClusterEvent::Upsert(ClusterObject::EndpointSet(EndpointSet {
            namespace: ns.into(),
            name: name.into(),
            service: Some(service.into()),
            endpoints: endpoints
                .iter()
                .map(|(ip, pod)| Endpoint {
                    addresses: vec![*ip],
                    ready: true,
                    hostname: None,
                    target_name: Some(pod.as_str().into()),
                })
                .collect(),
            ports: vec![Port {
                name: "http".into(),
                protocol: "TCP".into(),
                port: 80,
            }],
            import: None,
        }))
    }

    fn v4(i: usize) -> IpAddr {
        IpAddr::from([10, 2, (i / 250) as u8, (i % 250 + 1) as u8])
    }

    #[test]
    fn an_update_never_leaves_an_address_that_keeps_its_owner_without_a_ptr() {
        let index = Index::new(IndexOptions::default());
        // 500 endpoints: every update of the Service's entry re-does the PTRs it owns.
        let endpoints = |n: usize| -> Vec<(IpAddr, String)> {
            (0..n).map(|i| (v4(i), format!("web-{i}"))).collect()
        };
        index.apply([
            headless("a", "web"),
            slice("a", "web-1", "web", &endpoints(500)),
        ]);
        let watched = v4(0);
        assert!(index.with_ptr_owners(watched, |o| o.len() == 1));
        let (stop, absent, reads) = (
            AtomicBool::new(false),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    reads.fetch_add(1, Ordering::Relaxed);
                    if index.with_ptr_owners(watched, <[PtrOwner]>::is_empty) {
                        absent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            // The last endpoint comes and goes; the first one's owner never changes.
            for i in 0..300 {
                let n = if i % 2 == 0 { 499 } else { 500 };
                index.apply([slice("a", "web-1", "web", &endpoints(n))]);
            }
            stop.store(true, Ordering::Relaxed);
        });
        assert!(reads.load(Ordering::Relaxed) > 0);
        assert_eq!(
            absent.load(Ordering::Relaxed),
            0,
            "reads that found no PTR owner"
        );
    }

    #[test]
    fn churn_of_dotted_pod_names_leaves_no_ptr_owner_behind() {
        let owner = PtrOwner {
            target: "web.v2-0.db.shop.svc".into(),
            cluster_ip: false,
        };
        assert_eq!(owner.service(), "db.shop", "read from the right");
        let index = Index::new(IndexOptions {
            build: BuildOptions {
                endpoint_pod_names: true,
            },
            ..Default::default()
        });
        index.apply([headless("a", "db")]);
        for round in 0..20 {
            // Pods replaced under new names and addresses, dotted and plain.
            let endpoints: Vec<(IpAddr, String)> = (0..5)
                .map(|i| (v4(round * 5 + i), format!("db.v{round}-{i}")))
                .chain([(v4(900 + round), format!("db-{round}"))])
                .collect();
            index.apply([slice("a", "db-1", "db", &endpoints)]);
            let owned = index.reverse.owner_count();
            assert_eq!(
                owned, 6,
                "round {round}: only the current endpoints own PTRs"
            );
        }
        index.apply([
            ClusterEvent::Delete(ObjectKind::EndpointSlice, ObjectKey::new("a", "db-1")),
            ClusterEvent::Delete(ObjectKind::Service, ObjectKey::new("a", "db")),
        ]);
        assert!(index.reverse.is_empty(), "no owner left behind");
        assert!(index.services.is_empty());
    }

    #[test]
    fn the_writer_applies_batches_off_the_callers_thread_and_ends_with_its_senders() {
        let index = Arc::new(Index::new(IndexOptions::default()));
        let sink = spawn_writer(index.clone()).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let mut batches = vec![Batch::new(vec![headless("a", "web")])];
        batches.extend((0..10).map(|i| {
            Batch::new(vec![slice(
                "a",
                "web-1",
                "web",
                &[(v4(i), format!("web-{i}"))],
            )])
        }));
        for kind in ObjectKind::ALL {
            batches.push(Batch::new(vec![ClusterEvent::Synced(kind)]));
        }
        batches.last_mut().unwrap().then = Some(Box::new(move || {
            done_tx
                .send(std::thread::current().name().map(str::to_owned))
                .unwrap();
        }));
        for batch in batches {
            sink.blocking_send(batch).unwrap();
        }
        let thread = done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the last batch applied");
        assert_eq!(thread.as_deref(), Some("index-writer"));
        assert!(index.is_synced());
        let entry = index.service("web.a").expect("served");
        assert_eq!(entry.v4, vec![std::net::Ipv4Addr::new(10, 2, 0, 10)]);
        assert!(index.with_ptr_owners(v4(9), |o| o.len() == 1));
        assert!(index.with_ptr_owners(v4(8), <[PtrOwner]>::is_empty));
        // Every sender gone: the thread ends and drops its handle on the index.
        drop(sink);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Arc::strong_count(&index) > 1 {
            assert!(Instant::now() < deadline, "the writer did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn pod(ns: &str, name: &str, ip: &str, terminating: bool) -> ClusterEvent {
        ClusterEvent::Upsert(ClusterObject::Pod(crate::cluster::model::Pod {
            namespace: ns.into(),
            name: name.into(),
            ip: Some(ip.parse().unwrap()),
            terminating,
            host_network: false,
        }))
    }

    #[test]
    fn pod_ips_follow_live_pods_per_namespace() {
        let index = Index::new(IndexOptions {
            track_pods: true,
            ..Default::default()
        });
        let ip: IpAddr = "10.1.0.5".parse().unwrap();
        let other: IpAddr = "10.1.0.6".parse().unwrap();
        index.apply([
            pod("a", "p1", "10.1.0.5", false),
            pod("a", "p2", "10.1.0.5", false),
        ]);
        assert!(index.pod_ip_in_namespace(ip, "a"));
        assert!(!index.pod_ip_in_namespace(ip, "b"));
        // One of two pods with the IP goes: still there.
        index.apply([ClusterEvent::Delete(
            ObjectKind::Pod,
            ObjectKey::new("a", "p1"),
        )]);
        assert!(index.pod_ip_in_namespace(ip, "a"));
        // The other terminates: gone; it moves to another IP: there, and not here.
        index.apply([pod("a", "p2", "10.1.0.5", true)]);
        assert!(!index.pod_ip_in_namespace(ip, "a"));
        index.apply([pod("a", "p2", "10.1.0.6", false)]);
        assert!(index.pod_ip_in_namespace(other, "a"));
        assert!(!index.pod_ip_in_namespace(ip, "a"));
        // The same IP in another namespace, then a repeated event changes nothing.
        index.apply([
            pod("b", "q", "10.1.0.6", false),
            pod("b", "q", "10.1.0.6", false),
        ]);
        assert!(index.pod_ip_in_namespace(other, "b"));
        index.apply([ClusterEvent::Delete(
            ObjectKind::Pod,
            ObjectKey::new("a", "p2"),
        )]);
        assert!(!index.pod_ip_in_namespace(other, "a"));
        assert!(index.pod_ip_in_namespace(other, "b"));
        index.apply([ClusterEvent::Delete(
            ObjectKind::Pod,
            ObjectKey::new("b", "q"),
        )]);
        assert!(index.pod_ips.is_empty(), "no entry left behind");
    }

    #[test]
    fn only_an_ip_one_ordinary_pod_holds_names_a_namespace() {
        let index = Index::new(IndexOptions {
            track_pods: true,
            ..Default::default()
        });
        let namespace = |ip: &str| index.sole_pod_namespace(ip.parse().unwrap(), str::to_owned);
        let host = |ns: &str, name: &str, ip: &str| {
            ClusterEvent::Upsert(ClusterObject::Pod(crate::cluster::model::Pod {
                host_network: true,
                ..match pod(ns, name, ip, false) {
                    ClusterEvent::Upsert(ClusterObject::Pod(p)) => p,
                    _ => unreachable!(),
                }
            }))
        };
        index.apply([pod("a", "p1", "10.1.0.5", false)]);
        assert_eq!(namespace("10.1.0.5").as_deref(), Some("a"));
        // A reused IP during churn: two pods, two namespaces: nobody's.
        index.apply([pod("b", "p2", "10.1.0.5", false)]);
        assert_eq!(namespace("10.1.0.5"), None);
        index.apply([ClusterEvent::Delete(
            ObjectKind::Pod,
            ObjectKey::new("a", "p1"),
        )]);
        assert_eq!(namespace("10.1.0.5").as_deref(), Some("b"));
        // Two pods of one namespace: still ambiguous (which pod asked is unknown).
        index.apply([pod("b", "p3", "10.1.0.5", false)]);
        assert_eq!(namespace("10.1.0.5"), None);
        // One host-network pod alone at the node's IP: never trusted, yet verified finds it.
        index.apply([host("kube-system", "proxy", "10.0.0.1")]);
        assert_eq!(namespace("10.0.0.1"), None);
        assert!(index.pod_ip_in_namespace("10.0.0.1".parse().unwrap(), "kube-system"));
        index.apply([ClusterEvent::Delete(
            ObjectKind::Pod,
            ObjectKey::new("kube-system", "proxy"),
        )]);
        assert!(!index.pod_ip_in_namespace("10.0.0.1".parse().unwrap(), "kube-system"));
    }

    #[test]
    fn external_addresses_are_kept_only_for_services_that_have_some() {
        let index = Index::new(IndexOptions::default());
        let with = |external: Vec<External>| {
            ClusterEvent::Upsert(ClusterObject::Service(Service {
                namespace: "a".into(),
                name: "lb".into(),
                kind: ServiceKind::ClusterIp(vec![v4(1)]),
                ports: vec![],
                external: external.into(),
            }))
        };
        index.apply([with(vec![]), headless("a", "web")]);
        assert!(index.external.is_empty(), "none without addresses");
        index.serial.store(0, Ordering::Relaxed);
        index.apply([with(vec![External::Ip(v4(7))])]);
        let entry = index.external("lb.a").expect("kept");
        assert_eq!(&*entry.addrs, [External::Ip(v4(7))]);
        assert_eq!(entry.ports[0].port, None, "the portless stand-in");
        assert!(index.serial() > 0, "an external change moves the serial");
        index.apply([with(vec![External::Hostname("lb.example.net".into())])]);
        assert_eq!(
            &*index.external("lb.a").unwrap().addrs,
            [External::Hostname("lb.example.net".into())]
        );
        index.apply([ClusterEvent::Delete(
            ObjectKind::Service,
            ObjectKey::new("a", "lb"),
        )]);
        assert!(index.external("lb.a").is_none(), "gone with the Service");
    }
}
