//! The Kubernetes API types clusterdns reads, re-exported once so a version bump touches one file.
//! Nothing outside `cluster` sees these: the zone works on the slim `cluster::model` objects.

pub use k8s_openapi::api::core::v1::{Namespace, Pod, Service, ServicePort};
pub use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
