//! TLS client configuration for MQTT links: which roots to trust, with ring as the crypto provider.
//!
//! rustls is used with the `ring` provider and never aws-lc-rs: aws-lc-sys
//! needs cmake and a careful cross C toolchain, while ring cross-compiles to
//! the Pi's aarch64 and armv7 with the plain cross gcc the build already
//! uses. The provider is passed explicitly rather than installed
//! process-wide, so nothing depends on which crate happened to install one
//! first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// Why a TLS client configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("ca_file {path} cannot be read: {why}")]
    Unreadable { path: PathBuf, why: String },
    #[error("ca_file {path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    #[error("ca_file {path}: certificate {index} is not usable as a trust anchor: {why}")]
    BadCertificate {
        path: PathBuf,
        index: usize,
        why: String,
    },
    #[error(
        "no trusted root certificates found on this system (install ca-certificates, \
         or set ca_file to the PEM of the CA that signed the broker's certificate)"
    )]
    NoSystemRoots,
    #[error("TLS setup failed: {0}")]
    Rustls(String),
}

/// A rustls client config trusting the PEM certificates in `ca_file`, or the
/// operating system's roots when `ca_file` is `None`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file, as trust anchors. A file that is there
/// but holds no certificate is an error: trusting nothing would only fail
/// later, at connect time, with a less helpful message.
pub fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::Unreadable {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    let mut roots = RootCertStore::empty();
    for (index, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| TlsError::BadCertificate {
            path: path.to_owned(),
            index,
            why: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsError::BadCertificate {
            path: path.to_owned(),
            index,
            why: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(roots)
}

/// The operating system's trusted roots (Debian: /etc/ssl/certs from
/// ca-certificates). Unreadable entries are skipped, as a browser would.
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::debug!(%error, "skipping an unreadable system root certificate");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(
            added,
            ignored,
            "some system root certificates were not usable"
        );
    }
    if roots.is_empty() {
        return Err(TlsError::NoSystemRoots);
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let err = client_config(Some(Path::new("/nope/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("/nope/ca.pem"), "{err}");

        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"not a certificate\n").unwrap();
        let err = client_config(Some(f.path())).unwrap_err();
        assert!(
            matches!(err, TlsError::NoCertificate { .. }),
            "{err:?} for a file with no PEM block"
        );
    }

    #[test]
    fn garbage_inside_a_pem_block_is_refused() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .unwrap();
        let err = client_config(Some(f.path())).unwrap_err();
        assert!(matches!(err, TlsError::BadCertificate { .. }), "{err:?}");
    }
}
