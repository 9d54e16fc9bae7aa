//! Mesh settings, the proxy's node, inbound ports, and the enums they share with the rest.

use super::{At, WireError, enum_value, or_default, required};
use crate::proto;
use crate::types::{
    AccessLogEncoding, AppProtocol, InboundMtls, InboundPort, MeshSettings, NodeMeta,
    PathNormalization, ProxyRole,
};

pub(crate) fn encode_protocol(p: AppProtocol) -> i32 {
    use proto::AppProtocol as P;
    (match p {
        AppProtocol::Http => P::Http,
        AppProtocol::Http2 => P::Http2,
        AppProtocol::Grpc => P::Grpc,
        AppProtocol::Tcp => P::Tcp,
        AppProtocol::Tls => P::Tls,
        AppProtocol::Auto => P::Auto,
    }) as i32
}

pub(crate) fn decode_protocol(v: i32, field: &str) -> Result<AppProtocol, WireError> {
    use proto::AppProtocol as P;
    Ok(match enum_value(v, field)? {
        P::Unspecified => return Err(WireError::unset().at(field)),
        P::Http => AppProtocol::Http,
        P::Http2 => AppProtocol::Http2,
        P::Grpc => AppProtocol::Grpc,
        P::Tcp => AppProtocol::Tcp,
        P::Tls => AppProtocol::Tls,
        P::Auto => AppProtocol::Auto,
    })
}

impl From<&MeshSettings> for proto::MeshSettings {
    fn from(m: &MeshSettings) -> Self {
        use proto::PathNormalization as P;
        proto::MeshSettings {
            trust_domain: m.trust_domain.clone(),
            trust_domain_aliases: m.trust_domain_aliases.clone(),
            domain: m.domain.clone(),
            allow_any_outbound: m.allow_any_outbound,
            access_log: m.access_log,
            path_normalization: (match m.path_normalization {
                PathNormalization::None => P::None,
                PathNormalization::Base => P::Base,
                PathNormalization::MergeSlashes => P::MergeSlashes,
                PathNormalization::DecodeAndMergeSlashes => P::DecodeAndMergeSlashes,
            }) as i32,
            node: Some((&m.node).into()),
            access_log_encoding: (match m.access_log_encoding {
                AccessLogEncoding::Text => proto::AccessLogEncoding::Text,
                AccessLogEncoding::Json => proto::AccessLogEncoding::Json,
            }) as i32,
            access_log_stderr: m.access_log_stderr,
            tracing: Some((&m.tracing).into()),
        }
    }
}

impl TryFrom<proto::MeshSettings> for MeshSettings {
    type Error = WireError;

    fn try_from(m: proto::MeshSettings) -> Result<Self, WireError> {
        use proto::PathNormalization as P;
        Ok(MeshSettings {
            trust_domain: m.trust_domain,
            trust_domain_aliases: m.trust_domain_aliases,
            domain: m.domain,
            allow_any_outbound: m.allow_any_outbound,
            access_log: m.access_log,
            path_normalization: match enum_value(m.path_normalization, "path_normalization")? {
                P::Unspecified | P::Base => PathNormalization::Base,
                P::None => PathNormalization::None,
                P::MergeSlashes => PathNormalization::MergeSlashes,
                P::DecodeAndMergeSlashes => PathNormalization::DecodeAndMergeSlashes,
            },
            node: required(m.node, "node")?,
            access_log_encoding: match enum_value(m.access_log_encoding, "access_log_encoding")? {
                proto::AccessLogEncoding::Unspecified | proto::AccessLogEncoding::Text => {
                    AccessLogEncoding::Text
                }
                proto::AccessLogEncoding::Json => AccessLogEncoding::Json,
            },
            access_log_stderr: m.access_log_stderr,
            tracing: or_default(m.tracing, "tracing")?,
        })
    }
}

impl From<&NodeMeta> for proto::NodeMeta {
    fn from(n: &NodeMeta) -> Self {
        proto::NodeMeta {
            role: (match n.role {
                ProxyRole::Sidecar => proto::ProxyRole::Sidecar,
                ProxyRole::Gateway => proto::ProxyRole::Gateway,
            }) as i32,
            cluster: n.cluster.clone(),
            network: n.network.clone(),
            namespace: n.namespace.clone(),
            pod: n.pod.clone(),
            workload: n.workload.clone(),
            app: n.app.clone(),
            version: n.version.clone(),
            service_account: n.service_account.clone(),
            identity: n.identity.clone(),
        }
    }
}

impl TryFrom<proto::NodeMeta> for NodeMeta {
    type Error = WireError;

    fn try_from(n: proto::NodeMeta) -> Result<Self, WireError> {
        Ok(NodeMeta {
            role: match enum_value(n.role, "role")? {
                proto::ProxyRole::Unspecified | proto::ProxyRole::Sidecar => ProxyRole::Sidecar,
                proto::ProxyRole::Gateway => ProxyRole::Gateway,
            },
            cluster: n.cluster,
            network: n.network,
            namespace: n.namespace,
            pod: n.pod,
            workload: n.workload,
            app: n.app,
            version: n.version,
            service_account: n.service_account,
            identity: n.identity,
        })
    }
}

impl From<&InboundPort> for proto::InboundPort {
    fn from(p: &InboundPort) -> Self {
        use proto::InboundMtls as M;
        proto::InboundPort {
            port: p.port,
            protocol: encode_protocol(p.protocol),
            mtls: (match p.mtls {
                InboundMtls::Strict => M::Strict,
                InboundMtls::Permissive => M::Permissive,
                InboundMtls::Disable => M::Disable,
            }) as i32,
            services: p.services.clone(),
        }
    }
}

impl TryFrom<proto::InboundPort> for InboundPort {
    type Error = WireError;

    fn try_from(p: proto::InboundPort) -> Result<Self, WireError> {
        use proto::InboundMtls as M;
        Ok(InboundPort {
            port: p.port,
            protocol: decode_protocol(p.protocol, "protocol")?,
            // Unset is refused rather than read as a default: it decides whether plaintext
            // is accepted, and security never fails open.
            mtls: match enum_value(p.mtls, "mtls")? {
                M::Unspecified => return Err(WireError::unset()).at("mtls"),
                M::Strict => InboundMtls::Strict,
                M::Permissive => InboundMtls::Permissive,
                M::Disable => InboundMtls::Disable,
            },
            services: p.services,
        })
    }
}
