//! `cache`: forwarded answers served from the response cache ([`crate::cache::Cache`]), and
//! upstream replies stored in it. It wraps `forward` only: cluster zones never enter it (the
//! index already is one), so the cluster-name path never pays for a cache lookup.

use std::sync::Arc;

use crate::cache::{Entry, Lookup};
use crate::dns::Client;
use crate::forward::ForwardError;
use crate::forward::reply::Reply;

use super::forward::Resolver;

/// What the cache had for a query.
pub enum Cached {
    /// A fresh answer, written for the client.
    Hit,
    /// Nothing fresh; an expired entry to serve if every upstream fails (RFC 8767).
    Miss(Option<Arc<Entry>>),
}

/// Looks a query up: a fresh hit is written into `out`; a popular entry about to expire is
/// refreshed in the background (prefetch).
pub fn lookup(
    resolver: &Arc<Resolver>,
    client: &Client,
    request: &[u8],
    out: &mut Vec<u8>,
) -> Cached {
    let Some(cache) = &resolver.cache else {
        return Cached::Miss(None);
    };
    match cache.lookup(&client.cache_key()) {
        Lookup::Fresh {
            entry,
            ttl,
            prefetch,
        } => {
            entry.reply.write_for(client, Some(ttl), out);
            if prefetch {
                cache.prefetched();
                let (resolver, request, client) =
                    (resolver.clone(), request.to_vec(), client.clone());
                tokio::spawn(async move {
                    let _ = fetch(&resolver, &request, &client).await;
                });
            }
            Cached::Hit
        }
        Lookup::Stale(entry) => Cached::Miss(Some(entry)),
        Lookup::Miss => Cached::Miss(None),
    }
}

/// Forwards, caches what may be cached, and returns the reply and the TTL to serve it with
/// (`None`: as the upstream sent it).
pub async fn fetch(
    resolver: &Resolver,
    request: &[u8],
    client: &Client,
) -> Result<(Arc<Reply>, Option<u32>), ForwardError> {
    let bytes = resolver
        .forwarder
        .exchange(request, &client.question, client.transport)
        .await?;
    let reply = Reply::parse(&bytes)
        .map_err(|e| ForwardError::AllFailed(format!("unusable upstream reply: {e}")))?;
    let Some(cache) = &resolver.cache else {
        return Ok((Arc::new(reply), None));
    };
    match cache.insert(client.cache_key(), reply) {
        Ok(entry) => {
            let ttl = cache.remaining(&entry);
            Ok((Arc::new(entry.reply.clone()), ttl))
        }
        Err((reply, ttl)) => Ok((Arc::new(reply), ttl)),
    }
}
