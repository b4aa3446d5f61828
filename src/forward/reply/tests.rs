use std::str::FromStr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn response(qname: &str, rcode: ResponseCode) -> Message {
    let mut m = Message::new(0xbeef, MessageType::Response, OpCode::Query);
    m.metadata.response_code = rcode;
    m.add_query(Query::query(name(qname), RecordType::A));
    m
}

fn soa(ttl: u32, minimum: u32) -> Record {
    Record::from_rdata(
        name("example."),
        ttl,
        RData::SOA(SOA::new(
            name("ns.example."),
            name("hm.example."),
            1,
            2,
            3,
            4,
            minimum,
        )),
    )
}

fn question(qname: &str) -> WireQuestion {
    let mut q = Message::query();
    q.add_query(Query::query(name(qname), RecordType::A));
    WireQuestion::of(&q.to_vec().unwrap()).unwrap()
}

fn view(q: &WireQuestion, edns: Option<bool>, limit: usize) -> Client {
    Client {
        header: crate::dns::Header {
            id: 0x1234,
            opcode: 0,
            recursion_desired: true,
            checking_disabled: false,
        },
        edns: edns.map(|dnssec_ok| crate::dns::Edns {
            payload: 1232,
            version: 0,
            dnssec_ok,
        }),
        limit,
        transport: crate::dns::Transport::Udp,
        question: q.clone(),
    }
}

#[test]
fn min_ttl_and_negative_ttl_are_read_from_the_records() {
    let mut m = response("a.example.", ResponseCode::NoError);
    m.add_answer(Record::from_rdata(
        name("a.example."),
        300,
        RData::A(A([192, 0, 2, 1].into())),
    ));
    m.add_answer(Record::from_rdata(
        name("a.example."),
        60,
        RData::A(A([192, 0, 2, 2].into())),
    ));
    let r = Reply::parse(&m.to_vec().unwrap()).unwrap();
    assert_eq!((r.rcode, r.answer_count, r.min_ttl), (0, 2, Some(60)));
    assert_eq!(r.negative_ttl, None);

    let mut m = response("b.example.", ResponseCode::NXDomain);
    m.add_authority(soa(900, 120));
    let r = Reply::parse(&m.to_vec().unwrap()).unwrap();
    assert_eq!((r.rcode, r.negative_ttl), (rcode::NXDOMAIN, Some(120)));
    let mut m = response("b.example.", ResponseCode::NXDomain);
    m.add_authority(soa(30, 120));
    assert_eq!(
        Reply::parse(&m.to_vec().unwrap()).unwrap().negative_ttl,
        Some(30)
    );
}

#[test]
fn written_for_a_client_it_carries_its_id_spelling_ttl_and_own_opt() {
    let mut m = response("a.example.", ResponseCode::NoError);
    m.add_answer(Record::from_rdata(
        name("a.example."),
        300,
        RData::A(A([192, 0, 2, 1].into())),
    ));
    m.set_edns(Edns::new());
    let r = Reply::parse(&m.to_vec().unwrap()).unwrap();
    let q = question("A.Example.");
    let mut out = Vec::new();
    r.write_for(&view(&q, None, 512), Some(42), &mut out);
    let back = Message::from_vec(&out).unwrap();
    assert_eq!(back.metadata.id, 0x1234);
    assert!(back.edns.is_none(), "no OPT for a client without EDNS");
    assert_eq!(back.answers[0].ttl, 42);
    assert_eq!(&out[12..12 + 11], &q.bytes[..11], "client's spelling");

    r.write_for(&view(&q, Some(true), 1232), None, &mut out);
    let back = Message::from_vec(&out).unwrap();
    assert!(back.edns.as_ref().unwrap().flags().dnssec_ok);
    assert_eq!(back.answers[0].ttl, 300);
}

#[test]
fn an_oversized_reply_keeps_the_answers_that_fit_and_sets_tc() {
    let mut m = response("t.example.", ResponseCode::NoError);
    for i in 0..20 {
        let text = "x".repeat(40);
        m.add_answer(Record::from_rdata(
            name("t.example."),
            60,
            RData::TXT(TXT::new(vec![format!("{i}{text}")])),
        ));
    }
    let r = Reply::parse(&m.to_vec().unwrap()).unwrap();
    let q = question("t.example.");
    let mut out = Vec::new();
    r.write_for(&view(&q, Some(false), 512), None, &mut out);
    assert!(out.len() <= 512);
    let back = Message::from_vec(&out).unwrap();
    assert!(back.metadata.truncation);
    // About 50 bytes each: as many whole answers as fit in 512, not none.
    assert!(
        (7..20).contains(&back.answers.len()),
        "{}",
        back.answers.len()
    );
    assert!(back.edns.is_some());
    r.write_for(&view(&q, None, 65535), None, &mut out);
    assert_eq!(Message::from_vec(&out).unwrap().answers.len(), 20);
}

#[test]
fn a_reply_belongs_only_with_its_id_and_question() {
    let m = response("a.example.", ResponseCode::NoError);
    let bytes = m.to_vec().unwrap();
    assert!(belongs_to(&bytes, 0xbeef, &question("A.EXAMPLE.")));
    assert!(!belongs_to(&bytes, 0xbeee, &question("a.example.")));
    assert!(!belongs_to(&bytes, 0xbeef, &question("b.example.")));
    let mut q = Message::query();
    q.add_query(Query::query(name("a.example."), RecordType::AAAA));
    let aaaa = WireQuestion::of(&q.to_vec().unwrap()).unwrap();
    assert!(!belongs_to(&bytes, 0xbeef, &aaaa));
    // A query (QR=0) is not a reply.
    let mut query = bytes.clone();
    query[2] &= 0x7f;
    assert!(!belongs_to(&query, 0xbeef, &question("a.example.")));
}

#[test]
fn the_cache_key_ignores_case_but_not_type_or_bits() {
    let a = question("WWW.example.").cache_key(false, false);
    assert_eq!(a, question("www.EXAMPLE.").cache_key(false, false));
    assert_ne!(a, question("www.example.").cache_key(true, false));
    assert_ne!(a, question("www.example.").cache_key(false, true));
}

#[test]
fn malformed_replies_are_refused() {
    assert_eq!(Reply::parse(&[0; 5]).unwrap_err(), ReplyError::Malformed);
    let mut m = response("a.example.", ResponseCode::NoError);
    m.add_answer(Record::from_rdata(
        name("a.example."),
        1,
        RData::A(A([192, 0, 2, 1].into())),
    ));
    let bytes = m.to_vec().unwrap();
    assert_eq!(
        Reply::parse(&bytes[..bytes.len() - 2]).unwrap_err(),
        ReplyError::Malformed
    );
}

/// Found by the `upstream_reply` fuzz target (fuzz/regressions/upstream_reply/): an answer
/// whose owner is a pointer to offset 0. Hickory reads the ID bytes 00 00 as a label and the
/// root; re-served with the client's ID (a5 c3) the name no longer parsed. Names must not read
/// the bytes a client's copy changes: the header, and TTL fields.
#[test]
fn names_that_read_the_header_or_a_ttl_field_are_refused() {
    let header = |an: u8| [0, 0, 0x81, 0x80, 0, 1, 0, an, 0, 0, 0, 0];
    // Question: the root, type 300, class 40. Answer: owner c0 00 (into the ID).
    let mut into_header = header(1).to_vec();
    into_header.extend_from_slice(&[0, 1, 44, 0, 40]);
    into_header.extend_from_slice(&[0xc0, 0, 2, 1, 0, 1, 0, 0, 0, 30, 0, 4, 0, 0, 10, 0]);
    assert!(Message::from_vec(&into_header).is_ok(), "hickory reads it");
    assert_eq!(
        Reply::parse(&into_header).unwrap_err(),
        ReplyError::Malformed
    );

    // Question a.example. A; answer 1 an A record whose TTL bytes 01 61 00 00 read as "a.";
    // answer 2 a CNAME whose target points there: re-served with another TTL it would change.
    let mut into_ttl = header(2).to_vec();
    into_ttl.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
    let ttl_offset = into_ttl.len() + 6;
    into_ttl.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 1, b'a', 0, 0, 0, 4, 192, 0, 2, 1]);
    into_ttl.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 9, 0, 2, 0xc0]);
    into_ttl.push(ttl_offset as u8);
    assert!(Message::from_vec(&into_ttl).is_ok(), "hickory reads it");
    assert_eq!(Reply::parse(&into_ttl).unwrap_err(), ReplyError::Malformed);

    // A pointer to itself or forward is no prior occurrence.
    let mut to_itself = header(1).to_vec();
    to_itself.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
    let at = to_itself.len() as u8;
    to_itself.extend_from_slice(&[0xc0, at, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 192, 0, 2, 1]);
    assert_eq!(Reply::parse(&to_itself).unwrap_err(), ReplyError::Malformed);
}

#[test]
fn names_compressed_against_earlier_names_are_kept_and_re_served_intact() {
    let mut m = response("www.example.", ResponseCode::NoError);
    m.add_answer(Record::from_rdata(
        name("www.example."),
        60,
        RData::CNAME(hickory_proto::rr::rdata::CNAME(name("web.www.example."))),
    ));
    m.add_answer(Record::from_rdata(
        name("web.www.example."),
        60,
        RData::A(A([192, 0, 2, 7].into())),
    ));
    m.add_authority(soa(60, 30));
    let bytes = m.to_vec().unwrap();
    assert!(
        bytes.windows(2).filter(|w| w[0] & 0xc0 == 0xc0).count() >= 3,
        "hickory compresses owners and rdata names"
    );
    let reply = Reply::parse(&bytes).unwrap();
    let q = question("WWW.example.");
    let mut out = Vec::new();
    reply.write_for(&view(&q, Some(true), 512), Some(7), &mut out);
    let served = Message::from_vec(&out).unwrap();
    assert_eq!(served.answers.len(), 2);
    assert_eq!(served.answers[0].data, m.answers[0].data);
    assert_eq!(served.answers[1].name, name("web.www.example."));
    assert_eq!(served.authorities[0].data, m.authorities[0].data);
    assert!(served.answers.iter().all(|r| r.ttl == 7));
}

#[test]
fn glue_and_authority_go_before_answers_and_without_tc() {
    let mut m = response("t.example.", ResponseCode::NoError);
    for i in 0..4 {
        m.add_answer(Record::from_rdata(
            name("t.example."),
            60,
            RData::A(A::new(10, 0, 0, i)),
        ));
    }
    m.add_authority(soa(60, 60));
    for i in 0..30 {
        m.add_additional(Record::from_rdata(
            name(&format!("glue{i}.example.")),
            60,
            RData::TXT(TXT::new(vec!["y".repeat(30)])),
        ));
    }
    let r = Reply::parse(&m.to_vec().unwrap()).unwrap();
    let q = question("t.example.");
    let mut out = Vec::new();
    // Room for the answers, the SOA and some of the additional records.
    r.write_for(&view(&q, None, 900), None, &mut out);
    let back = Message::from_vec(&out).unwrap();
    assert!(out.len() <= 900);
    assert!(!back.metadata.truncation, "glue is optional");
    assert_eq!((back.answers.len(), back.authorities.len()), (4, 1));
    assert!(
        (1..30).contains(&back.additionals.len()),
        "{}",
        back.additionals.len()
    );
    // An authority section too large for the room: it goes, the answers stay, still no TC.
    for i in 0..20 {
        m.add_authority(Record::from_rdata(
            name("example."),
            60,
            RData::NS(NS(name(&format!("ns{i}.{}.example.", "z".repeat(30))))),
        ));
    }
    let r = Reply::parse(&m.to_vec().unwrap()).unwrap();
    r.write_for(&view(&q, None, 512), None, &mut out);
    let back = Message::from_vec(&out).unwrap();
    assert!(out.len() <= 512);
    assert_eq!(back.answers.len(), 4);
    assert!(back.authorities.is_empty() && back.additionals.is_empty());
    assert!(!back.metadata.truncation);
}
