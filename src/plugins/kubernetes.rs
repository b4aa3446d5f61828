//! `kubernetes`: the cluster zone answers from the index (see [`crate::zone::lookup`]).
//! NXDOMAIN in a `fallthrough` zone, and names in none of its zones, pass on.

use hickory_proto::rr::RecordType;

use super::{Flow, Records, Work};
use crate::dns::{Request, rcode, rtype};
use crate::metrics::dns::{Plugin, QueryReport};
use crate::metrics::expansions::SEARCH_EXPANSIONS;
use crate::zone::{self, ClusterZone, Outcome, Rcode, Rdata, Rr, Suffix};

#[derive(Debug, Clone)]
pub struct Kubernetes {
    pub zone: ClusterZone,
}

impl Kubernetes {
    pub fn handle(
        &self,
        request: &Request<'_>,
        qname: &str,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Flow {
        let qtype = RecordType::from(request.qtype);
        match zone::lookup(&self.zone, qname, qtype, &mut work.answer) {
            Outcome::Answer {
                rcode,
                zone_labels,
                soa,
            } => {
                report.plugin = Plugin::Kubernetes;
                Flow::Records(Records {
                    rcode: u16::from(match rcode {
                        Rcode::NoError => rcode::NOERROR,
                        Rcode::NxDomain => {
                            SEARCH_EXPANSIONS.nxdomain(&self.zone, qname, request.peer.ip());
                            rcode::NXDOMAIN
                        }
                        Rcode::ServFail => rcode::SERVFAIL,
                    }),
                    zone_labels,
                    soa,
                })
            }
            Outcome::NotOurs | Outcome::FallThrough => Flow::Next,
        }
    }
}

/// The external name an ExternalName answer ends in, to be looked up upstream and appended:
/// the last answer is a CNAME out of our zones and the client did not ask for the CNAME itself.
pub fn chase_target(answers: &[Rr], qtype: u16) -> Option<String> {
    match answers.last() {
        Some(Rr {
            data: Rdata::Cname(target),
            ..
        }) if matches!(target.suffix, Suffix::Root)
            && !matches!(qtype, rtype::CNAME | rtype::ANY) =>
        {
            Some(target.labels.to_ascii_lowercase())
        }
        _ => None,
    }
}
