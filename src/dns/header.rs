//! The header and the OPT record as every response writes them, and bare replies: a header,
//! the question and an OPT, no records (error rcodes, slipped replies).

use super::request::{Edns, Header};
use super::{ADVERTISED_UDP_PAYLOAD, HEADER_LEN, flag, rtype};

/// The header flags a response carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub id: u16,
    pub opcode: u8,
    pub authoritative: bool,
    pub truncated: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    pub checking_disabled: bool,
    /// The full (possibly extended) rcode; bits above 4 go in the OPT record.
    pub rcode: u16,
}

impl Flags {
    /// A response's flags echoing the request's ID, opcode, RD and CD.
    pub fn reply_to(header: &Header, rcode: u16) -> Flags {
        Flags {
            id: header.id,
            opcode: header.opcode,
            recursion_desired: header.recursion_desired,
            checking_disabled: header.checking_disabled,
            rcode,
            ..Flags::default()
        }
    }
}

/// Writes the 12 header bytes into `out[..12]`; `counts` are QD, AN, NS, AR.
#[inline]
pub fn put_header(out: &mut [u8], flags: &Flags, counts: [usize; 4]) {
    let mut b2 = flag::QR | ((flags.opcode & 0x0f) << 3);
    for (set, bit) in [
        (flags.authoritative, flag::AA),
        (flags.truncated, flag::TC),
        (flags.recursion_desired, flag::RD),
    ] {
        if set {
            b2 |= bit;
        }
    }
    let mut b3 = (flags.rcode & 0x0f) as u8;
    if flags.recursion_available {
        b3 |= flag::RA;
    }
    if flags.checking_disabled {
        b3 |= flag::CD;
    }
    out[0..2].copy_from_slice(&flags.id.to_be_bytes());
    out[2] = b2;
    out[3] = b3;
    for (i, count) in counts.into_iter().enumerate() {
        out[4 + 2 * i..6 + 2 * i].copy_from_slice(&(count as u16).to_be_bytes());
    }
}

/// Appends our OPT record: payload 1232, the extended rcode bits, version 0, the client's DO.
pub fn put_opt(out: &mut Vec<u8>, edns: Edns, rcode: u16) {
    out.push(0); // root owner
    out.extend_from_slice(&rtype::OPT.to_be_bytes());
    out.extend_from_slice(&ADVERTISED_UDP_PAYLOAD.to_be_bytes());
    out.push((rcode >> 4) as u8); // extended rcode
    out.push(0); // version
    out.push(if edns.dnssec_ok { flag::DO } else { 0 });
    out.push(0);
    out.extend_from_slice(&[0, 0]); // no options
}

/// A reply with no records into `out`: the header, the question (wire bytes: name, type,
/// class) when there is one, and an OPT when the client sent EDNS.
pub fn bare_reply(out: &mut Vec<u8>, flags: Flags, question: Option<&[u8]>, edns: Option<Edns>) {
    out.clear();
    out.extend_from_slice(&[0; HEADER_LEN]);
    if let Some(q) = question {
        out.extend_from_slice(q);
    }
    if let Some(edns) = edns {
        put_opt(out, edns, flags.rcode);
    }
    let counts = [
        usize::from(question.is_some()),
        0,
        0,
        usize::from(edns.is_some()),
    ];
    put_header(out, &flags, counts);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::rcode;

    #[test]
    fn a_bare_reply_echoes_id_flags_and_question_and_carries_the_extended_rcode() {
        let flags = Flags {
            id: 0xabcd,
            opcode: 2,
            truncated: true,
            recursion_desired: true,
            checking_disabled: true,
            rcode: rcode::BADVERS,
            ..Flags::default()
        };
        let question = b"\x01a\x00\x00\x01\x00\x01";
        let edns = Edns {
            payload: 4096,
            version: 1,
            dnssec_ok: true,
        };
        let mut out = Vec::new();
        bare_reply(&mut out, flags, Some(question), Some(edns));
        assert_eq!(
            &out[..4],
            &[0xab, 0xcd, 0x80 | (2 << 3) | 0x02 | 0x01, 0x10]
        );
        assert_eq!(&out[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&out[12..19], question);
        // OPT: root, type 41, 1232, ext-rcode 1 (16 >> 4), version 0, DO.
        assert_eq!(&out[19..], &[0, 0, 41, 0x04, 0xd0, 1, 0, 0x80, 0, 0, 0]);
        bare_reply(&mut out, Flags::default(), None, None);
        assert_eq!(out, [0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
