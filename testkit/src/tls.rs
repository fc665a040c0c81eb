//! Throwaway certificate authorities for TLS tests: a CA and a server certificate for localhost, as PEM files.
//!
//! Generated with rcgen (ring, no C toolchain beyond what ring needs) in a
//! temporary folder per test, so no test depends on a certificate that
//! expires or on anything installed on the machine.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA plus one server certificate it signed, written as PEM files.
#[derive(Debug)]
pub struct TestPki {
    /// PEM of the CA certificate: what clients pass as `--cafile` / `ca_file`.
    pub ca: PathBuf,
    /// PEM of the server certificate (SANs `localhost` and `127.0.0.1`).
    pub cert: PathBuf,
    /// PEM (PKCS#8) of the server certificate's private key.
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestPki {
    /// A new CA called `name` and a server certificate for localhost/127.0.0.1.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca_pem, issuer) = new_ca(name);
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("valid SANs");
        params
            .distinguished_name
            .push(DnType::CommonName, "hearth test broker");
        params.use_authority_key_identifier_extension = true;
        params.key_usages.push(KeyUsagePurpose::DigitalSignature);
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &issuer).expect("sign server cert");
        let write = |file: &str, text: &str| {
            let path = dir.path().join(file);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        Self {
            ca: write("ca.pem", &ca_pem),
            cert: write("server.pem", &cert.pem()),
            key: write("server.key", &key.serialize_pem()),
            _dir: dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}

fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages.push(KeyUsagePurpose::KeyCertSign);
    params.key_usages.push(KeyUsagePurpose::CrlSign);
    params.key_usages.push(KeyUsagePurpose::DigitalSignature);
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-sign CA");
    (cert.pem(), Issuer::new(params, key))
}
