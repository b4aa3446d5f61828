//! The record list of a small index, as zone text in transfer order.

use super::*;
use crate::config::PodMode;
use crate::zone::test_support::zone_from;
use crate::zone::{IndexOptions, ZoneConfig};

const FIXTURE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.0.0.1
  clusterIPs: [10.0.0.1, "fd00::1"]
  ports:
  - {name: http, port: 80, protocol: TCP}
  - {port: 8080, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-a, namespace: data, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints:
- addresses: [10.1.0.1]
  hostname: db-0
- addresses: [10.1.0.2]
- addresses: [10.1.0.3]
  conditions: {ready: false}
ports: [{name: pg, port: 5432, protocol: TCP}, {port: 9, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: shop}
spec: {type: ExternalName, externalName: api.example.com}
---
apiVersion: v1
kind: Service
metadata: {name: literal, namespace: shop}
spec: {type: ExternalName, externalName: 192.0.2.1}
---
apiVersion: v1
kind: Service
metadata: {name: bare, namespace: shop}
spec: {clusterIP: 10.0.0.9}
"#;

fn zone(own: &str) -> ClusterZone {
    zone_from(
        &[FIXTURE],
        IndexOptions::default(),
        ZoneConfig {
            zones: vec!["cluster.local".into(), "in-addr.arpa".into()],
            primary: "cluster.local".into(),
            ttl: 7,
            pods: PodMode::Disabled,
            fallthrough: vec![],
            ignore_empty_service: false,
            multicluster: Vec::new(),
            own_addrs: vec![own.parse().unwrap()],
        },
    )
}

fn name(target: &Target) -> String {
    match target.suffix {
        Suffix::QueryZone => format!("{}.cluster.local.", target.labels),
        Suffix::Root => format!("{}.", target.labels),
        Suffix::Zone(ref z) => format!("{}.{z}.", target.labels),
    }
}

fn line(rr: &Rr) -> String {
    let owner = match &rr.owner {
        Owner::Name(t) => name(t),
        Owner::Query | Owner::QueryZone => "cluster.local.".into(),
    };
    let data = match &rr.data {
        Rdata::A(a) => format!("A {a}"),
        Rdata::Aaaa(a) => format!("AAAA {a}"),
        Rdata::Srv {
            priority,
            weight,
            port,
            target,
        } => format!("SRV {priority} {weight} {port} {}", name(target)),
        Rdata::Cname(t) => format!("CNAME {}", name(t)),
        Rdata::Ns(t) => format!("NS {}", name(t)),
        Rdata::Soa { minimum, .. } => format!("SOA (serial) {minimum}"),
        other => format!("{other:?}"),
    };
    format!("{owner} {} {data}", rr.ttl)
}

#[test]
fn a_small_index_transfers_as_coredns_lists_it() {
    let zone = zone("10.9.9.9");
    let lines: Vec<String> = zone_records(&zone, "cluster.local")
        .iter()
        .map(line)
        .collect();
    let want = [
        "cluster.local. 7 SOA (serial) 7",
        "cluster.local. 7 NS ns.dns.cluster.local.",
        "ns.dns.cluster.local. 7 A 10.9.9.9",
        // Services by name: alias, bare, db, literal (nothing), web.
        "alias.shop.svc.cluster.local. 7 CNAME api.example.com.",
        "bare.shop.svc.cluster.local. 7 A 10.0.0.9",
        "db.data.svc.cluster.local. 7 A 10.1.0.1",
        "db-0.db.data.svc.cluster.local. 7 A 10.1.0.1",
        "_pg._tcp.db.data.svc.cluster.local. 7 SRV 0 50 5432 db-0.db.data.svc.cluster.local.",
        "db.data.svc.cluster.local. 7 A 10.1.0.2",
        "10-1-0-2.db.data.svc.cluster.local. 7 A 10.1.0.2",
        "_pg._tcp.db.data.svc.cluster.local. 7 SRV 0 50 5432 10-1-0-2.db.data.svc.cluster.local.",
        "web.shop.svc.cluster.local. 7 A 10.0.0.1",
        "web.shop.svc.cluster.local. 7 AAAA fd00::1",
        "web.shop.svc.cluster.local. 7 SRV 0 100 80 web.shop.svc.cluster.local.",
        "_http._tcp.web.shop.svc.cluster.local. 7 SRV 0 100 80 web.shop.svc.cluster.local.",
        "web.shop.svc.cluster.local. 7 SRV 0 100 8080 web.shop.svc.cluster.local.",
        "cluster.local. 7 SOA (serial) 7",
    ];
    assert_eq!(lines, want);
}

#[test]
fn the_nameserver_is_the_service_whose_endpoint_is_our_address() {
    // 10.1.0.1 is an endpoint of the headless `db`: CoreDNS names the endpoint; clusterdns
    // names only ClusterIP Services, and falls back to ns.dns otherwise.
    let zone = zone("10.1.0.1");
    let records = zone_records(&zone, "cluster.local");
    let ns: Vec<String> = records[1..3].iter().map(line).collect();
    assert_eq!(
        ns,
        [
            "cluster.local. 7 NS ns.dns.cluster.local.",
            "ns.dns.cluster.local. 7 A 10.1.0.1"
        ]
    );
}

#[test]
fn srv_weights_are_coredns_floating_point_ones() {
    assert_eq!(srv_weight(1), 100);
    assert_eq!(srv_weight(2), 50);
    assert_eq!(srv_weight(3), 33);
    assert_eq!(srv_weight(7), 14);
    assert_eq!(srv_weight(200), 1);
}

#[test]
fn a_multicluster_zone_transfers_its_imports() {
    const IMPORTS: &str = r#"
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: db, namespace: data}
spec: {type: Headless, ports: [{name: pg, port: 5432, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-west
  namespace: data
  labels: {multicluster.kubernetes.io/service-name: db, multicluster.kubernetes.io/source-cluster: west}
addressType: IPv4
endpoints: [{addresses: [10.2.0.2], hostname: db-0}]
ports: [{name: pg, port: 5432, protocol: TCP}]
"#;
    let base = zone("10.9.9.9");
    let mut config = (*base.config).clone();
    // Names are rendered under cluster.local by `line`; the zone asked is the second one.
    config.zones.push("clusterset.local".into());
    config.multicluster = vec!["clusterset.local".into()];
    let options = IndexOptions {
        multicluster: true,
        ..IndexOptions::default()
    };
    let zone = zone_from(&[FIXTURE, IMPORTS], options, config);
    let lines: Vec<String> = zone_records(&zone, "clusterset.local")
        .iter()
        .map(line)
        .collect();
    assert_eq!(
        lines[3..lines.len() - 1],
        [
            "db.data.svc.cluster.local. 7 A 10.2.0.2",
            "db-0.west.db.data.svc.cluster.local. 7 A 10.2.0.2",
            "_pg._tcp.db.data.svc.cluster.local. 7 SRV 0 100 5432 db-0.west.db.data.svc.cluster.local.",
        ]
    );
    // The cluster zone of the same index still lists Services, not imports.
    let cluster: Vec<String> = zone_records(&zone, "cluster.local")
        .iter()
        .map(line)
        .collect();
    assert!(cluster.iter().any(|l| l.starts_with("web.shop.svc")));
    assert!(!cluster.iter().any(|l| l.contains("west")));
}
