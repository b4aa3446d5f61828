//! The TLS client configuration of `tls://` upstreams, as CoreDNS's `tls [CERT KEY [CA]]`
//! builds it: TLS 1.2 or later, the server's certificate verified against the given CA file or
//! else the system's roots, a client certificate when one is given. Built once per forwarder
//! (and at `check`), so an unreadable file is an error naming its key.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::ForwardTls;

/// What is wrong, and under which `[server.forward]` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    pub key: &'static str,
    pub message: String,
}

fn error(key: &'static str, message: impl Into<String>) -> TlsError {
    TlsError {
        key,
        message: message.into(),
    }
}

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
        Some(path) => roots_from(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error("tls_ca", e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(certs_from("tls_cert", cert)?, key_from(key)?)
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

fn certs_from(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(key, format!("{shown}: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(key, format!("{shown}: {e}")))?;
    if certs.is_empty() {
        return Err(error(key, format!("{shown}: no PEM certificate in it")));
    }
    Ok(certs)
}

fn key_from(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| error("tls_key", format!("{}: {e}", path.display())))
}

fn roots_from(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from("tls_ca", path)? {
        roots
            .add(cert)
            .map_err(|e| error("tls_ca", format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// The system's roots (the distribution's CA bundle, or `SSL_CERT_FILE`/`SSL_CERT_DIR`).
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(error(
            "tls_ca",
            format!(
                "no system CA certificates to verify tls:// upstreams with ({why}); give tls_ca"
            ),
        ));
    }
    Ok(roots)
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
