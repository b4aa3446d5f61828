//! `acl`: access rules by query type and client address, as CoreDNS 1.11's `acl`.
//!
//! Each `acl` entry guards its zones; for a name in them its rules are tried in order and the
//! first whose types and networks match decides: `allow` passes the query on (no later rule or
//! entry is looked at), `block` answers REFUSED, `filter` NOERROR without records, `drop` sends
//! nothing. A query no rule matches goes on to the next entry, then to the next plugin.
//!
//! `block` and `filter` carry an extended DNS error (RFC 8914: 15 "Blocked", 17 "Filtered")
//! when the client sent EDNS; not AA. CoreDNS adds an OPT record even when the client sent none
//! and always sets DO; here the OPT follows RFC 6891 §7 and RFC 3225 (README, differences).
//!
//! Matching allocates nothing: the rules are slices walked in place.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::Flow;
use crate::config::{AclAction, AclConfig};
use crate::dns::header::{Flags, bare_reply};
use crate::dns::{Request, rcode};
use crate::zone::lookup::in_zone;

/// RFC 8914 INFO-CODEs.
pub const EDE_BLOCKED: u16 = 15;
pub const EDE_FILTERED: u16 = 17;
/// The EDNS option code of an extended DNS error.
const OPTION_EDE: u16 = 15;

/// The configured entries, compiled for matching; clones share them.
#[derive(Debug, Clone)]
pub struct Acl {
    entries: Arc<[Entry]>,
}

/// One `acl` directive: its zones and rules.
#[derive(Debug)]
struct Entry {
    zones: Box<[String]>,
    rules: Box<[Rule]>,
}

#[derive(Debug)]
struct Rule {
    action: AclAction,
    /// `None`: every type.
    types: Option<Box<[u16]>>,
    /// `None`: every address.
    nets: Option<Nets>,
}

/// Networks as (network, mask) pairs per family: a match is one AND and one compare.
#[derive(Debug)]
struct Nets {
    v4: Box<[(u32, u32)]>,
    v6: Box<[(u128, u128)]>,
}

impl Nets {
    fn new(nets: &[IpNet]) -> Nets {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()))),
            }
        }
        Nets {
            v4: v4.into(),
            v6: v6.into(),
        }
    }

    fn contains(&self, client: IpAddr) -> bool {
        match client {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(net, mask)| a & mask == net)
            }
        }
    }
}

impl Acl {
    /// `None` when no entry has a rule: such an `acl` lets everything through, so it is left
    /// out of the pipeline.
    pub fn new(config: &[AclConfig]) -> Option<Acl> {
        let entries: Vec<Entry> = config
            .iter()
            .map(|e| Entry {
                zones: e.zones.clone().into(),
                rules: e
                    .rules
                    .iter()
                    .map(|r| Rule {
                        action: r.action,
                        types: r.types.clone().map(Into::into),
                        nets: r.nets.as_deref().map(Nets::new),
                    })
                    .collect(),
            })
            .collect();
        entries.iter().any(|e| !e.rules.is_empty()).then(|| Acl {
            entries: entries.into(),
        })
    }

    pub fn handle(&self, request: &Request<'_>, qname: &str) -> Flow {
        let client = request.peer.ip().to_canonical();
        for entry in self.entries.iter() {
            if !entry.zones.iter().any(|z| in_zone(qname, z)) {
                continue;
            }
            match entry.decide(request.qtype, client) {
                None => continue,
                Some(AclAction::Allow) => return Flow::Next,
                Some(AclAction::Block) => {
                    return Flow::Denied {
                        rcode: u16::from(rcode::REFUSED),
                        ede: EDE_BLOCKED,
                    };
                }
                Some(AclAction::Filter) => {
                    return Flow::Denied {
                        rcode: u16::from(rcode::NOERROR),
                        ede: EDE_FILTERED,
                    };
                }
                Some(AclAction::Drop) => return Flow::Drop,
            }
        }
        Flow::Next
    }
}

impl Entry {
    /// The action of the first rule matching the query type and the client.
    fn decide(&self, qtype: u16, client: IpAddr) -> Option<AclAction> {
        self.rules
            .iter()
            .find(|rule| {
                rule.types.as_ref().is_none_or(|t| t.contains(&qtype))
                    && rule.nets.as_ref().is_none_or(|n| n.contains(client))
            })
            .map(|rule| rule.action)
    }
}

/// A reply without records carrying the extended DNS error `ede` in its OPT record (only when
/// the client sent EDNS: RFC 6891 §7).
pub fn denied_reply(out: &mut Vec<u8>, flags: Flags, request: &Request<'_>, ede: u16) {
    bare_reply(out, flags, Some(request.question), request.edns);
    if request.edns.is_some() {
        // The OPT record ends the message with an empty RDATA: give it the option.
        let rdlen_at = out.len() - 2;
        out[rdlen_at..].copy_from_slice(&6u16.to_be_bytes());
        out.extend_from_slice(&OPTION_EDE.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&ede.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AclRule;

    fn rule(action: AclAction, types: Option<&[u16]>, nets: Option<&[&str]>) -> AclRule {
        AclRule {
            action,
            types: types.map(<[u16]>::to_vec),
            nets: nets.map(|n| n.iter().map(|s| s.parse().unwrap()).collect()),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The entries of an `Acl` made of `entry` alone.
    fn compiled(entry: &AclConfig) -> Arc<[Entry]> {
        Acl::new(std::slice::from_ref(entry)).unwrap().entries
    }

    /// CoreDNS's README examples as one table: the first matching rule decides.
    #[test]
    fn the_first_rule_matching_type_and_network_decides() {
        use AclAction::*;
        let entry = AclConfig {
            zones: vec![String::new()],
            rules: vec![
                rule(Allow, None, Some(&["192.168.1.0/24"])),
                rule(Block, Some(&[1]), Some(&["192.168.0.0/16"])),
                rule(Filter, Some(&[28]), Some(&["192.168.0.0/16", "fd00::/8"])),
                rule(Drop, None, Some(&["192.0.2.7/32"])),
            ],
        };
        let cases: &[(u16, &str, Option<AclAction>)] = &[
            (1, "192.168.1.9", Some(Allow)),
            (1, "192.168.2.9", Some(Block)),
            (28, "192.168.2.9", Some(Filter)),
            (16, "192.168.2.9", None),
            (28, "fd00::1", Some(Filter)),
            (1, "fd00::1", None),
            (16, "192.0.2.7", Some(Drop)),
            (1, "192.0.2.8", None),
            // An IPv4 network does not hold IPv6 addresses (`handle` first reads a mapped
            // address as IPv4).
            (1, "::ffff:192.168.2.9", None),
        ];
        for (qtype, client, want) in cases {
            assert_eq!(
                compiled(&entry)[0].decide(*qtype, ip(client)),
                *want,
                "type {qtype} from {client}"
            );
        }
    }

    #[test]
    fn a_rule_without_types_or_nets_matches_everything() {
        let entry = AclConfig {
            zones: vec![String::new()],
            rules: vec![rule(AclAction::Block, None, None)],
        };
        for client in ["127.0.0.1", "::1", "10.1.2.3"] {
            assert_eq!(
                compiled(&entry)[0].decide(99, ip(client)),
                Some(AclAction::Block)
            );
        }
        assert!(
            Acl::new(&[AclConfig {
                zones: vec![],
                rules: vec![]
            }])
            .is_none()
        );
    }

    #[test]
    fn a_denied_reply_carries_the_extended_error_only_with_edns() {
        let question = b"\x01a\x00\x00\x01\x00\x01";
        let mut bytes = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        bytes.extend_from_slice(question);
        bytes.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
        let mut qname = String::new();
        let request = Request::parse(&bytes, crate::dns::Transport::Udp, &mut qname).unwrap();
        let flags = Flags::reply_to(&request.header, u16::from(rcode::REFUSED));
        let mut out = Vec::new();
        denied_reply(&mut out, flags, &request, EDE_BLOCKED);
        // OPT: root, type 41, 1232, no ext-rcode, version 0, no DO; RDLEN 6: EDE 15, len 2, 15.
        let opt = &out[12 + question.len()..];
        assert_eq!(
            opt,
            [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 6, 0, 15, 0, 2, 0, 15]
        );
        assert_eq!(out[3] & 0x0f, rcode::REFUSED);
        let no_edns = Request {
            edns: None,
            ..request
        };
        denied_reply(&mut out, flags, &no_edns, EDE_BLOCKED);
        assert_eq!(out.len(), 12 + question.len(), "no OPT without EDNS");
    }
}
