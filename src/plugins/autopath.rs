//! `autopath`: server-side search paths, as CoreDNS 1.11's `autopath` plugin walks them.
//!
//! A pod with `ndots:5` asks `api.example.com.<ns>.svc.cluster.local` first. When the question
//! is such a first expansion — it ends in the first domain of the asking client's search path —
//! the stages after this one answer, in order, the name with each search domain and then the
//! bare name; the first that is not NXDOMAIN is the answer, with a CNAME from the name asked to
//! the name that answered ([`cnamer`]). When every one is NXDOMAIN, the answer to the question
//! itself stands. With `@kubernetes` the path is the pod's (`<ns>.svc.<zone>`, `svc.<zone>`,
//! `<zone>`, the host's search domains), the pod found from the source address — only an
//! address one ordinary pod holds (not a reused IP, not host network; CoreDNS takes any pod at
//! the address, coredns#2842, #7178).
//!
//! The walk itself is [`crate::server::handler`]'s: it resumes the pipeline after this stage
//! for each name, and waits for upstreams between names when it must.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::Flow;
use crate::config::PodMode;
use crate::config::autopath::{AutopathConfig, SearchPath};
use crate::dns::{Client, Request};
use crate::zone::ClusterZone;
use crate::zone::lookup::{best_zone, in_zone};

/// The stage.
#[derive(Debug, Clone)]
pub struct Autopath {
    zones: Arc<[String]>,
    search: Search,
}

#[derive(Debug, Clone)]
enum Search {
    Kubernetes {
        zone: ClusterZone,
        host: Arc<[String]>,
    },
    Fixed(Arc<[String]>),
}

/// The names to ask in turn, for the stages after `resume`.
#[derive(Debug)]
pub struct Walk {
    /// The index of the stage after `autopath`.
    pub resume: usize,
    /// Lower-case, no trailing dot. The first is the question itself.
    pub names: Vec<String>,
}

impl Autopath {
    /// `cluster`: the block's cluster zone, which `@kubernetes` needs (without it, or without
    /// `pods = "verified"`, nothing is searched, as in CoreDNS).
    pub fn new(config: &AutopathConfig, cluster: Option<&ClusterZone>) -> Option<Autopath> {
        let search = match &config.search {
            SearchPath::Kubernetes { host } => {
                let zone = cluster.filter(|z| z.config.pods == PodMode::Verified)?;
                Search::Kubernetes {
                    zone: zone.clone(),
                    host: host.clone().into(),
                }
            }
            SearchPath::Fixed(domains) => Search::Fixed(domains.clone().into()),
        };
        Some(Autopath {
            zones: config.zones.clone().into(),
            search,
        })
    }

    pub fn handle(&self, request: &Request<'_>, qname: &str) -> Flow {
        if !self.zones.iter().any(|z| in_zone(qname, z)) {
            return Flow::Next;
        }
        let names = match &self.search {
            Search::Kubernetes { zone, host } => pod_path(zone, host, request.peer.ip(), qname),
            Search::Fixed(domains) => fixed_path(domains, qname),
        };
        match names {
            Some(names) => Flow::Search(Box::new(Walk { resume: 0, names })),
            None => Flow::Next,
        }
    }
}

/// `base.<ns>.svc.<zone>` asked by the one pod at `peer`, in namespace `<ns>`: the names to
/// try. The string checks come first: most names are not expansions.
fn pod_path(zone: &ClusterZone, host: &[String], peer: IpAddr, qname: &str) -> Option<Vec<String>> {
    let cluster = best_zone(&zone.config.zones, qname)?;
    let rest = qname.strip_suffix(cluster)?.strip_suffix('.')?;
    let (base, namespace) = rest.strip_suffix(".svc")?.rsplit_once('.')?;
    let peer = peer.to_canonical();
    if !zone.index.sole_pod_namespace(peer, |ns| ns == namespace)? {
        return None;
    }
    let mut names = vec![
        qname.to_owned(),
        format!("{base}.svc.{cluster}"),
        format!("{base}.{cluster}"),
    ];
    names.extend(host.iter().map(|h| format!("{base}.{h}")));
    names.push(base.to_owned());
    Some(names)
}

/// `base.<first domain>`: the name with each domain, then bare.
fn fixed_path(domains: &[String], qname: &str) -> Option<Vec<String>> {
    let first = domains.first()?;
    let base = qname.strip_suffix(first.as_str())?.strip_suffix('.')?;
    let mut names: Vec<String> = domains.iter().map(|d| format!("{base}.{d}")).collect();
    names.push(base.to_owned());
    Some(names)
}

/// Whether the walk goes on past an answer: only NXDOMAIN does.
pub fn goes_on(answer: &[u8]) -> bool {
    answer
        .get(3)
        .is_some_and(|b| b & 0x0f == crate::dns::rcode::NXDOMAIN)
}

/// The answer found for another name, made the client's (CoreDNS's `cnamer`): the client's
/// question, and a CNAME from it to the owner of the first answer record that is not already
/// its name, with that record's TTL, in front. SERVFAIL when the answer cannot be read.
pub fn cnamer(answer: &[u8], client: &Client) -> Vec<u8> {
    redressed(answer, client).unwrap_or_else(|| client.error_reply(crate::dns::rcode::SERVFAIL))
}

fn redressed(answer: &[u8], client: &Client) -> Option<Vec<u8>> {
    let mut message = Message::from_vec(answer).ok()?;
    let query = Query::read(&mut BinDecoder::new(&client.question.bytes)).ok()?;
    let asked = query.name().clone();
    let found = message
        .answers
        .iter()
        .find(|r| r.name != asked)
        .map(|r| (r.name.clone(), r.ttl));
    if let Some((target, ttl)) = found {
        let cname = Record::from_rdata(asked, ttl, RData::CNAME(CNAME(target)));
        message.answers.insert(0, cname);
    }
    message.queries = vec![query];
    super::encode_within(message, client.limit)
}

#[cfg(test)]
mod tests;
