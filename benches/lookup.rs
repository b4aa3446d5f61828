//! Benchmarks of the query path over a synthetic cluster of 1000 Services in 10 namespaces:
//! three in four are ClusterIP Services (3 ready endpoints each), one in four headless (10 ready
//! endpoints each; every other headless Service has endpoint hostnames, StatefulSet-like).
//!
//! - `zone::lookup/*`: the pure lookup (`clusterdns::zone::lookup`) for one name of each shape.
//! - `router::handle/*`: the whole handler path (`Router::handle`): parse the request bytes,
//!   route to the block, look up, write the response; `udp_clusterip_a_three_templates` with
//!   three `template`s configured in front of the cluster zone.
//! - `rewrite/*`: the same path for a ClusterIP name in a block without `rewrite`, with rules
//!   the name does not match (exact and suffix; and Gardener's regex), and through an `exact`
//!   rule that rewrites another name onto it (the answer decoded, turned back, re-encoded).
//!
//! ```sh
//! CARGO_TARGET_DIR=/tmp/bench-target cargo bench --bench lookup -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::rr::RecordType;

use clusterdns::cluster::ClusterEvent;
use clusterdns::cluster::manifests::Snapshot;
use clusterdns::cluster::model::{
    ClusterObject, Endpoint, EndpointSet, Namespace, Port, Service, ServiceKind,
};
use clusterdns::config::PodMode;
use clusterdns::dns::Transport;
use clusterdns::metrics::dns::{DnsMetrics, QueryReport};
use clusterdns::plugins::Plugins;
use clusterdns::server::{Block, Handled, Router, Scratch};
use clusterdns::zone::records::BuildOptions;
use clusterdns::zone::{
    AnswerBuf, ClusterZone, Index, IndexOptions, Outcome, Rcode, ZoneConfig, lookup,
};

/// The client every benchmarked query comes from.
const PEER: std::net::SocketAddr =
    std::net::SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
const SERVICES: usize = 1000;
const NAMESPACES: usize = 10;
const CLUSTER_IP_ENDPOINTS: usize = 3;
const HEADLESS_ENDPOINTS: usize = 10;

fn is_headless(i: usize) -> bool {
    i % 4 == 3
}

fn service_name(i: usize) -> String {
    format!("svc-{i}")
}

fn namespace_of(i: usize) -> String {
    format!("ns-{}", i % NAMESPACES)
}

/// 10.96.0.0/16 for ClusterIPs: service `i` gets 10.96.(i/256).(i%256).
fn cluster_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 96, (i / 256) as u8, (i % 256) as u8)
}

/// 10.244.0.0/16 for pods, one after the other.
fn pod_ip(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, (n / 256) as u8, (n % 256) as u8)
}

fn http_port() -> Port {
    Port {
        name: "http".into(),
        protocol: "TCP".into(),
        port: 80,
    }
}

/// Namespaces, Services and EndpointSlices of the synthetic cluster.
fn synthetic_cluster() -> Vec<ClusterObject> {
    let mut objects: Vec<ClusterObject> = (0..NAMESPACES)
        .map(|n| {
            ClusterObject::Namespace(Namespace {
                name: format!("ns-{n}"),
            })
        })
        .collect();
    let mut next_pod = 0usize;
    for i in 0..SERVICES {
        let namespace = namespace_of(i);
        let name = service_name(i);
        let headless = is_headless(i);
        objects.push(ClusterObject::Service(Service {
            namespace: namespace.clone(),
            name: name.clone(),
            kind: if headless {
                ServiceKind::Headless
            } else {
                ServiceKind::ClusterIp(vec![IpAddr::V4(cluster_ip(i))])
            },
            ports: vec![http_port()],
            external: Box::default(),
        }));
        let count = if headless {
            HEADLESS_ENDPOINTS
        } else {
            CLUSTER_IP_ENDPOINTS
        };
        let endpoints = (0..count)
            .map(|j| {
                let ip = pod_ip(next_pod);
                next_pod += 1;
                Endpoint {
                    addresses: vec![IpAddr::V4(ip)],
                    ready: true,
                    hostname: (headless && (i / 4) % 2 == 0).then(|| format!("{name}-{j}").into()),
                    target_name: Some(format!("{name}-pod-{j}").into()),
                }
            })
            .collect();
        objects.push(ClusterObject::EndpointSet(EndpointSet {
            namespace,
            name: format!("{name}-abcde"),
            service: Some(name),
            endpoints,
            ports: vec![Port {
                name: "http".into(),
                protocol: "TCP".into(),
                port: 8080,
            }],
            import: None,
        }));
    }
    objects
}

/// The cluster zone as `main.rs` builds it for the demo config (`pods = "insecure"`,
/// `fallthrough = ["in-addr.arpa", "ip6.arpa"]`), fed with the synthetic cluster.
fn cluster_zone() -> ClusterZone {
    let index = Arc::new(Index::new(IndexOptions {
        build: BuildOptions {
            endpoint_pod_names: false,
        },
        namespaces: Vec::new(),
        track_pods: false,
        no_endpoints: false,
        multicluster: false,
    }));
    let snapshot = Snapshot {
        objects: synthetic_cluster(),
        warnings: Vec::new(),
    };
    index.apply(snapshot.into_events());
    assert!(index.is_synced(), "the index must be synced");
    assert_eq!(index.service_count(), SERVICES);
    ClusterZone {
        config: Arc::new(ZoneConfig {
            zones: vec![
                "cluster.local".into(),
                "in-addr.arpa".into(),
                "ip6.arpa".into(),
            ],
            primary: "cluster.local".into(),
            ttl: 5,
            pods: PodMode::Insecure,
            fallthrough: vec!["in-addr.arpa".into(), "ip6.arpa".into()],
            ignore_empty_service: false,
            multicluster: Vec::new(),
            own_addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        }),
        index,
    }
}

/// A query as `dig` sends it: RD, one question, an OPT record (UDP size 1232).
fn request(qname: &str, qtype: u16) -> Vec<u8> {
    let mut m = vec![
        0x12, 0x34, // id
        0x01, 0x00, // RD
        0x00, 0x01, // QDCOUNT
        0x00, 0x00, // ANCOUNT
        0x00, 0x00, // NSCOUNT
        0x00, 0x01, // ARCOUNT
    ];
    for label in qname.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes()); // IN
    // OPT: root owner, type 41, class = UDP payload size, TTL = ext-rcode/version/flags, no rdata.
    m.push(0);
    m.extend_from_slice(&41u16.to_be_bytes());
    m.extend_from_slice(&1232u16.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&[0, 0]);
    m
}

struct Case {
    id: &'static str,
    qname: String,
    qtype: RecordType,
    rcode: Rcode,
    answers: usize,
}

fn cases() -> Vec<Case> {
    // Service 500 is ClusterIP; 503 is headless with endpoints named by dashed address, 507
    // headless with hostnames (StatefulSet-like).
    let clusterip = 500;
    let headless = 503;
    let stateful = 507;
    let ns = |i: usize| namespace_of(i);
    let ip = cluster_ip(clusterip).octets();
    vec![
        Case {
            id: "clusterip_a",
            qname: format!("svc-{clusterip}.{}.svc.cluster.local", ns(clusterip)),
            qtype: RecordType::A,
            rcode: Rcode::NoError,
            answers: 1,
        },
        Case {
            id: "headless_a_10",
            qname: format!("svc-{headless}.{}.svc.cluster.local", ns(headless)),
            qtype: RecordType::A,
            rcode: Rcode::NoError,
            answers: HEADLESS_ENDPOINTS,
        },
        Case {
            id: "srv_clusterip",
            qname: format!(
                "_http._tcp.svc-{clusterip}.{}.svc.cluster.local",
                ns(clusterip)
            ),
            qtype: RecordType::SRV,
            rcode: Rcode::NoError,
            answers: 1,
        },
        Case {
            id: "srv_headless_10",
            qname: format!(
                "_http._tcp.svc-{headless}.{}.svc.cluster.local",
                ns(headless)
            ),
            qtype: RecordType::SRV,
            rcode: Rcode::NoError,
            answers: HEADLESS_ENDPOINTS,
        },
        Case {
            id: "srv_headless_hostnames_10",
            qname: format!(
                "_http._tcp.svc-{stateful}.{}.svc.cluster.local",
                ns(stateful)
            ),
            qtype: RecordType::SRV,
            rcode: Rcode::NoError,
            answers: HEADLESS_ENDPOINTS,
        },
        Case {
            id: "ptr_clusterip",
            qname: format!("{}.{}.{}.{}.in-addr.arpa", ip[3], ip[2], ip[1], ip[0]),
            qtype: RecordType::PTR,
            rcode: Rcode::NoError,
            answers: 1,
        },
        Case {
            id: "pod_a_insecure",
            qname: "10-244-1-2.ns-0.pod.cluster.local".into(),
            qtype: RecordType::A,
            rcode: Rcode::NoError,
            answers: 1,
        },
        Case {
            id: "nxdomain",
            qname: "no-such-service.ns-0.svc.cluster.local".into(),
            qtype: RecordType::A,
            rcode: Rcode::NxDomain,
            answers: 0,
        },
    ]
}

fn bench_lookup(c: &mut Criterion) {
    let zone = cluster_zone();
    let mut group = c.benchmark_group("zone::lookup");
    for case in cases() {
        let mut out = AnswerBuf::default();
        // A benchmark of a wrong answer is worthless: check it first.
        match lookup(&zone, &case.qname, case.qtype, &mut out) {
            Outcome::Answer { rcode, .. } => {
                assert_eq!(rcode, case.rcode, "{}: rcode", case.qname);
                assert_eq!(out.answers.len(), case.answers, "{}: answers", case.qname);
            }
            other => panic!("{}: {other:?}", case.qname),
        }
        group.bench_function(case.id, |b| {
            b.iter(|| {
                let outcome = lookup(&zone, black_box(&case.qname), case.qtype, &mut out);
                black_box(outcome);
                black_box(out.answers.len());
            })
        });
    }
    group.finish();
}

fn bench_router(c: &mut Criterion) {
    let zone = cluster_zone();
    let zones = vec![String::new()];
    let metrics = Arc::new(DnsMetrics::new("dns://127.0.0.1:53".into(), &zones));
    let plugins = Plugins {
        kubernetes: Some(zone),
        ..Plugins::default()
    };
    let router = Router::new(vec![Block::new(zones, plugins)], metrics);
    let mut scratch = Scratch::default();
    let mut report = QueryReport::default();
    let mut group = c.benchmark_group("router::handle");
    for case in cases()
        .into_iter()
        .filter(|c| matches!(c.id, "clusterip_a" | "headless_a_10" | "nxdomain"))
    {
        let bytes = request(&case.qname, u16::from(case.qtype));
        // Check the response first: rcode, ANCOUNT, id.
        match router.handle(&bytes, Transport::Udp, PEER, &mut scratch, &mut report) {
            Handled::Reply(r) => {
                let rcode = r[3] & 0x0f;
                let ancount = usize::from(u16::from_be_bytes([r[6], r[7]]));
                let want = match case.rcode {
                    Rcode::NoError => 0,
                    Rcode::NxDomain => 3,
                    Rcode::ServFail => 2,
                };
                assert_eq!(rcode, want, "{}: rcode", case.qname);
                assert_eq!(ancount, case.answers, "{}: ANCOUNT", case.qname);
                assert_eq!(&r[0..2], &bytes[0..2], "{}: id", case.qname);
            }
            Handled::Drop => panic!("{}: dropped", case.qname),
            Handled::Pending(_) => panic!("{}: pending", case.qname),
            Handled::Panicked => panic!("{}: panicked", case.qname),
            Handled::Transfer(_) => panic!("{}: a transfer", case.qname),
        }
        group.bench_function(format!("udp_{}", case.id), |b| {
            b.iter(|| {
                black_box(answer_len(
                    &router,
                    black_box(&bytes),
                    &mut scratch,
                    &mut report,
                ))
            })
        });
        if case.id == "clusterip_a" {
            // What the UDP receive loop does per query besides the socket calls: handle, then
            // count it in the metrics (server::account without a log line).
            group.bench_function("udp_clusterip_a_with_metrics", |b| {
                b.iter(|| {
                    let start = Instant::now();
                    match router.handle(
                        black_box(&bytes),
                        Transport::Udp,
                        PEER,
                        &mut scratch,
                        &mut report,
                    ) {
                        Handled::Reply(r) => router.metrics.observe(
                            &report,
                            Transport::Udp,
                            false,
                            bytes.len(),
                            Some(r),
                            start.elapsed(),
                        ),
                        _ => unreachable!(),
                    }
                })
            });
            // What hickory-server's request path costs at the least for the same query: the
            // request decoded into a Message and the response encoded from one (README, "Why
            // the UDP path is our own").
            let response =
                match router.handle(&bytes, Transport::Udp, PEER, &mut scratch, &mut report) {
                    Handled::Reply(r) => r.to_vec(),
                    _ => unreachable!(),
                };
            let answer = hickory_proto::op::Message::from_vec(&response).expect("parses");
            group.bench_function("hickory_message_decode_encode_clusterip_a", |b| {
                b.iter(|| {
                    let request = hickory_proto::op::Message::from_vec(black_box(&bytes));
                    black_box(request.is_ok());
                    black_box(answer.to_vec().map(|v| v.len()))
                })
            });
        }
    }
    group.finish();
}

/// The cluster-name path without `acl` and with an `acl` of three rules that do not match the
/// client (each rule looked at, then kubernetes answers): what an acl costs a cluster name.
fn bench_router_acl(c: &mut Criterion) {
    use clusterdns::config::{AclAction, AclConfig, AclRule};
    let zone = cluster_zone();
    let zones = vec![String::new()];
    let rule = |action, types: Option<Vec<u16>>, net: &str| AclRule {
        action,
        types,
        nets: Some(vec![net.parse().unwrap()]),
    };
    let three_rules = AclConfig {
        zones: vec![String::new()],
        rules: vec![
            rule(AclAction::Block, Some(vec![1]), "192.168.0.0/16"),
            rule(AclAction::Filter, Some(vec![28]), "10.0.0.0/8"),
            rule(AclAction::Drop, None, "fd00::/8"),
        ],
    };
    let case = cases().into_iter().find(|c| c.id == "clusterip_a").unwrap();
    let bytes = request(&case.qname, u16::from(case.qtype));
    let mut group = c.benchmark_group("router::handle_acl");
    for (id, acl) in [("none", None), ("three_rules", Some(three_rules))] {
        let metrics = Arc::new(DnsMetrics::new("dns://127.0.0.1:53".into(), &zones));
        let plugins = Plugins {
            kubernetes: Some(zone.clone()),
            acl: acl.and_then(|a| clusterdns::plugins::acl::Acl::new(&[a])),
            ..Plugins::default()
        };
        let router = Router::new(vec![Block::new(zones.clone(), plugins)], metrics);
        let (mut scratch, mut report) = (Scratch::default(), QueryReport::default());
        match router.handle(&bytes, Transport::Udp, PEER, &mut scratch, &mut report) {
            Handled::Reply(r) => assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "{id}: one A"),
            _ => panic!("{id}: not answered"),
        }
        group.bench_function(format!("udp_clusterip_a_{id}"), |b| {
            b.iter(|| {
                black_box(answer_len(
                    &router,
                    black_box(&bytes),
                    &mut scratch,
                    &mut report,
                ))
            })
        });
    }
}

/// Three `template`s configured (AKS's two NXDOMAIN suffixes, AAAA blanking in another zone)
/// beside the cluster zone: what a cluster A question pays for them is the type and zone checks
/// (README: within 5% of `router::handle/udp_clusterip_a`).
fn bench_router_with_templates(c: &mut Criterion) {
    use clusterdns::config::TemplateConfig;
    use clusterdns::plugins::template::Templates;
    let template = |class, rtype, zone: &str, matches: &[&str], rcode| TemplateConfig {
        class,
        rtype,
        zones: vec![zone.to_owned()],
        matches: matches.iter().map(|m| (*m).to_owned()).collect(),
        answer: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        rcode,
        fallthrough: vec![String::new()],
    };
    let templates = Templates::new(&[
        template(
            255,
            255,
            "internal.cloudapp.net",
            &[r"^(?:[^.]+\.){4,}internal\.cloudapp\.net\.$"],
            3,
        ),
        template(255, 255, "reddog.microsoft.com", &[], 3),
        template(1, 28, "v4only.example", &[], 0),
    ])
    .expect("templates compile");
    let zones = vec![String::new()];
    let metrics = Arc::new(DnsMetrics::new("dns://127.0.0.1:53".into(), &zones));
    let plugins = Plugins {
        kubernetes: Some(cluster_zone()),
        template: Some(templates),
        ..Plugins::default()
    };
    let router = Router::new(vec![Block::new(zones, plugins)], metrics);
    let mut scratch = Scratch::default();
    let mut report = QueryReport::default();
    let case = cases()
        .into_iter()
        .find(|c| c.id == "clusterip_a")
        .expect("the clusterip_a case");
    let bytes = request(&case.qname, u16::from(case.qtype));
    match router.handle(&bytes, Transport::Udp, PEER, &mut scratch, &mut report) {
        Handled::Reply(r) => assert_eq!(
            usize::from(u16::from_be_bytes([r[6], r[7]])),
            case.answers,
            "the cluster answer, not a template's"
        ),
        _ => panic!("no reply"),
    }
    let mut group = c.benchmark_group("router::handle");
    group.bench_function("udp_clusterip_a_three_templates", |b| {
        b.iter(|| {
            black_box(answer_len(
                &router,
                black_box(&bytes),
                &mut scratch,
                &mut report,
            ))
        })
    });
    group.finish();
}

/// Rules as TOML tables: exact and suffix rules no cluster name matches, then (`regex`)
/// Gardener's search-path rule, then (`onto`) an `exact` rule from `alias.example.com`.
fn rewrite_rules(regex: bool, onto: Option<&str>) -> clusterdns::plugins::rewrite::Rewrite {
    let mut text = String::from(
        r#"[[server]]
[[server.rewrite]]
field = "name"
from = "db.example.com"
to = "postgres.data.svc.cluster.local"
[[server.rewrite]]
field = "name"
match = "suffix"
from = ".corp.example"
to = ".svc.cluster.local"
answer_auto = true
"#,
    );
    if regex {
        text.push_str(
            r#"[[server.rewrite]]
field = "name"
match = "regex"
from = '(^(?:[^\.]+\.)+)svc\.cluster\.local\.svc\.cluster\.local'
to = "{1}svc.cluster.local"
answer_name = [{ from = '(^(?:[^\.]+\.)+)svc\.cluster\.local', to = "{1}svc.cluster.local.svc.cluster.local" }]
"#,
        );
    }
    if let Some(target) = onto {
        text.push_str(&format!(
            "[[server.rewrite]]\nfield = \"name\"\nfrom = \"alias.example.com\"\nto = \"{target}\"\n"
        ));
    }
    let config = clusterdns::config::Config::parse(&text, std::path::Path::new("bench.toml"))
        .expect("valid rules");
    clusterdns::plugins::rewrite::Rewrite::new(config.servers[0].rewrite.clone())
}

fn bench_rewrite(c: &mut Criterion) {
    let zone = cluster_zone();
    let zones = vec![String::new()];
    let metrics = Arc::new(DnsMetrics::new("dns://127.0.0.1:53".into(), &zones));
    let case = cases().into_iter().find(|c| c.id == "clusterip_a").unwrap();
    let router = |rewrite| {
        let plugins = Plugins {
            kubernetes: Some(zone.clone()),
            rewrite,
            ..Plugins::default()
        };
        Router::new(vec![Block::new(zones.clone(), plugins)], metrics.clone())
    };
    let plain = router(None);
    let two = router(Some(rewrite_rules(false, None)));
    let three = router(Some(rewrite_rules(true, None)));
    let onto = router(Some(rewrite_rules(false, Some(&case.qname))));
    let name = request(&case.qname, u16::from(case.qtype));
    let alias = request("alias.example.com", u16::from(case.qtype));
    let mut scratch = Scratch::default();
    let mut report = QueryReport::default();
    let mut group = c.benchmark_group("rewrite");
    for (id, router, bytes) in [
        ("clusterip_a_no_rules", &plain, &name),
        ("clusterip_a_2_rules_unmatched_exact_suffix", &two, &name),
        (
            "clusterip_a_3_rules_unmatched_exact_suffix_regex",
            &three,
            &name,
        ),
        ("clusterip_a_rewritten_exact", &onto, &alias),
    ] {
        match router.handle(bytes, Transport::Udp, PEER, &mut scratch, &mut report) {
            Handled::Reply(r) => {
                let ancount = u16::from_be_bytes([r[6], r[7]]);
                assert_eq!((r[3] & 0x0f, ancount), (0, 1), "{id}: NOERROR, one answer");
            }
            _ => panic!("{id}: answered on the spot"),
        }
        group.bench_function(id, |b| {
            b.iter(|| {
                black_box(answer_len(
                    router,
                    black_box(bytes),
                    &mut scratch,
                    &mut report,
                ))
            })
        });
    }
    group.finish();
}

/// Endpoints per Service of the large clusters the apply benchmark changes one Service in
/// (10k and 50k Services: Kubernetes' limit, and five times it).
const BIG_ENDPOINTS: usize = 10;

fn big_slice(i: usize, ready: bool) -> EndpointSet {
    let name = service_name(i);
    EndpointSet {
        namespace: namespace_of(i),
        name: format!("{name}-abcde"),
        service: Some(name),
        endpoints: (0..BIG_ENDPOINTS)
            .map(|j| {
                let n = i * BIG_ENDPOINTS + j;
                Endpoint {
                    addresses: vec![IpAddr::V4(Ipv4Addr::new(
                        10,
                        (128 + n / 65536) as u8,
                        (n / 256 % 256) as u8,
                        (n % 256) as u8,
                    ))],
                    // The benchmark flips the first endpoint's readiness.
                    ready: ready || j > 0,
                    hostname: None,
                    target_name: None,
                }
            })
            .collect(),
        ports: vec![http_port()],
        import: None,
    }
}

/// One EndpointSlice change applied to an index of 10k Services and 100k endpoints, and of
/// 50k and 500k: the programming cost a watch event pays before the change is served.
fn bench_apply(c: &mut Criterion) {
    for (services, label) in [(10_000, "10k_services_100k"), (50_000, "50k_services_500k")] {
        let index = big_index(services);
        let target = 4999; // headless (4999 % 4 == 3): its A answer changes with readiness
        assert!(is_headless(target));
        let mut ready = false;
        c.bench_function(
            &format!("index::apply/one_slice_of_{label}_endpoints"),
            |b| {
                b.iter(|| {
                    ready = !ready;
                    index.apply(vec![ClusterEvent::Upsert(ClusterObject::EndpointSet(
                        big_slice(target, ready),
                    ))]);
                })
            },
        );
    }
}

/// An index of `services` Services with [`BIG_ENDPOINTS`] endpoints each.
fn big_index(services: usize) -> Index {
    let index = Index::new(IndexOptions {
        build: BuildOptions {
            endpoint_pod_names: false,
        },
        namespaces: Vec::new(),
        track_pods: false,
        no_endpoints: false,
        multicluster: false,
    });
    let mut objects: Vec<ClusterObject> = (0..NAMESPACES)
        .map(|n| {
            ClusterObject::Namespace(Namespace {
                name: format!("ns-{n}"),
            })
        })
        .collect();
    for i in 0..services {
        objects.push(ClusterObject::Service(Service {
            namespace: namespace_of(i),
            name: service_name(i),
            kind: if is_headless(i) {
                ServiceKind::Headless
            } else {
                ServiceKind::ClusterIp(vec![IpAddr::V4(Ipv4Addr::new(
                    10,
                    96,
                    (i / 256) as u8,
                    (i % 256) as u8,
                ))])
            },
            ports: vec![http_port()],
            external: Box::default(),
        }));
        objects.push(ClusterObject::EndpointSet(big_slice(i, true)));
    }
    index.apply(
        Snapshot {
            objects,
            warnings: Vec::new(),
        }
        .into_events(),
    );
    assert_eq!(index.service_count(), services);
    index
}

/// The length of the answer `router` writes for `bytes` (over UDP, from [`PEER`]).
fn answer_len(
    router: &Router,
    bytes: &[u8],
    scratch: &mut Scratch,
    report: &mut QueryReport,
) -> usize {
    match router.handle(bytes, Transport::Udp, PEER, scratch, report) {
        Handled::Reply(r) => r.len(),
        _ => unreachable!("answered on the spot"),
    }
}

criterion_group!(
    benches,
    bench_lookup,
    bench_router,
    bench_router_acl,
    bench_router_with_templates,
    bench_rewrite,
    bench_apply
);
criterion_main!(benches);
