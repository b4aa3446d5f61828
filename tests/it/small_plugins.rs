//! `acl`, `any`, `minimal` and `whoami`: the real binary (`--corefile`) and a real CoreDNS 1.11
//! run the same Corefile on the same port of 127.0.0.1 and ::1, and are asked the same
//! questions from three client addresses (127.0.0.1, 127.0.0.2, ::1) so that every acl action
//! is taken by network. Replies are compared whole: rcode, header flags, every section, the
//! OPT record (payload, DO, options); whoami's SRV port is checked to be the client's.
//!
//! The two differences README lists are asserted as such: an acl reply to a query without EDNS
//! has no OPT record here (RFC 6891 §7; CoreDNS adds one), and its DO bit is the client's (RFC
//! 3225; CoreDNS always sets it). The compared queries carry EDNS with DO set, where both agree.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Record, RecordType};

use crate::differential::CoreDns;
use crate::harness::{Server, TempDir};
use crate::kube_api::FakeApi;

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V4_OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
/// How long a reply may take; a dropped query is one with nothing after this.
const WAIT: Duration = Duration::from_secs(2);

/// CoreDNS and clusterdns on the Corefile `corefile(port)`, each on a port of its own.
pub struct Pair {
    pub coredns: CoreDns,
    pub ours: Server,
}

impl Pair {
    pub fn start(corefile: impl Fn(u16) -> String) -> Pair {
        let coredns = CoreDns::with_corefile(&corefile);
        let port = crate::harness::free_port(true);
        let dir = TempDir::new();
        let path = dir.write("Corefile", &corefile(port));
        let ours = Server::spawn_corefile(dir, &path);
        assert_eq!(
            ours.addr.port(),
            port,
            "clusterdns listens where the Corefile says"
        );
        Pair { coredns, ours }
    }

    /// Both servers' replies (described) to one query sent from `from`.
    pub fn ask(&self, from: IpAddr, query: &[u8]) -> (Option<String>, Option<String>) {
        self.ask_ttls(from, query, true)
    }

    /// [`Pair::ask`], with the records' TTLs or without them.
    fn ask_ttls(&self, from: IpAddr, query: &[u8], ttls: bool) -> (Option<String>, Option<String>) {
        let ask = |port| {
            let server = SocketAddr::new(if from.is_ipv4() { V4 } else { V6 }, port);
            let (reply, client_port) = ask_from(server, from, query);
            reply.map(|r| describe(&r, client_port, ttls))
        };
        (ask(self.coredns.addr.port()), ask(self.ours.addr.port()))
    }

    /// Asks each question from each client of `clients` and collects every difference.
    pub fn compare(&self, clients: &[IpAddr], questions: &[(&str, RecordType)]) -> Vec<String> {
        self.compare_ttls(clients, questions, true)
    }

    /// [`Pair::compare`], TTLs compared or not.
    fn compare_ttls(
        &self,
        clients: &[IpAddr],
        questions: &[(&str, RecordType)],
        ttls: bool,
    ) -> Vec<String> {
        let mut differences = Vec::new();
        for from in clients {
            for (name, qtype) in questions {
                let query = query(name, *qtype, Some(true));
                let (theirs, ours) = self.ask_ttls(*from, &query, ttls);
                if theirs != ours {
                    differences.push(format!(
                        "{name} {qtype} from {from}:\n  CoreDNS:    {theirs:?}\n  clusterdns: {ours:?}"
                    ));
                }
            }
        }
        differences
    }
}

/// Sends `query` from an ephemeral port of `from`: the reply (if any within [`WAIT`]) and the
/// client's port.
pub fn ask_from(server: SocketAddr, from: IpAddr, query: &[u8]) -> (Option<Vec<u8>>, u16) {
    let socket = UdpSocket::bind(SocketAddr::new(from, 0)).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket.send_to(query, server).unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut buf = vec![0u8; 65535];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => (Some(buf[..n].to_vec()), port),
        Err(_) => (None, port),
    }
}

/// A query with ID 0x1234 and RD; with EDNS (payload 1232, DO as given) unless `None`.
pub fn query(name: &str, qtype: RecordType, dnssec_ok: Option<bool>) -> Vec<u8> {
    let mut out = crate::harness::request_bytes(name, qtype, dnssec_ok.map(|_| 1232));
    if dnssec_ok == Some(true) {
        let n = out.len();
        out[n - 4] = 0x80; // DO, in the OPT's TTL
    }
    out
}

/// The whole reply as text: rcode and header flags, each section's records, the OPT record.
/// Unless `ttls`, TTLs read `T` and AA is left out (a cache's own). The client's port
/// (whoami's SRV) reads `PORT`.
pub fn describe(reply: &[u8], client_port: u16, ttls: bool) -> String {
    let m = Message::from_vec(reply).unwrap_or_else(|e| panic!("unreadable reply: {e}"));
    let bit = |byte: u8, mask: u8, name: &'static str| if byte & mask != 0 { name } else { "" };
    let flags = [
        bit(reply[2], if ttls { 0x04 } else { 0 }, "aa "),
        bit(reply[2], 0x02, "tc "),
        bit(reply[2], 0x01, "rd "),
        bit(reply[3], 0x80, "ra "),
        bit(reply[3], 0x10, "cd "),
    ]
    .concat();
    let records = |list: &[Record]| {
        list.iter()
            .map(|r| {
                let ttl = if ttls { r.ttl.to_string() } else { "T".into() };
                let mut data = r.data.to_string();
                if r.record_type() == RecordType::SOA {
                    // The cluster zone's serial is each server's own clock.
                    let mut words: Vec<&str> = data.split(' ').collect();
                    if words.len() == 7 {
                        words[2] = "SERIAL";
                    }
                    data = words.join(" ");
                }
                format!(
                    "{} {ttl} {} {} {data}",
                    r.name,
                    r.dns_class,
                    r.record_type()
                )
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let opt = m.edns.as_ref().map_or("none".to_owned(), |e| {
        format!(
            "payload {} do {} options {:?}",
            e.max_payload(),
            e.flags().dnssec_ok,
            e.options()
        )
    });
    format!(
        "id {:04x} {} [{}] an [{}] ns [{}] ar [{}] opt [{}]",
        m.metadata.id,
        m.metadata.response_code,
        flags.trim_end(),
        records(&m.answers),
        records(&m.authorities),
        records(&m.additionals),
        opt
    )
    .replace(&format!(" {client_port} "), " PORT ")
}

// === acl and any ===

/// acl by zone, type and network (127.0.0.2 allowed, the rest of 127/8 blocked for A, filtered
/// for AAAA; ::1 dropped for TXT, filtered for AAAA, blocked otherwise); a second entry that
/// filters MX everywhere; `any` behind it; then hosts and whoami answer.
fn acl_corefile(port: u16) -> String {
    format!(
        ".:{port} {{
    bind 127.0.0.1 ::1
    acl example.org {{
        allow net 127.0.0.2
        block type A net 127.0.0.0/8
        filter type AAAA net 127.0.0.1 ::1
        drop type TXT net ::1/128
        BLOCK net ::/0
    }}
    acl {{
        filter type MX
    }}
    any
    hosts {{
        10.0.0.1 web.example.org
        fd00::1 web.example.org
        10.0.0.2 web.example.net
        fallthrough
    }}
    whoami
}}
"
    )
}

const ACL_QUESTIONS: &[(&str, RecordType)] = &[
    ("web.example.org", RecordType::A),
    ("web.example.org", RecordType::AAAA),
    ("web.example.org", RecordType::SRV),
    ("web.example.org", RecordType::MX),
    ("web.example.org", RecordType::ANY),
    ("x.sub.example.org", RecordType::CAA),
    ("web.example.net", RecordType::A),
    ("web.example.net", RecordType::MX),
    ("Web.Example.NET", RecordType::ANY),
    ("other.example.net", RecordType::A),
];

#[test]
fn acl_and_any_answer_as_coredns_from_each_client_network() {
    let pair = Pair::start(acl_corefile);
    let differences = pair.compare(&[V4, V4_OTHER, V6], ACL_QUESTIONS);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // What was compared is what the rules say (so the comparison is not of two silences).
    let ours = |from, name, qtype| pair.ask(from, &query(name, qtype, Some(true))).1;
    let head = |d: Option<String>| d.map(|d| d.split(" an ").next().unwrap().to_owned());
    let rr = RecordType::A;
    assert_eq!(
        head(ours(V4, "web.example.org", rr)).unwrap(),
        "id 1234 Query Refused [rd]"
    );
    assert!(
        ours(V4_OTHER, "web.example.org", rr)
            .unwrap()
            .contains("10.0.0.1")
    );
    let filtered = ours(V6, "web.example.org", RecordType::AAAA).unwrap();
    assert!(
        filtered.starts_with("id 1234 No Error [rd] an []"),
        "{filtered}"
    );
    // EDNS option 15 (EDE), INFO-CODE 17 (Filtered).
    assert!(filtered.contains("Unknown(15, [0, 17])"), "{filtered}");
    let hinfo = ours(V4_OTHER, "Web.Example.NET", RecordType::ANY).unwrap();
    assert!(
        hinfo.contains("an [Web.Example.NET. 8482 IN HINFO ANY obsoleted See RFC 8482] ns []"),
        "{hinfo}"
    );
}

/// A query of class CH (the name's length given, to find the class field).
fn chaos_query(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut ch = query(name, qtype, Some(true));
    let class_at = 12 + name.len() + 2 + 2;
    ch[class_at..class_at + 2].copy_from_slice(&3u16.to_be_bytes());
    ch
}

/// Where `chaos` (or `forward`) opens the door to class CH, `acl` and `any` see those questions
/// too, as in CoreDNS: filtered, blocked, answered with HINFO; `chaos` answers the rest.
#[test]
fn acl_and_any_see_class_ch_where_chaos_serves_it() {
    let pair = Pair::start(|port| {
        acl_corefile(port).replace("    any\n", "    any\n    chaos CD-1.0 someone\n")
    });
    let cases = [
        (V4, RecordType::ANY, "an [version.bind. 8482 IN HINFO"),
        (
            V4,
            RecordType::MX,
            "No Error [rd] an [] ns [] ar [] opt [payload 1232 do true options OPT { options: [(Unknown(15), Unknown(15, [0, 17]))]",
        ),
        (V4, RecordType::TXT, "an [version.bind. 0 CH TXT CD-1.0]"),
    ];
    for (from, qtype, want) in cases {
        let (theirs, ours) = pair.ask(from, &chaos_query("version.bind", qtype));
        assert_eq!(theirs, ours, "version.bind CH {qtype} from {from}");
        assert!(
            ours.as_ref().is_some_and(|d| d.contains(want)),
            "{qtype}: {ours:?}"
        );
    }
}

#[test]
fn acl_drop_sends_nothing_over_udp() {
    let pair = Pair::start(acl_corefile);
    for port in [pair.coredns.addr.port(), pair.ours.addr.port()] {
        let server = SocketAddr::new(V6, port);
        let socket = UdpSocket::bind(SocketAddr::new(V6, 0)).unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        let mut dropped = query("web.example.org", RecordType::TXT, Some(true));
        dropped[..2].copy_from_slice(&[0xd0, 0x01]);
        socket.send_to(&dropped, server).unwrap();
        // The next query from the same socket is answered, and it is the first reply to come:
        // the dropped one got none.
        let refused = query("web.example.org", RecordType::A, Some(true));
        socket.send_to(&refused, server).unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = socket.recv_from(&mut buf).expect("the server answers");
        assert_eq!(
            &buf[..2],
            [0x12, 0x34],
            "port {port}: the reply is to the second query"
        );
        assert_eq!(buf[3] & 0x0f, 5, "REFUSED");
        assert!(
            socket.recv_from(&mut buf).is_err(),
            "port {port}: {:?}",
            &buf[..n]
        );
    }
}

#[test]
fn acl_replies_follow_rfc_6891_and_3225_where_coredns_does_not() {
    let pair = Pair::start(acl_corefile);
    let blocked = |dnssec_ok| pair.ask(V4, &query("web.example.org", RecordType::A, dnssec_ok));
    // No EDNS in the query: CoreDNS adds OPT (4096, DO, EDE 15); clusterdns sends none.
    let (theirs, ours) = blocked(None);
    let (theirs, ours) = (theirs.unwrap(), ours.unwrap());
    assert!(theirs.contains("payload 4096 do true"), "{theirs}");
    assert!(ours.ends_with("opt [none]"), "{ours}");
    assert_eq!(theirs.split(" opt ").next(), ours.split(" opt ").next());
    // EDNS without DO: CoreDNS sets DO; clusterdns copies the client's.
    let (theirs, ours) = blocked(Some(false));
    let (theirs, ours) = (theirs.unwrap(), ours.unwrap());
    assert_eq!(theirs.replace("do true", "do false"), ours);
}

// === whoami ===

#[test]
fn whoami_answers_the_client_address_and_port_as_coredns() {
    let pair = Pair::start(|port| {
        format!(
            ".:{port} {{\n    bind 127.0.0.1 ::1\n    whoami\n}}\nmin.test:{port} {{\n    bind 127.0.0.1 ::1\n    minimal\n    whoami\n}}\n"
        )
    });
    let questions = [
        ("Foo.Example", RecordType::A),
        (".", RecordType::AAAA),
        ("x.min.test", RecordType::A),
    ];
    let differences = pair.compare(&[V4, V4_OTHER, V6], &questions);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    let (_, ours) = pair.ask(V4_OTHER, &query("Foo.Example", RecordType::A, Some(true)));
    let ours = ours.unwrap();
    assert!(
        ours.contains("ar [Foo.Example. 0 IN A 127.0.0.2 | _udp.Foo.Example. 0 IN SRV 0 0 PORT .]"),
        "{ours}"
    );
    // Without chaos or forward, class CH is refused at the door: whoami does not see it.
    let (theirs, ours) = pair.ask(V4, &chaos_query("x", RecordType::A));
    assert_eq!(theirs, ours);
    assert!(ours.unwrap().contains("Query Refused"));
    // Over TCP the SRV owner is `_tcp` and the port the connection's.
    let tcp = crate::harness::raw_tcp(pair.ours.addr, &query("x", RecordType::A, None));
    let m = Message::from_vec(&tcp).unwrap();
    assert_eq!(m.additionals[1].name.to_ascii(), "_tcp.x.");
}

// === minimal ===

/// An upstream whose answers have every section: `full.` answer + NS + glue, `deleg.` a
/// delegation, `nodata.` SOA, `nx.` NXDOMAIN, `bare.` no records but glue.
fn sectioned_upstream() -> SocketAddr {
    use hickory_proto::op::{MessageType, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::{A, NS, SOA};
    use hickory_proto::rr::{Name, RData};
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(question) = q.queries.first().cloned() else {
                continue;
            };
            let name = question.name().clone();
            let label = name.to_ascii().to_ascii_lowercase();
            let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            m.metadata.recursion_desired = q.metadata.recursion_desired;
            m.metadata.recursion_available = true;
            m.add_query(question);
            let zone = Name::from_ascii("min.test.").unwrap();
            let ns_name = Name::from_ascii("ns.min.test.").unwrap();
            let ns = Record::from_rdata(zone.clone(), 300, RData::NS(NS(ns_name.clone())));
            let glue = Record::from_rdata(ns_name.clone(), 300, RData::A(A::new(192, 0, 2, 53)));
            let soa = Record::from_rdata(
                zone,
                300,
                RData::SOA(SOA::new(ns_name.clone(), ns_name, 1, 2, 3, 4, 60)),
            );
            if label.starts_with("full.") {
                m.add_answer(Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, 1))));
                m.add_authority(ns);
                m.add_additional(glue);
            } else if label.starts_with("deleg.") {
                m.add_authority(ns);
                m.add_additional(glue);
            } else if label.starts_with("nodata.") {
                m.add_authority(soa);
                m.add_additional(glue);
            } else if label.starts_with("nx.") {
                m.metadata.response_code = ResponseCode::NXDomain;
                m.add_authority(soa);
            } else {
                m.add_additional(glue);
            }
            if let Some(e) = &q.edns {
                let mut edns = hickory_proto::op::Edns::new();
                edns.set_max_payload(1232);
                edns.flags_mut().dnssec_ok = e.flags().dnssec_ok;
                m.set_edns(edns);
            }
            let _ = socket.send_to(&m.to_vec().unwrap(), peer);
        }
    });
    addr
}

/// A zone with its NS and glue: `file` answers carry them in authority and additional.
const MINIMAL_ZONE: &str = "$ORIGIN zone.test.
@    3600 IN SOA ns1.zone.test. admin.zone.test. 1 7200 3600 1209600 300
@    3600 IN NS  ns1.zone.test.
ns1  3600 IN A   192.0.2.53
www  3600 IN A   192.0.2.80
mx   3600 IN MX  10 www.zone.test.
";

#[test]
fn minimal_strips_positive_file_and_template_answers() {
    let dir = TempDir::new();
    let zone = dir.write("db.zone.test", MINIMAL_ZONE);
    let pair = Pair::start(|port| {
        format!(
            "zone.test:{port} {{\n    bind 127.0.0.1\n    minimal\n    file {zone}\n}}\n\
             tpl.test:{port} {{\n    bind 127.0.0.1\n    minimal\n    template IN A tpl.test {{\n        match ^ok[.]tpl[.]test[.]$\n        answer \"{{{{ .Name }}}} 60 IN A 192.0.2.1\"\n        authority \"tpl.test. 60 IN NS ns.tpl.test.\"\n        additional \"ns.tpl.test. 60 IN A 192.0.2.2\"\n    }}\n}}\n",
            zone = zone.display()
        )
    });
    let questions = [
        ("www.zone.test", RecordType::A),
        ("mx.zone.test", RecordType::MX),
        ("www.zone.test", RecordType::AAAA),
        ("nosuch.zone.test", RecordType::A),
        ("ok.tpl.test", RecordType::A),
    ];
    let differences = pair.compare(&[V4], &questions);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn minimal_strips_positive_answers_forwarded_cached_and_of_the_cluster_zone() {
    let upstream = sectioned_upstream();
    let api = FakeApi::start();
    let pair = Pair::start(|port| {
        format!(
            "min.test:{port} {{\n    bind 127.0.0.1\n    minimal\n    forward . {upstream}\n}}\n\
             cached.test:{port} {{\n    bind 127.0.0.1\n    minimal\n    cache 30\n    forward . {upstream}\n}}\n\
             cluster.local:{port} {{\n    bind 127.0.0.1\n    minimal\n    kubernetes cluster.local {{\n        endpoint http://{api}\n    }}\n}}\n",
            api = api.addr
        )
    });
    let probe = query("frontend.shop.svc.cluster.local", RecordType::A, Some(true));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (theirs, ours) = pair.ask(V4, &probe);
        let synced = |d: &Option<String>| d.as_ref().is_some_and(|d| d.contains("10.96.10.10"));
        if synced(&theirs) && synced(&ours) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not synced: {theirs:?} {ours:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let questions = [
        ("full.min.test", RecordType::A),
        ("deleg.min.test", RecordType::A),
        ("nodata.min.test", RecordType::A),
        ("nx.min.test", RecordType::A),
        ("bare.min.test", RecordType::A),
        (
            "_postgres._tcp.postgres.data.svc.cluster.local",
            RecordType::SRV,
        ),
        ("postgres.data.svc.cluster.local", RecordType::SRV),
        ("frontend.shop.svc.cluster.local", RecordType::A),
        ("frontend.shop.svc.cluster.local", RecordType::AAAA),
        ("nosuch.shop.svc.cluster.local", RecordType::A),
    ];
    let differences = pair.compare(&[V4], &questions);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // Through the caches, twice (the second time from them). TTLs and AA are not compared:
    // they are the caches' own (each counts down on its own clock, CoreDNS's gives a delegation
    // TTL 5 and sets AA on hits: tests/corefile-differential-allow.txt).
    let cached = ["full", "deleg", "nodata", "nx", "bare"].map(|n| format!("{n}.cached.test"));
    let cached: Vec<(&str, RecordType)> =
        cached.iter().map(|n| (n.as_str(), RecordType::A)).collect();
    for round in ["upstream", "cache"] {
        let differences = pair.compare_ttls(&[V4], &cached, false);
        assert!(
            differences.is_empty(),
            "{round}:\n{}",
            differences.join("\n")
        );
    }
    let ours = |name, qtype| pair.ask(V4, &query(name, qtype, Some(true))).1.unwrap();
    let full = ours("full.min.test", RecordType::A);
    assert!(full.contains("ns [] ar []"), "stripped: {full}");
    let deleg = ours("deleg.min.test", RecordType::A);
    assert!(
        deleg.contains("ar [ns.min.test. 300 IN A 192.0.2.53]"),
        "kept: {deleg}"
    );
    let srv = ours(
        "_postgres._tcp.postgres.data.svc.cluster.local",
        RecordType::SRV,
    );
    assert!(
        srv.contains("SRV") && srv.contains("ar []"),
        "no glue: {srv}"
    );
}
