//! Telemetry provider checks: access logging with no provider (IST0157), the deprecated
//! Lightstep tracer (IST0002), and provider names nothing defines (STR0403).

use strait_api::istio::telemetry::{ProviderRef, TelemetrySpec};
use strait_api::suggest;
use strait_model::ClusterId;

use super::Tel;
use crate::catalog::{IST0002, IST0157, STR0403};
use crate::context::Ctx;

/// Providers every mesh config has (`DefaultMeshConfig`), matched case-insensitively.
const BUILT_IN: &[&str] = &["prometheus", "stackdriver", "envoy"];

/// Providers the demo profile adds to the mesh config.
const DEMO_PROVIDERS: &[&str] = &["otel", "skywalking", "otel-tracing", "jaeger"];

/// Every provider reference of a Telemetry with its field path.
fn provider_refs(spec: &TelemetrySpec) -> Vec<(String, &ProviderRef)> {
    let mut out = Vec::new();
    let sections: [(&str, Vec<&Vec<ProviderRef>>); 3] = [
        (
            "tracing",
            spec.tracing.iter().map(|t| &t.providers).collect(),
        ),
        (
            "metrics",
            spec.metrics.iter().map(|m| &m.providers).collect(),
        ),
        (
            "accessLogging",
            spec.access_logging.iter().map(|a| &a.providers).collect(),
        ),
    ];
    for (section, lists) in sections {
        for (i, list) in lists.into_iter().enumerate() {
            for (j, p) in list.iter().enumerate() {
                out.push((format!("spec.{section}[{i}].providers[{j}].name"), p));
            }
        }
    }
    out
}

/// IST0157: an access-logging entry that names no provider while the mesh config has no default
/// one, so Istio ignores it (istioctl's `telemetry.ProviderAnalyzer`). Without a mesh config in
/// the input Istio's default applies, which sets no default provider: the input is the whole
/// world (Info under `--partial`).
pub(super) fn check_empty_providers(ctx: &mut Ctx, cluster: ClusterId, known: bool, tels: &[Tel]) {
    let mc = &ctx.mesh.cluster(cluster).mesh_config;
    if mc
        .default_providers
        .as_ref()
        .is_some_and(|d| !d.access_logging.is_empty())
    {
        return;
    }
    let why = if known {
        "the mesh config sets no defaultProviders.accessLogging"
    } else {
        "no mesh config in the input sets defaultProviders.accessLogging (Istio's default sets none)"
    };
    for t in tels {
        for (i, a) in t.spec.access_logging.iter().enumerate() {
            if a.disabled == Some(true) || !a.providers.is_empty() {
                continue;
            }
            let message = format!(
                "this accessLogging entry names no provider, and {why}, so Istio ignores it and no access log is written; add providers: [{{name: envoy}}] (or set meshConfig.defaultProviders.accessLogging)"
            );
            let field = format!("spec.accessLogging[{i}]");
            if known {
                ctx.at(IST0157, t.id, &field, message);
            } else {
                ctx.not_found(IST0157, t.id, &field, message);
            }
        }
    }
}

/// IST0002: tracing sent to a Lightstep extension provider, which Istio has deprecated in favour
/// of OpenTelemetry (istioctl's `telemetry.LightstepAnalyzer`).
pub(super) fn check_lightstep(ctx: &mut Ctx, cluster: ClusterId, tels: &[Tel]) {
    let mc = &ctx.mesh.cluster(cluster).mesh_config;
    let lightstep: Vec<&str> = mc
        .extension_providers
        .iter()
        .filter(|p| p.lightstep.is_some())
        .map(|p| p.name.as_str())
        .collect();
    if lightstep.is_empty() {
        return;
    }
    for t in tels {
        for (i, tr) in t.spec.tracing.iter().enumerate() {
            for (j, p) in tr.providers.iter().enumerate() {
                if !lightstep.contains(&p.name.as_str()) {
                    continue;
                }
                ctx.at(
                    IST0002,
                    t.id,
                    &format!("spec.tracing[{i}].providers[{j}].name"),
                    format!(
                        "tracing provider {} is a Lightstep extension provider, which Istio has deprecated; define an opentelemetry extension provider pointing at your collector and trace to it instead",
                        p.name
                    ),
                );
            }
        }
    }
}

/// STR0403: provider names that are neither built in nor defined in the mesh config.
pub(super) fn check_providers(ctx: &mut Ctx, cluster: ClusterId, tels: &[Tel]) {
    let mesh = ctx.mesh;
    let mc = &mesh.cluster(cluster).mesh_config;
    let mut known: Vec<&str> = BUILT_IN.to_vec();
    known.extend(mc.extension_providers.iter().map(|p| p.name.as_str()));
    if mesh
        .cluster(cluster)
        .operators()
        .any(|(_, op)| op.spec.profile == "demo")
    {
        known.extend(DEMO_PROVIDERS);
    }
    for t in tels {
        for (path, p) in provider_refs(t.spec) {
            if p.name.is_empty() || known.iter().any(|k| k.eq_ignore_ascii_case(&p.name)) {
                continue;
            }
            let hint = match suggest::did_you_mean(&p.name, &known) {
                Some(s) => format!("did you mean \"{s}\"? "),
                None => String::new(),
            };
            ctx.at(
                STR0403,
                t.id,
                &path,
                format!(
                    "provider \"{}\" is neither built in (prometheus, stackdriver, envoy) nor among the mesh config's extensionProviders ({}); Istio skips it without an error, so this telemetry goes nowhere; {hint}define it under meshConfig.extensionProviders or fix the name",
                    p.name,
                    if mc.extension_providers.is_empty() {
                        "none defined".to_string()
                    } else {
                        mc.extension_providers.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
                    }
                ),
            );
        }
    }
}
