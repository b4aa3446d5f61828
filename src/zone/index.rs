//! The zone index: cluster events in, ready-to-serve entries out.
//!
//! One writer at a time (sources call [`Index::apply`]), any number of readers. Readers use
//! sharded concurrent maps and never wait on a writer for longer than one map insert. A change
//! recomputes only the Services it touches; the serial moves only when an answer changes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;

use super::records::{self, BuildOptions, ServiceEntry};
use crate::cluster::ClusterEvent;
use crate::cluster::model::{ClusterObject, EndpointSet, ObjectKey, ObjectKind, Pod, Service};

/// A PTR record some Service owns at an address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PtrOwner {
    /// `name.namespace` of the owning Service.
    pub service: Arc<str>,
    /// The target without the zone (`name.ns.svc` or `label.name.ns.svc`).
    pub target: Arc<str>,
    /// A ClusterIP (which wins over endpoint names, as in CoreDNS) or an endpoint address.
    pub cluster_ip: bool,
}

/// What the index needs to know from the configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexOptions {
    pub build: BuildOptions,
    /// Expose only these namespaces (lower-case); empty exposes all.
    pub namespaces: Vec<String>,
    /// Keep Pods (only `pods = "verified"` needs them).
    pub track_pods: bool,
}

/// The zone's data. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Index {
    options: IndexOptions,
    /// `name.namespace` → entry.
    services: DashMap<Box<str>, Arc<ServiceEntry>>,
    /// Namespaces that exist (a Namespace object, or at least one Service in it).
    namespaces: DashMap<Box<str>, ()>,
    /// Address → the PTR records owned there.
    reverse: DashMap<IpAddr, Vec<PtrOwner>>,
    /// Pod IP → namespaces of the live pods with that IP (`pods = "verified"`).
    pod_ips: DashMap<IpAddr, Vec<Box<str>>>,
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
    slices: HashMap<ObjectKey, EndpointSet>,
    /// Service key → names of the slices labelled with it.
    slices_of: HashMap<ObjectKey, BTreeSet<String>>,
    pods: HashMap<ObjectKey, Pod>,
    /// Pod IP → keys of the pods that have it.
    pods_by_ip: HashMap<IpAddr, BTreeSet<ObjectKey>>,
    services_per_namespace: HashMap<String, usize>,
    synced: HashSet<ObjectKind>,
}

/// What one batch of events touched.
#[derive(Default)]
struct Touched {
    services: BTreeSet<ObjectKey>,
    namespaces: BTreeSet<String>,
    pod_ips: BTreeSet<IpAddr>,
}

impl Index {
    pub fn new(options: IndexOptions) -> Self {
        Index {
            options,
            services: DashMap::new(),
            namespaces: DashMap::new(),
            reverse: DashMap::new(),
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

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.namespaces.contains_key(namespace)
    }

    /// Calls `f` with the PTR owners of `ip` (under a shard read lock: keep `f` short).
    pub fn with_ptr_owners<R>(&self, ip: IpAddr, f: impl FnOnce(&[PtrOwner]) -> R) -> R {
        match self.reverse.get(&ip) {
            Some(owners) => f(owners.value()),
            None => f(&[]),
        }
    }

    /// Is there a live pod with this IP in this namespace?
    pub fn pod_ip_in_namespace(&self, ip: IpAddr, namespace: &str) -> bool {
        self.pod_ips
            .get(&ip)
            .is_some_and(|nss| nss.iter().any(|n| &**n == namespace))
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
        for ip in &touched.pod_ips {
            changed |= self.rebuild_pod_ip(&objects, *ip);
        }
        if changed {
            self.serial.fetch_max(unix_now(), Ordering::Relaxed);
        }
        let needed: &[ObjectKind] = if self.options.track_pods {
            &ObjectKind::ALL
        } else {
            &[
                ObjectKind::Namespace,
                ObjectKind::Service,
                ObjectKind::EndpointSlice,
            ]
        };
        if !self.is_synced() && needed.iter().all(|k| objects.synced.contains(k)) {
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
                    ObjectKind::EndpointSlice => objects.slices.keys().cloned().collect(),
                    ObjectKind::Pod => objects.pods.keys().cloned().collect(),
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
            ClusterObject::EndpointSet(mut set) => {
                // Keep only what answers use: not-ready endpoints serve nothing, and the pod
                // name only names endpoints with `endpoint_pod_names` (a changed option builds a
                // new index from a new source, so nothing dropped here is needed later).
                set.endpoints.retain(|e| e.ready);
                if !self.options.build.endpoint_pod_names {
                    for endpoint in &mut set.endpoints {
                        endpoint.target_name = None;
                    }
                }
                set.endpoints.shrink_to_fit();
                if objects.slices.get(&key) == Some(&set) {
                    return;
                }
                if let Some(old) = objects.slices.remove(&key) {
                    self.unlink_slice(objects, &key, &old, touched);
                }
                if let Some(service) = &set.service {
                    let svc_key = ObjectKey::new(&key.namespace, service.to_ascii_lowercase());
                    objects
                        .slices_of
                        .entry(svc_key.clone())
                        .or_default()
                        .insert(key.name.clone());
                    touched.services.insert(svc_key);
                }
                objects.slices.insert(key, set);
            }
            ClusterObject::Pod(pod) => {
                if !self.options.track_pods || objects.pods.get(&key) == Some(&pod) {
                    return;
                }
                if let Some(ip) = pod.ip {
                    touched.pod_ips.insert(ip);
                    objects
                        .pods_by_ip
                        .entry(ip)
                        .or_default()
                        .insert(key.clone());
                }
                let new_ip = pod.ip;
                if let Some(old_ip) = objects.pods.insert(key.clone(), pod).and_then(|p| p.ip) {
                    touched.pod_ips.insert(old_ip);
                    if Some(old_ip) != new_ip {
                        unlink_pod_ip(objects, old_ip, &key);
                    }
                }
            }
        }
    }

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
                if let Some(old) = objects.slices.remove(&key) {
                    self.unlink_slice(objects, &key, &old, touched);
                }
            }
            ObjectKind::Pod => {
                if let Some(ip) = objects.pods.remove(&key).and_then(|p| p.ip) {
                    touched.pod_ips.insert(ip);
                    unlink_pod_ip(objects, ip, &key);
                }
            }
        }
    }

    fn unlink_slice(
        &self,
        objects: &mut Objects,
        key: &ObjectKey,
        old: &EndpointSet,
        touched: &mut Touched,
    ) {
        if let Some(service) = &old.service {
            let svc_key = ObjectKey::new(&key.namespace, service.to_ascii_lowercase());
            if let Some(names) = objects.slices_of.get_mut(&svc_key) {
                names.remove(&key.name);
                if names.is_empty() {
                    objects.slices_of.remove(&svc_key);
                }
            }
            touched.services.insert(svc_key);
        }
    }

    /// Recomputes one Service's entry and its PTRs. Returns whether anything changed.
    fn rebuild_service(&self, objects: &Objects, key: &ObjectKey) -> bool {
        let map_key = format!("{}.{}", key.name, key.namespace);
        let new = objects.services.get(key).map(|svc| {
            let slices: Vec<&EndpointSet> = objects
                .slices_of
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|name| objects.slices.get(&ObjectKey::new(&key.namespace, name)))
                .collect();
            Arc::new(records::service_entry(svc, &slices, self.options.build))
        });
        let old = self.service(&map_key);
        if old.as_deref() == new.as_deref() {
            return false;
        }
        let owner: Arc<str> = map_key.as_str().into();
        if let Some(old) = &old {
            for (ip, _, _) in old.ptr_owners() {
                let now_empty = match self.reverse.get_mut(&ip) {
                    Some(mut owners) => {
                        owners.retain(|o| o.service != owner);
                        owners.is_empty()
                    }
                    None => false,
                };
                if now_empty {
                    self.reverse.remove_if(&ip, |_, owners| owners.is_empty());
                }
            }
        }
        match new {
            Some(entry) => {
                for (ip, target, cluster_ip) in entry.ptr_owners() {
                    let ptr = PtrOwner {
                        service: owner.clone(),
                        target: target.clone(),
                        cluster_ip,
                    };
                    let mut owners = self.reverse.entry(ip).or_default();
                    if !owners.contains(&ptr) {
                        // Nearly every address has one owner: no spare capacity (a plain
                        // push would reserve four, 160 bytes per address).
                        owners.reserve_exact(1);
                        owners.push(ptr);
                        owners.sort();
                    }
                }
                self.services.insert(map_key.into(), entry);
            }
            None => {
                self.services.remove(map_key.as_str());
            }
        }
        true
    }

    fn rebuild_pod_ip(&self, objects: &Objects, ip: IpAddr) -> bool {
        let mut namespaces: Vec<Box<str>> = objects
            .pods_by_ip
            .get(&ip)
            .into_iter()
            .flatten()
            .filter(|k| objects.pods.get(*k).is_some_and(|p| !p.terminating))
            .map(|k| k.namespace.as_str().into())
            .collect();
        namespaces.sort();
        namespaces.dedup();
        let before = self
            .pod_ips
            .get(&ip)
            .map(|v| v.value().clone())
            .unwrap_or_default();
        if before == namespaces {
            return false;
        }
        if namespaces.is_empty() {
            self.pod_ips.remove(&ip);
        } else {
            self.pod_ips.insert(ip, namespaces);
        }
        true
    }
}

fn unlink_pod_ip(objects: &mut Objects, ip: IpAddr, key: &ObjectKey) {
    if let Some(keys) = objects.pods_by_ip.get_mut(&ip) {
        keys.remove(key);
        if keys.is_empty() {
            objects.pods_by_ip.remove(&ip);
        }
    }
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
