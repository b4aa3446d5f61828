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
