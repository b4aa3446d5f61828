//! `explain`: one question asked of the blocks as a client would ask it, and what answered it
//! and why (`clusterdns explain`, `GET /explain`). Not on the query path.

use std::fmt::Write;
use std::net::SocketAddr;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use super::{Handled, Router, Scratch};
use crate::dns::{Edns, Transport};
use crate::metrics::dns::QueryReport;
use crate::plugins::Stage;
use crate::zone::lookup::best_zone;

impl Router {
    /// A report on `name` and `qtype` as asked from `peer` over UDP: the block and its stages,
    /// which stage answered with what, and for a cluster name the objects behind it or why it
    /// does not exist. A forwarded name is not sent upstream: the report says it would be.
    pub fn explain(&self, name: &str, qtype: RecordType, peer: SocketAddr) -> String {
        let mut out = String::new();
        let qname = name.trim_end_matches('.').to_ascii_lowercase();
        let _ = writeln!(out, "question: {qname}. {qtype} (from {peer})");
        let Some((index, _)) = self.block_for(&qname) else {
            let _ = writeln!(out, "block: none serves this name: REFUSED");
            return out;
        };
        let block = &self.blocks[index];
        let stages: Vec<&str> = block.pipeline.stages().iter().map(Stage::name).collect();
        let zones: Vec<&str> = block
            .zones
            .iter()
            .map(|z| if z.is_empty() { "." } else { z.as_str() })
            .collect();
        let _ = writeln!(out, "block: zones {zones:?}, stages {stages:?}");
        let edns = Some(Edns {
            payload: 1232,
            version: 0,
            dnssec_ok: false,
        });
        let Some(query) = crate::dns::query::build(&qname, u16::from(qtype), edns) else {
            let _ = writeln!(out, "not a domain name");
            return out;
        };
        let (mut scratch, mut report) = (Scratch::default(), QueryReport::default());
        match self.handle(&query, Transport::Udp, peer, &mut scratch, &mut report) {
            Handled::Reply(bytes) => describe(&mut out, report, bytes),
            Handled::Pending(_) => {
                let upstreams: Vec<String> = block
                    .pipeline
                    .resolver()
                    .map(|r| {
                        r.forwarder
                            .upstreams
                            .iter()
                            .map(|u| u.addr.to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "answered by: the upstreams {upstreams:?} (forward, or a CNAME target looked up there; not asked here)"
                );
            }
            Handled::Transfer(messages) => {
                let _ = writeln!(out, "answered by: transfer: {} message(s)", messages.len());
            }
            Handled::Drop => {
                let _ = writeln!(out, "answered by: nobody: the query is dropped (acl drop)");
            }
            Handled::Panicked => {
                let _ = writeln!(out, "answering panicked (a bug): SERVFAIL");
            }
        }
        let zone = block.pipeline.cluster_zone();
        if let Some(zone) = zone.filter(|z| best_zone(&z.config.zones, &qname).is_some()) {
            let _ = writeln!(out, "why:");
            for line in crate::zone::explain::explain(zone, &qname) {
                let _ = writeln!(out, "  {line}");
            }
        }
        out
    }
}

/// The stage that answered, the rcode and flags, and every record.
fn describe(out: &mut String, report: QueryReport, bytes: &[u8]) {
    let by = match report.plugin.label() {
        "" => "the server itself",
        label => label,
    };
    let Ok(m) = Message::from_vec(bytes) else {
        let _ = writeln!(out, "answered by: {by}, an unreadable response");
        return;
    };
    let aa = if m.metadata.authoritative {
        ", authoritative"
    } else {
        ""
    };
    let _ = writeln!(out, "answered by: {by}: {}{aa}", m.metadata.response_code);
    for (section, records) in [
        ("answer", &m.answers),
        ("authority", &m.authorities),
        ("additional", &m.additionals),
    ] {
        for r in records.iter() {
            let _ = writeln!(
                out,
                "  {section}: {} {} {} {}",
                r.name,
                r.ttl,
                r.record_type(),
                r.data
            );
        }
    }
}
