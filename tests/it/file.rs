//! `file`: the real binary (`--corefile`) and the real CoreDNS 1.11 serve one zone file (apex
//! SOA/NS/MX/A, A/AAAA, CNAME chains in and out of the zone and a CNAME loop, SRV with an
//! in-zone target, TXT, a delegation with glue, wildcards, an empty non-terminal) and must
//! answer every question alike: rcode, AA, and each section's records with their TTLs. Both
//! take an edit with a new SOA serial within the reload interval; a broken edit keeps the
//! zone served here (CoreDNS 1.11 serves the records before the broken line).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{Record, RecordType};

use crate::differential::CoreDns;
use crate::harness::{Server, TempDir, raw_udp, request_bytes};
use crate::upstream::FakeUpstream;

const COREFILE: &str = "example.org:PORT {\n    bind 127.0.0.1\n    file ZONEFILE {\n        reload 1s\n    }\n}\n\
    .:PORT {\n    bind 127.0.0.1\n    forward . UPSTREAM\n}\n";

const ZONE: &str = r#"$ORIGIN example.org.
$TTL 300
@   3600 IN SOA ns1.example.org. Hostmaster.example.org. (
        SERIAL ; serial
        7200 3600 1209600 60 )
    IN NS ns1
    IN NS ns2.example.net.
    IN MX 10 mail
@   IN A 192.0.2.1
ns1 IN A 192.0.2.53
    IN AAAA 2001:db8::53
mail 120 IN A 192.0.2.25
www IN CNAME Web
web IN A WEB_ADDR
    IN AAAA 2001:db8::80
chain IN CNAME www
out IN CNAME target.fwd.test.
missing IN CNAME nowhere
loop1 IN CNAME loop2
loop2 IN CNAME loop1
_sip._tcp IN SRV 10 5 5060 sip
sip IN A 192.0.2.60
txt IN TXT "hello world" "second"
sub IN NS ns.sub
sub IN NS ns.other.net.
ns.sub IN A 192.0.2.99
*.wild IN A 192.0.2.77
*.wild 30 IN TXT "wild"
a.b.ent IN A 192.0.2.5
*.cw IN CNAME web
"#;

fn zone(serial: u32, web: &str) -> String {
    ZONE.replace("SERIAL", &serial.to_string())
        .replace("WEB_ADDR", web)
}

const QUESTIONS: &[(&str, RecordType)] = &[
    ("example.org", RecordType::SOA),
    ("example.org", RecordType::NS),
    ("example.org", RecordType::A),
    ("example.org", RecordType::MX),
    ("example.org", RecordType::AAAA),
    ("Example.ORG", RecordType::TXT),
    ("ns1.example.org", RecordType::AAAA),
    ("mail.example.org", RecordType::A),
    ("www.example.org", RecordType::A),
    ("WWW.example.org", RecordType::AAAA),
    ("www.example.org", RecordType::CNAME),
    ("www.example.org", RecordType::TXT),
    ("chain.example.org", RecordType::A),
    ("out.example.org", RecordType::A),
    ("missing.example.org", RecordType::A),
    ("loop1.example.org", RecordType::A),
    ("_sip._tcp.example.org", RecordType::SRV),
    ("txt.example.org", RecordType::TXT),
    ("sub.example.org", RecordType::NS),
    ("sub.example.org", RecordType::A),
    ("deep.x.sub.example.org", RecordType::A),
    ("ns.sub.example.org", RecordType::A),
    ("foo.wild.example.org", RecordType::A),
    ("foo.wild.example.org", RecordType::TXT),
    ("foo.wild.example.org", RecordType::MX),
    ("a.b.wild.example.org", RecordType::A),
    ("wild.example.org", RecordType::A),
    ("x.cw.example.org", RecordType::A),
    ("ent.example.org", RecordType::A),
    ("b.ent.example.org", RecordType::TXT),
    ("a.b.ent.example.org", RecordType::A),
    ("nosuch.example.org", RecordType::A),
    ("nosuch.ns1.example.org", RecordType::A),
    ("web.example.org", RecordType::ANY),
];

/// rcode, AA and the sections, records as `name ttl class type data`.
#[derive(Debug, PartialEq)]
struct Reply {
    rcode: u8,
    aa: bool,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
}

fn lines(records: &[Record]) -> Vec<String> {
    (records.iter())
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| {
            let (name, ttl, class, rtype) = (&r.name, r.ttl, r.dns_class, r.record_type());
            format!("{name} {ttl} {class} {rtype} {}", r.data)
        })
        .collect()
}

fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Reply {
    let request = request_bytes(name, qtype, Some(1232));
    let reply = raw_udp(addr, &request, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no reply from {addr} to {name} {qtype}"));
    assert_eq!(&reply[..2], [0x12, 0x34], "id");
    let m = Message::from_vec(&reply).unwrap();
    Reply {
        rcode: reply[3] & 0x0f,
        aa: reply[2] & 0x04 != 0,
        answer: lines(&m.answers),
        authority: lines(&m.authorities),
        additional: lines(&m.additionals),
    }
}

struct Both {
    coredns: CoreDns,
    ours: Server,
    zone_file: std::path::PathBuf,
    _up: FakeUpstream,
    _dir: TempDir,
}

fn start_both() -> Both {
    let up = FakeUpstream::start();
    up.add_a("target.fwd.test.", 30, "192.0.2.13");
    let dir = TempDir::new();
    let zone_file = dir.write("db.example.org", &zone(2024010101, "192.0.2.80"));
    let corefile = COREFILE
        .replace("UPSTREAM", &up.addr.to_string())
        .replace("ZONEFILE", &zone_file.display().to_string());
    let coredns = CoreDns::with_corefile(|port| corefile.replace("PORT", &port.to_string()));
    let ours_dir = TempDir::new();
    let path = ours_dir.write("Corefile", &corefile.replace("PORT", "0"));
    let ours = Server::spawn_corefile(ours_dir, &path);
    Both {
        coredns,
        ours,
        zone_file,
        _up: up,
        _dir: dir,
    }
}

#[test]
fn a_zone_file_is_answered_as_coredns_answers_it() {
    let both = start_both();
    let mut differences = Vec::new();
    for (name, qtype) in QUESTIONS {
        let theirs = ask(both.coredns.addr, name, *qtype);
        let mine = ask(both.ours.addr, name, *qtype);
        if theirs != mine {
            differences.push(format!(
                "{name} {qtype}:\n  CoreDNS    {theirs:?}\n  clusterdns {mine:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // What the comparison stands on.
    let referral = ask(both.ours.addr, "deep.x.sub.example.org", RecordType::A);
    assert!(!referral.aa && referral.answer.is_empty());
    assert_eq!(
        referral.additional,
        ["ns.sub.example.org. 300 IN A 192.0.2.99"]
    );
    let out = ask(both.ours.addr, "out.example.org", RecordType::A);
    assert_eq!(
        out.answer,
        [
            "out.example.org. 300 IN CNAME target.fwd.test.",
            "target.fwd.test. 30 IN A 192.0.2.13"
        ]
    );
    let nx = ask(both.ours.addr, "nosuch.example.org", RecordType::A);
    assert_eq!((nx.rcode, nx.aa, nx.authority.len()), (3, true, 1));
}

/// Polls until `check` holds; fails after `within`.
fn within(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_edit_with_a_new_serial_is_taken_and_a_broken_one_keeps_the_zone() {
    let both = start_both();
    let web = |addr| ask(addr, "web.example.org", RecordType::A).answer;
    let old = ["web.example.org. 300 IN A 192.0.2.80"];
    assert_eq!(web(both.ours.addr), old);
    // The same serial: not taken (by either).
    std::fs::write(&both.zone_file, zone(2024010101, "192.0.2.79")).unwrap();
    let new = ["web.example.org. 300 IN A 192.0.2.81"];
    std::fs::write(&both.zone_file, zone(2024010102, "192.0.2.81")).unwrap();
    within(Duration::from_secs(15), "both take the new serial", || {
        web(both.coredns.addr) == new && web(both.ours.addr) == new
    });
    let broken =
        zone(2024010103, "192.0.2.82").replace("sip IN A 192.0.2.60", "sip IN A 300.1.1.1");
    std::fs::write(&both.zone_file, broken).unwrap();
    within(Duration::from_secs(15), "the error is logged", || {
        both.ours.stderr().contains("does not load")
    });
    assert!(
        both.ours.stderr().contains("db.example.org:"),
        "{}",
        both.ours.stderr()
    );
    assert_eq!(web(both.ours.addr), new, "the zone last read is served");
    // CoreDNS 1.11 takes the records before the broken line (a README difference).
    let partial = ["web.example.org. 300 IN A 192.0.2.82"];
    within(Duration::from_secs(15), "CoreDNS takes a part", || {
        web(both.coredns.addr) == partial
    });
}
