//! Names a block does not answer itself: the cache, then on a miss the forwarder.
//!
//! A fresh cache hit is answered on the spot by the handler; everything that must wait for an
//! upstream becomes a [`Pending`] query that the socket task resolves off its receive loop.

use std::sync::Arc;

use hickory_proto::op::Message;

use crate::cache::{Cache, Key, Lookup, STALE_TTL};
use crate::forward::reply::{ClientView, RCODE_SERVFAIL, Reply, WireQuestion};
use crate::forward::{ForwardError, Forwarder, Protocol};

const RCODE_REFUSED: u8 = 5;
/// How many CNAME hops an ExternalName answer may gain from upstream before we stop appending.
pub const MAX_CHASE_ANSWERS: usize = 64;

/// A block's way out: its forwarder and, when configured, its cache.
#[derive(Debug)]
pub struct Resolver {
    pub forwarder: Arc<Forwarder>,
    pub cache: Option<Arc<Cache>>,
}

/// The client's side of a query, owned so it can outlive the receive buffer.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: u16,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    pub edns_dnssec_ok: Option<bool>,
    pub limit: usize,
    pub protocol: Protocol,
    pub question: WireQuestion,
}

impl Client {
    fn view(&self) -> ClientView<'_> {
        ClientView {
            id: self.id,
            recursion_desired: self.recursion_desired,
            checking_disabled: self.checking_disabled,
            edns_dnssec_ok: self.edns_dnssec_ok,
            limit: self.limit,
            question: &self.question,
        }
    }

    fn key(&self) -> Key {
        self.question
            .cache_key(self.edns_dnssec_ok.unwrap_or(false), self.checking_disabled)
    }

    /// A response with no records: the question, the rcode, RA set, OPT when the client sent EDNS.
    pub fn error_reply(&self, rcode: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.question.bytes.len() + 11);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.push(0x80 | u8::from(self.recursion_desired));
        out.push(0x80 | (u8::from(self.checking_disabled) << 4) | rcode);
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
        out.extend_from_slice(&[0, u8::from(self.edns_dnssec_ok.is_some())]);
        out.extend_from_slice(&self.question.bytes);
        if let Some(dnssec_ok) = self.edns_dnssec_ok {
            out.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0]);
            out.extend_from_slice(&[if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
        }
        out
    }
}

/// What the handler decided about a query the cache could not answer fresh.
pub struct Pending {
    pub resolver: Arc<Resolver>,
    pub request: Vec<u8>,
    pub client: Client,
    /// The expired entry, served if every upstream fails (RFC 8767).
    pub stale: Option<Arc<crate::cache::Entry>>,
    /// An ExternalName answer from the cluster zone whose CNAME target is looked up upstream
    /// and appended (as CoreDNS's kubernetes plugin does through its `upstream`).
    pub chase: Option<Chase>,
}

pub struct Chase {
    /// The cluster zone's response, as written for the client.
    pub response: Vec<u8>,
    /// The CNAME target (absolute, lower-case, no trailing dot) and the query type.
    pub target: String,
    pub qtype: u16,
}

/// Looks a query up in the cache: a fresh hit is written into `out`; else the caller must wait.
pub fn from_cache(
    resolver: &Arc<Resolver>,
    client: &Client,
    request: &[u8],
    out: &mut Vec<u8>,
) -> CacheResult {
    let Some(cache) = &resolver.cache else {
        return CacheResult::Miss(None);
    };
    match cache.lookup(&client.key()) {
        Lookup::Fresh {
            entry,
            ttl,
            prefetch,
        } => {
            entry.reply.write_for(&client.view(), Some(ttl), out);
            if prefetch {
                cache.prefetched();
                let (resolver, request, client) =
                    (resolver.clone(), request.to_vec(), client.clone());
                tokio::spawn(async move {
                    let _ = upstream(&resolver, &request, &client).await;
                });
            }
            CacheResult::Hit
        }
        Lookup::Stale(entry) => CacheResult::Miss(Some(entry)),
        Lookup::Miss => CacheResult::Miss(None),
    }
}

pub enum CacheResult {
    Hit,
    Miss(Option<Arc<crate::cache::Entry>>),
}

/// Forwards, caches what may be cached, and returns the stored reply and its TTL to serve.
async fn upstream(
    resolver: &Resolver,
    request: &[u8],
    client: &Client,
) -> Result<(Arc<Reply>, Option<u32>), ForwardError> {
    let bytes = resolver
        .forwarder
        .exchange(request, &client.question, client.protocol)
        .await?;
    let reply = match Reply::parse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return Err(ForwardError::AllFailed(format!(
                "unusable upstream reply: {e}"
            )));
        }
    };
    match &resolver.cache {
        Some(cache) => match cache.insert(client.key(), reply) {
            Ok(entry) => {
                let ttl = entry.remaining(std::time::Instant::now());
                Ok((Arc::new(entry.reply.clone()), ttl))
            }
            Err(reply) => Ok((Arc::new(reply), None)),
        },
        None => Ok((Arc::new(reply), None)),
    }
}

impl Pending {
    /// Waits for the upstream and returns the response for the client.
    pub async fn resolve(self) -> Vec<u8> {
        if let Some(chase) = &self.chase {
            return self.resolve_chase(chase).await;
        }
        let mut out = Vec::new();
        match upstream(&self.resolver, &self.request, &self.client).await {
            Ok((reply, _)) if reply.rcode == RCODE_SERVFAIL && self.stale.is_some() => {
                self.serve_stale(&mut out);
            }
            Ok((reply, ttl)) => reply.write_for(&self.client.view(), ttl, &mut out),
            Err(ForwardError::Overloaded(_)) => out = self.client.error_reply(RCODE_REFUSED),
            Err(e) => {
                if self.stale.is_some() {
                    self.serve_stale(&mut out);
                } else {
                    tracing::debug!(error = %e, "forwarding failed");
                    out = self.client.error_reply(RCODE_SERVFAIL);
                }
            }
        }
        out
    }

    fn serve_stale(&self, out: &mut Vec<u8>) {
        if let (Some(entry), Some(cache)) = (&self.stale, &self.resolver.cache) {
            cache.served_stale();
            entry
                .reply
                .write_for(&self.client.view(), Some(STALE_TTL), out);
        }
    }

    /// The ExternalName case: look the target up (cache, then upstream) and append its answers
    /// to the cluster zone's CNAME. On any failure the CNAME alone is the answer.
    async fn resolve_chase(&self, chase: &Chase) -> Vec<u8> {
        let Some(request) = query_for(&chase.target, chase.qtype, self.client.edns_dnssec_ok)
        else {
            return chase.response.clone();
        };
        let Some(question) = WireQuestion::of(&request) else {
            return chase.response.clone();
        };
        let inner = Client {
            id: 0,
            recursion_desired: true,
            checking_disabled: self.client.checking_disabled,
            edns_dnssec_ok: self.client.edns_dnssec_ok,
            limit: 65535,
            protocol: self.client.protocol,
            question,
        };
        let mut target_reply = Vec::new();
        match from_cache(&self.resolver, &inner, &request, &mut target_reply) {
            CacheResult::Hit => {}
            CacheResult::Miss(_) => match upstream(&self.resolver, &request, &inner).await {
                Ok((reply, ttl)) => reply.write_for(&inner.view(), ttl, &mut target_reply),
                Err(_) => return chase.response.clone(),
            },
        }
        append_answers(&chase.response, &target_reply, self.client.limit)
            .unwrap_or_else(|| chase.response.clone())
    }
}

/// A recursive query for `name`/`qtype` with EDNS (DO as the client's).
fn query_for(name: &str, qtype: u16, dnssec_ok: Option<bool>) -> Option<Vec<u8>> {
    let mut out = vec![0, 0, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let len = u8::try_from(label.len()).ok().filter(|l| *l <= 63)?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0]);
    out.extend_from_slice(&[if dnssec_ok == Some(true) { 0x80 } else { 0 }, 0, 0, 0]);
    Some(out)
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
    if bytes.len() <= limit.max(512) {
        return Some(bytes);
    }
    message.answers.truncate(before);
    message.metadata.truncation = true;
    message.to_vec().ok()
}
