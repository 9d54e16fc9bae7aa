//! Upstream clusters and their endpoints.

use super::mesh::{decode_protocol, encode_protocol};
use super::{At, WireError, encode_list, enum_value, list, required};
use crate::outlier::OutlierDetection;
use crate::proto;
use crate::types::{Cluster, Endpoint, EndpointMeta, LbPolicy, PoolLimits, UpstreamTls};

impl From<&Cluster> for proto::Cluster {
    fn from(c: &Cluster) -> Self {
        proto::Cluster {
            name: c.name.clone(),
            host: c.host.clone(),
            port: c.port,
            subset: c.subset.clone(),
            protocol: encode_protocol(c.protocol),
            lb: (match c.lb {
                LbPolicy::RoundRobin => proto::LbPolicy::RoundRobin,
                LbPolicy::LeastRequest => proto::LbPolicy::LeastRequest,
                LbPolicy::Random => proto::LbPolicy::Random,
            }) as i32,
            tls: (match c.tls {
                UpstreamTls::Auto => proto::UpstreamTls::Auto,
                UpstreamTls::IstioMutual => proto::UpstreamTls::IstioMutual,
                UpstreamTls::Disable => proto::UpstreamTls::Disable,
                UpstreamTls::Originate => proto::UpstreamTls::Originate,
            }) as i32,
            sni: c.sni.clone(),
            identities: c.identities.clone(),
            limits: Some((&c.limits).into()),
            endpoints: encode_list(&c.endpoints),
            destination_rule: c.destination_rule.clone(),
            outlier: c.outlier.as_ref().map(Into::into),
            locality_weights: c
                .locality_weights
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }
}

impl TryFrom<proto::Cluster> for Cluster {
    type Error = WireError;

    fn try_from(c: proto::Cluster) -> Result<Self, WireError> {
        Ok(Cluster {
            name: c.name,
            host: c.host,
            port: c.port,
            subset: c.subset,
            protocol: decode_protocol(c.protocol, "protocol")?,
            lb: match enum_value(c.lb, "lb")? {
                proto::LbPolicy::Unspecified => return Err(WireError::unset()).at("lb"),
                proto::LbPolicy::RoundRobin => LbPolicy::RoundRobin,
                proto::LbPolicy::LeastRequest => LbPolicy::LeastRequest,
                proto::LbPolicy::Random => LbPolicy::Random,
            },
            // Unset is refused: whether to speak mTLS is not something to guess.
            tls: match enum_value(c.tls, "tls")? {
                proto::UpstreamTls::Unspecified => return Err(WireError::unset()).at("tls"),
                proto::UpstreamTls::Auto => UpstreamTls::Auto,
                proto::UpstreamTls::IstioMutual => UpstreamTls::IstioMutual,
                proto::UpstreamTls::Disable => UpstreamTls::Disable,
                proto::UpstreamTls::Originate => UpstreamTls::Originate,
            },
            sni: c.sni,
            identities: c.identities,
            limits: required(c.limits, "limits")?,
            endpoints: list(c.endpoints, "endpoints")?,
            destination_rule: c.destination_rule,
            outlier: c
                .outlier
                .map(OutlierDetection::try_from)
                .transpose()
                .at("outlier")?,
            locality_weights: c.locality_weights.into_iter().collect(),
        })
    }
}

impl From<&OutlierDetection> for proto::OutlierDetection {
    fn from(o: &OutlierDetection) -> Self {
        proto::OutlierDetection {
            consecutive_5xx: o.consecutive_5xx,
            consecutive_gateway_errors: o.consecutive_gateway_errors,
            interval_ms: o.interval_ms,
            base_ejection_ms: o.base_ejection_ms,
            max_ejection_percent: o.max_ejection_percent,
            min_health_percent: o.min_health_percent,
        }
    }
}

impl TryFrom<proto::OutlierDetection> for OutlierDetection {
    type Error = WireError;

    fn try_from(o: proto::OutlierDetection) -> Result<Self, WireError> {
        let percent = |v: u32, field: &str| {
            if v > 100 {
                Err(WireError::new(format!("{v} is not a percentage")).at(field))
            } else {
                Ok(v)
            }
        };
        // A zero interval would review ejections in a busy loop.
        if o.interval_ms == 0 {
            return Err(WireError::new("must be positive").at("interval_ms"));
        }
        Ok(OutlierDetection {
            consecutive_5xx: o.consecutive_5xx.filter(|n| *n > 0),
            consecutive_gateway_errors: o.consecutive_gateway_errors.filter(|n| *n > 0),
            interval_ms: o.interval_ms,
            base_ejection_ms: o.base_ejection_ms,
            max_ejection_percent: percent(o.max_ejection_percent, "max_ejection_percent")?,
            min_health_percent: percent(o.min_health_percent, "min_health_percent")?,
        })
    }
}

impl From<&PoolLimits> for proto::PoolLimits {
    fn from(l: &PoolLimits) -> Self {
        proto::PoolLimits {
            max_connections: l.max_connections,
            max_pending_requests: l.max_pending_requests,
            max_requests: l.max_requests,
            max_requests_per_connection: l.max_requests_per_connection,
            max_retries: l.max_retries,
            connect_timeout_ms: l.connect_timeout_ms,
        }
    }
}

impl TryFrom<proto::PoolLimits> for PoolLimits {
    type Error = WireError;

    fn try_from(l: proto::PoolLimits) -> Result<Self, WireError> {
        Ok(PoolLimits {
            max_connections: l.max_connections,
            max_pending_requests: l.max_pending_requests,
            max_requests: l.max_requests,
            max_requests_per_connection: l.max_requests_per_connection,
            max_retries: l.max_retries,
            connect_timeout_ms: l.connect_timeout_ms,
        })
    }
}

impl From<&Endpoint> for proto::Endpoint {
    fn from(e: &Endpoint) -> Self {
        proto::Endpoint {
            address: e.address.clone(),
            port: e.port,
            weight: e.weight,
            mtls: e.mtls,
            workload: Some((&e.workload).into()),
            via_gateway: e.via_gateway,
            unhealthy: e.unhealthy,
            locality: e.locality.clone(),
            priority: e.priority,
        }
    }
}

impl TryFrom<proto::Endpoint> for Endpoint {
    type Error = WireError;

    fn try_from(e: proto::Endpoint) -> Result<Self, WireError> {
        Ok(Endpoint {
            address: e.address,
            port: e.port,
            weight: e.weight,
            mtls: e.mtls,
            workload: required(e.workload, "workload")?,
            via_gateway: e.via_gateway,
            unhealthy: e.unhealthy,
            locality: e.locality.clone(),
            priority: e.priority,
        })
    }
}

impl From<&EndpointMeta> for proto::EndpointMeta {
    fn from(m: &EndpointMeta) -> Self {
        proto::EndpointMeta {
            pod: m.pod.clone(),
            workload: m.workload.clone(),
            namespace: m.namespace.clone(),
            cluster: m.cluster.clone(),
            network: m.network.clone(),
            app: m.app.clone(),
            version: m.version.clone(),
            identity: m.identity.clone(),
        }
    }
}

impl TryFrom<proto::EndpointMeta> for EndpointMeta {
    type Error = WireError;

    fn try_from(m: proto::EndpointMeta) -> Result<Self, WireError> {
        Ok(EndpointMeta {
            pod: m.pod,
            workload: m.workload,
            namespace: m.namespace,
            cluster: m.cluster,
            network: m.network,
            app: m.app,
            version: m.version,
            identity: m.identity,
        })
    }
}
