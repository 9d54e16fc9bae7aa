//! Mesh TLS: the proxy's own certificate (rotated without dropping connections), the server
//! side (client certificates required, chained to the mesh roots), and per-cluster client
//! sides that verify the server's SPIFFE identity against the service's accounts.
//!
//! Istio workload certificates carry only a URI SAN, so the usual DNS-name check is replaced by
//! chain validation against the trust bundle plus an identity check.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

/// ALPN a client proxy offers for HTTP to a server proxy (Istio's values).
pub const ALPN_H2: &[u8] = b"istio-h2";
pub const ALPN_HTTP11: &[u8] = b"istio-http/1.1";
/// ALPN for opaque TCP between proxies.
pub const ALPN_TCP: &[u8] = b"istio";
/// TCP between strait proxies: the stream starts with the client's workload metadata
/// ([`crate::peer::write_preamble`]), so the server can label its TCP metrics with the source.
/// A client offers it before [`ALPN_TCP`]; a server that does not know it (Envoy) picks
/// `istio`, and the stream is plain.
pub const ALPN_TCP_PEER: &[u8] = b"strait-tcp-peer";
pub const ALPN_PEER_EXCHANGE: &[u8] = b"istio-peer-exchange";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate material: {0}")]
    Material(String),
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM trust bundle (one or several roots).
pub fn root_store(pem: &str) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| TlsError::Material(format!("trust bundle: {e}")))?;
        store
            .add(cert)
            .map_err(|e| TlsError::Material(format!("trust bundle: {e}")))?;
    }
    if store.is_empty() {
        return Err(TlsError::Material(
            "trust bundle holds no certificate".into(),
        ));
    }
    Ok(store)
}

/// The proxy's current certificate and the mesh's trust bundle. Readers load them for each
/// handshake, so a renewal applies to new connections at once and never touches open ones.
#[derive(Debug)]
pub struct Credentials {
    key: ArcSwap<Option<Arc<CertifiedKey>>>,
    roots: ArcSwap<RootCertStore>,
    /// When the current certificate expires.
    expiry: ArcSwap<Option<SystemTime>>,
}

impl Credentials {
    pub fn new(roots: RootCertStore) -> Arc<Credentials> {
        Arc::new(Credentials {
            key: ArcSwap::from_pointee(None),
            roots: ArcSwap::from_pointee(roots),
            expiry: ArcSwap::from_pointee(None),
        })
    }

    /// Installs a new certificate chain (leaf first) and its private key.
    pub fn install(&self, chain_pem: &[String], key_pem: &str) -> Result<(), TlsError> {
        let mut chain = Vec::new();
        for pem in chain_pem {
            for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                chain.push(c.map_err(|e| TlsError::Material(format!("certificate chain: {e}")))?);
            }
        }
        let leaf = chain
            .first()
            .ok_or_else(|| TlsError::Material("empty certificate chain".into()))?;
        let expiry = strait_ca::cert_expiry(leaf).map_err(|e| TlsError::Material(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| TlsError::Material(format!("private key: {e}")))?;
        let signing = provider()
            .key_provider
            .load_private_key(key)
            .map_err(TlsError::Config)?;
        // Send the leaf and intermediates; the root is what the peer already trusts.
        let send: Vec<CertificateDer<'static>> = if chain.len() > 1 {
            chain[..chain.len() - 1].to_vec()
        } else {
            chain
        };
        self.key
            .store(Arc::new(Some(Arc::new(CertifiedKey::new(send, signing)))));
        self.expiry.store(Arc::new(Some(expiry)));
        Ok(())
    }

    pub fn set_roots(&self, roots: RootCertStore) {
        self.roots.store(Arc::new(roots));
    }

    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.load_full()
    }

    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        (**self.key.load()).clone()
    }

    pub fn expiry(&self) -> Option<SystemTime> {
        **self.expiry.load()
    }

    /// The leaf certificate in use, DER.
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.current().and_then(|k| k.cert.first().cloned())
    }
}

/// Hands the current certificate to every handshake, client or server side.
#[derive(Debug)]
pub struct CurrentCert(pub Arc<Credentials>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.current()
    }
}

impl ResolvesClientCert for CurrentCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.current()
    }

    fn has_certs(&self) -> bool {
        self.0.current().is_some()
    }
}

/// The inbound side: any mesh certificate is accepted at the handshake (identity checks are
/// policy, made after it); plaintext clients are handled before TLS is attempted.
pub fn server_config(creds: &Arc<Credentials>) -> Result<Arc<ServerConfig>, TlsError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(creds.roots(), provider())
        .build()
        .map_err(|e| TlsError::Material(format!("client verifier: {e}")))?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(CurrentCert(creds.clone())));
    cfg.alpn_protocols = vec![
        ALPN_H2.to_vec(),
        ALPN_HTTP11.to_vec(),
        ALPN_TCP_PEER.to_vec(),
        ALPN_TCP.to_vec(),
        ALPN_PEER_EXCHANGE.to_vec(),
        b"h2".to_vec(),
        b"http/1.1".to_vec(),
    ];
    Ok(Arc::new(cfg))
}

/// Verifies a server proxy: its chain against the mesh roots, then its SPIFFE identity against
/// the identities the cluster allows (any mesh identity when the list is empty).
#[derive(Debug)]
pub struct IdentityVerifier {
    /// The roots are read at each handshake, so cached client configs follow a new bundle.
    creds: Arc<Credentials>,
    identities: Vec<String>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for IdentityVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.creds.roots(),
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if self.identities.is_empty() {
            return Ok(ServerCertVerified::assertion());
        }
        let presented = strait_ca::identity_of(end_entity).map(|id| id.to_string());
        match presented {
            Some(id) if self.identities.contains(&id) => Ok(ServerCertVerified::assertion()),
            other => Err(rustls::Error::General(format!(
                "server identity {} is not one of {}",
                other.unwrap_or_else(|| "(none)".into()),
                self.identities.join(", ")
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The client side for one cluster: our certificate, the cluster's allowed identities, and
/// the ALPN for the traffic (`istio-h2` for HTTP, `istio` for TCP).
pub fn client_config(
    creds: &Arc<Credentials>,
    identities: &[String],
    alpn: &[u8],
) -> Result<Arc<ClientConfig>, TlsError> {
    let verifier = IdentityVerifier {
        creds: creds.clone(),
        identities: identities.to_vec(),
        provider: provider(),
    };
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(CurrentCert(creds.clone())));
    cfg.alpn_protocols = if alpn == ALPN_TCP_PEER {
        // With Istio's TCP ALPN as the fallback for servers that are not strait.
        vec![ALPN_TCP_PEER.to_vec(), ALPN_TCP.to_vec()]
    } else {
        vec![alpn.to_vec()]
    };
    Ok(Arc::new(cfg))
}

/// The SPIFFE identity a peer certificate chain presents.
pub fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Option<String> {
    certs?
        .first()
        .and_then(|c| strait_ca::identity_of(c))
        .map(|id| id.to_string())
}
