//! What one proxy is told: the compiled configuration. Plain data, `Clone + Eq`; it travels as
//! typed protobuf messages (`crate::wire`) and is shown as JSON (serde) by `proxy-config` and
//! `/debug/configz`, so dumps show exactly what the proxy holds.
//!
//! Resources and their names (the unit of incremental push):
//! - `service`: an outbound service port, `<fqdn>:<port>`, with its HTTP rules or TCP routes;
//! - `cluster`: an upstream, `outbound|<port>|<subset>|<fqdn>`, with policy and endpoints;
//! - `inbound`: a port the proxy accepts on for its workload, `<port>`;
//! - `mesh`: mesh-wide settings and the proxy's own identity, `mesh`.

use serde::{Deserialize, Serialize};

use crate::authz::Authz;
use crate::gateway::{GatewayListener, TlsSecret};
use crate::outlier::OutlierDetection;

/// The protocol a port speaks, as the proxy treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProtocol {
    /// HTTP/1.1 (or anything HTTP from the app).
    Http,
    /// HTTP/2, cleartext to the app (h2c), gRPC included.
    Http2,
    Grpc,
    /// Opaque bytes.
    Tcp,
    /// TLS the application originates or terminates itself: opaque to the proxy.
    Tls,
    /// No protocol declared: HTTP if the first bytes look like it, else TCP.
    Auto,
}

impl AppProtocol {
    pub fn is_http(self) -> bool {
        matches!(
            self,
            AppProtocol::Http | AppProtocol::Http2 | AppProtocol::Grpc
        )
    }

    /// The app speaks HTTP/2 on this port (so the proxy talks h2c to it).
    pub fn is_http2(self) -> bool {
        matches!(self, AppProtocol::Http2 | AppProtocol::Grpc)
    }
}

/// Mesh-wide settings and who this proxy is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshSettings {
    pub trust_domain: String,
    pub trust_domain_aliases: Vec<String>,
    /// DNS domain of the proxy's cluster (`cluster.local`).
    pub domain: String,
    /// What happens to traffic for hosts no service names.
    pub allow_any_outbound: bool,
    pub access_log: bool,
    /// How request paths are normalized where requests arrive (`meshConfig.pathNormalization`).
    #[serde(default)]
    pub path_normalization: PathNormalization,
    pub node: NodeMeta,
    /// How access log lines are written (`meshConfig.accessLogEncoding`).
    #[serde(default)]
    pub access_log_encoding: AccessLogEncoding,
    /// Access log lines go to standard error (`accessLogFile: /dev/stderr`), else out.
    #[serde(default)]
    pub access_log_stderr: bool,
    /// Distributed tracing: propagation, sampling, span export (`crate::tracing`).
    #[serde(default)]
    pub tracing: crate::tracing::TracingSettings,
}

/// Istio's access log encodings: its default text format, or the same fields as JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessLogEncoding {
    #[default]
    Text,
    Json,
}

/// Istio's path normalization modes (`meshConfig.pathNormalization`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathNormalization {
    /// Paths are passed as received.
    None,
    /// RFC 3986: dot segments resolved, escapes of unreserved characters decoded.
    #[default]
    Base,
    /// BASE, and runs of slashes merged.
    MergeSlashes,
    /// `%2F` and `%5C` decoded, then MERGE_SLASHES.
    DecodeAndMergeSlashes,
}

/// What a proxy is: a workload's sidecar, or a gateway whose own pod is the proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyRole {
    #[default]
    Sidecar,
    /// Istio's `router`: serves the Gateway resources that select it, nothing else.
    Gateway,
}

/// The proxy's own workload, for telemetry labels and the metadata it sends peers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMeta {
    #[serde(default)]
    pub role: ProxyRole,
    pub cluster: String,
    pub network: String,
    pub namespace: String,
    pub pod: String,
    pub workload: String,
    pub app: String,
    pub version: String,
    pub service_account: String,
    pub identity: String,
}

/// An outbound service port: how requests for `host:port` are routed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    pub host: String,
    pub port: u32,
    /// The service's namespace (short names resolve against the client's namespace first).
    pub namespace: String,
    pub protocol: AppProtocol,
    /// HTTP rules in order; the first that matches decides. Always ends in a catch-all when
    /// no VirtualService says otherwise.
    pub http: Vec<HttpRule>,
    /// For TCP ports: the weighted clusters.
    pub tcp: Vec<WeightedCluster>,
    /// The VirtualService the rules come from (`namespace/name`), for inspection.
    pub virtual_service: Option<String>,
    /// The service's virtual addresses: each cluster's Service cluster IP, a ServiceEntry's
    /// `addresses` (an address or a CIDR range). Under traffic capture a connection reaches
    /// the proxy with only its original destination address, and this is how the proxy
    /// knows which service that address is. Empty: reachable by name only (the HTTP proxy).
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRule {
    pub name: String,
    /// Any of these must match; empty matches every request.
    pub matches: Vec<RequestMatch>,
    pub action: HttpAction,
    /// Whole-request timeout, retries included; none by default (Istio's default).
    pub timeout_ms: Option<u64>,
    pub retries: Retry,
    /// Rewrites, header operations and faults applied to matching requests.
    #[serde(default)]
    pub policy: RoutePolicy,
}

/// What a route does to a request besides choosing where it goes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutePolicy {
    pub rewrite: Option<Rewrite>,
    pub headers: HeaderRules,
    pub fault: Option<Fault>,
}

/// VirtualService `rewrite`: the path (or the prefix a prefix match matched), the path by
/// regular expression, the authority.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    /// Empty: keep the path.
    pub uri: String,
    /// `(pattern, substitution)`: every match of the RE2 pattern in the path is replaced;
    /// `\1`-style groups in the substitution refer to capture groups.
    pub uri_regex: Option<(String, String)>,
    /// Empty: keep the authority.
    pub authority: String,
}

/// Header operations on requests and responses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderRules {
    pub request: HeaderOps,
    pub response: HeaderOps,
}

/// Istio's `HeaderOperations`: applied as remove, then set (replace), then add (append).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderOps {
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// VirtualService `fault`: a fixed delay and/or an abort, each for a share of requests
/// (parts per million; Istio's `percentage`, none when unset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub delay_ms: Option<u64>,
    pub delay_per_million: u32,
    pub abort_status: Option<u16>,
    pub abort_per_million: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpAction {
    Route(Vec<WeightedCluster>),
    Redirect {
        uri: String,
        authority: String,
        code: u16,
    },
    Respond {
        status: u16,
        body: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedCluster {
    pub cluster: String,
    pub weight: u32,
    /// Header operations of this destination (applied after the route's).
    #[serde(default)]
    pub headers: HeaderRules,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMatch {
    pub uri: Option<StrMatch>,
    pub method: Option<StrMatch>,
    pub authority: Option<StrMatch>,
    pub scheme: Option<StrMatch>,
    /// Lower-case header names; a `None` matcher means "present".
    pub headers: Vec<HeaderMatch>,
    pub query: Vec<(String, StrMatch)>,
    pub ignore_uri_case: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderMatch {
    pub name: String,
    pub value: Option<StrMatch>,
    /// `withoutHeaders`: the request must not match.
    pub invert: bool,
    /// Set for `@request.auth.claims.<name>` keys: the claim (nested names in order) of the
    /// request's verified JWT is matched instead of a header.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claim: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrMatch {
    Exact(String),
    Prefix(String),
    /// RE2 syntax, matched against the whole value.
    Regex(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// Retries after the first try (0: none).
    pub attempts: u32,
    pub per_try_timeout_ms: Option<u64>,
    /// Envoy `retryOn` conditions (`5xx`, `connect-failure`, `gateway-error`, ...) and status
    /// codes.
    pub retry_on: Vec<String>,
}

impl Retry {
    /// Istio's default for mesh routes without a retry policy: two retries on connection
    /// failures, refused streams and 503s.
    pub fn istio_default() -> Retry {
        Retry {
            attempts: 2,
            per_try_timeout_ms: None,
            retry_on: [
                "connect-failure",
                "refused-stream",
                "unavailable",
                "cancelled",
                "503",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LbPolicy {
    RoundRobin,
    LeastRequest,
    Random,
}

/// How the proxy talks TLS to a cluster's endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpstreamTls {
    /// Istio mTLS to endpoints that run a proxy, plaintext to the others (auto mTLS).
    Auto,
    /// Istio mTLS to every endpoint (DestinationRule `ISTIO_MUTUAL`).
    IstioMutual,
    /// Plaintext (DestinationRule `DISABLE`).
    Disable,
    /// TLS the DestinationRule asks the proxy to originate (SIMPLE/MUTUAL).
    Originate,
}

/// Connection-pool limits (DestinationRule `connectionPool`); `None` means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolLimits {
    pub max_connections: Option<u32>,
    pub max_pending_requests: Option<u32>,
    pub max_requests: Option<u32>,
    pub max_requests_per_connection: Option<u32>,
    pub max_retries: Option<u32>,
    pub connect_timeout_ms: u64,
}

/// An upstream: one service port, optionally one subset of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub host: String,
    pub port: u32,
    pub subset: String,
    pub protocol: AppProtocol,
    pub lb: LbPolicy,
    pub tls: UpstreamTls,
    /// SNI sent to mTLS endpoints: `outbound_.<port>_.<subset>_.<fqdn>`.
    pub sni: String,
    /// SPIFFE IDs a server may present: the service's accounts, in every cluster.
    pub identities: Vec<String>,
    pub limits: PoolLimits,
    pub endpoints: Vec<Endpoint>,
    /// The DestinationRule that shaped it (`namespace/name`), for inspection.
    pub destination_rule: Option<String>,
    /// When endpoints are ejected on errors; none: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier: Option<OutlierDetection>,
    /// Shares of traffic by locality (`region/zone/subzone`) within a priority level
    /// (`localityLbSetting.distribute`); empty: endpoints share by their own weights alone.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub locality_weights: std::collections::BTreeMap<String, u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub address: String,
    pub port: u32,
    pub weight: u32,
    /// The endpoint runs a proxy that accepts Istio mTLS.
    pub mtls: bool,
    pub workload: EndpointMeta,
    /// The endpoint is another network's east-west gateway standing in for the pods behind it
    /// (split horizon): mTLS to it is end to end with one of those pods, routed on the SNI.
    /// `workload` then names only the gateway's cluster and network.
    #[serde(default)]
    pub via_gateway: bool,
    /// The control plane found it not answering (a network's gateway that stopped): traffic
    /// avoids it while any healthy endpoint is left.
    #[serde(default)]
    pub unhealthy: bool,
    /// Where the endpoint runs (`region/zone/subzone`; a gateway standing in for pods takes
    /// theirs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub locality: String,
    /// Its priority level as seen from this proxy (0 first): traffic spills to the next level
    /// only as endpoints of the ones before fail (locality failover).
    #[serde(default)]
    pub priority: u32,
}

/// Who an endpoint is, for telemetry labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointMeta {
    pub pod: String,
    pub workload: String,
    pub namespace: String,
    pub cluster: String,
    pub network: String,
    pub app: String,
    pub version: String,
    pub identity: String,
}

/// mTLS the proxy requires on an inbound port (PeerAuthentication).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InboundMtls {
    Strict,
    Permissive,
    Disable,
}

/// A port the workload serves, where the proxy accepts traffic for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundPort {
    /// The port the workload listens on (service targetPort).
    pub port: u32,
    pub protocol: AppProtocol,
    pub mtls: InboundMtls,
    /// Services that send here (`fqdn:port`), for telemetry.
    pub services: Vec<String>,
}

/// The whole compiled configuration of one proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyConfig {
    pub mesh: MeshSettings,
    pub services: std::collections::BTreeMap<String, ServicePort>,
    pub clusters: std::collections::BTreeMap<String, Cluster>,
    pub inbound: std::collections::BTreeMap<String, InboundPort>,
    /// A gateway's listeners, by server port.
    #[serde(default)]
    pub listeners: std::collections::BTreeMap<String, GatewayListener>,
    /// TLS material a gateway terminates with, by `<namespace>/<credentialName>`.
    #[serde(default)]
    pub secrets: std::collections::BTreeMap<String, TlsSecret>,
    /// The security policy that applies to the workload (or the gateway).
    #[serde(default)]
    pub authz: Authz,
}

/// The kinds of resource, the unit of incremental push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Mesh,
    Service,
    Cluster,
    Inbound,
    Listener,
    Secret,
    Authz,
}

impl Kind {
    /// The kind's name in logs, metrics and dumps.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mesh => "mesh",
            Kind::Service => "service",
            Kind::Cluster => "cluster",
            Kind::Inbound => "inbound",
            Kind::Listener => "listener",
            Kind::Secret => "secret",
            Kind::Authz => "authz",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProxyConfig {
    /// The configuration as dumps show it: private keys of TLS secrets redacted.
    pub fn redacted(&self) -> ProxyConfig {
        let mut c = self.clone();
        for s in c.secrets.values_mut() {
            *s = s.redacted();
        }
        c
    }
}

/// `outbound|<port>|<subset>|<fqdn>`, Envoy's and istioctl's cluster naming.
pub fn cluster_name(port: u32, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

/// The SNI Istio clients send: `outbound_.<port>_.<subset>_.<fqdn>`.
pub fn sni(port: u32, subset: &str, host: &str) -> String {
    format!("outbound_.{port}_.{subset}_.{host}")
}
