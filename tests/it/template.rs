//! `template`: the real binary (`--corefile`) and the real CoreDNS 1.11 run one Corefile of
//! templates (AAAA blanking, AKS's NXDOMAIN suffixes, answers from named and indexed regex
//! groups, authority and additional sections, fallthrough to `forward` and SERVFAIL without it,
//! class and type ANY, a CNAME whose target is looked up, a record that does not parse) and
//! must answer every question alike: rcode, AA, TC, and each section's records.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Record, RecordType};

use crate::differential::CoreDns;
use crate::harness::{Server, TempDir, raw_tcp, raw_udp, request_bytes};
use crate::upstream::FakeUpstream;

const COREFILE: &str = r#".:PORT {
    bind 127.0.0.1
    template IN AAAA v4only.test {
        rcode NOERROR
    }
    template ANY ANY internal.cloudapp.net {
        match "^(?:[^.]+\.){4,}internal\.cloudapp\.net\.$"
        rcode NXDOMAIN
        fallthrough
    }
    template ANY ANY reddog.microsoft.com {
        rcode NXDOMAIN
    }
    template IN A example.org {
        match "^ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]org[.]$"
        match "^(?P<a>[0-9]+)-(?P<b>[0-9]+)-(?P<c>[0-9]+)-(?P<d>[0-9]+)[.]dc[.]example[.]org[.]$"
        answer "{{ .Name }} 60 IN A {{ .Group.a }}.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
        fallthrough
    }
    template IN A ext.example.org {
        match ^([0-9]+)[.]([0-9]+)[.]([0-9]+)[.]([0-9]+)[.]ext[.]example[.]org[.]$
        answer "{{ .Name }} 60 IN A {{ index .Match 1 }}.{{ index .Match 2 }}.{{ index .Group `3` }}.{{ index .Match 4 }}"
        fallthrough
    }
    template IN MX example.org {
        match "^mx-([0-9]+)[.]example[.]org[.]$"
        answer "{{ .Name }} 60 IN MX {{ index .Match 1 }} mail.{{ .Zone }}"
        authority "{{ .Zone }} 120 IN NS ns0.{{ .Zone }}"
        authority "{{ .Zone }} 120 IN NS ns1.{{ .Zone }}"
        additional "mail.{{ .Zone }} 30 IN A 10.0.0.{{ index .Match 1 }}"
        additional "ns0.{{ .Zone }} 30 IN A 10.1.0.{{ parseInt `ff` 16 8 }}"
    }
    template IN TXT example.org {
        match ^txt[.]
        answer "{{ .Name }} 5 {{ .Class }} TXT `{{ .Type }}` `{{ .Zone }}`"
    }
    template ANY ANY invalid {
        rcode NXDOMAIN
        authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"
    }
    template IN A bad.test {
        answer "{{ .Name }} 60 IN A 999.0.0.{{ index .Match 0 }}"
    }
    template IN ANY alias.test {
        match ^www[.]
        answer "{{ .Name }} 60 IN CNAME target.fwd.test."
        fallthrough
    }
    template IN TXT big.test {
        answer "{{ .Name }} 60 IN TXT r01-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "{{ .Name }} 60 IN TXT r02-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "{{ .Name }} 60 IN TXT r03-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "{{ .Name }} 60 IN TXT r04-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "{{ .Name }} 60 IN TXT r05-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "{{ .Name }} 60 IN TXT r06-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "{{ .Name }} 60 IN TXT r07-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "{{ .Name }} 60 IN TXT r08-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    }
    template IN A servfail.test {
        rcode SERVFAIL
    }
    forward . UPSTREAM
}
"#;

const IN: u16 = 1;
const CH: u16 = 3;

/// What both are asked: (name, type, class).
const QUESTIONS: &[(&str, RecordType, u16)] = &[
    // AAAA blanked, A forwarded.
    ("web.v4only.test", RecordType::AAAA, IN),
    ("web.v4only.test", RecordType::A, IN),
    // AKS: four labels and more NXDOMAIN; fewer fall through to forward.
    ("a.b.c.d.internal.cloudapp.net", RecordType::A, IN),
    ("a.b.c.d.internal.cloudapp.net", RecordType::TXT, CH),
    ("vm.internal.cloudapp.net", RecordType::A, IN),
    ("x.reddog.microsoft.com", RecordType::AAAA, IN),
    ("reddog.microsoft.com", RecordType::SOA, IN),
    ("x.reddog.microsoft.com", RecordType::TXT, CH),
    // Named and indexed groups.
    ("ip-10-1-2-3.example.org", RecordType::A, IN),
    ("IP-10-1-2-4.Example.ORG", RecordType::A, IN),
    ("192.0.2.1.ext.example.org", RecordType::A, IN),
    ("10-9-8-7.dc.example.org", RecordType::A, IN),
    ("1.2.3.ext.example.org", RecordType::A, IN),
    ("other.example.org", RecordType::A, IN),
    // Authority and additional; no fallthrough: SERVFAIL.
    ("mx-7.example.org", RecordType::MX, IN),
    ("nomx.example.org", RecordType::MX, IN),
    ("txt.example.org", RecordType::TXT, IN),
    ("ip-10-1-2-3.example.org", RecordType::ANY, IN),
    ("x.invalid", RecordType::A, IN),
    ("x.invalid", RecordType::TXT, CH),
    ("bad.test", RecordType::A, IN),
    ("www.alias.test", RecordType::A, IN),
    ("www.alias.test", RecordType::TXT, IN),
    ("mail.alias.test", RecordType::A, IN),
    ("servfail.test", RecordType::A, IN),
];

/// rcode, AA, TC and the sections, records as `name ttl class type data`.
#[derive(Debug, PartialEq)]
struct Reply {
    rcode: u8,
    aa: bool,
    tc: bool,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
}

fn lines(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.name,
                r.ttl,
                r.dns_class,
                r.record_type(),
                r.data
            )
        })
        .collect()
}

fn ask(addr: SocketAddr, name: &str, qtype: RecordType, class: u16) -> Reply {
    let mut request = request_bytes(name, qtype, Some(1232));
    // The class follows the name and type.
    let at = 12 + name.split('.').map(|l| l.len() + 1).sum::<usize>() + 1 + 2;
    request[at..at + 2].copy_from_slice(&class.to_be_bytes());
    let reply = raw_udp(addr, &request, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no reply from {addr} to {name} {qtype}"));
    assert_eq!(&reply[..2], [0x12, 0x34], "id");
    let m = Message::from_vec(&reply).unwrap();
    Reply {
        rcode: reply[3] & 0x0f,
        aa: reply[2] & 0x04 != 0,
        tc: reply[2] & 0x02 != 0,
        answer: lines(&m.answers),
        authority: lines(&m.authorities),
        additional: lines(&m.additionals),
    }
}

fn upstream() -> FakeUpstream {
    let up = FakeUpstream::start();
    up.add_a("web.v4only.test.", 30, "192.0.2.10");
    up.add_a("vm.internal.cloudapp.net.", 30, "192.0.2.11");
    up.add_a("other.example.org.", 30, "192.0.2.12");
    up.add_a("target.fwd.test.", 30, "192.0.2.13");
    up.add_a("mail.alias.test.", 30, "192.0.2.14");
    up
}

fn start_both(up: &FakeUpstream) -> (CoreDns, Server) {
    let corefile = COREFILE.replace("UPSTREAM", &up.addr.to_string());
    let coredns = CoreDns::with_corefile(|port| corefile.replace("PORT", &port.to_string()));
    let dir = TempDir::new();
    let path = dir.write("Corefile", &corefile.replace("PORT", "0"));
    (coredns, Server::spawn_corefile(dir, &path))
}

#[test]
fn templates_answer_as_coredns_answers() {
    let up = upstream();
    let (coredns, ours) = start_both(&up);
    let mut differences = Vec::new();
    for (name, qtype, class) in QUESTIONS {
        let theirs = ask(coredns.addr, name, *qtype, *class);
        let mine = ask(ours.addr, name, *qtype, *class);
        if theirs != mine {
            differences.push(format!(
                "{name} {qtype} class {class}:\n  CoreDNS    {theirs:?}\n  clusterdns {mine:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// An answer larger than a client without EDNS takes: TC, and the records that fit, in order,
/// from both; all of them over TCP.
#[test]
fn a_large_template_answer_is_truncated_as_coredns_truncates_it() {
    let up = upstream();
    let (coredns, ours) = start_both(&up);
    let small = |addr| {
        let reply = raw_udp(
            addr,
            &request_bytes("big.test", RecordType::TXT, None),
            Duration::from_secs(5),
        )
        .expect("a reply");
        let m = Message::from_vec(&reply).unwrap();
        assert!(reply.len() <= 512, "{} octets", reply.len());
        (reply[2] & 0x02 != 0, lines(&m.answers))
    };
    let (theirs_tc, theirs) = small(coredns.addr);
    let (mine_tc, mine) = small(ours.addr);
    assert!(
        theirs_tc && mine_tc,
        "TC: CoreDNS {theirs_tc}, clusterdns {mine_tc}"
    );
    // Names are spelled out here, compressed by CoreDNS: fewer records may fit.
    assert!(!mine.is_empty() && mine.len() < 8, "{mine:?}");
    assert_eq!(
        mine[..],
        theirs[..mine.len()],
        "the records that fit, in order"
    );
    let full = raw_tcp(ours.addr, &request_bytes("big.test", RecordType::TXT, None));
    let m = Message::from_vec(&full).unwrap();
    assert_eq!((full[2] & 0x02, m.answers.len()), (0, 8), "all over TCP");
}

/// The same answers, checked against what they must be (so a shared mistake fails too).
#[test]
fn template_answers_hold_what_the_corefile_says() {
    let up = upstream();
    let (_coredns, ours) = start_both(&up);
    let a = ours.addr;
    let groups = ask(a, "IP-10-1-2-4.Example.ORG", RecordType::A, IN);
    assert_eq!((groups.rcode, groups.aa), (0, true));
    assert_eq!(groups.answer, ["ip-10-1-2-4.example.org. 60 IN A 10.1.2.4"]);
    let indexed = ask(a, "192.0.2.1.ext.example.org", RecordType::A, IN);
    assert_eq!(
        indexed.answer,
        ["192.0.2.1.ext.example.org. 60 IN A 192.0.2.1"]
    );
    let mx = ask(a, "mx-7.example.org", RecordType::MX, IN);
    assert_eq!(
        mx.answer,
        ["mx-7.example.org. 60 IN MX 7 mail.example.org."]
    );
    assert_eq!(
        mx.authority,
        [
            "example.org. 120 IN NS ns0.example.org.",
            "example.org. 120 IN NS ns1.example.org."
        ]
    );
    assert_eq!(
        mx.additional,
        [
            "mail.example.org. 30 IN A 10.0.0.7",
            "ns0.example.org. 30 IN A 10.1.0.255"
        ]
    );
    let blank = ask(a, "web.v4only.test", RecordType::AAAA, IN);
    assert_eq!((blank.rcode, blank.aa, blank.answer.len()), (0, true, 0));
    let aks = ask(a, "a.b.c.d.internal.cloudapp.net", RecordType::TXT, CH);
    assert_eq!((aks.rcode, aks.aa), (3, true));
    let fell = ask(a, "vm.internal.cloudapp.net", RecordType::A, IN);
    assert_eq!(
        fell.answer,
        ["vm.internal.cloudapp.net. 30 IN A 192.0.2.11"]
    );
    assert_eq!(ask(a, "nomx.example.org", RecordType::MX, IN).rcode, 2);
    assert_eq!(ask(a, "bad.test", RecordType::A, IN).rcode, 2);
    let chased = ask(a, "www.alias.test", RecordType::A, IN);
    assert_eq!(
        chased.answer,
        [
            "www.alias.test. 60 IN CNAME target.fwd.test.",
            "target.fwd.test. 30 IN A 192.0.2.13"
        ]
    );
    assert!(
        ours.stderr()
            .contains("template: the record does not render"),
        "the bad record is logged"
    );
}
