use super::*;
use crate::config::dns64::parse_prefix;

fn dns64(prefix: &str, translate_all: bool) -> Dns64 {
    let (prefix, prefix_len) = parse_prefix(prefix).unwrap();
    Dns64::new(&Dns64Config {
        prefix,
        prefix_len,
        translate_all,
        allow_ipv4: false,
    })
}

#[test]
fn every_prefix_length_embeds_as_rfc_6052_shows() {
    // RFC 6052 §2.4's table: 192.0.2.33 in each prefix length, the u-octet left zero.
    let v4 = Ipv4Addr::new(192, 0, 2, 33);
    for (prefix, embedded) in [
        ("2001:db8::/32", "2001:db8:c000:221::"),
        ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
        ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
        ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
        ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
        ("2001:db8:122:344::/96", "2001:db8:122:344::c000:221"),
        ("64:ff9b::/96", "64:ff9b::c000:221"),
    ] {
        let got = dns64(prefix, false).embed(v4);
        assert_eq!(got, embedded.parse::<Ipv6Addr>().unwrap(), "{prefix}");
    }
}

#[test]
fn host_bits_of_the_prefix_are_not_carried() {
    // As Go's ParseCIDR masks them: 64:ff9b::1/96 is 64:ff9b::/96.
    let v4 = Ipv4Addr::new(10, 0, 0, 1);
    assert_eq!(
        dns64("64:ff9b::1:2/96", false).embed(v4),
        "64:ff9b::a00:1".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        dns64("2001:db8:ffff:ffff::/32", false).embed(v4),
        "2001:db8:a00:1::".parse::<Ipv6Addr>().unwrap()
    );
}

fn answer(rcode: ResponseCode, records: &[Record], soa_ttl: Option<u32>) -> Vec<u8> {
    let mut m = Message::response(7, hickory_proto::op::OpCode::Query);
    m.metadata.response_code = rcode;
    m.answers = records.to_vec();
    if let Some(ttl) = soa_ttl {
        let soa = hickory_proto::rr::rdata::SOA::new(
            "ns.example.".parse().unwrap(),
            "h.example.".parse().unwrap(),
            1,
            2,
            3,
            4,
            5,
        );
        m.authorities = vec![Record::from_rdata(
            "example.".parse().unwrap(),
            ttl,
            RData::SOA(soa),
        )];
    }
    m.to_vec().unwrap()
}

fn a(name: &str, ttl: u32, ip: [u8; 4]) -> Record {
    Record::from_rdata(
        name.parse().unwrap(),
        ttl,
        RData::A(Ipv4Addr::from(ip).into()),
    )
}

fn aaaa(name: &str, ip: &str) -> Record {
    Record::from_rdata(
        name.parse().unwrap(),
        30,
        RData::AAAA(AAAA(ip.parse().unwrap())),
    )
}

#[test]
fn only_answers_without_aaaa_and_not_nxdomain_are_translated() {
    let plain = dns64("64:ff9b::/96", false);
    let all = dns64("64:ff9b::/96", true);
    let nodata = answer(ResponseCode::NoError, &[], Some(60));
    let servfail = answer(ResponseCode::ServFail, &[], None);
    let nxdomain = answer(ResponseCode::NXDomain, &[], Some(60));
    let with_aaaa = answer(
        ResponseCode::NoError,
        &[aaaa("x.example.", "fd00::1")],
        None,
    );
    assert!(plain.wants_a(&nodata) && plain.wants_a(&servfail));
    assert!(!plain.wants_a(&nxdomain) && !plain.wants_a(&with_aaaa));
    assert!(all.wants_a(&with_aaaa) && !all.wants_a(&nxdomain));
}

#[test]
fn synthesis_caps_ttls_by_the_soa_and_keeps_other_records() {
    let dns64 = dns64("64:ff9b::/96", false);
    let query = crate::dns::query::build("x.example", rtype::AAAA, None).unwrap();
    let mut qname = String::new();
    let request = Request::parse(&query, crate::dns::Transport::Udp, &mut qname).unwrap();
    let client = request.client();
    let cname = Record::from_rdata(
        "x.example.".parse().unwrap(),
        900,
        RData::CNAME(hickory_proto::rr::rdata::CNAME(
            "y.example.".parse().unwrap(),
        )),
    );
    let a_answer = answer(
        ResponseCode::NoError,
        &[
            cname,
            a("y.example.", 900, [10, 0, 0, 1]),
            a("y.example.", 5, [10, 0, 0, 2]),
        ],
        None,
    );
    let lines = |aaaa_answer: &[u8]| {
        let out = synthesize(&dns64, &client, aaaa_answer, &a_answer, false).unwrap();
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(!m.metadata.authoritative);
        m.answers
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.ttl, r.data))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lines(&answer(ResponseCode::NoError, &[], Some(60))),
        [
            "x.example. 900 y.example.",
            "y.example. 60 64:ff9b::a00:1",
            "y.example. 5 64:ff9b::a00:2"
        ]
    );
    assert_eq!(
        lines(&answer(ResponseCode::ServFail, &[], None))[1],
        "y.example. 600 64:ff9b::a00:1"
    );
    let failed = answer(ResponseCode::ServFail, &[], None);
    let nodata = answer(ResponseCode::NoError, &[], Some(60));
    assert_eq!(synthesize(&dns64, &client, &nodata, &failed, false), None);
}
