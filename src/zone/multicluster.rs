//! The `multicluster` zones: the Multi-Cluster Services API's DNS (KEP-1645) as CoreDNS ≥ 1.12
//! answers it. Service names come from ServiceImports rather than Services:
//!
//! - `<svc>.<ns>.svc.<zone>`: the ClusterSetIPs of a `ClusterSetIP` import; the ready
//!   endpoints of every cluster for a `Headless` one;
//! - `<hostname>.<clusterid>.<svc>.<ns>.svc.<zone>`: one endpoint of one cluster (the cluster
//!   from the slice's `multicluster.kubernetes.io/source-cluster` label);
//! - `_<port>._<proto>.<svc>.<ns>.svc.<zone>` and the bare name: SRV, targets the ClusterSet
//!   name or the per-cluster endpoint names, with their addresses as glue.
//!
//! `dns-version.<zone>` answers the MCS schema version, 1.0.0 (KEP-1645 §2.2; CoreDNS answers
//! the cluster schema's 1.1.0 there). Everything else (apex, `ns.dns`, namespaces, `pod` names)
//! answers as in the cluster zone; existence decides NXDOMAIN or NODATA the same way. Imports
//! own no PTR records, as in CoreDNS (KEP-1645 §2.3.3 asks for them where no cluster PTR
//! exists).

use hickory_proto::rr::RecordType;

use super::lookup::{forward_zone_name, service};
use super::qname::{self, Branch, Shape};
use super::{AnswerBuf, ClusterZone, DNS_VERSION_TTL, MCS_DNS_SCHEMA_VERSION, Owner, Rdata, Rr};

/// A name below a multicluster zone. Returns whether the name exists.
pub(super) fn name(
    zone: &ClusterZone,
    qname: &str,
    rel: &str,
    qtype: RecordType,
    out: &mut AnswerBuf,
) -> bool {
    match qname::parse_multicluster(rel) {
        Shape::Object {
            branch: Branch::Svc,
            namespace,
            key,
            selector,
            ..
        } => match zone.index.import(key) {
            // As CoreDNS: an import answers only in a namespace that exists here.
            Some(_) if !zone.index.namespace_exists(namespace) => false,
            Some(entry) => service(zone, qname, &entry, selector, qtype, &Owner::Query, 0, out),
            None => false,
        },
        Shape::DnsVersion => {
            if qtype == RecordType::TXT {
                out.answers.push(Rr {
                    owner: Owner::Query,
                    ttl: DNS_VERSION_TTL,
                    data: Rdata::Txt(MCS_DNS_SCHEMA_VERSION),
                });
            }
            true
        }
        _ => forward_zone_name(zone, qname, rel, qtype, &Owner::Query, 0, out),
    }
}
