//! Telemetry checks: selectors (IST0101, IST0159, IST0160), providers (IST0157, IST0002,
//! STR0403; see `providers`), and
//! the absence of Istio's standard observability: metrics switched off (STR0402) and no access
//! logs at all (STR0401).
//!
//! Provider checks need the control plane's mesh config, so they only run where the manifests
//! hold it (the `istio` ConfigMap or an IstioOperator); otherwise a provider defined outside
//! the manifests would look unknown.

mod providers;

use std::collections::{BTreeMap, BTreeSet};

use strait_api::de::FieldPath;
use strait_api::istio::telemetry::{IstioMetric, MetricsOverrides, TelemetrySpec, WorkloadMode};
use strait_api::yaml::{Tree, ValueRef};
use strait_api::{FileId, Kind, Pos, de};
use strait_model::{ClusterId, Mesh, ObjId, Workload, selector};

use super::util::{self, join};
use crate::catalog::{IST0101, IST0159, IST0160, STR0401, STR0402};
use crate::context::Ctx;
use crate::finding::Level;

/// One Telemetry of a control plane.
struct Tel<'m> {
    id: ObjId,
    namespace: &'m str,
    name: &'m str,
    spec: &'m TelemetrySpec,
}

impl Tel<'_> {
    fn selector(&self) -> Option<&BTreeMap<String, String>> {
        self.spec
            .selector
            .as_ref()
            .map(|s| &s.match_labels)
            .filter(|m| !m.is_empty())
    }

    fn has_target_ref(&self) -> bool {
        self.spec.target_ref.is_some() || !self.spec.target_refs.is_empty()
    }

    /// Applies to its whole namespace (the whole mesh in the root namespace).
    fn namespace_wide(&self) -> bool {
        self.selector().is_none() && !self.has_target_ref()
    }
}

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in mesh.primaries() {
        let tels: Vec<Tel> = util::in_cluster(mesh, c.id, Kind::Telemetry)
            .filter_map(|(id, o)| {
                o.telemetry().map(|t| Tel {
                    id,
                    namespace: o.namespace(),
                    name: o.name(),
                    spec: &t.spec,
                })
            })
            .collect();
        check_selectors(ctx, c.id, &tels);
        check_namespace_wide(ctx, &tels);
        let source = mesh_config_source(mesh, c.id);
        let known = source.is_some() || !c.mesh_config.extension_providers.is_empty();
        if known {
            providers::check_providers(ctx, c.id, &tels);
        }
        providers::check_empty_providers(ctx, c.id, known, &tels);
        providers::check_lightstep(ctx, c.id, &tels);
        check_metrics(ctx, c.id, &tels);
        if let Some(src) = source {
            check_access_logging(ctx, c.id, src, &tels);
        }
    }
}

/// The object the cluster's mesh config comes from: the `istio` ConfigMap, else an
/// IstioOperator.
fn mesh_config_source(mesh: &Mesh, cluster: ClusterId) -> Option<ObjId> {
    let c = mesh.cluster(cluster);
    c.of_kind(Kind::ConfigMap)
        .find(|(_, o)| {
            o.namespace() == c.istio_namespace
                && (o.name() == "istio" || o.name().starts_with("istio-"))
                && o.config_map()
                    .and_then(|cm| cm.data.as_ref())
                    .is_some_and(|d| d.contains_key("mesh"))
        })
        .map(|(id, _)| id)
        .or_else(|| c.operators().map(|(id, _)| id).next())
}

/// Whether pods the manifests do not define (a Service selects them, but no workload has its
/// labels) may match `sel` in `ns`.
fn unseen_pods_may_match(
    mesh: &Mesh,
    served: &[ClusterId],
    ns: &str,
    sel: &BTreeMap<String, String>,
) -> bool {
    mesh.registry.all().iter().any(|s| {
        served.contains(&s.cluster)
            && s.namespace == ns
            && s.selector
                .as_ref()
                .is_some_and(|ss| selector::plausibly_same_pods(ss, sel))
            && mesh.endpoints_of(s).is_empty()
    })
}

/// IST0101 (selector matches nothing) and IST0159 (several selectors match one workload).
fn check_selectors(ctx: &mut Ctx, cluster: ClusterId, tels: &[Tel]) {
    let mesh = ctx.mesh;
    let served = mesh.served_by(cluster);
    let mut by_workload: BTreeMap<(ClusterId, &str, &str), (Vec<&Tel>, &Workload)> =
        BTreeMap::new();
    for t in tels {
        let Some(sel) = t.selector() else { continue };
        let in_ns: Vec<&Workload> = mesh
            .workloads
            .iter()
            .filter(|w| served.contains(&w.cluster) && w.namespace == t.namespace)
            .collect();
        if in_ns.is_empty() {
            continue;
        }
        let matched: Vec<&&Workload> = in_ns
            .iter()
            .filter(|w| selector::map_selects(sel, &w.labels))
            .collect();
        if matched.is_empty() && !unseen_pods_may_match(mesh, &served, t.namespace, sel) {
            ctx.at(
                IST0101,
                t.id,
                "spec.selector.matchLabels",
                format!(
                    "referenced selector not found: {} matches no workload in namespace {}, so this Telemetry configures nothing; fix the labels (or drop the selector to cover the namespace)",
                    selector::describe(sel),
                    t.namespace
                ),
            );
        }
        for w in matched {
            by_workload
                .entry((w.cluster, w.namespace.as_str(), w.name.as_str()))
                .or_insert_with(|| (Vec::new(), w))
                .0
                .push(t);
        }
    }
    let mut groups: BTreeMap<Vec<ObjId>, Vec<String>> = BTreeMap::new();
    for (ts, w) in by_workload.values() {
        if ts.len() > 1 {
            groups
                .entry(ts.iter().map(|t| t.id).collect())
                .or_default()
                .push(format!("{}/{}", w.namespace, w.name));
        }
    }
    for (ids, workloads) in groups {
        for id in &ids {
            let others: Vec<String> = ids
                .iter()
                .filter(|o| *o != id)
                .map(|o| mesh.object(*o).name().to_string())
                .collect();
            ctx.at(
                IST0159,
                *id,
                "spec.selector.matchLabels",
                format!(
                    "this Telemetry and {} {} select {}; Istio applies only one of them, and which one is not defined; merge them or make their selectors disjoint",
                    join(&others),
                    if others.len() > 1 { "all" } else { "both" },
                    join(&workloads)
                ),
            );
        }
    }
}

/// IST0160: more than one namespace-wide Telemetry in a namespace.
fn check_namespace_wide(ctx: &mut Ctx, tels: &[Tel]) {
    let mut by_ns: BTreeMap<&str, Vec<&Tel>> = BTreeMap::new();
    for t in tels.iter().filter(|t| t.namespace_wide()) {
        by_ns.entry(t.namespace).or_default().push(t);
    }
    for (ns, list) in by_ns {
        if list.len() < 2 {
            continue;
        }
        for t in &list {
            let others: Vec<String> = list
                .iter()
                .filter(|o| o.id != t.id)
                .map(|o| o.name.to_string())
                .collect();
            ctx.at(
                IST0160,
                t.id,
                "metadata.name",
                format!(
                    "namespace {ns} has several Telemetry resources without selector (this one and {}); only one applies, and which one is not defined; merge them into one",
                    join(&others)
                ),
            );
        }
    }
}

/// Whether an override matches every standard metric.
fn matches_all_metrics(o: &MetricsOverrides) -> bool {
    match &o.matches {
        None => true,
        Some(m) => {
            m.custom_metric.is_none() && m.metric.is_none_or(|x| x == IstioMetric::AllMetrics)
        }
    }
}

/// The index of the override that leaves every standard metric disabled on both the client and
/// the server side, if the overrides end that way.
fn disables_all(overrides: &[MetricsOverrides]) -> Option<usize> {
    let (mut client, mut server) = (false, false);
    let mut last = None;
    for (j, o) in overrides.iter().enumerate() {
        let Some(disabled) = o.disabled else { continue };
        if !matches_all_metrics(o) {
            if !disabled {
                // A metric enabled again after a blanket disable: not everything is gone.
                client = false;
                server = false;
            }
            continue;
        }
        let mode = o
            .matches
            .as_ref()
            .and_then(|m| m.mode)
            .unwrap_or(WorkloadMode::ClientAndServer);
        if matches!(mode, WorkloadMode::ClientAndServer | WorkloadMode::Client) {
            client = disabled;
        }
        if matches!(mode, WorkloadMode::ClientAndServer | WorkloadMode::Server) {
            server = disabled;
        }
        if disabled {
            last = Some(j);
        }
    }
    (client && server).then_some(last).flatten()
}

/// The `data.mesh` text of the cluster's `istio` ConfigMap, parsed.
fn configmap_mesh(mesh: &Mesh, cluster: ClusterId) -> Option<(ObjId, Tree)> {
    let c = mesh.cluster(cluster);
    let (id, o) = c.of_kind(Kind::ConfigMap).find(|(_, o)| {
        o.namespace() == c.istio_namespace
            && (o.name() == "istio" || o.name().starts_with("istio-"))
            && o.config_map()
                .and_then(|cm| cm.data.as_ref())
                .is_some_and(|d| d.contains_key("mesh"))
    })?;
    let text = o.config_map()?.data.as_ref()?.get("mesh")?;
    let parsed = strait_api::yaml::parse(text, FileId(u32::MAX), 0, 0);
    let doc = Tree::from_node(parsed.documents.first()?).ok()?;
    Some((id, doc))
}

/// Where a position inside the `data.mesh` text of ConfigMap `id` is in its file, when the text
/// is a block scalar (`mesh: |`) whose lines appear verbatim, indented, in the file.
fn embedded_pos(mesh: &Mesh, id: ObjId, inner: Pos) -> Option<Pos> {
    let o = mesh.object(id);
    let text = o.config_map()?.data.as_ref()?.get("mesh")?;
    let base = o.locate("data.mesh");
    let file = mesh.sources.get(base.file)?;
    let lines: Vec<&str> = text.lines().collect();
    let target = lines.get(inner.line.checked_sub(1)? as usize)?;
    let at = base.line + inner.line - 1;
    let written = file.line(at)?;
    let prefix = written.strip_suffix(target)?;
    if !prefix.trim().is_empty() {
        return None;
    }
    let column = u32::try_from(prefix.len()).ok()? + inner.column;
    Some(Pos::new(base.file, at, column))
}

/// STR0402: Istio's standard metrics switched off for the mesh or a namespace.
fn check_metrics(ctx: &mut Ctx, cluster: ClusterId, tels: &[Tel]) {
    let mesh = ctx.mesh;
    let c = mesh.cluster(cluster);
    let root = c.root_namespace();
    for t in tels.iter().filter(|t| t.namespace_wide()) {
        for (i, m) in t.spec.metrics.iter().enumerate() {
            let prometheus = m.providers.is_empty()
                || m.providers
                    .iter()
                    .any(|p| p.name.eq_ignore_ascii_case("prometheus"));
            if !prometheus {
                continue;
            }
            let Some(j) = disables_all(&m.overrides) else {
                continue;
            };
            let scope = if t.namespace == root {
                format!("every workload of the mesh (root namespace {root})")
            } else {
                format!("every workload in namespace {}", t.namespace)
            };
            ctx.at(
                STR0402,
                t.id,
                &format!("spec.metrics[{i}].overrides[{j}].disabled"),
                format!(
                    "this disables all of Istio's standard metrics (istio_requests_total, request durations, TCP bytes) for Prometheus on {scope}: Grafana's Istio dashboards and Kiali's graph go blank; disable only the metrics you do not need (match.metric), or limit it to some workloads with a selector"
                ),
            );
        }
    }
    let root_sets_metrics = tels.iter().any(|t| {
        t.namespace == root
            && t.namespace_wide()
            && t.spec.metrics.iter().any(|m| !m.providers.is_empty())
    });
    if root_sets_metrics {
        return;
    }
    if let Some((id, doc)) = configmap_mesh(mesh, cluster) {
        let (node, exact) = de::locate(doc.root(), &FieldPath::parse("defaultProviders.metrics"));
        if exact && matches!(node.value(), ValueRef::Seq(items) if items.items().len() == 0) {
            let inner = embedded_pos(mesh, id, node.pos());
            let f = ctx.at(
                STR0402,
                id,
                "data.mesh",
                format!(
                    "defaultProviders.metrics is an empty list, and no Telemetry in the root namespace {root} names a metrics provider: no proxy of cluster {} produces Istio's standard metrics, so dashboards and Kiali go blank; list prometheus there",
                    c.name
                ),
            );
            if let Some(p) = inner {
                f.pos = Some(p);
            }
            return;
        }
    }
    if c.mesh_config.enable_prometheus_merge != Some(false)
        || tels
            .iter()
            .any(|t| t.spec.metrics.iter().any(|m| !m.providers.is_empty()))
    {
        return;
    }
    let at = c
        .operators()
        .find(|(_, op)| {
            op.spec
                .mesh_config
                .as_ref()
                .and_then(|m| m.enable_prometheus_merge)
                == Some(false)
        })
        .map(|(id, _)| (id, "spec.meshConfig.enablePrometheusMerge"))
        .or_else(|| configmap_mesh(mesh, cluster).map(|(id, _)| (id, "data.mesh")));
    if let Some((id, path)) = at {
        ctx.at(
            STR0402,
            id,
            path,
            "enablePrometheusMerge is false: sidecars no longer carry the prometheus.io scrape annotations, so a Prometheus that discovers pods by annotation collects none of Istio's standard metrics; unless a PodMonitor scrapes the proxies' port 15090 (/stats/prometheus), dashboards and Kiali go blank",
        )
        .level(Level::Info);
    }
}

/// STR0401: a control plane whose proxies write no access log at all.
fn check_access_logging(ctx: &mut Ctx, cluster: ClusterId, source: ObjId, tels: &[Tel]) {
    let mesh = ctx.mesh;
    let c = mesh.cluster(cluster);
    let mc = &c.mesh_config;
    let root = c.root_namespace();
    let default_logs = mc
        .default_providers
        .as_ref()
        .is_some_and(|d| !d.access_logging.is_empty());
    let demo = c.operators().any(|(_, op)| op.spec.profile == "demo");
    if mc.access_log_file.as_deref().is_some_and(|f| !f.is_empty())
        || mc.enable_envoy_access_log_service
        || default_logs
        || demo
    {
        return;
    }
    let logs = |t: &Tel| {
        t.spec
            .access_logging
            .iter()
            .any(|a| a.disabled != Some(true) && (!a.providers.is_empty() || default_logs))
    };
    if tels
        .iter()
        .any(|t| t.namespace == root && t.namespace_wide() && logs(t))
    {
        return;
    }
    let partial: BTreeSet<&str> = tels
        .iter()
        .filter(|t| logs(t))
        .map(|t| t.namespace)
        .collect();
    let partial = if partial.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = partial.iter().map(|s| s.to_string()).collect();
        format!(
            " (only Telemetry in {} turns them on for some workloads)",
            join(&names)
        )
    };
    ctx.on_cluster(
        STR0401,
        cluster,
        Some(source),
        format!(
            "proxies of cluster {} write no access logs{partial}: meshConfig.accessLogFile is unset and no Telemetry in the root namespace {root} enables accessLogging, so there is no per-request record when debugging 503s or auditing traffic; set meshConfig.accessLogFile: /dev/stdout, or add a Telemetry in {root} with accessLogging: [{{providers: [{{name: envoy}}]}}]",
            c.name
        ),
    );
}

#[cfg(test)]
mod tests {
    use strait_api::istio::telemetry::MetricsOverrides;

    use super::disables_all;

    fn overrides(v: serde_json::Value) -> Vec<MetricsOverrides> {
        serde_json::from_value(v).expect("overrides")
    }

    #[test]
    fn all_metrics_disabled_on_both_sides() {
        assert_eq!(
            disables_all(&overrides(serde_json::json!([{"disabled": true}]))),
            Some(0)
        );
        let split = serde_json::json!([
            {"match": {"metric": "ALL_METRICS", "mode": "CLIENT"}, "disabled": true},
            {"match": {"metric": "ALL_METRICS", "mode": "SERVER"}, "disabled": true}
        ]);
        assert_eq!(disables_all(&overrides(split)), Some(1));
        let client_only = serde_json::json!([{"match": {"mode": "CLIENT"}, "disabled": true}]);
        assert_eq!(disables_all(&overrides(client_only)), None);
        let one_metric =
            serde_json::json!([{"match": {"metric": "REQUEST_SIZE"}, "disabled": true}]);
        assert_eq!(disables_all(&overrides(one_metric)), None);
        let reenabled = serde_json::json!([
            {"disabled": true},
            {"match": {"metric": "REQUEST_COUNT"}, "disabled": false}
        ]);
        assert_eq!(disables_all(&overrides(reenabled)), None);
    }
}
