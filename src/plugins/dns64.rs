//! `dns64`: AAAA records synthesized from A records (RFC 6147), as CoreDNS 1.11's `dns64`
//! plugin makes them.
//!
//! An AAAA question of class IN from an IPv6 client (any client with `allow_ipv4`) is answered
//! by the stages after this one. When that answer has no AAAA record (or always, with
//! `translate_all`) and is not NXDOMAIN, the same name is asked for A through the whole block
//! again — as CoreDNS asks its own server — and the A answer becomes the client's: each A
//! record an AAAA inside the prefix (RFC 6052), with the TTL of the A record capped by the
//! SOA's of the AAAA answer (600 without one); other records, authority and additional as the
//! A answer has them ([`synthesize`]).
//!
//! The two lookups are [`crate::server::handler`]'s: it resumes the pipeline after this stage
//! for the AAAA answer and asks the A question from the first stage, waiting for upstreams in
//! a task when it must.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::AAAA;
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::Flow;
use crate::config::dns64::Dns64Config;
use crate::dns::{CLASS_IN, Client, Request, rcode, rtype};

/// The TTL cap when the AAAA answer carries no SOA (RFC 6147 §5.1.7).
pub const DEFAULT_SOA_TTL: u32 = 600;

/// The stage.
#[derive(Debug, Clone, Copy)]
pub struct Dns64 {
    /// The prefix's leading octets (the rest zero).
    prefix: [u8; 16],
    /// 32, 40, 48, 56, 64 or 96.
    prefix_len: u8,
    translate_all: bool,
    allow_ipv4: bool,
}

/// An AAAA question to translate: the stages from `resume` on answer it first.
#[derive(Debug, Clone, Copy)]
pub struct Translate {
    /// The index of the stage after `dns64`.
    pub resume: usize,
    pub dns64: Dns64,
}

impl Dns64 {
    pub fn new(config: &Dns64Config) -> Dns64 {
        Dns64 {
            prefix: config.prefix.octets(),
            prefix_len: config.prefix_len,
            translate_all: config.translate_all,
            allow_ipv4: config.allow_ipv4,
        }
    }

    pub fn handle(&self, request: &Request<'_>) -> Flow {
        if self.intercepts(request) {
            Flow::Dns64(Box::new(Translate {
                resume: 0,
                dns64: *self,
            }))
        } else {
            Flow::Next
        }
    }

    /// AAAA of class IN, from IPv6 unless `allow_ipv4` (an IPv4-mapped source is IPv4, as
    /// Go reads it).
    fn intercepts(&self, request: &Request<'_>) -> bool {
        request.qtype == rtype::AAAA
            && request.qclass == CLASS_IN
            && (self.allow_ipv4 || !request.peer.ip().to_canonical().is_ipv4())
    }

    /// Whether the AAAA answer is to be replaced by the A answer's synthesis: not NXDOMAIN
    /// (RFC 6147 §5.1.2), and without AAAA records unless `translate_all`. Any other rcode
    /// counts as an empty answer (§5.1.3).
    pub fn wants_a(&self, aaaa_answer: &[u8]) -> bool {
        let Ok(message) = Message::from_vec(aaaa_answer) else {
            return false;
        };
        if message.metadata.response_code == ResponseCode::NXDomain {
            return false;
        }
        self.translate_all
            || !message
                .answers
                .iter()
                .any(|r| r.record_type() == RecordType::AAAA)
    }

    /// The A record's address inside the prefix (RFC 6052 §2.2): the prefix's octets, then
    /// the IPv4 octets, skipping octet 8 (the u-octet, zero); the rest zero.
    pub fn embed(&self, v4: Ipv4Addr) -> Ipv6Addr {
        let mut out = [0u8; 16];
        let n = usize::from(self.prefix_len / 8);
        out[..n].copy_from_slice(&self.prefix[..n]);
        let mut at = n;
        for octet in v4.octets() {
            if at == 8 {
                at += 1;
            }
            out[at] = octet;
            at += 1;
        }
        Ipv6Addr::from(out)
    }
}

/// The client's answer made of the A answer (CoreDNS's synthesis): the client's ID, question,
/// RD and CD; NOERROR, not authoritative, TC as the A answer's; the A answer's records with
/// each A an AAAA (TTL capped by the AAAA answer's SOA TTL, [`DEFAULT_SOA_TTL`] without one).
/// `None` when the A answer is an error (not NOERROR): the AAAA answer then stands (CoreDNS
/// makes it an empty NOERROR) — or when a message cannot be read.
pub fn synthesize(
    dns64: &Dns64,
    client: &Client,
    aaaa_answer: &[u8],
    a_answer: &[u8],
    recursion_available: bool,
) -> Option<Vec<u8>> {
    let aaaa = Message::from_vec(aaaa_answer).ok()?;
    let a = Message::from_vec(a_answer).ok()?;
    if a.metadata.response_code != ResponseCode::NoError {
        return None;
    }
    let soa_ttl = aaaa
        .authorities
        .iter()
        .rev()
        .find(|r| r.record_type() == RecordType::SOA)
        .map_or(DEFAULT_SOA_TTL, |r| r.ttl);
    let query = Query::read(&mut BinDecoder::new(&client.question.bytes)).ok()?;
    let mut out = Message::from_vec(&a_header(
        client,
        a.metadata.truncation,
        recursion_available,
    ))
    .ok()?;
    out.queries = vec![query];
    out.answers = a
        .answers
        .into_iter()
        .map(|r| translated(dns64, r, soa_ttl))
        .collect();
    out.authorities = a.authorities;
    out.additionals = a.additionals;
    out.edns = a.edns;
    super::encode_within(out, client.limit)
}

/// A bare header for the reply (the records are set on the decoded message).
fn a_header(client: &Client, truncated: bool, recursion_available: bool) -> Vec<u8> {
    let flags = crate::dns::Flags {
        truncated,
        authoritative: false,
        recursion_available,
        ..crate::dns::Flags::reply_to(&client.header, u16::from(rcode::NOERROR))
    };
    let mut out = Vec::new();
    crate::dns::header::bare_reply(&mut out, flags, None, None);
    out
}

/// An A record as an AAAA record in the prefix; any other record as it is.
fn translated(dns64: &Dns64, record: Record, soa_ttl: u32) -> Record {
    let RData::A(a) = &record.data else {
        return record;
    };
    let mut aaaa = Record::from_rdata(
        record.name.clone(),
        record.ttl.min(soa_ttl),
        RData::AAAA(AAAA(dns64.embed(a.0))),
    );
    aaaa.dns_class = record.dns_class;
    aaaa
}

#[cfg(test)]
mod tests;
