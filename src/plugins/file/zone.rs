//! One zone in memory and its lookup, as CoreDNS 1.11's `file` plugin looks names up
//! (`plugin/file/lookup.go`): the names from the apex down are searched for a delegation, the
//! question's name answers, or a wildcard at the deepest missing level does, or NXDOMAIN (NODATA
//! for an empty non-terminal). Apex SOA and NS are kept apart from the names, as CoreDNS keeps
//! them (so an apex with no other records is no name of the tree).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::parse::ReadRecord;
use crate::dns::rtype;

const DS: u16 = 43;
/// CNAMEs followed inside the zone, and lookups nested through CNAMEs, before giving up (as
/// CoreDNS: its loop counter and its `Redo` counter).
const MAX_CHAIN: usize = 8;

/// One record's fixed part and data.
#[derive(Debug)]
pub struct Rec {
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: Box<[u8]>,
    target: Option<Box<str>>,
}

/// The records of one name, in the order read (duplicates dropped, as CoreDNS drops them).
#[derive(Debug, Default)]
struct Node {
    wire: Box<[u8]>,
    records: Vec<Rec>,
}

impl Node {
    fn of(&self, rtype: u16) -> impl Iterator<Item = &Rec> {
        self.records.iter().filter(move |r| r.rtype == rtype)
    }

    fn has(&self, rtype: u16) -> bool {
        self.of(rtype).next().is_some()
    }
}

#[derive(Debug)]
pub struct Zone {
    origin: String,
    origin_wire: Box<[u8]>,
    soa: Rec,
    pub serial: u32,
    apex_ns: Vec<Rec>,
    names: HashMap<Box<str>, Node>,
    /// Every name with a name below it (what CoreDNS's `tree.Next` tells).
    parents: HashSet<Box<str>>,
}

/// How a lookup ended (CoreDNS's `Result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    NoData,
    NameError,
    Delegation,
    ServerFailure,
}

/// A record in a reply: its owner in wire form, and itself.
pub type Item<'z> = (Cow<'z, [u8]>, &'z Rec);

/// What a lookup answers: three sections and how it ended; `chase` is an out-of-zone CNAME
/// target for the forwarder.
#[derive(Debug)]
pub struct Reply<'z> {
    pub sections: [Vec<Item<'z>>; 3],
    pub outcome: Outcome,
    pub chase: Option<String>,
}

impl Reply<'_> {
    fn new(outcome: Outcome) -> Self {
        Reply {
            sections: Default::default(),
            outcome,
            chase: None,
        }
    }
}

/// Looks a name up wherever it lives (the stage's zones), for CNAME targets.
pub trait Zones {
    fn lookup_any<'z>(&'z self, qname: &str, qtype: u16, depth: usize) -> Option<Reply<'z>>;
}

fn wire(name: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(name.len() + 2);
    crate::dns::name::put_labels(&mut out, name);
    out.push(0);
    out.into()
}

impl Zone {
    /// The zone from records read; `None` without a SOA.
    pub fn build(origin: &str, read: Vec<ReadRecord>) -> Option<Zone> {
        let (mut soa, mut apex_ns) = (None, Vec::<Rec>::new());
        let mut names: HashMap<Box<str>, Node> = HashMap::new();
        for r in read {
            let rec = Rec {
                rtype: r.rtype,
                class: r.class,
                ttl: r.ttl,
                rdata: r.rdata.into(),
                target: r.target.map(Into::into),
            };
            if let Some(serial) = r.serial {
                // The last SOA read is the apex's, wherever it stood (as CoreDNS).
                soa = Some((rec, serial));
                continue;
            }
            if rec.rtype == rtype::NS && r.owner == origin {
                if !apex_ns.iter().any(|n| same(n, &rec)) {
                    apex_ns.push(rec);
                }
                continue;
            }
            let node = names
                .entry(r.owner.as_str().into())
                .or_insert_with(|| Node {
                    wire: wire(&r.owner),
                    records: Vec::new(),
                });
            if !node.records.iter().any(|n| same(n, &rec)) {
                node.records.push(rec);
            }
        }
        let (soa, serial) = soa?;
        let parents = names.keys().flat_map(|n| ancestors(n)).collect();
        Some(Zone {
            origin: origin.to_owned(),
            origin_wire: wire(origin),
            soa,
            serial,
            apex_ns,
            names,
            parents,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Names with records (the apex's SOA and NS aside).
    pub fn names(&self) -> usize {
        self.names.len()
    }

    fn apex<'z>(&'z self, recs: &'z [Rec]) -> Vec<Item<'z>> {
        recs.iter()
            .map(|r| (Cow::Borrowed(&*self.origin_wire), r))
            .collect()
    }

    fn soa(&self) -> Vec<Item<'_>> {
        vec![(Cow::Borrowed(&*self.origin_wire), &self.soa)]
    }

    /// The answer for `qname` (lower-case, no trailing dot, in this zone).
    pub fn lookup<'z>(
        &'z self,
        zones: &'z dyn Zones,
        qname: &str,
        qtype: u16,
        depth: usize,
    ) -> Reply<'z> {
        if qname == self.origin && matches!(qtype, rtype::SOA | rtype::NS) {
            let mut reply = Reply::new(Outcome::Success);
            if qtype == rtype::SOA {
                reply.sections = [self.soa(), self.apex(&self.apex_ns), vec![]];
            } else {
                let glue = self.glue(&self.origin, &self.apex_ns);
                reply.sections = [self.apex(&self.apex_ns), vec![], glue];
            }
            return reply;
        }
        if depth > MAX_CHAIN {
            return Reply::new(Outcome::ServerFailure);
        }
        let (mut found, mut wild) = (None, None);
        for parts in self.levels(qname) {
            found = self.names.get(parts).map(|n| (parts, n));
            let Some((name, node)) = found else {
                let wildcard = format!("*.{}", parent(parts));
                wild = self.names.get(wildcard.as_str()).or(wild);
                continue;
            };
            if !node.has(rtype::NS) || (qtype == DS && name == qname) {
                continue;
            }
            let mut reply = Reply::new(Outcome::Delegation);
            let ns: Vec<&Rec> = node.of(rtype::NS).collect();
            reply.sections[2] = self.glue_of(name, ns.iter().copied());
            reply.sections[1] = ns
                .into_iter()
                .map(|r| (Cow::Borrowed(&*node.wire), r))
                .collect();
            return reply;
        }
        if let Some((_, node)) = found {
            return self.at_node(zones, Cow::Borrowed(&node.wire), node, qtype, depth, true);
        }
        if let Some(node) = wild {
            return self.at_node(
                zones,
                Cow::Owned(wire(qname).into()),
                node,
                qtype,
                depth,
                false,
            );
        }
        let outcome = if self.parents.contains(qname) {
            Outcome::Success
        } else {
            Outcome::NameError
        };
        let mut reply = Reply::new(outcome);
        reply.sections[1] = self.soa();
        reply
    }

    /// The answer from the records of a name (or of a wildcard, `owner` the question's name):
    /// its CNAME followed, its records of the type, or NODATA.
    fn at_node<'z>(
        &'z self,
        zones: &'z dyn Zones,
        owner: Cow<'z, [u8]>,
        node: &'z Node,
        qtype: u16,
        depth: usize,
        additional: bool,
    ) -> Reply<'z> {
        if qtype != rtype::CNAME && node.has(rtype::CNAME) {
            let cnames = node.of(rtype::CNAME).map(|r| (owner.clone(), r)).collect();
            return self.follow(zones, cnames, qtype, depth + 1);
        }
        let records: Vec<Item<'z>> = node.of(qtype).map(|r| (owner.clone(), r)).collect();
        if records.is_empty() {
            let mut reply = Reply::new(Outcome::NoData);
            reply.sections[1] = self.soa();
            return reply;
        }
        let extra = if additional {
            self.additional(&records)
        } else {
            vec![]
        };
        let mut reply = Reply::new(Outcome::Success);
        reply.sections = [records, self.apex(&self.apex_ns), extra];
        reply
    }

    /// CoreDNS's `externalLookup`: the CNAMEs, then the chain inside the zone (names only, no
    /// wildcards), then the target's records of the type; a target that is no name here is
    /// looked up as a new question (another zone here, or the forwarder).
    fn follow<'z>(
        &'z self,
        zones: &'z dyn Zones,
        mut answer: Vec<Item<'z>>,
        qtype: u16,
        depth: usize,
    ) -> Reply<'z> {
        let mut target = answer[0].1.target.as_deref().unwrap_or_default().to_owned();
        let mut hops = 0;
        let mut outcome = Outcome::Success;
        let mut chase = None;
        loop {
            let Some(node) = self.names.get(target.as_str()) else {
                match zones.lookup_any(&target, qtype, depth) {
                    Some(inner) => {
                        outcome = inner_outcome(&inner);
                        answer.extend(inner.sections.into_iter().next().unwrap_or_default());
                        chase = inner.chase;
                    }
                    None => chase = Some(target),
                }
                break;
            };
            let cnames: Vec<&Rec> = node.of(rtype::CNAME).collect();
            if cnames.is_empty() {
                answer.extend(node.of(qtype).map(|r| (Cow::Borrowed(&*node.wire), r)));
                break;
            }
            target = cnames[0].target.as_deref().unwrap_or_default().to_owned();
            answer.extend(cnames.into_iter().map(|r| (Cow::Borrowed(&*node.wire), r)));
            hops += 1;
            if hops > MAX_CHAIN {
                break;
            }
        }
        Reply {
            sections: [answer, self.apex(&self.apex_ns), vec![]],
            outcome,
            chase,
        }
    }

    /// Addresses of in-zone MX and SRV targets.
    fn additional<'z>(&'z self, answer: &[Item<'z>]) -> Vec<Item<'z>> {
        let mut extra = Vec::new();
        for (_, r) in answer {
            if r.rtype != rtype::MX && r.rtype != rtype::SRV {
                continue;
            }
            let Some(target) = r.target.as_deref() else {
                continue;
            };
            if crate::zone::lookup::in_zone(target, &self.origin) {
                extra.extend(self.addresses(target));
            }
        }
        extra
    }

    fn glue<'z>(&'z self, owner: &str, ns: &'z [Rec]) -> Vec<Item<'z>> {
        self.glue_of(owner, ns.iter())
    }

    /// A and AAAA of the NS targets below the NS owner.
    fn glue_of<'z>(&'z self, owner: &str, ns: impl Iterator<Item = &'z Rec>) -> Vec<Item<'z>> {
        let mut glue = Vec::new();
        for r in ns {
            let target = r.target.as_deref().unwrap_or_default();
            if crate::zone::lookup::in_zone(target, owner) {
                glue.extend(self.addresses(target));
            }
        }
        glue
    }

    fn addresses(&self, name: &str) -> Vec<Item<'_>> {
        let Some(node) = self.names.get(name) else {
            return vec![];
        };
        let wire = || Cow::Borrowed(&*node.wire);
        let a = node.of(rtype::A).map(|r| (wire(), r));
        a.chain(node.of(rtype::AAAA).map(|r| (wire(), r))).collect()
    }

    /// The names from the apex down to `qname`, one label more each.
    fn levels<'q>(&self, qname: &'q str) -> impl Iterator<Item = &'q str> {
        let extra = &qname[..qname.len() - self.origin.len()];
        let mut cuts: Vec<&'q str> = vec![&qname[extra.len()..]];
        let dots = extra.trim_end_matches('.');
        cuts.extend(
            dots.match_indices('.')
                .map(|(i, _)| &qname[i + 1..])
                .rev()
                .chain((!dots.is_empty()).then_some(qname)),
        );
        cuts.into_iter()
    }
}

/// How CoreDNS reads the reply of its own lookup of a CNAME target.
fn inner_outcome(inner: &Reply<'_>) -> Outcome {
    match inner.outcome {
        Outcome::NameError => Outcome::NameError,
        Outcome::ServerFailure => Outcome::ServerFailure,
        _ if inner.sections[0].is_empty() && inner.chase.is_none() => Outcome::NoData,
        _ => Outcome::Success,
    }
}

fn same(a: &Rec, b: &Rec) -> bool {
    a.rtype == b.rtype && a.class == b.class && a.rdata == b.rdata
}

/// The name without its first label (`""` past the last).
fn parent(name: &str) -> &str {
    name.split_once('.').map_or("", |(_, rest)| rest)
}

fn ancestors(name: &str) -> impl Iterator<Item = Box<str>> + '_ {
    let mut rest = name;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        rest = parent(rest);
        Some(rest.into())
    })
}

/// Appends a record with this owner (wire, uncompressed).
pub fn put(out: &mut Vec<u8>, owner: &[u8], r: &Rec) {
    out.extend_from_slice(owner);
    out.extend_from_slice(&r.rtype.to_be_bytes());
    out.extend_from_slice(&r.class.to_be_bytes());
    out.extend_from_slice(&r.ttl.to_be_bytes());
    out.extend_from_slice(&(r.rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&r.rdata);
}
