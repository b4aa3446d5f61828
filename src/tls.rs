//! TLS material, once for both ends: PEM certificates, keys and CA files read with their path
//! in every error, the system's roots, and the server configuration of `tls://` listeners
//! (CoreDNS `tls CERT KEY [CA] { client_auth … }`). `forward::tls` builds the client side of
//! `tls://` upstreams from the same readers.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::config::{ClientAuth, ListenTls};

/// What is wrong, and under which key of the table being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    pub key: &'static str,
    pub message: String,
}

pub(crate) fn error(key: &'static str, message: impl Into<String>) -> TlsError {
    TlsError {
        key,
        message: message.into(),
    }
}

/// Every certificate of a PEM file (at least one), the error under `key`.
pub(crate) fn certs_from(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
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

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file, the error under `key`.
pub(crate) fn key_from(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| error(key, format!("{}: {e}", path.display())))
}

/// The CA certificates of a PEM file as roots, the error under `key`.
pub(crate) fn roots_from(key: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from(key, path)? {
        roots
            .add(cert)
            .map_err(|e| error(key, format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// The system's roots (the distribution's CA bundle, or `SSL_CERT_FILE`/`SSL_CERT_DIR`);
/// `what` says what they would verify, for the error when there are none.
pub(crate) fn system_roots(key: &'static str, what: &str) -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(error(
            key,
            format!("no system CA certificates to verify {what} with ({why}); give {key}"),
        ));
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration of a `tls://` listener, every file read and checked now: TLS 1.2
/// or later (as CoreDNS), the certificate chain and key, and client certificates handled as
/// Go's `ClientAuthType` does (verified against `ca`, else the system roots).
pub fn server_config(tls: &ListenTls) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = certs_from("cert", &tls.cert)?;
    let key = key_from("key", &tls.key)?;
    let roots = || match &tls.ca {
        Some(ca) => roots_from("ca", ca),
        None => system_roots("ca", "client certificates"),
    };
    let webpki = |roots: RootCertStore, optional: bool| {
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder.build().map_err(|e| error("ca", e.to_string()))
    };
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match tls.client_auth {
        ClientAuth::NoCert => {
            // Read anyway, as CoreDNS loads it: a CA that does not load is an error.
            if let Some(ca) = &tls.ca {
                roots_from("ca", ca)?;
            }
            None
        }
        ClientAuth::Request => Some(Arc::new(AnyClientCert::new(false))),
        ClientAuth::Require => Some(Arc::new(AnyClientCert::new(true))),
        ClientAuth::VerifyIfGiven => Some(webpki(roots()?, true)?),
        ClientAuth::RequireAndVerify => Some(webpki(roots()?, false)?),
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| error("cert", e.to_string()))?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| error("key", format!("{}: {e}", tls.key.display())))?;
    Ok(Arc::new(config))
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: a client certificate is asked for (and
/// with `mandatory`, needed) but not verified against any CA; the handshake signature still
/// proves the client holds its key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    /// The provider's signature algorithms, taken once (not per handshake).
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl AnyClientCert {
    fn new(mandatory: bool) -> AnyClientCert {
        AnyClientCert {
            mandatory,
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen_tls(cert: &str, key: &str) -> ListenTls {
        ListenTls {
            cert: cert.into(),
            key: key.into(),
            ca: None,
            client_auth: ClientAuth::NoCert,
        }
    }

    #[test]
    fn a_missing_certificate_names_its_key_and_path() {
        let e = server_config(&listen_tls("/nonexistent/cert.pem", "/nonexistent/key.pem"))
            .unwrap_err();
        assert_eq!(e.key, "cert");
        assert!(e.message.contains("/nonexistent/cert.pem"), "{}", e.message);
    }

    #[test]
    fn a_file_without_a_key_is_refused_under_key() {
        let dir = std::env::temp_dir().join(format!("clusterdns-srvtls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A syntactically valid PEM certificate block is enough to get past `cert`.
        let cert = dir.join("cert.pem");
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let key = dir.join("key.pem");
        std::fs::write(&key, "not a key\n").unwrap();
        let e =
            server_config(&listen_tls(cert.to_str().unwrap(), key.to_str().unwrap())).unwrap_err();
        assert_eq!(e.key, "key");
        assert!(e.message.contains("key.pem"), "{}", e.message);
    }
}
