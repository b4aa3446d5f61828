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
use crate::metrics::dns::{DnsMetrics, Plugin, QueryReport};
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
    /// Rotate the address records of each answer (CoreDNS `loadbalance`).
    pub loadbalance: bool,
    /// Log every query (CoreDNS `log`).
    pub log: bool,
    /// UDP responses per second per client prefix (0: unlimited).
    pub rate_limit: u32,
    /// TCP connections served at once on this block's addresses (the largest of the blocks
    /// sharing an address applies; a change takes effect for new listeners).
    pub tcp_connections: usize,
}

/// The blocks sharing one listen address.
#[derive(Debug, Clone)]
pub struct Router {
    blocks: Arc<[Block]>,
    loops: Arc<LoopProbes>,
    pub metrics: Arc<DnsMetrics>,
    /// Response-rate limiting of UDP clients, when configured.
    pub rate_limit: Option<Arc<super::ratelimit::RateLimiter>>,
    /// For each block, the metrics label index of each of its zones.
    zone_labels: Arc<[Vec<usize>]>,
}

/// What became of a request.
pub enum Handled<'s> {
    Reply(&'s [u8]),
    /// Nothing is sent (not a query, or too short to answer).
    Drop,
    /// The answer needs an upstream: resolve it off the receive loop.
    Pending(Box<Pending>),
    /// Handling panicked (a bug): the caller answers SERVFAIL and resets its scratch space.
    Panicked,
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
    /// The question name, lower-case.
    qname: String,
    /// Turns the address records of successive answers (loadbalance).
    rotation: usize,
}

impl Router {
    pub fn new(blocks: Vec<Block>, loops: Arc<LoopProbes>, metrics: Arc<DnsMetrics>) -> Self {
        let zone_labels: Vec<Vec<usize>> = blocks
            .iter()
            .map(|b| b.zones.iter().map(|z| metrics.zone_index(z)).collect())
            .collect();
        Router {
            blocks: blocks.into(),
            loops,
            metrics,
            rate_limit: None,
            zone_labels: zone_labels.into(),
        }
    }

    /// Handles one request. Returns the response bytes, or `None` to send nothing.
    pub fn handle<'s>(
        &self,
        request: &[u8],
        transport: Transport,
        scratch: &'s mut Scratch,
        report: &mut QueryReport,
    ) -> Handled<'s> {
        *report = QueryReport::default();
        scratch.qname.clear();
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
            report.rcode = RCODE_BADVERS;
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
        report.qtype = u16::from(qtype);
        if qtype == RecordType::HINFO && self.loops.is_probe(&scratch.qname) {
            report.plugin = Plugin::Loop;
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
        let Some((block_index, zone_index)) = self.block_for(&scratch.qname) else {
            flags.rcode = RCODE_REFUSED;
            return Handled::Reply(scratch.writer.write(
                flags,
                Some(&question),
                &no_sections,
                edns,
                limit,
            ));
        };
        let block = &self.blocks[block_index];
        report.zone = self.zone_labels[block_index][zone_index];
        report.log = block.log;
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
                report.plugin = Plugin::Kubernetes;
                if block.loadbalance {
                    scratch.rotation = scratch.rotation.wrapping_add(1);
                    rotate_addresses(&mut scratch.answer.answers, scratch.rotation);
                }
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
                        .and_then(|(b, _)| self.blocks[b].resolver.clone())
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
                        CacheResult::Hit => {
                            report.plugin = Plugin::Cache;
                            Handled::Reply(out)
                        }
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

    /// The block whose zones match the name most specifically, and which of its zones matched.
    fn block_for(&self, qname: &str) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize, usize)> = None;
        for (b, block) in self.blocks.iter().enumerate() {
            for (z, zone) in block.zones.iter().enumerate() {
                if zone::lookup::in_zone(qname, zone)
                    && best.is_none_or(|(len, _, _)| zone.len() > len)
                {
                    best = Some((zone.len(), b, z));
                }
            }
        }
        best.map(|(_, b, z)| (b, z))
    }
}

/// Rotates the trailing run of A/AAAA records by `turn` (a CNAME chain before them stays first).
fn rotate_addresses(answers: &mut [Rr], turn: usize) {
    let start = answers
        .iter()
        .rposition(|rr| !matches!(rr.data, Rdata::A(_) | Rdata::Aaaa(_)))
        .map_or(0, |i| i + 1);
    let run = &mut answers[start..];
    if run.len() > 1 {
        run.rotate_left(turn % run.len());
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
