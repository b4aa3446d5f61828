//! `dns64`: the real binary (`--corefile`) and a real CoreDNS 1.11 run the same Corefile on
//! 127.0.0.1 and ::1 and are asked the same AAAA (and A) questions from ::1 and 127.0.0.1.
//! Replies are compared whole (rcode, flags, every section, TTLs, OPT): names with A records
//! only get AAAA records inside the prefix (/96 and /64, RFC 6052), TTLs capped by the AAAA
//! answer's SOA (600 without one), from IPv6 clients only unless `allow_ipv4`; answers with
//! AAAA records stand unless `translate_all`; NXDOMAIN stands. Hosts answers the synchronous
//! case, a fake upstream behind `forward` the one that waits in a task.
//!
//! The differences README lists are asserted as such: RA on the answers of a block that
//! forwards, and an upstream's SERVFAIL that stays SERVFAIL (CoreDNS answers an empty
//! NOERROR).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::RecordType;

use crate::small_plugins::{Pair, query};
use crate::upstream::{Behaviour, FakeUpstream};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

const AAAA: RecordType = RecordType::AAAA;

/// Both replies (described) to `name qtype` from `from`; fails when either is missing.
fn both(pair: &Pair, from: IpAddr, name: &str, qtype: RecordType) -> (String, String) {
    let (theirs, ours) = pair.ask(from, &query(name, qtype, Some(true)));
    let what = format!("{name} {qtype} from {from}");
    (
        theirs.unwrap_or_else(|| panic!("CoreDNS: no reply to {what}")),
        ours.unwrap_or_else(|| panic!("clusterdns: no reply to {what}")),
    )
}

/// Every difference between the two servers' replies to each question from each client.
fn differences(
    pair: &Pair,
    questions: &[(IpAddr, &str, RecordType)],
    normalize: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    for (from, name, qtype) in questions {
        let (theirs, ours) = both(pair, *from, name, *qtype);
        let (theirs, ours) = (normalize(&theirs), normalize(&ours));
        if theirs != ours {
            out.push(format!(
                "{name} {qtype} from {from}:\n  CoreDNS:    {theirs}\n  clusterdns: {ours}"
            ));
        }
    }
    out
}

fn hosts_corefile(port: u16, dns64: &str) -> String {
    format!(
        ".:{port} {{
    bind 127.0.0.1 ::1
    {dns64}
    hosts {{
        10.0.0.1 v4only.example
        10.0.0.2 both.example
        fd00::2 both.example
    }}
}}
"
    )
}

#[test]
fn names_with_a_records_only_get_aaaa_in_the_well_known_prefix_for_ipv6_clients() {
    let pair = Pair::start(|port| hosts_corefile(port, "dns64"));
    let mut questions = Vec::new();
    for from in [V6, V4] {
        for (name, qtype) in [
            ("v4only.example", AAAA),
            ("V4only.Example", AAAA),
            ("both.example", AAAA),
            ("nowhere.example", AAAA),
            ("v4only.example", RecordType::A),
        ] {
            questions.push((from, name, qtype));
        }
    }
    let found = differences(&pair, &questions, str::to_owned);
    assert!(found.is_empty(), "{}", found.join("\n"));
    // What both said: the hosts TTL (3600) capped at 600 without a SOA, not authoritative.
    let (_, ours) = both(&pair, V6, "v4only.example", AAAA);
    assert!(
        ours.contains("No Error [rd] an [v4only.example. 600 IN AAAA 64:ff9b::a00:1] ns []"),
        "{ours}"
    );
    let (_, ours) = both(&pair, V4, "v4only.example", AAAA);
    assert!(ours.contains("No Error [aa rd] an [] ns []"), "{ours}");
    let (_, ours) = both(&pair, V6, "both.example", AAAA);
    assert!(
        ours.contains("an [both.example. 3600 IN AAAA fd00::2]"),
        "{ours}"
    );
}

#[test]
fn translate_all_replaces_aaaa_records_and_a_64_prefix_skips_the_u_octet() {
    let pair = Pair::start(|port| {
        hosts_corefile(
            port,
            "dns64 {\n        prefix 2001:db8:64::/64\n        translate_all\n    }",
        )
    });
    let questions = [
        (V6, "both.example", AAAA),
        (V6, "v4only.example", AAAA),
        (V4, "both.example", AAAA),
    ];
    let found = differences(&pair, &questions, str::to_owned);
    assert!(found.is_empty(), "{}", found.join("\n"));
    let (_, ours) = both(&pair, V6, "both.example", AAAA);
    assert!(
        ours.contains("an [both.example. 600 IN AAAA 2001:db8:64:0:a:0:200:0] ns []"),
        "{ours}"
    );
    let (_, ours) = both(&pair, V4, "both.example", AAAA);
    assert!(
        ours.contains("an [both.example. 3600 IN AAAA fd00::2]"),
        "{ours}"
    );
}

/// RA: set here on every answer of a block that forwards; CoreDNS copies the upstream's, and
/// leaves it off what it synthesizes.
fn without_ra(described: &str) -> String {
    described.replace(" ra]", "]")
}

#[test]
fn upstream_answers_are_translated_for_every_client_with_allow_ipv4() {
    let up = FakeUpstream::start();
    up.add_a("ipv4.test.", 300, "10.1.2.3");
    up.add_a("ipv4.test.", 300, "10.1.2.4");
    up.add_a("short.test.", 30, "192.0.2.33");
    let upstream = up.addr;
    let pair = Pair::start(|port| {
        format!(
            ".:{port} {{
    bind 127.0.0.1 ::1
    dns64 {{
        prefix 64:ff9b:1::/96
        allow_ipv4
    }}
    forward . {upstream}
}}
"
        )
    });
    let mut questions = Vec::new();
    for from in [V6, V4] {
        for (name, qtype) in [
            ("ipv4.test", AAAA),
            ("short.test", AAAA),
            ("nx.test", AAAA),
            ("ipv4.test", RecordType::A),
        ] {
            questions.push((from, name, qtype));
        }
    }
    let found = differences(&pair, &questions, without_ra);
    assert!(found.is_empty(), "{}", found.join("\n"));
    // The AAAA answer's SOA (TTL 120) caps the A records' 300; 30 stays 30.
    let (_, ours) = both(&pair, V4, "ipv4.test", AAAA);
    assert!(
        ours.contains(
            "No Error [rd ra] an [ipv4.test. 120 IN AAAA 64:ff9b:1::a01:203 | \
             ipv4.test. 120 IN AAAA 64:ff9b:1::a01:204] ns []"
        ),
        "{ours}"
    );
    let (_, ours) = both(&pair, V6, "short.test", AAAA);
    assert!(
        ours.contains("an [short.test. 30 IN AAAA 64:ff9b:1::c000:221]"),
        "{ours}"
    );
    let (_, ours) = both(&pair, V6, "nx.test", AAAA);
    assert!(
        ours.contains("Non-Existent Domain [rd ra] an [] ns [example. "),
        "{ours}"
    );
    // An upstream that fails both questions: its SERVFAIL stands here; CoreDNS answers
    // NOERROR with no records.
    up.set(Behaviour::ServFail);
    let (theirs, ours) = both(&pair, V6, "ipv4.test", AAAA);
    assert!(ours.contains("Server Failure"), "{ours}");
    assert!(theirs.contains("No Error [rd] an [] ns []"), "{theirs}");
}
