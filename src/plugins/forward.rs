//! `forward`: names no earlier stage answered go upstream, through the cache. The stage itself
//! answers fresh cache hits on the spot; everything that must wait for an upstream becomes a
//! [`Pending`] answer that the socket task resolves off its receive loop.

use std::sync::Arc;

use hickory_proto::op::Message;

use super::cache::{self, Cached};
use super::{Flow, Work};
use crate::cache::{Cache, Entry, STALE_TTL};
use crate::dns::{Client, Edns, Request, WireQuestion, query, rcode};
use crate::forward::{ForwardError, Forwarder};
use crate::metrics::dns::{Plugin, QueryReport};

/// How many CNAME hops an ExternalName answer may gain from upstream before we stop appending.
pub const MAX_CHASE_ANSWERS: usize = 64;

/// A block's way out: its forwarder and, when configured, its cache.
#[derive(Debug)]
pub struct Resolver {
    pub forwarder: Arc<Forwarder>,
    pub cache: Option<Arc<Cache>>,
}

/// The stage: a block's resolver.
#[derive(Debug, Clone)]
pub struct Forward {
    pub resolver: Arc<Resolver>,
}

impl Forward {
    pub fn handle(
        &self,
        request: &Request<'_>,
        qname: &str,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Flow {
        // An `except` zone: nobody here answers this name.
        if !self.resolver.forwarder.forwards(qname) {
            return Flow::Next;
        }
        let client = request.client();
        match cache::lookup(&self.resolver, &client, request.bytes, &mut work.writer.buf) {
            Cached::Hit => {
                report.plugin = Plugin::Cache;
                Flow::Written
            }
            Cached::Miss(stale) => Flow::Pending(Box::new(Pending::Forward {
                resolver: self.resolver.clone(),
                request: request.bytes.to_vec(),
                client,
                stale,
            })),
        }
    }
}

/// An answer that waits for an upstream.
pub enum Pending {
    /// The client's query, forwarded as it came.
    Forward {
        resolver: Arc<Resolver>,
        request: Vec<u8>,
        client: Client,
        /// The expired entry, served if every upstream fails (RFC 8767).
        stale: Option<Arc<Entry>>,
    },
    /// An ExternalName answer from the cluster zone whose CNAME target is looked up upstream
    /// and appended (as CoreDNS's kubernetes plugin does through its `upstream`).
    Chase {
        resolver: Arc<Resolver>,
        client: Client,
        /// The cluster zone's response, as written for the client.
        response: Vec<u8>,
        /// The CNAME target (absolute, lower-case, no trailing dot).
        target: String,
    },
    /// Work that waits for upstreams along the way (an autopath walk): its response.
    Task(std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send>>),
    /// The answer to a question `rewrite` changed, turned back for the client once it comes.
    Reverted {
        inner: Box<Pending>,
        revert: Box<super::rewrite::Revert>,
    },
    /// Another pending answer, stripped by `minimal` when it comes.
    Minimal(Box<Pending>),
}

impl Pending {
    /// Waits for the upstream and returns the response for the client.
    pub async fn resolve(self) -> Vec<u8> {
        match self {
            Pending::Forward {
                resolver,
                request,
                client,
                stale,
            } => forwarded(&resolver, &request, &client, stale).await,
            Pending::Chase {
                resolver,
                client,
                response,
                target,
            } => chase(&resolver, &client, response, &target).await,
            Pending::Task(task) => task.await,
            Pending::Reverted { inner, revert } => {
                let answer = Box::pin(inner.resolve()).await;
                revert.response(&answer)
            }
            Pending::Minimal(inner) => {
                let mut response = Box::pin(inner.resolve()).await;
                super::minimal::strip(&mut response);
                response
            }
        }
    }
}

async fn forwarded(
    resolver: &Resolver,
    request: &[u8],
    client: &Client,
    stale: Option<Arc<Entry>>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let serve_stale = |out: &mut Vec<u8>| match (&stale, &resolver.cache) {
        (Some(entry), Some(cache)) => {
            cache.served_stale();
            entry.reply.write_for(client, Some(STALE_TTL), out);
            true
        }
        _ => false,
    };
    match cache::fetch(resolver, request, client).await {
        Ok((reply, _)) if reply.rcode == rcode::SERVFAIL && serve_stale(&mut out) => {}
        Ok((reply, ttl)) => reply.write_for(client, ttl, &mut out),
        Err(ForwardError::Overloaded(_)) => out = client.error_reply(rcode::REFUSED),
        Err(e) => {
            if !serve_stale(&mut out) {
                tracing::debug!(error = %e, "forwarding failed");
                out = client.error_reply(rcode::SERVFAIL);
            }
        }
    }
    out
}

/// The ExternalName case: look the target up (cache, then upstream) and append its answers
/// to the cluster zone's CNAME. On any failure the CNAME alone is the answer.
async fn chase(
    resolver: &Arc<Resolver>,
    client: &Client,
    response: Vec<u8>,
    target: &str,
) -> Vec<u8> {
    // Always with EDNS (DO as the client's), so a large answer need not come over TCP.
    let edns = Edns {
        payload: crate::dns::ADVERTISED_UDP_PAYLOAD,
        version: 0,
        dnssec_ok: client.edns.is_some_and(|e| e.dnssec_ok),
    };
    let Some(request) = query::build(target, client.question.qtype(), Some(edns)) else {
        return response;
    };
    let Some(question) = WireQuestion::of(&request) else {
        return response;
    };
    let inner = Client {
        header: crate::dns::Header {
            id: 0,
            recursion_desired: true,
            ..client.header
        },
        edns: client.edns,
        limit: crate::dns::TCP_MAX_MESSAGE,
        transport: client.transport,
        question,
    };
    let mut target_reply = Vec::new();
    if let Cached::Miss(_) = cache::lookup(resolver, &inner, &request, &mut target_reply) {
        match cache::fetch(resolver, &request, &inner).await {
            Ok((reply, ttl)) => reply.write_for(&inner, ttl, &mut target_reply),
            Err(_) => return response,
        }
    }
    append_answers(&response, &target_reply, client.limit).unwrap_or(response)
}

/// The cluster response with the target's answer records appended (slow path: decoded and
/// re-encoded). Over the client's size, the CNAME alone is kept and TC set.
fn append_answers(response: &[u8], target: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut message = Message::from_vec(response).ok()?;
    let found = Message::from_vec(target).ok()?;
    let before = message.answers.len();
    message
        .answers
        .extend(found.answers.into_iter().take(MAX_CHASE_ANSWERS));
    let bytes = message.to_vec().ok()?;
    if bytes.len() <= limit.max(crate::dns::UDP_MIN_PAYLOAD) {
        return Some(bytes);
    }
    message.answers.truncate(before);
    message.metadata.truncation = true;
    message.to_vec().ok()
}
