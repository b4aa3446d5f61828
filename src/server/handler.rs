//! Routes one request: validate, pick the server block by zone, ask the cluster zone, write the
//! response. A malformed message is an rcode (FORMERR, NOTIMP, REFUSED, BADVERS) or a silent
//! drop, never an error value and never a panic.

use std::sync::Arc;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::{DNSClass, RecordType};

use super::resolve::{self, CacheResult, Chase, Client, Pending, Resolver};
use super::wire::{Edns, Flags, MessageWriter, Question, Sections};
use crate::forward::reply::WireQuestion;
use crate::forward::{LoopProbes, Protocol};
use crate::zone::{self, AnswerBuf, ClusterZone, Outcome, Rcode, Rdata, Rr, Suffix};

const RCODE_NOERROR: u16 = 0;
const RCODE_FORMERR: u16 = 1;
const RCODE_SERVFAIL: u16 = 2;
const RCODE_NXDOMAIN: u16 = 3;
const RCODE_NOTIMP: u16 = 4;
const RCODE_REFUSED: u16 = 5;
const RCODE_BADVERS: u16 = 16;
/// Messages over TCP are limited by their 16-bit length prefix.
pub const TCP_MAX_MESSAGE: usize = 65535;
/// The classic UDP limit without EDNS.
pub const UDP_MIN_PAYLOAD: usize = 512;

/// One `[[server]]` block as the query path sees it.
#[derive(Debug, Clone)]
pub struct Block {
    /// Zones the block serves (lower-case, no trailing dot; `""` is the root).
    pub zones: Vec<String>,
    pub cluster: Option<ClusterZone>,
    /// Cache and forwarder for names the cluster zone does not answer (RA is set when present).
    pub resolver: Option<Arc<Resolver>>,
}

/// The blocks sharing one listen address.
#[derive(Debug, Clone)]
pub struct Router {
    blocks: Arc<[Block]>,
    loops: Arc<LoopProbes>,
}

/// What became of a request.
pub enum Handled<'s> {
    Reply(&'s [u8]),
    /// Nothing is sent (not a query, or too short to answer).
    Drop,
    /// The answer needs an upstream: resolve it off the receive loop.
    Pending(Box<Pending>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Per-task scratch space, reused across queries.
#[derive(Debug, Default)]
pub struct Scratch {
    answer: AnswerBuf,
    writer: MessageWriter,
    qname: String,
}

impl Router {
    pub fn new(blocks: Vec<Block>, loops: Arc<LoopProbes>) -> Self {
        Router {
            blocks: blocks.into(),
            loops,
        }
    }

    /// Handles one request. Returns the response bytes, or `None` to send nothing.
    pub fn handle<'s>(
        &self,
        request: &[u8],
        transport: Transport,
        scratch: &'s mut Scratch,
    ) -> Handled<'s> {
        // Without a whole header there is nobody to answer; a response (QR=1) is never
        // answered, so two servers cannot bounce messages at each other.
        if request.len() < 12 || request[2] & 0x80 != 0 {
            return Handled::Drop;
        }
        let id = u16::from_be_bytes([request[0], request[1]]);
        let opcode = (request[2] >> 3) & 0x0f;
        let mut flags = Flags {
            id,
            opcode,
            recursion_desired: request[2] & 0x01 != 0,
            checking_disabled: request[3] & 0x10 != 0,
            ..Flags::default()
        };
        let no_sections = Sections {
            answers: &[],
            soa: None,
            zone_labels: 0,
            additionals: &[],
        };
        let message = match Message::from_vec(request) {
            Ok(m) if m.metadata.message_type == MessageType::Query => m,
            Ok(_) => return Handled::Drop,
            Err(e) => {
                tracing::debug!(error = %e, "malformed request");
                flags.rcode = RCODE_FORMERR;
                return Handled::Reply(scratch.writer.write(
                    flags,
                    None,
                    &no_sections,
                    None,
                    UDP_MIN_PAYLOAD,
                ));
            }
        };
        let edns = message.edns.as_ref().map(|e| Edns {
            dnssec_ok: e.flags().dnssec_ok,
        });
        let limit = match transport {
            Transport::Tcp => TCP_MAX_MESSAGE,
            Transport::Udp => message.edns.as_ref().map_or(UDP_MIN_PAYLOAD, |e| {
                usize::from(e.max_payload()).max(UDP_MIN_PAYLOAD)
            }),
        };
        let query = match message.queries.as_slice() {
            [q] => q,
            _ => {
                flags.rcode = if opcode == 0 {
                    RCODE_FORMERR
                } else {
                    RCODE_NOTIMP
                };
                return Handled::Reply(scratch.writer.write(
                    flags,
                    None,
                    &no_sections,
                    edns,
                    limit,
                ));
            }
        };
        let question = Question {
            name: query.name(),
            qtype: u16::from(query.query_type()),
            qclass: u16::from(query.query_class()),
        };
        if message.edns.as_ref().is_some_and(|e| e.version() > 0) {
            flags.rcode = RCODE_BADVERS;
            return Handled::Reply(scratch.writer.write(
                flags,
                Some(&question),
                &no_sections,
                edns,
                limit,
            ));
        }
        if opcode != 0 {
            flags.rcode = RCODE_NOTIMP;
            return Handled::Reply(scratch.writer.write(
                flags,
                Some(&question),
                &no_sections,
                edns,
                limit,
            ));
        }
        let qtype = query.query_type();
        if query.query_class() != DNSClass::IN
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
        {
            flags.rcode = RCODE_REFUSED;
            return Handled::Reply(scratch.writer.write(
                flags,
                Some(&question),
                &no_sections,
                edns,
                limit,
            ));
        }

        lower_name(query.name(), &mut scratch.qname);
        if qtype == RecordType::HINFO && self.loops.is_probe(&scratch.qname) {
            // Our own loop probe came back: answer it so it stops going round.
            flags.rcode = RCODE_NXDOMAIN;
            return Handled::Reply(scratch.writer.write(
                flags,
                Some(&question),
                &no_sections,
                edns,
                limit,
            ));
        }
        let Some(block) = self.block_for(&scratch.qname) else {
            flags.rcode = RCODE_REFUSED;
            return Handled::Reply(scratch.writer.write(
                flags,
                Some(&question),
                &no_sections,
                edns,
                limit,
            ));
        };
        flags.recursion_available = block.resolver.is_some();
        let outcome = match &block.cluster {
            Some(cluster) => zone::lookup(cluster, &scratch.qname, qtype, &mut scratch.answer),
            None => Outcome::NotOurs,
        };
        let client = || Client {
            id,
            recursion_desired: flags.recursion_desired,
            checking_disabled: flags.checking_disabled,
            edns_dnssec_ok: edns.map(|e| e.dnssec_ok),
            limit,
            protocol: match transport {
                Transport::Udp => Protocol::Udp,
                Transport::Tcp => Protocol::Tcp,
            },
            question: WireQuestion::of(request).unwrap_or(WireQuestion { bytes: Vec::new() }),
        };
        match outcome {
            Outcome::Answer {
                rcode,
                zone_labels,
                soa,
            } => {
                flags.authoritative = true;
                flags.rcode = match rcode {
                    Rcode::NoError => RCODE_NOERROR,
                    Rcode::NxDomain => RCODE_NXDOMAIN,
                    Rcode::ServFail => RCODE_SERVFAIL,
                };
                let sections = Sections {
                    answers: &scratch.answer.answers,
                    soa,
                    zone_labels,
                    additionals: &scratch.answer.additionals,
                };
                let chase_target = match scratch.answer.answers.last() {
                    Some(Rr {
                        data: Rdata::Cname(target),
                        ..
                    }) if matches!(target.suffix, Suffix::Root)
                        && !matches!(qtype, RecordType::CNAME | RecordType::ANY) =>
                    {
                        Some(target.labels.to_ascii_lowercase())
                    }
                    _ => None,
                };
                let response = scratch
                    .writer
                    .write(flags, Some(&question), &sections, edns, limit);
                let resolver = chase_target.as_ref().and_then(|t| {
                    self.block_for(t)
                        .and_then(|b| b.resolver.clone())
                        .filter(|r| r.forwarder.forwards(t))
                });
                match (chase_target, resolver) {
                    (Some(target), Some(resolver)) => Handled::Pending(Box::new(Pending {
                        resolver,
                        request: Vec::new(),
                        client: client(),
                        stale: None,
                        chase: Some(Chase {
                            response: response.to_vec(),
                            target,
                            qtype: u16::from(qtype),
                        }),
                    })),
                    _ => Handled::Reply(response),
                }
            }
            Outcome::NotOurs | Outcome::FallThrough => match &block.resolver {
                Some(resolver) if resolver.forwarder.forwards(&scratch.qname) => {
                    let client = client();
                    if client.question.bytes.is_empty() {
                        flags.rcode = RCODE_FORMERR;
                        return Handled::Reply(scratch.writer.write(
                            flags,
                            None,
                            &no_sections,
                            edns,
                            limit,
                        ));
                    }
                    let out = &mut scratch.writer.buf;
                    match resolve::from_cache(resolver, &client, request, out) {
                        CacheResult::Hit => Handled::Reply(out),
                        CacheResult::Miss(stale) => Handled::Pending(Box::new(Pending {
                            resolver: resolver.clone(),
                            request: request.to_vec(),
                            client,
                            stale,
                            chase: None,
                        })),
                    }
                }
                // No forwarder, or an `except` zone: nobody here answers this name.
                _ => {
                    flags.rcode = RCODE_REFUSED;
                    Handled::Reply(scratch.writer.write(
                        flags,
                        Some(&question),
                        &no_sections,
                        edns,
                        limit,
                    ))
                }
            },
        }
    }

    /// The block whose zones match the name most specifically.
    fn block_for(&self, qname: &str) -> Option<&Block> {
        self.blocks
            .iter()
            .filter_map(|b| {
                b.zones
                    .iter()
                    .filter(|z| zone::lookup::in_zone(qname, z))
                    .map(String::len)
                    .max()
                    .map(|len| (len, b))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, b)| b)
    }
}

/// The name in lower case, dotted, without the trailing dot. Bytes that cannot occur in a
/// cluster name (a dot inside a label, non-ASCII, control characters) become `?`, so such a
/// name still finds its zone but matches no object.
fn lower_name(name: &hickory_proto::rr::Name, out: &mut String) {
    out.clear();
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        for b in label {
            let c = match *b {
                b'.' => '?',
                b if b.is_ascii_graphic() => b.to_ascii_lowercase() as char,
                _ => '?',
            };
            out.push(c);
        }
    }
}
