//! The pure lookup: `(zone, question) -> records + outcome`, as the Kubernetes DNS spec and
//! CoreDNS's kubernetes plugin answer. No I/O; records are appended to a reused buffer.
//!
//! Existence decides NXDOMAIN vs NODATA for every query type (RFC 8020): a name exists when an
//! A query for it would find something, or when it is a structural name (apex, `svc`, `pod`,
//! an existing namespace, `dns-version`, `ns.dns`).

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::RecordType;

use super::qname::{self, Branch, Selector, Shape};
use super::records::{EndpointEntry, EntryKind, PortEntry, ServiceEntry};
use super::{
    AnswerBuf, ClusterZone, DNS_SCHEMA_VERSION, DNS_VERSION_TTL, MAX_CNAME_CHAIN, Outcome, Owner,
    Rcode, Rdata, Rr, SOA_MAX_TTL, Suffix, Target,
};
use crate::config::{PodMode, is_reverse_zone};

/// Answers `qname` (lower-case, no trailing dot) for `qtype`, filling `out`.
pub fn lookup(zone: &ClusterZone, qname: &str, qtype: RecordType, out: &mut AnswerBuf) -> Outcome {
    out.clear();
    let Some(matched) = best_zone(&zone.config.zones, qname) else {
        return Outcome::NotOurs;
    };
    let rel = relative(qname, matched);
    let exists = if is_reverse_zone(matched) {
        reverse(zone, qname, rel, qtype, out)
    } else if zone.config.is_multicluster(matched) {
        super::multicluster::name(zone, qname, rel, qtype, out)
    } else {
        forward_zone_name(zone, qname, rel, qtype, &Owner::Query, 0, out)
    };
    let config = &zone.config;
    let soa = super::transfer::soa(zone);
    let zone_labels = label_count(matched);
    if exists {
        return Outcome::Answer {
            rcode: Rcode::NoError,
            zone_labels,
            soa: out.answers.is_empty().then_some(soa),
        };
    }
    out.clear();
    if config
        .fallthrough
        .iter()
        .any(|z| z.is_empty() || in_zone(qname, z))
    {
        return Outcome::FallThrough;
    }
    // Until the first full sync an absent name may just not be known yet.
    let rcode = if zone.index.is_synced() {
        Rcode::NxDomain
    } else {
        Rcode::ServFail
    };
    Outcome::Answer {
        rcode,
        zone_labels,
        soa: Some(soa),
    }
}

/// The most specific zone containing `qname`.
pub fn best_zone<'z>(zones: &'z [String], qname: &str) -> Option<&'z str> {
    zones
        .iter()
        .filter(|z| in_zone(qname, z))
        .max_by_key(|z| z.len())
        .map(String::as_str)
}

/// Is `name` equal to or below `zone` (both lower-case, no trailing dot; `""` is the root)?
pub fn in_zone(name: &str, zone: &str) -> bool {
    zone.is_empty()
        || name == zone
        || (name.len() > zone.len()
            && name.ends_with(zone)
            && name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

pub fn relative<'a>(name: &'a str, zone: &str) -> &'a str {
    if name.len() == zone.len() {
        ""
    } else {
        &name[..name.len() - zone.len() - 1]
    }
}

pub fn label_count(zone: &str) -> usize {
    if zone.is_empty() {
        0
    } else {
        zone.bytes().filter(|b| *b == b'.').count() + 1
    }
}

/// A name below a forward zone. Returns whether the name exists.
pub(super) fn forward_zone_name(
    zone: &ClusterZone,
    qname: &str,
    rel: &str,
    qtype: RecordType,
    owner: &Owner,
    depth: usize,
    out: &mut AnswerBuf,
) -> bool {
    let config = &zone.config;
    let ttl = config.ttl;
    match qname::parse(rel) {
        Shape::Apex => {
            apex(zone, qtype, owner, out);
            true
        }
        Shape::DnsVersion => {
            if qtype == RecordType::TXT {
                push(out, owner, DNS_VERSION_TTL, Rdata::Txt(DNS_SCHEMA_VERSION));
            }
            true
        }
        Shape::Dns => true,
        Shape::NsDns => {
            for (_, ip) in own_names(zone) {
                push_address(out, owner, ttl, ip, qtype);
            }
            true
        }
        Shape::Branch(_) => true,
        Shape::Namespace { branch, namespace } => {
            // CoreDNS answers nothing under `pod` when pods are disabled, namespaces included.
            !(branch == Branch::Pod && config.pods == PodMode::Disabled)
                && zone.index.namespace_exists(namespace)
        }
        Shape::Object {
            branch: Branch::Pod,
            namespace,
            name,
            ..
        } => pod(zone, namespace, name, qtype, owner, out),
        Shape::Object {
            branch: Branch::Svc,
            key,
            selector,
            ..
        } => match zone.index.service(key) {
            Some(entry) => service(zone, qname, &entry, selector, qtype, owner, depth, out),
            None => false,
        },
        Shape::Invalid => false,
    }
}

/// SOA and NS at a zone apex; every other type is NODATA there.
fn apex(zone: &ClusterZone, qtype: RecordType, owner: &Owner, out: &mut AnswerBuf) {
    let config = &zone.config;
    match qtype {
        RecordType::SOA => push(
            out,
            owner,
            config.ttl.min(SOA_MAX_TTL),
            Rdata::Soa {
                serial: zone.index.serial(),
                minimum: config.ttl,
                apex: None,
            },
        ),
        RecordType::NS => {
            for (target, ip) in own_names(zone) {
                if !out
                    .answers
                    .iter()
                    .any(|r| r.data == Rdata::Ns(target.clone()))
                {
                    push(out, owner, config.ttl, Rdata::Ns(target.clone()));
                }
                let glue = Owner::Name(target);
                let data = Rdata::address(ip);
                if !out
                    .additionals
                    .iter()
                    .any(|r| r.owner == glue && r.data == data)
                {
                    out.additionals.push(Rr {
                        owner: glue,
                        ttl: config.ttl,
                        data,
                    });
                }
            }
        }
        _ => {}
    }
}

/// The nameserver names and addresses, as CoreDNS: the Services whose ready endpoints include
/// one of the server's own addresses (name → ClusterIP), else `ns.dns.<zone>` → own addresses.
pub(crate) fn own_names(zone: &ClusterZone) -> Vec<(Target, IpAddr)> {
    let mut names = Vec::new();
    for ip in &zone.config.own_addrs {
        let services: Vec<String> = zone.index.with_ptr_owners(*ip, |owners| {
            owners
                .iter()
                .filter(|o| !o.cluster_ip)
                .map(|o| o.service().to_owned())
                .collect()
        });
        for key in services {
            if let Some(entry) = zone.index.service(&key)
                && let EntryKind::ClusterIp(ips) = &entry.kind
            {
                for cluster_ip in ips {
                    let pair = (
                        Target {
                            labels: entry.target.clone(),
                            suffix: Suffix::QueryZone,
                        },
                        *cluster_ip,
                    );
                    if !names.contains(&pair) {
                        names.push(pair);
                    }
                }
            }
        }
    }
    if names.is_empty() {
        let ns: Arc<str> = Arc::from("ns.dns");
        for ip in &zone.config.own_addrs {
            names.push((
                Target {
                    labels: ns.clone(),
                    suffix: Suffix::QueryZone,
                },
                *ip,
            ));
        }
    }
    names
}

/// `<dashed-ip>.<ns>.pod.<zone>`. CoreDNS ignores labels left of the address.
fn pod(
    zone: &ClusterZone,
    namespace: &str,
    name: &str,
    qtype: RecordType,
    owner: &Owner,
    out: &mut AnswerBuf,
) -> bool {
    let config = &zone.config;
    if config.pods == PodMode::Disabled || !zone.index.namespace_exists(namespace) {
        return false;
    }
    let Some(ip) = pod_ip(name) else {
        return false;
    };
    if config.pods == PodMode::Verified && !zone.index.pod_ip_in_namespace(ip, namespace) {
        return false;
    }
    push_address(out, owner, config.ttl, ip, qtype);
    true
}

/// `1-2-3-4` → 1.2.3.4; `fd00--1` → fd00::1 (CoreDNS: three dashes and no `--` is IPv4).
pub fn pod_ip(label: &str) -> Option<IpAddr> {
    let mut buf = [0u8; 64];
    let bytes = label.as_bytes();
    if bytes.len() > buf.len() {
        return None;
    }
    let dashes = bytes.iter().filter(|b| **b == b'-').count();
    let v4 = dashes == 3 && !label.contains("--");
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = match (*src, v4) {
            (b'-', true) => b'.',
            (b'-', false) => b':',
            (b, _) => b,
        };
    }
    let text = std::str::from_utf8(&buf[..bytes.len()]).ok()?;
    if v4 {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    } else {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    }
}

/// One hit of a service query: an address with a port and the name it is known by.
struct Hit<'e> {
    ip: IpAddr,
    port: Option<u16>,
    target: &'e Arc<str>,
}

/// A service name with what is asked of it. Returns whether the name exists.
#[allow(clippy::too_many_arguments)]
pub(super) fn service(
    zone: &ClusterZone,
    qname: &str,
    entry: &ServiceEntry,
    selector: Selector<'_>,
    qtype: RecordType,
    owner: &Owner,
    depth: usize,
    out: &mut AnswerBuf,
) -> bool {
    let config = &zone.config;
    let ttl = config.ttl;
    let by_endpoints = match (&entry.kind, selector) {
        (EntryKind::ExternalName(None), _) => return false,
        (EntryKind::ExternalName(Some(_)), Selector::Endpoint(_) | Selector::Port { .. }) => {
            return false;
        }
        (EntryKind::ExternalName(Some(target)), Selector::Service) => {
            external_name(zone, qname, target, qtype, owner, depth, out);
            return true;
        }
        (EntryKind::ClusterIp(_), _)
            if config.ignore_empty_service && !entry.has_ready_endpoints() =>
        {
            return false;
        }
        (EntryKind::Headless, _) | (_, Selector::Endpoint(_)) => true,
        (EntryKind::ClusterIp(_), _) => false,
    };

    // Count the hits first: existence, and SRV weights as CoreDNS computes them.
    let (mut hits, mut may_repeat) = (0usize, false);
    for_each_hit(entry, selector, by_endpoints, |_, must_dedup| {
        hits += 1;
        may_repeat |= must_dedup;
    });
    if hits == 0 {
        return false;
    }

    let found = Found {
        entry,
        selector,
        by_endpoints,
        owner,
        ttl,
    };
    match qtype {
        RecordType::A | RecordType::AAAA => found.addresses(qtype == RecordType::A, out),
        RecordType::SRV => found.srv(hits, may_repeat, out),
        _ => {}
    }
    true
}

/// A service name that exists, and what is needed to answer it.
struct Found<'a, 'e> {
    entry: &'e ServiceEntry,
    selector: Selector<'a>,
    by_endpoints: bool,
    owner: &'a Owner,
    ttl: u32,
}

impl Found<'_, '_> {
    fn addresses(&self, want_v4: bool, out: &mut AnswerBuf) {
        let (entry, owner, ttl) = (self.entry, self.owner, self.ttl);
        if self.selector == Selector::Service {
            // Precomputed, deduplicated: the hot path.
            if want_v4 {
                for a in &entry.v4 {
                    push(out, owner, ttl, Rdata::A(*a));
                }
            } else {
                for a in &entry.v6 {
                    push(out, owner, ttl, Rdata::Aaaa(*a));
                }
            }
            return;
        }
        for_each_hit(entry, self.selector, self.by_endpoints, |hit, _| {
            let data = match hit.ip {
                IpAddr::V4(a) if want_v4 => Rdata::A(a),
                IpAddr::V6(a) if !want_v4 => Rdata::Aaaa(a),
                _ => return,
            };
            if !out.answers.iter().any(|r| r.data == data) {
                push(out, owner, ttl, data);
            }
        });
    }

    /// SRV records with their targets' addresses as glue; `hits` sets the weight. Repeated
    /// records are dropped (CoreDNS keeps the first of each): by a scan of the answer for a few
    /// hits, through hash tables when there are many, so a big answer costs linear time.
    fn srv(&self, hits: usize, may_repeat: bool, out: &mut AnswerBuf) {
        if may_repeat && hits > SRV_SCAN_LIMIT {
            let tabled = SRV_SEEN.with(|cell| {
                let Ok(mut seen) = cell.try_borrow_mut() else {
                    return false;
                };
                seen.reset(hits);
                self.srv_records(hits, Dedup::Table(&mut seen), out);
                seen.trim();
                true
            });
            if tabled {
                return;
            }
        }
        self.srv_records(hits, Dedup::Scan, out);
    }

    fn srv_records(&self, hits: usize, mut dedup: Dedup<'_>, out: &mut AnswerBuf) {
        let (owner, ttl) = (self.owner, self.ttl);
        let weight = u16::try_from((100 / hits).max(1)).unwrap_or(1);
        for_each_hit(
            self.entry,
            self.selector,
            self.by_endpoints,
            |hit, must_dedup| {
                // The portless sentinel matches, but has no port to publish.
                let Some(port) = hit.port else {
                    return;
                };
                let target = Target {
                    labels: hit.target.clone(),
                    suffix: Suffix::QueryZone,
                };
                let srv = Rdata::Srv {
                    priority: 0,
                    weight,
                    port,
                    target: target.clone(),
                };
                let glue = Rr {
                    owner: Owner::Name(target),
                    ttl,
                    data: Rdata::address(hit.ip),
                };
                let (srv_seen, glue_seen) = dedup.seen(out, &srv, &glue, hit.ip, must_dedup);
                if !srv_seen {
                    push(out, owner, ttl, srv);
                }
                if !glue_seen {
                    out.additionals.push(glue);
                }
            },
        );
    }
}

/// Up to this many hits an SRV answer deduplicates by scanning what it already holds.
const SRV_SCAN_LIMIT: usize = 16;
/// Tables larger than this many slots are freed after the answer that needed them.
const SRV_TABLE_KEEP: usize = 1 << 16;

thread_local! {
    /// The tables SRV deduplication reuses on this thread: no allocation once they have grown.
    static SRV_SEEN: std::cell::RefCell<SrvSeen> = std::cell::RefCell::default();
}

/// How an SRV answer finds the records it already holds.
enum Dedup<'s> {
    /// A scan of the answer, only for hits that may repeat an earlier one.
    Scan,
    /// Hash tables of every record pushed so far.
    Table(&'s mut SrvSeen),
}

impl Dedup<'_> {
    /// Whether the SRV record and its glue are already in `out`. The caller pushes what was not
    /// seen, at once: the table remembers it at the index it is about to take.
    fn seen(
        &mut self,
        out: &AnswerBuf,
        srv: &Rdata,
        glue: &Rr,
        ip: IpAddr,
        must_dedup: bool,
    ) -> (bool, bool) {
        match self {
            Dedup::Scan if !must_dedup => (false, false),
            Dedup::Scan => (
                out.answers.iter().any(|r| same_srv(&r.data, srv)),
                out.additionals
                    .iter()
                    .any(|r| r.owner == glue.owner && r.data == glue.data),
            ),
            Dedup::Table(seen) => (
                seen.answer_seen(&out.answers, srv),
                seen.glue_seen(&out.additionals, glue, ip),
            ),
        }
    }
}

/// Open-addressing tables of the SRV records (target, port) and glue (owner, address) already
/// in an answer: each slot holds an index into the section plus one (0 is empty), so a record
/// is hashed once and compared only with records of the same hash.
#[derive(Default)]
struct SrvSeen {
    hasher: std::hash::RandomState,
    answers: Vec<u32>,
    additionals: Vec<u32>,
}

impl SrvSeen {
    /// Empty tables for up to `records` records each, at most half full.
    fn reset(&mut self, records: usize) {
        let slots = (records * 2).next_power_of_two();
        for table in [&mut self.answers, &mut self.additionals] {
            table.clear();
            table.resize(slots, 0);
        }
    }

    fn trim(&mut self) {
        for table in [&mut self.answers, &mut self.additionals] {
            if table.len() > SRV_TABLE_KEEP {
                *table = Vec::new();
            }
        }
    }

    fn answer_seen(&mut self, answers: &[Rr], srv: &Rdata) -> bool {
        let Rdata::Srv { port, target, .. } = srv else {
            return false;
        };
        let hash = self.hasher.hash_one((&*target.labels, *port));
        probe(&mut self.answers, hash, answers.len(), |i| {
            same_srv(&answers[i].data, srv)
        })
    }

    fn glue_seen(&mut self, additionals: &[Rr], glue: &Rr, ip: IpAddr) -> bool {
        let labels = match &glue.owner {
            Owner::Name(target) => &*target.labels,
            _ => "",
        };
        let hash = self.hasher.hash_one((labels, ip));
        probe(&mut self.additionals, hash, additionals.len(), |i| {
            additionals[i].owner == glue.owner && additionals[i].data == glue.data
        })
    }
}

/// Looks for an entry `same` accepts among the slots of `hash`; without one, records `index`
/// there and returns false. The table is never more than half full, so an empty slot is found.
fn probe(table: &mut [u32], hash: u64, index: usize, same: impl Fn(usize) -> bool) -> bool {
    let mask = table.len() - 1;
    let mut slot = hash as usize & mask;
    loop {
        match table[slot] {
            0 => {
                table[slot] = u32::try_from(index + 1).unwrap_or(u32::MAX);
                return false;
            }
            taken if same(taken as usize - 1) => return true,
            _ => slot = (slot + 1) & mask,
        }
    }
}

/// SRV records are deduplicated by (target, port), as CoreDNS does.
fn same_srv(a: &Rdata, b: &Rdata) -> bool {
    match (a, b) {
        (
            Rdata::Srv {
                port: pa,
                target: ta,
                ..
            },
            Rdata::Srv {
                port: pb,
                target: tb,
                ..
            },
        ) => pa == pb && (Arc::ptr_eq(&ta.labels, &tb.labels) || ta.labels == tb.labels),
        _ => false,
    }
}

/// Calls `f(hit, must_dedup)` for every (address, port) the query selects, in CoreDNS's order.
/// `must_dedup` is false when the hit cannot repeat an earlier record, so answers skip the scan.
/// How many records a selector finds in an entry (endpoints' ports, or the ClusterIPs').
pub(crate) fn hit_count(entry: &ServiceEntry, selector: Selector<'_>, by_endpoints: bool) -> usize {
    let mut hits = 0;
    for_each_hit(entry, selector, by_endpoints, |_, _| hits += 1);
    hits
}

fn for_each_hit<'e>(
    entry: &'e ServiceEntry,
    selector: Selector<'_>,
    by_endpoints: bool,
    mut f: impl FnMut(Hit<'e>, bool),
) {
    if by_endpoints {
        let across = entry.labels_repeat_across_slices;
        for (endpoint, ports) in entry.endpoints() {
            if let Selector::Endpoint(label) = selector
                && endpoint.label() != label
            {
                continue;
            }
            endpoint_hits(endpoint, ports, across, selector, &mut f);
        }
    } else if let EntryKind::ClusterIp(ips) = &entry.kind {
        for port in entry.ports.iter().filter(|p| port_matches(p, selector)) {
            for ip in ips {
                f(
                    Hit {
                        ip: *ip,
                        port: port.port,
                        target: &entry.target,
                    },
                    true,
                );
            }
        }
    }
}

fn endpoint_hits<'e>(
    endpoint: &'e EndpointEntry,
    ports: &[PortEntry],
    labels_repeat_across_slices: bool,
    selector: Selector<'_>,
    f: &mut impl FnMut(Hit<'e>, bool),
) {
    let mut first = true;
    for port in ports.iter().filter(|p| port_matches(p, selector)) {
        f(
            Hit {
                ip: endpoint.ip,
                port: port.port,
                target: &endpoint.target,
            },
            endpoint.repeats_label || labels_repeat_across_slices || !first,
        );
        first = false;
    }
}

/// `_port._proto` against a port: each side matches when equal or when the query left it empty.
fn port_matches(port: &PortEntry, selector: Selector<'_>) -> bool {
    match selector {
        Selector::Port {
            port: name,
            protocol,
        } => {
            (name.is_empty() || *port.name == *name)
                && (protocol.is_empty() || *port.protocol == *protocol)
        }
        _ => true,
    }
}

/// An ExternalName service: a CNAME for every type but SRV; for A/AAAA an in-zone target is
/// chased and its records appended (the CNAME is kept only if the target has some).
fn external_name(
    zone: &ClusterZone,
    qname: &str,
    target: &Arc<str>,
    qtype: RecordType,
    owner: &Owner,
    depth: usize,
    out: &mut AnswerBuf,
) {
    if qtype == RecordType::SRV {
        return;
    }
    // `x CNAME x` is a loop: drop it (CoreDNS does the same).
    if target.eq_ignore_ascii_case(qname) {
        return;
    }
    let cname = Target {
        labels: target.clone(),
        suffix: Suffix::Root,
    };
    let chase = matches!(qtype, RecordType::A | RecordType::AAAA);
    // Lower-cased on the stack: the query path does not allocate. A name is at most 253
    // octets; anything longer cannot be in a zone of ours and is not chased.
    let mut buf = [0u8; 256];
    let Some(lower) = buf.get_mut(..target.len()).map(|b| {
        b.copy_from_slice(target.as_bytes());
        b.make_ascii_lowercase();
        &*b
    }) else {
        push(out, owner, zone.config.ttl, Rdata::Cname(cname));
        return;
    };
    // ASCII lower-casing keeps UTF-8 valid.
    let lower = std::str::from_utf8(lower).unwrap_or_default();
    let in_zone_target = chase
        .then(|| best_zone(&zone.config.zones, lower))
        .flatten()
        .filter(|z| !is_reverse_zone(z));
    let Some(matched) = in_zone_target else {
        push(out, owner, zone.config.ttl, Rdata::Cname(cname));
        return;
    };
    if depth + 1 >= MAX_CNAME_CHAIN {
        return;
    }
    let mark_answers = out.answers.len();
    let mark_additionals = out.additionals.len();
    push(out, owner, zone.config.ttl, Rdata::Cname(cname.clone()));
    let before = out.answers.len();
    forward_zone_name(
        zone,
        lower,
        relative(lower, matched),
        qtype,
        &Owner::Name(cname),
        depth + 1,
        out,
    );
    if out.answers.len() == before {
        out.answers.truncate(mark_answers);
        out.additionals.truncate(mark_additionals);
    }
}

/// A name below a reverse zone: PTR for ClusterIPs and ready endpoint addresses.
fn reverse(
    zone: &ClusterZone,
    qname: &str,
    rel: &str,
    qtype: RecordType,
    out: &mut AnswerBuf,
) -> bool {
    if rel.is_empty() {
        apex(zone, qtype, &Owner::Query, out);
        return true;
    }
    let Some(ip) = reverse_ip(qname) else {
        return false;
    };
    let ttl = zone.config.ttl;
    let primary = &zone.config.primary;
    zone.index.with_ptr_owners(ip, |owners| {
        if owners.is_empty() {
            return false;
        }
        if qtype != RecordType::PTR {
            return true;
        }
        let ptr = |target: &Arc<str>| {
            Rdata::Ptr(Target {
                labels: target.clone(),
                suffix: Suffix::Zone(primary.clone()),
            })
        };
        // A ClusterIP names its one Service; otherwise every endpoint name at that address.
        if let Some(first) = owners.iter().find(|o| o.cluster_ip) {
            push(out, &Owner::Query, ttl, ptr(&first.target));
        } else {
            for o in owners {
                let data = ptr(&o.target);
                if !out.answers.iter().any(|r| r.data == data) {
                    push(out, &Owner::Query, ttl, data);
                }
            }
        }
        true
    })
}

/// The address of a complete reverse name (`4.3.2.1.in-addr.arpa`, 32 nibbles `.ip6.arpa`).
pub fn reverse_ip(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let mut n = 0;
        for label in rest.rsplit('.') {
            if n == 4 || label.is_empty() || (label.len() > 1 && label.starts_with('0')) {
                return None;
            }
            octets[n] = label.parse().ok()?;
            n += 1;
        }
        (n == 4).then(|| IpAddr::V4(Ipv4Addr::from(octets)))
    } else if let Some(rest) = name.strip_suffix(".ip6.arpa") {
        let mut value: u128 = 0;
        let mut n = 0;
        for label in rest.rsplit('.') {
            let digit = match label.as_bytes() {
                [d] => (*d as char).to_digit(16)?,
                _ => return None,
            };
            if n == 32 {
                return None;
            }
            value = (value << 4) | u128::from(digit);
            n += 1;
        }
        (n == 32).then(|| IpAddr::V6(Ipv6Addr::from(value)))
    } else {
        None
    }
}

fn push(out: &mut AnswerBuf, owner: &Owner, ttl: u32, data: Rdata) {
    out.answers.push(Rr {
        owner: owner.clone(),
        ttl,
        data,
    });
}

fn push_address(out: &mut AnswerBuf, owner: &Owner, ttl: u32, ip: IpAddr, qtype: RecordType) {
    match (ip, qtype) {
        (IpAddr::V4(a), RecordType::A) => push(out, owner, ttl, Rdata::A(a)),
        (IpAddr::V6(a), RecordType::AAAA) => push(out, owner, ttl, Rdata::Aaaa(a)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod srv_dedupe_tests {
    use super::*;
    use crate::cluster::model::{Endpoint, EndpointSet, Port, Service, ServiceKind};
    use crate::zone::records::{BuildOptions, service_entry, slice_entry};

    fn port(name: &str, protocol: &str, port: i32) -> Port {
        Port {
            name: name.into(),
            protocol: protocol.into(),
            port,
        }
    }

    /// A dual-stack headless StatefulSet: each pod's name in an IPv4 and an IPv6 slice, one
    /// address listed twice, and two ports sharing a number (as DNS's 53/UDP and 53/TCP).
    fn dual_stack(pods: usize) -> ServiceEntry {
        let slice = |name: &str, v6: bool| EndpointSet {
            namespace: "ns".into(),
            name: name.into(),
            service: Some("web".into()),
            endpoints: (0..pods)
                .map(|i| Endpoint {
                    addresses: vec![if v6 {
                        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i as u16 + 1))
                    } else {
                        IpAddr::V4(Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250) as u8 + 1))
                    }],
                    ready: true,
                    hostname: Some(format!("web-{}", i % (pods - 1)).into()),
                    target_name: None,
                })
                .collect(),
            ports: vec![
                port("dns", "UDP", 53),
                port("dns-tcp", "TCP", 53),
                port("m", "TCP", 9),
            ],
            import: None,
        };
        let slices = [slice("web-v4", false), slice("web-v6", true)]
            .map(|s| Arc::new(slice_entry(&s, BuildOptions::default())));
        let service = Service {
            namespace: "ns".into(),
            name: "web".into(),
            kind: ServiceKind::Headless,
            ports: vec![],
            external: Box::default(),
        };
        service_entry(&service, &slices)
    }

    fn answer(entry: &ServiceEntry, selector: Selector<'_>, table: bool) -> AnswerBuf {
        let hits = hit_count(entry, selector, true);
        let found = Found {
            entry,
            selector,
            by_endpoints: true,
            owner: &Owner::Query,
            ttl: 5,
        };
        let mut out = AnswerBuf::default();
        if table {
            found.srv(hits, true, &mut out);
        } else {
            found.srv_records(hits, Dedup::Scan, &mut out);
        }
        out
    }

    #[test]
    fn the_table_drops_exactly_what_the_scan_drops() {
        let entry = dual_stack(60);
        assert!(entry.labels_repeat_across_slices);
        for selector in [
            Selector::Service,
            Selector::Port {
                port: "",
                protocol: "",
            },
            Selector::Port {
                port: "dns",
                protocol: "",
            },
            Selector::Port {
                port: "",
                protocol: "tcp",
            },
            Selector::Endpoint("web-0"),
            Selector::Endpoint("web-7"),
        ] {
            let scanned = answer(&entry, selector, false);
            let tabled = answer(&entry, selector, true);
            assert!(!scanned.answers.is_empty(), "{selector:?}");
            assert_eq!(scanned.answers, tabled.answers, "{selector:?}");
            assert_eq!(scanned.additionals, tabled.additionals, "{selector:?}");
        }
        // 59 names (web-0 twice per family) × ports 53 and 9: one SRV record each; glue once
        // per name and address.
        let all = answer(&entry, Selector::Service, true);
        assert_eq!(all.answers.len(), 59 * 2);
        assert_eq!(all.additionals.len(), 120);
    }

    #[test]
    fn a_big_dual_stack_answer_is_deduplicated_in_linear_time() {
        // 2 × 20,000 endpoints × 3 ports: a scan compares ~10^9 pairs (minutes in a debug
        // build); the tables take a fraction of a second.
        let entry = dual_stack(20_000);
        let started = std::time::Instant::now();
        let out = answer(&entry, Selector::Service, true);
        let elapsed = started.elapsed();
        assert_eq!(out.answers.len(), 19_999 * 2);
        assert_eq!(out.additionals.len(), 40_000);
        assert!(
            elapsed < std::time::Duration::from_secs(20),
            "took {elapsed:?}"
        );
    }
}
