//! A cluster-zone lookup (and a `multicluster` one), a `hosts` hit and a template without records allocate nothing: counted with a wrapping global
//! allocator. (A test binary of its own, so no other test's allocations are counted.)

use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::RecordType;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

use clusterdns::cluster::manifests::{Snapshot, parse_text};
use clusterdns::config::{HostsConfig, PodMode};
use clusterdns::dns::Transport;
use clusterdns::metrics::dns::{DnsMetrics, QueryReport};
use clusterdns::plugins::Plugins;
use clusterdns::plugins::hosts::Hosts;
use clusterdns::server::{Block, Handled, Router, Scratch};
use clusterdns::zone::records::BuildOptions;
use clusterdns::zone::{AnswerBuf, ClusterZone, Index, IndexOptions, ZoneConfig, lookup};

/// The client the queries come from.
const PEER: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// The counts are process-wide: the tests of this binary measure one at a time.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn demo_zone() -> ClusterZone {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo-cluster");
    let mut snapshot = Snapshot::default();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        parse_text(
            &std::fs::read_to_string(&file).unwrap(),
            &file,
            &mut snapshot,
        );
    }
    let index = Arc::new(Index::new(IndexOptions {
        build: BuildOptions {
            endpoint_pod_names: false,
        },
        namespaces: Vec::new(),
        track_pods: false,
        no_endpoints: false,
        multicluster: false,
    }));
    index.apply(snapshot.into_events());
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
            fallthrough: Vec::new(),
            ignore_empty_service: false,
            multicluster: Vec::new(),
            own_addrs: vec!["127.0.0.1".parse().unwrap()],
        }),
        index,
    }
}

const QUERIES: &[(&str, RecordType)] = &[
    ("frontend.shop.svc.cluster.local", RecordType::A),
    ("frontend.shop.svc.cluster.local", RecordType::AAAA),
    ("postgres.data.svc.cluster.local", RecordType::A),
    ("postgres-0.postgres.data.svc.cluster.local", RecordType::A),
    (
        "_postgres._tcp.postgres.data.svc.cluster.local",
        RecordType::SRV,
    ),
    ("storefront.shop.svc.cluster.local", RecordType::A),
    ("nosuch.shop.svc.cluster.local", RecordType::A),
    (
        "frontend.shop.svc.cluster.local.shop.svc.cluster.local",
        RecordType::A,
    ),
    ("10.0.96.10.in-addr.arpa", RecordType::PTR),
    ("10-244-1-10.shop.pod.cluster.local", RecordType::A),
    ("cluster.local", RecordType::SOA),
];

#[test]
fn cluster_zone_lookups_allocate_nothing() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let zone = demo_zone();
    let queries = QUERIES;
    let mut out = AnswerBuf::default();
    // Warm up: the reused buffers grow to their working size once.
    for (name, qtype) in queries {
        lookup(&zone, name, *qtype, &mut out);
    }
    allocates_nothing("1100 lookups", || {
        let mut answered = 0;
        for _ in 0..100 {
            for (name, qtype) in queries {
                lookup(&zone, name, *qtype, &mut out);
                answered += out.answers.len();
            }
        }
        assert!(answered > 500, "the lookups answered: {answered}");
    });
}

/// Two clusters' endpoints behind a headless import and a ClusterSetIP import.
const IMPORTS: &str = r#"
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: web, namespace: shop}
spec: {type: ClusterSetIP, ips: [10.100.0.10], ports: [{name: http, port: 80, protocol: TCP}]}
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: db, namespace: shop}
spec: {type: Headless}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-east
  namespace: shop
  labels: {multicluster.kubernetes.io/service-name: db, multicluster.kubernetes.io/source-cluster: east}
addressType: IPv4
endpoints: [{addresses: [10.1.0.2], hostname: db-0}, {addresses: [10.1.0.3]}]
ports: [{name: pg, port: 5432, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-west
  namespace: shop
  labels: {multicluster.kubernetes.io/service-name: db, multicluster.kubernetes.io/source-cluster: west}
addressType: IPv4
endpoints: [{addresses: [10.2.0.2], hostname: db-0}]
ports: [{name: pg, port: 5432, protocol: TCP}]
"#;

#[test]
fn clusterset_zone_lookups_allocate_nothing() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let demo = demo_zone();
    let mut snapshot = Snapshot::default();
    parse_text(IMPORTS, Path::new("imports.yaml"), &mut snapshot);
    parse_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
        Path::new("ns.yaml"),
        &mut snapshot,
    );
    let index = Arc::new(Index::new(IndexOptions {
        multicluster: true,
        ..IndexOptions::default()
    }));
    index.apply(snapshot.into_events());
    let mut config = (*demo.config).clone();
    config.zones.push("clusterset.local".into());
    config.multicluster = vec!["clusterset.local".into()];
    let zone = ClusterZone {
        config: Arc::new(config),
        index,
    };
    let queries: &[(&str, RecordType)] = &[
        ("web.shop.svc.clusterset.local", RecordType::A),
        ("_http._tcp.web.shop.svc.clusterset.local", RecordType::SRV),
        ("db.shop.svc.clusterset.local", RecordType::A),
        ("db.shop.svc.clusterset.local", RecordType::SRV),
        ("db-0.west.db.shop.svc.clusterset.local", RecordType::A),
        ("nosuch.shop.svc.clusterset.local", RecordType::A),
        ("clusterset.local", RecordType::SOA),
    ];
    let mut out = AnswerBuf::default();
    for (name, qtype) in queries {
        lookup(&zone, name, *qtype, &mut out);
    }
    allocates_nothing("700 clusterset lookups", || {
        let mut answered = 0;
        for _ in 0..100 {
            for (name, qtype) in queries {
                lookup(&zone, name, *qtype, &mut out);
                answered += out.answers.len();
            }
        }
        assert!(answered >= 900, "the lookups answered: {answered}");
    });
}

/// Runs `round` (one measured round of work) until a round allocates nothing, three times at
/// most. The counts are process-wide and the test harness's own thread may print another
/// test's result meanwhile (an allocation or two): an allocation on the measured path shows in
/// every round, the harness's in one at most.
fn allocates_nothing(what: &str, mut round: impl FnMut()) {
    let mut tries = Vec::new();
    for _ in 0..3 {
        let region = Region::new(GLOBAL);
        round();
        let stats = region.change();
        if (stats.allocations, stats.reallocations) == (0, 0) {
            return;
        }
        tries.push(stats);
    }
    panic!("allocations during each of 3 rounds of {what}: {tries:?}");
}

/// A query as a client sends it: RD set, EDNS with a 1232-byte payload.
fn request(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut out = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&u16::from(qtype).to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    out
}

/// The whole request path of a cluster name, not only the lookup: parse, route, the
/// pipeline's stages (log and loadbalance configured too), write.
#[test]
fn the_request_path_of_cluster_names_allocates_nothing() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let plugins = Plugins {
        log: clusterdns::config::LogClasses::ALL,
        loadbalance: true,
        kubernetes: Some(demo_zone()),
        ..Plugins::default()
    };
    let router = router_with(plugins);
    let requests: Vec<Vec<u8>> = QUERIES.iter().map(|(n, t)| request(n, *t)).collect();
    answer_without_allocating(&router, &requests, |_| true, "a cluster name");
}

/// Templates configured beside the cluster zone cost cluster names no allocation (they are
/// passed by type and zone), and neither does a template that answers without records
/// (AAAA blanking, an NXDOMAIN suffix).
#[test]
fn templates_beside_the_cluster_zone_allocate_nothing() {
    use clusterdns::config::TemplateConfig;
    use clusterdns::plugins::template::Templates;
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
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
        template(255, 255, "internal.cloudapp.net", &[r"^(?:[^.]+\.){4,}"], 3),
        template(255, 255, "reddog.microsoft.com", &[], 3),
        template(1, 28, "v4only.example", &[], 0),
    ])
    .unwrap();
    let plugins = Plugins {
        kubernetes: Some(demo_zone()),
        template: Some(templates),
        ..Plugins::default()
    };
    let router = router_with(plugins);
    let mut requests: Vec<Vec<u8>> = QUERIES.iter().map(|(n, t)| request(n, *t)).collect();
    requests.push(request("web.v4only.example", RecordType::AAAA));
    requests.push(request("x.reddog.microsoft.com", RecordType::A));
    answer_without_allocating(
        &router,
        &requests,
        |_| true,
        "a cluster name or a bare template",
    );
}

/// A `hosts` hit through the whole request path: A, AAAA and PTR answers and a NODATA, from
/// the file's table and the inline one, allocate nothing.
#[test]
fn the_request_path_of_hosts_hits_allocates_nothing() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(format!("clusterdns-alloc-hosts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hosts");
    std::fs::write(
        &file,
        "10.0.0.1 web.example.org www.example.org\nfd00::1 web.example.org\n",
    )
    .unwrap();
    let hosts = Hosts::start(&HostsConfig {
        file: Some(file),
        zones: vec![String::new()],
        entries: vec!["10.0.0.2 web.example.org inline.example.org".into()],
        ttl: 3600,
        no_reverse: false,
        reload: std::time::Duration::ZERO,
        fallthrough: Vec::new(),
    });
    std::fs::remove_dir_all(&dir).unwrap();
    let plugins = Plugins {
        log: clusterdns::config::LogClasses::ALL,
        loadbalance: true,
        hosts: Some(hosts),
        ..Plugins::default()
    };
    let router = router_with(plugins);
    let queries = [
        ("web.example.org", RecordType::A),
        ("WWW.example.org", RecordType::A),
        ("web.example.org", RecordType::AAAA),
        ("inline.example.org", RecordType::MX),
        ("1.0.0.10.in-addr.arpa", RecordType::PTR),
        ("2.0.0.10.in-addr.arpa", RecordType::PTR),
        (
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
            RecordType::PTR,
        ),
    ];
    let requests: Vec<Vec<u8>> = queries.iter().map(|(n, t)| request(n, *t)).collect();
    // AA set, NOERROR.
    let authoritative = |r: &[u8]| r[2] & 0x04 != 0 && r[3] & 0x0f == 0;
    answer_without_allocating(&router, &requests, authoritative, "a hosts name");
}

/// Cluster names through `acl` (three rules that do not match the client, and a zone it
/// blocks), `any`, `minimal` and `whoami` (names outside the cluster zone) allocate nothing.
#[test]
fn the_small_plugins_allocate_nothing() {
    use clusterdns::config::{AclAction, AclConfig, AclRule};
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let rule = |action, types: Option<Vec<u16>>, net: &str| AclRule {
        action,
        types,
        nets: Some(vec![net.parse().unwrap()]),
    };
    let acl = clusterdns::plugins::acl::Acl::new(&[
        AclConfig {
            zones: vec![String::new()],
            rules: vec![
                rule(AclAction::Block, Some(vec![1]), "192.168.0.0/16"),
                rule(AclAction::Filter, Some(vec![28]), "10.0.0.0/8"),
                rule(AclAction::Drop, None, "fd00::/8"),
            ],
        },
        AclConfig {
            zones: vec!["blocked.example".into()],
            rules: vec![rule(AclAction::Block, None, "127.0.0.0/8")],
        },
    ]);
    let plugins = Plugins {
        acl,
        any: true,
        minimal: true,
        whoami: true,
        kubernetes: Some(demo_zone()),
        ..Plugins::default()
    };
    let router = router_with(plugins);
    let mut queries = QUERIES.to_vec();
    queries.extend([
        ("who.example", RecordType::A),
        ("x.blocked.example", RecordType::A),
        ("frontend.shop.svc.cluster.local", RecordType::ANY),
    ]);
    let requests: Vec<Vec<u8>> = queries.iter().map(|(n, t)| request(n, *t)).collect();
    answer_without_allocating(&router, &requests, |r| r[..2] == [0x12, 0x34], "a query");
}

/// Three rewrite rules no cluster name matches (exact, suffix, Gardener's regex): the
/// request path of cluster names still allocates nothing.
#[test]
fn the_request_path_with_rewrite_rules_that_do_not_match_allocates_nothing() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let plugins = Plugins {
        loadbalance: true,
        rewrite: Some(three_rewrite_rules()),
        kubernetes: Some(demo_zone()),
        ..Plugins::default()
    };
    let router = router_with(plugins);
    let requests: Vec<Vec<u8>> = QUERIES.iter().map(|(n, t)| request(n, *t)).collect();
    answer_without_allocating(&router, &requests, |_| true, "a cluster name");
}

fn three_rewrite_rules() -> clusterdns::plugins::rewrite::Rewrite {
    let config = clusterdns::config::Config::parse(
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
[[server.rewrite]]
field = "name"
match = "regex"
from = '(^(?:[^\.]+\.)+)svc\.cluster\.local\.svc\.cluster\.local'
to = "{1}svc.cluster.local"
answer_name = [{ from = '(^(?:[^\.]+\.)+)svc\.cluster\.local', to = "{1}svc.cluster.local.svc.cluster.local" }]
"#,
        Path::new("rewrite.toml"),
    )
    .unwrap();
    clusterdns::plugins::rewrite::Rewrite::new(config.servers[0].rewrite.clone())
}

/// A router of one root block with `plugins`.
fn router_with(plugins: Plugins) -> Router {
    let zones = vec![String::new()];
    let metrics = Arc::new(DnsMetrics::new("dns://127.0.0.1:53".into(), &zones));
    Router::new(vec![Block::new(zones, plugins)], metrics)
}

/// Answers `requests` once (the reused buffers grow to their working size), then 100 times
/// more counting allocations: none, and every reply is one `check` accepts.
fn answer_without_allocating(
    router: &Router,
    requests: &[Vec<u8>],
    check: impl Fn(&[u8]) -> bool,
    what: &str,
) {
    let mut scratch = Scratch::default();
    let mut report = QueryReport::default();
    let mut answer = |bytes: &[u8], scratch: &mut Scratch| -> usize {
        match router.handle(bytes, Transport::Udp, PEER, scratch, &mut report) {
            Handled::Reply(r) if check(r) => r.len(),
            _ => panic!("{what} is answered on the spot"),
        }
    };
    for r in requests {
        answer(r, &mut scratch);
    }
    allocates_nothing(&format!("{} requests", 100 * requests.len()), || {
        let mut written = 0;
        for _ in 0..100 {
            for r in requests {
                written += answer(r, &mut scratch);
            }
        }
        assert!(
            written > 100 * requests.len() * 40,
            "bytes written: {written}"
        );
    });
}
