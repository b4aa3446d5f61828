//! `k8s_external`: the external addresses of the cluster's Services under zones of their own,
//! as CoreDNS 1.11's `k8s_external` serves them, from the `kubernetes` stage's index.
//!
//! - `<svc>.<ns>.<zone>`: A/AAAA from `spec.externalIPs` and the load balancer ingress IPs; an
//!   ingress hostname is a CNAME (its target's records are looked up where the server forwards).
//!   `_port._proto.<svc>.<ns>.<zone>` SRV to `<svc>.<ns>.<zone>` (or the hostname), with the
//!   addresses as glue. `<anything>.<svc>.<ns>.<zone>` answers as the Service does.
//! - `headless`: a headless Service without external addresses answers with its ready
//!   endpoints (`<label>.<svc>.<ns>.<zone>` for one), and so does an endpoint name of a Service
//!   without external addresses.
//! - The apex has SOA (`ns1.<apex>.<zone> hostmaster.<apex>.<zone>`, timers as the cluster zone,
//!   MINIMUM and TTL the configured `ttl`) and NS `ns1.<apex>.<zone>`, whose addresses are the
//!   server's own (the external addresses of the Services it is an endpoint of, else its own
//!   addresses).
//! - A Service without external addresses, a name too long, an unknown namespace: NXDOMAIN
//!   (or the next stage, where `fallthrough` covers the name); `<ns>.<zone>` and another type
//!   of a name that exists: NODATA. Every answer is authoritative and carries the SOA when it
//!   has no records.
//!
//! Unlike CoreDNS, an RRset never repeats a record (CoreDNS writes a hostname's CNAME once per
//! Service port).

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::RecordType;

use super::{Flow, Records, Work};
use crate::cluster::model::External;
use crate::config::K8sExternalConfig;
use crate::dns::{Request, rcode};
use crate::metrics::dns::{Plugin, QueryReport};
use crate::zone::lookup::{best_zone, in_zone, label_count, relative, reverse_ip};
use crate::zone::qname::strip_underscore;
use crate::zone::records::{EntryKind, PortEntry};
use crate::zone::{
    AnswerBuf, ClusterZone, Owner, Rdata, Rr, SoaValues, Suffix, Target, intern_apex,
};

/// A configured `k8s_external` and the cluster zone whose Services it serves.
#[derive(Debug, Clone)]
pub struct K8sExternal {
    config: Arc<K8sExternalConfig>,
    apex: &'static str,
    /// `<apex>.<zone>` for each zone, in the zones' order (made once, not per query).
    apex_names: Vec<String>,
    cluster: ClusterZone,
}

/// One Service address (and port) a name stands for, as CoreDNS's `msg.Service`.
struct Hit {
    host: External,
    /// `None` for the stand-in of a portless Service: no SRV record.
    port: Option<u16>,
    /// The SRV target (and glue owner) without the zone: `svc.ns` or `label.svc.ns`.
    name: Arc<str>,
}

/// What a name below a zone stands for.
struct Found {
    hits: Vec<Hit>,
    rcode: u8,
}

impl K8sExternal {
    pub fn new(config: Arc<K8sExternalConfig>, cluster: ClusterZone) -> K8sExternal {
        let apex = intern_apex(&config.apex);
        let apex_names = config.zones.iter().map(|z| format!("{apex}.{z}")).collect();
        K8sExternal {
            config,
            apex,
            apex_names,
            cluster,
        }
    }

    pub fn handle(
        &self,
        request: &Request<'_>,
        qname: &str,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Flow {
        let Some(zone) = best_zone(&self.config.zones, qname) else {
            return Flow::Next;
        };
        let qtype = RecordType::from(request.qtype);
        let out = &mut work.answer;
        out.clear();
        let rcode = match self.special(qname, zone, qtype, out) {
            Some(rcode) => rcode,
            None => {
                let found = self.find(qname, zone, qtype);
                if found.hits.is_empty() {
                    let nxdomain = found.rcode == rcode::NXDOMAIN;
                    if nxdomain && self.config.fallthrough.iter().any(|z| in_zone(qname, z)) {
                        return Flow::Next;
                    }
                    found.rcode
                } else {
                    self.answer(&found.hits, qtype, out);
                    rcode::NOERROR
                }
            }
        };
        report.plugin = Plugin::K8sExternal;
        Flow::Records(Records {
            rcode: u16::from(rcode),
            zone_labels: label_count(zone),
            soa: out.answers.is_empty().then(|| self.soa()),
        })
    }

    /// The apex and the names below `<apex>.<zone>`, which CoreDNS answers before looking at
    /// Services; `None` for any other name.
    fn special(
        &self,
        qname: &str,
        zone: &str,
        qtype: RecordType,
        out: &mut AnswerBuf,
    ) -> Option<u8> {
        for (z, apex_name) in self.config.zones.iter().zip(&self.apex_names) {
            if qname == z {
                self.apex_records(qtype, out);
                return Some(rcode::NOERROR);
            }
            if in_zone(qname, apex_name) {
                return Some(self.below_apex(relative(qname, zone), qtype, out));
            }
        }
        None
    }

    fn apex_records(&self, qtype: RecordType, out: &mut AnswerBuf) {
        let ttl = self.config.ttl;
        match qtype {
            RecordType::SOA => out.answers.push(Rr {
                owner: Owner::QueryZone,
                ttl,
                data: self.soa_rdata(),
            }),
            RecordType::NS => {
                let ns = self.ns_target();
                out.answers.push(Rr {
                    owner: Owner::QueryZone,
                    ttl,
                    data: Rdata::Ns(ns.clone()),
                });
                for ip in self.own_addresses() {
                    out.additionals
                        .push(address(Owner::Name(ns.clone()), ttl, ip));
                }
            }
            _ => {}
        }
    }

    /// `<apex>` is an empty non-terminal, `ns1.<apex>` has the server's addresses, every other
    /// name below is NXDOMAIN. `base` is the name without the zone.
    fn below_apex(&self, base: &str, qtype: RecordType, out: &mut AnswerBuf) -> u8 {
        match base.split('.').collect::<Vec<_>>().as_slice() {
            [_] => rcode::NOERROR,
            ["ns1", _] => {
                for ip in self.own_addresses() {
                    if matches!(
                        (ip, qtype),
                        (IpAddr::V4(_), RecordType::A) | (IpAddr::V6(_), RecordType::AAAA)
                    ) {
                        out.answers.push(address(Owner::Query, self.config.ttl, ip));
                    }
                }
                rcode::NOERROR
            }
            _ => rcode::NXDOMAIN,
        }
    }

    /// The addresses of `ns1.<apex>.<zone>`, as CoreDNS's `ExternalAddress`: the external
    /// addresses (with `headless`, of a headless Service: its endpoints) of the Services the
    /// server is an endpoint of; when it is an endpoint of none, its own addresses.
    fn own_addresses(&self) -> Vec<IpAddr> {
        let index = &self.cluster.index;
        let own = &self.cluster.config.own_addrs;
        let mut services: Vec<String> = Vec::new();
        for ip in own {
            index.with_ptr_owners(*ip, |owners| {
                for o in owners.iter().filter(|o| !o.cluster_ip) {
                    let key = o.service();
                    // A dual-stack server: both its addresses name the same Service.
                    if !services.iter().any(|s| s == key) {
                        services.push(key.to_owned());
                    }
                }
            });
        }
        if services.is_empty() {
            return own.clone();
        }
        let mut addrs = Vec::new();
        for key in &services {
            let entry = index.service(key);
            let headless = entry
                .as_ref()
                .is_some_and(|e| matches!(e.kind, EntryKind::Headless));
            if self.config.headless && headless {
                let entry = entry.iter().flat_map(|e| e.endpoints());
                addrs.extend(entry.map(|(e, _)| e.ip));
            } else if let Some(ext) = index.external(key) {
                addrs.extend(ext.addrs.iter().filter_map(|a| match a {
                    External::Ip(ip) => Some(*ip),
                    External::Hostname(_) => None,
                }));
            }
        }
        addrs
    }

    /// What a name below the zone stands for, as CoreDNS's `External` (the kubernetes side).
    fn find(&self, qname: &str, zone: &str, qtype: RecordType) -> Found {
        let nxdomain = Found {
            hits: Vec::new(),
            rcode: rcode::NXDOMAIN,
        };
        if qtype == RecordType::PTR
            && let Some(ip) = reverse_ip(qname)
        {
            return self.reverse(ip);
        }
        let labels: Vec<&str> = relative(qname, zone).split('.').collect();
        let index = &self.cluster.index;
        let Some((namespace, rest)) = labels.split_last() else {
            return nxdomain;
        };
        if !index.namespace_exists(namespace) {
            return nxdomain;
        }
        let Some((service, rest)) = rest.split_last() else {
            return Found {
                hits: Vec::new(),
                rcode: rcode::NOERROR,
            };
        };
        let (endpoint, port, protocol) = match rest {
            [] => (None, "", ""),
            [endpoint] => (Some(strip_underscore(endpoint)), "", ""),
            [port, protocol] => (None, strip_underscore(port), strip_underscore(protocol)),
            _ => return nxdomain,
        };
        let key: Arc<str> = format!("{service}.{namespace}").into();
        let matches = |p: &PortEntry| {
            (port.is_empty() || *p.name == *port)
                && (protocol.is_empty() || *p.protocol == *protocol)
        };
        let mut hits = Vec::new();
        let external = index.external(&key);
        // The Service's own entry counts only for `headless` without external addresses.
        let entry = if self.config.headless && external.is_none() {
            index.service(&key)
        } else {
            None
        };
        let headless = entry
            .as_ref()
            .is_some_and(|e| matches!(e.kind, EntryKind::Headless));
        if self.config.headless && external.is_none() && (headless || endpoint.is_some()) {
            for (ep, ports) in entry.iter().flat_map(|e| e.endpoints()) {
                if endpoint.is_some_and(|want| want != ep.label()) {
                    continue;
                }
                let name: Arc<str> = format!("{}.{key}", ep.label()).into();
                for p in ports.iter().filter(|p| matches(p)) {
                    hits.push(Hit {
                        host: External::Ip(ep.ip),
                        port: p.port,
                        name: name.clone(),
                    });
                }
            }
        } else if let Some(ext) = external {
            for addr in ext.addrs.iter() {
                for p in ext.ports.iter().filter(|p| matches(p)) {
                    hits.push(Hit {
                        host: addr.clone(),
                        port: p.port,
                        name: key.clone(),
                    });
                }
            }
        }
        let rcode = if hits.is_empty() {
            rcode::NXDOMAIN
        } else {
            rcode::NOERROR
        };
        if qtype == RecordType::PTR {
            // A forward name asked for PTR: whether it exists, no records.
            hits.clear();
        }
        Found { hits, rcode }
    }

    /// A reverse name: the Services with that external address (PTR to `svc.ns.<first zone>`).
    fn reverse(&self, ip: IpAddr) -> Found {
        let hits: Vec<Hit> = self
            .cluster
            .index
            .externals_at(ip)
            .into_iter()
            .map(|key| Hit {
                host: External::Ip(ip),
                port: None,
                name: Arc::from(&*key),
            })
            .collect();
        let rcode = if hits.is_empty() {
            rcode::NXDOMAIN
        } else {
            rcode::NOERROR
        };
        Found { hits, rcode }
    }

    /// The records of the question's type from what the name stands for.
    fn answer(&self, hits: &[Hit], qtype: RecordType, out: &mut AnswerBuf) {
        let ttl = self.config.ttl;
        // CNAMEs and SRV records carry the kubernetes TTL, addresses this plugin's, as CoreDNS.
        let cluster_ttl = self.cluster.config.ttl;
        for hit in hits {
            let data = match (&hit.host, qtype) {
                (External::Hostname(host), RecordType::A | RecordType::AAAA) => {
                    Rdata::Cname(absolute(host))
                }
                (External::Ip(IpAddr::V4(a)), RecordType::A) => Rdata::A(*a),
                (External::Ip(IpAddr::V6(a)), RecordType::AAAA) => Rdata::Aaaa(*a),
                (_, RecordType::PTR) => Rdata::Ptr(Target {
                    labels: hit.name.clone(),
                    suffix: Suffix::Zone(Arc::from(self.config.zones[0].as_str())),
                }),
                _ => continue,
            };
            let ttl = if matches!(data, Rdata::Cname(_)) {
                cluster_ttl
            } else {
                ttl
            };
            if !out.answers.iter().any(|r| r.data == data) {
                out.answers.push(Rr {
                    owner: Owner::Query,
                    ttl,
                    data,
                });
            }
        }
        if qtype == RecordType::SRV {
            self.srv(hits, out);
        }
    }

    /// SRV records, one per target and port, weighted as CoreDNS weighs them (100 shared out
    /// among every address and port the name stands for), with the addresses as glue.
    fn srv(&self, hits: &[Hit], out: &mut AnswerBuf) {
        let total = 100.0 * hits.len() as f64;
        let weight = ((100.0 / total * 100.0).floor() as u16).max(1);
        for hit in hits {
            let Some(port) = hit.port else { continue };
            let target = match &hit.host {
                External::Hostname(host) => absolute(host),
                External::Ip(_) => Target {
                    labels: hit.name.clone(),
                    suffix: Suffix::QueryZone,
                },
            };
            let data = Rdata::Srv {
                priority: 0,
                weight,
                port,
                target: target.clone(),
            };
            if !out.answers.iter().any(|r| same_target_port(&r.data, &data)) {
                out.answers.push(Rr {
                    owner: Owner::Query,
                    ttl: self.cluster.config.ttl,
                    data,
                });
            }
            if let External::Ip(ip) = hit.host {
                let glue = address(Owner::Name(target), self.config.ttl, ip);
                if !out.additionals.contains(&glue) {
                    out.additionals.push(glue);
                }
            }
        }
    }

    fn ns_target(&self) -> Target {
        Target {
            labels: Arc::from(format!("ns1.{}", self.apex)),
            suffix: Suffix::QueryZone,
        }
    }

    fn soa_rdata(&self) -> Rdata {
        Rdata::Soa {
            serial: self.cluster.index.serial(),
            minimum: self.config.ttl,
            apex: Some(self.apex),
        }
    }

    fn soa(&self) -> SoaValues {
        SoaValues {
            ttl: self.config.ttl,
            serial: self.cluster.index.serial(),
            minimum: self.config.ttl,
            apex: Some(self.apex),
        }
    }
}

fn same_target_port(a: &Rdata, b: &Rdata) -> bool {
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
        ) => pa == pb && ta == tb,
        _ => false,
    }
}

fn address(owner: Owner, ttl: u32, ip: IpAddr) -> Rr {
    let data = Rdata::address(ip);
    Rr { owner, ttl, data }
}

fn absolute(host: &str) -> Target {
    Target {
        labels: Arc::from(host),
        suffix: Suffix::Root,
    }
}
