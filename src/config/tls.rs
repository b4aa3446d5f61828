//! `[server.tls]`: the certificate of the block's `tls://` listen addresses, DNS over TLS
//! (RFC 7858; CoreDNS `tls CERT KEY [CA] { client_auth … }` in a `tls://` server block).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{FieldError, field_error};

/// How client certificates are asked for, as Go's `tls.ClientAuthType` (CoreDNS `client_auth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// None asked for (the default).
    #[default]
    #[serde(rename = "nocert")]
    NoCert,
    /// Asked for, not needed, not verified.
    Request,
    /// Needed, not verified.
    Require,
    /// Verified against `ca` when one is sent.
    VerifyIfGiven,
    /// Needed and verified against `ca`.
    RequireAndVerify,
}

/// `[server.tls]`, validated: paths absolute (against the config's directory), every file
/// readable and usable (checked at load, read again at every reload so a renewed certificate
/// is picked up).
#[derive(Debug, Clone, PartialEq)]
pub struct ListenTls {
    /// The certificate chain (PEM), the server's first.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// CA certificates (PEM) client certificates are verified against; without it, the
    /// system roots (for `verify_if_given` / `require_and_verify` only).
    pub ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    ca: Option<String>,
    #[serde(default)]
    client_auth: ClientAuth,
}

impl RawTls {
    pub(super) fn validate(self, key: &str, base: &Path) -> Result<ListenTls, FieldError> {
        let needed = |value: Option<String>, name: &str| {
            value
                .map(|v| base.join(v))
                .ok_or_else(|| field_error(format!("{key}.{name}"), "is required"))
        };
        let tls = ListenTls {
            cert: needed(self.cert, "cert")?,
            key: needed(self.key, "key")?,
            ca: self.ca.map(|c| base.join(c)),
            client_auth: self.client_auth,
        };
        crate::tls::server_config(&tls)
            .map_err(|e| field_error(format!("{key}.{}", e.key), e.message))?;
        Ok(tls)
    }
}
