//! One server's `ServerConfig`: its certificate, versions, cipher suites and client verifier.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, WebPkiClientVerifier};
use rustls::{CipherSuite, RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::error::ServerProblem;
use super::verify::SanRestricted;
use super::{TerminateMode, TlsServer, TlsVersion};
use crate::tls::provider;

/// ALPN offered to clients: Istio's default for HTTPS gateway servers.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A server's rustls configs.
#[derive(Debug)]
pub(super) struct Compiled {
    config: Arc<ServerConfig>,
    /// The same without ALPN, for a client that offers none of ours: rustls would refuse it
    /// with `no_application_protocol`, while Envoy completes the handshake without selecting a
    /// protocol (and the connection is then served as HTTP/1.1).
    no_alpn: Arc<ServerConfig>,
}

impl Compiled {
    pub(super) fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    pub(super) fn for_hello(&self, hello: &ClientHello<'_>) -> &Arc<ServerConfig> {
        let ours_offered = hello
            .alpn()
            .is_none_or(|mut offered| offered.any(|p| ALPN.contains(&p)));
        if ours_offered {
            &self.config
        } else {
            &self.no_alpn
        }
    }
}

pub(super) fn build(server: &TlsServer) -> Result<Compiled, ServerProblem> {
    if !server.verify_certificate_spki.is_empty() {
        return Err(ServerProblem::Unsupported {
            field: "verifyCertificateSpki",
        });
    }
    if !server.verify_certificate_hash.is_empty() {
        return Err(ServerProblem::Unsupported {
            field: "verifyCertificateHash",
        });
    }
    let versions = versions(server.min_version, server.max_version)?;
    let provider = Arc::new(with_suites(provider(), &server.cipher_suites)?);
    let chain = certificates(&server.cert_chain_pem).map_err(ServerProblem::CertificatePem)?;
    if chain.is_empty() {
        return Err(ServerProblem::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes())
        .map_err(|e| ServerProblem::KeyPem(e.to_string()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(ServerProblem::Config)?;
    let builder = match client_verifier(server, &provider)? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            ServerProblem::KeyMismatch
        }
        other => ServerProblem::Key(other),
    })?;
    let no_alpn = Arc::new(cfg.clone());
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Compiled {
        config: Arc::new(cfg),
        no_alpn,
    })
}

/// `None` for SIMPLE: no certificate is requested at all, as in Envoy.
fn client_verifier(
    server: &TlsServer,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, ServerProblem> {
    let mode = match server.mode {
        TerminateMode::Simple if server.subject_alt_names.is_empty() => return Ok(None),
        TerminateMode::Simple => return Err(ServerProblem::SansWithoutClientCert),
        TerminateMode::Mutual => "MUTUAL",
        TerminateMode::OptionalMutual => "OPTIONAL_MUTUAL",
    };
    let ca = server
        .ca_pem
        .as_deref()
        .ok_or(ServerProblem::MissingCa { mode })?;
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca).map_err(ServerProblem::CaPem)? {
        roots
            .add(cert)
            .map_err(|e| ServerProblem::Ca(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(ServerProblem::Ca("holds no certificate".into()));
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if server.mode == TerminateMode::OptionalMutual {
        builder = builder.allow_unauthenticated();
    }
    let verifier = builder
        .build()
        .map_err(|e| ServerProblem::Ca(e.to_string()))?;
    if server.subject_alt_names.is_empty() {
        return Ok(Some(verifier));
    }
    Ok(Some(Arc::new(SanRestricted::new(
        verifier,
        server.subject_alt_names.clone(),
    ))))
}

fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Istio's defaults: TLS 1.2 to TLS 1.3 for gateway servers.
fn versions(
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
) -> Result<Vec<&'static SupportedProtocolVersion>, ServerProblem> {
    let resolve = |field, v: Option<TlsVersion>, auto| match v {
        None | Some(TlsVersion::Auto) => Ok(auto),
        Some(v @ (TlsVersion::V1_0 | TlsVersion::V1_1)) => {
            Err(ServerProblem::Version { field, version: v })
        }
        Some(v) => Ok(v),
    };
    let min = resolve("minProtocolVersion", min, TlsVersion::V1_2)?;
    let max = resolve("maxProtocolVersion", max, TlsVersion::V1_3)?;
    if min > max {
        return Err(ServerProblem::VersionRange { min, max });
    }
    let mut out = Vec::new();
    if min <= TlsVersion::V1_3 && max >= TlsVersion::V1_3 {
        out.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::V1_2 && max >= TlsVersion::V1_2 {
        out.push(&rustls::version::TLS12);
    }
    Ok(out)
}

/// Restricts the TLS 1.2 suites to `names` (in that order). TLS 1.3 suites stay: Envoy's
/// `cipher_suites` does not govern TLS 1.3 either.
fn with_suites(
    provider: Arc<CryptoProvider>,
    names: &[String],
) -> Result<CryptoProvider, ServerProblem> {
    let mut provider = Arc::unwrap_or_clone(provider);
    if names.is_empty() {
        return Ok(provider);
    }
    let mut suites: Vec<_> = provider
        .cipher_suites
        .iter()
        .filter(|s| s.tls13().is_some())
        .copied()
        .collect();
    // BoringSSL's equal-preference groups, `[A|B]`, are accepted and flattened.
    let listed = names
        .iter()
        .flat_map(|n| n.trim_matches(|c| c == '[' || c == ']').split('|'))
        .map(str::trim);
    for name in listed {
        let id = suite_id(name)?;
        let suite = provider
            .cipher_suites
            .iter()
            .find(|s| s.suite() == id)
            .copied()
            .ok_or_else(|| ServerProblem::CipherSuite {
                name: name.to_string(),
                reason: "not offered by the crypto provider",
            })?;
        if !suites.iter().any(|s| s.suite() == id) {
            suites.push(suite);
        }
    }
    provider.cipher_suites = suites;
    Ok(provider)
}

/// OpenSSL names (the ones Istio documents) to IANA suites.
fn suite_id(name: &str) -> Result<CipherSuite, ServerProblem> {
    let bad = |reason| ServerProblem::CipherSuite {
        name: name.to_string(),
        reason,
    };
    Ok(match name {
        "ECDHE-ECDSA-AES128-GCM-SHA256" => CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES256-GCM-SHA384" => CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => {
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "ECDHE-RSA-AES128-GCM-SHA256" => CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES256-GCM-SHA384" => CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-CHACHA20-POLY1305" => CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "AES128-GCM-SHA256"
        | "AES256-GCM-SHA384"
        | "AES128-SHA"
        | "AES256-SHA"
        | "ECDHE-ECDSA-AES128-SHA"
        | "ECDHE-ECDSA-AES256-SHA"
        | "ECDHE-RSA-AES128-SHA"
        | "ECDHE-RSA-AES256-SHA"
        | "DES-CBC3-SHA"
        | "ECDHE-PSK-AES128-CBC-SHA"
        | "ECDHE-PSK-AES256-CBC-SHA"
        | "ECDHE-PSK-CHACHA20-POLY1305" => {
            return Err(bad(
                "a valid OpenSSL suite that rustls does not implement (static RSA key exchange, \
                 CBC or PSK); remove it",
            ));
        }
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => {
            return Err(bad(
                "a TLS 1.3 suite: TLS 1.3 suites are always enabled and cannot be listed",
            ));
        }
        _ => {
            return Err(bad(
                "unknown cipher suite; use OpenSSL names such as ECDHE-ECDSA-AES128-GCM-SHA256",
            ));
        }
    })
}
