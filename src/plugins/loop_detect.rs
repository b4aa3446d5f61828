//! `loop`: our own probe (`<random>.<random>.<zone> HINFO`, sent to each upstream at start)
//! coming back means an upstream forwards to us: that upstream is marked looped (never used
//! again) and the probe is answered NXDOMAIN so it stops going round.

use std::sync::Arc;

use super::Flow;
use crate::dns::{Request, rcode, rtype};
use crate::forward::LoopProbes;
use crate::metrics::dns::{Plugin, QueryReport};

pub fn handle(
    probes: &Arc<LoopProbes>,
    request: &Request<'_>,
    qname: &str,
    report: &mut QueryReport,
) -> Flow {
    if request.qtype == rtype::HINFO && probes.is_probe(qname) {
        report.plugin = Plugin::Loop;
        return Flow::Rcode(u16::from(rcode::NXDOMAIN));
    }
    Flow::Next
}
