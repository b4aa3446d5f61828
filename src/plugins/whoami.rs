//! `whoami`: the client's address and port, as CoreDNS's `whoami` answers any name that
//! reaches it (it runs last, after `forward`): NOERROR, authoritative, no answer records; in
//! the additional section an A (or AAAA) record of the client's address owned by the question's
//! name, then `_udp.<name>` (or `_tcp`) SRV 0 0 <client port> `.`; TTL 0.

use std::sync::Arc;

use super::{Flow, Records, Work};
use crate::dns::{Request, Transport, rcode};
use crate::zone::lookup::label_count;
use crate::zone::{Owner, Rdata, Rr, Suffix, Target};

/// The SRV owners' first labels, made once (a query clones an `Arc`, no allocation).
#[derive(Debug, Clone)]
pub struct Whoami {
    udp: Arc<str>,
    tcp: Arc<str>,
    root: Arc<str>,
}

impl Default for Whoami {
    fn default() -> Whoami {
        Whoami {
            udp: "_udp".into(),
            tcp: "_tcp".into(),
            root: "".into(),
        }
    }
}

impl Whoami {
    pub fn handle(&self, request: &Request<'_>, qname: &str, work: &mut Work) -> Flow {
        let out = &mut work.answer;
        out.clear();
        let address = match request.peer.ip().to_canonical() {
            std::net::IpAddr::V4(v4) => Rdata::A(v4),
            std::net::IpAddr::V6(v6) => Rdata::Aaaa(v6),
        };
        out.additionals.push(Rr {
            owner: Owner::Query,
            ttl: 0,
            data: address,
        });
        let proto = match request.transport {
            Transport::Udp => &self.udp,
            Transport::Tcp => &self.tcp,
        };
        out.additionals.push(Rr {
            // `_udp.` before the question's name as the client spelled it (the "zone" below is
            // the whole name); `_udp.` alone for the root.
            owner: Owner::Name(Target {
                labels: proto.clone(),
                suffix: Suffix::QueryZone,
            }),
            ttl: 0,
            data: Rdata::Srv {
                priority: 0,
                weight: 0,
                port: request.peer.port(),
                target: Target {
                    labels: self.root.clone(),
                    suffix: Suffix::Root,
                },
            },
        });
        Flow::Records(Records {
            rcode: u16::from(rcode::NOERROR),
            zone_labels: label_count(qname),
            soa: None,
        })
    }
}
