//! A proxy's tracing, with Istio's precedence. Telemetry resources are read at three levels,
//! each overriding the one before field by field: the root namespace's without a selector
//! (mesh), the proxy's namespace's without one (namespace), then those whose `selector` or
//! `targetRefs` pick the proxy (workload). Within a level, resources apply in name order.
//! `providers` replace, `randomSamplingPercentage` and `disableSpanReporting` replace when
//! set, `customTags` merge by tag. Without any Telemetry tracing, `defaultProviders.tracing`
//! names the provider; without either, `enableTracing` (default true) decides whether the
//! proxy traces at all. Sampling falls back to `defaultConfig.tracing.sampling`, then 1 %.

use std::collections::BTreeMap;

use strait_api::Kind;
use strait_api::istio::mesh_config::{ExtensionProvider, MeshConfig, OpenTelemetryProvider};
use strait_api::istio::telemetry::{CustomTag as ApiTag, TelemetrySpec};
use strait_config::{Collector, CustomTag, OtlpProtocol, SAMPLING_SCALE, TracingSettings};

use crate::ids::ClusterId;
use crate::mesh::Mesh;
use crate::workload::Workload;

/// Each export's deadline when the provider says none (Envoy's OTLP default).
const EXPORT_TIMEOUT_MS: u64 = 5000;

/// The tracing settings of proxy `w`, from its config cluster's mesh config and Telemetry.
pub fn settings(mesh: &Mesh, config: ClusterId, w: &Workload) -> TracingSettings {
    let c = mesh.cluster(config);
    let mc = &c.mesh_config;
    let merged = telemetry(mesh, config, w);
    let defaults = mc
        .default_providers
        .as_ref()
        .map(|d| d.tracing.clone())
        .unwrap_or_default();
    let legacy_sampling = mc
        .default_config
        .as_ref()
        .and_then(|d| d.tracing.as_ref())
        .and_then(|t| t.sampling);
    let mut out = TracingSettings {
        mesh_id: mc
            .default_config
            .as_ref()
            .map(|d| d.mesh_id.clone())
            .unwrap_or_default(),
        sampling: millionths(merged.sampling.or(legacy_sampling)),
        ..TracingSettings::default()
    };
    if !merged.any && defaults.is_empty() {
        out.enabled = mc.enable_tracing.unwrap_or(true);
        return out;
    }
    out.custom_tags = merged.tags.into_values().collect();
    let providers = merged.providers.unwrap_or(defaults);
    // Istio sends a proxy's spans to one provider, the first named.
    let provider = providers
        .first()
        .and_then(|name| find_provider(mc, name))
        .and_then(|p| Some((p.name.clone(), p.opentelemetry.as_ref()?)));
    if merged.disable_reporting != Some(true) {
        out.collector = provider.and_then(|(name, otel)| collector(mesh, config, w, name, otel));
    }
    out
}

fn find_provider<'m>(mc: &'m MeshConfig, name: &str) -> Option<&'m ExtensionProvider> {
    mc.extension_providers.iter().find(|p| p.name == name)
}

/// A percentage as millionths, clamped to 0-100; unset or not a number is Istio's 1 %.
pub fn millionths(percent: Option<f64>) -> u32 {
    match percent {
        Some(p) if p.is_finite() => {
            let scaled = (p.clamp(0.0, 100.0) * f64::from(SAMPLING_SCALE) / 100.0).round();
            // In 0..=SAMPLING_SCALE after the clamp, so the cast is exact.
            scaled as u32
        }
        _ => SAMPLING_SCALE / 100,
    }
}

/// Telemetry tracing merged over the levels that apply to `w`.
#[derive(Debug, Default)]
struct Merged {
    /// Whether any Telemetry configures tracing for `w`.
    any: bool,
    providers: Option<Vec<String>>,
    sampling: Option<f64>,
    disable_reporting: Option<bool>,
    tags: BTreeMap<String, CustomTag>,
}

fn telemetry(mesh: &Mesh, config: ClusterId, w: &Workload) -> Merged {
    let c = mesh.cluster(config);
    let root = c.root_namespace();
    let mut found: Vec<(u8, &str, &TelemetrySpec)> = c
        .of_kind(Kind::Telemetry)
        .filter_map(|(_, o)| {
            let t = o.telemetry()?;
            let ns = o.namespace();
            let refs = super::target_refs(t.spec.target_ref.as_ref(), &t.spec.target_refs);
            let selects = t.spec.selector.is_some() || !refs.is_empty();
            let sel = t.spec.selector.as_ref().map(|s| &s.match_labels);
            let level = if !selects && ns == root {
                0
            } else if !selects && ns == w.namespace {
                1
            } else if selects && super::policy_applies(root, ns, sel, &refs, w) {
                2
            } else {
                return None;
            };
            Some((level, o.name(), &t.spec))
        })
        .collect();
    found.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut m = Merged::default();
    for (_, _, spec) in found {
        for t in &spec.tracing {
            m.any = true;
            if !t.providers.is_empty() {
                m.providers = Some(t.providers.iter().map(|p| p.name.clone()).collect());
            }
            if t.random_sampling_percentage.is_some() {
                m.sampling = t.random_sampling_percentage;
            }
            if t.disable_span_reporting.is_some() {
                m.disable_reporting = t.disable_span_reporting;
            }
            for (tag, v) in &t.custom_tags {
                if let Some(ct) = custom_tag(tag, v) {
                    m.tags.insert(tag.clone(), ct);
                }
            }
        }
    }
    m
}

fn custom_tag(tag: &str, v: &ApiTag) -> Option<CustomTag> {
    let tag = tag.to_string();
    if let Some(l) = &v.literal {
        return Some(CustomTag::Literal {
            tag,
            value: l.value.clone(),
        });
    }
    if let Some(h) = &v.header {
        return Some(CustomTag::Header {
            tag,
            header: h.name.to_ascii_lowercase(),
            default: h.default_value.clone(),
        });
    }
    v.environment.as_ref().map(|e| CustomTag::Environment {
        tag,
        name: e.name.clone(),
        default: e.default_value.clone(),
    })
}

/// Where an OpenTelemetry provider's spans go. `service` is `host` or `namespace/host`; when
/// it names a service of the mesh, the endpoints on the proxy's network are carried so the
/// proxy can reach it without DNS (local mode has none); otherwise the proxy resolves the
/// name in DNS, as a pod does for a collector outside the mesh.
fn collector(
    mesh: &Mesh,
    config: ClusterId,
    w: &Workload,
    provider: String,
    p: &OpenTelemetryProvider,
) -> Option<Collector> {
    let host = p
        .service
        .split_once('/')
        .map_or(p.service.as_str(), |(_, h)| h);
    // Istio's validation refuses these; the proxy would refuse them too, so none is sent.
    let port = u16::try_from(p.port).ok().filter(|p| *p != 0)?;
    if host.is_empty() {
        return None;
    }
    let mut endpoints = Vec::new();
    for s in super::visible_services(mesh, config, host, &w.namespace) {
        let Some(sp) = s.ports.iter().find(|sp| sp.number == p.port) else {
            continue;
        };
        for e in mesh.endpoints_of(s) {
            if !(e.network.is_empty() || e.network == w.network) {
                continue;
            }
            if let (Some(addr), Some(tp)) = (&e.address, crate::peer_auth::target_port(mesh, e, sp))
            {
                let a = format!("{addr}:{tp}");
                if !endpoints.contains(&a) {
                    endpoints.push(a);
                }
            }
        }
    }
    let (protocol, timeout_ms) = match &p.http {
        None => (OtlpProtocol::Grpc, EXPORT_TIMEOUT_MS),
        Some(h) => (
            OtlpProtocol::Http {
                path: if h.path.is_empty() {
                    "/v1/traces".to_string()
                } else {
                    h.path.clone()
                },
                headers: h
                    .headers
                    .iter()
                    .filter_map(|x| Some((x.name.clone(), x.value.clone()?)))
                    .collect(),
            },
            h.timeout.map_or(EXPORT_TIMEOUT_MS, |t| {
                u64::try_from(t.as_millis()).unwrap_or(u64::MAX)
            }),
        ),
    };
    Some(Collector {
        provider,
        service: host.to_string(),
        port,
        endpoints,
        protocol,
        timeout_ms,
    })
}

#[cfg(test)]
mod tests;
