//! The cluster zone: the index built from cluster objects, and the pure lookup over it.
//!
//! This module knows neither the Kubernetes API nor sockets. A lookup fills an [`AnswerBuf`]
//! with [`Rr`]s whose names are described, not encoded: the server writes them, echoing the
//! query's case and compressing against the question.

pub mod explain;
pub mod external;
pub mod index;
pub mod lookup;
pub mod multicluster;
pub mod qname;
pub mod records;
#[cfg(test)]
pub(crate) mod test_support;
pub mod transfer;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

pub use index::{Index, IndexOptions};
pub use lookup::lookup;

use crate::config::PodMode;

/// TTL of `dns-version.<zone>` TXT, as CoreDNS.
pub const DNS_VERSION_TTL: u32 = 28800;
/// The Kubernetes DNS schema version served at `dns-version.<zone>`.
pub const DNS_SCHEMA_VERSION: &str = "1.1.0";
/// The schema version of the Multi-Cluster Services DNS specification (KEP-1645 §1), served at
/// `dns-version.<zone>` of a `multicluster` zone.
pub const MCS_DNS_SCHEMA_VERSION: &str = "1.0.0";
/// CoreDNS's SOA timers.
pub const SOA_REFRESH: u32 = 7200;
pub const SOA_RETRY: u32 = 1800;
pub const SOA_EXPIRE: u32 = 86400;
/// The SOA record's own TTL is capped here; its MINIMUM field is the zone TTL.
pub const SOA_MAX_TTL: u32 = 300;
/// CNAME chains inside the zone stop after this many links (CoreDNS stops at 8).
pub const MAX_CNAME_CHAIN: usize = 8;

/// How one `[server.kubernetes]` answers: zones, TTL and the options that change answers.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    /// Authoritative zones, lower-case, no trailing dot.
    pub zones: Vec<String>,
    /// The first forward zone: PTR targets live under it.
    pub primary: Arc<str>,
    pub ttl: u32,
    pub pods: PodMode,
    /// NXDOMAIN in these zones goes on to the next handler; `""` stands for every zone.
    pub fallthrough: Vec<String>,
    pub ignore_empty_service: bool,
    /// Zones (among `zones`) answered from ServiceImports (Multi-Cluster Services), not
    /// Services; empty without `multicluster`.
    pub multicluster: Vec<String>,
    /// The server's own addresses, for the apex NS and `ns.dns.<zone>`.
    pub own_addrs: Vec<IpAddr>,
}

impl ZoneConfig {
    /// Is `zone` (one of `zones`) answered from ServiceImports?
    pub fn is_multicluster(&self, zone: &str) -> bool {
        self.multicluster.iter().any(|z| z == zone)
    }
}

/// A zone handle: configuration plus the live index.
#[derive(Debug, Clone)]
pub struct ClusterZone {
    pub config: Arc<ZoneConfig>,
    pub index: Arc<Index>,
}

/// Where a name ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Suffix {
    /// The matched zone, as the query spelled it (written as a pointer into the question).
    QueryZone,
    /// A zone of ours, lower-case (PTR targets under the primary zone).
    Zone(Arc<str>),
    /// Nothing: `labels` is already absolute.
    Root,
}

/// A domain name in an answer: lower-case labels followed by a suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub labels: Arc<str>,
    pub suffix: Suffix,
}

/// The owner of a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The question name, byte for byte.
    Query,
    /// The matched zone as the query spelled it (SOA).
    QueryZone,
    Name(Target),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rdata {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Target,
    },
    Ptr(Target),
    Cname(Target),
    Ns(Target),
    Txt(&'static str),
    /// The zone SOA: `ns.dns.<zone> hostmaster.<zone> serial 7200 1800 86400 minimum`, or with
    /// an `apex` label (`k8s_external`) `ns1.<apex>.<zone> hostmaster.<apex>.<zone>`.
    Soa {
        serial: u32,
        minimum: u32,
        apex: Option<&'static str>,
    },
}

impl Rdata {
    /// The A or AAAA record of `ip`.
    pub fn address(ip: IpAddr) -> Rdata {
        match ip {
            IpAddr::V4(a) => Rdata::A(a),
            IpAddr::V6(a) => Rdata::Aaaa(a),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rr {
    pub owner: Owner,
    pub ttl: u32,
    pub data: Rdata,
}

/// The records of one answer. Reused across queries so the hot path does not allocate.
#[derive(Debug, Default)]
pub struct AnswerBuf {
    pub answers: Vec<Rr>,
    pub additionals: Vec<Rr>,
}

impl AnswerBuf {
    pub fn clear(&mut self) {
        self.answers.clear();
        self.additionals.clear();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError,
    NxDomain,
    ServFail,
}

/// What the zone says about a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An authoritative answer. `zone_labels` is the label count of the matched zone (so the
    /// writer finds it in the question); `soa` puts the zone SOA in the authority section.
    Answer {
        rcode: Rcode,
        zone_labels: usize,
        soa: Option<SoaValues>,
    },
    /// The name is in none of the zones.
    NotOurs,
    /// NXDOMAIN in a `fallthrough` zone: the next handler decides.
    FallThrough,
}

/// The SOA values for the authority section (kept `Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoaValues {
    pub ttl: u32,
    pub serial: u32,
    pub minimum: u32,
    /// `k8s_external`'s apex label (see [`Rdata::Soa`]); `None` for the cluster zone.
    pub apex: Option<&'static str>,
}

/// The `'static` copy of an apex label, made once per distinct value (a handful per process,
/// whatever the reloads), so that [`SoaValues`] stays `Copy`.
pub fn intern_apex(apex: &str) -> &'static str {
    static SEEN: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = seen.iter().find(|s| **s == apex) {
        return s;
    }
    let s: &'static str = Box::leak(apex.into());
    seen.push(s);
    s
}
