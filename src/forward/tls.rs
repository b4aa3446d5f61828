//! The TLS client configuration of `tls://` upstreams, as CoreDNS's `tls [CERT KEY [CA]]`
//! builds it: TLS 1.2 or later, the server's certificate verified against the given CA file or
//! else the system's roots, a client certificate when one is given. Built once per forwarder
//! (and at `check`), so an unreadable file is an error naming its key.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::config::ForwardTls;

pub use crate::tls::TlsError;
use crate::tls::{certs_from, error, key_from, roots_from, system_roots};

/// The client configuration for `tls`, every file read and checked now.
pub fn client_config(tls: &ForwardTls) -> Result<Arc<ClientConfig>, TlsError> {
    if let Some(name) = &tls.server_name {
        ServerName::try_from(name.as_str())
            .map_err(|e| error("tls_servername", format!("{name:?}: {e}")))?;
    }
    match (&tls.cert, &tls.key) {
        (Some(_), None) => return Err(error("tls_key", "tls_cert needs tls_key")),
        (None, Some(_)) => return Err(error("tls_cert", "tls_key needs tls_cert")),
        _ => {}
    }
    let roots = match &tls.ca {
        Some(path) => roots_from("tls_ca", path)?,
        None => system_roots("tls_ca", "tls:// upstreams")?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error("tls_ca", e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(certs_from("tls_cert", cert)?, key_from("tls_key", key)?)
            .map_err(|e| error("tls_key", format!("{}: {e}", key.display())))?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The name an upstream's certificate must hold: `tls_servername`, else its IP (as Go's TLS
/// client does when CoreDNS has no `tls_servername`; no SNI is sent for an IP).
pub fn server_name(tls: &ForwardTls, ip: IpAddr) -> ServerName<'static> {
    tls.server_name
        .as_deref()
        .and_then(|name| ServerName::try_from(name.to_owned()).ok())
        .unwrap_or(ServerName::IpAddress(ip.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_names_its_key() {
        let tls = ForwardTls {
            ca: Some("/nonexistent/ca.pem".into()),
            ..ForwardTls::default()
        };
        let e = client_config(&tls).unwrap_err();
        assert_eq!(e.key, "tls_ca");
        assert!(e.message.contains("/nonexistent/ca.pem"), "{}", e.message);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("clusterdns-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("empty.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let tls = ForwardTls {
            ca: Some(ca),
            ..ForwardTls::default()
        };
        let e = client_config(&tls).unwrap_err();
        assert_eq!(e.key, "tls_ca");
        assert!(e.message.contains("no PEM certificate"), "{}", e.message);
    }

    #[test]
    fn a_cert_without_its_key_is_refused() {
        let tls = ForwardTls {
            cert: Some("/nonexistent/cert.pem".into()),
            ..ForwardTls::default()
        };
        assert_eq!(client_config(&tls).unwrap_err().key, "tls_key");
    }

    #[test]
    fn without_a_servername_the_ip_is_verified() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            server_name(&ForwardTls::default(), ip),
            ServerName::IpAddress(ip.into())
        );
        let named = ForwardTls {
            server_name: Some("dns.example".into()),
            ..ForwardTls::default()
        };
        assert_eq!(
            server_name(&named, ip),
            ServerName::try_from("dns.example").unwrap()
        );
    }
}
