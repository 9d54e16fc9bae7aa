//! Tracing settings on the wire. Decoding checks what the proxy would otherwise have to
//! trust: a sampling share within 100 %, a port that fits, a custom tag with a source.

use super::{WireError, list, optional};
use crate::proto;
use crate::tracing::{Collector, CustomTag, OtlpProtocol, SAMPLING_SCALE, TracingSettings};

impl From<&TracingSettings> for proto::TracingSettings {
    fn from(t: &TracingSettings) -> Self {
        proto::TracingSettings {
            enabled: t.enabled,
            sampling: t.sampling,
            collector: t.collector.as_ref().map(Into::into),
            custom_tags: t.custom_tags.iter().map(Into::into).collect(),
            mesh_id: t.mesh_id.clone(),
        }
    }
}

impl TryFrom<proto::TracingSettings> for TracingSettings {
    type Error = WireError;

    fn try_from(t: proto::TracingSettings) -> Result<Self, WireError> {
        if t.sampling > SAMPLING_SCALE {
            return Err(WireError::new(format!(
                "{} millionths is more than every trace",
                t.sampling
            ))
            .at("sampling"));
        }
        Ok(TracingSettings {
            enabled: t.enabled,
            sampling: t.sampling,
            collector: optional(t.collector, "collector")?,
            custom_tags: list(t.custom_tags, "custom_tags")?,
            mesh_id: t.mesh_id,
        })
    }
}

impl From<&Collector> for proto::OtlpCollector {
    fn from(c: &Collector) -> Self {
        proto::OtlpCollector {
            provider: c.provider.clone(),
            service: c.service.clone(),
            port: u32::from(c.port),
            endpoints: c.endpoints.clone(),
            http: match &c.protocol {
                OtlpProtocol::Grpc => None,
                OtlpProtocol::Http { path, headers } => Some(proto::OtlpHttp {
                    path: path.clone(),
                    headers: super::routes::encode_pairs(headers),
                }),
            },
            timeout_ms: c.timeout_ms,
        }
    }
}

impl TryFrom<proto::OtlpCollector> for Collector {
    type Error = WireError;

    fn try_from(c: proto::OtlpCollector) -> Result<Self, WireError> {
        let port = u16::try_from(c.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| WireError::new(format!("{} is not a port", c.port)).at("port"))?;
        if c.service.is_empty() {
            return Err(WireError::unset().at("service"));
        }
        Ok(Collector {
            provider: c.provider,
            service: c.service,
            port,
            endpoints: c.endpoints,
            protocol: match c.http {
                None => OtlpProtocol::Grpc,
                Some(h) => OtlpProtocol::Http {
                    path: h.path,
                    headers: h.headers.into_iter().map(|kv| (kv.key, kv.value)).collect(),
                },
            },
            timeout_ms: c.timeout_ms,
        })
    }
}

impl From<&CustomTag> for proto::CustomTag {
    fn from(t: &CustomTag) -> Self {
        use proto::custom_tag::Source;
        let (tag, source, default_value) = match t {
            CustomTag::Literal { tag, value } => (tag, Source::Literal(value.clone()), ""),
            CustomTag::Header {
                tag,
                header,
                default,
            } => (tag, Source::Header(header.clone()), default.as_str()),
            CustomTag::Environment { tag, name, default } => {
                (tag, Source::Environment(name.clone()), default.as_str())
            }
        };
        proto::CustomTag {
            tag: tag.clone(),
            source: Some(source),
            default_value: default_value.to_string(),
        }
    }
}

impl TryFrom<proto::CustomTag> for CustomTag {
    type Error = WireError;

    fn try_from(t: proto::CustomTag) -> Result<Self, WireError> {
        use proto::custom_tag::Source;
        let default = t.default_value;
        Ok(match t.source {
            None => return Err(WireError::unset().at("source")),
            Some(Source::Literal(value)) => CustomTag::Literal { tag: t.tag, value },
            Some(Source::Header(header)) => CustomTag::Header {
                tag: t.tag,
                header,
                default,
            },
            Some(Source::Environment(name)) => CustomTag::Environment {
                tag: t.tag,
                name,
                default,
            },
        })
    }
}
