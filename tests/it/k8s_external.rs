//! `k8s_external` side by side with CoreDNS 1.11.1: both watch the same fake API cluster
//! (LoadBalancer Services with IPv4 and IPv6 ingress IPs and an ingress hostname, a Service
//! with `externalIPs` and an unnamed port, a ClusterIP-only Service, a headless Service with
//! endpoints) and run the same Corefile (clusterdns with `--corefile`); every question of the
//! corpus must get the same rcode, flags and sections (sets; names case-insensitively; the
//! SOA serial aside, as it is the time of the last change).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record, RecordType};

use crate::differential::CoreDns;
use crate::harness::{Server, TempDir, raw_udp, request_bytes};
use crate::kube_api::FakeApi;

const CLUSTER: &str = r#"{"kind":"List","items":[
 {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}},
 {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"quiet"}},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"lb","namespace":"shop"},
  "spec":{"type":"LoadBalancer","clusterIP":"10.96.1.1","clusterIPs":["10.96.1.1"],
   "ports":[{"name":"http","port":80,"protocol":"TCP"},{"name":"https","port":443,"protocol":"TCP"}]},
  "status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"},{"ip":"192.0.2.11"},{"ip":"2001:db8::10"}]}}},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"ext","namespace":"shop"},
  "spec":{"clusterIP":"10.96.1.2","clusterIPs":["10.96.1.2"],"externalIPs":["198.51.100.7"],
   "ports":[{"port":8080,"protocol":"TCP"}]}},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"named","namespace":"shop"},
  "spec":{"type":"LoadBalancer","clusterIP":"10.96.1.3","clusterIPs":["10.96.1.3"],
   "ports":[{"name":"http","port":80,"protocol":"TCP"}]},
  "status":{"loadBalancer":{"ingress":[{"hostname":"lb-1234.elb.example.net"}]}}},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"twoports","namespace":"shop"},
  "spec":{"type":"LoadBalancer","clusterIP":"10.96.1.5","clusterIPs":["10.96.1.5"],
   "ports":[{"name":"http","port":80,"protocol":"TCP"},{"name":"https","port":443,"protocol":"TCP"}]},
  "status":{"loadBalancer":{"ingress":[{"hostname":"lb-5678.elb.example.net"}]}}},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"plain","namespace":"shop"},
  "spec":{"clusterIP":"10.96.1.4","clusterIPs":["10.96.1.4"],
   "ports":[{"name":"http","port":80,"protocol":"TCP"}]}},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"hl","namespace":"shop"},
  "spec":{"clusterIP":"None","ports":[{"name":"db","port":5432,"protocol":"TCP"}]}},
 {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"hl-1","namespace":"shop",
  "labels":{"kubernetes.io/service-name":"hl"}},"addressType":"IPv4",
  "endpoints":[{"addresses":["10.244.0.5"],"hostname":"db-0","conditions":{"ready":true}},
               {"addresses":["10.244.0.6"],"conditions":{"ready":true}}],
  "ports":[{"name":"db","port":5432,"protocol":"TCP"}]}
]}"#;

/// The questions, asked of every Corefile.
const QUESTIONS: &[(&str, RecordType)] = &[
    ("lb.shop.example.org", RecordType::A),
    ("LB.Shop.Example.org", RecordType::A),
    ("lb.shop.example.org", RecordType::AAAA),
    ("lb.shop.example.org", RecordType::SRV),
    ("lb.shop.example.org", RecordType::TXT),
    ("lb.shop.example.org", RecordType::PTR),
    ("_http._tcp.lb.shop.example.org", RecordType::SRV),
    ("_https._tcp.lb.shop.example.org", RecordType::SRV),
    ("_http._udp.lb.shop.example.org", RecordType::SRV),
    ("_nope._tcp.lb.shop.example.org", RecordType::A),
    ("anything.lb.shop.example.org", RecordType::A),
    ("a.b.c.lb.shop.example.org", RecordType::A),
    ("ext.shop.example.org", RecordType::A),
    ("ext.shop.example.org", RecordType::AAAA),
    ("ext.shop.example.org", RecordType::SRV),
    ("named.shop.example.org", RecordType::A),
    ("named.shop.example.org", RecordType::AAAA),
    ("named.shop.example.org", RecordType::CNAME),
    ("_http._tcp.named.shop.example.org", RecordType::SRV),
    ("twoports.shop.example.org", RecordType::A),
    ("twoports.shop.example.org", RecordType::SRV),
    ("plain.shop.example.org", RecordType::A),
    ("hl.shop.example.org", RecordType::A),
    ("hl.shop.example.org", RecordType::SRV),
    ("db-0.hl.shop.example.org", RecordType::A),
    ("_db._tcp.hl.shop.example.org", RecordType::SRV),
    ("missing.shop.example.org", RecordType::A),
    ("shop.example.org", RecordType::A),
    ("quiet.example.org", RecordType::A),
    ("nowhere.example.org", RecordType::A),
    ("example.org", RecordType::SOA),
    ("example.org", RecordType::NS),
    ("example.org", RecordType::A),
    ("dns.example.org", RecordType::A),
    ("ns1.dns.example.org", RecordType::A),
    ("ns1.dns.example.org", RecordType::AAAA),
    ("ns2.dns.example.org", RecordType::A),
    ("x.ns1.dns.example.org", RecordType::A),
    ("ext.example.org", RecordType::A),
    ("ns1.ext.example.org", RecordType::A),
    ("lb.shop.other.test", RecordType::A),
    ("other.test", RecordType::SOA),
    // The cluster zone is still the kubernetes plugin's.
    ("lb.shop.svc.cluster.local", RecordType::A),
];

/// The Corefiles compared; `{api}` is the fake API's address.
const COREFILES: &[&str] = &[
    "kubernetes cluster.local {\n endpoint http://{api}\n }\n k8s_external example.org other.test\n",
    "kubernetes cluster.local {\n endpoint http://{api}\n }\n k8s_external example.org {\n apex ext\n ttl 30\n headless\n }\n",
    "kubernetes cluster.local {\n endpoint http://{api}\n ttl 12\n }\n k8s_external example.org {\n fallthrough\n }\n",
];

/// rcode, flags and the three sections of a reply, normalised for comparison.
#[derive(Debug, PartialEq)]
struct Answer {
    rcode: u16,
    flags: String,
    answers: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
}

fn section(records: &[Record]) -> Vec<String> {
    let mut lines: Vec<String> = records
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| {
            let data = match &r.data {
                RData::SOA(soa) => format!(
                    "{} {} (serial) {} {} {} {}",
                    soa.mname, soa.rname, soa.refresh, soa.retry, soa.expire, soa.minimum
                ),
                other => other.to_string(),
            };
            format!("{} {} {} {}", r.name, r.ttl, r.record_type(), data).to_ascii_lowercase()
        })
        .collect();
    lines.sort();
    lines
}

/// The reply to `name` `qtype`, or why it is not a DNS message.
fn try_ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Result<Answer, String> {
    let reply = raw_udp(
        addr,
        &request_bytes(name, qtype, Some(4096)),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|| panic!("no reply from {addr} to {name} {qtype}"));
    let m = Message::from_vec(&reply)
        .map_err(|e| format!("{name} {qtype}: not a DNS message ({e}): {reply:?}"))?;
    let h = &m.metadata;
    Ok(Answer {
        rcode: u16::from(h.response_code),
        flags: format!(
            "aa={} tc={} rd={} ra={}",
            h.authoritative, h.truncation, h.recursion_desired, h.recursion_available
        ),
        answers: section(&m.answers),
        authority: section(&m.authorities),
        additional: section(&m.additionals),
    })
}

fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Answer {
    try_ask(addr, name, qtype).unwrap_or_else(|e| panic!("{e}"))
}

/// Names below `ns1.<apex>` or beside it: CoreDNS 1.11.1 answers NXDOMAIN with an empty,
/// rootless question name of type 0 and class 0 (`SetRcode` on its own reply clears the
/// question), which no client parses. clusterdns answers NXDOMAIN with the question and the
/// SOA, as for any other name that does not exist.
const COREDNS_BROKEN_QUESTION: &[&str] = &["ns2.dns.example.org", "x.ns1.dns.example.org"];

/// The differences the README documents, with the reason; `None` for any other.
fn allowed(want: &Answer, got: &Answer) -> Option<&'static str> {
    let unanswered = want.rcode == 2 && got.rcode == 5;
    if unanswered && want.answers.is_empty() && got.answers.is_empty() {
        return Some("a name no plugin answers is REFUSED (CoreDNS: SERVFAIL)");
    }
    let mut distinct = want.answers.clone();
    distinct.dedup();
    if distinct.len() < want.answers.len()
        && *got
            == (Answer {
                answers: distinct,
                flags: want.flags.clone(),
                authority: want.authority.clone(),
                additional: want.additional.clone(),
                ..*want
            })
    {
        return Some("CoreDNS repeats a hostname's CNAME once per Service port (RFC 2181 §5)");
    }
    // Both listen on 127.0.0.1; CoreDNS drops loopback addresses from its own and so has no
    // nameserver address, clusterdns gives its listen address.
    let own = |r: &String| r.ends_with(" a 127.0.0.1");
    let strip =
        |list: &[String]| -> Vec<String> { list.iter().filter(|r| !own(r)).cloned().collect() };
    let ours_without_own = Answer {
        rcode: got.rcode,
        flags: got.flags.clone(),
        answers: strip(&got.answers),
        authority: got.authority.clone(),
        additional: strip(&got.additional),
    };
    let only_own_added = ours_without_own == *want
        || (ours_without_own.answers.is_empty()
            && got.answers.iter().all(own)
            && got.authority.is_empty()
            && want.authority.len() == 1
            && Answer {
                authority: want.authority.clone(),
                ..ours_without_own
            } == *want);
    (only_own_added && (got.answers.iter().chain(&got.additional).any(own)))
        .then_some("the nameserver's address is its loopback listen address (CoreDNS drops it)")
}

/// Polls until both servers answer `name` A with records.
fn wait_for(servers: &[SocketAddr], name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for addr in servers {
        while ask(*addr, name, RecordType::A).answers.is_empty() {
            assert!(Instant::now() < deadline, "{addr} never served {name}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn external_addresses_are_answered_as_coredns_answers_them() {
    let dir = TempDir::new();
    let api = FakeApi::start_with(&dir.write("cluster.json", CLUSTER));
    let mut differences = Vec::new();
    for body in COREFILES {
        let body = body.replace("{api}", &api.addr.to_string());
        let corefile = |port: u16| format!(".:{port} {{\n bind 127.0.0.1\n {body}}}\n");
        let coredns = CoreDns::with_corefile(corefile);
        let ours_dir = TempDir::new();
        let path = ours_dir.write("Corefile", &corefile(0));
        let ours = Server::spawn_corefile(ours_dir, &path);
        wait_for(&[coredns.addr, ours.addr], "lb.shop.example.org");
        for (name, qtype) in QUESTIONS {
            let got = ask(ours.addr, name, *qtype);
            let want = match try_ask(coredns.addr, name, *qtype) {
                Ok(want) => want,
                Err(e) if COREDNS_BROKEN_QUESTION.contains(name) => {
                    assert_eq!(got.rcode, 3, "{name}: {got:?} ({e})");
                    assert!(got.flags.starts_with("aa=true"), "{got:?}");
                    assert_eq!(got.authority.len(), 1, "the SOA: {got:?}");
                    continue;
                }
                Err(e) => panic!("CoreDNS: {e}"),
            };
            if want != got && allowed(&want, &got).is_none() {
                differences.push(format!(
                    "{body}\n{name} {qtype}:\n  CoreDNS    {want:?}\n  clusterdns {got:?}"
                ));
            }
        }
        // Something was compared: the LoadBalancer's addresses, with the TTL configured.
        let lb = ask(ours.addr, "lb.shop.example.org", RecordType::A);
        assert_eq!(lb.answers.len(), 2, "{lb:?}");
    }
    assert!(
        differences.is_empty(),
        "{} differences from CoreDNS:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
