//! `any`: a query of type ANY gets one HINFO record instead of everything the name has
//! (RFC 8482 §4.2), as CoreDNS's `any`: `"ANY obsoleted" "See RFC 8482"`, TTL 8482, class IN,
//! owned by the question's name as the client spelled it; NOERROR, not authoritative. Any class
//! and any name: it answers before the zones are looked at.

use super::{Flow, Work};
use crate::dns::{CLASS_IN, HEADER_LEN, Request, rcode, rtype};

/// The HINFO's TTL and strings, as CoreDNS writes them.
const TTL: u32 = 8482;
const CPU: &str = "ANY obsoleted";
const OS: &str = "See RFC 8482";

pub fn handle(request: &Request<'_>, work: &mut Work) -> Flow {
    if request.qtype != rtype::ANY {
        return Flow::Next;
    }
    let out = &mut work.encoded;
    out.clear();
    put_hinfo(out);
    Flow::Encoded {
        rcode: u16::from(rcode::NOERROR),
        answers: 1,
    }
}

/// The HINFO record, its owner a pointer to the question's name.
fn put_hinfo(out: &mut Vec<u8>) {
    out.extend_from_slice(&(0xC000 | HEADER_LEN as u16).to_be_bytes());
    out.extend_from_slice(&rtype::HINFO.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&TTL.to_be_bytes());
    let rdlen = 2 + CPU.len() + OS.len();
    out.extend_from_slice(&(rdlen as u16).to_be_bytes());
    for text in [CPU, OS] {
        out.push(text.len() as u8);
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hinfo_record_is_as_coredns_writes_it() {
        let mut out = Vec::new();
        super::put_hinfo(&mut out);
        let mut want = vec![0xC0, 12, 0, 13, 0, 1, 0, 0, 0x21, 0x22, 0, 27, 13];
        want.extend_from_slice(b"ANY obsoleted");
        want.push(12);
        want.extend_from_slice(b"See RFC 8482");
        assert_eq!(out, want);
    }
}
