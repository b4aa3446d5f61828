//! `transfer` side by side with CoreDNS 1.11.1: both watch the same fake API cluster (the demo
//! cluster, a headless Service with named and unnamed ports, an ExternalName, and enough
//! ClusterIP Services that a transfer takes several messages) and run the same Corefile
//! (clusterdns with `--corefile`). AXFR over TCP must give the same record set (SOA serial
//! aside: it is the time of the last change); IXFR with the current serial the SOA alone;
//! UDP, an unlisted client and an IXFR without its SOA the same rcodes.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record, RecordType};

use crate::differential::CoreDns;
use crate::harness::{Server, TempDir, dig, raw_udp, request_bytes};
use crate::kube_api::FakeApi;

/// ClusterIP Services added to the demo cluster: three records each, so the zone needs more
/// than one message of 500 records.
const BULK: usize = 250;

/// The demo cluster, each Service given the `type` a real API server defaults (CoreDNS's
/// transfer skips a Service without one), plus the Services this test needs.
fn cluster() -> String {
    let demo = include_str!("../stand-in/demo.json");
    let mut list: serde_json::Value = serde_json::from_str(demo).unwrap();
    let items = list["items"].as_array_mut().unwrap();
    for item in items.iter_mut().filter(|i| i["kind"] == "Service") {
        if item["spec"].get("type").is_none() {
            item["spec"]["type"] = "ClusterIP".into();
        }
    }
    let extra = r#"[
     {"apiVersion":"v1","kind":"Service","metadata":{"name":"peers","namespace":"shop"},
      "spec":{"type":"ClusterIP","clusterIP":"None","clusterIPs":["None"],
       "ports":[{"name":"gossip","port":7946,"protocol":"UDP"},{"name":"api","port":8080,"protocol":"TCP"},
                {"port":9000,"protocol":"TCP"}]}},
     {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"peers-1","namespace":"shop",
      "labels":{"kubernetes.io/service-name":"peers"}},"addressType":"IPv4",
      "endpoints":[{"addresses":["10.244.3.1"],"hostname":"peer-0","conditions":{"ready":true}},
                   {"addresses":["10.244.3.2"],"conditions":{"ready":true}},
                   {"addresses":["10.244.3.3"],"conditions":{"ready":true}},
                   {"addresses":["10.244.3.4"],"conditions":{"ready":false}}],
      "ports":[{"name":"gossip","port":7946,"protocol":"UDP"},{"name":"api","port":8080,"protocol":"TCP"},
               {"port":9000,"protocol":"TCP"}]},
     {"apiVersion":"v1","kind":"Service","metadata":{"name":"docs","namespace":"shop"},
      "spec":{"type":"ExternalName","externalName":"docs.example.net"}}
    ]"#;
    items.extend(serde_json::from_str::<Vec<serde_json::Value>>(extra).unwrap());
    for i in 0..BULK {
        items.push(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("bulk-{i:03}"), "namespace": "shop"},
            "spec": {"type": "ClusterIP", "clusterIP": format!("10.97.{}.{}", i / 200, i % 200 + 1),
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }));
    }
    list.to_string()
}

/// The Corefile both run; `{api}` is the fake API's address.
fn corefile(port: u16, api: SocketAddr) -> String {
    format!(
        ".:{port} {{\n bind 127.0.0.1\n kubernetes cluster.local in-addr.arpa ip6.arpa {{\n  endpoint http://{api}\n }}\n transfer {{\n  to 127.0.0.1\n }}\n}}\n"
    )
}

/// What a transfer came back as: the messages' rcodes and flags, and their records.
#[derive(Debug)]
struct Transferred {
    messages: Vec<Message>,
}

impl Transferred {
    fn records(&self) -> Vec<&Record> {
        self.messages
            .iter()
            .flat_map(|m| m.answers.iter())
            .collect()
    }

    fn rcode(&self) -> u16 {
        u16::from(self.messages[0].metadata.response_code)
    }
}

/// A record as a zone line, lower-case, the SOA serial masked.
fn line(r: &Record) -> String {
    let data = match &r.data {
        RData::SOA(soa) => format!(
            "{} {} (serial) {} {} {} {}",
            soa.mname, soa.rname, soa.refresh, soa.retry, soa.expire, soa.minimum
        ),
        other => other.to_string(),
    };
    format!("{} {} {} {}", r.name, r.ttl, r.record_type(), data).to_ascii_lowercase()
}

/// Sends `request` over TCP from `source` and reads messages until the transfer's closing SOA,
/// a message that is not a transfer (an error, or a lone SOA) or the server closing.
fn xfr(addr: SocketAddr, source: &str, request: &[u8]) -> Transferred {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = (request.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(request);
    stream.write_all(&out).unwrap();
    let mut messages = Vec::new();
    let mut soas = 0;
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            break;
        }
        let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut bytes).unwrap();
        let m = Message::from_vec(&bytes).unwrap_or_else(|e| panic!("{addr}: {e}: {bytes:?}"));
        assert_eq!(
            m.metadata.id, 0x1234,
            "{addr}: every message answers the query"
        );
        soas += m
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        let done = m.metadata.response_code != hickory_proto::op::ResponseCode::NoError
            || m.answers.len() == 1 && soas == 1
            || soas >= 2;
        messages.push(m);
        if done {
            break;
        }
    }
    assert!(!messages.is_empty(), "{addr}: no reply");
    Transferred { messages }
}

/// An IXFR question carrying `serial` in its authority SOA (or no authority record).
fn ixfr(serial: Option<u32>) -> Vec<u8> {
    let mut bytes = request_bytes("cluster.local.", RecordType::IXFR, None);
    if let Some(serial) = serial {
        bytes[9] = 1; // NSCOUNT
        bytes.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0]);
        bytes.extend_from_slice(&serial.to_be_bytes());
        bytes.extend_from_slice(&[0; 16]);
    }
    bytes
}

fn soa_serial(t: &Transferred) -> u32 {
    match &t.records()[0].data {
        RData::SOA(soa) => soa.serial,
        other => panic!("not a SOA first: {other:?}"),
    }
}

/// Both servers on the same cluster, with every Service known.
struct Pair {
    _api: FakeApi,
    _dir: TempDir,
    coredns: CoreDns,
    ours: Server,
}

fn start() -> Pair {
    let dir = TempDir::new();
    let api = FakeApi::start_with(&dir.write("cluster.json", &cluster()));
    let api_addr = api.addr;
    let coredns = CoreDns::with_corefile(|port| corefile(port, api_addr));
    let ours_dir = TempDir::new();
    let path = ours_dir.write("Corefile", &corefile(0, api_addr));
    let ours = Server::spawn_corefile(ours_dir, &path);
    let last = format!("bulk-{:03}.shop.svc.cluster.local", BULK - 1);
    wait_for(&[coredns.addr, ours.addr], &last);
    wait_for(&[coredns.addr, ours.addr], "peers.shop.svc.cluster.local");
    Pair {
        _api: api,
        _dir: dir,
        coredns,
        ours,
    }
}

/// Polls until every server answers `name` A with records.
fn wait_for(servers: &[SocketAddr], name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let query = request_bytes(name, RecordType::A, None);
    for addr in servers {
        loop {
            let reply = raw_udp(*addr, &query, Duration::from_secs(2));
            let answered = reply
                .and_then(|r| Message::from_vec(&r).ok())
                .is_some_and(|m| !m.answers.is_empty());
            if answered {
                break;
            }
            assert!(Instant::now() < deadline, "{addr} never served {name}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Both listen on 127.0.0.1; CoreDNS drops loopback addresses from its own and so has no
/// nameserver for the apex NS, clusterdns names `ns.dns` with its listen address.
const OUR_NAMESERVER: [&str; 2] = [
    "cluster.local. 5 ns ns.dns.cluster.local.",
    "ns.dns.cluster.local. 5 a 127.0.0.1",
];

/// Drops repeated lines from sorted `lines`; returns them (`soa` for the SOA).
fn repeats(lines: &mut Vec<String>) -> Vec<String> {
    let mut repeated = Vec::new();
    lines.dedup_by(|a, b| {
        let same = a == b;
        if same {
            repeated.push(if a.contains(" soa ") {
                "soa".to_owned()
            } else {
                a.clone()
            });
        }
        same
    });
    repeated
}

/// Records CoreDNS sends twice in this cluster (see [`repeats`]): kube-dns has port 53 for UDP
/// and for TCP, and the SRV at the service name does not say the protocol.
const REPEATED_BY_COREDNS: &[&str] = &[
    "kube-dns.kube-system.svc.cluster.local. 5 srv 0 100 53 kube-dns.kube-system.svc.cluster.local.",
];

#[test]
fn axfr_gives_the_record_set_coredns_gives() {
    let pair = start();
    let axfr = request_bytes("cluster.local.", RecordType::AXFR, None);
    let want = xfr(pair.coredns.addr, "127.0.0.1", &axfr);
    let got = xfr(pair.ours.addr, "127.0.0.1", &axfr);
    for t in [&want, &got] {
        let records = t.records();
        assert_eq!(records[0].record_type(), RecordType::SOA, "{t:?}");
        assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
        assert!(t.messages.len() > 1, "{BULK} Services fit one message");
        for m in &t.messages {
            assert!(m.metadata.authoritative && !m.metadata.truncation, "{m:?}");
        }
    }
    let sorted = |t: &Transferred| {
        let mut lines: Vec<String> = t.records().into_iter().map(line).collect();
        lines.sort();
        lines
    };
    let mut ours = sorted(&got);
    for ns in OUR_NAMESERVER {
        let at = ours.iter().position(|l| l == ns);
        ours.remove(at.unwrap_or_else(|| panic!("no {ns:?} in ours")));
    }
    let mut theirs = sorted(&want);
    // CoreDNS repeats a record where two ports share a number (RFC 2181 §5: a set holds each
    // record once); clusterdns sends each once. Besides the two SOAs, that is all.
    let repeated = repeats(&mut theirs);
    assert_eq!(repeats(&mut ours), ["soa"], "clusterdns repeats records");
    assert!(
        repeated
            .iter()
            .all(|r| r == "soa" || REPEATED_BY_COREDNS.contains(&r.as_str())),
        "CoreDNS repeats {repeated:#?}"
    );
    let missing: Vec<&String> = theirs.iter().filter(|l| !ours.contains(l)).collect();
    let extra: Vec<&String> = ours.iter().filter(|l| !theirs.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    // What the set holds: the headless Service's SRV only for named ports, weight 100/3.
    let peers: Vec<&String> = ours.iter().filter(|l| l.contains("peers.shop")).collect();
    assert_eq!(peers.len(), 3 + 3 + 6, "{peers:#?}");
    assert!(ours.contains(&"_api._tcp.peers.shop.svc.cluster.local. 5 srv 0 33 8080 peer-0.peers.shop.svc.cluster.local.".to_owned()));
    assert!(ours.contains(&"docs.shop.svc.cluster.local. 5 cname docs.example.net.".to_owned()));
    // A real client takes it whole.
    let text = dig(pair.ours.addr, &["cluster.local", "AXFR"]);
    let size = format!("XFR size: {} records", got.records().len());
    assert!(text.contains(&size), "{text}");
}

#[test]
fn ixfr_is_answered_as_axfr_or_with_the_soa_alone() {
    let pair = start();
    for addr in [pair.coredns.addr, pair.ours.addr] {
        let axfr = xfr(
            addr,
            "127.0.0.1",
            &request_bytes("cluster.local.", RecordType::AXFR, None),
        );
        let serial = soa_serial(&axfr);
        let current = xfr(addr, "127.0.0.1", &ixfr(Some(serial)));
        assert_eq!(current.rcode(), 0);
        let lines: Vec<String> = current.records().into_iter().map(line).collect();
        assert_eq!(
            lines,
            [
                "cluster.local. 5 soa ns.dns.cluster.local. hostmaster.cluster.local. (serial) 7200 1800 86400 5"
            ],
            "{addr}"
        );
        let older = xfr(addr, "127.0.0.1", &ixfr(Some(serial - 1)));
        assert_eq!(
            older.records().len(),
            axfr.records().len(),
            "{addr}: a full transfer"
        );
        let no_soa = xfr(addr, "127.0.0.1", &ixfr(None));
        assert_eq!(
            no_soa.rcode(),
            2,
            "{addr}: an IXFR without its SOA is SERVFAIL"
        );
    }
    // A client serial newer than ours: clusterdns answers the SOA alone (RFC 1995 §4, RFC 1982
    // arithmetic); CoreDNS only tests for equality and sends the whole zone.
    let newer = |addr| {
        let axfr = xfr(
            addr,
            "127.0.0.1",
            &request_bytes("cluster.local.", RecordType::AXFR, None),
        );
        xfr(
            addr,
            "127.0.0.1",
            &ixfr(Some(soa_serial(&axfr).wrapping_add(1))),
        )
    };
    assert!(newer(pair.coredns.addr).records().len() > 2);
    assert_eq!(newer(pair.ours.addr).records().len(), 1);
}

#[test]
fn transfers_are_refused_over_udp_and_to_clients_not_listed() {
    let pair = start();
    let axfr = request_bytes("cluster.local.", RecordType::AXFR, None);
    for addr in [pair.coredns.addr, pair.ours.addr] {
        let reply = raw_udp(addr, &axfr, Duration::from_secs(5)).expect("a reply over UDP");
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(u16::from(m.metadata.response_code), 5, "{addr}: UDP");
        assert!(m.answers.is_empty() && !m.metadata.authoritative);
        let stranger = xfr(addr, "127.0.0.2", &axfr);
        assert_eq!(stranger.rcode(), 5, "{addr}: from 127.0.0.2");
        assert!(stranger.records().is_empty(), "{addr}: {stranger:?}");
    }
    // Below the apex and in reverse zones CoreDNS transfers its whole Service list renamed
    // under the name asked; clusterdns answers NOTAUTH (RFC 5936 §2.2.1).
    for name in ["svc.cluster.local.", "in-addr.arpa."] {
        let ask = request_bytes(name, RecordType::AXFR, None);
        let coredns = xfr(pair.coredns.addr, "127.0.0.1", &ask);
        assert!(
            coredns
                .records()
                .iter()
                .any(|r| line(r).contains(&format!("svc.{name}"))),
            "{name}: CoreDNS fixed? {coredns:?}"
        );
        let ours = xfr(pair.ours.addr, "127.0.0.1", &ask);
        assert_eq!(ours.rcode(), 9, "{name}: {ours:?}");
    }
}

/// The bulk Services, each with one named port numbered `port`.
fn bulk_with_port(port: u16) -> String {
    let items: Vec<serde_json::Value> = (0..BULK)
        .map(|i| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("bulk-{i:03}"), "namespace": "shop"},
                "spec": {"type": "ClusterIP", "clusterIP": format!("10.97.{}.{}", i / 200, i % 200 + 1),
                         "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
            })
        })
        .collect();
    serde_json::json!({"kind": "List", "items": items}).to_string()
}

/// Each bulk Service's SRV ports in one transfer: both of a Service's SRVs name the same port
/// (its entry is taken whole), and the transfer opens and closes with the same SOA.
fn bulk_ports(t: &Transferred) -> Vec<u16> {
    let records = t.records();
    assert_eq!(line(records[0]), line(records[records.len() - 1]), "SOA");
    let mut ports = Vec::new();
    for i in 0..BULK {
        let name = format!("bulk-{i:03}.shop.svc.cluster.local.");
        let srv: Vec<u16> = records
            .iter()
            .filter(|r| r.name.to_string().ends_with(&name))
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(srv.port),
                _ => None,
            })
            .collect();
        assert!(srv.len() == 2 && srv[0] == srv[1], "{name}: {srv:?}");
        ports.push(srv[0]);
    }
    ports
}

#[test]
fn each_transfer_is_consistent_while_services_change() {
    let dir = TempDir::new();
    let api = FakeApi::start_with(&dir.write("cluster.json", &cluster()));
    let ours_dir = TempDir::new();
    let path = ours_dir.write("Corefile", &corefile(0, api.addr));
    let ours = Server::spawn_corefile(ours_dir, &path);
    let last = format!("bulk-{:03}.shop.svc.cluster.local", BULK - 1);
    wait_for(&[ours.addr], &last);
    let axfr = request_bytes("cluster.local.", RecordType::AXFR, None);
    let changer = std::thread::spawn({
        let api = FakeApi::handle(api.addr);
        move || {
            for round in 0..20u16 {
                api.control("apply", &bulk_with_port(1000 + round));
            }
        }
    });
    let mut transfers = 0;
    while !changer.is_finished() {
        bulk_ports(&xfr(ours.addr, "127.0.0.1", &axfr));
        transfers += 1;
    }
    changer.join().unwrap();
    assert!(transfers > 0);
    // The last change arrives: every Service on the last port, in one transfer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ports = bulk_ports(&xfr(ours.addr, "127.0.0.1", &axfr));
        if ports.iter().all(|p| *p == 1019) {
            break;
        }
        assert!(Instant::now() < deadline, "never settled: {ports:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
