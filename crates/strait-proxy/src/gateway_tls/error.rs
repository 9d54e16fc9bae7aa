//! Errors. Configuration errors name the server (its index, hosts and Secret) and say how to
//! fix it, for the operator reading the gateway's status; connection errors say whether the
//! client or the configuration is at fault, so the caller can log them at the right level.

use super::{TlsServer, TlsVersion};

/// Who must change something for the same attempt to succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The Gateway or its Secrets are wrong; an operator must fix them.
    Config,
    /// The client sent something unusable (bad ClientHello, unknown SNI, wrong certificate).
    Client,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayTlsError {
    #[error("gateway port has no TLS servers")]
    NoServers,
    #[error("server {server} (hosts {hosts}, credential {credential}): {problem}")]
    Server {
        server: usize,
        hosts: String,
        credential: String,
        // Boxed: rustls errors inside make it large, and errors are rare.
        #[source]
        problem: Box<ServerProblem>,
    },
    #[error(
        "host {host} is claimed by server {first} and server {second}: a port serves one \
         certificate per host, remove it from one of them"
    )]
    DuplicateHost {
        host: String,
        first: usize,
        second: usize,
    },
    #[error("reading the client hello: {0}")]
    ClientHello(#[source] std::io::Error),
    #[error("no server for SNI {}", sni.as_deref().unwrap_or("(none)"))]
    NoServerForSni { sni: Option<String> },
    #[error("handshake with server {server} (SNI {}): {source}", sni.as_deref().unwrap_or("(none)"))]
    Handshake {
        server: usize,
        sni: Option<String>,
        #[source]
        source: std::io::Error,
    },
}

impl GatewayTlsError {
    pub fn fault(&self) -> Fault {
        match self {
            GatewayTlsError::NoServers
            | GatewayTlsError::Server { .. }
            | GatewayTlsError::DuplicateHost { .. } => Fault::Config,
            GatewayTlsError::ClientHello(_)
            | GatewayTlsError::NoServerForSni { .. }
            | GatewayTlsError::Handshake { .. } => Fault::Client,
        }
    }

    pub(super) fn server(index: usize, server: &TlsServer, problem: ServerProblem) -> Self {
        GatewayTlsError::Server {
            server: index,
            hosts: server.hosts.join(","),
            credential: if server.credential_name.is_empty() {
                "(inline)".into()
            } else {
                server.credential_name.clone()
            },
            problem: Box::new(problem),
        }
    }
}

/// What is wrong with one server's TLS settings or material.
#[derive(Debug, thiserror::Error)]
pub enum ServerProblem {
    #[error("no hosts: a server needs at least one")]
    NoHosts,
    #[error("host {host:?}: {reason}")]
    Host { host: String, reason: &'static str },
    #[error("tls.crt: {0}")]
    CertificatePem(String),
    #[error("tls.crt holds no certificate")]
    NoCertificate,
    #[error("tls.key: {0}")]
    KeyPem(String),
    #[error("tls.key does not belong to the certificate in tls.crt")]
    KeyMismatch,
    #[error("tls.key: {0}")]
    Key(#[source] rustls::Error),
    #[error(
        "{mode} needs a client CA: add ca.crt (or cacert) to the Secret, or create the Secret \
         <credentialName>-cacert"
    )]
    MissingCa { mode: &'static str },
    #[error("ca.crt: {0}")]
    CaPem(String),
    #[error("ca.crt: {0}")]
    Ca(String),
    #[error("{field} {version} is not supported (strait implements TLSV1_2 and TLSV1_3)")]
    Version {
        field: &'static str,
        version: TlsVersion,
    },
    #[error("minProtocolVersion {min} is above maxProtocolVersion {max}")]
    VersionRange { min: TlsVersion, max: TlsVersion },
    #[error("cipherSuites {name:?}: {reason}")]
    CipherSuite { name: String, reason: &'static str },
    #[error("subjectAltNames needs a client certificate: use mode MUTUAL or OPTIONAL_MUTUAL")]
    SansWithoutClientCert,
    #[error(
        "{field} is not supported by strait; remove it (the server is refused rather than run without the check)"
    )]
    Unsupported { field: &'static str },
    #[error("tls configuration: {0}")]
    Config(#[source] rustls::Error),
}
