//! Durations: at least 1ms, in whole milliseconds, where Istio's CRDs require it.

use std::sync::LazyLock;

use strait_api::yaml::{Hit, Paths};

use super::*;

// ---- Durations ----

/// Duration fields Istio requires to be at least 1ms (CRD CEL rules and the webhook), as
/// dotted paths where `[]` walks a list. TCP idleTimeout is absent on purpose: 0s disables it.
pub(super) fn duration_fields(kind: Kind) -> Vec<String> {
    const POOL: &[&str] = &[
        "connectionPool.http.http2KeepAlive.interval",
        "connectionPool.http.http2KeepAlive.timeout",
        "connectionPool.http.idleTimeout",
        "connectionPool.tcp.connectTimeout",
        "connectionPool.tcp.maxConnectionDuration",
        "connectionPool.tcp.tcpKeepalive.interval",
        "connectionPool.tcp.tcpKeepalive.time",
    ];
    const POLICY: &[&str] = &[
        "loadBalancer.warmup.duration",
        "loadBalancer.warmupDurationSecs",
        "outlierDetection.baseEjectionTime",
        "outlierDetection.interval",
    ];
    let policy = |prefix: &str| -> Vec<String> {
        POOL.iter()
            .chain(POLICY)
            .map(|f| format!("{prefix}.{f}"))
            .collect()
    };
    match kind {
        Kind::VirtualService => [
            "spec.http[].timeout",
            "spec.http[].retries.perTryTimeout",
            "spec.http[].retries.backoff",
            "spec.http[].fault.delay.fixedDelay",
            "spec.http[].fault.delay.exponentialDelay",
            "spec.http[].corsPolicy.maxAge",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        Kind::DestinationRule => ["spec.trafficPolicy", "spec.subsets[].trafficPolicy"]
            .iter()
            .flat_map(|p| [p.to_string(), format!("{p}.portLevelSettings[]")])
            .flat_map(|p| policy(&p))
            .collect(),
        Kind::Sidecar => POOL
            .iter()
            .flat_map(|f| {
                [
                    format!(
                        "spec.inboundConnectionPool.{}",
                        &f["connectionPool.".len()..]
                    ),
                    format!("spec.ingress[].{f}"),
                ]
            })
            .collect(),
        Kind::RequestAuthentication => vec!["spec.jwtRules[].timeout".to_string()],
        Kind::Telemetry => vec!["spec.metrics[].reportingInterval".to_string()],
        _ => Vec::new(),
    }
}

/// The kinds with duration fields, each with its fields merged for one walk of a tree.
static PATHS: LazyLock<Vec<(Kind, Vec<String>)>> = LazyLock::new(|| {
    [
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::Sidecar,
        Kind::RequestAuthentication,
        Kind::Telemetry,
    ]
    .into_iter()
    .map(|k| (k, duration_fields(k)))
    .collect()
});
static MERGED: LazyLock<Vec<(Kind, Paths<'static>)>> = LazyLock::new(|| {
    PATHS
        .iter()
        .map(|(k, fields)| {
            (
                *k,
                Paths::new(fields.iter().enumerate().map(|(i, f)| (f.as_str(), i))),
            )
        })
        .collect()
});

pub(super) fn durations(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some((_, paths)) = MERGED.iter().find(|(k, _)| *k == o.kind) else {
        return;
    };
    let mut hits = paths.find(o.source.root(), false);
    // Field by field, as the list names them.
    hits.sort_by_key(|h| h.path);
    for Hit {
        at: path, value, ..
    } in hits
    {
        let Some(text) = value else { continue };
        let Ok(d) = Duration::parse(&text) else {
            continue;
        };
        let nanos = d.as_std().as_nanos();
        let field = path.rsplit('.').next().unwrap_or("");
        if nanos < 1_000_000 {
            ctx.at(
                code,
                id,
                &path,
                format!("{field} {text} is below 1ms; Istio rejects durations under 1ms (to disable, remove the field)"),
            );
        } else if !nanos.is_multiple_of(1_000_000) {
            ctx.at(
                code,
                id,
                &path,
                format!("{field} {text} is not a whole number of milliseconds; Istio rejects finer precision"),
            );
        }
    }
}
