//! `cache` options a Corefile sets beyond TTLs — `keepttl`, `disable success|denial ZONES`,
//! cached ZONES narrower than the block, a separate denial MINTTL — served by the real binary
//! through `--corefile` and by the real CoreDNS 1.11 from the same Corefile, each in front of
//! its own fake upstream: the answers (TTLs included) and what reached each upstream agree.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::differential::CoreDns;
use crate::harness::{Server, TempDir, raw_udp, request_bytes};
use crate::upstream::FakeUpstream;

const COREFILE: &str = ".:PORT {
    bind 127.0.0.1
    cache 30 example.org example.net {
        disable success no.example.org
        disable denial example.net
        denial 100 20 2
        keepttl
    }
    forward . UPSTREAM
}
";

/// Names with A records upstream (TTL 300); every other name is NXDOMAIN (negative TTL 60).
const ANSWERED: &[&str] = &[
    "a.example.org",
    "a.no.example.org",
    "a.example.net",
    "a.example.com",
];
/// Each asked twice, a second apart.
const ASKED: &[&str] = &[
    "a.example.org",
    "a.no.example.org",
    "nx.no.example.org",
    "a.example.net",
    "nx.example.net",
    "a.example.com",
    "nx.example.com",
];

fn upstream() -> FakeUpstream {
    let up = FakeUpstream::start();
    for name in ANSWERED {
        up.add_a(name, 300, "192.0.2.7");
    }
    up
}

/// rcode and the answer and authority records as `name ttl TYPE`.
fn ask(addr: SocketAddr, name: &str) -> String {
    let reply = raw_udp(
        addr,
        &request_bytes(name, RecordType::A, Some(1232)),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|| panic!("no reply to {name}"));
    let m = Message::from_vec(&reply).unwrap();
    let records: Vec<String> = m
        .answers
        .iter()
        .chain(&m.authorities)
        .map(|r| format!("{} {} {}", r.name, r.ttl, r.record_type()))
        .collect();
    format!("{} {}", m.metadata.response_code, records.join(", "))
}

/// Both rounds of answers, and how many queries for each name reached the upstream.
fn observe(server: SocketAddr, up: &FakeUpstream, round: usize) -> Vec<String> {
    ASKED
        .iter()
        .map(|name| {
            let answer = ask(server, name);
            format!(
                "round {round}: {name}: {answer}; upstream saw {}",
                up.count(name)
            )
        })
        .collect()
}

#[test]
fn keepttl_disable_zones_and_denial_minttl_behave_as_in_coredns() {
    let (their_up, our_up) = (upstream(), upstream());
    let corefile = |up: &FakeUpstream, port: &str| {
        COREFILE
            .replace("UPSTREAM", &up.addr.to_string())
            .replace("PORT", port)
    };
    let coredns = CoreDns::with_corefile(|port| corefile(&their_up, &port.to_string()));
    let dir = TempDir::new();
    let file = dir.write("Corefile", &corefile(&our_up, "0"));
    let ours = Server::spawn_corefile(dir, &file);

    let mut theirs = observe(coredns.addr, &their_up, 1);
    let mut mine = observe(ours.addr, &our_up, 1);
    // A second later: a counted-down TTL would show, keepttl keeps it.
    std::thread::sleep(Duration::from_millis(1100));
    theirs.extend(observe(coredns.addr, &their_up, 2));
    mine.extend(observe(ours.addr, &our_up, 2));
    assert_eq!(mine, theirs);

    let expect = [
        // Cached, served with the capped TTL both times; asked upstream once.
        "round 2: a.example.org: No Error a.example.org. 30 A; upstream saw 1",
        // `disable success` under no.example.org: every query goes up; denial still cached.
        "round 2: a.no.example.org: No Error a.no.example.org. 30 A; upstream saw 2",
        "round 2: nx.no.example.org: Non-Existent Domain example. 20 SOA; upstream saw 1",
        // `disable denial` for example.net.
        "round 2: nx.example.net: Non-Existent Domain example. 20 SOA; upstream saw 2",
        // Outside the cached zones: not cached, the upstream's TTLs.
        "round 2: a.example.com: No Error a.example.com. 300 A; upstream saw 2",
    ];
    for line in expect {
        assert!(
            mine.iter().any(|l| l == line),
            "{line}\nnot in\n{}",
            mine.join("\n")
        );
    }
}
