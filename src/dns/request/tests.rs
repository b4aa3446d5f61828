use super::*;

/// A query for `a.example.` with `counts` (QD, AN, NS, AR) and `tail` appended.
fn message(flags: [u8; 2], qd: u16, ar: u16, question: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, flags[0], flags[1]];
    m.extend_from_slice(&qd.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&ar.to_be_bytes());
    m.extend_from_slice(question);
    m.extend_from_slice(tail);
    m
}

const QUESTION: &[u8] = b"\x01A\x07Example\x00\x00\x01\x00\x01";

fn opt(payload: u16, ttl: u32, options: &[u8]) -> Vec<u8> {
    let mut o = vec![0, 0, 41];
    o.extend_from_slice(&payload.to_be_bytes());
    o.extend_from_slice(&ttl.to_be_bytes());
    o.extend_from_slice(&(options.len() as u16).to_be_bytes());
    o.extend_from_slice(options);
    o
}

fn rcode_of(result: Result<Request<'_>, Rejected<'_>>) -> Option<u16> {
    match result {
        Err(Rejected::Reply { rcode, .. }) => Some(rcode),
        _ => None,
    }
}

#[test]
fn a_query_is_parsed_with_its_question_edns_and_lower_case_name() {
    let bytes = message(
        [0x01, 0x10],
        1,
        1,
        QUESTION,
        &opt(4096, 0x8000, &[0, 10, 0, 2, 1, 2]),
    );
    let mut qname = String::new();
    let r = Request::parse(&bytes, Transport::Udp, &mut qname).expect("a query");
    assert_eq!(qname, "a.example");
    assert_eq!(r.header.id, 0x1234);
    assert!(r.header.recursion_desired && r.header.checking_disabled);
    assert_eq!((r.qtype, r.qclass), (1, 1));
    assert_eq!(r.question, QUESTION);
    let edns = r.edns.expect("edns");
    assert!(edns.dnssec_ok);
    assert_eq!((edns.payload, edns.version), (4096, 0));
    assert_eq!(r.limit(), 1232, "capped at the server's largest UDP answer");
    let r = Request { max_udp: 4096, ..r };
    assert_eq!(r.limit(), 4096);
    let tcp = Request::parse(&bytes, Transport::Tcp, &mut qname).unwrap();
    assert_eq!(tcp.limit(), 65535);
    let small = message([1, 0], 1, 1, QUESTION, &opt(100, 0, &[]));
    assert_eq!(
        Request::parse(&small, Transport::Udp, &mut qname)
            .unwrap()
            .limit(),
        512
    );
}

#[test]
fn malformed_messages_are_formerr_or_dropped() {
    let mut qname = String::new();
    let mut parse = |b: &[u8]| rcode_of(Request::parse(b, Transport::Udp, &mut qname));
    let formerr = Some(1);
    assert!(matches!(
        Request::parse(&[1, 2, 3], Transport::Udp, &mut String::new()),
        Err(Rejected::Drop)
    ));
    let response = message([0x81, 0], 1, 0, QUESTION, &[]);
    assert!(matches!(
        Request::parse(&response, Transport::Udp, &mut String::new()),
        Err(Rejected::Drop)
    ));
    assert_eq!(
        parse(&message([1, 0], 1, 0, b"", &[])),
        formerr,
        "no question"
    );
    assert_eq!(
        parse(&message([1, 0], 0, 0, b"", &[])),
        formerr,
        "QDCOUNT 0"
    );
    assert_eq!(
        parse(&message([0x11, 0], 0, 0, b"", &[])),
        Some(4),
        "other opcode, no question: NOTIMP"
    );
    assert_eq!(
        parse(&message([1, 0], 1, 0, b"\xc0\x0c\x00\x01\x00\x01", &[])),
        formerr,
        "pointer in the question"
    );
    assert_eq!(
        parse(&message(
            [1, 0],
            1,
            2,
            QUESTION,
            &[opt(1232, 0, &[]), opt(1232, 0, &[])].concat()
        )),
        formerr,
        "two OPT"
    );
    assert_eq!(
        parse(&message(
            [1, 0],
            1,
            1,
            QUESTION,
            &opt(1232, 0, &[0, 10, 0, 40, 1, 2])
        )),
        formerr,
        "option longer than the OPT"
    );
    assert_eq!(
        parse(&message([1, 0], 1, 1, QUESTION, &opt(1232, 0, &[0, 10, 0]))),
        formerr,
        "option header cut"
    );
    assert_eq!(
        parse(&message([1, 0], 1, 1, QUESTION, &[0, 0, 1, 0])),
        formerr,
        "record cut short"
    );
    let mut two = QUESTION.to_vec();
    two.extend_from_slice(QUESTION);
    assert_eq!(
        parse(&message([1, 0], 2, 0, &two, &[])),
        formerr,
        "two questions"
    );
}

#[test]
fn questions_that_are_not_answered_get_their_rcode_with_the_question() {
    let mut qname = String::new();
    let badvers = message([1, 0], 1, 1, QUESTION, &opt(1232, 0x0001_0000, &[]));
    match Request::parse(&badvers, Transport::Udp, &mut qname) {
        Err(Rejected::Reply {
            rcode: 16,
            question: Some(q),
            edns: Some(_),
            ..
        }) => assert_eq!(q, QUESTION),
        other => panic!("BADVERS expected: {other:?}"),
    }
    let notimp = message([0x11, 0], 1, 0, QUESTION, &[]);
    assert_eq!(
        rcode_of(Request::parse(&notimp, Transport::Udp, &mut qname)),
        Some(4)
    );
    // Class CH reaches the pipeline (chaos answers it); other classes are refused here.
    let mut chaos = QUESTION.to_vec();
    let n = chaos.len();
    chaos[n - 1] = 3;
    let chaos_query = message([1, 0], 1, 0, &chaos, &[]);
    let parsed = Request::parse(&chaos_query, Transport::Udp, &mut qname).expect("CH parses");
    assert_eq!(parsed.qclass, 3);
    let mut hesiod = QUESTION.to_vec();
    hesiod[n - 1] = 4;
    assert_eq!(
        rcode_of(Request::parse(
            &message([1, 0], 1, 0, &hesiod, &[]),
            Transport::Udp,
            &mut qname
        )),
        Some(5)
    );
    // AXFR reaches the pipeline: a block's `transfer` answers it, else the pipeline refuses.
    let mut axfr = QUESTION.to_vec();
    axfr[n - 3] = 252;
    let axfr_query = message([1, 0], 1, 0, &axfr, &[]);
    let parsed = Request::parse(&axfr_query, Transport::Tcp, &mut qname).expect("AXFR parses");
    assert_eq!(parsed.qtype, 252);
}

#[test]
fn the_owned_question_keys_the_cache_and_matches_replies_case_insensitively() {
    let bytes = message([1, 0], 1, 0, QUESTION, &[]);
    let q = WireQuestion::of(&bytes).expect("one question");
    assert_eq!(q.qtype(), 1);
    assert!(q.matches(b"\x01a\x07EXAMPLE\x00\x00\x01\x00\x01"));
    assert!(!q.matches(b"\x01a\x07EXAMPLE\x00\x00\x1c\x00\x01"));
    assert_eq!(&q.cache_key(true, false)[..3], b"\x01a\x07");
    assert_eq!(*q.cache_key(true, true).last().unwrap(), 3);
    let client = Request::parse(&bytes, Transport::Udp, &mut String::new())
        .unwrap()
        .client();
    let servfail = client.error_reply(2);
    assert_eq!(&servfail[..4], &[0x12, 0x34, 0x81, 0x82]);
    assert_eq!(&servfail[12..], QUESTION);
}
