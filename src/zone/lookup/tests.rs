//! Lookup tables, named after the sections of the Kubernetes DNS specification (schema 1.1.0)
//! and, for what the spec leaves open, after CoreDNS's behaviour. Expected records are zone
//! text, compared sorted.

use std::path::Path;

use super::*;
use crate::cluster::manifests::{Snapshot, parse_text};
use crate::zone::records::BuildOptions;
use crate::zone::{Index, IndexOptions, ZoneConfig};

const FIXTURE: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: ns1}}
- {apiVersion: v1, kind: Namespace, metadata: {name: ns2}}
- {apiVersion: v1, kind: Namespace, metadata: {name: kube-system}}
---
apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: ns1}
spec:
  clusterIP: 10.0.0.1
  ports:
  - {name: http, port: 80, protocol: TCP}
  - {port: 8080, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc1-a, namespace: ns1, labels: {kubernetes.io/service-name: svc1}}
addressType: IPv4
endpoints:
- addresses: [172.0.0.20]
  hostname: ep1a
ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: svc6, namespace: ns1}
spec:
  clusterIP: "fd00::1"
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: dual, namespace: ns1}
spec:
  clusterIP: 10.0.0.2
  clusterIPs: [10.0.0.2, "fd00::2"]
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: metrics, port: 9153, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: hdls1, namespace: ns1}
spec:
  clusterIP: None
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: hdls1-a, namespace: ns1, labels: {kubernetes.io/service-name: hdls1}}
addressType: IPv4
endpoints:
- addresses: [172.0.0.2]
  hostname: ep1
- addresses: [172.0.0.3]
  conditions: {ready: true}
- addresses: [172.0.0.4]
  conditions: {ready: false}
ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: hdls1-b, namespace: ns1, labels: {kubernetes.io/service-name: hdls1}}
addressType: IPv6
endpoints:
- addresses: ["fd00::3"]
ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: hdls1-c, namespace: ns1, labels: {kubernetes.io/service-name: hdls1}}
addressType: IPv4
endpoints:
- addresses: [172.0.0.2]
  hostname: ep1
ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: notready, namespace: ns1}
spec: {clusterIP: None, ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: notready-a, namespace: ns1, labels: {kubernetes.io/service-name: notready}}
addressType: IPv4
endpoints:
- addresses: [172.0.0.9]
  conditions: {ready: false}
ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: portless, namespace: ns1}
spec: {clusterIP: None}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: portless-a, namespace: ns1, labels: {kubernetes.io/service-name: portless}}
addressType: IPv4
endpoints:
- addresses: [172.0.0.10]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: ns1}
spec: {type: ExternalName, externalName: ext.example.com}
---
apiVersion: v1
kind: Service
metadata: {name: extip, namespace: ns1}
spec: {type: ExternalName, externalName: 1.2.3.4}
---
apiVersion: v1
kind: Service
metadata: {name: extin, namespace: ns1}
spec: {type: ExternalName, externalName: svc1.ns1.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: extloop, namespace: ns1}
spec: {type: ExternalName, externalName: extloop.ns1.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: extgone, namespace: ns1}
spec: {type: ExternalName, externalName: gone.ns1.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: ns1}
spec:
  clusterIP: 10.0.0.5
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: dns, port: 53, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kube-dns-a, namespace: kube-system, labels: {kubernetes.io/service-name: kube-dns}}
addressType: IPv4
endpoints:
- addresses: [10.244.0.5]
ports: [{name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: ns1}
status: {podIP: 10.244.1.7}
---
apiVersion: v1
kind: Pod
metadata: {name: gone-1, namespace: ns1, deletionTimestamp: "2026-01-01T00:00:00Z"}
status: {podIP: 10.244.1.8}
"#;

struct Setup {
    config: ZoneConfig,
    index: IndexOptions,
    synced: bool,
}

fn default_setup() -> Setup {
    Setup {
        config: ZoneConfig {
            zones: vec![
                "cluster.local".into(),
                "in-addr.arpa".into(),
                "ip6.arpa".into(),
            ],
            primary: "cluster.local".into(),
            ttl: 5,
            pods: PodMode::Disabled,
            fallthrough: vec![],
            ignore_empty_service: false,
            multicluster: Vec::new(),
            own_addrs: vec!["10.244.0.99".parse().unwrap()],
        },
        index: IndexOptions::default(),
        synced: true,
    }
}

fn zone(change: impl FnOnce(&mut Setup)) -> ClusterZone {
    let mut setup = default_setup();
    change(&mut setup);
    let mut snapshot = Snapshot::default();
    parse_text(FIXTURE, Path::new("fixture.yaml"), &mut snapshot);
    assert!(snapshot.warnings.is_empty(), "{:?}", snapshot.warnings);
    let index = Index::new(setup.index);
    let events = snapshot.into_events();
    if setup.synced {
        index.apply(events);
    } else {
        index.apply(
            events
                .into_iter()
                .filter(|e| !matches!(e, ClusterEvent::Synced(_))),
        );
    }
    ClusterZone {
        config: Arc::new(setup.config),
        index: Arc::new(index),
    }
}

use crate::cluster::ClusterEvent;

/// An answer rendered as text: rcode, answer and additional records as zone lines (sorted),
/// and whether the authority section carries the SOA.
#[derive(Debug, PartialEq)]
struct Rendered {
    rcode: &'static str,
    answer: Vec<String>,
    extra: Vec<String>,
    soa: bool,
}

fn render_name(target: &Target, zone: &str) -> String {
    let suffix = match &target.suffix {
        Suffix::QueryZone => format!("{zone}."),
        Suffix::Zone(z) => format!("{z}."),
        Suffix::Root => String::new(),
    };
    match (&*target.labels, suffix.is_empty()) {
        (labels, true) => format!("{labels}."),
        (labels, false) => format!("{labels}.{suffix}"),
    }
}

fn render(rr: &Rr, qname: &str, zone: &str) -> String {
    let owner = match &rr.owner {
        Owner::Query => format!("{qname}."),
        Owner::QueryZone => format!("{zone}."),
        Owner::Name(t) => render_name(t, zone),
    };
    let data = match &rr.data {
        Rdata::A(a) => format!("A {a}"),
        Rdata::Aaaa(a) => format!("AAAA {a}"),
        Rdata::Srv {
            priority,
            weight,
            port,
            target,
        } => format!(
            "SRV {priority} {weight} {port} {}",
            render_name(target, zone)
        ),
        Rdata::Ptr(t) => format!("PTR {}", render_name(t, zone)),
        Rdata::Cname(t) => format!("CNAME {}", render_name(t, zone)),
        Rdata::Ns(t) => format!("NS {}", render_name(t, zone)),
        Rdata::Txt(t) => format!("TXT \"{t}\""),
        Rdata::Soa { minimum, .. } => {
            format!("SOA ns.dns.{zone}. hostmaster.{zone}. 7200 1800 86400 {minimum}")
        }
    };
    format!("{owner} {} IN {data}", rr.ttl)
}

fn ask(zone: &ClusterZone, qname: &str, qtype: RecordType) -> Rendered {
    let mut out = AnswerBuf::default();
    let outcome = lookup(zone, qname, qtype, &mut out);
    let (rcode, soa, zone_name) = match outcome {
        Outcome::Answer {
            rcode,
            zone_labels,
            soa,
        } => {
            let labels: Vec<&str> = qname.split('.').collect();
            let zone_name = labels[labels.len() - zone_labels..].join(".");
            let rcode = match rcode {
                Rcode::NoError => "NOERROR",
                Rcode::NxDomain => "NXDOMAIN",
                Rcode::ServFail => "SERVFAIL",
            };
            (rcode, soa.is_some(), zone_name)
        }
        Outcome::NotOurs => ("NOTOURS", false, String::new()),
        Outcome::FallThrough => ("FALLTHROUGH", false, String::new()),
    };
    let mut answer: Vec<String> = out
        .answers
        .iter()
        .map(|r| render(r, qname, &zone_name))
        .collect();
    let mut extra: Vec<String> = out
        .additionals
        .iter()
        .map(|r| render(r, qname, &zone_name))
        .collect();
    answer.sort();
    extra.sort();
    Rendered {
        rcode,
        answer,
        extra,
        soa,
    }
}

struct Case {
    qname: &'static str,
    qtype: RecordType,
    rcode: &'static str,
    answer: &'static [&'static str],
    extra: &'static [&'static str],
}

const NODATA: &[&str] = &[];

fn case(
    qname: &'static str,
    qtype: RecordType,
    rcode: &'static str,
    answer: &'static [&'static str],
) -> Case {
    Case {
        qname,
        qtype,
        rcode,
        answer,
        extra: &[],
    }
}

fn check(zone: &ClusterZone, cases: &[Case]) {
    for c in cases {
        let got = ask(zone, c.qname, c.qtype);
        let mut want_answer: Vec<String> = c.answer.iter().map(|s| s.to_string()).collect();
        let mut want_extra: Vec<String> = c.extra.iter().map(|s| s.to_string()).collect();
        want_answer.sort();
        want_extra.sort();
        let want = Rendered {
            rcode: c.rcode,
            soa: c.rcode != "NOERROR" || c.answer.is_empty(),
            answer: want_answer,
            extra: want_extra,
        };
        let want = if matches!(c.rcode, "NOTOURS" | "FALLTHROUGH") {
            Rendered { soa: false, ..want }
        } else {
            want
        };
        assert_eq!(got, want, "{} {:?}", c.qname, c.qtype);
    }
}

use RecordType::{A, AAAA, ANY, CNAME, MX, NS, PTR, SOA, SRV, TXT};

#[test]
fn spec_2_2_schema_version_txt() {
    check(
        &zone(|_| {}),
        &[
            case(
                "dns-version.cluster.local",
                TXT,
                "NOERROR",
                &["dns-version.cluster.local. 28800 IN TXT \"1.1.0\""],
            ),
            case("dns-version.cluster.local", A, "NOERROR", NODATA),
        ],
    );
}

#[test]
fn spec_2_3_1_cluster_ip_a_and_aaaa_by_family() {
    check(
        &zone(|_| {}),
        &[
            case(
                "svc1.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["svc1.ns1.svc.cluster.local. 5 IN A 10.0.0.1"],
            ),
            case("svc1.ns1.svc.cluster.local", AAAA, "NOERROR", NODATA),
            case(
                "svc6.ns1.svc.cluster.local",
                AAAA,
                "NOERROR",
                &["svc6.ns1.svc.cluster.local. 5 IN AAAA fd00::1"],
            ),
            case("svc6.ns1.svc.cluster.local", A, "NOERROR", NODATA),
            case(
                "dual.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["dual.ns1.svc.cluster.local. 5 IN A 10.0.0.2"],
            ),
            case(
                "dual.ns1.svc.cluster.local",
                AAAA,
                "NOERROR",
                &["dual.ns1.svc.cluster.local. 5 IN AAAA fd00::2"],
            ),
            // Answered whether or not the service has endpoints.
            case(
                "empty.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["empty.ns1.svc.cluster.local. 5 IN A 10.0.0.5"],
            ),
            case("missing.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
        ],
    );
}

#[test]
fn spec_2_3_2_cluster_ip_srv_for_named_ports_with_glue() {
    check(
        &zone(|_| {}),
        &[
            Case {
                qname: "_http._tcp.svc1.ns1.svc.cluster.local",
                qtype: SRV,
                rcode: "NOERROR",
                answer: &[
                    "_http._tcp.svc1.ns1.svc.cluster.local. 5 IN SRV 0 100 80 svc1.ns1.svc.cluster.local.",
                ],
                extra: &["svc1.ns1.svc.cluster.local. 5 IN A 10.0.0.1"],
            },
            // Protocol and port names compare case-insensitively (the qname arrives lower-cased).
            case(
                "_http._udp.svc1.ns1.svc.cluster.local",
                SRV,
                "NXDOMAIN",
                NODATA,
            ),
            case(
                "_nope._tcp.svc1.ns1.svc.cluster.local",
                SRV,
                "NXDOMAIN",
                NODATA,
            ),
            // Dual-stack: one SRV, glue of both families; weight counts one hit per address.
            Case {
                qname: "_dns._udp.dual.ns1.svc.cluster.local",
                qtype: SRV,
                rcode: "NOERROR",
                answer: &[
                    "_dns._udp.dual.ns1.svc.cluster.local. 5 IN SRV 0 50 53 dual.ns1.svc.cluster.local.",
                ],
                extra: &[
                    "dual.ns1.svc.cluster.local. 5 IN A 10.0.0.2",
                    "dual.ns1.svc.cluster.local. 5 IN AAAA fd00::2",
                ],
            },
            // The port's name exists, so the name has the service's addresses too (CoreDNS).
            case(
                "_http._tcp.svc1.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["_http._tcp.svc1.ns1.svc.cluster.local. 5 IN A 10.0.0.1"],
            ),
        ],
    );
}

#[test]
fn bare_service_srv_lists_every_port_deduplicated_by_target_and_port() {
    check(
        &zone(|_| {}),
        &[
            Case {
                qname: "svc1.ns1.svc.cluster.local",
                qtype: SRV,
                rcode: "NOERROR",
                answer: &[
                    "svc1.ns1.svc.cluster.local. 5 IN SRV 0 50 80 svc1.ns1.svc.cluster.local.",
                    "svc1.ns1.svc.cluster.local. 5 IN SRV 0 50 8080 svc1.ns1.svc.cluster.local.",
                ],
                extra: &["svc1.ns1.svc.cluster.local. 5 IN A 10.0.0.1"],
            },
            // 53/UDP and 53/TCP share (target, port): one record; 3 ports × 2 IPs → weight 16.
            Case {
                qname: "dual.ns1.svc.cluster.local",
                qtype: SRV,
                rcode: "NOERROR",
                answer: &[
                    "dual.ns1.svc.cluster.local. 5 IN SRV 0 16 53 dual.ns1.svc.cluster.local.",
                    "dual.ns1.svc.cluster.local. 5 IN SRV 0 16 9153 dual.ns1.svc.cluster.local.",
                ],
                extra: &[
                    "dual.ns1.svc.cluster.local. 5 IN A 10.0.0.2",
                    "dual.ns1.svc.cluster.local. 5 IN AAAA fd00::2",
                ],
            },
            // A headless service without ports has nothing to publish.
            case("portless.ns1.svc.cluster.local", SRV, "NOERROR", NODATA),
        ],
    );
}

#[test]
fn spec_2_3_3_cluster_ip_ptr_v4_and_v6() {
    check(
        &zone(|_| {}),
        &[
            case(
                "1.0.0.10.in-addr.arpa",
                PTR,
                "NOERROR",
                &["1.0.0.10.in-addr.arpa. 5 IN PTR svc1.ns1.svc.cluster.local."],
            ),
            case(
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
                PTR,
                "NOERROR",
                &[
                    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR svc6.ns1.svc.cluster.local.",
                ],
            ),
            case("99.0.0.10.in-addr.arpa", PTR, "NXDOMAIN", NODATA),
            case("0.10.in-addr.arpa", PTR, "NXDOMAIN", NODATA),
            // The name exists; it just has no A record.
            case("1.0.0.10.in-addr.arpa", A, "NOERROR", NODATA),
            case("in-addr.arpa", PTR, "NOERROR", NODATA),
        ],
    );
}

#[test]
fn spec_2_4_1_headless_a_records_are_the_ready_addresses_across_slices() {
    check(
        &zone(|_| {}),
        &[
            case(
                "hdls1.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &[
                    "hdls1.ns1.svc.cluster.local. 5 IN A 172.0.0.2",
                    "hdls1.ns1.svc.cluster.local. 5 IN A 172.0.0.3",
                ],
            ),
            case(
                "hdls1.ns1.svc.cluster.local",
                AAAA,
                "NOERROR",
                &["hdls1.ns1.svc.cluster.local. 5 IN AAAA fd00::3"],
            ),
            case("notready.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case("notready.ns1.svc.cluster.local", TXT, "NXDOMAIN", NODATA),
        ],
    );
}

#[test]
fn spec_2_4_1_per_endpoint_names() {
    check(
        &zone(|_| {}),
        &[
            case(
                "ep1.hdls1.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["ep1.hdls1.ns1.svc.cluster.local. 5 IN A 172.0.0.2"],
            ),
            case(
                "172-0-0-3.hdls1.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["172-0-0-3.hdls1.ns1.svc.cluster.local. 5 IN A 172.0.0.3"],
            ),
            case(
                "fd00--3.hdls1.ns1.svc.cluster.local",
                AAAA,
                "NOERROR",
                &["fd00--3.hdls1.ns1.svc.cluster.local. 5 IN AAAA fd00::3"],
            ),
            case("fd00--3.hdls1.ns1.svc.cluster.local", A, "NOERROR", NODATA),
            // An explicit hostname hides the dashed name; not-ready endpoints have no name.
            case(
                "172-0-0-2.hdls1.ns1.svc.cluster.local",
                A,
                "NXDOMAIN",
                NODATA,
            ),
            case(
                "172-0-0-4.hdls1.ns1.svc.cluster.local",
                A,
                "NXDOMAIN",
                NODATA,
            ),
            // Endpoint names exist for ClusterIP services too (CoreDNS).
            case(
                "ep1a.svc1.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["ep1a.svc1.ns1.svc.cluster.local. 5 IN A 172.0.0.20"],
            ),
        ],
    );
}

#[test]
fn spec_2_4_2_headless_srv_one_per_endpoint_with_glue() {
    check(
        &zone(|_| {}),
        &[Case {
            qname: "_http._tcp.hdls1.ns1.svc.cluster.local",
            qtype: SRV,
            rcode: "NOERROR",
            // 4 hits (ep1 twice across slices): weight 100/4.
            answer: &[
                "_http._tcp.hdls1.ns1.svc.cluster.local. 5 IN SRV 0 25 80 172-0-0-3.hdls1.ns1.svc.cluster.local.",
                "_http._tcp.hdls1.ns1.svc.cluster.local. 5 IN SRV 0 25 80 ep1.hdls1.ns1.svc.cluster.local.",
                "_http._tcp.hdls1.ns1.svc.cluster.local. 5 IN SRV 0 25 80 fd00--3.hdls1.ns1.svc.cluster.local.",
            ],
            extra: &[
                "172-0-0-3.hdls1.ns1.svc.cluster.local. 5 IN A 172.0.0.3",
                "ep1.hdls1.ns1.svc.cluster.local. 5 IN A 172.0.0.2",
                "fd00--3.hdls1.ns1.svc.cluster.local. 5 IN AAAA fd00::3",
            ],
        }],
    );
}

#[test]
fn spec_2_4_3_headless_ptr_names_the_endpoint() {
    check(
        &zone(|_| {}),
        &[
            case(
                "2.0.0.172.in-addr.arpa",
                PTR,
                "NOERROR",
                &["2.0.0.172.in-addr.arpa. 5 IN PTR ep1.hdls1.ns1.svc.cluster.local."],
            ),
            case(
                "3.0.0.172.in-addr.arpa",
                PTR,
                "NOERROR",
                &["3.0.0.172.in-addr.arpa. 5 IN PTR 172-0-0-3.hdls1.ns1.svc.cluster.local."],
            ),
            case("4.0.0.172.in-addr.arpa", PTR, "NXDOMAIN", NODATA),
            case(
                "20.0.0.172.in-addr.arpa",
                PTR,
                "NOERROR",
                &["20.0.0.172.in-addr.arpa. 5 IN PTR ep1a.svc1.ns1.svc.cluster.local."],
            ),
        ],
    );
}

#[test]
fn spec_2_5_external_name_is_a_cname() {
    check(
        &zone(|_| {}),
        &[
            case(
                "ext.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["ext.ns1.svc.cluster.local. 5 IN CNAME ext.example.com."],
            ),
            case(
                "ext.ns1.svc.cluster.local",
                CNAME,
                "NOERROR",
                &["ext.ns1.svc.cluster.local. 5 IN CNAME ext.example.com."],
            ),
            case(
                "ext.ns1.svc.cluster.local",
                AAAA,
                "NOERROR",
                &["ext.ns1.svc.cluster.local. 5 IN CNAME ext.example.com."],
            ),
            case("ext.ns1.svc.cluster.local", SRV, "NOERROR", NODATA),
            case("x.ext.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case(
                "_http._tcp.ext.ns1.svc.cluster.local",
                SRV,
                "NXDOMAIN",
                NODATA,
            ),
            case("extip.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            // An in-zone target is chased; the CNAME stays only when the target has records.
            case(
                "extin.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &[
                    "extin.ns1.svc.cluster.local. 5 IN CNAME svc1.ns1.svc.cluster.local.",
                    "svc1.ns1.svc.cluster.local. 5 IN A 10.0.0.1",
                ],
            ),
            case("extin.ns1.svc.cluster.local", AAAA, "NOERROR", NODATA),
            case("extgone.ns1.svc.cluster.local", A, "NOERROR", NODATA),
            case("extloop.ns1.svc.cluster.local", A, "NOERROR", NODATA),
        ],
    );
}

#[test]
fn rfc_8020_nodata_for_existing_names_nxdomain_otherwise() {
    check(
        &zone(|_| {}),
        &[
            case("svc1.ns1.svc.cluster.local", TXT, "NOERROR", NODATA),
            case("svc1.ns1.svc.cluster.local", MX, "NOERROR", NODATA),
            case("svc1.ns1.svc.cluster.local", NS, "NOERROR", NODATA),
            case("svc1.ns1.svc.cluster.local", SOA, "NOERROR", NODATA),
            case("svc1.ns1.svc.cluster.local", ANY, "NOERROR", NODATA),
            case("nope.ns1.svc.cluster.local", TXT, "NXDOMAIN", NODATA),
            case("nope.ns1.svc.cluster.local", ANY, "NXDOMAIN", NODATA),
        ],
    );
}

#[test]
fn structural_names_exist_when_their_namespace_does() {
    check(
        &zone(|_| {}),
        &[
            case("cluster.local", A, "NOERROR", NODATA),
            case("svc.cluster.local", A, "NOERROR", NODATA),
            case("pod.cluster.local", A, "NOERROR", NODATA),
            case("ns1.svc.cluster.local", A, "NOERROR", NODATA),
            case("ns2.svc.cluster.local", A, "NOERROR", NODATA),
            case("ns3.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case("other.cluster.local", A, "NXDOMAIN", NODATA),
            case("svc1.ns1.other.cluster.local", A, "NXDOMAIN", NODATA),
        ],
    );
}

#[test]
fn search_list_expansions_are_nxdomain_and_never_leave_the_zone() {
    check(
        &zone(|_| {}),
        &[
            case(
                "svc1.ns1.svc.cluster.local.ns1.svc.cluster.local",
                A,
                "NXDOMAIN",
                NODATA,
            ),
            case(
                "svc1.ns1.svc.cluster.local.svc.cluster.local",
                A,
                "NXDOMAIN",
                NODATA,
            ),
            case("google.com.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case("a.b.c.svc1.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case("example.com", A, "NOTOURS", NODATA),
        ],
    );
}

#[test]
fn pods_disabled_answers_nothing_under_pod() {
    check(
        &zone(|_| {}),
        &[
            case("10-244-1-7.ns1.pod.cluster.local", A, "NXDOMAIN", NODATA),
            case("ns1.pod.cluster.local", A, "NXDOMAIN", NODATA),
        ],
    );
}

#[test]
fn pods_insecure_decodes_any_well_formed_address_in_an_existing_namespace() {
    let z = zone(|s| s.config.pods = PodMode::Insecure);
    check(
        &z,
        &[
            case(
                "1-2-3-4.ns1.pod.cluster.local",
                A,
                "NOERROR",
                &["1-2-3-4.ns1.pod.cluster.local. 5 IN A 1.2.3.4"],
            ),
            case("1-2-3-4.ns1.pod.cluster.local", AAAA, "NOERROR", NODATA),
            case(
                "fd00--1.ns1.pod.cluster.local",
                AAAA,
                "NOERROR",
                &["fd00--1.ns1.pod.cluster.local. 5 IN AAAA fd00::1"],
            ),
            case("1-2-3.ns1.pod.cluster.local", A, "NXDOMAIN", NODATA),
            case("not-an-ip.ns1.pod.cluster.local", A, "NXDOMAIN", NODATA),
            case("1-2-3-4.nope.pod.cluster.local", A, "NXDOMAIN", NODATA),
            case("ns1.pod.cluster.local", A, "NOERROR", NODATA),
        ],
    );
}

#[test]
fn pods_verified_answers_only_live_pods_of_that_namespace() {
    let z = zone(|s| {
        s.config.pods = PodMode::Verified;
        s.index.track_pods = true;
    });
    check(
        &z,
        &[
            case(
                "10-244-1-7.ns1.pod.cluster.local",
                A,
                "NOERROR",
                &["10-244-1-7.ns1.pod.cluster.local. 5 IN A 10.244.1.7"],
            ),
            case("10-244-1-7.ns2.pod.cluster.local", A, "NXDOMAIN", NODATA),
            case("10-244-1-8.ns1.pod.cluster.local", A, "NXDOMAIN", NODATA),
            case("1-2-3-4.ns1.pod.cluster.local", A, "NXDOMAIN", NODATA),
        ],
    );
}

#[test]
fn apex_soa_ns_and_nameserver_address() {
    let z = zone(|_| {});
    let soa = ask(&z, "cluster.local", SOA);
    assert_eq!(
        soa.answer,
        [
            "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7200 1800 86400 5"
        ]
    );
    check(
        &z,
        &[
            Case {
                qname: "cluster.local",
                qtype: NS,
                rcode: "NOERROR",
                answer: &["cluster.local. 5 IN NS ns.dns.cluster.local."],
                extra: &["ns.dns.cluster.local. 5 IN A 10.244.0.99"],
            },
            case(
                "ns.dns.cluster.local",
                A,
                "NOERROR",
                &["ns.dns.cluster.local. 5 IN A 10.244.0.99"],
            ),
            case("ns.dns.cluster.local", AAAA, "NOERROR", NODATA),
            case("cluster.local", SRV, "NOERROR", NODATA),
        ],
    );
}

#[test]
fn apex_ns_names_the_service_whose_endpoints_include_the_server() {
    let z = zone(|s| s.config.own_addrs = vec!["10.244.0.5".parse().unwrap()]);
    check(
        &z,
        &[
            Case {
                qname: "cluster.local",
                qtype: NS,
                rcode: "NOERROR",
                answer: &["cluster.local. 5 IN NS kube-dns.kube-system.svc.cluster.local."],
                extra: &["kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10"],
            },
            case(
                "ns.dns.cluster.local",
                A,
                "NOERROR",
                &["ns.dns.cluster.local. 5 IN A 10.96.0.10"],
            ),
        ],
    );
}

#[test]
fn soa_ttl_is_capped_at_300_and_its_minimum_is_the_zone_ttl() {
    let z = zone(|s| s.config.ttl = 3600);
    let mut out = AnswerBuf::default();
    match lookup(&z, "nope.ns1.svc.cluster.local", A, &mut out) {
        Outcome::Answer {
            soa: Some(soa),
            rcode: Rcode::NxDomain,
            ..
        } => {
            assert_eq!((soa.ttl, soa.minimum), (300, 3600));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn unsynced_zone_turns_nxdomain_into_servfail_but_serves_what_it_has() {
    let z = zone(|s| s.synced = false);
    check(
        &z,
        &[
            case("nope.ns1.svc.cluster.local", A, "SERVFAIL", NODATA),
            case(
                "svc1.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["svc1.ns1.svc.cluster.local. 5 IN A 10.0.0.1"],
            ),
        ],
    );
}

#[test]
fn namespaces_option_hides_other_namespaces_and_their_ptrs() {
    let z = zone(|s| s.index.namespaces = vec!["kube-system".into()]);
    check(
        &z,
        &[
            case("svc1.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case("ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case("1.0.0.10.in-addr.arpa", PTR, "NXDOMAIN", NODATA),
            case(
                "kube-dns.kube-system.svc.cluster.local",
                A,
                "NOERROR",
                &["kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10"],
            ),
        ],
    );
}

#[test]
fn ignore_empty_service_makes_cluster_ip_services_without_endpoints_nxdomain() {
    let z = zone(|s| s.config.ignore_empty_service = true);
    check(
        &z,
        &[
            case("empty.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case(
                "svc1.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["svc1.ns1.svc.cluster.local. 5 IN A 10.0.0.1"],
            ),
            case(
                "ext.ns1.svc.cluster.local",
                A,
                "NOERROR",
                &["ext.ns1.svc.cluster.local. 5 IN CNAME ext.example.com."],
            ),
        ],
    );
}

#[test]
fn endpoint_pod_names_option_is_applied_when_building() {
    let z = zone(|s| {
        s.index.build = BuildOptions {
            endpoint_pod_names: true,
        }
    });
    // No targetRef in the fixture: the dashed name stays.
    check(
        &z,
        &[case(
            "172-0-0-3.hdls1.ns1.svc.cluster.local",
            A,
            "NOERROR",
            &["172-0-0-3.hdls1.ns1.svc.cluster.local. 5 IN A 172.0.0.3"],
        )],
    );
}

#[test]
fn fallthrough_zones_pass_nxdomain_on() {
    let z = zone(|s| s.config.fallthrough = vec!["in-addr.arpa".into()]);
    check(
        &z,
        &[
            case("99.0.0.10.in-addr.arpa", PTR, "FALLTHROUGH", NODATA),
            case(
                "1.0.0.10.in-addr.arpa",
                PTR,
                "NOERROR",
                &["1.0.0.10.in-addr.arpa. 5 IN PTR svc1.ns1.svc.cluster.local."],
            ),
            case("nope.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
        ],
    );
}

#[test]
fn ttl_option_sets_every_record_ttl() {
    let z = zone(|s| s.config.ttl = 30);
    check(
        &z,
        &[case(
            "svc1.ns1.svc.cluster.local",
            A,
            "NOERROR",
            &["svc1.ns1.svc.cluster.local. 30 IN A 10.0.0.1"],
        )],
    );
}

#[test]
fn most_specific_zone_wins() {
    let z = zone(|s| s.config.zones.push("ns1.svc.cluster.local".into()));
    // Under the inner zone, `svc1.ns1.svc.cluster.local` is `svc1` alone: not a valid shape.
    check(
        &z,
        &[case("svc1.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA)],
    );
}

#[test]
fn reverse_ip_parses_only_complete_names() {
    assert_eq!(
        reverse_ip("4.3.2.1.in-addr.arpa"),
        Some("1.2.3.4".parse().unwrap())
    );
    assert_eq!(reverse_ip("3.2.1.in-addr.arpa"), None);
    assert_eq!(reverse_ip("5.4.3.2.1.in-addr.arpa"), None);
    assert_eq!(reverse_ip("04.3.2.1.in-addr.arpa"), None);
    assert_eq!(reverse_ip("256.3.2.1.in-addr.arpa"), None);
}

#[test]
fn pod_ip_follows_coredns_dash_rules() {
    assert_eq!(pod_ip("10-0-0-1"), Some("10.0.0.1".parse().unwrap()));
    assert_eq!(pod_ip("fd00--1"), Some("fd00::1".parse().unwrap()));
    assert_eq!(pod_ip("1-2-3"), None);
    // Four dashes (or a `--`) mean IPv6, as in CoreDNS.
    assert_eq!(pod_ip("1--2-3-4"), Some("1::2:3:4".parse().unwrap()));
    assert_eq!(pod_ip("10-0-0-300"), None);
}

#[test]
fn index_updates_are_incremental_and_deletions_remove_names_and_ptrs() {
    let z = zone(|_| {});
    let serial = z.index.serial();
    z.index.apply([ClusterEvent::Delete(
        crate::cluster::ObjectKind::Service,
        crate::cluster::ObjectKey::new("ns1", "svc1"),
    )]);
    check(
        &z,
        &[
            case("svc1.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case("1.0.0.10.in-addr.arpa", PTR, "NXDOMAIN", NODATA),
            case("20.0.0.172.in-addr.arpa", PTR, "NXDOMAIN", NODATA),
            case(
                "svc6.ns1.svc.cluster.local",
                AAAA,
                "NOERROR",
                &["svc6.ns1.svc.cluster.local. 5 IN AAAA fd00::1"],
            ),
        ],
    );
    assert!(z.index.serial() >= serial);
}

#[test]
fn resync_removes_objects_that_vanished_and_keeps_the_rest() {
    let z = zone(|_| {});
    let mut snapshot = Snapshot::default();
    parse_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: svc6, namespace: ns1}\nspec: {clusterIP: 'fd00::1'}\n",
        Path::new("t.yaml"),
        &mut snapshot,
    );
    z.index.apply([ClusterEvent::Resync {
        kind: crate::cluster::ObjectKind::Service,
        namespace: None,
        objects: snapshot.objects,
    }]);
    check(
        &z,
        &[
            case("svc1.ns1.svc.cluster.local", A, "NXDOMAIN", NODATA),
            case(
                "svc6.ns1.svc.cluster.local",
                AAAA,
                "NOERROR",
                &["svc6.ns1.svc.cluster.local. 5 IN AAAA fd00::1"],
            ),
            // The namespace object still exists.
            case("ns1.svc.cluster.local", A, "NOERROR", NODATA),
        ],
    );
}

mod multicluster;
