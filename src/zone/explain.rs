//! Why a cluster name answers what it answers: the objects behind its records, or the reason it
//! does not exist (`clusterdns explain`, `GET /explain`). Off the query path: it reads the
//! index as a query would and allocates freely.

use std::net::IpAddr;

use super::ClusterZone;
use super::lookup::{best_zone, pod_ip, relative, reverse_ip};
use super::qname::{self, Branch, Selector, Shape};
use super::records::{EntryKind, ServiceEntry};
use crate::config::{PodMode, is_reverse_zone};

/// Lines saying where `qname` (lower-case, no trailing dot) comes from in `zone`.
pub fn explain(zone: &ClusterZone, qname: &str) -> Vec<String> {
    let Some(matched) = best_zone(&zone.config.zones, qname) else {
        return vec![format!(
            "{qname} is in none of the cluster zones {:?}",
            zone.config.zones
        )];
    };
    let rel = relative(qname, matched);
    let mut lines = vec![format!("cluster zone {matched}")];
    if !zone.index.is_synced() {
        lines.push(
            "the cluster has not been listed completely yet: absent names are SERVFAIL".into(),
        );
    }
    if is_reverse_zone(matched) {
        lines.extend(reverse(zone, qname, rel));
    } else if zone.config.is_multicluster(matched) {
        lines.push("multicluster: service names come from ServiceImports and the EndpointSlices labelled with them".into());
        lines.extend(imported(zone, rel));
    } else {
        lines.extend(forward(zone, rel));
    }
    if zone
        .config
        .fallthrough
        .iter()
        .any(|z| z.is_empty() || super::lookup::in_zone(qname, z))
    {
        lines
            .push("fallthrough: a name that does not exist here goes on to the next plugin".into());
    }
    lines
}

fn reverse(zone: &ClusterZone, qname: &str, rel: &str) -> Vec<String> {
    if rel.is_empty() {
        return vec!["the zone apex: SOA and NS".into()];
    }
    let Some(ip) = reverse_ip(qname) else {
        return vec!["not a whole address (4 octets or 32 nibbles): NXDOMAIN".into()];
    };
    zone.index.with_ptr_owners(ip, |owners| {
        if owners.is_empty() {
            return vec![format!(
                "no Service ClusterIP or ready endpoint has the address {ip}: NXDOMAIN"
            )];
        }
        owners
            .iter()
            .map(|o| {
                let what = if o.cluster_ip {
                    "the ClusterIP of"
                } else {
                    "an endpoint of"
                };
                format!(
                    "{ip} is {what} Service {} (PTR {}.{})",
                    service_ref(o.service()),
                    o.target,
                    zone.config.primary
                )
            })
            .collect()
    })
}

fn forward(zone: &ClusterZone, rel: &str) -> Vec<String> {
    let index = &zone.index;
    match qname::parse(rel) {
        Shape::Apex => vec!["the zone apex: SOA and NS".into()],
        Shape::DnsVersion => vec!["dns-version: the schema version TXT (1.1.0)".into()],
        Shape::Dns => vec!["dns: the empty parent of ns.dns (NODATA)".into()],
        Shape::NsDns => vec![format!("ns.dns: the server's own addresses {:?}", zone.config.own_addrs)],
        Shape::Branch(b) => vec![format!("{}: an empty non-terminal (NODATA)", branch(b))],
        Shape::Namespace { namespace, .. } => vec![namespace_state(zone, namespace)],
        Shape::Object { branch: Branch::Pod, namespace, name, .. } => pod(zone, namespace, name),
        Shape::Object { namespace, key, selector, .. } => {
            if !index.exposes(namespace) || !index.namespace_exists(namespace) {
                return vec![namespace_state(zone, namespace)];
            }
            match index.service(key) {
                None => vec![format!("no Service named {} in namespace {namespace}: NXDOMAIN", key.split('.').next().unwrap_or(key))],
                Some(entry) => service(zone, key, &entry, selector),
            }
        }
        Shape::Invalid => vec![
            "not a name the Kubernetes DNS specification defines (<svc>.<ns>.svc, <ip>.<ns>.pod, _port._proto.<svc>.<ns>.svc, <endpoint>.<svc>.<ns>.svc): NXDOMAIN".into(),
        ],
    }
}

/// A name below a `multicluster` zone: imports for service names, the rest as `forward`.
fn imported(zone: &ClusterZone, rel: &str) -> Vec<String> {
    let Shape::Object {
        branch: Branch::Svc,
        namespace,
        name,
        key,
        selector,
    } = qname::parse_multicluster(rel)
    else {
        if qname::parse(rel) == Shape::DnsVersion {
            return vec![
                "dns-version: the Multi-Cluster Services schema version TXT (1.0.0)".into(),
            ];
        }
        return forward(zone, rel);
    };
    if !zone.index.exposes(namespace) || !zone.index.namespace_exists(namespace) {
        return vec![namespace_state(zone, namespace)];
    }
    let Some(entry) = zone.index.import(key) else {
        return vec![format!("no ServiceImport {}: NXDOMAIN", service_ref(key))];
    };
    let what = match &entry.kind {
        EntryKind::ClusterIp(ips) => format!("ClusterSetIP {ips:?}"),
        _ => kind(&entry),
    };
    let ready: usize = entry.slices.iter().map(|s| s.endpoints.len()).sum();
    let mut lines = vec![
        format!("ServiceImport {}: {what}", service_ref(key)),
        format!(
            "{ready} ready endpoint address(es) in the EndpointSlices labelled multicluster.kubernetes.io/service-name={name}"
        ),
    ];
    lines.extend(selected(zone, &entry, selector));
    lines
}

fn branch(b: Branch) -> &'static str {
    match b {
        Branch::Svc => "svc",
        Branch::Pod => "pod",
    }
}

fn namespace_state(zone: &ClusterZone, namespace: &str) -> String {
    if !zone.index.exposes(namespace) {
        format!(
            "namespace {namespace} is not served (the namespaces option leaves it out): NXDOMAIN"
        )
    } else if zone.index.namespace_exists(namespace) {
        format!("namespace {namespace} exists (a Namespace object or a Service in it): NODATA")
    } else {
        format!("namespace {namespace} does not exist (no Namespace object, no Service): NXDOMAIN")
    }
}

fn pod(zone: &ClusterZone, namespace: &str, label: &str) -> Vec<String> {
    let Some(ip) = pod_ip(label) else {
        return vec![format!(
            "{label} is not a dashed IPv4 or IPv6 address: NXDOMAIN"
        )];
    };
    let line = match zone.config.pods {
        PodMode::Disabled => "pods = \"disabled\": pod names are not served: NXDOMAIN".to_owned(),
        PodMode::Insecure => {
            format!("pods = \"insecure\": the address the name spells, {ip}, unchecked")
        }
        PodMode::Verified => verified(zone, namespace, ip),
    };
    if !zone.index.exposes(namespace) || !zone.index.namespace_exists(namespace) {
        return vec![namespace_state(zone, namespace)];
    }
    vec![line]
}

fn verified(zone: &ClusterZone, namespace: &str, ip: IpAddr) -> String {
    if zone.index.pod_ip_in_namespace(ip, namespace) {
        format!("pods = \"verified\": a live pod in {namespace} has the address {ip}")
    } else {
        format!("pods = \"verified\": no live pod in {namespace} has the address {ip}: NXDOMAIN")
    }
}

fn service(
    zone: &ClusterZone,
    key: &str,
    entry: &ServiceEntry,
    selector: Selector<'_>,
) -> Vec<String> {
    let mut lines = vec![format!("Service {}: {}", service_ref(key), kind(entry))];
    let slices = zone.index.slice_names(key);
    let ready: usize = entry.slices.iter().map(|s| s.endpoints.len()).sum();
    if !slices.is_empty() || ready > 0 {
        lines.push(format!(
            "EndpointSlices {slices:?}: {ready} ready endpoint address(es)"
        ));
    }
    let ports: Vec<String> = entry
        .ports
        .iter()
        .filter_map(|p| Some(format!("{}/{} {}", p.name, p.protocol, p.port?)))
        .collect();
    if !ports.is_empty() {
        lines.push(format!("ports {ports:?}"));
    }
    lines.extend(selected(zone, entry, selector));
    lines
}

fn kind(entry: &ServiceEntry) -> String {
    match &entry.kind {
        EntryKind::ClusterIp(ips) => format!("ClusterIP {ips:?}"),
        EntryKind::Headless if entry.has_ready_endpoints() => {
            "headless: its ready endpoints answer".into()
        }
        EntryKind::Headless => "headless without ready endpoints: NXDOMAIN (as CoreDNS)".into(),
        EntryKind::ExternalName(Some(target)) => format!("ExternalName: CNAME to {target}"),
        EntryKind::ExternalName(None) => {
            "ExternalName with an IP address: not served (NXDOMAIN, as CoreDNS)".into()
        }
    }
}

/// What an endpoint label or a `_port._proto` selects.
fn selected(zone: &ClusterZone, entry: &ServiceEntry, selector: Selector<'_>) -> Vec<String> {
    match selector {
        Selector::Service => {
            if zone.config.ignore_empty_service && !entry.has_ready_endpoints() {
                return vec!["ignore_empty_service: no ready endpoints: NXDOMAIN".into()];
            }
            Vec::new()
        }
        Selector::Endpoint(label) => {
            let hits: Vec<String> = entry
                .endpoints()
                .filter(|(e, _)| e.label() == label)
                .map(|(e, _)| e.ip.to_string())
                .collect();
            if hits.is_empty() {
                vec![format!("no ready endpoint is named {label}: NXDOMAIN")]
            } else {
                vec![format!("endpoint {label}: {hits:?}")]
            }
        }
        Selector::Port { port, protocol } => {
            // The ports the answer would use: the Service's for a ClusterIP, the slices' else.
            let by_endpoints = matches!(entry.kind, EntryKind::Headless);
            if super::lookup::hit_count(entry, selector, by_endpoints) > 0 {
                vec![format!("port _{port}._{protocol}: SRV records")]
            } else {
                vec![format!("no port named {port} over {protocol}: NXDOMAIN")]
            }
        }
    }
}

/// `name.namespace` as `namespace/name`.
fn service_ref(key: &str) -> String {
    match key.split_once('.') {
        Some((name, namespace)) => format!("{namespace}/{name}"),
        None => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::test_support::zone_from;
    use crate::zone::{IndexOptions, ZoneConfig};

    const CLUSTER: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- {apiVersion: v1, kind: Namespace, metadata: {name: hidden}}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec: {clusterIP: 10.0.0.1, ports: [{name: http, port: 80, protocol: TCP}]}
- apiVersion: v1
  kind: Service
  metadata: {name: db, namespace: shop}
  spec: {clusterIP: None, ports: [{name: pg, port: 5432, protocol: TCP}]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: db-abc, namespace: shop, labels: {kubernetes.io/service-name: db}}
  addressType: IPv4
  endpoints: [{addresses: [10.1.0.5], hostname: db-0, conditions: {ready: true}}]
  ports: [{name: pg, port: 5432, protocol: TCP}]
- apiVersion: v1
  kind: Service
  metadata: {name: empty, namespace: shop}
  spec: {clusterIP: None}
- apiVersion: v1
  kind: Service
  metadata: {name: ext, namespace: shop}
  spec: {type: ExternalName, externalName: 10.9.9.9}
- apiVersion: v1
  kind: Pod
  metadata: {name: p, namespace: shop}
  status: {podIP: 10.1.0.7}
"#;

    fn zone(pods: PodMode) -> ClusterZone {
        zone_of(pods, vec!["shop".into()])
    }

    fn zone_of(pods: PodMode, namespaces: Vec<String>) -> ClusterZone {
        let options = IndexOptions {
            namespaces,
            track_pods: true,
            ..Default::default()
        };
        zone_from(
            &[CLUSTER],
            options,
            ZoneConfig {
                zones: vec!["cluster.local".into(), "in-addr.arpa".into()],
                primary: "cluster.local".into(),
                ttl: 5,
                pods,
                fallthrough: vec!["in-addr.arpa".into()],
                ignore_empty_service: false,
                multicluster: Vec::new(),
                own_addrs: vec![],
            },
        )
    }

    /// The lines for `name`, joined.
    fn why(zone: &ClusterZone, name: &str) -> String {
        explain(zone, name).join("\n")
    }

    #[test]
    fn each_reason_a_name_has_or_lacks_records() {
        let z = zone(PodMode::Verified);
        let cases = [
            (
                "web.shop.svc.cluster.local",
                "Service shop/web: ClusterIP [10.0.0.1]",
            ),
            (
                "_http._tcp.web.shop.svc.cluster.local",
                "port _http._tcp: SRV records",
            ),
            (
                "_grpc._tcp.web.shop.svc.cluster.local",
                "no port named grpc over tcp: NXDOMAIN",
            ),
            (
                "db.shop.svc.cluster.local",
                "EndpointSlices [\"db-abc\"]: 1 ready endpoint",
            ),
            (
                "db-0.db.shop.svc.cluster.local",
                "endpoint db-0: [\"10.1.0.5\"]",
            ),
            (
                "db-9.db.shop.svc.cluster.local",
                "no ready endpoint is named db-9: NXDOMAIN",
            ),
            (
                "empty.shop.svc.cluster.local",
                "headless without ready endpoints: NXDOMAIN",
            ),
            (
                "ext.shop.svc.cluster.local",
                "ExternalName with an IP address: not served",
            ),
            (
                "nope.shop.svc.cluster.local",
                "no Service named nope in namespace shop: NXDOMAIN",
            ),
            ("web.gone.svc.cluster.local", "namespace gone is not served"),
            (
                "web.hidden.svc.cluster.local",
                "namespace hidden is not served",
            ),
            ("shop.svc.cluster.local", "namespace shop exists"),
            (
                "10-1-0-7.shop.pod.cluster.local",
                "a live pod in shop has the address 10.1.0.7",
            ),
            (
                "10-1-0-8.shop.pod.cluster.local",
                "no live pod in shop has the address 10.1.0.8: NXDOMAIN",
            ),
            (
                "x-y.shop.pod.cluster.local",
                "x-y is not a dashed IPv4 or IPv6 address",
            ),
            (
                "a.b.c.d.e.svc.cluster.local",
                "not a name the Kubernetes DNS specification defines",
            ),
            (
                "dns-version.cluster.local",
                "dns-version: the schema version TXT",
            ),
            (
                "1.0.0.10.in-addr.arpa",
                "10.0.0.1 is the ClusterIP of Service shop/web",
            ),
            (
                "5.0.1.10.in-addr.arpa",
                "10.1.0.5 is an endpoint of Service shop/db",
            ),
            (
                "9.9.9.10.in-addr.arpa",
                "no Service ClusterIP or ready endpoint has the address 10.9.9.9",
            ),
            ("9.9.10.in-addr.arpa", "not a whole address"),
            ("example.com", "in none of the cluster zones"),
        ];
        for (name, says) in cases {
            let text = why(&z, name);
            assert!(text.contains(says), "{name}: {text}");
        }
        assert!(why(&z, "9.9.9.10.in-addr.arpa").contains("fallthrough"));
        let disabled = zone(PodMode::Disabled);
        assert!(why(&disabled, "10-1-0-7.shop.pod.cluster.local").contains("pods = \"disabled\""));
        let all = zone_of(PodMode::Verified, Vec::new());
        assert!(why(&all, "web.gone.svc.cluster.local").contains("namespace gone does not exist"));
        assert!(
            why(&all, "web.hidden.svc.cluster.local")
                .contains("no Service named web in namespace hidden")
        );
        let insecure = zone(PodMode::Insecure);
        assert!(why(&insecure, "10-1-0-8.shop.pod.cluster.local").contains("unchecked"));
    }

    #[test]
    fn a_multicluster_name_is_explained_from_its_import() {
        const IMPORTS: &str = r#"
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: web, namespace: shop}
spec: {type: ClusterSetIP, ips: [10.96.0.1], ports: [{name: http, port: 80, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-east
  namespace: shop
  labels: {multicluster.kubernetes.io/service-name: web, multicluster.kubernetes.io/source-cluster: east}
addressType: IPv4
endpoints: [{addresses: [10.1.1.1], hostname: web-a}]
"#;
        let mut config = (*zone(PodMode::Disabled).config).clone();
        config.zones.push("clusterset.local".into());
        config.multicluster = vec!["clusterset.local".into()];
        let options = IndexOptions {
            multicluster: true,
            ..Default::default()
        };
        let z = zone_from(&[CLUSTER, IMPORTS], options, config);
        let cases = [
            (
                "web.shop.svc.clusterset.local",
                "ServiceImport shop/web: ClusterSetIP [10.96.0.1]",
            ),
            (
                "web-a.east.web.shop.svc.clusterset.local",
                "endpoint web-a.east: [\"10.1.1.1\"]",
            ),
            (
                "db.shop.svc.clusterset.local",
                "no ServiceImport shop/db: NXDOMAIN",
            ),
            ("shop.svc.clusterset.local", "namespace shop exists"),
            (
                "web.shop.svc.cluster.local",
                "Service shop/web: ClusterIP [10.0.0.1]",
            ),
        ];
        for (name, says) in cases {
            let text = why(&z, name);
            assert!(text.contains(says), "{name}: {text}");
        }
    }
}
