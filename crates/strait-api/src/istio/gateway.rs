//! `networking.istio.io` Gateway: which ports and hosts a gateway proxy serves.

use std::collections::BTreeMap;

use super::common::{istio_enum, spec};

spec! {
    pub struct GatewaySpec {
        pub servers: Vec<Server>,
        /// Labels of the gateway pods this applies to (any namespace unless scoped).
        pub selector: BTreeMap<String, String>,
    }
}

spec! {
    pub struct Server {
        pub port: Option<ServerPort>,
        pub bind: String,
        pub hosts: Vec<String>,
        pub tls: Option<ServerTlsSettings>,
        pub default_endpoint: String,
        pub name: String,
    }
}

spec! {
    pub struct ServerPort {
        pub number: u32,
        pub protocol: String,
        pub name: String,
        /// Deprecated and ignored by Istio.
        pub target_port: Option<u32>,
    }
}

istio_enum! {
    pub enum ServerTlsMode {
        Passthrough,
        Simple,
        Mutual,
        AutoPassthrough,
        IstioMutual,
        OptionalMutual,
    }
}

istio_enum! {
    pub enum TlsProtocol {
        TlsAuto,
        #[serde(rename = "TLSV1_0")]
        Tlsv1_0,
        #[serde(rename = "TLSV1_1")]
        Tlsv1_1,
        #[serde(rename = "TLSV1_2")]
        Tlsv1_2,
        #[serde(rename = "TLSV1_3")]
        Tlsv1_3,
    }
}

spec! {
    pub struct ServerTlsSettings {
        pub https_redirect: bool,
        pub mode: Option<ServerTlsMode>,
        pub server_certificate: String,
        pub private_key: String,
        pub ca_certificates: String,
        pub ca_crl: String,
        pub credential_name: String,
        pub credential_names: Vec<String>,
        pub ca_cert_credential_name: String,
        pub tls_certificates: Vec<TlsCertificate>,
        pub subject_alt_names: Vec<String>,
        pub verify_certificate_spki: Vec<String>,
        pub verify_certificate_hash: Vec<String>,
        pub min_protocol_version: Option<TlsProtocol>,
        pub max_protocol_version: Option<TlsProtocol>,
        pub cipher_suites: Vec<String>,
        pub ecdh_curves: Vec<String>,
        pub insecure_skip_verify: Option<bool>,
    }
}

impl ServerTlsSettings {
    /// The mode, with Istio's default (PASSTHROUGH) applied.
    pub fn effective_mode(&self) -> ServerTlsMode {
        self.mode.unwrap_or(ServerTlsMode::Passthrough)
    }
}

spec! {
    pub struct TlsCertificate {
        pub server_certificate: String,
        pub private_key: String,
        pub ca_certificates: String,
    }
}
