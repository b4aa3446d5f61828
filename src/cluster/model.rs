//! Slim cluster objects: only what DNS needs, IPs parsed, names as given by the API.
//! Built at the edge from API objects with `from_api`; a bad object is an error, not a panic.

use std::net::IpAddr;

use crate::k8s;

/// The kinds of object the zone is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Namespace,
    Service,
    EndpointSlice,
    Pod,
    /// Multi-Cluster Services API: watched only with `multicluster` zones.
    ServiceImport,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 5] = [
        ObjectKind::Namespace,
        ObjectKind::Service,
        ObjectKind::EndpointSlice,
        ObjectKind::Pod,
        ObjectKind::ServiceImport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Namespace => "Namespace",
            ObjectKind::Service => "Service",
            ObjectKind::EndpointSlice => "EndpointSlice",
            ObjectKind::Pod => "Pod",
            ObjectKind::ServiceImport => "ServiceImport",
        }
    }
}

/// Namespace and name; the namespace is empty for cluster-scoped objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// Any slim object.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterObject {
    Namespace(Namespace),
    Service(Service),
    EndpointSet(EndpointSet),
    Pod(Pod),
    ServiceImport(ServiceImport),
}

impl ClusterObject {
    pub fn kind(&self) -> ObjectKind {
        match self {
            ClusterObject::Namespace(_) => ObjectKind::Namespace,
            ClusterObject::Service(_) => ObjectKind::Service,
            ClusterObject::EndpointSet(_) => ObjectKind::EndpointSlice,
            ClusterObject::Pod(_) => ObjectKind::Pod,
            ClusterObject::ServiceImport(_) => ObjectKind::ServiceImport,
        }
    }

    pub fn key(&self) -> ObjectKey {
        match self {
            ClusterObject::Namespace(n) => ObjectKey::new("", &n.name),
            ClusterObject::Service(s) => ObjectKey::new(&s.namespace, &s.name),
            ClusterObject::EndpointSet(e) => ObjectKey::new(&e.namespace, &e.name),
            ClusterObject::Pod(p) => ObjectKey::new(&p.namespace, &p.name),
            ClusterObject::ServiceImport(i) => ObjectKey::new(&i.namespace, &i.name),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub kind: ServiceKind,
    pub ports: Vec<Port>,
    /// `spec.externalIPs`, then `status.loadBalancer.ingress[]` (the IP, else the hostname),
    /// in CoreDNS's order: what `k8s_external` serves. Empty (no allocation) for most Services.
    pub external: Box<[External]>,
}

/// An external address of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum External {
    Ip(IpAddr),
    /// A load balancer's hostname (answered as a CNAME), lower-case, without trailing dot.
    Hostname(Box<str>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServiceKind {
    /// ClusterIP, NodePort, LoadBalancer: the cluster IPs (one per family; empty until assigned).
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: answered from the ready endpoints.
    Headless,
    /// `type: ExternalName`: a CNAME to this name (as given, without trailing dot).
    ExternalName(String),
}

/// A service or endpoint port. `name` is empty for an unnamed port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    /// `TCP`, `UDP` or `SCTP` as the API spells it.
    pub protocol: String,
    pub port: i32,
}

/// One EndpointSlice, reduced to what DNS uses.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSet {
    pub namespace: String,
    pub name: String,
    /// The Service it belongs to (label `kubernetes.io/service-name`), if any.
    pub service: Option<String>,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<Port>,
    /// The ServiceImport it belongs to (Multi-Cluster Services labels), if any.
    pub import: Option<ImportLink>,
}

/// What ties an EndpointSlice to a ServiceImport: the labels
/// `multicluster.kubernetes.io/service-name` and `multicluster.kubernetes.io/source-cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLink {
    /// The imported Service's name (in the slice's namespace).
    pub service: Box<str>,
    /// The cluster the endpoints are in; empty when the label is missing.
    pub cluster: Box<str>,
}

/// A ServiceImport (`multicluster.x-k8s.io/v1alpha1`), reduced to what DNS uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceImport {
    pub namespace: String,
    pub name: String,
    pub kind: ImportKind,
    pub ports: Vec<Port>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImportKind {
    /// `type: ClusterSetIP`: the cluster-set IPs (`spec.ips`).
    ClusterSetIp(Vec<IpAddr>),
    /// `type: Headless`: answered from the ready endpoints of every cluster.
    Headless,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// At least one (an endpoint without addresses serves nothing and is skipped).
    pub addresses: Vec<IpAddr>,
    /// `conditions.ready`, with unset meaning ready.
    pub ready: bool,
    pub hostname: Option<Box<str>>,
    /// `targetRef.name` (the pod) when the target is a Pod.
    pub target_name: Option<Box<str>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    /// `status.podIP`: the primary IP only, as CoreDNS's `pods verified`.
    pub ip: Option<IpAddr>,
    /// Has a deletionTimestamp: no longer answered.
    pub terminating: bool,
    /// `spec.hostNetwork`: its IP is the node's, shared by every such pod there.
    pub host_network: bool,
}

/// Why an API object could not be turned into a slim object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("metadata.name is missing")]
    MissingName,
    #[error("metadata.namespace is missing")]
    MissingNamespace,
    #[error("{field}: {value:?} is not an IP address")]
    BadIp { field: &'static str, value: String },
    #[error("spec is missing")]
    MissingSpec,
    #[error("spec.externalName is missing on an ExternalName service")]
    MissingExternalName,
    #[error("{field}: {value:?} is not a valid DNS name")]
    BadName { field: &'static str, value: String },
    #[error("spec.type: {0:?} is neither ClusterSetIP nor Headless")]
    BadImportType(String),
    #[error("{field}: port {port} is out of range")]
    BadPort { field: &'static str, port: i32 },
}

fn name_of(meta: &k8s::ObjectMeta) -> Result<String, ModelError> {
    meta.name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(ModelError::MissingName)
}

fn namespace_of(meta: &k8s::ObjectMeta) -> Result<String, ModelError> {
    meta.namespace
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(ModelError::MissingNamespace)
}

/// A DNS label as Kubernetes names are: 1..=63 octets of `[A-Za-z0-9-_]`.
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_label(field: &'static str, value: &str) -> Result<(), ModelError> {
    if is_label(value) {
        Ok(())
    } else {
        Err(ModelError::BadName {
            field,
            value: value.to_owned(),
        })
    }
}

fn parse_ip(field: &'static str, value: &str) -> Result<IpAddr, ModelError> {
    value.parse().map_err(|_| ModelError::BadIp {
        field,
        value: value.to_owned(),
    })
}

fn port_number(field: &'static str, port: i32) -> Result<i32, ModelError> {
    if (0..=65535).contains(&port) {
        Ok(port)
    } else {
        Err(ModelError::BadPort { field, port })
    }
}

impl Namespace {
    pub fn from_api(ns: &k8s::Namespace) -> Result<Self, ModelError> {
        let name = name_of(&ns.metadata)?;
        check_label("metadata.name", &name)?;
        Ok(Namespace { name })
    }
}

impl Service {
    pub fn from_api(svc: &k8s::Service) -> Result<Self, ModelError> {
        let name = name_of(&svc.metadata)?;
        let namespace = namespace_of(&svc.metadata)?;
        check_label("metadata.name", &name)?;
        check_label("metadata.namespace", &namespace)?;
        let spec = svc.spec.as_ref().ok_or(ModelError::MissingSpec)?;
        let kind = if spec.type_.as_deref() == Some("ExternalName") {
            let target = spec
                .external_name
                .as_deref()
                .map(|n| n.trim_end_matches('.'))
                .filter(|n| !n.is_empty())
                .ok_or(ModelError::MissingExternalName)?;
            if target.len() > 253 || target.split('.').any(|l| l.is_empty() || l.len() > 63) {
                return Err(ModelError::BadName {
                    field: "spec.externalName",
                    value: target.to_owned(),
                });
            }
            ServiceKind::ExternalName(target.to_owned())
        } else {
            // clusterIPs (dual-stack) wins over the legacy single clusterIP.
            let ips: Vec<&str> = match (&spec.cluster_ips, &spec.cluster_ip) {
                (Some(ips), _) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
                (_, Some(ip)) if !ip.is_empty() => vec![ip.as_str()],
                _ => Vec::new(),
            };
            if ips.first() == Some(&"None") {
                ServiceKind::Headless
            } else {
                ServiceKind::ClusterIp(
                    ips.iter()
                        .map(|ip| parse_ip("spec.clusterIPs", ip))
                        .collect::<Result<_, _>>()?,
                )
            }
        };
        let ports = service_ports(spec.ports.iter().flatten())?;
        Ok(Service {
            namespace,
            name,
            kind,
            ports,
            external: external_addresses(svc),
        })
    }
}

/// `spec.externalIPs` then the load balancer ingress points, as CoreDNS lists them. What is
/// not an address (or a hostname for an ingress point) is skipped rather than failing the
/// Service: its cluster names do not depend on it. (CoreDNS keeps such strings, and answers
/// a CNAME to them.)
fn external_addresses(svc: &k8s::Service) -> Box<[External]> {
    let spec_ips = svc
        .spec
        .iter()
        .flat_map(|s| s.external_ips.iter().flatten());
    let ingress = svc
        .status
        .iter()
        .filter_map(|s| s.load_balancer.as_ref())
        .flat_map(|lb| lb.ingress.iter().flatten());
    let mut out: Vec<External> = spec_ips
        .filter_map(|ip| ip.parse().ok().map(External::Ip))
        .collect();
    for point in ingress {
        match (point.ip.as_deref(), point.hostname.as_deref()) {
            (Some(ip), _) if !ip.is_empty() => out.extend(ip.parse().ok().map(External::Ip)),
            (_, Some(host)) if !host.is_empty() => {
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                if is_dns_name(&host) {
                    out.push(External::Hostname(host.into()));
                }
            }
            _ => {}
        }
    }
    out.into_boxed_slice()
}

/// A domain name of at most 253 octets in labels of 1..=63.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

impl EndpointSet {
    pub fn from_api(slice: &k8s::EndpointSlice) -> Result<Self, ModelError> {
        let name = name_of(&slice.metadata)?;
        let namespace = namespace_of(&slice.metadata)?;
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(k8s::SERVICE_NAME_LABEL))
            .cloned();
        // FQDN slices (deprecated) carry names, not addresses: DNS has nothing to serve from them.
        let endpoints = if slice.address_type == "FQDN" {
            Vec::new()
        } else {
            slice
                .endpoints
                .iter()
                .filter_map(|e| {
                    // The API requires at least one address; an endpoint without serves nothing.
                    let addresses = match e
                        .addresses
                        .iter()
                        .map(|a| parse_ip("endpoints[].addresses", a))
                        .collect::<Result<Vec<_>, _>>()
                    {
                        Ok(all) if all.is_empty() => return None,
                        Ok(all) => all,
                        Err(err) => return Some(Err(err)),
                    };
                    Some(Ok(Endpoint {
                        addresses,
                        ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
                        hostname: match &e.hostname {
                            Some(h) if !h.is_empty() => {
                                if let Err(err) = check_label("endpoints[].hostname", h) {
                                    return Some(Err(err));
                                }
                                Some(h.as_str().into())
                            }
                            _ => None,
                        },
                        target_name: e
                            .target_ref
                            .as_ref()
                            .filter(|t| t.kind.as_deref().is_none_or(|k| k == "Pod"))
                            .and_then(|t| t.name.as_deref())
                            .map(Into::into),
                    }))
                })
                .collect::<Result<Vec<_>, ModelError>>()?
        };
        let ports = slice
            .ports
            .iter()
            .flatten()
            .map(|p| {
                Ok(Port {
                    name: p.name.clone().unwrap_or_default(),
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                    // A nil port means "all ports": there is no number to put in an SRV record.
                    port: port_number("ports[].port", p.port.unwrap_or(-1)).unwrap_or(-1),
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(EndpointSet {
            namespace,
            name,
            service,
            endpoints,
            ports,
            // Bad multicluster labels cost the slice its import, not its Service.
            import: import_link(&slice.metadata).unwrap_or_else(|e| {
                let meta = &slice.metadata;
                tracing::warn!(namespace = ?meta.namespace, slice = ?meta.name, error = %e, "ignoring the slice's multicluster labels");
                None
            }),
        })
    }
}

/// The ServiceImport a slice is labelled with; its name must be a label like a Service's.
fn import_link(meta: &k8s::ObjectMeta) -> Result<Option<ImportLink>, ModelError> {
    let Some(labels) = meta.labels.as_ref() else {
        return Ok(None);
    };
    let Some(service) = labels.get(k8s::MCS_SERVICE_NAME_LABEL) else {
        return Ok(None);
    };
    check_label(
        "metadata.labels[multicluster.kubernetes.io/service-name]",
        service,
    )?;
    let cluster = labels
        .get(k8s::MCS_SOURCE_CLUSTER_LABEL)
        .map(String::as_str)
        .unwrap_or_default();
    if !cluster.is_empty() {
        check_label(
            "metadata.labels[multicluster.kubernetes.io/source-cluster]",
            cluster,
        )?;
    }
    Ok(Some(ImportLink {
        service: service.as_str().into(),
        cluster: cluster.into(),
    }))
}

impl ServiceImport {
    /// A bad address in `spec.ips` fails the whole import (the source skips it with a warning
    /// naming it), as a bad ClusterIP fails a Service.
    pub fn from_api(import: &k8s::ServiceImport) -> Result<Self, ModelError> {
        let name = name_of(&import.metadata)?;
        let namespace = namespace_of(&import.metadata)?;
        check_label("metadata.name", &name)?;
        check_label("metadata.namespace", &namespace)?;
        let spec = import.spec.as_ref().ok_or(ModelError::MissingSpec)?;
        let kind = match spec.type_.as_deref() {
            Some("Headless") => ImportKind::Headless,
            Some("ClusterSetIP") | None => ImportKind::ClusterSetIp(
                spec.ips
                    .iter()
                    .map(|ip| parse_ip("spec.ips", ip))
                    .collect::<Result<_, _>>()?,
            ),
            Some(other) => return Err(ModelError::BadImportType(other.to_owned())),
        };
        let ports = service_ports(&spec.ports)?;
        Ok(ServiceImport {
            namespace,
            name,
            kind,
            ports,
        })
    }
}

/// The ports of a Service or ServiceImport (`spec.ports`): protocol TCP when unset.
fn service_ports<'a>(
    ports: impl IntoIterator<Item = &'a k8s::ServicePort>,
) -> Result<Vec<Port>, ModelError> {
    ports
        .into_iter()
        .map(|p| {
            Ok(Port {
                name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                port: port_number("spec.ports[].port", p.port)?,
            })
        })
        .collect()
}

impl Pod {
    pub fn from_api(pod: &k8s::Pod) -> Result<Self, ModelError> {
        let name = name_of(&pod.metadata)?;
        let namespace = namespace_of(&pod.metadata)?;
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .filter(|ip| !ip.is_empty())
            .map(|ip| parse_ip("status.podIP", ip))
            .transpose()?;
        Ok(Pod {
            namespace,
            name,
            ip,
            terminating: pod.metadata.deletion_timestamp.is_some(),
            host_network: pod.spec.as_ref().is_some_and(|s| s.host_network),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Result<Service, ModelError> {
        Service::from_api(&serde_saphyr::from_str(yaml).expect("test yaml parses"))
    }

    #[test]
    fn dual_stack_service_keeps_both_cluster_ips_in_order() {
        let s = service(
            "metadata: {name: web, namespace: shop}\nspec: {clusterIP: 10.0.0.1, clusterIPs: [10.0.0.1, 'fd00::1'], ports: [{name: http, port: 80}]}",
        )
        .unwrap();
        assert_eq!(
            s.kind,
            ServiceKind::ClusterIp(vec![
                "10.0.0.1".parse().unwrap(),
                "fd00::1".parse().unwrap()
            ])
        );
        assert_eq!(s.ports[0].protocol, "TCP");
    }

    #[test]
    fn cluster_ip_none_is_headless() {
        let s = service("metadata: {name: db, namespace: data}\nspec: {clusterIP: None}").unwrap();
        assert_eq!(s.kind, ServiceKind::Headless);
    }

    #[test]
    fn external_name_drops_the_trailing_dot() {
        let s = service(
            "metadata: {name: ext, namespace: a}\nspec: {type: ExternalName, externalName: api.example.com.}",
        )
        .unwrap();
        assert_eq!(s.kind, ServiceKind::ExternalName("api.example.com".into()));
    }

    #[test]
    fn invalid_cluster_ip_is_an_error_naming_the_field() {
        let err = service("metadata: {name: x, namespace: a}\nspec: {clusterIP: 10.0.0.300}")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.clusterIPs: \"10.0.0.300\" is not an IP address"
        );
    }

    #[test]
    fn service_imports_read_type_ips_and_ports_and_refuse_bad_ips() {
        let import = |yaml: &str| {
            ServiceImport::from_api(&serde_saphyr::from_str(yaml).expect("test yaml parses"))
        };
        let i = import(
            "metadata: {name: web, namespace: a}\nspec: {type: ClusterSetIP, ips: [10.96.0.1, 'fd00::1'], ports: [{name: http, port: 80}]}",
        )
        .unwrap();
        assert_eq!(
            i.kind,
            ImportKind::ClusterSetIp(vec![
                "10.96.0.1".parse().unwrap(),
                "fd00::1".parse().unwrap()
            ])
        );
        assert_eq!(i.ports[0].protocol, "TCP");
        let h = import("metadata: {name: db, namespace: a}\nspec: {type: Headless}").unwrap();
        assert_eq!(h.kind, ImportKind::Headless);
        let err = import(
            "metadata: {name: web, namespace: a}\nspec: {type: ClusterSetIP, ips: [10.96.0.300]}",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.ips: \"10.96.0.300\" is not an IP address"
        );
        let err = import("metadata: {name: web, namespace: a}\nspec: {type: Other}").unwrap_err();
        assert!(err.to_string().contains("\"Other\""), "{err}");
    }

    #[test]
    fn imported_slices_carry_service_and_cluster_labels() {
        let slice: k8s::EndpointSlice = serde_saphyr::from_str(
            "metadata: {name: s1, namespace: a, labels: {multicluster.kubernetes.io/service-name: web, multicluster.kubernetes.io/source-cluster: east, other: x}}\naddressType: IPv4\nendpoints: []",
        )
        .unwrap();
        let set = EndpointSet::from_api(&slice).unwrap();
        assert_eq!(set.service, None);
        assert_eq!(
            set.import,
            Some(ImportLink {
                service: "web".into(),
                cluster: "east".into()
            })
        );
    }

    #[test]
    fn a_bad_multicluster_label_leaves_the_slice_its_service() {
        let slice: k8s::EndpointSlice = serde_saphyr::from_str(
            "metadata: {name: s1, namespace: a, labels: {kubernetes.io/service-name: svc, multicluster.kubernetes.io/service-name: Not_A.Label}}\naddressType: IPv4\nendpoints: [{addresses: [10.1.0.1]}]",
        )
        .unwrap();
        let set = EndpointSet::from_api(&slice).unwrap();
        assert_eq!(set.service.as_deref(), Some("svc"));
        assert_eq!(set.import, None);
        assert_eq!(set.endpoints.len(), 1);
    }

    #[test]
    fn endpoint_ready_defaults_to_true_and_false_is_kept() {
        let slice: k8s::EndpointSlice = serde_saphyr::from_str(
            "metadata: {name: s1, namespace: a, labels: {kubernetes.io/service-name: svc}}\naddressType: IPv4\nendpoints:\n- addresses: [10.1.0.1]\n- addresses: [10.1.0.2]\n  conditions: {ready: false}\nports: [{name: http, port: 80, protocol: TCP}]",
        )
        .unwrap();
        let set = EndpointSet::from_api(&slice).unwrap();
        assert_eq!(set.service.as_deref(), Some("svc"));
        assert!(set.endpoints[0].ready);
        assert!(!set.endpoints[1].ready);
    }
}
