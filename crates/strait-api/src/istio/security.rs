//! `security.istio.io`: PeerAuthentication (what a workload accepts), AuthorizationPolicy (who
//! may call it) and RequestAuthentication (which JWTs it trusts).

use std::collections::BTreeMap;

use super::common::{Duration, MatchLabels, PolicyTargetReference, istio_enum, spec};

istio_enum! {
    pub enum MtlsMode {
        Unset,
        Disable,
        Permissive,
        Strict,
    }
}

spec! {
    pub struct MutualTls {
        pub mode: Option<MtlsMode>,
    }
}

spec! {
    pub struct PeerAuthenticationSpec {
        pub selector: Option<MatchLabels>,
        pub mtls: Option<MutualTls>,
        pub port_level_mtls: BTreeMap<u32, MutualTls>,
    }
}

impl PeerAuthenticationSpec {
    /// The policy's own mode, `None` when it inherits (unset or UNSET).
    pub fn mode(&self) -> Option<MtlsMode> {
        self.mtls
            .as_ref()
            .and_then(|m| m.mode)
            .filter(|m| *m != MtlsMode::Unset)
    }
}

istio_enum! {
    pub enum AuthorizationAction {
        Allow,
        Deny,
        Audit,
        Custom,
    }
}

spec! {
    pub struct AuthorizationPolicySpec {
        pub selector: Option<MatchLabels>,
        pub target_ref: Option<PolicyTargetReference>,
        pub target_refs: Vec<PolicyTargetReference>,
        pub rules: Vec<Rule>,
        pub action: Option<AuthorizationAction>,
        pub provider: Option<ExtensionProviderRef>,
    }
}

spec! {
    pub struct ExtensionProviderRef {
        pub name: String,
    }
}

spec! {
    pub struct Rule {
        pub from: Vec<RuleFrom>,
        pub to: Vec<RuleTo>,
        pub when: Vec<Condition>,
    }
}

spec! {
    pub struct RuleFrom {
        pub source: Option<Source>,
    }
}

spec! {
    pub struct Source {
        pub principals: Vec<String>,
        pub not_principals: Vec<String>,
        pub request_principals: Vec<String>,
        pub not_request_principals: Vec<String>,
        pub namespaces: Vec<String>,
        pub not_namespaces: Vec<String>,
        pub service_accounts: Vec<String>,
        pub not_service_accounts: Vec<String>,
        pub ip_blocks: Vec<String>,
        pub not_ip_blocks: Vec<String>,
        pub remote_ip_blocks: Vec<String>,
        pub not_remote_ip_blocks: Vec<String>,
        pub trust_domains: Vec<String>,
        pub not_trust_domains: Vec<String>,
    }
}

spec! {
    pub struct RuleTo {
        pub operation: Option<RuleOperation>,
    }
}

spec! {
    pub struct RuleOperation {
        pub hosts: Vec<String>,
        pub not_hosts: Vec<String>,
        pub ports: Vec<String>,
        pub not_ports: Vec<String>,
        pub methods: Vec<String>,
        pub not_methods: Vec<String>,
        pub paths: Vec<String>,
        pub not_paths: Vec<String>,
    }
}

spec! {
    pub struct Condition {
        pub key: String,
        pub values: Vec<String>,
        pub not_values: Vec<String>,
    }
}

spec! {
    pub struct RequestAuthenticationSpec {
        pub selector: Option<MatchLabels>,
        pub target_ref: Option<PolicyTargetReference>,
        pub target_refs: Vec<PolicyTargetReference>,
        pub jwt_rules: Vec<JwtRule>,
    }
}

istio_enum! {
    pub enum JwtPresence {
        Optional,
        Required,
    }
}

spec! {
    pub struct JwtRule {
        pub issuer: String,
        pub audiences: Vec<String>,
        pub jwks_uri: String,
        /// The CRD's alternative spelling of `jwksUri`.
        #[serde(rename = "jwks_uri")]
        pub jwks_uri_legacy: String,
        pub jwks: String,
        pub from_headers: Vec<JwtHeader>,
        pub from_params: Vec<String>,
        pub output_payload_to_header: String,
        pub from_cookies: Vec<String>,
        pub forward_original_token: bool,
        pub output_claim_to_headers: Vec<ClaimToHeader>,
        pub timeout: Option<Duration>,
        pub space_delimited_claims: Vec<String>,
        pub presence: Option<JwtPresence>,
    }
}

spec! {
    pub struct JwtHeader {
        pub name: String,
        pub prefix: String,
    }
}

spec! {
    pub struct ClaimToHeader {
        pub header: String,
        pub claim: String,
    }
}
