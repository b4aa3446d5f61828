//! `multicluster` zones: the cases of CoreDNS's multicluster tests (its handler and services
//! tables: ClusterSetIP, headless across clusters, per-cluster endpoint names, SRV, NXDOMAIN,
//! the ClusterSetIP endpoint query) and KEP-1645's DNS section, on a fixture of our own: two
//! clusters, `east` and `west`, exporting into namespace `ns1`.

use super::*;

const MC_FIXTURE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ns1}
---
# A local Service of the same name as an import: cluster.local answers it, clusterset.local not.
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ns1}
spec: {clusterIP: 10.0.0.1, ports: [{name: http, port: 80, protocol: TCP}]}
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: web, namespace: ns1}
spec:
  type: ClusterSetIP
  ips: [10.96.0.10, "fd00::10"]
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-east
  namespace: ns1
  labels: {multicluster.kubernetes.io/service-name: web, multicluster.kubernetes.io/source-cluster: east}
addressType: IPv4
endpoints: [{addresses: [10.1.1.1], hostname: web-a}]
ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: quiet, namespace: ns1}
spec:
  type: ClusterSetIP
  ips: [10.96.0.11]
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: db, namespace: ns1}
spec: {type: Headless}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-east
  namespace: ns1
  labels: {multicluster.kubernetes.io/service-name: db, multicluster.kubernetes.io/source-cluster: east}
addressType: IPv4
endpoints:
- addresses: [10.1.0.2]
- {addresses: [10.1.0.4], hostname: twin}
- {addresses: [10.1.0.5], hostname: twin}
ports: [{name: pg, port: 5432, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-east-v6
  namespace: ns1
  labels: {multicluster.kubernetes.io/service-name: db, multicluster.kubernetes.io/source-cluster: east}
addressType: IPv6
endpoints: [{addresses: ["fd00:1::1"]}]
ports: [{name: pg, port: 5432, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-west
  namespace: ns1
  labels: {multicluster.kubernetes.io/service-name: db, multicluster.kubernetes.io/source-cluster: west}
addressType: IPv4
endpoints:
- {addresses: [10.2.0.2], hostname: db-0}
- {addresses: [10.2.0.9], hostname: db-1, conditions: {ready: false}}
ports: [{name: pg, port: 5432, protocol: TCP}]
---
# Labelled for a Service only: no import sees it.
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-local, namespace: ns1, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints: [{addresses: [10.3.0.3]}]
ports: [{name: pg, port: 5432, protocol: TCP}]
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: bare, namespace: ns1}
spec: {type: Headless}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bare-east
  namespace: ns1
  labels: {multicluster.kubernetes.io/service-name: bare, multicluster.kubernetes.io/source-cluster: east}
addressType: IPv4
endpoints: [{addresses: [10.1.0.20]}]
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: lonely, namespace: ns1}
spec: {type: Headless}
"#;

fn mc_zone(multicluster: bool, ignore_empty_service: bool) -> ClusterZone {
    let options = IndexOptions {
        multicluster,
        ..IndexOptions::default()
    };
    let index = crate::zone::test_support::index_from(&[MC_FIXTURE], options);
    assert!(index.is_synced());
    let mut config = default_setup().config;
    config.zones = ["cluster.local", "clusterset.local", "in-addr.arpa"]
        .map(String::from)
        .to_vec();
    if multicluster {
        config.multicluster = vec!["clusterset.local".into()];
    }
    config.ignore_empty_service = ignore_empty_service;
    ClusterZone {
        config: Arc::new(config),
        index: Arc::new(index),
    }
}

fn with_extra(mut c: Case, extra: &'static [&'static str]) -> Case {
    c.extra = extra;
    c
}

#[test]
fn cluster_set_ip_imports_answer_their_ips_and_srv() {
    check(
        &mc_zone(true, false),
        &[
            case(
                "web.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                &["web.ns1.svc.clusterset.local. 5 IN A 10.96.0.10"],
            ),
            case(
                "web.ns1.svc.clusterset.local",
                AAAA,
                "NOERROR",
                &["web.ns1.svc.clusterset.local. 5 IN AAAA fd00::10"],
            ),
            case("web.ns1.svc.clusterset.local", TXT, "NOERROR", NODATA),
            // Dual stack: one SRV record for the name, both addresses as glue.
            with_extra(
                case(
                    "_http._tcp.web.ns1.svc.clusterset.local",
                    SRV,
                    "NOERROR",
                    &[
                        "_http._tcp.web.ns1.svc.clusterset.local. 5 IN SRV 0 50 80 web.ns1.svc.clusterset.local.",
                    ],
                ),
                &[
                    "web.ns1.svc.clusterset.local. 5 IN A 10.96.0.10",
                    "web.ns1.svc.clusterset.local. 5 IN AAAA fd00::10",
                ],
            ),
            with_extra(
                case(
                    "web.ns1.svc.clusterset.local",
                    SRV,
                    "NOERROR",
                    &[
                        "web.ns1.svc.clusterset.local. 5 IN SRV 0 50 80 web.ns1.svc.clusterset.local.",
                    ],
                ),
                &[
                    "web.ns1.svc.clusterset.local. 5 IN A 10.96.0.10",
                    "web.ns1.svc.clusterset.local. 5 IN AAAA fd00::10",
                ],
            ),
            // One underscore is enough for the port form.
            with_extra(
                case(
                    "_http.tcp.web.ns1.svc.clusterset.local",
                    SRV,
                    "NOERROR",
                    &[
                        "_http.tcp.web.ns1.svc.clusterset.local. 5 IN SRV 0 50 80 web.ns1.svc.clusterset.local.",
                    ],
                ),
                &[
                    "web.ns1.svc.clusterset.local. 5 IN A 10.96.0.10",
                    "web.ns1.svc.clusterset.local. 5 IN AAAA fd00::10",
                ],
            ),
            case(
                "_http._udp.web.ns1.svc.clusterset.local",
                SRV,
                "NXDOMAIN",
                NODATA,
            ),
            // Without underscores two labels are an endpoint and a cluster, not a port.
            case(
                "http.tcp.web.ns1.svc.clusterset.local",
                SRV,
                "NXDOMAIN",
                NODATA,
            ),
            // An endpoint of a ClusterSetIP import, by hostname and cluster (CoreDNS's
            // `ep1a.cluster1.svc1`).
            case(
                "web-a.east.web.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                &["web-a.east.web.ns1.svc.clusterset.local. 5 IN A 10.1.1.1"],
            ),
            case(
                "web-a.west.web.ns1.svc.clusterset.local",
                A,
                "NXDOMAIN",
                NODATA,
            ),
            // Answered without ready endpoints (CoreDNS's `svcempty`).
            case(
                "quiet.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                &["quiet.ns1.svc.clusterset.local. 5 IN A 10.96.0.11"],
            ),
        ],
    );
}

const DB_SRV: &[&str] = &[
    "10-1-0-2.east.db.ns1.svc.clusterset.local. 5 IN A 10.1.0.2",
    "twin.east.db.ns1.svc.clusterset.local. 5 IN A 10.1.0.4",
    "twin.east.db.ns1.svc.clusterset.local. 5 IN A 10.1.0.5",
    "fd00-1--1.east.db.ns1.svc.clusterset.local. 5 IN AAAA fd00:1::1",
    "db-0.west.db.ns1.svc.clusterset.local. 5 IN A 10.2.0.2",
];

#[test]
fn headless_imports_answer_the_ready_endpoints_of_every_cluster() {
    check(
        &mc_zone(true, false),
        &[
            case(
                "db.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                &[
                    "db.ns1.svc.clusterset.local. 5 IN A 10.1.0.2",
                    "db.ns1.svc.clusterset.local. 5 IN A 10.1.0.4",
                    "db.ns1.svc.clusterset.local. 5 IN A 10.1.0.5",
                    "db.ns1.svc.clusterset.local. 5 IN A 10.2.0.2",
                ],
            ),
            case(
                "db.ns1.svc.clusterset.local",
                AAAA,
                "NOERROR",
                &["db.ns1.svc.clusterset.local. 5 IN AAAA fd00:1::1"],
            ),
            // Five hits, weight 20; `twin.east` once per port, with both addresses as glue.
            with_extra(
                case(
                    "_pg._tcp.db.ns1.svc.clusterset.local",
                    SRV,
                    "NOERROR",
                    &[
                        "_pg._tcp.db.ns1.svc.clusterset.local. 5 IN SRV 0 20 5432 10-1-0-2.east.db.ns1.svc.clusterset.local.",
                        "_pg._tcp.db.ns1.svc.clusterset.local. 5 IN SRV 0 20 5432 twin.east.db.ns1.svc.clusterset.local.",
                        "_pg._tcp.db.ns1.svc.clusterset.local. 5 IN SRV 0 20 5432 fd00-1--1.east.db.ns1.svc.clusterset.local.",
                        "_pg._tcp.db.ns1.svc.clusterset.local. 5 IN SRV 0 20 5432 db-0.west.db.ns1.svc.clusterset.local.",
                    ],
                ),
                DB_SRV,
            ),
            with_extra(
                case(
                    "db.ns1.svc.clusterset.local",
                    SRV,
                    "NOERROR",
                    &[
                        "db.ns1.svc.clusterset.local. 5 IN SRV 0 20 5432 10-1-0-2.east.db.ns1.svc.clusterset.local.",
                        "db.ns1.svc.clusterset.local. 5 IN SRV 0 20 5432 twin.east.db.ns1.svc.clusterset.local.",
                        "db.ns1.svc.clusterset.local. 5 IN SRV 0 20 5432 fd00-1--1.east.db.ns1.svc.clusterset.local.",
                        "db.ns1.svc.clusterset.local. 5 IN SRV 0 20 5432 db-0.west.db.ns1.svc.clusterset.local.",
                    ],
                ),
                DB_SRV,
            ),
            case(
                "_http._tcp.db.ns1.svc.clusterset.local",
                SRV,
                "NXDOMAIN",
                NODATA,
            ),
            // A headless import without endpoints does not exist (as a headless Service).
            case("lonely.ns1.svc.clusterset.local", A, "NXDOMAIN", NODATA),
        ],
    );
}

#[test]
fn endpoint_names_carry_the_cluster() {
    check(
        &mc_zone(true, false),
        &[
            case(
                "db-0.west.db.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                &["db-0.west.db.ns1.svc.clusterset.local. 5 IN A 10.2.0.2"],
            ),
            case(
                "db-0.east.db.ns1.svc.clusterset.local",
                A,
                "NXDOMAIN",
                NODATA,
            ),
            // Not ready: not there.
            case(
                "db-1.west.db.ns1.svc.clusterset.local",
                A,
                "NXDOMAIN",
                NODATA,
            ),
            // Two endpoints of one name (CoreDNS's `dup-name`).
            case(
                "twin.east.db.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                &[
                    "twin.east.db.ns1.svc.clusterset.local. 5 IN A 10.1.0.4",
                    "twin.east.db.ns1.svc.clusterset.local. 5 IN A 10.1.0.5",
                ],
            ),
            case(
                "fd00-1--1.east.db.ns1.svc.clusterset.local",
                AAAA,
                "NOERROR",
                &["fd00-1--1.east.db.ns1.svc.clusterset.local. 5 IN AAAA fd00:1::1"],
            ),
            case(
                "fd00-1--1.east.db.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                NODATA,
            ),
            // Without the cluster: NXDOMAIN (CoreDNS's "endpoint without the clusterid").
            case(
                "10-1-0-2.db.ns1.svc.clusterset.local",
                A,
                "NXDOMAIN",
                NODATA,
            ),
            // A portless slice: the address, no SRV record.
            case(
                "10-1-0-20.east.bare.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                &["10-1-0-20.east.bare.ns1.svc.clusterset.local. 5 IN A 10.1.0.20"],
            ),
            case("bare.ns1.svc.clusterset.local", SRV, "NOERROR", NODATA),
            case("a.b.c.db.ns1.svc.clusterset.local", A, "NXDOMAIN", NODATA),
        ],
    );
}

#[test]
fn structure_and_absence_answer_as_in_the_cluster_zone() {
    const SOA_RR: &str = "clusterset.local. 5 IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 7200 1800 86400 5";
    check(
        &mc_zone(true, false),
        &[
            case("nothere.ns1.svc.clusterset.local", A, "NXDOMAIN", NODATA),
            case("web.nons.svc.clusterset.local", A, "NXDOMAIN", NODATA),
            case("ns1.svc.clusterset.local", A, "NOERROR", NODATA),
            case("svc.clusterset.local", A, "NOERROR", NODATA),
            case("clusterset.local", SOA, "NOERROR", &[SOA_RR]),
            case(
                "dns-version.clusterset.local",
                TXT,
                "NOERROR",
                &["dns-version.clusterset.local. 28800 IN TXT \"1.0.0\""],
            ),
            case("dns-version.clusterset.local", A, "NOERROR", NODATA),
            // No name stands for one cluster's backends (KEP-1645 §2.3.4, §2.4.4).
            case("east.db.ns1.svc.clusterset.local", A, "NXDOMAIN", NODATA),
            case("east.web.ns1.svc.clusterset.local", A, "NXDOMAIN", NODATA),
            case("nothere.clusterset.local", A, "NXDOMAIN", NODATA),
            // The cluster zone still answers from Services, not imports.
            case(
                "web.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["web.ns1.svc.cluster.local. 5 IN A 10.0.0.1"],
            ),
            case("quiet.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case("twin.east.db.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            // Imports own no PTR records (nor does CoreDNS answer any); Services do.
            case("10.0.96.10.in-addr.arpa", PTR, "NXDOMAIN", NODATA),
            case("2.0.1.10.in-addr.arpa", PTR, "NXDOMAIN", NODATA),
            case(
                "1.0.0.10.in-addr.arpa",
                PTR,
                "NOERROR",
                &["1.0.0.10.in-addr.arpa. 5 IN PTR web.ns1.svc.cluster.local."],
            ),
        ],
    );
}

#[test]
fn ignore_empty_service_drops_cluster_set_ip_imports_without_endpoints() {
    check(
        &mc_zone(true, true),
        &[
            case("quiet.ns1.svc.clusterset.local", A, "NXDOMAIN", NODATA),
            case(
                "web.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                &["web.ns1.svc.clusterset.local. 5 IN A 10.96.0.10"],
            ),
        ],
    );
}

#[test]
fn without_the_option_imports_are_not_kept_and_the_zone_is_a_cluster_zone() {
    let zone = mc_zone(false, false);
    assert!(zone.index.import("web.ns1").is_none());
    check(
        &zone,
        &[
            case(
                "web.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                &["web.ns1.svc.clusterset.local. 5 IN A 10.0.0.1"],
            ),
            case("quiet.ns1.svc.clusterset.local", A, "NXDOMAIN", NODATA),
        ],
    );
}

#[test]
fn imports_follow_their_objects() {
    let zone = mc_zone(true, false);
    let key = |ns: &str, name: &str| crate::cluster::ObjectKey::new(ns, name);
    zone.index.apply([
        ClusterEvent::Delete(
            crate::cluster::ObjectKind::EndpointSlice,
            key("ns1", "db-west"),
        ),
        ClusterEvent::Delete(crate::cluster::ObjectKind::ServiceImport, key("ns1", "web")),
    ]);
    check(
        &zone,
        &[
            case("web.ns1.svc.clusterset.local", A, "NXDOMAIN", NODATA),
            case(
                "db-0.west.db.ns1.svc.clusterset.local",
                A,
                "NXDOMAIN",
                NODATA,
            ),
            case(
                "db.ns1.svc.clusterset.local",
                A,
                "NOERROR",
                &[
                    "db.ns1.svc.clusterset.local. 5 IN A 10.1.0.2",
                    "db.ns1.svc.clusterset.local. 5 IN A 10.1.0.4",
                    "db.ns1.svc.clusterset.local. 5 IN A 10.1.0.5",
                ],
            ),
        ],
    );
}

#[test]
fn a_relist_removes_vanished_import_slices_also_with_noendpoints() {
    let mut snapshot = Snapshot::default();
    parse_text(MC_FIXTURE, Path::new("mc.yaml"), &mut snapshot);
    let index = Index::new(IndexOptions {
        multicluster: true,
        no_endpoints: true,
        ..IndexOptions::default()
    });
    let slices: Vec<_> = snapshot
        .objects
        .iter()
        .filter(|o| o.kind() == crate::cluster::ObjectKind::EndpointSlice)
        .cloned()
        .collect();
    index.apply(snapshot.into_events());
    let mut config = default_setup().config;
    config.zones = vec!["cluster.local".into(), "clusterset.local".into()];
    config.multicluster = vec!["clusterset.local".into()];
    let zone = ClusterZone {
        config: Arc::new(config),
        index: Arc::new(index),
    };
    let west = case(
        "db-0.west.db.ns1.svc.clusterset.local",
        A,
        "NOERROR",
        &["db-0.west.db.ns1.svc.clusterset.local. 5 IN A 10.2.0.2"],
    );
    check(&zone, &[west]);
    // A re-list without db-west (deleted while the watch was down).
    zone.index.apply([ClusterEvent::Resync {
        kind: crate::cluster::ObjectKind::EndpointSlice,
        namespace: None,
        objects: slices
            .into_iter()
            .filter(|o| o.key().name != "db-west")
            .collect(),
    }]);
    check(
        &zone,
        &[case(
            "db-0.west.db.ns1.svc.clusterset.local",
            A,
            "NXDOMAIN",
            NODATA,
        )],
    );
}
