//! `networking.istio.io` VirtualService: routing rules for hosts.

use std::collections::BTreeMap;

use super::common::{Duration, Percent, PortSelector, istio_enum, spec};

spec! {
    pub struct VirtualServiceSpec {
        pub hosts: Vec<String>,
        pub gateways: Vec<String>,
        pub http: Vec<HttpRoute>,
        pub tls: Vec<TlsRoute>,
        pub tcp: Vec<TcpRoute>,
        pub export_to: Vec<String>,
    }
}

spec! {
    pub struct HttpRoute {
        pub name: String,
        #[serde(rename = "match")]
        pub matches: Vec<HttpMatchRequest>,
        pub route: Vec<HttpRouteDestination>,
        pub redirect: Option<Box<HttpRedirect>>,
        pub direct_response: Option<Box<HttpDirectResponse>>,
        pub delegate: Option<Box<Delegate>>,
        pub rewrite: Option<Box<HttpRewrite>>,
        pub timeout: Option<Duration>,
        pub retries: Option<HttpRetry>,
        pub fault: Option<Box<HttpFaultInjection>>,
        pub mirror: Option<Box<Destination>>,
        pub mirrors: Vec<HttpMirrorPolicy>,
        /// Deprecated: use `mirrorPercentage`.
        pub mirror_percent: Option<u32>,
        /// The CRD's alternative spelling of `mirrorPercent`.
        #[serde(rename = "mirror_percent")]
        pub mirror_percent_legacy: Option<u32>,
        pub mirror_percentage: Option<Percent>,
        pub cors_policy: Option<Box<CorsPolicy>>,
        pub headers: Option<Box<Headers>>,
    }
}

spec! {
    pub struct HttpMatchRequest {
        pub name: String,
        pub uri: Option<StringMatch>,
        pub scheme: Option<StringMatch>,
        pub method: Option<StringMatch>,
        pub authority: Option<StringMatch>,
        pub headers: BTreeMap<String, StringMatch>,
        pub port: Option<u32>,
        pub source_labels: BTreeMap<String, String>,
        pub gateways: Vec<String>,
        pub query_params: BTreeMap<String, StringMatch>,
        pub ignore_uri_case: bool,
        pub without_headers: BTreeMap<String, StringMatch>,
        pub source_namespace: String,
        pub stat_prefix: String,
    }
}

spec! {
    /// Exactly one of the three should be set; an empty match means "present".
    pub struct StringMatch {
        pub exact: Option<String>,
        pub prefix: Option<String>,
        pub regex: Option<String>,
    }
}

spec! {
    pub struct HttpRouteDestination {
        pub destination: Option<Destination>,
        pub weight: Option<i32>,
        pub headers: Option<Headers>,
    }
}

spec! {
    pub struct Destination {
        pub host: String,
        pub subset: String,
        pub port: Option<PortSelector>,
    }
}

spec! {
    pub struct Headers {
        pub request: Option<HeaderOperations>,
        pub response: Option<HeaderOperations>,
    }
}

spec! {
    pub struct HeaderOperations {
        pub set: BTreeMap<String, String>,
        pub add: BTreeMap<String, String>,
        pub remove: Vec<String>,
    }
}

istio_enum! {
    pub enum RedirectPortSelection {
        FromProtocolDefault,
        FromRequestPort,
    }
}

spec! {
    pub struct HttpRedirect {
        pub uri: String,
        pub authority: String,
        pub port: Option<u32>,
        pub derive_port: Option<RedirectPortSelection>,
        pub scheme: String,
        pub redirect_code: Option<u32>,
        pub prefix_rewrite: String,
    }
}

spec! {
    pub struct HttpDirectResponse {
        pub status: u32,
        pub body: Option<HttpBody>,
    }
}

spec! {
    pub struct HttpBody {
        pub string: Option<String>,
        pub bytes: Option<String>,
    }
}

spec! {
    pub struct Delegate {
        pub name: String,
        pub namespace: String,
    }
}

spec! {
    pub struct HttpRewrite {
        pub uri: String,
        pub authority: String,
        pub uri_regex_rewrite: Option<RegexRewrite>,
    }
}

spec! {
    pub struct RegexRewrite {
        #[serde(rename = "match")]
        pub matches: String,
        pub rewrite: String,
    }
}

spec! {
    pub struct HttpRetry {
        pub attempts: Option<i32>,
        pub per_try_timeout: Option<Duration>,
        pub retry_on: String,
        pub retry_remote_localities: Option<bool>,
        pub retry_ignore_previous_hosts: Option<bool>,
        pub backoff: Option<Duration>,
    }
}

spec! {
    pub struct HttpFaultInjection {
        pub delay: Option<FaultDelay>,
        pub abort: Option<FaultAbort>,
    }
}

spec! {
    pub struct FaultDelay {
        /// Deprecated: use `percentage`.
        pub percent: Option<i32>,
        pub fixed_delay: Option<Duration>,
        pub exponential_delay: Option<Duration>,
        pub percentage: Option<Percent>,
    }
}

spec! {
    pub struct FaultAbort {
        pub http_status: Option<i32>,
        pub grpc_status: Option<String>,
        pub http2_error: Option<String>,
        pub percentage: Option<Percent>,
    }
}

spec! {
    pub struct HttpMirrorPolicy {
        pub destination: Option<Destination>,
        pub percentage: Option<Percent>,
    }
}

istio_enum! {
    pub enum UnmatchedPreflights {
        Unspecified,
        Forward,
        Ignore,
    }
}

spec! {
    pub struct CorsPolicy {
        /// Deprecated: use `allowOrigins`.
        pub allow_origin: Vec<String>,
        pub allow_origins: Vec<StringMatch>,
        pub allow_methods: Vec<String>,
        pub allow_headers: Vec<String>,
        pub expose_headers: Vec<String>,
        pub max_age: Option<Duration>,
        pub allow_credentials: Option<bool>,
        pub unmatched_preflights: Option<UnmatchedPreflights>,
    }
}

spec! {
    pub struct TlsRoute {
        #[serde(rename = "match")]
        pub matches: Vec<TlsMatchAttributes>,
        pub route: Vec<RouteDestination>,
    }
}

spec! {
    pub struct TlsMatchAttributes {
        pub sni_hosts: Vec<String>,
        pub destination_subnets: Vec<String>,
        pub port: Option<u32>,
        pub source_labels: BTreeMap<String, String>,
        pub gateways: Vec<String>,
        pub source_namespace: String,
    }
}

spec! {
    pub struct RouteDestination {
        pub destination: Option<Destination>,
        pub weight: Option<i32>,
    }
}

spec! {
    pub struct TcpRoute {
        #[serde(rename = "match")]
        pub matches: Vec<L4MatchAttributes>,
        pub route: Vec<RouteDestination>,
    }
}

spec! {
    pub struct L4MatchAttributes {
        pub destination_subnets: Vec<String>,
        pub port: Option<u32>,
        pub source_subnet: String,
        pub source_labels: BTreeMap<String, String>,
        pub gateways: Vec<String>,
        pub source_namespace: String,
    }
}

impl VirtualServiceSpec {
    /// Every destination (routes, mirrors; http, tls and tcp) with its field path.
    pub fn destinations(&self) -> Vec<(String, &Destination)> {
        let mut out = Vec::new();
        for (i, r) in self.http.iter().enumerate() {
            for (j, d) in r.route.iter().enumerate() {
                if let Some(dest) = &d.destination {
                    out.push((format!("spec.http[{i}].route[{j}].destination"), dest));
                }
            }
            if let Some(m) = &r.mirror {
                out.push((format!("spec.http[{i}].mirror"), m));
            }
            for (j, m) in r.mirrors.iter().enumerate() {
                if let Some(dest) = &m.destination {
                    out.push((format!("spec.http[{i}].mirrors[{j}].destination"), dest));
                }
            }
        }
        for (kind, routes) in [
            ("tls", self.tls.iter().map(|r| &r.route).collect::<Vec<_>>()),
            ("tcp", self.tcp.iter().map(|r| &r.route).collect()),
        ] {
            for (i, route) in routes.into_iter().enumerate() {
                for (j, d) in route.iter().enumerate() {
                    if let Some(dest) = &d.destination {
                        out.push((format!("spec.{kind}[{i}].route[{j}].destination"), dest));
                    }
                }
            }
        }
        out
    }
}
