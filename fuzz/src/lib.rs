//! The fuzz targets' bodies and their oracles.
//!
//! Shared by the cargo-fuzz binaries in `fuzz/fuzz_targets/` (one line each) and by the main
//! crate's `tests/fuzz_corpus.rs`, which includes this file with `#[path]` and replays the
//! checked-in `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` inputs in the ordinary
//! test suite. So this file uses only `clusterdns`, `hickory_proto` and `std`.
//!
//! Every target must never panic; each also checks what its output promises (a response parses
//! and carries the request's ID, an error names its file, ...). Input formats:
//!
//! - `request_path`: a raw DNS request, handled over UDP and TCP by a router like the demo
//!   config's (one root block with the cluster zone), then over UDP by a stricter one.
//! - `zone_name`: `qtype (2 bytes, big-endian) | variant (1 byte) | name`, the name decoded by
//!   [`decode_name`] (bytes below 0x80 are characters, bytes from 0x80 are words such as `svc`
//!   or `cluster.local`), looked up with `clusterdns::zone::lookup` and, when it is a valid
//!   DNS name, also sent through the router.
//! - `config`: the text of a config file (`Config::parse`).
//! - `manifests`: the text of a manifest file (`cluster::manifests::parse_text`); what parses is
//!   indexed and every name it defines is queried through a router.
//! - `upstream_reply`: `control (2 bytes) | reply`: `Reply::parse`, then `write_for` a client
//!   whose view the control bytes describe.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, LazyLock};

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::RecordType;

use clusterdns::cluster::manifests::{self, Snapshot};
use clusterdns::cluster::model::{ClusterObject, ServiceKind};
use clusterdns::config::{Config, ConfigError, PodMode};
use clusterdns::dns::{Client, Edns, Header, Transport, WireQuestion};
use clusterdns::forward::reply::{Reply, belongs_to};
use clusterdns::metrics::dns::{DnsMetrics, QueryReport};
use clusterdns::plugins::Plugins;
use clusterdns::server::{Block, Handled, Router, Scratch};
use clusterdns::zone::records::BuildOptions;
use clusterdns::zone::{
    AnswerBuf, ClusterZone, Index, IndexOptions, Outcome, Rcode, ZoneConfig, lookup, qname,
};

/// Every target, as named by the binaries, `fuzz/corpus/<target>` and `fuzz/regressions/<target>`.
pub const TARGETS: [&str; 5] = [
    "request_path",
    "zone_name",
    "config",
    "manifests",
    "upstream_reply",
];

/// Runs `target` on one input.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "request_path" => request_path(data),
        "zone_name" => zone_name(data),
        "config" => config(data),
        "manifests" => manifests(data),
        "upstream_reply" => upstream_reply(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster the zone targets answer from.

/// The demo cluster (`config/demo-cluster/`), as the embedded default serves it.
const DEMO_MANIFESTS: [(&str, &str); 5] = [
    (
        "00-namespaces.yaml",
        include_str!("../../config/demo-cluster/00-namespaces.yaml"),
    ),
    (
        "10-kube-system.yaml",
        include_str!("../../config/demo-cluster/10-kube-system.yaml"),
    ),
    (
        "20-shop.yaml",
        include_str!("../../config/demo-cluster/20-shop.yaml"),
    ),
    (
        "30-data.yaml",
        include_str!("../../config/demo-cluster/30-data.yaml"),
    ),
    (
        "40-pods.yaml",
        include_str!("../../config/demo-cluster/40-pods.yaml"),
    ),
];

/// Shapes the demo lacks: ExternalName loops and dangling or oddly spelled targets, a headless
/// Service too big for 512 bytes, IPv6 endpoints and pods, odd port names and protocols.
const EXTRA_MANIFESTS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: loop-a, namespace: shop}
spec: {type: ExternalName, externalName: loop-b.shop.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: loop-b, namespace: shop}
spec: {type: ExternalName, externalName: loop-a.shop.svc.cluster.local.}
---
apiVersion: v1
kind: Service
metadata: {name: dangling, namespace: shop}
spec: {type: ExternalName, externalName: nothing.shop.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: shouting, namespace: shop}
spec: {type: ExternalName, externalName: Storefront.SHOP.svc.Cluster.Local.}
---
apiVersion: v1
kind: Service
metadata: {name: ptr-name, namespace: shop}
spec: {type: ExternalName, externalName: 10.10.96.10.in-addr.arpa}
---
apiVersion: v1
kind: Service
metadata: {name: odd-ports, namespace: data}
spec:
  clusterIP: 10.96.20.1
  clusterIPs: [10.96.20.1, "fd00:10:96::2:1"]
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: sctp-x, port: 9, protocol: SCTP}
  - {port: 65535, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: odd-ports-v6
  namespace: data
  labels: {kubernetes.io/service-name: odd-ports}
addressType: IPv6
endpoints:
- addresses: ["fd00:10:244:2::1"]
  hostname: six
  targetRef: {kind: Pod, name: odd-ports-0, namespace: data}
- addresses: ["fd00:10:244:2::2"]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: odd-ports-1, namespace: data}
ports:
- {name: dns, port: 5353, protocol: UDP}
- {name: sctp-x, port: 9999, protocol: SCTP}
---
apiVersion: v1
kind: Pod
metadata: {name: odd-ports-1, namespace: data}
spec:
  containers: [{name: x, image: x}]
status: {podIP: "fd00:10:244:2::2"}
---
apiVersion: v1
kind: Service
metadata: {name: wide, namespace: data}
spec:
  clusterIP: None
  ports:
  - {name: http, port: 80, protocol: TCP}
"#;

/// A headless Service's slice with 40 endpoints: its A and SRV answers exceed 512 bytes.
fn wide_slice() -> String {
    let mut text = String::from(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata:\n  name: wide-1\n  namespace: data\n  \
         labels: {kubernetes.io/service-name: wide}\naddressType: IPv4\nendpoints:\n",
    );
    for i in 0..40 {
        let hostname = if i % 2 == 0 {
            format!("  hostname: wide-{i}\n")
        } else {
            String::new()
        };
        text.push_str(&format!(
            "- addresses: [10.245.0.{}]\n{hostname}  targetRef: {{kind: Pod, name: wide-pod-{i}, namespace: data}}\n",
            i + 1
        ));
    }
    text.push_str("ports:\n- {name: http, port: 8080, protocol: TCP}\n");
    text
}

/// Every object of the fuzzed cluster, parsed with the manifests source's own parser.
fn cluster_snapshot() -> Snapshot {
    let mut snapshot = Snapshot::default();
    for (file, text) in DEMO_MANIFESTS {
        manifests::parse_text(text, Path::new(file), &mut snapshot);
    }
    manifests::parse_text(EXTRA_MANIFESTS, Path::new("extra.yaml"), &mut snapshot);
    manifests::parse_text(&wide_slice(), Path::new("wide.yaml"), &mut snapshot);
    assert!(
        snapshot.warnings.is_empty(),
        "the fuzzed cluster must parse cleanly: {:?}",
        snapshot.warnings
    );
    snapshot
}

const ZONES: [&str; 3] = ["cluster.local", "in-addr.arpa", "ip6.arpa"];

/// The zone as `main.rs` builds it for `config/clusterdns.toml`: `pods = "insecure"`,
/// `ttl = 5`, `fallthrough = ["in-addr.arpa", "ip6.arpa"]`.
fn demo_zone(snapshot: Snapshot) -> ClusterZone {
    zone_of(
        snapshot,
        IndexOptions {
            build: BuildOptions {
                endpoint_pod_names: false,
            },
            namespaces: Vec::new(),
            track_pods: false,
            no_endpoints: false,
            multicluster: false,
        },
        demo_config(),
    )
}

fn demo_config() -> ZoneConfig {
    ZoneConfig {
        zones: ZONES.iter().map(|z| z.to_string()).collect(),
        primary: "cluster.local".into(),
        ttl: 5,
        pods: PodMode::Insecure,
        fallthrough: vec!["in-addr.arpa".into(), "ip6.arpa".into()],
        ignore_empty_service: false,
        multicluster: Vec::new(),
        own_addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
    }
}

/// The other settings: `pods = "verified"`, `endpoint_pod_names`, `ignore_empty_service`,
/// a namespace filter, no fallthrough, and own addresses that are kube-dns endpoints (so the
/// apex NS names the Service).
fn strict_zone(snapshot: Snapshot) -> ClusterZone {
    zone_of(
        snapshot,
        IndexOptions {
            build: BuildOptions {
                endpoint_pod_names: true,
            },
            namespaces: vec!["kube-system".into(), "shop".into(), "data".into()],
            track_pods: true,
            no_endpoints: false,
            multicluster: false,
        },
        ZoneConfig {
            zones: ZONES.iter().map(|z| z.to_string()).collect(),
            primary: "cluster.local".into(),
            ttl: 3600,
            pods: PodMode::Verified,
            fallthrough: Vec::new(),
            ignore_empty_service: true,
            multicluster: Vec::new(),
            own_addrs: vec![
                IpAddr::V4(Ipv4Addr::new(10, 244, 0, 2)),
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x53)),
            ],
        },
    )
}

fn zone_of(snapshot: Snapshot, options: IndexOptions, config: ZoneConfig) -> ClusterZone {
    let index = Arc::new(Index::new(options));
    index.apply(snapshot.into_events());
    assert!(index.is_synced());
    ClusterZone {
        config: Arc::new(config),
        index,
    }
}

fn router(blocks: Vec<Block>) -> Router {
    let zones: Vec<String> = blocks.iter().flat_map(|b| b.zones.clone()).collect();
    let metrics = Arc::new(DnsMetrics::new("dns://127.0.0.1:53".into(), &zones));
    Router::new(blocks, metrics)
}

fn block(zones: &[&str], cluster: Option<ClusterZone>, loadbalance: bool) -> Block {
    let plugins = Plugins {
        loadbalance,
        kubernetes: cluster,
        ..Plugins::default()
    };
    Block::new(zones.iter().map(|z| z.to_string()).collect(), plugins)
}

struct Fixture {
    demo: ClusterZone,
    strict: ClusterZone,
    /// The embedded default's shape: one block for the root with the cluster zone.
    demo_router: Router,
    /// A block per cluster zone with loadbalance, and a block for another zone with nothing.
    strict_router: Router,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let demo = demo_zone(cluster_snapshot());
    let strict = strict_zone(cluster_snapshot());
    let demo_router = router(vec![block(&[""], Some(demo.clone()), false)]);
    let strict_router = router(vec![
        block(&ZONES, Some(strict.clone()), true),
        block(&["example.org"], None, false),
    ]);
    Fixture {
        demo,
        strict,
        demo_router,
        strict_router,
    }
});

// ---------------------------------------------------------------------------------------------
// Requests and the response oracle.

/// A query as `dig` sends it (RD, one question, an OPT record with `edns` as the UDP size when
/// given), or `None` when `name` is not a valid DNS name (empty label, label over 63 bytes,
/// over 255 bytes on the wire). `name` has no trailing dot; `""` is the root.
pub fn query(name: &str, qtype: u16, id: u16, edns: Option<u16>) -> Option<Vec<u8>> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
    }
    m.push(0);
    if m.len() - 12 > 255 {
        return None;
    }
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = edns {
        m.extend_from_slice(&[0, 0, 41]);
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    Some(m)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Handles `request` and checks the outcome: a drop only for what has no header or is a
/// response; otherwise a reply that parses, carries the request's ID and opcode with QR set,
/// fits the client's size, and echoes the question byte for byte.
fn handle_and_check(router: &Router, request: &[u8], transport: Transport, scratch: &mut Scratch) {
    let mut report = QueryReport::default();
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    match router.handle(request, transport, peer, scratch, &mut report) {
        Handled::Drop => assert!(
            request.len() < 12 || request[2] & 0x80 != 0,
            "a query was dropped: {}",
            hex(request)
        ),
        Handled::Pending(_) => panic!("no block has a resolver, yet {} is pending", hex(request)),
        // Only the socket loops produce it (they catch the panic); `handle` itself never does.
        Handled::Panicked => unreachable!("Router::handle does not return Panicked"),
        Handled::Reply(response) => check_response(request, transport, response),
        Handled::Transfer(messages) => {
            assert!(transport == Transport::Tcp, "a transfer over UDP");
            messages
                .iter()
                .for_each(|m| check_response(request, transport, m));
        }
    }
}

fn check_response(request: &[u8], transport: Transport, response: &[u8]) {
    let ctx = || format!("request {} → response {}", hex(request), hex(response));
    assert!(response.len() >= 12, "short response: {}", ctx());
    assert_eq!(response[0..2], request[0..2], "ID: {}", ctx());
    assert!(response[2] & 0x80 != 0, "QR unset: {}", ctx());
    assert_eq!(response[2] & 0x78, request[2] & 0x78, "opcode: {}", ctx());
    let parsed_request = Message::from_vec(request).ok();
    let limit = match transport {
        Transport::Tcp => 65535,
        Transport::Udp => parsed_request
            .as_ref()
            .and_then(|m| m.edns.as_ref())
            .map_or(512, |e| usize::from(e.max_payload()).max(512)),
    };
    assert!(
        response.len() <= limit,
        "{} bytes over a limit of {limit}: {}",
        response.len(),
        ctx()
    );
    let parsed = match Message::from_vec(response) {
        Ok(m) => m,
        Err(e) => panic!("the response does not parse ({e}): {}", ctx()),
    };
    assert_eq!(
        parsed.metadata.id,
        u16::from_be_bytes([request[0], request[1]])
    );
    assert_eq!(parsed.metadata.message_type, MessageType::Response);
    assert!(parsed.queries.len() <= 1, "{}", ctx());
    if let (Some(asked), [answered]) = (
        parsed_request
            .as_ref()
            .and_then(|m| match m.queries.as_slice() {
                [q] => Some(q),
                _ => None,
            }),
        parsed.queries.as_slice(),
    ) {
        assert!(
            asked.name().iter().eq(answered.name().iter()),
            "the question is not echoed byte for byte: {}",
            ctx()
        );
        assert_eq!(asked.query_type(), answered.query_type(), "{}", ctx());
        assert_eq!(asked.query_class(), answered.query_class(), "{}", ctx());
    }
}

// ---------------------------------------------------------------------------------------------
// The targets.

/// Raw request bytes through `Router::handle`.
pub fn request_path(data: &[u8]) {
    let f = &*FIXTURE;
    // One scratch for all three, as a receive loop reuses it across queries.
    let mut scratch = Scratch::default();
    handle_and_check(&f.demo_router, data, Transport::Udp, &mut scratch);
    handle_and_check(&f.demo_router, data, Transport::Tcp, &mut scratch);
    handle_and_check(&f.strict_router, data, Transport::Udp, &mut scratch);
}

/// Characters for bytes below 0x80 (`.` and `_` included, so empty labels and service ports
/// happen).
const NAME_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-._";

/// Words for bytes from 0x80: the labels the name grammar and the fuzzed cluster know.
const NAME_WORDS: [&str; 48] = [
    "cluster.local",
    "svc",
    "pod",
    "in-addr.arpa",
    "ip6.arpa",
    "shop",
    "data",
    "kube-system",
    "default",
    "empty",
    "frontend",
    "cart",
    "search",
    "payments",
    "storefront",
    "legacy",
    "postgres",
    "postgres-0",
    "cache",
    "analytics",
    "kube-dns",
    "kubernetes",
    "loop-a",
    "dangling",
    "shouting",
    "ptr-name",
    "odd-ports",
    "wide",
    "wide-4",
    "six",
    "_http",
    "_tcp",
    "_udp",
    "_sctp",
    "_dns",
    "_postgres",
    "dns-version",
    "ns.dns",
    "10-244-1-10",
    "fd00-10-244-2--2",
    "10-244-0-2",
    "10.96.10",
    "10.96.0",
    "10.in-addr.arpa",
    "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.d.f",
    "frontend-7c9d8-aaaaa",
    "wide-pod-5",
    "192.168.49.2",
];

/// Decodes a fuzzed name: bytes below 0x80 pick from [`NAME_CHARS`], the others from
/// [`NAME_WORDS`]; a word after a character or word gets a dot before it.
pub fn decode_name(bytes: &[u8]) -> String {
    let mut name = String::new();
    for &b in bytes {
        if b < 0x80 {
            name.push(NAME_CHARS[usize::from(b) % NAME_CHARS.len()] as char);
        } else {
            if !name.is_empty() && !name.ends_with('.') {
                name.push('.');
            }
            name.push_str(NAME_WORDS[usize::from(b - 0x80) % NAME_WORDS.len()]);
        }
    }
    name
}

/// A structured name and type through the name grammar, the lookup and (when the name is a
/// valid DNS name) the router.
pub fn zone_name(data: &[u8]) {
    let &[t0, t1, variant, ref rest @ ..] = data else {
        return;
    };
    let qtype = u16::from_be_bytes([t0, t1]);
    let name = decode_name(rest);
    let f = &*FIXTURE;
    let zone = if variant & 1 == 0 { &f.demo } else { &f.strict };

    // The grammar on every suffix a zone could leave.
    for (i, _) in name.match_indices('.') {
        let _ = qname::parse(&name[..i]);
    }
    let _ = qname::parse(&name);
    for label in name.split('.') {
        let _ = clusterdns::zone::lookup::pod_ip(label);
    }

    let mut out = AnswerBuf::default();
    let outcome = lookup(zone, &name, RecordType::from(qtype), &mut out);
    let labels = if name.is_empty() {
        0
    } else {
        name.split('.').count()
    };
    match outcome {
        Outcome::Answer {
            rcode,
            zone_labels,
            soa,
        } => {
            assert!(zone_labels <= labels, "{name:?}: zone labels {zone_labels}");
            if rcode != Rcode::NoError {
                assert!(out.answers.is_empty(), "{name:?}: {rcode:?} with answers");
                assert!(soa.is_some(), "{name:?}: {rcode:?} without SOA");
            }
        }
        Outcome::NotOurs => assert!(
            !ZONES
                .iter()
                .any(|z| name == *z || name.ends_with(&format!(".{z}"))),
            "{name:?} is in a zone, yet not ours"
        ),
        Outcome::FallThrough => {}
    }

    let edns = match variant >> 1 & 3 {
        0 => None,
        1 => Some(512),
        2 => Some(1232),
        _ => Some(4096),
    };
    if let Some(request) = query(&name, qtype, 0xbeef, edns) {
        let mut scratch = Scratch::default();
        let (router, transport) = match variant >> 3 & 3 {
            0 => (&f.demo_router, Transport::Udp),
            1 => (&f.demo_router, Transport::Tcp),
            2 => (&f.strict_router, Transport::Udp),
            _ => (&f.strict_router, Transport::Tcp),
        };
        handle_and_check(router, &request, transport, &mut scratch);
    }
}

/// Config text through `Config::parse`: a config or an error that names the file and a key.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, Path::new("fuzz.toml")) {
        Ok(config) => assert_eq!(config.file, Path::new("fuzz.toml")),
        Err(e @ ConfigError::Invalid { .. }) => {
            let message = e.to_string();
            assert!(
                message.starts_with("fuzz.toml: "),
                "the error does not name the file: {message}"
            );
        }
        Err(e) => panic!("parsing text cannot fail to read: {e}"),
    }
}

/// Manifest text through `parse_text`; what it yields is indexed and queried by every name it
/// defines, through a router answering from nothing else.
pub fn manifests(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut snapshot = Snapshot::default();
    manifests::parse_text(text, Path::new("fuzz.yaml"), &mut snapshot);
    if snapshot.objects.is_empty() {
        return;
    }
    // The names to ask for, before the snapshot goes into the index.
    let mut names: Vec<(String, u16)> = Vec::new();
    let mut ask = |name: String, types: &[RecordType]| {
        for t in types {
            names.push((name.to_ascii_lowercase(), u16::from(*t)));
        }
    };
    let ptr = |ip: &IpAddr| match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut name = String::new();
            for b in a.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            name + "ip6.arpa"
        }
    };
    use RecordType::{A, AAAA, ANY, CNAME, PTR, SRV};
    for object in snapshot.objects.iter().take(32) {
        match object {
            ClusterObject::Namespace(ns) => {
                ask(format!("{}.svc.cluster.local", ns.name), &[A]);
            }
            ClusterObject::ServiceImport(import) => {
                let base = format!("{}.{}.svc.cluster.local", import.name, import.namespace);
                ask(base, &[A, SRV]);
            }
            ClusterObject::Service(svc) => {
                let base = format!("{}.{}.svc.cluster.local", svc.name, svc.namespace);
                ask(base.clone(), &[A, AAAA, SRV, CNAME, ANY]);
                for port in svc.ports.iter().take(4) {
                    ask(
                        format!(
                            "_{}._{}.{base}",
                            port.name,
                            port.protocol.to_ascii_lowercase()
                        ),
                        &[SRV],
                    );
                }
                if let ServiceKind::ClusterIp(ips) = &svc.kind {
                    for ip in ips.iter().take(4) {
                        ask(ptr(ip), &[PTR]);
                    }
                }
            }
            ClusterObject::EndpointSet(slice) => {
                let service = slice.service.as_deref().unwrap_or("x");
                for endpoint in slice.endpoints.iter().take(8) {
                    if let Some(h) = &endpoint.hostname {
                        ask(
                            format!("{h}.{service}.{}.svc.cluster.local", slice.namespace),
                            &[A, AAAA],
                        );
                    }
                    for ip in endpoint.addresses.iter().take(2) {
                        ask(ptr(ip), &[PTR]);
                    }
                }
            }
            ClusterObject::Pod(pod) => {
                if let Some(ip) = pod.ip {
                    let dashed = ip.to_string().replace(['.', ':'], "-");
                    ask(
                        format!("{dashed}.{}.pod.cluster.local", pod.namespace),
                        &[A],
                    );
                }
            }
        }
    }
    let options = IndexOptions {
        build: BuildOptions {
            endpoint_pod_names: true,
        },
        namespaces: Vec::new(),
        track_pods: true,
        no_endpoints: false,
        multicluster: false,
    };
    let config = ZoneConfig {
        pods: PodMode::Verified,
        ..demo_config()
    };
    let zone = zone_of(snapshot, options, config);
    let router = router(vec![block(&[""], Some(zone), true)]);
    let mut scratch = Scratch::default();
    for (i, (name, qtype)) in names.iter().enumerate() {
        if let Some(request) = query(name, *qtype, i as u16, Some(1232)) {
            handle_and_check(&router, &request, Transport::Udp, &mut scratch);
        }
    }
}

/// An upstream reply through `Reply::parse` and `write_for`.
pub fn upstream_reply(data: &[u8]) {
    let &[c0, c1, ref message @ ..] = data else {
        return;
    };
    let Ok(reply) = Reply::parse(message) else {
        return;
    };
    let _ = (reply.truncated(), reply.authoritative());
    // The forwarder only keeps replies whose question is plain and matches the query's (case
    // aside); the cache only serves a reply to a question with the same cache key.
    let Some(mut question) = WireQuestion::of(message) else {
        return;
    };
    assert!(
        belongs_to(
            message,
            u16::from_be_bytes([message[0], message[1]]),
            &question
        ) == (message[2] & 0x80 != 0)
    );
    let name_len = question.bytes.len() - 4;
    for (i, b) in question.bytes[..name_len].iter_mut().enumerate() {
        if c1 & (1 << (i % 8)) != 0 {
            *b = b.to_ascii_uppercase();
        }
    }
    let limit = match c0 >> 5 {
        0 => 512,
        1 => 1232,
        2 => 4096,
        3 => 65535,
        4 => 0,
        5 => 600,
        6 => 100,
        _ => 1500,
    };
    let view = Client {
        header: Header {
            id: 0xa5c3,
            opcode: 0,
            recursion_desired: c0 & 1 != 0,
            checking_disabled: c0 & 2 != 0,
        },
        edns: (c0 & 4 != 0).then_some(Edns {
            payload: 1232,
            version: 0,
            dnssec_ok: c0 & 8 != 0,
        }),
        limit,
        transport: Transport::Udp,
        question: question.clone(),
    };
    let ttl = (c0 & 16 != 0).then_some(u32::from(c1) * 7);
    let mut out = Vec::new();
    reply.write_for(&view, ttl, &mut out);
    let ctx = || format!("reply {} → {}", hex(message), hex(&out));
    assert!(out.len() >= 12, "{}", ctx());
    assert_eq!(out[0..2], 0xa5c3u16.to_be_bytes(), "{}", ctx());
    assert!(out.len() <= limit.max(512), "over the limit: {}", ctx());
    assert_eq!(
        out[12..12 + question.bytes.len()],
        question.bytes[..],
        "the client's spelling: {}",
        ctx()
    );
    // What hickory reads as a message must still read as one once dressed for the client.
    if Message::from_vec(message).is_ok() {
        let parsed = match Message::from_vec(&out) {
            Ok(m) => m,
            Err(e) => panic!(
                "the reply written for the client does not parse ({e}): {}",
                ctx()
            ),
        };
        assert_eq!(parsed.metadata.id, 0xa5c3);
        assert_eq!(parsed.edns.is_some(), view.edns.is_some(), "{}", ctx());
        assert_eq!(
            parsed.metadata.recursion_desired,
            view.header.recursion_desired
        );
        assert_eq!(
            parsed.metadata.checking_disabled,
            view.header.checking_disabled
        );
        if let Some(ttl) = ttl {
            for r in parsed
                .answers
                .iter()
                .chain(&parsed.authorities)
                .chain(&parsed.additionals)
            {
                assert_eq!(r.ttl, ttl, "{}", ctx());
            }
        }
    }
}
