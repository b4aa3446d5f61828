//! The spec's records, served by the real binary from the demo cluster, checked over UDP and
//! TCP through hickory's client (and dig for a few).

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use std::time::Duration;

use crate::harness::{Proto, Server, dig, lines, query, raw_tcp, raw_udp, request_bytes};

const BOTH: [Proto; 2] = [Proto::Udp, Proto::Tcp];

/// Asks over UDP and TCP; both must say the same. Returns the UDP answer.
async fn ask(server: &Server, name: &str, qtype: RecordType) -> Message {
    let udp = query(server.addr, name, qtype, Proto::Udp).await;
    let tcp = query(server.addr, name, qtype, Proto::Tcp).await;
    assert_eq!(
        udp.metadata.response_code, tcp.metadata.response_code,
        "{name} {qtype}: rcode differs by transport"
    );
    assert_eq!(
        lines(&udp.answers),
        lines(&tcp.answers),
        "{name} {qtype}: answers differ by transport"
    );
    assert_eq!(
        lines(&udp.additionals),
        lines(&tcp.additionals),
        "{name} {qtype}: additionals differ"
    );
    udp
}

fn assert_positive(msg: &Message, want: &[&str]) {
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert!(
        msg.metadata.authoritative,
        "AA must be set on cluster answers"
    );
    assert_eq!(lines(&msg.answers), want);
}

/// NXDOMAIN or NODATA: no answer, the zone SOA in authority with negative TTL = ttl (5).
fn assert_negative(msg: &Message, rcode: ResponseCode, zone: &str) {
    assert_eq!(msg.metadata.response_code, rcode);
    assert!(msg.metadata.authoritative);
    assert!(msg.answers.is_empty(), "{:?}", lines(&msg.answers));
    assert_eq!(msg.authorities.len(), 1, "SOA in authority");
    let soa = &msg.authorities[0];
    assert_eq!(soa.name.to_string(), zone);
    match &soa.data {
        RData::SOA(s) => {
            assert_eq!(s.mname.to_string(), format!("ns.dns.{zone}"));
            assert_eq!(s.rname.to_string(), format!("hostmaster.{zone}"));
            assert_eq!(
                (s.refresh, s.retry, s.expire, s.minimum),
                (7200, 1800, 86400, 5)
            );
            assert_eq!(soa.ttl, 5);
        }
        other => panic!("authority is not a SOA: {other:?}"),
    }
}

#[tokio::test]
async fn spec_2_2_dns_version_txt() {
    let s = Server::demo();
    let m = ask(&s, "dns-version.cluster.local.", RecordType::TXT).await;
    assert_positive(&m, &["dns-version.cluster.local. 28800 IN TXT 1.1.0"]);
}

#[tokio::test]
async fn spec_2_3_1_cluster_ip_a_aaaa_and_dual_stack() {
    let s = Server::demo();
    assert_positive(
        &ask(&s, "frontend.shop.svc.cluster.local.", RecordType::A).await,
        &["frontend.shop.svc.cluster.local. 5 IN A 10.96.10.10"],
    );
    assert_positive(
        &ask(&s, "frontend.shop.svc.cluster.local.", RecordType::AAAA).await,
        &["frontend.shop.svc.cluster.local. 5 IN AAAA fd00:10:96::a"],
    );
    assert_positive(
        &ask(&s, "search.shop.svc.cluster.local.", RecordType::AAAA).await,
        &["search.shop.svc.cluster.local. 5 IN AAAA fd00:10:96::30"],
    );
    // The family a service does not have is NODATA, not NXDOMAIN (musl stops its search on it).
    assert_negative(
        &ask(&s, "cart.shop.svc.cluster.local.", RecordType::AAAA).await,
        ResponseCode::NoError,
        "cluster.local.",
    );
    assert_negative(
        &ask(&s, "search.shop.svc.cluster.local.", RecordType::A).await,
        ResponseCode::NoError,
        "cluster.local.",
    );
    // A ClusterIP service with no endpoints still has its address.
    assert_positive(
        &ask(&s, "legacy.shop.svc.cluster.local.", RecordType::A).await,
        &["legacy.shop.svc.cluster.local. 5 IN A 10.96.10.40"],
    );
}

#[tokio::test]
async fn spec_2_3_2_srv_for_named_ports_with_address_glue() {
    let s = Server::demo();
    let m = ask(
        &s,
        "_grpc._tcp.cart.shop.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_positive(
        &m,
        &[
            "_grpc._tcp.cart.shop.svc.cluster.local. 5 IN SRV 0 100 9090 cart.shop.svc.cluster.local.",
        ],
    );
    assert_eq!(
        lines(&m.additionals),
        ["cart.shop.svc.cluster.local. 5 IN A 10.96.10.20"]
    );
    // kube-dns: 53/UDP and 53/TCP, the bare name lists each (target, port) once.
    let m = ask(
        &s,
        "kube-dns.kube-system.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_positive(
        &m,
        &[
            "kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 33 53 kube-dns.kube-system.svc.cluster.local.",
            "kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 33 9153 kube-dns.kube-system.svc.cluster.local.",
        ],
    );
    let m = ask(
        &s,
        "_dns._udp.kube-dns.kube-system.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(m.answers.len(), 1);
    assert_negative(
        &ask(
            &s,
            "_dns._sctp.kube-dns.kube-system.svc.cluster.local.",
            RecordType::SRV,
        )
        .await,
        ResponseCode::NXDomain,
        "cluster.local.",
    );
}

#[tokio::test]
async fn spec_2_3_3_ptr_for_cluster_ips_v4_and_v6() {
    let s = Server::demo();
    assert_positive(
        &ask(&s, "10.0.96.10.in-addr.arpa.", RecordType::PTR).await,
        &["10.0.96.10.in-addr.arpa. 5 IN PTR kube-dns.kube-system.svc.cluster.local."],
    );
    let v6 = "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.";
    assert_positive(
        &ask(&s, v6, RecordType::PTR).await,
        &[&format!("{v6} 5 IN PTR frontend.shop.svc.cluster.local.")],
    );
}

#[tokio::test]
async fn spec_2_4_1_headless_a_is_the_ready_addresses() {
    let s = Server::demo();
    assert_positive(
        &ask(&s, "postgres.data.svc.cluster.local.", RecordType::A).await,
        &[
            "postgres.data.svc.cluster.local. 5 IN A 10.244.1.30",
            "postgres.data.svc.cluster.local. 5 IN A 10.244.2.31",
        ],
    );
    // Every endpoint not ready: NXDOMAIN, so the search walk goes on.
    assert_negative(
        &ask(&s, "analytics.data.svc.cluster.local.", RecordType::A).await,
        ResponseCode::NXDomain,
        "cluster.local.",
    );
}

#[tokio::test]
async fn spec_2_4_1_per_endpoint_hostnames_and_dashed_addresses() {
    let s = Server::demo();
    assert_positive(
        &ask(
            &s,
            "postgres-0.postgres.data.svc.cluster.local.",
            RecordType::A,
        )
        .await,
        &["postgres-0.postgres.data.svc.cluster.local. 5 IN A 10.244.1.30"],
    );
    assert_positive(
        &ask(
            &s,
            "10-244-1-40.cache.data.svc.cluster.local.",
            RecordType::A,
        )
        .await,
        &["10-244-1-40.cache.data.svc.cluster.local. 5 IN A 10.244.1.40"],
    );
    // The not-ready pod has no name; a hostname hides the dashed name.
    for name in [
        "postgres-2.postgres.data.svc.cluster.local.",
        "10-244-1-30.postgres.data.svc.cluster.local.",
    ] {
        assert_negative(
            &ask(&s, name, RecordType::A).await,
            ResponseCode::NXDomain,
            "cluster.local.",
        );
    }
}

#[tokio::test]
async fn spec_2_4_2_headless_srv_targets_each_endpoint() {
    let s = Server::demo();
    let m = ask(
        &s,
        "_redis._tcp.cache.data.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_positive(
        &m,
        &[
            "_redis._tcp.cache.data.svc.cluster.local. 5 IN SRV 0 50 6379 10-244-1-40.cache.data.svc.cluster.local.",
            "_redis._tcp.cache.data.svc.cluster.local. 5 IN SRV 0 50 6379 10-244-2-41.cache.data.svc.cluster.local.",
        ],
    );
    assert_eq!(
        lines(&m.additionals),
        [
            "10-244-1-40.cache.data.svc.cluster.local. 5 IN A 10.244.1.40",
            "10-244-2-41.cache.data.svc.cluster.local. 5 IN A 10.244.2.41",
        ]
    );
    let m = ask(
        &s,
        "_stats._udp.cache.data.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(m.answers.len(), 2);
}

#[tokio::test]
async fn spec_2_4_3_headless_ptr_names_the_endpoint() {
    let s = Server::demo();
    assert_positive(
        &ask(&s, "30.1.244.10.in-addr.arpa.", RecordType::PTR).await,
        &["30.1.244.10.in-addr.arpa. 5 IN PTR postgres-0.postgres.data.svc.cluster.local."],
    );
}

#[tokio::test]
async fn spec_2_5_external_name_cname() {
    let s = Server::demo();
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
        assert_positive(
            &ask(&s, "payments.shop.svc.cluster.local.", qtype).await,
            &["payments.shop.svc.cluster.local. 5 IN CNAME api.payments.example.com."],
        );
    }
    // A target inside the cluster is chased.
    assert_positive(
        &ask(&s, "storefront.shop.svc.cluster.local.", RecordType::A).await,
        &[
            "frontend.shop.svc.cluster.local. 5 IN A 10.96.10.10",
            "storefront.shop.svc.cluster.local. 5 IN CNAME frontend.shop.svc.cluster.local.",
        ],
    );
}

/// Sends one raw query over UDP or TCP and returns the reply bytes.
fn raw(server: &Server, name: &str, qtype: RecordType, proto: Proto) -> (Vec<u8>, Vec<u8>) {
    let request = request_bytes(name, qtype, None);
    let reply = match proto {
        Proto::Udp => raw_udp(server.addr, &request, Duration::from_secs(5)).expect("a reply"),
        Proto::Tcp => raw_tcp(server.addr, &request),
    };
    (request, reply)
}

/// The wire form of a dotted name, case kept.
fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// Checked on the bytes: hickory's decoder folds the case of names reached by a pointer.
#[test]
fn names_match_case_insensitively_and_echo_the_query_case() {
    let s = Server::demo();
    for proto in BOTH {
        let name = "FrontEnd.SHOP.svc.Cluster.Local.";
        let (request, reply) = raw(&s, name, RecordType::A, proto);
        let question_end = 12 + wire_name(name).len() + 4;
        assert_eq!(
            &reply[12..question_end],
            &request[12..question_end],
            "question echoed byte for byte"
        );
        assert_eq!(reply[7], 1, "one answer");
        assert_eq!(
            &reply[question_end..question_end + 2],
            &[0xc0, 12],
            "owner points at the question"
        );
        // SRV targets: canonical service and namespace, the zone as the query spelled it.
        let (_, reply) = raw(
            &s,
            "_HTTP._Tcp.FrontEnd.Shop.SVC.Cluster.LOCAL.",
            RecordType::SRV,
            proto,
        );
        assert!(
            contains(&reply, &wire_name("frontend.shop.svc.Cluster.LOCAL.")),
            "{reply:?}"
        );
        // The SOA of a negative answer is owned by the zone as the query spelled it.
        let name = "Nope.Shop.SVC.Cluster.LOCAL.";
        let (_, reply) = raw(&s, name, RecordType::A, proto);
        let zone_offset = 12 + wire_name("Nope.Shop.SVC.").len() - 1;
        let question_end = 12 + wire_name(name).len() + 4;
        assert_eq!(reply[3] & 0x0f, 3, "NXDOMAIN");
        assert_eq!(
            &reply[question_end..question_end + 2],
            &[0xc0, zone_offset as u8]
        );
        assert_eq!(&reply[zone_offset..zone_offset + 8], b"\x07Cluster");
    }
}

#[tokio::test]
async fn negative_answers_carry_the_zone_soa() {
    let s = Server::demo();
    for (name, qtype, rcode) in [
        (
            "nope.shop.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "frontend.shop.svc.cluster.local.shop.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "frontend.nope.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "frontend.shop.svc.cluster.local.",
            RecordType::TXT,
            ResponseCode::NoError,
        ),
        (
            "frontend.shop.svc.cluster.local.",
            RecordType::MX,
            ResponseCode::NoError,
        ),
        (
            "shop.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "empty.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        ("svc.cluster.local.", RecordType::A, ResponseCode::NoError),
        ("cluster.local.", RecordType::A, ResponseCode::NoError),
    ] {
        assert_negative(&ask(&s, name, qtype).await, rcode, "cluster.local.");
    }
}

#[tokio::test]
async fn pods_insecure_answers_dashed_addresses() {
    let s = Server::demo();
    assert_positive(
        &ask(&s, "10-244-9-9.shop.pod.cluster.local.", RecordType::A).await,
        &["10-244-9-9.shop.pod.cluster.local. 5 IN A 10.244.9.9"],
    );
    assert_negative(
        &ask(&s, "10-244-9-9.nope.pod.cluster.local.", RecordType::A).await,
        ResponseCode::NXDomain,
        "cluster.local.",
    );
}

#[tokio::test]
async fn pods_verified_needs_a_pod_with_that_ip_in_that_namespace() {
    let s = Server::start(&format!(
        "manifests = {:?}\npods = \"verified\"\n",
        crate::harness::demo_dir()
    ));
    assert_positive(
        &ask(&s, "10-244-1-30.data.pod.cluster.local.", RecordType::A).await,
        &["10-244-1-30.data.pod.cluster.local. 5 IN A 10.244.1.30"],
    );
    assert_negative(
        &ask(&s, "10-244-1-30.shop.pod.cluster.local.", RecordType::A).await,
        ResponseCode::NXDomain,
        "cluster.local.",
    );
    assert_negative(
        &ask(&s, "10-244-9-9.shop.pod.cluster.local.", RecordType::A).await,
        ResponseCode::NXDomain,
        "cluster.local.",
    );
}

#[tokio::test]
async fn pods_disabled_is_nxdomain() {
    let s = Server::start(&format!("manifests = {:?}\n", crate::harness::demo_dir()));
    assert_negative(
        &ask(&s, "10-244-1-30.data.pod.cluster.local.", RecordType::A).await,
        ResponseCode::NXDomain,
        "cluster.local.",
    );
}

#[tokio::test]
async fn apex_soa_ns_and_nameserver_address() {
    let s = Server::demo();
    let m = ask(&s, "cluster.local.", RecordType::SOA).await;
    assert_eq!(m.answers.len(), 1);
    assert!(
        matches!(&m.answers[0].data, RData::SOA(soa) if soa.mname.to_string() == "ns.dns.cluster.local.")
    );
    // No kube-dns endpoint is this server (127.0.0.1): ns.dns names the address it answers from.
    let m = ask(&s, "cluster.local.", RecordType::NS).await;
    assert_positive(&m, &["cluster.local. 5 IN NS ns.dns.cluster.local."]);
    assert_eq!(
        lines(&m.additionals),
        ["ns.dns.cluster.local. 5 IN A 127.0.0.1"]
    );
    assert_positive(
        &ask(&s, "ns.dns.cluster.local.", RecordType::A).await,
        &["ns.dns.cluster.local. 5 IN A 127.0.0.1"],
    );
}

#[tokio::test]
async fn names_outside_the_cluster_zones_are_refused_until_forwarding_exists() {
    let s = Server::demo();
    for (name, qtype) in [
        ("example.com.", RecordType::A),
        ("9.9.9.9.in-addr.arpa.", RecordType::PTR),
    ] {
        let m = ask(&s, name, qtype).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(!m.metadata.authoritative);
    }
}

#[tokio::test]
async fn dig_sees_the_same_answers() {
    let s = Server::demo();
    assert_eq!(
        dig(s.addr, &["+short", "frontend.shop.svc.cluster.local", "A"]).trim(),
        "10.96.10.10"
    );
    assert_eq!(
        dig(
            s.addr,
            &["+short", "+tcp", "frontend.shop.svc.cluster.local", "AAAA"]
        )
        .trim(),
        "fd00:10:96::a"
    );
    assert_eq!(
        dig(s.addr, &["+short", "-x", "10.96.0.10"]).trim(),
        "kube-dns.kube-system.svc.cluster.local."
    );
    let mut srv: Vec<String> = dig(
        s.addr,
        &[
            "+short",
            "_postgres._tcp.postgres.data.svc.cluster.local",
            "SRV",
        ],
    )
    .lines()
    .map(str::to_owned)
    .collect();
    srv.sort();
    assert_eq!(
        srv,
        [
            "0 50 5432 postgres-0.postgres.data.svc.cluster.local.",
            "0 50 5432 postgres-1.postgres.data.svc.cluster.local."
        ]
    );
    let full = dig(s.addr, &["nope.shop.svc.cluster.local", "A"]);
    assert!(
        full.contains("status: NXDOMAIN") && full.contains("flags: qr aa rd;"),
        "{full}"
    );
}

/// `endpoints = false` (CoreDNS `noendpoints`): EndpointSlices are not kept, so headless
/// Services and endpoint names are NXDOMAIN while ClusterIPs and their SRV records answer.
#[test]
fn without_endpoints_headless_names_are_nxdomain_and_clusterips_answer() {
    let s = Server::start(&format!(
        "manifests = {:?}\npods = \"insecure\"\nendpoints = false\n",
        crate::harness::demo_dir()
    ));
    let out = crate::harness::dig(s.addr, &["frontend.shop.svc.cluster.local", "A"]);
    assert!(
        out.contains("10.96.10.10") && out.contains("status: NOERROR"),
        "{out}"
    );
    let out = crate::harness::dig(
        s.addr,
        &["_http._tcp.frontend.shop.svc.cluster.local", "SRV"],
    );
    assert!(
        out.contains("frontend.shop.svc.cluster.local.") && out.contains("status: NOERROR"),
        "{out}"
    );
    for name in [
        "postgres.data.svc.cluster.local",
        "postgres-0.postgres.data.svc.cluster.local",
    ] {
        let out = crate::harness::dig(s.addr, &[name, "A"]);
        assert!(out.contains("status: NXDOMAIN"), "{name}: {out}");
    }
}
