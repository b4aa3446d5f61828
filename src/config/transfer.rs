//! `[server.transfer]`: zone transfers (AXFR, IXFR answered as AXFR) of the cluster zone over
//! TCP to the clients listed (CoreDNS `transfer`); needs `[server.kubernetes]` in the block.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::{FieldError, field_error};

/// Who may transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferPeer {
    /// `*`: anyone.
    Any,
    /// This address (a port given with it is ignored: it is where CoreDNS would send NOTIFY).
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferConfig {
    /// Transfers of names under these zones are answered here (lower-case, no trailing dot).
    pub zones: Vec<String>,
    pub to: Vec<TransferPeer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransfer {
    zones: Option<Vec<String>>,
    #[serde(default)]
    to: Vec<String>,
}

impl RawTransfer {
    pub(super) fn validate(
        self,
        key: &str,
        block: &[String],
        kubernetes: bool,
    ) -> Result<TransferConfig, FieldError> {
        if !kubernetes {
            return Err(field_error(
                key,
                "needs [server.kubernetes] in the same block (the cluster zone is what it transfers)",
            ));
        }
        let zones = super::stage_zones(&format!("{key}.zones"), self.zones.as_deref(), block)?;
        if self.to.is_empty() {
            return Err(field_error(
                format!("{key}.to"),
                "needs at least one address, or \"*\" for anyone",
            ));
        }
        let to = (self.to.iter().enumerate())
            .map(|(i, t)| peer(t).ok_or_else(|| field_error(format!("{key}.to[{i}]"), format!("{t:?} is not \"*\", an IP address or an IP address and port (networks are not accepted, as in CoreDNS)"))))
            .collect::<Result<_, _>>()?;
        Ok(TransferConfig { zones, to })
    }
}

/// `*`, `1.2.3.4`, `1.2.3.4:53`, `fd00::1`, `[fd00::1]:53`.
pub fn peer(text: &str) -> Option<TransferPeer> {
    if text == "*" {
        return Some(TransferPeer::Any);
    }
    let ip = match text.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => text.parse::<SocketAddr>().ok()?.ip(),
    };
    Some(TransferPeer::Ip(ip))
}
