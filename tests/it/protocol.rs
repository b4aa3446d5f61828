//! The wire protocol: EDNS, truncation, malformed input, opcodes, ANY — against the real binary.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::harness::{Proto, Server, TempDir, query, query_opts, raw_tcp, raw_udp, request_bytes};

/// A headless service with 200 ready endpoints in two slices.
fn big_headless() -> String {
    let mut text = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: big}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: many, namespace: big}\nspec: {clusterIP: None, ports: [{name: http, port: 80}]}\n",
    );
    for slice in 0..2 {
        text.push_str(&format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: many-{slice}, namespace: big, labels: {{kubernetes.io/service-name: many}}}}\naddressType: IPv4\nports: [{{name: http, port: 80}}]\nendpoints:\n"
        ));
        for i in 0..100 {
            text.push_str(&format!("- addresses: [10.50.{slice}.{i}]\n"));
        }
    }
    text
}

fn parse(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).expect("the response parses")
}

#[tokio::test]
async fn truncation_sets_tc_over_udp_and_tcp_carries_all_200_endpoints() {
    let s = Server::with_manifests(&[("big.yaml", &big_headless())], "");
    // A classic 512-byte client (no EDNS).
    let raw = raw_udp(
        s.addr,
        &request_bytes("many.big.svc.cluster.local.", RecordType::A, None),
        Duration::from_secs(5),
    )
    .expect("udp answer");
    assert!(
        raw.len() <= 512,
        "UDP answer of {} bytes exceeds 512",
        raw.len()
    );
    let udp = parse(&raw);
    assert!(udp.metadata.truncation, "TC must be set");
    assert!(udp.answers.len() < 200);
    // hickory's client over TCP gets the whole set.
    let tcp = query(
        s.addr,
        "many.big.svc.cluster.local.",
        RecordType::A,
        Proto::Tcp,
    )
    .await;
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 200);
    // SRV with glue over TCP: 200 SRV + 200 A.
    let srv = query(
        s.addr,
        "_http._tcp.many.big.svc.cluster.local.",
        RecordType::SRV,
        Proto::Tcp,
    )
    .await;
    assert_eq!((srv.answers.len(), srv.additionals.len()), (200, 200));
    // Without EDNS over hickory's UDP client: truncated too.
    let udp = query_opts(
        s.addr,
        "many.big.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
        false,
    )
    .await;
    assert!(udp.metadata.truncation);
}

#[tokio::test]
async fn edns_payload_size_is_honoured_up_to_max_udp_size() {
    let manifests = TempDir::new();
    manifests.write("big.yaml", &big_headless());
    let s = Server::with_config(&format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\nmax_udp_size = 4096\n\
         [server.kubernetes]\nmanifests = {:?}\n",
        manifests.0
    ));
    // 200 A records compress to 16 bytes each: 3.2 kB fits a 4096-byte client, not a 1232 one.
    let big = raw_udp(
        s.addr,
        &request_bytes("many.big.svc.cluster.local.", RecordType::A, Some(4096)),
        Duration::from_secs(5),
    )
    .unwrap();
    let m = parse(&big);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 200);
    let small = raw_udp(
        s.addr,
        &request_bytes("many.big.svc.cluster.local.", RecordType::A, Some(1232)),
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(small.len() <= 1232);
    let m = parse(&small);
    assert!(m.metadata.truncation);
    // The OPT record is echoed: version 0, our payload 1232.
    let edns = m.edns.expect("OPT in the response");
    assert_eq!((edns.version(), edns.max_payload()), (0, 1232));
}

#[tokio::test]
async fn srv_glue_is_dropped_before_answers_are_truncated() {
    let s = Server::with_manifests(&[("big.yaml", &big_headless())], "");
    let raw = raw_udp(
        s.addr,
        &request_bytes(
            "_http._tcp.many.big.svc.cluster.local.",
            RecordType::SRV,
            Some(1232),
        ),
        Duration::from_secs(5),
    )
    .unwrap();
    let m = parse(&raw);
    assert!(raw.len() <= 1232);
    assert!(m.metadata.truncation);
    // Only the OPT remains in the additional section.
    assert_eq!(m.additionals.len(), 0);
}

/// 18 endpoints: the SRV answers fit 1232 octets (targets uncompressed, RFC 2782) but not all
/// their glue. The glue that fits is kept, in order, without TC (RFC 2181 §9), as CoreDNS keeps
/// what fits.
#[tokio::test]
async fn srv_glue_that_fits_is_kept_when_not_all_of_it_fits() {
    let mut text = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: zk, namespace: data}\nspec: {clusterIP: None, ports: [{name: https, port: 443}]}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: zk-1, namespace: data, labels: {kubernetes.io/service-name: zk}}\naddressType: IPv4\nports: [{name: https, port: 443}]\nendpoints:\n",
    );
    for i in 0..18 {
        text.push_str(&format!("- addresses: [10.128.2.{}]\n", 70 + i));
    }
    let s = Server::with_manifests(&[("zk.yaml", &text)], "");
    let raw = raw_udp(
        s.addr,
        &request_bytes(
            "_https._tcp.zk.data.svc.cluster.local.",
            RecordType::SRV,
            Some(1232),
        ),
        Duration::from_secs(5),
    )
    .unwrap();
    let m = parse(&raw);
    assert!(raw.len() <= 1232, "{} octets", raw.len());
    assert!(!m.metadata.truncation, "only glue was dropped");
    assert_eq!(m.answers.len(), 18);
    let glue = m.additionals.len();
    assert!(0 < glue && glue < 18, "some glue kept: {glue}");
    // Each glue record names the target of the SRV record in the same position.
    for (srv, a) in m.answers.iter().zip(&m.additionals) {
        let RData::SRV(srv) = &srv.data else {
            panic!("not SRV: {srv:?}")
        };
        assert_eq!(srv.target, a.name);
        assert!(matches!(a.data, RData::A(_)), "{a:?}");
    }
}

#[test]
fn edns_version_1_gets_badvers() {
    let s = Server::demo();
    let mut bytes = request_bytes(
        "frontend.shop.svc.cluster.local.",
        RecordType::A,
        Some(1232),
    );
    // The OPT is the last record: its TTL field holds ext-rcode, version, flags.
    let n = bytes.len();
    bytes[n - 5] = 1; // version 1
    let reply = raw_udp(s.addr, &bytes, Duration::from_secs(5)).expect("a reply");
    let m = parse(&reply);
    // 16 is BADVERS with an OPT (hickory names the number after TSIG's BADSIG).
    assert_eq!(u16::from(m.metadata.response_code), 16);
    assert_eq!(m.edns.expect("OPT").version(), 0);
    assert!(m.answers.is_empty());
}

#[test]
fn malformed_messages_get_formerr_or_silence_and_the_server_keeps_answering() {
    let s = Server::demo();
    let wait = Duration::from_millis(500);
    // Shorter than a header: nobody to answer.
    assert_eq!(raw_udp(s.addr, &[1, 2, 3], wait), None);
    // A header announcing a question that is not there: FORMERR with the same ID.
    let reply = raw_udp(
        s.addr,
        &[0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0],
        wait,
    )
    .expect("formerr");
    assert_eq!(&reply[..2], &[0xab, 0xcd]);
    assert_eq!(reply[3] & 0x0f, 1, "FORMERR");
    assert_ne!(reply[2] & 0x80, 0, "QR set");
    // No question at all: FORMERR.
    let reply =
        raw_udp(s.addr, &[0, 7, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0], wait).expect("formerr");
    assert_eq!(reply[3] & 0x0f, 1);
    // A compression pointer loop in the question.
    let looped = [0, 8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
    let reply = raw_udp(s.addr, &looped, wait).expect("formerr");
    assert_eq!(reply[3] & 0x0f, 1);
    // A response sent as a query is never answered (no reflection loops).
    let mut response = request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None);
    response[2] |= 0x80;
    assert_eq!(raw_udp(s.addr, &response, wait), None);
    // Still serving.
    let ok = raw_udp(
        s.addr,
        &request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None),
        wait,
    )
    .unwrap();
    assert_eq!(parse(&ok).answers.len(), 1);
}

#[test]
fn other_opcodes_are_notimp() {
    let s = Server::demo();
    let mut bytes = request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None);
    bytes[2] = (bytes[2] & 0x87) | (2 << 3); // STATUS
    let m = parse(&raw_udp(s.addr, &bytes, Duration::from_secs(5)).unwrap());
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
}

#[test]
fn zone_transfers_and_other_classes_are_refused() {
    let s = Server::demo();
    let m = parse(&raw_tcp(
        s.addr,
        &request_bytes("cluster.local.", RecordType::AXFR, None),
    ));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let mut chaos = request_bytes("version.bind.", RecordType::TXT, None);
    let n = chaos.len();
    chaos[n - 1] = 3; // class CH
    let m = parse(&raw_udp(s.addr, &chaos, Duration::from_secs(5)).unwrap());
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test]
async fn any_is_answered_minimally() {
    let s = Server::demo();
    let m = query(
        s.addr,
        "frontend.shop.svc.cluster.local.",
        RecordType::ANY,
        Proto::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.len() <= 1, "ANY must not list every record");
    let m = query(
        s.addr,
        "nope.shop.svc.cluster.local.",
        RecordType::ANY,
        Proto::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn pipelined_tcp_queries_are_answered_in_order() {
    use std::io::{Read, Write};
    let s = Server::demo();
    let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let names = [
        "frontend.shop.svc.cluster.local.",
        "cart.shop.svc.cluster.local.",
        "nope.shop.svc.cluster.local.",
    ];
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut q = request_bytes(name, RecordType::A, None);
        q[1] = i as u8;
        out.extend_from_slice(&(q.len() as u16).to_be_bytes());
        out.extend_from_slice(&q);
    }
    stream.write_all(&out).unwrap();
    for (i, name) in names.iter().enumerate() {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut reply).unwrap();
        let m = parse(&reply);
        assert_eq!(m.metadata.id & 0xff, i as u16);
        assert_eq!(m.queries[0].name().to_string(), *name);
    }
}
