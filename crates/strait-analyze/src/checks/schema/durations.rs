//! Durations: at least 1ms, in whole milliseconds, where Istio's CRDs require it.

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

/// Nodes at `pattern` under `node`, with their concrete paths.
pub(super) fn find_nodes<'a>(
    node: &'a Node,
    segs: &[&str],
    path: String,
    out: &mut Vec<(String, &'a Node)>,
) {
    let Some((first, rest)) = segs.split_first() else {
        out.push((path, node));
        return;
    };
    let (key, list) = match first.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (*first, false),
    };
    let Some(child) = node.get(key) else { return };
    let here = if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    };
    if !list {
        find_nodes(child, rest, here, out);
        return;
    }
    if let Value::Seq(items) = &child.value {
        for (i, item) in items.iter().enumerate() {
            find_nodes(item, rest, format!("{here}[{i}]"), out);
        }
    }
}

pub(super) fn durations(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let tree: &Node = &o.source.tree;
    for pattern in duration_fields(o.kind) {
        let segs: Vec<&str> = pattern.split('.').collect();
        let mut found = Vec::new();
        find_nodes(tree, &segs, String::new(), &mut found);
        for (path, node) in found {
            let Some(Ok(d)) = node.as_str().map(Duration::parse) else {
                continue;
            };
            let nanos = d.as_std().as_nanos();
            let field = path.rsplit('.').next().unwrap_or("");
            if nanos < 1_000_000 {
                ctx.at(
                    code,
                    id,
                    &path,
                    format!("{field} {} is below 1ms; Istio rejects durations under 1ms (to disable, remove the field)", node.as_str().unwrap_or("")),
                );
            } else if !nanos.is_multiple_of(1_000_000) {
                ctx.at(
                    code,
                    id,
                    &path,
                    format!("{field} {} is not a whole number of milliseconds; Istio rejects finer precision", node.as_str().unwrap_or("")),
                );
            }
        }
    }
}
