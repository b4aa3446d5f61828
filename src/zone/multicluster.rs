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
//! Everything else (apex, `dns-version`, `ns.dns`, namespaces, `pod` names) answers as in the
//! cluster zone; existence decides NXDOMAIN or NODATA the same way. Imports own no PTR records,
//! as in CoreDNS.

use hickory_proto::rr::RecordType;

use super::lookup::{forward_zone_name, service};
use super::qname::{self, Branch, Shape};
use super::{AnswerBuf, ClusterZone, Owner};

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
        _ => forward_zone_name(zone, qname, rel, qtype, &Owner::Query, 0, out),
    }
}
