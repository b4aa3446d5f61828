use std::str::FromStr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA, TXT};
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

fn view(q: &WireQuestion, edns: Option<bool>, limit: usize) -> ClientView<'_> {
    ClientView {
        id: 0x1234,
        recursion_desired: true,
        checking_disabled: false,
        edns_dnssec_ok: edns,
        limit,
        question: q,
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
    assert_eq!((r.rcode, r.negative_ttl), (RCODE_NXDOMAIN, Some(120)));
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
fn an_oversized_reply_loses_additionals_then_sets_tc() {
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
    assert!(back.answers.is_empty());
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
