//! Queries this server sends itself: an ExternalName target looked up upstream, the forwarder's
//! health probe (`. NS`) and the loop probe (`HINFO`).

use super::{HEADER_LEN, flag, name, request::Edns};

/// A recursive query (RD set, ID 0: the forwarder gives each attempt its own) for `name`
/// (dotted, no trailing dot needed; `""` is the root) and `qtype`, with our OPT when `edns` is
/// given. `None` when a label is longer than 63 octets.
pub fn build(name: &str, qtype: u16, edns: Option<Edns>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 2 + 4 + super::OPT_LEN);
    out.extend_from_slice(&[0; HEADER_LEN]);
    out[2] = flag::RD;
    out[5] = 1; // QDCOUNT
    if !name::put_labels(&mut out, name) {
        return None;
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&super::CLASS_IN.to_be_bytes());
    if let Some(edns) = edns {
        out[11] = 1; // ARCOUNT
        super::header::put_opt(&mut out, edns, 0);
    }
    Some(out)
}

/// `request` asking `name` (dotted) instead: its header, the new question with its type and
/// class, and its OPT record (the other records of a query are dropped). `None` when the
/// name is no domain name (a label over 63 octets, over 255 in all).
pub fn with_name(request: &super::Request<'_>, name: &str) -> Option<Vec<u8>> {
    with_question(request, request.qtype, request.qclass, |out| {
        let fits = name::put_labels(out, name) && out.len() - HEADER_LEN < super::MAX_NAME_LEN;
        fits.then(|| out.push(0))
    })
}

/// `request` with another question: its header, the question `put_name` writes (the whole
/// wire name; `None` when it cannot) with `qtype` and `qclass`, and its OPT record (the other
/// records of a query are dropped).
pub fn with_question(
    request: &super::Request<'_>,
    qtype: u16,
    qclass: u16,
    put_name: impl FnOnce(&mut Vec<u8>) -> Option<()>,
) -> Option<Vec<u8>> {
    let opt = opt_record(request);
    let mut out = Vec::with_capacity(request.bytes.len() + 64);
    out.extend_from_slice(&request.bytes[..4]);
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(opt.is_some())]);
    put_name(&mut out)?;
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&qclass.to_be_bytes());
    out.extend_from_slice(opt.unwrap_or_default());
    Some(out)
}

/// The OPT record of a parsed request, as it came.
pub fn opt_record<'a>(request: &super::Request<'a>) -> Option<&'a [u8]> {
    let bytes = request.bytes;
    let count = |i: usize| usize::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
    let records = count(6) + count(8) + count(10);
    let mut pos = HEADER_LEN + request.question.len();
    for _ in 0..records {
        let name_end = name::skip(bytes, pos)?;
        let kind = super::read_u16(bytes, name_end)?;
        let end = name_end + 10 + usize::from(super::read_u16(bytes, name_end + 8)?);
        if kind == super::rtype::OPT {
            return bytes.get(pos..end);
        }
        pos = end;
    }
    None
}

/// The health probe every upstream is asked: `. IN NS`.
pub fn health_probe() -> Vec<u8> {
    build("", super::rtype::NS, None).expect("the root fits")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Request, Transport, rtype};

    #[test]
    fn built_queries_parse_as_requests() {
        let q = build(
            "Web.Example",
            rtype::AAAA,
            Some(Edns {
                payload: 0,
                version: 0,
                dnssec_ok: true,
            }),
        )
        .unwrap();
        let mut qname = String::new();
        let r = Request::parse(&q, Transport::Udp, &mut qname).unwrap();
        assert_eq!(qname, "web.example");
        assert_eq!(r.qtype, rtype::AAAA);
        assert!(r.header.recursion_desired);
        let edns = r.edns.expect("OPT");
        assert!(edns.dnssec_ok);
        assert_eq!(edns.payload, 1232);
        assert_eq!(
            health_probe(),
            [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]
        );
        assert_eq!(build(&"x".repeat(64), rtype::A, None), None);
    }
}
