//! The Kubernetes API objects clusterdns reads, slimmed at deserialization.
//!
//! These mirror the k8s-openapi types field for field (same names, same leniency: a missing or
//! `null` field is its default) but keep only what DNS uses. Everything else in an object —
//! `managedFields`, status, every other label and annotation, most of the spec — is skipped by
//! the JSON parser without being allocated, so a LIST of 100k endpoints costs its slim size
//! rather than the full objects' (measured: the full k8s-openapi objects took ~80 MB at the
//! peak of a 10k-Service/100k-endpoint list, these take a fraction of it).
//! Nothing outside `cluster` sees these: the zone works on the `cluster::model` objects.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label that ties an EndpointSlice to a ServiceImport (Multi-Cluster Services API).
pub const MCS_SERVICE_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// The label naming the cluster an imported EndpointSlice comes from.
pub const MCS_SOURCE_CLUSTER_LABEL: &str = "multicluster.kubernetes.io/source-cluster";
/// The labels DNS reads; every other label is skipped unread.
const KEPT_LABELS: [&str; 3] = [
    SERVICE_NAME_LABEL,
    MCS_SERVICE_NAME_LABEL,
    MCS_SOURCE_CLUSTER_LABEL,
];
/// The annotation the EndpointSlice controller sets to the time of the change it reflects.
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Implements `kube::Resource` for a slim type (the API path and kind it is listed under).
macro_rules! resource {
    ($ty:ty, $scope:ty, $kind:literal, $group:literal, $version:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;
            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Namespace {
    #[serde(default, deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
}
resource!(
    Namespace,
    ClusterResourceScope,
    "Namespace",
    "",
    "v1",
    "namespaces"
);

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Service {
    #[serde(default, deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<ServiceSpec>,
    #[serde(default)]
    pub status: Option<ServiceStatus>,
}
resource!(
    Service,
    NamespaceResourceScope,
    "Service",
    "",
    "v1",
    "services"
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub external_name: Option<String>,
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(default, rename = "clusterIPs")]
    pub cluster_ips: Option<Vec<String>>,
    #[serde(default)]
    pub ports: Option<Vec<ServicePort>>,
    /// Served by `k8s_external`.
    #[serde(default, rename = "externalIPs")]
    pub external_ips: Option<Vec<String>>,
}

/// `status.loadBalancer.ingress[]`, served by `k8s_external`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    #[serde(default)]
    pub load_balancer: Option<LoadBalancerStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LoadBalancerStatus {
    #[serde(default)]
    pub ingress: Option<Vec<LoadBalancerIngress>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LoadBalancerIngress {
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServicePort {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub port: i32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    #[serde(default, deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_as_default")]
    pub address_type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub ports: Option<Vec<EndpointPort>>,
}
resource!(
    EndpointSlice,
    NamespaceResourceScope,
    "EndpointSlice",
    "discovery.k8s.io",
    "v1",
    "endpointslices"
);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(default, deserialize_with = "null_as_default")]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub conditions: Option<EndpointConditions>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub target_ref: Option<ObjectReference>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndpointConditions {
    #[serde(default)]
    pub ready: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ObjectReference {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndpointPort {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
}

/// `ServiceImport` of the Multi-Cluster Services API (`multicluster.x-k8s.io/v1alpha1`): a
/// Service as the whole cluster set sees it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceImport {
    #[serde(default, deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<ServiceImportSpec>,
}
resource!(
    ServiceImport,
    NamespaceResourceScope,
    "ServiceImport",
    "multicluster.x-k8s.io",
    "v1alpha1",
    "serviceimports"
);

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceImportSpec {
    /// `ClusterSetIP` or `Headless`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// The ClusterSetIPs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ips: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pod {
    #[serde(default, deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<PodSpec>,
    #[serde(default)]
    pub status: Option<PodStatus>,
}
resource!(Pod, NamespaceResourceScope, "Pod", "", "v1", "pods");

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// The pod shares its node's address: that IP says nothing about one pod.
    #[serde(default)]
    pub host_network: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(default, rename = "podIP")]
    pub pod_ip: Option<String>,
}

/// `null` reads as the default, as k8s-openapi reads it.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The metadata DNS uses: name, namespace, resourceVersion (the watcher resumes from it),
/// deletionTimestamp, the service-name labels (and the MCS source cluster) and the trigger-time
/// annotation.
fn slim_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Slim {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        namespace: Option<String>,
        #[serde(default)]
        resource_version: Option<String>,
        #[serde(default)]
        deletion_timestamp: Option<Time>,
        #[serde(default, deserialize_with = "kept_labels")]
        labels: Option<BTreeMap<String, String>>,
        #[serde(default, deserialize_with = "trigger_time_annotation")]
        annotations: Option<BTreeMap<String, String>>,
    }
    let slim = Option::<Slim>::deserialize(d)?;
    Ok(slim
        .map(|s| ObjectMeta {
            name: s.name,
            namespace: s.namespace,
            resource_version: s.resource_version,
            deletion_timestamp: s.deletion_timestamp,
            labels: s.labels,
            annotations: s.annotations,
            ..ObjectMeta::default()
        })
        .unwrap_or_default())
}

fn kept_labels<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    d.deserialize_option(SomeKeys(&KEPT_LABELS))
}

fn trigger_time_annotation<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    d.deserialize_option(SomeKeys(&[TRIGGER_TIME_ANNOTATION]))
}

/// Reads a string map (or `null`) keeping only some keys; the other values are skipped unread.
struct SomeKeys(&'static [&'static str]);

impl<'de> Visitor<'de> for SomeKeys {
    type Value = Option<BTreeMap<String, String>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of strings")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = BTreeMap::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if self.0.contains(&&*key) {
                kept.insert(key.into_owned(), map.next_value::<String>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Some(kept))
    }
}
