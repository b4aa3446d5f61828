//! Pure builders: a Service and its EndpointSlices become one [`ServiceEntry`], stored ready to
//! serve (lower-cased names, parsed addresses, deduplicated address lists, the PTRs it owns).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::cluster::model::{self, ServiceKind};

/// What a Service contributes to the zone, keyed in the index by `name.namespace`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEntry {
    /// `name.namespace.svc`, lower-case: the SRV/PTR target without the zone.
    pub target: Arc<str>,
    pub kind: EntryKind,
    /// The Service's ports (ClusterIP services); one without a number when it has none.
    pub ports: Vec<PortEntry>,
    /// The ready endpoints of its EndpointSlices, in slice-name order: the index's own per-slice
    /// entries, shared rather than copied. Duplicates across slices are kept so SRV weights
    /// count as CoreDNS counts them.
    pub slices: Vec<Arc<SliceEntry>>,
    /// Some label occurs in two slices: answers must deduplicate every endpoint hit.
    pub labels_repeat_across_slices: bool,
    /// The A answer of the service name: the IPv4 ClusterIP, or the distinct ready IPv4
    /// endpoint addresses of a headless service.
    pub v4: Vec<Ipv4Addr>,
    /// The AAAA answer of the service name, likewise.
    pub v6: Vec<Ipv6Addr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    ClusterIp(Vec<IpAddr>),
    Headless,
    /// The CNAME target, absolute and without trailing dot; `None` when the externalName is an
    /// IP literal, which CoreDNS does not serve (NXDOMAIN).
    ExternalName(Option<Arc<str>>),
}

/// A port of a Service or of an EndpointSlice; name and protocol lower-cased for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortEntry {
    pub name: Box<str>,
    pub protocol: Box<str>,
    /// `None` for the stand-in of a portless Service/slice (or a number out of range): it
    /// matches a query without `_port._proto` but yields no SRV record.
    pub port: Option<u16>,
}

/// What one EndpointSlice contributes: built once when the slice changes, kept by the index
/// and shared by the entry of its Service (the slice itself is not kept).
#[derive(Debug, Clone, PartialEq)]
pub struct SliceEntry {
    /// The Service it belongs to (label `kubernetes.io/service-name`), lower-case.
    pub service: Option<Box<str>>,
    /// The slice's ports.
    pub ports: Box<[PortEntry]>,
    /// One entry per ready address.
    pub endpoints: Box<[EndpointEntry]>,
}

/// One ready endpoint address.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointEntry {
    pub ip: IpAddr,
    /// `label.name.namespace.svc`, lower-case.
    pub target: Arc<str>,
    /// The length of the per-endpoint label at the start of `target` (a label is at most 63
    /// octets): one string per endpoint instead of two.
    pub label_len: u8,
    /// An earlier endpoint of the same slice has the same label: answers must deduplicate.
    pub repeats_label: bool,
}

impl EndpointEntry {
    /// The per-endpoint label: hostname, pod name (`endpoint_pod_names`) or dashed IP.
    pub fn label(&self) -> &str {
        &self.target[..usize::from(self.label_len)]
    }
}

impl ServiceEntry {
    /// Are there ready endpoints (for `ignore_empty_service`)?
    pub fn has_ready_endpoints(&self) -> bool {
        self.slices.iter().any(|s| !s.endpoints.is_empty())
    }

    /// Every ready endpoint with its slice's ports, in slice order.
    pub fn endpoints(&self) -> impl Iterator<Item = (&EndpointEntry, &[PortEntry])> {
        self.slices
            .iter()
            .flat_map(|s| s.endpoints.iter().map(|e| (e, &*s.ports)))
    }

    /// The PTR records this service owns: `(address, target, is_cluster_ip)`.
    pub fn ptr_owners(&self) -> impl Iterator<Item = (IpAddr, &Arc<str>, bool)> {
        let cluster = match &self.kind {
            EntryKind::ClusterIp(ips) => ips.as_slice(),
            _ => &[],
        };
        cluster
            .iter()
            .map(|ip| (*ip, &self.target, true))
            .chain(self.endpoints().map(|(e, _)| (e.ip, &e.target, false)))
    }
}

/// Options that change how entries are built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Name unnamed endpoints after their pod (CoreDNS `endpoint_pod_names`).
    pub endpoint_pod_names: bool,
}

/// Builds what a slice contributes. `namespace` is lower-case.
pub fn slice_entry(set: &model::EndpointSet, options: BuildOptions) -> SliceEntry {
    slice_entry_for(set, set.service.as_deref(), "", options)
}

/// Builds what a slice contributes to the ServiceImport it is labelled with (`None` without
/// the label): endpoint names `<label>.<cluster>.<service>.<namespace>.svc`, the two leftmost
/// labels together being what an endpoint query names (CoreDNS ≥ 1.12 `multicluster`).
pub fn import_slice_entry(set: &model::EndpointSet, options: BuildOptions) -> Option<SliceEntry> {
    let link = set.import.as_ref()?;
    Some(slice_entry_for(
        set,
        Some(&link.service),
        &link.cluster,
        options,
    ))
}

fn slice_entry_for(
    set: &model::EndpointSet,
    service: Option<&str>,
    cluster: &str,
    options: BuildOptions,
) -> SliceEntry {
    let namespace = set.namespace.to_ascii_lowercase();
    let service = service.map(str::to_ascii_lowercase);
    let name = service.as_deref().unwrap_or_default();
    let mut endpoints: Vec<EndpointEntry> = Vec::new();
    let mut seen_labels: HashSet<String> = HashSet::new();
    for endpoint in set.endpoints.iter().filter(|e| e.ready) {
        for ip in endpoint.addresses.iter() {
            let mut label = endpoint_label(endpoint, *ip, options);
            if !cluster.is_empty() {
                label = format!("{label}.{cluster}");
            }
            let label = label.to_ascii_lowercase();
            let repeats_label = !seen_labels.insert(label.clone());
            endpoints.push(EndpointEntry {
                ip: *ip,
                target: format!("{label}.{name}.{namespace}.svc").into(),
                // Labels are checked to be at most 63 octets (hostnames and cluster ids at
                // the edge, pod names in endpoint_label, dashed addresses are at most 39):
                // two of them and a dot fit.
                label_len: u8::try_from(label.len()).unwrap_or(u8::MAX),
                repeats_label,
            });
        }
    }
    SliceEntry {
        service: service.map(Into::into),
        ports: port_entries(&set.ports).into(),
        endpoints: endpoints.into(),
    }
}

/// Builds the entry of `service` from the entries of the slices that carry its name.
pub fn service_entry(service: &model::Service, slices: &[Arc<SliceEntry>]) -> ServiceEntry {
    let namespace = service.namespace.to_ascii_lowercase();
    let name = service.name.to_ascii_lowercase();
    let target: Arc<str> = format!("{name}.{namespace}.svc").into();
    let kind = match &service.kind {
        ServiceKind::ClusterIp(ips) => EntryKind::ClusterIp(ips.clone()),
        ServiceKind::Headless => EntryKind::Headless,
        ServiceKind::ExternalName(ext) => EntryKind::ExternalName(
            (ext.parse::<IpAddr>().is_err()).then(|| Arc::from(ext.as_str())),
        ),
    };
    let ports = port_entries(&service.ports);
    let slices: Vec<Arc<SliceEntry>> = slices.to_vec();
    let labels_repeat_across_slices = slices.len() > 1 && {
        let mut seen: HashSet<&str> = HashSet::new();
        slices.iter().any(|s| {
            // Labels repeated within one slice are already marked; count each once per slice.
            let mine: HashSet<&str> = s.endpoints.iter().map(EndpointEntry::label).collect();
            mine.into_iter().any(|l| !seen.insert(l))
        })
    };

    let mut seen_ips = HashSet::new();
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut add = |ip: IpAddr| {
        if seen_ips.insert(ip) {
            match ip {
                IpAddr::V4(a) => v4.push(a),
                IpAddr::V6(a) => v6.push(a),
            }
        }
    };
    match &kind {
        EntryKind::ClusterIp(ips) => ips.iter().copied().for_each(&mut add),
        EntryKind::Headless => slices
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .for_each(|e| add(e.ip)),
        EntryKind::ExternalName(_) => {}
    }
    v4.shrink_to_fit();
    v6.shrink_to_fit();
    ServiceEntry {
        target,
        kind,
        ports,
        slices,
        labels_repeat_across_slices,
        v4,
        v6,
    }
}

/// Builds the entry of a ServiceImport from the entries of the slices labelled with it: a
/// ClusterSetIP import answers like a ClusterIP Service, a headless one from every cluster's
/// ready endpoints.
pub fn import_entry(import: &model::ServiceImport, slices: &[Arc<SliceEntry>]) -> ServiceEntry {
    let service = model::Service {
        namespace: import.namespace.clone(),
        name: import.name.clone(),
        kind: match &import.kind {
            model::ImportKind::ClusterSetIp(ips) => ServiceKind::ClusterIp(ips.clone()),
            model::ImportKind::Headless => ServiceKind::Headless,
        },
        ports: import.ports.clone(),
        external: Box::default(),
    };
    service_entry(&service, slices)
}

pub fn port_entries(ports: &[model::Port]) -> Vec<PortEntry> {
    if ports.is_empty() {
        return vec![PortEntry {
            name: "".into(),
            protocol: "".into(),
            port: None,
        }];
    }
    ports
        .iter()
        .map(|p| PortEntry {
            name: p.name.to_ascii_lowercase().into(),
            protocol: p.protocol.to_ascii_lowercase().into(),
            port: u16::try_from(p.port).ok(),
        })
        .collect()
}

/// The per-endpoint name, as CoreDNS's `endpointHostname`: the hostname if set, else the pod
/// name when `endpoint_pod_names` is on and it is one DNS label, else the dashed address.
///
/// CoreDNS drops pod names longer than a label (63 octets) and takes any other as it is; a pod
/// name is a DNS subdomain, so it may hold dots (`web.v2-0`), and CoreDNS then publishes SRV and
/// PTR targets of several labels that no query can reach (a name's endpoint part is one
/// label). Here such a pod name is refused like a long one: the endpoint keeps its dashed
/// address, a name that resolves.
pub fn endpoint_label(endpoint: &model::Endpoint, ip: IpAddr, options: BuildOptions) -> String {
    if let Some(h) = &endpoint.hostname {
        return h.to_string();
    }
    if options.endpoint_pod_names
        && let Some(pod) = endpoint.target_name.as_ref().filter(|p| model::is_label(p))
    {
        return pod.to_string();
    }
    dashed_ip(ip)
}

/// `10.1.2.3` → `10-1-2-3`; `fd00::1` → `fd00--1`; a trailing `-` gets a `0` (`fd00::` →
/// `fd00--0`) so the label does not end in a hyphen.
pub fn dashed_ip(ip: IpAddr) -> String {
    let mut s = ip.to_string().replace(['.', ':'], "-");
    if s.ends_with('-') {
        s.push('0');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::model::{Endpoint, EndpointSet, Port, Service};

    fn ep(ip: &str, ready: bool, hostname: Option<&str>) -> Endpoint {
        Endpoint {
            addresses: vec![ip.parse().unwrap()],
            ready,
            hostname: hostname.map(Into::into),
            target_name: Some("pod-a".into()),
        }
    }

    fn headless(eps: Vec<Endpoint>) -> (Service, EndpointSet) {
        (
            Service {
                namespace: "NS".into(),
                name: "Db".into(),
                kind: ServiceKind::Headless,
                ports: vec![],
                external: Box::default(),
            },
            EndpointSet {
                namespace: "ns".into(),
                name: "db-1".into(),
                service: Some("db".into()),
                endpoints: eps,
                ports: vec![Port {
                    name: "SQL".into(),
                    protocol: "TCP".into(),
                    port: 5432,
                }],
                import: None,
            },
        )
    }

    fn entry(svc: &Service, slice: &EndpointSet, options: BuildOptions) -> ServiceEntry {
        service_entry(svc, &[Arc::new(slice_entry(slice, options))])
    }

    #[test]
    fn labels_repeated_across_slices_are_flagged() {
        let (svc, a) = headless(vec![ep("10.0.0.1", true, None)]);
        let mut b = a.clone();
        b.name = "db-2".into();
        let slices = [a, b].map(|s| Arc::new(slice_entry(&s, BuildOptions::default())));
        assert!(service_entry(&svc, &slices).labels_repeat_across_slices);
        assert!(!service_entry(&svc, &slices[..1]).labels_repeat_across_slices);
        // The same address twice: one A record.
        assert_eq!(service_entry(&svc, &slices).v4.len(), 1);
    }

    #[test]
    fn dashed_ip_matches_coredns_forms() {
        assert_eq!(dashed_ip("10.1.2.3".parse().unwrap()), "10-1-2-3");
        assert_eq!(dashed_ip("fd00::1".parse().unwrap()), "fd00--1");
        assert_eq!(dashed_ip("fd00::".parse().unwrap()), "fd00--0");
        assert_eq!(dashed_ip("5678:abcd::1".parse().unwrap()), "5678-abcd--1");
    }

    #[test]
    fn headless_entry_keeps_only_ready_addresses_and_lowercases_names() {
        let (svc, slice) = headless(vec![
            ep("10.0.0.1", true, Some("Web-0")),
            ep("10.0.0.2", false, None),
            ep("fd00::3", true, None),
        ]);
        let e = entry(&svc, &slice, BuildOptions::default());
        assert_eq!(&*e.target, "db.ns.svc");
        assert_eq!(e.v4, vec!["10.0.0.1".parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(e.v6, vec!["fd00::3".parse::<Ipv6Addr>().unwrap()]);
        let targets: Vec<&str> = e.endpoints().map(|(e, _)| &*e.target).collect();
        assert_eq!(targets, ["web-0.db.ns.svc", "fd00--3.db.ns.svc"]);
        assert_eq!(&*e.endpoints().next().unwrap().1[0].name, "sql");
    }

    #[test]
    fn endpoint_pod_names_names_unnamed_endpoints_after_the_pod() {
        let (svc, slice) = headless(vec![ep("10.0.0.1", true, None)]);
        let on = BuildOptions {
            endpoint_pod_names: true,
        };
        assert_eq!(
            entry(&svc, &slice, on)
                .endpoints()
                .next()
                .unwrap()
                .0
                .label(),
            "pod-a"
        );
        assert_eq!(
            entry(&svc, &slice, BuildOptions::default())
                .endpoints()
                .next()
                .unwrap()
                .0
                .label(),
            "10-0-0-1"
        );
    }

    #[test]
    fn pod_names_that_are_not_one_label_fall_back_to_the_dashed_address() {
        let on = BuildOptions {
            endpoint_pod_names: true,
        };
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let named = |pod: &str| Endpoint {
            target_name: Some(pod.into()),
            ..ep("10.0.0.1", true, None)
        };
        assert_eq!(endpoint_label(&named("web-0"), ip, on), "web-0");
        assert_eq!(endpoint_label(&named("web.v2-0"), ip, on), "10-0-0-1");
        assert_eq!(endpoint_label(&named(&"p".repeat(64)), ip, on), "10-0-0-1");
        assert_eq!(
            endpoint_label(&named(&"p".repeat(63)), ip, on),
            "p".repeat(63)
        );
        // A hostname wins over the pod name either way.
        let hosted = Endpoint {
            hostname: Some("db-0".into()),
            ..named("web.v2-0")
        };
        assert_eq!(endpoint_label(&hosted, ip, on), "db-0");
    }

    #[test]
    fn portless_service_gets_the_sentinel_port() {
        let (svc, _) = headless(vec![]);
        let e = service_entry(&svc, &[]);
        assert_eq!(e.ports[0].port, None);
    }

    #[test]
    fn ip_literal_external_name_has_no_target() {
        let svc = Service {
            namespace: "a".into(),
            name: "x".into(),
            kind: ServiceKind::ExternalName("1.2.3.4".into()),
            ports: vec![],
            external: Box::default(),
        };
        assert_eq!(service_entry(&svc, &[]).kind, EntryKind::ExternalName(None));
    }
}
