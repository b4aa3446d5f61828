//! `minimal`: positive answers lose their authority and additional sections, as CoreDNS 1.11's
//! `minimal` (which classifies responses as its `response.Typify`): a NOERROR response with
//! answer records, or without records and with neither SOA nor NS in its authority section,
//! keeps only its answers. Left as they are: NXDOMAIN, NODATA (SOA in authority), delegations
//! (NS in authority, no answers) and every error.
//!
//! It sits after `cache` in plugin.cfg, so it sees whatever the later stages answer: records
//! (cluster SRV glue, `whoami`'s additionals) before they are written ([`records`]), cache hits
//! and upstream replies as bytes ([`strip`]). The OPT record stays (CoreDNS drops the answer's
//! OPT and puts back the client's).

use std::ops::Range;

use super::Records;
use crate::dns::{HEADER_LEN, name, rcode, read_u16, read_u32, rtype};
use crate::zone::AnswerBuf;

/// Applies `minimal` to records about to be written.
pub fn records(records: &mut Records, answer: &mut AnswerBuf) {
    let positive = !answer.answers.is_empty() || records.soa.is_none();
    if records.rcode == u16::from(rcode::NOERROR) && positive {
        records.soa = None;
        answer.additionals.clear();
    }
}

/// Applies `minimal` to encoded sections (`file`, `template`): a positive answer keeps its
/// answer records only.
pub fn sections(rcode: u16, counts: &mut [u16; 3], work: &mut super::Work) {
    if rcode != u16::from(rcode::NOERROR) || counts[0] == 0 {
        return;
    }
    let answers = usize::from(counts[0]);
    counts[1] = 0;
    counts[2] = 0;
    work.template.ends.truncate(answers);
    if let Some(&end) = work.template.ends.last() {
        work.encoded.truncate(end);
    }
}

/// Applies `minimal` to a whole response: cut after the answer section, OPT kept.
pub fn strip(message: &mut Vec<u8>) {
    let Some((answers_end, opt)) = cut(message) else {
        return;
    };
    let opt_bytes = opt.map(|range| message[range].to_vec());
    message.truncate(answers_end);
    let additional = match opt_bytes {
        Some(opt) => {
            message.extend_from_slice(&opt);
            1u16
        }
        None => 0,
    };
    message[8..10].copy_from_slice(&0u16.to_be_bytes());
    message[10..12].copy_from_slice(&additional.to_be_bytes());
}

/// Where the answer section ends and where the OPT record is, when `message` is a response
/// `minimal` strips and has something to strip.
fn cut(message: &[u8]) -> Option<(usize, Option<Range<usize>>)> {
    let count = |at| read_u16(message, at).map(usize::from);
    let (qd, an, ns, ar) = (count(4)?, count(6)?, count(8)?, count(10)?);
    if message[3] & 0x0f != rcode::NOERROR || ns + ar == 0 {
        return None;
    }
    let mut pos = HEADER_LEN;
    for _ in 0..qd {
        pos = name::skip(message, pos)? + 4;
    }
    for _ in 0..an {
        pos = record(message, pos)?.1;
    }
    let answers_end = pos;
    let (mut soa, mut delegation) = (false, false);
    for _ in 0..ns {
        let (rr_type, end) = record(message, pos)?;
        soa |= rr_type == rtype::SOA;
        delegation |= rr_type == rtype::NS;
        pos = end;
    }
    if an == 0 && (soa || delegation) {
        return None;
    }
    let mut opt = None;
    for _ in 0..ar {
        let (rr_type, end) = record(message, pos)?;
        if rr_type == rtype::OPT {
            // An extended rcode makes it an error, not NOERROR.
            let name_end = name::skip(message, pos)?;
            if read_u32(message, name_end + 4)? >> 24 != 0 {
                return None;
            }
            opt = Some(pos..end);
        }
        pos = end;
    }
    Some((answers_end, opt))
}

/// The type of the record at `pos` and where it ends.
fn record(message: &[u8], pos: usize) -> Option<(u16, usize)> {
    let name_end = name::skip(message, pos)?;
    let rr_type = read_u16(message, name_end)?;
    let rdlen = usize::from(read_u16(message, name_end + 8)?);
    let end = name_end + 10 + rdlen;
    (end <= message.len()).then_some((rr_type, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
    use hickory_proto::rr::rdata::{A, NS, SOA};
    use hickory_proto::rr::{Name, RData, Record};

    fn rr(name: &str, data: RData) -> Record {
        Record::from_rdata(Name::from_ascii(name).unwrap(), 30, data)
    }

    fn a() -> RData {
        RData::A(A::new(192, 0, 2, 1))
    }

    fn ns() -> RData {
        RData::NS(NS(Name::from_ascii("ns.example.org.").unwrap()))
    }

    fn soa() -> RData {
        let n = Name::from_ascii("example.org.").unwrap();
        RData::SOA(SOA::new(n.clone(), n, 1, 2, 3, 4, 5))
    }

    /// A response with these sections (and an OPT), through `strip`: the section counts after.
    fn stripped(code: ResponseCode, answers: &[RData], authority: &[RData]) -> [u16; 4] {
        let mut m = Message::new(7, MessageType::Response, hickory_proto::op::OpCode::Query);
        m.metadata.response_code = code;
        m.add_query(hickory_proto::op::Query::query(
            Name::from_ascii("www.example.org.").unwrap(),
            hickory_proto::rr::RecordType::A,
        ));
        for data in answers {
            m.add_answer(rr("www.example.org.", data.clone()));
        }
        for data in authority {
            m.add_authority(rr("example.org.", data.clone()));
        }
        m.add_additional(rr("ns.example.org.", a()));
        m.set_edns(Edns::new());
        let mut bytes = m.to_vec().unwrap();
        strip(&mut bytes);
        let back = Message::from_vec(&bytes).expect("still a message");
        assert!(back.edns.is_some(), "the OPT record stays");
        let count = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        [count(4), count(6), count(8), count(10)]
    }

    /// What a response is, its rcode, answers and authority, and its counts after `strip`.
    type Case<'a> = (&'a str, ResponseCode, &'a [RData], &'a [RData], [u16; 4]);

    /// The response kinds of CoreDNS's `response.Typify`, and what `minimal` does to each.
    #[test]
    fn only_positive_answers_are_stripped() {
        use ResponseCode::*;
        let cases: &[Case] = &[
            ("answer", NoError, &[a()], &[ns()], [1, 1, 0, 1]),
            ("answer with SOA", NoError, &[a()], &[soa()], [1, 1, 0, 1]),
            ("empty, no SOA", NoError, &[], &[], [1, 0, 0, 1]),
            ("NODATA", NoError, &[], &[soa()], [1, 0, 1, 2]),
            ("delegation", NoError, &[], &[ns()], [1, 0, 1, 2]),
            ("NXDOMAIN", NXDomain, &[], &[soa()], [1, 0, 1, 2]),
            ("SERVFAIL", ServFail, &[a()], &[], [1, 1, 0, 2]),
        ];
        for (what, code, answers, authority, want) in cases {
            assert_eq!(stripped(*code, answers, authority), *want, "{what}");
        }
    }

    #[test]
    fn records_lose_glue_and_soa_only_when_positive() {
        use crate::zone::{Owner, Rr, SoaValues};
        let glue = Rr {
            owner: Owner::Query,
            ttl: 5,
            data: crate::zone::Rdata::A(std::net::Ipv4Addr::LOCALHOST),
        };
        let soa = SoaValues {
            ttl: 5,
            serial: 1,
            minimum: 5,
            apex: None,
        };
        let run = |rcode: u8, answers: usize, soa: Option<SoaValues>| {
            let mut buf = AnswerBuf::default();
            buf.answers.extend((0..answers).map(|_| glue.clone()));
            buf.additionals.push(glue.clone());
            let mut r = Records {
                rcode: u16::from(rcode),
                zone_labels: 0,
                soa,
            };
            records(&mut r, &mut buf);
            (buf.additionals.len(), r.soa.is_some())
        };
        assert_eq!(run(rcode::NOERROR, 1, Some(soa)), (0, false), "positive");
        assert_eq!(run(rcode::NOERROR, 0, None), (0, false), "empty (whoami)");
        assert_eq!(run(rcode::NOERROR, 0, Some(soa)), (1, true), "NODATA");
        assert_eq!(run(rcode::NXDOMAIN, 0, Some(soa)), (1, true), "NXDOMAIN");
    }
}
