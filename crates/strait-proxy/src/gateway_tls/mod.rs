//! TLS termination for an ingress gateway's HTTPS servers (Istio `Gateway.servers[].tls`).
//!
//! One listener port may carry several HTTPS servers, each with its own hosts, certificate and
//! client-certificate policy. rustls chooses the client verifier, versions and cipher suites
//! per `ServerConfig`, not per SNI, so every server is compiled into its own `ServerConfig`
//! and [`GatewayTls::accept`] reads the ClientHello first (rustls' `Acceptor`, through
//! `tokio_rustls::LazyConfigAcceptor`) and continues the handshake with the config of the
//! server the SNI selects. This mirrors Envoy, where each server is a filter chain matched on
//! `server_names`.
//!
//! ALPN offers `h2` and `http/1.1` (Istio's default for HTTPS servers); a client that offers
//! neither is served without ALPN, as Envoy does, rather than refused.
//!
//! Everything is validated in [`GatewayTls::new`], before a connection arrives: PEM parses, the
//! key belongs to the certificate, a MUTUAL server has a CA, versions and cipher suites are
//! ones rustls implements, and no host is claimed by two servers. Fields strait cannot honour
//! (`verifyCertificateSpki`, `verifyCertificateHash`, TLS 1.0/1.1) are errors, never ignored;
//! the caller fails closed.
//!
//! Secrets are resolved by the caller: this module receives PEM strings. For reference, Istio
//! reads `tls.crt`/`tls.key`/`ca.crt` or `cert`/`key`/`cacert` from the Secret named by
//! `credentialName`, and for MUTUAL also accepts the CA from `<credentialName>-cacert`.

mod config;
mod error;
mod hosts;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

pub use error::{Fault, GatewayTlsError, ServerProblem};

use hosts::HostRouter;

/// One Gateway server that terminates TLS.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsServer {
    /// `servers[].hosts`: `name`, `*.suffix` (any depth of subdomain) or `*`, optionally
    /// prefixed `namespace/`, which only matters for route binding and is ignored here.
    pub hosts: Vec<String>,
    pub mode: TerminateMode,
    /// The Secret named by `credentialName`, for error messages; empty for inline material.
    #[serde(default)]
    pub credential_name: String,
    /// Server certificate chain, leaf first (`tls.crt` / `cert`).
    pub cert_chain_pem: String,
    /// Private key of the leaf (`tls.key` / `key`); PKCS#8, PKCS#1 or SEC1. Never logged.
    pub key_pem: String,
    /// Client CA bundle (`ca.crt` / `cacert`); required for MUTUAL and OPTIONAL_MUTUAL.
    /// Ignored for SIMPLE, as in Istio (Secrets made by cert-manager always carry `ca.crt`).
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// `minProtocolVersion`; absent or `TLS_AUTO` means TLS 1.2.
    #[serde(default)]
    pub min_version: Option<TlsVersion>,
    /// `maxProtocolVersion`; absent or `TLS_AUTO` means TLS 1.3.
    #[serde(default)]
    pub max_version: Option<TlsVersion>,
    /// `cipherSuites`, OpenSSL names in preference order; empty means rustls' defaults.
    /// As in Envoy they govern TLS 1.2 only: TLS 1.3 suites are always on.
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    /// `subjectAltNames`: when non-empty a client certificate must carry one of these as a
    /// DNS, URI or IP SAN (exact match).
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
    /// `verifyCertificateSpki`: not supported; non-empty is an error.
    #[serde(default)]
    pub verify_certificate_spki: Vec<String>,
    /// `verifyCertificateHash`: not supported; non-empty is an error.
    #[serde(default)]
    pub verify_certificate_hash: Vec<String>,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer")
            .field("hosts", &self.hosts)
            .field("mode", &self.mode)
            .field("credential_name", &self.credential_name)
            .field(
                "cert_chain_pem",
                &format_args!("<{} bytes>", self.cert_chain_pem.len()),
            )
            .field("key_pem", &format_args!("<redacted>"))
            .field("ca_pem", &self.ca_pem.as_ref().map(|c| c.len()))
            .field("min_version", &self.min_version)
            .field("max_version", &self.max_version)
            .field("cipher_suites", &self.cipher_suites)
            .field("subject_alt_names", &self.subject_alt_names)
            .field("verify_certificate_spki", &self.verify_certificate_spki)
            .field("verify_certificate_hash", &self.verify_certificate_hash)
            .finish()
    }
}

/// `tls.mode` values that terminate TLS (PASSTHROUGH and AUTO_PASSTHROUGH do not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TerminateMode {
    /// Server certificate only.
    Simple,
    /// A client certificate chaining to the CA bundle is required.
    Mutual,
    /// A client certificate is optional, but verified against the CA bundle when sent.
    OptionalMutual,
}

/// `minProtocolVersion` / `maxProtocolVersion`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum TlsVersion {
    #[serde(rename = "TLS_AUTO")]
    Auto,
    /// Valid in Istio, not implemented by rustls: rejected at construction.
    #[serde(rename = "TLSV1_0")]
    V1_0,
    /// Valid in Istio, not implemented by rustls: rejected at construction.
    #[serde(rename = "TLSV1_1")]
    V1_1,
    #[serde(rename = "TLSV1_2")]
    V1_2,
    #[serde(rename = "TLSV1_3")]
    V1_3,
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Auto => "TLS_AUTO",
            TlsVersion::V1_0 => "TLSV1_0",
            TlsVersion::V1_1 => "TLSV1_1",
            TlsVersion::V1_2 => "TLSV1_2",
            TlsVersion::V1_3 => "TLSV1_3",
        })
    }
}

/// What a completed handshake settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Index of the chosen server in the slice given to [`GatewayTls::new`].
    pub server: usize,
    /// The SNI the client sent, lowercased.
    pub sni: Option<String>,
    /// The verified client certificate's SANs, when the client sent one.
    pub client: Option<ClientCert>,
}

/// A client certificate that passed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// DNS, URI and IP SANs in certificate order (IPs in their textual form).
    pub sans: Vec<String>,
}

/// The compiled TLS side of one gateway port.
pub struct GatewayTls {
    configs: Vec<config::Compiled>,
    modes: Vec<TerminateMode>,
    router: HostRouter,
}

impl fmt::Debug for GatewayTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayTls")
            .field("modes", &self.modes)
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl GatewayTls {
    /// Validates and compiles the servers of one port; the first problem found is returned.
    pub fn new(servers: &[TlsServer]) -> Result<Self, GatewayTlsError> {
        if servers.is_empty() {
            return Err(GatewayTlsError::NoServers);
        }
        let mut configs = Vec::with_capacity(servers.len());
        let mut parsed = Vec::with_capacity(servers.len());
        for (i, server) in servers.iter().enumerate() {
            let fail = |problem| GatewayTlsError::server(i, server, problem);
            parsed.push(hosts::parse_hosts(&server.hosts).map_err(fail)?);
            configs.push(config::build(server).map_err(fail)?);
        }
        Ok(GatewayTls {
            configs,
            modes: servers.iter().map(|s| s.mode).collect(),
            router: HostRouter::new(&parsed)?,
        })
    }

    /// The server a ClientHello with this SNI is given: an exact host, else the longest
    /// matching `*.suffix`, else a `*` server (which also takes clients without SNI).
    pub fn select(&self, sni: Option<&str>) -> Option<usize> {
        self.router.select(sni)
    }

    /// The rustls config of server `index`, for callers that read the ClientHello themselves.
    pub fn config(&self, index: usize) -> Option<&Arc<ServerConfig>> {
        self.configs.get(index).map(config::Compiled::config)
    }

    /// Runs the server side of a handshake. The caller bounds it with a timeout: a client that
    /// never finishes its ClientHello would otherwise hold the connection open.
    pub async fn accept<IO>(&self, io: IO) -> Result<(TlsStream<IO>, Accepted), GatewayTlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
            .await
            .map_err(GatewayTlsError::ClientHello)?;
        let sni = start
            .client_hello()
            .server_name()
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase());
        let chosen = self
            .select(sni.as_deref())
            .and_then(|i| Some((i, self.configs.get(i)?)));
        // Envoy closes a connection no filter chain matches, without an alert.
        let Some((server, compiled)) = chosen else {
            return Err(GatewayTlsError::NoServerForSni { sni });
        };
        let config = compiled.for_hello(&start.client_hello()).clone();
        let stream =
            start
                .into_stream(config)
                .await
                .map_err(|source| GatewayTlsError::Handshake {
                    server,
                    sni: sni.clone(),
                    source,
                })?;
        let client = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|leaf| ClientCert {
                sans: verify::sans_of(leaf),
            });
        Ok((
            stream,
            Accepted {
                server,
                sni,
                client,
            },
        ))
    }
}
