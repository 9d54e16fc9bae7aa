//! What a proxy is told about security policy: the AuthorizationPolicies and
//! RequestAuthentications that apply to its workload, compiled for evaluation per request (HTTP)
//! or per connection (TCP). Plain data like the rest of the compiled configuration; the proxy
//! evaluates it (`strait-proxy::authz`, `strait-proxy::jwt`).
//!
//! Istio's order: CUSTOM, then DENY, then ALLOW. A request is denied when any CUSTOM policy
//! applies (not supported: fail closed), or any DENY rule matches, or ALLOW policies apply and
//! none of their rules matches. AUDIT policies only log.

use serde::{Deserialize, Serialize};

/// The policy of one proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authz {
    /// CUSTOM policies selecting the workload (`namespace/name`): strait has no external
    /// authorizer, so any of them denies every request, as an unreachable one does in Istio.
    pub custom: Vec<String>,
    pub deny: Vec<AuthzPolicy>,
    pub allow: Vec<AuthzPolicy>,
    pub audit: Vec<AuthzPolicy>,
    /// JWT issuers the workload trusts (RequestAuthentication), in policy order.
    pub jwt: Vec<JwtProvider>,
}

impl Authz {
    /// Whether any policy applies at all (nothing to evaluate otherwise).
    pub fn is_empty(&self) -> bool {
        self.custom.is_empty()
            && self.deny.is_empty()
            && self.allow.is_empty()
            && self.audit.is_empty()
            && self.jwt.is_empty()
    }
}

/// One AuthorizationPolicy as it applies to this proxy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzPolicy {
    /// `namespace/name`, for logs and denials.
    pub name: String,
    /// A policy with no rules matches nothing: as ALLOW it allows nothing (`spec: {}`), as
    /// DENY it denies nothing.
    pub rules: Vec<AuthzRule>,
}

/// A rule matches when any of `from` matches (or `from` is empty), any of `to` matches (or
/// `to` is empty), and every condition of `when` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzRule {
    pub from: Vec<SourceMatch>,
    pub to: Vec<OperationMatch>,
    pub when: Vec<ConditionMatch>,
    /// What the rule names that strait cannot check (an unknown `when` key, say), for logs.
    /// Istio's rule, which strait follows: such a rule in an ALLOW policy never matches; in a
    /// DENY policy the unknown part is left out, so the rule matches more.
    pub unsupported: Vec<String>,
}

/// The `source` of a `from`: every field given must match (AND); within a field any value
/// (OR); a `not_` field must match none of its values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMatch {
    /// Peer identities from mTLS, written `<trust-domain>/ns/<ns>/sa/<sa>` (no `spiffe://`).
    pub principals: Vec<StringMatch>,
    pub not_principals: Vec<StringMatch>,
    /// JWT identities `<iss>/<sub>` (HTTP only).
    pub request_principals: Vec<StringMatch>,
    pub not_request_principals: Vec<StringMatch>,
    /// The peer's namespace, from its mTLS identity.
    pub namespaces: Vec<StringMatch>,
    pub not_namespaces: Vec<StringMatch>,
    /// `namespace/serviceaccount`, from the peer's mTLS identity.
    pub service_accounts: Vec<StringMatch>,
    pub not_service_accounts: Vec<StringMatch>,
    /// CIDRs (or single addresses) of the direct peer.
    pub ip_blocks: Vec<String>,
    pub not_ip_blocks: Vec<String>,
    /// CIDRs of the original client (`X-Forwarded-For` through trusted proxies; the direct
    /// peer when there are none, Istio's default of zero trusted proxies).
    pub remote_ip_blocks: Vec<String>,
    pub not_remote_ip_blocks: Vec<String>,
}

/// The `operation` of a `to`, with the same AND/OR/NOT reading as a source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationMatch {
    /// The request's host (authority without port), case-insensitive (HTTP only).
    pub hosts: Vec<StringMatch>,
    pub not_hosts: Vec<StringMatch>,
    /// The destination port.
    pub ports: Vec<u32>,
    pub not_ports: Vec<u32>,
    /// HTTP methods, exact (HTTP only).
    pub methods: Vec<StringMatch>,
    pub not_methods: Vec<StringMatch>,
    /// The path without the query (HTTP only).
    pub paths: Vec<StringMatch>,
    pub not_paths: Vec<StringMatch>,
}

/// A `when` condition: the attribute must equal one of `values` (when given) and none of
/// `not_values`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionMatch {
    pub key: ConditionKey,
    pub values: Vec<StringMatch>,
    pub not_values: Vec<StringMatch>,
}

/// The attributes a `when` condition can name (Istio's "Authorization Policy Conditions").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKey {
    /// `request.headers[<name>]` (HTTP only), name lower-cased.
    RequestHeader(String),
    /// `source.ip`: the direct peer's address (values are CIDRs or addresses).
    SourceIp,
    /// `remote.ip`: the original client's address (CIDRs or addresses).
    RemoteIp,
    /// `source.namespace`, from the peer's mTLS identity.
    SourceNamespace,
    /// `source.principal`, the peer's mTLS identity.
    SourcePrincipal,
    /// `source.serviceAccount`: `namespace/serviceaccount` of the peer.
    SourceServiceAccount,
    /// `request.auth.principal`: `<iss>/<sub>` of the verified JWT (HTTP only).
    RequestAuthPrincipal,
    /// `request.auth.audiences` (HTTP only).
    RequestAuthAudiences,
    /// `request.auth.presenter`: the JWT's `azp` (HTTP only).
    RequestAuthPresenter,
    /// `request.auth.claims[a][b]`: a claim of the verified JWT, nested names in order; a
    /// claim holding a list matches when any element does (HTTP only).
    RequestAuthClaim(Vec<String>),
    /// `destination.ip` (CIDRs or addresses).
    DestinationIp,
    /// `destination.port`.
    DestinationPort,
    /// `connection.sni`: the SNI of the mTLS connection.
    ConnectionSni,
}

impl ConditionKey {
    /// Keys only an HTTP request has (on a TCP port Istio treats them as not present).
    pub fn http_only(&self) -> bool {
        matches!(
            self,
            ConditionKey::RequestHeader(_)
                | ConditionKey::RequestAuthPrincipal
                | ConditionKey::RequestAuthAudiences
                | ConditionKey::RequestAuthPresenter
                | ConditionKey::RequestAuthClaim(_)
        )
    }
}

/// Istio's string matching for authorization: exact, `prefix*`, `*suffix`, or `*` (any value,
/// present).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    /// `*`: any value, as long as there is one.
    Presence,
}

impl StringMatch {
    /// Reads Istio's notation: a leading or trailing `*` is a wildcard; `*` alone is presence.
    pub fn parse(s: &str) -> StringMatch {
        if s == "*" {
            StringMatch::Presence
        } else if let Some(rest) = s.strip_prefix('*') {
            StringMatch::Suffix(rest.to_string())
        } else if let Some(rest) = s.strip_suffix('*') {
            StringMatch::Prefix(rest.to_string())
        } else {
            StringMatch::Exact(s.to_string())
        }
    }

    pub fn matches(&self, v: &str) -> bool {
        match self {
            StringMatch::Exact(e) => v == e,
            StringMatch::Prefix(p) => v.starts_with(p.as_str()),
            StringMatch::Suffix(s) => v.ends_with(s.as_str()),
            StringMatch::Presence => !v.is_empty(),
        }
    }
}

/// One JWT issuer a workload trusts (a `jwtRules` entry of a RequestAuthentication).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtProvider {
    /// The RequestAuthentication (`namespace/name`), for logs.
    pub policy: String,
    pub issuer: String,
    /// Accepted `aud` values; empty: any.
    pub audiences: Vec<String>,
    /// The JWKS (JSON): inline from the rule, or fetched from `jwksUri` by the control plane.
    /// Empty when it could not be fetched: then every token of this issuer is refused (a
    /// token that cannot be verified is not believed).
    pub jwks: String,
    /// Where the key set came from (`inline` or the URI), for logs.
    pub jwks_source: String,
    /// Where the token is looked for. All empty: `Authorization: Bearer <token>` and the
    /// `access_token` query parameter (Istio's defaults).
    pub from_headers: Vec<JwtHeader>,
    pub from_params: Vec<String>,
    /// Cookie names.
    pub from_cookies: Vec<String>,
    /// A header to carry the verified payload (base64url JSON) to the application.
    pub output_payload_to_header: String,
    /// Keep the token in the request for the application (removed by default).
    pub forward_original_token: bool,
    /// Claims copied into request headers.
    pub output_claim_to_headers: Vec<(String, String)>,
    /// Claims whose string value is a space-separated list (e.g. `scope`).
    pub space_delimited_claims: Vec<String>,
    /// `presence: REQUIRED`: a request without any token is refused (401), not let through.
    #[serde(default)]
    pub required: bool,
}

/// A header a token comes in, with the prefix before it (`Bearer `).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtHeader {
    pub name: String,
    pub prefix: String,
}
