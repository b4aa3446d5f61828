//! `rewrite`: a real CoreDNS 1.11 and clusterdns (`--corefile`) run the same Corefile, with
//! the same cluster (the fake API's demo cluster), inline `hosts` entries and a fake upstream
//! each, and must answer alike: rcode, AA, TC, RD, RA, the question as the client asked it,
//! and every section's records (names, TTLs, data; the SOA serial aside). The rules cover
//! `exact`, `prefix`, `suffix` (with and without `answer auto`), `regex` (without an answer
//! clause, with `answer auto`, with `answer name` + `answer value`, the block form), `stop`
//! against `continue`, a loop of rules, `type`, `class` and `ttl` rules, names rewritten onto
//! the cluster zone, a `hosts` entry and forwarded names (through the cache on a second
//! round, and over TCP), an ExternalName whose target is looked up upstream, and a new name
//! too long to be one (SERVFAIL). What reached each upstream is compared too. Then the one
//! difference kept on purpose, the TOML form and `check` errors.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record, RecordType};

use crate::differential::CoreDns;
use crate::harness::{BIN, Server, TempDir, raw_tcp, raw_udp, request_bytes};
use crate::kube_api::FakeApi;
use crate::upstream::FakeUpstream;

/// PORT, API and UPSTREAM are filled in for each server.
const COREFILE: &str = r".:PORT {
    bind 127.0.0.1
    rewrite name exact db.example.com postgres.data.svc.cluster.local
    rewrite name suffix .corp.example. .svc.cluster.local. answer auto
    rewrite stop {
        name regex (.*)\.mycorp\.com {1}.shop.svc.cluster.local
        answer name (.*)\.shop\.svc\.cluster\.local {1}.mycorp.com
        answer value (.*)\.shop\.svc\.cluster\.local {1}.mycorp.com
    }
    rewrite name regex .*\.nodes\.vcluster\.com kubernetes.default.svc.cluster.local
    rewrite name regex (.*)\.auto\.test {1}.upstream.test answer auto
    rewrite continue name suffix .chain1.test .chain2.test
    rewrite name suffix .chain2.test .upstream.test answer auto
    rewrite name suffix .stop.test .upstream.test
    rewrite name suffix .upstream.test .never.test
    rewrite name exact ext.example.com www.upstream.test
    rewrite name exact hostalias.example.com host1.example.org
    rewrite name substring .sub.test. .example.org.
    rewrite name prefix legacy frontend
    rewrite ttl exact cart.shop.svc.cluster.local 77
    rewrite name regex ^(.*)\.long\.test\.$ {1}.{1}.{1}.{1}.{1}.example.com
    rewrite continue name exact loop1.test loop2.test
    rewrite name exact loop2.test loop1.test
    rewrite class CH IN
    rewrite type TXT A
    hosts {
        10.1.1.1 host1.example.org
        fallthrough
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        endpoint http://API
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . UPSTREAM
}
";

/// What every fake upstream holds: `(name, ttl, address)`.
const UPSTREAM_A: &[(&str, u32, &str)] = &[
    ("a.upstream.test", 300, "192.0.2.1"),
    ("www.upstream.test", 300, "192.0.2.2"),
    ("api.payments.example.com", 300, "192.0.2.20"),
];

const LONG: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.long.test";

/// What both servers are asked, and what each rule is there for.
const QUERIES: &[(&str, RecordType)] = &[
    // exact: headless Service, owners and SRV targets mapped back; the question's case.
    ("db.example.com", RecordType::A),
    ("DB.Example.Com", RecordType::A),
    ("db.example.com", RecordType::SRV),
    // suffix with answer auto, onto the cluster zone: A, AAAA, SRV, ExternalName in and out
    // of the cluster (the latter looked up upstream), NXDOMAIN with the zone's SOA.
    ("frontend.shop.corp.example", RecordType::A),
    ("frontend.shop.corp.example", RecordType::AAAA),
    ("_http._tcp.frontend.shop.corp.example", RecordType::SRV),
    ("storefront.shop.corp.example", RecordType::A),
    ("payments.shop.corp.example", RecordType::A),
    ("nosuch.shop.corp.example", RecordType::A),
    // regex with answer name and answer value (the block form).
    ("cart.mycorp.com", RecordType::A),
    ("_grpc._tcp.cart.mycorp.com", RecordType::SRV),
    ("nosuch.mycorp.com", RecordType::A),
    // regex without an answer clause: owners keep the new name (vCluster's rule).
    ("node-1.nodes.vcluster.com", RecordType::A),
    // regex with answer auto, forwarded.
    ("a.auto.test", RecordType::A),
    // continue then a suffix rule with answer auto: only the last suffix is mapped back.
    ("a.chain1.test", RecordType::A),
    // stop: the rule after it does not apply.
    ("www.stop.test", RecordType::A),
    // exact onto a forwarded name, onto a hosts entry; substring onto a hosts entry.
    ("ext.example.com", RecordType::A),
    ("hostalias.example.com", RecordType::A),
    ("hostalias.example.com", RecordType::AAAA),
    ("host1.sub.test", RecordType::A),
    // prefix, no answer rewrite.
    ("legacy.shop.svc.cluster.local", RecordType::A),
    // ttl.
    ("cart.shop.svc.cluster.local", RecordType::A),
    // A name too long after the rewrite: SERVFAIL; a shorter one goes upstream.
    (LONG, RecordType::A),
    ("short.long.test", RecordType::A),
    // Rules applied once each: loop1 → loop2 → loop1, then forwarded.
    ("loop1.test", RecordType::A),
    // type TXT → A (stop): the answer's A records under the client's TXT question.
    ("kubernetes.default.svc.cluster.local", RecordType::TXT),
    // No rule: untouched.
    ("frontend.shop.svc.cluster.local", RecordType::A),
    ("10.0.96.10.in-addr.arpa", RecordType::PTR),
];

/// A response reduced to what is compared: header bits, the question, and each section as
/// sorted record lines. Not RA: clusterdns sets it on every answer of a block that forwards
/// (README, "Where clusterdns answers differently"). `cached`: from a cache, where TTLs count
/// down and CoreDNS sets AA (tests/corefile-differential-allow.txt).
fn shape(reply: &[u8], cached: bool) -> String {
    let m = Message::from_vec(reply).unwrap_or_else(|e| panic!("unreadable reply: {e}"));
    let h = &m.metadata;
    let q = &m.queries[0];
    let with_ttl = !cached;
    let mut out = format!(
        "{:?} aa={} tc={} rd={} q={} {} {}",
        h.response_code,
        h.authoritative && !cached,
        h.truncation,
        h.recursion_desired,
        q.name,
        q.query_type,
        q.query_class
    );
    for (section, records) in [
        ("an", &m.answers),
        ("ns", &m.authorities),
        ("ar", &m.additionals),
    ] {
        let mut lines: Vec<String> = records.iter().map(|r| line(r, with_ttl)).collect();
        lines.sort();
        out.push_str(&format!("\n  {section}: {lines:?}"));
    }
    out
}

fn line(r: &Record, with_ttl: bool) -> String {
    let data = match &r.data {
        RData::SOA(soa) => format!("{} {} (serial)", soa.mname, soa.rname),
        other => other.to_string(),
    };
    let ttl = if with_ttl {
        r.ttl.to_string()
    } else {
        "-".into()
    };
    format!("{} {ttl} {} {data}", r.name, r.record_type())
}

fn ask_udp(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    raw_udp(addr, request, Duration::from_secs(5)).expect("a reply")
}

/// Asks until `check` holds of the reply; fails after 30 s.
fn until(addr: SocketAddr, name: &str, what: &str, check: impl Fn(&Message) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let request = request_bytes(name, RecordType::A, Some(1232));
    loop {
        if let Some(reply) = raw_udp(addr, &request, Duration::from_secs(2))
            && Message::from_vec(&reply).is_ok_and(|m| check(&m))
        {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn upstream() -> FakeUpstream {
    let up = FakeUpstream::start();
    for (name, ttl, ip) in UPSTREAM_A {
        up.add_a(name, *ttl, ip);
    }
    up
}

/// The names an upstream was asked, as `name TYPE` (not health checks, nor the loop probe
/// clusterdns always sends).
fn asked(up: &FakeUpstream) -> Vec<String> {
    let mut seen: Vec<String> = up
        .seen()
        .iter()
        .filter(|s| s.name != "." && s.qtype != RecordType::HINFO)
        .map(|s| format!("{} {}", s.name.to_ascii_lowercase(), s.qtype))
        .collect();
    seen.sort();
    seen
}

/// The same Corefile in CoreDNS and in clusterdns, both synced with the fake API.
struct Both {
    coredns: CoreDns,
    ours: Server,
    coredns_up: FakeUpstream,
    ours_up: FakeUpstream,
    _api: FakeApi,
}

impl Both {
    fn start(corefile: &str) -> Both {
        let api = FakeApi::start();
        let (coredns_up, ours_up) = (upstream(), upstream());
        let text = |port: u16, up: &FakeUpstream| {
            corefile
                .replace("PORT", &port.to_string())
                .replace("API", &api.addr.to_string())
                .replace("UPSTREAM", &up.addr.to_string())
        };
        let coredns = CoreDns::with_corefile(|port| text(port, &coredns_up));
        let dir = TempDir::new();
        let path = dir.write("Corefile", &text(0, &ours_up));
        let ours = Server::spawn_corefile(dir, &path);
        for addr in [coredns.addr, ours.addr] {
            until(
                addr,
                "kubernetes.default.svc.cluster.local",
                "synced",
                |m| !m.answers.is_empty(),
            );
        }
        Both {
            coredns,
            ours,
            coredns_up,
            ours_up,
            _api: api,
        }
    }

    /// Asks both; the difference, if any.
    fn compare(&self, label: &str, request: &[u8], tcp: bool, cached: bool) -> Option<String> {
        let ask = |addr| {
            if tcp {
                raw_tcp(addr, request)
            } else {
                ask_udp(addr, request)
            }
        };
        let (theirs, mine) = (
            shape(&ask(self.coredns.addr), cached),
            shape(&ask(self.ours.addr), cached),
        );
        (theirs != mine).then(|| format!("{label}:\n CoreDNS    {theirs}\n clusterdns {mine}"))
    }
}

#[test]
fn the_same_rewrites_are_answered_as_by_coredns() {
    let both = Both::start(COREFILE);
    let mut differences = Vec::new();
    for (name, qtype) in QUERIES {
        let request = request_bytes(name, *qtype, Some(1232));
        differences.extend(both.compare(&format!("{name} {qtype}"), &request, false, false));
    }
    let mut ch = request_bytes(
        "kubernetes.default.svc.cluster.local",
        RecordType::A,
        Some(1232),
    );
    let class = ch.len() - 11 - 2;
    ch[class..class + 2].copy_from_slice(&3u16.to_be_bytes());
    differences.extend(both.compare("class CH → IN", &ch, false, false));
    for (name, qtype) in [
        ("db.example.com", RecordType::SRV),
        ("ext.example.com", RecordType::A),
    ] {
        let request = request_bytes(name, qtype, None);
        differences.extend(both.compare(&format!("tcp {name} {qtype}"), &request, true, false));
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // What went upstream: the new names, never the one after a `stop`.
    let (theirs, mine) = (asked(&both.coredns_up), asked(&both.ours_up));
    assert_eq!(theirs, mine);
    for name in [
        "www.upstream.test. A",
        "a.upstream.test. A",
        "api.payments.example.com. A",
        "loop1.test. A",
        "short.short.short.short.short.example.com. A",
    ] {
        assert!(
            mine.iter().any(|s| s == name),
            "{name} not forwarded: {mine:?}"
        );
    }
    assert!(!mine.iter().any(|s| s.contains("never.test")), "{mine:?}");
}

/// With `cache` in front (CoreDNS) or behind `rewrite` (clusterdns, keyed by the new name), a
/// second round comes from the caches and is turned back like the first.
#[test]
fn cached_answers_to_rewritten_names_are_turned_back_too() {
    let both = Both::start(
        &COREFILE.replace("    bind 127.0.0.1\n", "    bind 127.0.0.1\n    cache 30\n"),
    );
    let forwarded: Vec<&(&str, RecordType)> = QUERIES
        .iter()
        .filter(|(n, _)| {
            n.ends_with(".test") || n.starts_with("ext.") || n.starts_with("payments.")
        })
        .collect();
    let mut differences = Vec::new();
    for round in 1..=2 {
        for (name, qtype) in &forwarded {
            let request = request_bytes(name, *qtype, Some(1232));
            let label = format!("round {round}: {name} {qtype}");
            differences.extend(both.compare(&label, &request, false, true));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    let mine = asked(&both.ours_up);
    for name in [
        "a.upstream.test. A",
        "loop1.test. A",
        "www.upstream.test. A",
    ] {
        let times = mine.iter().filter(|s| *s == name).count();
        assert_eq!(
            times, 1,
            "{name} asked upstream once, then cached: {mine:?}"
        );
    }
    let reply = ask_udp(
        both.ours.addr,
        &request_bytes("ext.example.com", RecordType::A, None),
    );
    assert_eq!(answers(&reply).len(), 1);
    assert!(
        answers(&reply)[0].starts_with("ext.example.com. "),
        "{:?}",
        answers(&reply)
    );
}

/// The answer records of a reply as lines.
fn answers(reply: &[u8]) -> Vec<String> {
    let m = Message::from_vec(reply).unwrap();
    m.answers.iter().map(|r| line(r, true)).collect()
}

/// CoreDNS echoes the rewritten question when only `continue` rules applied and none rewrites
/// the answer (dig: "Question section mismatch"); clusterdns always answers the client's
/// question (README, "Where clusterdns answers differently").
#[test]
fn after_continue_rules_alone_the_clients_question_is_answered_where_coredns_echoes_its_own() {
    let both = Both::start(
        ".:PORT {\n    bind 127.0.0.1\n    rewrite continue type TXT A\n    rewrite continue name suffix .c.test .example.org\n    hosts {\n        10.1.1.1 h.example.org\n        fallthrough\n    }\n    kubernetes cluster.local {\n        endpoint http://API\n    }\n    forward . UPSTREAM\n}\n",
    );
    let question = |reply: &[u8]| {
        let q = &Message::from_vec(reply).unwrap().queries[0];
        format!("{} {}", q.name, q.query_type)
    };
    for (name, qtype, rewritten) in [
        ("h.example.org", RecordType::TXT, "h.example.org. A"),
        ("h.c.test", RecordType::A, "h.example.org. A"),
    ] {
        let request = request_bytes(name, qtype, Some(1232));
        let theirs = ask_udp(both.coredns.addr, &request);
        let mine = ask_udp(both.ours.addr, &request);
        assert_eq!(
            question(&theirs),
            rewritten,
            "CoreDNS: the rewritten question"
        );
        assert_eq!(
            question(&mine),
            format!("{name}. {qtype}"),
            "clusterdns: the client's"
        );
        assert_eq!(answers(&theirs), answers(&mine));
        assert_eq!(answers(&mine), ["h.example.org. 3600 A 10.1.1.1"]);
    }
}

/// The TOML form, served from `--config`: exact onto an inline hosts entry, a regex with
/// `answer_name` onto a forwarded name, a `ttl` range; the bytes that come back.
#[test]
fn the_toml_rules_are_served() {
    let up = upstream();
    let server = Server::with_config(&format!(
        r#"[[server]]
listen = ["127.0.0.1:0"]
zones = ["."]

[[server.rewrite]]
field = "name"
from = "db.example.com"
to = "host1.example.org"

[[server.rewrite]]
field = "name"
match = "regex"
from = '(.*)\.corp\.test'
to = "{{1}}.upstream.test"
mode = "continue"
answer_name = [{{ from = '(.*)\.upstream\.test', to = "{{1}}.corp.test" }}]

[[server.rewrite]]
field = "ttl"
match = "suffix"
from = "upstream.test"
ttl = "10-60"

[server.hosts]
entries = ["10.1.1.1 host1.example.org"]
fallthrough = ["."]

[server.forward]
to = ["{}"]
"#,
        up.addr
    ));
    let reply = ask_udp(
        server.addr,
        &request_bytes("DB.example.com", RecordType::A, None),
    );
    assert_eq!(&reply[..2], [0x12, 0x34]);
    assert_eq!(reply[3] & 0x0f, 0, "NOERROR");
    assert_ne!(reply[2] & 0x04, 0, "AA from hosts");
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.queries[0].name.to_string(), "DB.example.com.");
    assert_eq!(answers(&reply), ["db.example.com. 3600 A 10.1.1.1"]);
    let reply = ask_udp(
        server.addr,
        &request_bytes("www.corp.test", RecordType::A, Some(1232)),
    );
    assert_eq!(answers(&reply), ["www.corp.test. 60 A 192.0.2.2"]);
    let m = Message::from_vec(&reply).unwrap();
    assert!(m.edns.is_some(), "the client's EDNS answered");
    assert_eq!(up.count("www.upstream.test"), 1);
}

fn check(flag: &str, path: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["check", flag])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_rule_is_a_check_error_naming_its_key_or_line() {
    let dir = TempDir::new();
    let toml = dir.write(
        "c.toml",
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\n[[server.rewrite]]\nfield = \"name\"\nmatch = \"exact\"\nfrom = \"a\"\nto = \"b\"\n\
         [[server.rewrite]]\nfield = \"name\"\nmatch = \"regex\"\nfrom = \"(unclosed\"\nto = \"b\"\n",
    );
    let (code, stderr) = check("--config", &toml);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("server[0].rewrite[1].from: invalid regex \"(unclosed\""),
        "{stderr}"
    );
    let corefile = dir.write(
        "Corefile",
        ".:53 {\n    rewrite name exact a b\n    rewrite name regex (unclosed b\n    rewrite edns0 local set 0xffee abcd\n    forward . 127.0.0.1\n}\n",
    );
    let (code, stderr) = check("--corefile", &corefile);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("Corefile:3: not translated: rewrite: from: invalid regex"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Corefile:4: not translated: rewrite: edns0 rules are not implemented"),
        "{stderr}"
    );
}
