//! The Gateway API route kinds: HTTPRoute, GRPCRoute, TLSRoute and TCPRoute. Every route
//! attaches to parents (Gateways, or Services for mesh traffic) and sends to backends.

use crate::istio::Opaque;
use crate::istio::common::spec;

spec! {
    pub struct HttpRouteSpec {
        pub parent_refs: Vec<ParentReference>,
        pub hostnames: Vec<String>,
        pub rules: Vec<HttpRouteRule>,
    }
}

spec! {
    pub struct HttpRouteRule {
        pub name: String,
        pub matches: Vec<HttpRouteMatch>,
        pub filters: Vec<Filter>,
        pub backend_refs: Vec<BackendRef>,
        pub timeouts: Option<Opaque>,
        pub retry: Option<Opaque>,
        pub session_persistence: Option<Opaque>,
    }
}

spec! {
    pub struct GrpcRouteSpec {
        pub parent_refs: Vec<ParentReference>,
        pub hostnames: Vec<String>,
        pub rules: Vec<GrpcRouteRule>,
    }
}

spec! {
    pub struct GrpcRouteRule {
        pub name: String,
        pub matches: Vec<GrpcRouteMatch>,
        pub filters: Vec<Filter>,
        pub backend_refs: Vec<BackendRef>,
        pub session_persistence: Option<Opaque>,
    }
}

spec! {
    /// TLSRoute (hostnames are SNI names) and TCPRoute (no hostnames) share this shape.
    pub struct StreamRouteSpec {
        pub parent_refs: Vec<ParentReference>,
        pub hostnames: Vec<String>,
        pub rules: Vec<StreamRouteRule>,
    }
}

spec! {
    pub struct StreamRouteRule {
        pub name: String,
        pub backend_refs: Vec<BackendRef>,
    }
}

spec! {
    /// The Gateway (or, for mesh routing, the Service) a route attaches to.
    pub struct ParentReference {
        pub group: Option<String>,
        pub kind: Option<String>,
        pub namespace: Option<String>,
        pub name: String,
        pub section_name: Option<String>,
        pub port: Option<u32>,
    }
}

spec! {
    pub struct BackendRef {
        pub group: Option<String>,
        pub kind: Option<String>,
        pub name: String,
        pub namespace: Option<String>,
        pub port: Option<u32>,
        pub weight: Option<u32>,
        pub filters: Vec<Filter>,
    }
}

spec! {
    pub struct HttpRouteMatch {
        pub path: Option<PathMatch>,
        pub headers: Vec<NameMatch>,
        pub query_params: Vec<NameMatch>,
        pub method: String,
    }
}

spec! {
    pub struct PathMatch {
        /// `PathPrefix` (the default), `Exact` or `RegularExpression`.
        #[serde(rename = "type")]
        pub kind: String,
        pub value: Option<String>,
    }
}

spec! {
    /// A header or query parameter match.
    pub struct NameMatch {
        /// `Exact` (the default) or `RegularExpression`.
        #[serde(rename = "type")]
        pub kind: String,
        pub name: String,
        pub value: String,
    }
}

spec! {
    pub struct GrpcRouteMatch {
        pub method: Option<GrpcMethodMatch>,
        pub headers: Vec<NameMatch>,
    }
}

spec! {
    pub struct GrpcMethodMatch {
        #[serde(rename = "type")]
        pub kind: String,
        pub service: String,
        pub method: String,
    }
}

spec! {
    /// A route or backend filter: its type and the body of that type (read past).
    pub struct Filter {
        #[serde(rename = "type")]
        pub kind: String,
        pub request_header_modifier: Option<Opaque>,
        pub response_header_modifier: Option<Opaque>,
        pub request_mirror: Option<Opaque>,
        pub request_redirect: Option<Opaque>,
        pub url_rewrite: Option<Opaque>,
        pub extension_ref: Option<Opaque>,
        pub cors: Option<Opaque>,
        pub external_auth: Option<Opaque>,
    }
}

impl ParentReference {
    /// The group, with the Gateway API's default (its own group).
    pub fn group_or_default(&self) -> &str {
        self.group.as_deref().unwrap_or(super::GROUP)
    }

    /// The kind, with the default (`Gateway`).
    pub fn kind_or_default(&self) -> &str {
        self.kind.as_deref().unwrap_or("Gateway")
    }
}

impl BackendRef {
    /// The group, with the default (the core group).
    pub fn group_or_default(&self) -> &str {
        self.group.as_deref().unwrap_or("")
    }

    /// The kind, with the default (`Service`).
    pub fn kind_or_default(&self) -> &str {
        self.kind.as_deref().unwrap_or("Service")
    }
}
