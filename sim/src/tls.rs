//! A throw-away certificate authority (rcgen) and the rustls server config for the HTTPS port.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::SimError;

/// A test certificate authority generated at run time. Cheap to clone; share one between
/// simulators (via [`crate::SimConfig::ca`]) so a client needs a single extra root.
#[derive(Clone)]
pub struct TestCa {
    inner: Arc<CaInner>,
}

struct CaInner {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// Generates a fresh CA (ECDSA P-256).
    pub fn generate() -> Result<Self, SimError> {
        let key = KeyPair::generate().map_err(tls_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Gatehouse Simulator Test CA");
        dn.push(DnType::OrganizationName, "Gatehouse (test only)");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(tls_err)?;
        Ok(Self {
            inner: Arc::new(CaInner { cert, key }),
        })
    }

    /// The CA certificate, PEM-encoded (add it to the client's trust store).
    pub fn cert_pem(&self) -> String {
        self.inner.cert.pem()
    }

    /// Issues a leaf for `localhost` and `127.0.0.1` and builds a rustls server config that
    /// offers HTTP/2 and HTTP/1.1 by ALPN.
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, SimError> {
        self.server_config_with_alpn(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
    }

    /// As [`Self::server_config`], offering only the given ALPN protocols (for example only
    /// `http/1.1`, as a provider without HTTP/2 would).
    pub fn server_config_with_alpn(
        &self,
        alpn: Vec<Vec<u8>>,
    ) -> Result<Arc<rustls::ServerConfig>, SimError> {
        let leaf_key = KeyPair::generate().map_err(tls_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().map_err(tls_err)?),
            SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        ];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "localhost");
        params.distinguished_name = dn;
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params
            .signed_by(&leaf_key, &self.inner.cert, &self.inner.key)
            .map_err(tls_err)?;
        let chain = vec![
            CertificateDer::from(leaf.der().to_vec()),
            CertificateDer::from(self.inner.cert.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(tls_err)?;
        cfg.alpn_protocols = alpn;
        Ok(Arc::new(cfg))
    }
}

fn tls_err(e: impl std::fmt::Display) -> SimError {
    SimError::Tls(e.to_string())
}
