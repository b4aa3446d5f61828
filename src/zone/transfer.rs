//! The records of a cluster zone transfer (AXFR), as CoreDNS 1.11's kubernetes plugin lists
//! them: the SOA, the apex NS and their addresses, then every Service (A/AAAA, SRV, CNAME),
//! then the SOA again. No PTR records and no `dns-version` TXT, as CoreDNS.
//!
//! Pure: one snapshot of the index's Service entries (shared handles, each entry immutable),
//! taken after the serial is read, so a later change moves the serial past this transfer.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use super::records::{EntryKind, PortEntry, ServiceEntry};
use super::{ClusterZone, Owner, Rdata, Rr, SOA_MAX_TTL, SoaValues, Suffix, Target};

/// The zone SOA now (serial: the time of the last change).
pub fn soa(zone: &ClusterZone) -> SoaValues {
    let ttl = zone.config.ttl;
    SoaValues {
        ttl: ttl.min(SOA_MAX_TTL),
        serial: zone.index.serial(),
        minimum: ttl,
        apex: None,
    }
}

/// The SOA as a record at the zone apex.
pub fn soa_record(soa: SoaValues) -> Rr {
    Rr {
        owner: Owner::QueryZone,
        ttl: soa.ttl,
        data: Rdata::Soa {
            serial: soa.serial,
            minimum: soa.minimum,
            apex: None,
        },
    }
}

/// The whole transfer of the forward zone `matched`: SOA, NS and their addresses, the
/// Services (the ServiceImports in a `multicluster` zone, as CoreDNS ≥ 1.12) in name order,
/// SOA. Owners are relative to the zone as the question spelled it.
pub fn zone_records(zone: &ClusterZone, matched: &str) -> Vec<Rr> {
    let soa = soa_record(soa(zone));
    let ttl = zone.config.ttl;
    let mut out = vec![soa.clone()];
    nameservers(zone, ttl, &mut out);
    let mut services = if zone.config.is_multicluster(matched) {
        zone.index.import_entries()
    } else {
        zone.index.service_entries()
    };
    // CoreDNS sorts by Service name alone; the namespace breaks ties so the order is stable.
    services.sort_by(|a, b| {
        service_name(&a.0)
            .cmp(service_name(&b.0))
            .then(a.0.cmp(&b.0))
    });
    for (_, entry) in &services {
        service(entry, ttl, &mut out);
    }
    out.push(soa);
    dedup(&mut out);
    out
}

/// `name` of an index key `name.namespace`.
fn service_name(key: &str) -> &str {
    key.split_once('.').map_or(key, |(name, _)| name)
}

/// The apex NS records, one per nameserver name, then each name's address.
fn nameservers(zone: &ClusterZone, ttl: u32, out: &mut Vec<Rr>) {
    let names = super::lookup::own_names(zone);
    let mut seen = HashSet::new();
    for (name, _) in &names {
        if seen.insert(name.labels.clone()) {
            out.push(Rr {
                owner: Owner::QueryZone,
                ttl,
                data: Rdata::Ns(name.clone()),
            });
        }
    }
    for (name, ip) in names {
        out.push(address(Owner::Name(name), ttl, ip));
    }
}

fn address(owner: Owner, ttl: u32, ip: IpAddr) -> Rr {
    let data = Rdata::address(ip);
    Rr { owner, ttl, data }
}

/// `labels` under the zone.
fn in_zone(labels: &Arc<str>) -> Target {
    Target {
        labels: labels.clone(),
        suffix: Suffix::QueryZone,
    }
}

/// `_name._proto.<service>` for a named port with a number.
fn port_owner(port: &PortEntry, service: &str) -> Option<(Target, u16)> {
    let number = port.port?;
    if port.name.is_empty() {
        return None;
    }
    let labels: Arc<str> = format!("_{}._{}.{service}", port.name, port.protocol).into();
    Some((in_zone(&labels), number))
}

fn srv(owner: Target, ttl: u32, weight: u16, port: u16, target: Target) -> Rr {
    Rr {
        owner: Owner::Name(owner),
        ttl,
        data: Rdata::Srv {
            priority: 0,
            weight,
            port,
            target,
        },
    }
}

/// One Service's records, as CoreDNS's transfer emits them.
fn service(entry: &ServiceEntry, ttl: u32, out: &mut Vec<Rr>) {
    let name = in_zone(&entry.target);
    match &entry.kind {
        EntryKind::ClusterIp(ips) => {
            for ip in ips {
                out.push(address(Owner::Name(name.clone()), ttl, *ip));
            }
            // Every port gets an SRV at the service name (peer-finder relies on it, coredns
            // #823), named ones also at `_name._proto`. A Service without ports has none
            // (CoreDNS writes its "no port" stand-in as port 65535).
            for port in &entry.ports {
                let Some(number) = port.port else { continue };
                out.push(srv(name.clone(), ttl, 100, number, name.clone()));
                if let Some((owner, number)) = port_owner(port, &entry.target) {
                    out.push(srv(owner, ttl, 100, number, name.clone()));
                }
            }
        }
        EntryKind::Headless => {
            for slice in &entry.slices {
                let weight = srv_weight(slice.endpoints.len());
                for endpoint in slice.endpoints.iter() {
                    let host = in_zone(&endpoint.target);
                    out.push(address(Owner::Name(name.clone()), ttl, endpoint.ip));
                    out.push(address(Owner::Name(host.clone()), ttl, endpoint.ip));
                    for port in slice.ports.iter() {
                        if let Some((owner, number)) = port_owner(port, &entry.target) {
                            out.push(srv(owner, ttl, weight, number, host.clone()));
                        }
                    }
                }
            }
        }
        EntryKind::ExternalName(Some(external)) => out.push(Rr {
            owner: Owner::Name(name),
            ttl,
            data: Rdata::Cname(Target {
                labels: external.clone(),
                suffix: Suffix::Root,
            }),
        }),
        // An IP literal as externalName: no record, as CoreDNS.
        EntryKind::ExternalName(None) => {}
    }
}

/// The SRV weight of each of `endpoints` records of one slice, computed as CoreDNS computes it
/// (in floating point: 100 / (100 × n) × 100, floored, at least 1).
pub fn srv_weight(endpoints: usize) -> u16 {
    let total = 100.0 * endpoints.max(1) as f64;
    ((100.0 / total) * 100.0).floor().max(1.0) as u16
}

/// Drops repeated records (an address in two slices; RFC 2181 §5: a set has no duplicates),
/// keeping the first of each and the closing SOA.
fn dedup(records: &mut Vec<Rr>) {
    let Some(last) = records.pop() else { return };
    let mut seen = HashSet::with_capacity(records.len());
    records.retain(|rr| seen.insert(rr.clone()));
    records.push(last);
}

#[cfg(test)]
mod tests;
