//! Routes one request: parse it once, pick the server block by zone, run the block's pipeline
//! and write what it decided. A malformed message is an rcode (FORMERR, NOTIMP, REFUSED,
//! BADVERS) or a silent drop, never an error value and never a panic.

mod autopath;
mod dns64;
mod explain;
mod rewrite;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::dns::{Flags, Rejected, Request, Transport, rcode};
use crate::metrics::dns::{DnsMetrics, Plugin, QueryReport};
use crate::plugins::{Flow, Pending, Pipeline, Plugins, Resolver, Work, kubernetes};
use crate::zone;

/// Most concurrent TCP connections per listener by default; more wait in the accept queue.
pub const MAX_TCP_CONNECTIONS: usize = 1024;

/// One `[[server]]` block as the query path sees it.
#[derive(Debug, Clone)]
pub struct Block {
    /// Zones the block serves (lower-case, no trailing dot; `""` is the root).
    pub zones: Vec<String>,
    pub pipeline: Pipeline,
    /// UDP responses per second per client prefix (0: unlimited).
    pub rate_limit: u32,
    /// TCP connections served at once on this block's addresses (the largest of the blocks
    /// sharing an address applies; a change takes effect for new listeners).
    pub tcp_connections: usize,
    /// Largest UDP answer (CoreDNS `bufsize`).
    pub max_udp_size: usize,
}

impl Block {
    /// A block serving `zones` with `plugins`, no rate limit, the default TCP connections.
    pub fn new(zones: Vec<String>, plugins: Plugins) -> Block {
        Block {
            zones,
            pipeline: Pipeline::new(plugins),
            rate_limit: 0,
            tcp_connections: MAX_TCP_CONNECTIONS,
            max_udp_size: usize::from(crate::dns::ADVERTISED_UDP_PAYLOAD),
        }
    }
}

/// The blocks sharing one listen address.
#[derive(Debug, Clone)]
pub struct Router {
    blocks: Arc<[Block]>,
    pub metrics: Arc<DnsMetrics>,
    /// Response-rate limiting of UDP clients, when configured.
    pub rate_limit: Option<Arc<super::ratelimit::RateLimiter>>,
    /// For each block, the metrics label index of each of its zones.
    zone_labels: Arc<[Vec<usize>]>,
    /// Some block forwards: an ExternalName answer may have a target to look up upstream.
    forwards: bool,
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
    /// A zone transfer: whole messages to send in order (TCP only).
    Transfer(Vec<Vec<u8>>),
}

/// Per-task scratch space, reused across queries.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The question name, lower-case.
    qname: String,
    work: Work,
}

impl Router {
    pub fn new(blocks: Vec<Block>, metrics: Arc<DnsMetrics>) -> Self {
        let zone_labels: Vec<Vec<usize>> = blocks
            .iter()
            .map(|b| b.zones.iter().map(|z| metrics.zone_index(z)).collect())
            .collect();
        let forwards = blocks.iter().any(|b| b.pipeline.recursion_available());
        Router {
            forwards,
            blocks: blocks.into(),
            metrics,
            rate_limit: None,
            zone_labels: zone_labels.into(),
        }
    }

    /// Handles one request from `peer`: the response bytes, nothing, or an answer to wait for.
    pub fn handle<'s>(
        &self,
        bytes: &[u8],
        transport: Transport,
        peer: SocketAddr,
        scratch: &'s mut Scratch,
        report: &mut QueryReport,
    ) -> Handled<'s> {
        *report = QueryReport::default();
        let Scratch { qname, work } = scratch;
        let mut request = match Request::parse(bytes, transport, qname) {
            Ok(request) => request,
            Err(Rejected::Drop) => return Handled::Drop,
            Err(Rejected::Reply {
                header,
                rcode,
                question,
                edns,
            }) => {
                report.rcode = rcode;
                let flags = Flags::reply_to(&header, rcode);
                return Handled::Reply(work.writer.bare(flags, question, edns));
            }
        };
        report.qtype = request.qtype;
        let Some((block_index, zone_index)) = self.block_for(qname) else {
            let flags = Flags::reply_to(&request.header, u16::from(rcode::REFUSED));
            return bare(&request, flags, work);
        };
        let block = &self.blocks[block_index];
        request.max_udp = block.max_udp_size;
        request.peer = peer;
        report.zone = self.zone_labels[block_index][zone_index];
        let flow = block.pipeline.run(&request, qname, work, report);
        let mut flags = Flags::reply_to(&request.header, 0);
        flags.recursion_available = block.pipeline.recursion_available();
        if let Flow::Rewritten { resume } = flow {
            let client = (&request, qname.as_str());
            return self.rewritten(block_index, client, flags, resume, work, report);
        }
        if let Flow::Dns64(translate) = flow {
            let client = (&request, qname.as_str());
            return self.dns64(block_index, client, flags, *translate, work, report);
        }
        self.outcome(block_index, &request, flags, flow, work, report)
    }

    /// What the block's stages decided, answered: a search walk is walked, anything else
    /// written.
    fn outcome<'s>(
        &self,
        block: usize,
        request: &Request<'_>,
        flags: Flags,
        flow: Flow,
        work: &'s mut Work,
        report: &mut QueryReport,
    ) -> Handled<'s> {
        match flow {
            Flow::Search(walk) => self.autopath(block, request, flags, *walk, work, report),
            flow => self.respond(request, flags, flow, work, report),
        }
    }

    /// Writes what the pipeline decided. Records make an authoritative answer; one that ends
    /// in an ExternalName's CNAME out of our zones waits for the target's records when a block
    /// here forwards that name. Inlined into both callers: a call here costs the cluster-name
    /// path ~40 instructions (callgrind).
    #[inline(always)]
    fn respond<'s>(
        &self,
        request: &Request<'_>,
        mut flags: Flags,
        flow: Flow,
        work: &'s mut Work,
        report: &QueryReport,
    ) -> Handled<'s> {
        let records = match flow {
            Flow::Records(records) => records,
            Flow::Written => return Handled::Reply(&work.writer.buf),
            Flow::Encoded { rcode, answers } => {
                let flags = Flags { rcode, ..flags };
                let (q, edns, limit) = (request.question, request.edns, request.limit());
                let written =
                    work.writer
                        .write_encoded(flags, q, &work.encoded, answers, edns, limit);
                return Handled::Reply(written);
            }
            Flow::Sections { rcode, counts } => {
                let flags = Flags {
                    rcode,
                    authoritative: true,
                    ..flags
                };
                return self.templated(request, flags, counts, work);
            }
            Flow::Referral { counts } => {
                let flags = Flags { rcode: 0, ..flags };
                return self.templated(request, flags, counts, work);
            }
            Flow::Pending(pending) => return Handled::Pending(pending),
            Flow::Rcode(rcode) => return bare(request, Flags { rcode, ..flags }, work),
            // Never here: a rewritten question is resumed, a search walked, before an answer
            // is written.
            Flow::Rewritten { .. } | Flow::Search(_) | Flow::Dns64(_) => {
                let rcode = u16::from(rcode::SERVFAIL);
                return bare(request, Flags { rcode, ..flags }, work);
            }
            Flow::Drop => return Handled::Drop,
            Flow::Transfer(messages) => return Handled::Transfer(messages),
            Flow::Denied { rcode, ede } => {
                let flags = Flags { rcode, ..flags };
                crate::plugins::acl::denied_reply(&mut work.writer.buf, flags, request, ede);
                return Handled::Reply(&work.writer.buf);
            }
            // Nobody here answers this name (no forwarder, or an `except` zone).
            Flow::Next => {
                let rcode = u16::from(rcode::REFUSED);
                return bare(request, Flags { rcode, ..flags }, work);
            }
        };
        flags.authoritative = true;
        flags.rcode = records.rcode;
        let chase = match report.plugin {
            Plugin::Kubernetes | Plugin::K8sExternal if self.forwards => {
                kubernetes::chase_target(&work.answer.answers, request.qtype)
                    .and_then(|target| Some((self.resolver_for(&target)?.clone(), target)))
            }
            _ => None,
        };
        let sections = crate::dns::writer::Sections {
            answers: &work.answer.answers,
            soa: records.soa,
            zone_labels: records.zone_labels,
            additionals: &work.answer.additionals,
        };
        let response = work.writer.write(
            flags,
            Some(request.question),
            &sections,
            request.edns,
            request.limit(),
        );
        chased(request, response, chase)
    }

    /// A `template` answer; one whose CNAME target a block here forwards waits for the
    /// target's records, as CoreDNS's template looks them up through its server.
    fn templated<'s>(
        &self,
        request: &Request<'_>,
        flags: Flags,
        counts: [u16; 3],
        work: &'s mut Work,
    ) -> Handled<'s> {
        let chase = match work.template.chase.take() {
            Some(target) if self.forwards => self
                .resolver_for(&target)
                .map(|resolver| (resolver.clone(), target)),
            _ => None,
        };
        let response = work.writer.write_sections(
            flags,
            request.question,
            &work.encoded,
            &work.template.ends,
            counts,
            request.edns,
            request.limit(),
        );
        chased(request, response, chase)
    }

    /// The resolver of the block that owns `name`, if it forwards that name.
    fn resolver_for(&self, name: &str) -> Option<&Arc<Resolver>> {
        let (block, _) = self.block_for(name)?;
        self.blocks[block]
            .pipeline
            .resolver()
            .filter(|r| r.forwarder.forwards(name))
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

/// The response as written, or, when its CNAME target is looked up upstream, that lookup.
fn chased<'s>(
    request: &Request<'_>,
    response: &'s [u8],
    chase: Option<(Arc<Resolver>, String)>,
) -> Handled<'s> {
    match chase {
        Some((resolver, target)) => Handled::Pending(Box::new(Pending::Chase {
            resolver,
            client: request.client(),
            response: response.to_vec(),
            target,
        })),
        None => Handled::Reply(response),
    }
}

/// A response made elsewhere (a walk's, a translation's, a reverted one), sent from the
/// writer's buffer.
fn owned_reply<'s>(answer: &[u8], work: &'s mut Work) -> Handled<'s> {
    work.writer.buf.clear();
    work.writer.buf.extend_from_slice(answer);
    Handled::Reply(&work.writer.buf)
}

/// One answer a stage that asks other questions gets back.
enum Asked {
    Now(Vec<u8>),
    Later(Box<Pending>),
    /// No reply (an acl drop, a panic): the walk or translation stops there.
    Nothing,
}

impl From<Handled<'_>> for Asked {
    fn from(handled: Handled<'_>) -> Asked {
        match handled {
            Handled::Reply(answer) => Asked::Now(answer.to_vec()),
            Handled::Pending(pending) => Asked::Later(pending),
            Handled::Drop | Handled::Panicked | Handled::Transfer(_) => Asked::Nothing,
        }
    }
}

/// A reply with the question and no records.
fn bare<'s>(request: &Request<'_>, flags: Flags, work: &'s mut Work) -> Handled<'s> {
    Handled::Reply(
        work.writer
            .bare(flags, Some(request.question), request.edns),
    )
}

/// A bare reply to raw request bytes, written off the normal path (a slipped reply, TC set;
/// a SERVFAIL after a panic). `None` when the request is not one to answer.
pub fn bare_reply_to(
    bytes: &[u8],
    transport: Transport,
    rcode: u8,
    truncated: bool,
) -> Option<Vec<u8>> {
    let (header, question, edns) = match Request::parse(bytes, transport, &mut String::new()) {
        Ok(r) => (r.header, r.question, r.edns),
        Err(Rejected::Reply {
            header,
            question: Some(question),
            edns,
            ..
        }) => (header, question, edns),
        Err(_) => return None,
    };
    let flags = Flags {
        truncated,
        ..Flags::reply_to(&header, u16::from(rcode))
    };
    let mut out = Vec::new();
    crate::dns::header::bare_reply(&mut out, flags, Some(question), edns);
    Some(out)
}
