//! What `k8s_external` serves of a Service: its external addresses and its ports. Kept by the
//! index apart from the cluster entries, only for the Services that have external addresses,
//! so the others cost nothing.

use crate::cluster::model::{self, External};

use super::records::{PortEntry, port_entries};

#[derive(Debug, Clone, PartialEq)]
pub struct ExternalEntry {
    /// `spec.externalIPs`, then the load balancer ingress points, in that order.
    pub addrs: Box<[External]>,
    /// The Service's ports; the portless stand-in when it has none.
    pub ports: Box<[PortEntry]>,
}

/// The entry of a Service with external addresses.
pub fn external_entry(service: &model::Service) -> Option<ExternalEntry> {
    if service.external.is_empty() {
        return None;
    }
    Some(ExternalEntry {
        addrs: service.external.clone(),
        ports: port_entries(&service.ports).into(),
    })
}
