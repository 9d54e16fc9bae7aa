//! DestinationRule checks: hosts that name no service, subsets that select no workload, client
//! TLS that does not verify the server, and deprecated load-balancer and outlier settings.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use strait_api::Kind;
use strait_api::istio::destination_rule::{
    ClientTlsMode, ClientTlsSettings, DestinationRuleSpec, LoadBalancerSettings, OutlierDetection,
    SimpleLb,
};
use strait_model::host::{self, ExportTo};
use strait_model::{Layout, Mesh, ObjId, ServiceInstance, ServiceSource, Workload};

use super::util::{self, fqdn};
use crate::catalog::{IST0002, IST0128, IST0129, IST0173, IST0174};
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for (id, o) in util::objects(mesh, Kind::DestinationRule) {
        let Some(dr) = o.destination_rule() else {
            continue;
        };
        if let Some(services) = check_host(ctx, id, &dr.spec) {
            check_subsets(ctx, id, &dr.spec, &services);
        }
        check_tls(ctx, id, &dr.spec);
        check_deprecated(ctx, id, &dr.spec);
    }
}

/// IST0174. Returns the services the host names (for the subset check), or `None` when it
/// names nothing or cannot be judged.
fn check_host<'m>(
    ctx: &mut Ctx<'m>,
    id: ObjId,
    spec: &DestinationRuleSpec,
) -> Option<Vec<&'m ServiceInstance>> {
    let mesh = ctx.mesh;
    let h = spec.host.as_str();
    // An empty host is a schema error (reported by the schema analyzer); a wildcard host is a
    // mesh-wide or domain-wide policy and is fine whether or not it covers a service today.
    if h.is_empty() || host::is_wildcard(h) {
        return None;
    }
    let ns = mesh.object(id).namespace();
    let full = fqdn(mesh, id, h);
    let services = mesh.registry.resolve(&full, ns);
    if !services.is_empty() {
        return Some(services);
    }
    let hidden = mesh.registry.resolve_any(&full);
    if !hidden.is_empty() {
        let dr_export = ExportTo::parse(&spec.export_to, ns, true);
        // The rule applies wherever both it and the service are visible: only a rule that no
        // namespace sees together with the service is dead.
        if hidden
            .iter()
            .any(|s| shares_namespace(&dr_export, &s.export_to, &s.namespace))
        {
            return Some(hidden);
        }
        let s = hidden[0];
        ctx.at(
            IST0174,
            id,
            "spec.host",
            format!(
                "host {full} exists ({} {}/{}) but is not exported to any namespace this rule is visible in, so the rule never applies; widen the service's exportTo or move the rule to {}",
                source_kind(s),
                s.namespace,
                s.name,
                s.namespace
            ),
        );
        return None;
    }
    if let Some(full) = util::truncated_service(mesh, id, h) {
        ctx.at(
            IST0174,
            id,
            "spec.host",
            format!("host \"{h}\" is taken literally and matches no service, so this rule applies to nothing; write \"{full}\""),
        );
        return None;
    }
    // The input is the whole world: a host it has no service for does not exist (Info under
    // `--partial`).
    ctx.not_found(
        IST0174,
        id,
        "spec.host",
        format!(
            "host {full} matches no Service or ServiceEntry in any cluster, so this rule applies to nothing; check the name (and namespace), or add a ServiceEntry for an external host"
        ),
    );
    None
}

fn source_kind(s: &ServiceInstance) -> &'static str {
    if s.source == ServiceSource::ServiceEntry {
        "ServiceEntry"
    } else {
        "Service"
    }
}

/// Whether some namespace sees both a rule exported as `rule` and a service exported as `svc`
/// from `svc_ns` (a service is always visible in its own namespace).
fn shares_namespace(rule: &ExportTo, svc: &ExportTo, svc_ns: &str) -> bool {
    match (rule, svc) {
        (ExportTo::All, _) | (_, ExportTo::All) => true,
        (ExportTo::Namespaces(r), ExportTo::Namespaces(s)) => {
            r.iter().any(|n| n == svc_ns || s.contains(n))
        }
    }
}

/// IST0173: subsets whose labels select none of the workloads behind the host.
fn check_subsets(
    ctx: &mut Ctx,
    id: ObjId,
    spec: &DestinationRuleSpec,
    services: &[&ServiceInstance],
) {
    let mesh = ctx.mesh;
    if spec.subsets.is_empty() {
        return;
    }
    // Only Kubernetes Services with a selector tell us their pods; ServiceEntries and
    // selector-less Services get endpoints we cannot see.
    if services
        .iter()
        .any(|s| s.source != ServiceSource::Kubernetes || s.selector.is_none())
    {
        return;
    }
    let mut endpoints: Vec<&Workload> =
        services.iter().flat_map(|s| mesh.endpoints_of(s)).collect();
    endpoints.sort_by_key(|w| w.id.0);
    endpoints.dedup_by_key(|w| w.id.0);
    if endpoints.is_empty() {
        return;
    }
    let full = fqdn(mesh, id, &spec.host);
    for (i, subset) in spec.subsets.iter().enumerate() {
        if subset.labels.is_empty()
            || endpoints
                .iter()
                .any(|w| subset_selects(mesh, &subset.labels, w))
        {
            continue;
        }
        let wanted: Vec<String> = subset
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        ctx.at(
            IST0173,
            id,
            &format!("spec.subsets[{i}].labels"),
            format!(
                "subset {} selects no workload of {full}: none of its {} has {}{}; requests routed to this subset fail with 503 (no healthy upstream)",
                if subset.name.is_empty() { "(unnamed)" } else { &subset.name },
                plural(endpoints.len(), "workload"),
                wanted.join(", "),
                what_they_have(mesh, &subset.labels, &endpoints),
            ),
        );
    }
}

/// Istio matches subset labels against pod labels plus the topology labels it adds itself
/// (cluster, network, region, zone, node). Cluster and network we know when the mesh layout
/// states them; the rest depend on nodes, so a subset using them gets the benefit of the doubt.
fn subset_selects(mesh: &Mesh, labels: &BTreeMap<String, String>, w: &Workload) -> bool {
    labels.iter().all(|(k, v)| match k.as_str() {
        // Cluster names are only known from mesh.yaml; a plain directory's is a placeholder.
        "topology.istio.io/cluster" if mesh.layout == Layout::MeshDirectory => {
            &mesh.cluster(w.cluster).name == v
        }
        "topology.istio.io/network" if !w.network.is_empty() => &w.network == v,
        "topology.istio.io/cluster"
        | "topology.istio.io/network"
        | "topology.kubernetes.io/region"
        | "topology.kubernetes.io/zone"
        | "topology.istio.io/subzone"
        | "kubernetes.io/hostname" => true,
        _ => w.labels.get(k) == Some(v),
    })
}

/// `(they have version=v1, version=v2)`: the values the workloads carry for the subset's keys.
fn what_they_have(
    mesh: &Mesh,
    labels: &BTreeMap<String, String>,
    endpoints: &[&Workload],
) -> String {
    let mut seen = BTreeSet::new();
    for w in endpoints {
        for k in labels.keys() {
            let v = match k.as_str() {
                "topology.istio.io/cluster" => Some(mesh.cluster(w.cluster).name.as_str()),
                _ => w.labels.get(k).map(String::as_str),
            };
            if let Some(v) = v {
                seen.insert(format!("{k}={v}"));
            }
        }
    }
    if seen.is_empty() {
        String::new()
    } else {
        format!(
            " (they have {})",
            seen.into_iter().collect::<Vec<_>>().join(", ")
        )
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// IST0128/IST0129: SIMPLE or MUTUAL origination that names no CA to check the server with.
fn check_tls(ctx: &mut Ctx, id: ObjId, spec: &DestinationRuleSpec) {
    let selector = spec.workload_selector.is_some();
    for (path, tp) in spec.traffic_policies() {
        if let Some(tls) = &tp.tls {
            check_tls_settings(
                ctx,
                id,
                &spec.host,
                &format!("{path}.tls"),
                tls,
                selector,
                None,
            );
        }
        for (j, pl) in tp.port_level_settings.iter().enumerate() {
            if let Some(tls) = &pl.tls {
                let port = pl.port.as_ref().map(|p| p.number);
                check_tls_settings(
                    ctx,
                    id,
                    &spec.host,
                    &format!("{path}.portLevelSettings[{j}].tls"),
                    tls,
                    selector,
                    Some(port),
                );
            }
        }
    }
}

fn check_tls_settings(
    ctx: &mut Ctx,
    id: ObjId,
    host_name: &str,
    path: &str,
    tls: &ClientTlsSettings,
    selector: bool,
    port: Option<Option<u32>>,
) {
    let mode = match tls.mode {
        Some(ClientTlsMode::Simple) => "SIMPLE",
        Some(ClientTlsMode::Mutual) => "MUTUAL",
        _ => return,
    };
    if !tls.ca_certificates.is_empty() || tls.insecure_skip_verify == Some(true) {
        return;
    }
    let mut why = String::new();
    if !tls.credential_name.is_empty() {
        // Istio's own analyzer exempts a credential on a rule bound to workloads by selector.
        if selector {
            return;
        }
        // The credential may carry the CA (ca.crt/cacert, or a `<name>-cacert` Secret): only a
        // credential we can see, and that lacks one, is a finding.
        match credential_has_ca(ctx.mesh, id, &tls.credential_name) {
            None | Some(true) => return,
            Some(false) => {
                why = format!(
                    " (Secret {} holds no ca.crt or cacert)",
                    tls.credential_name
                )
            }
        }
    }
    let (code, place) = match port {
        None => (IST0128, String::new()),
        Some(Some(p)) => (IST0129, format!(" on port {p}")),
        Some(None) => (IST0129, " on this port".to_string()),
    };
    ctx.at(
        code,
        id,
        &format!("{path}.mode"),
        format!(
            "TLS mode {mode} to {host_name}{place} sets no caCertificates{why}: the server certificate is not checked against a CA you chose, so an impostor endpoint can be accepted; set caCertificates (or a credentialName whose Secret has ca.crt), or insecureSkipVerify: true to make skipping deliberate"
        ),
    );
}

/// `Some(true)` when a Secret for the credential (same cluster) carries a CA, `Some(false)` when
/// Secrets exist but none does, `None` when no such Secret is in the input.
fn credential_has_ca(mesh: &Mesh, id: ObjId, name: &str) -> Option<bool> {
    let ca_secret = format!("{name}-cacert");
    let mut found = false;
    for (_, o) in util::in_cluster(mesh, id.cluster, Kind::Secret) {
        if o.name() != name && o.name() != ca_secret {
            continue;
        }
        let Some(s) = o.secret() else { continue };
        found = true;
        let keys = s
            .data
            .iter()
            .flat_map(|d| d.keys())
            .chain(s.string_data.iter().flat_map(|d| d.keys()));
        if keys.into_iter().any(|k| k == "ca.crt" || k == "cacert") {
            return Some(true);
        }
    }
    found.then_some(false)
}

/// IST0002: settings Istio still reads but has deprecated.
fn check_deprecated(ctx: &mut Ctx, id: ObjId, spec: &DestinationRuleSpec) {
    for (path, tp) in spec.traffic_policies() {
        deprecated_in(
            ctx,
            id,
            &path,
            tp.load_balancer.as_ref(),
            tp.outlier_detection.as_ref(),
        );
        for (j, pl) in tp.port_level_settings.iter().enumerate() {
            let p = format!("{path}.portLevelSettings[{j}]");
            deprecated_in(
                ctx,
                id,
                &p,
                pl.load_balancer.as_ref(),
                pl.outlier_detection.as_ref(),
            );
        }
    }
}

fn deprecated_in(
    ctx: &mut Ctx,
    id: ObjId,
    path: &str,
    lb: Option<&LoadBalancerSettings>,
    od: Option<&OutlierDetection>,
) {
    if let Some(lb) = lb {
        if lb.warmup_duration_secs.is_some() {
            ctx.at_key(
                IST0002,
                id,
                &format!("{path}.loadBalancer.warmupDurationSecs"),
                "loadBalancer.warmupDurationSecs is deprecated; use loadBalancer.warmup.duration",
            );
        }
        if lb.simple == Some(SimpleLb::LeastConn) {
            ctx.at(
                IST0002,
                id,
                &format!("{path}.loadBalancer.simple"),
                "load balancer LEAST_CONN is deprecated (it is LEAST_REQUEST under another name); write LEAST_REQUEST",
            );
        }
        if lb
            .consistent_hash
            .as_ref()
            .is_some_and(|c| c.minimum_ring_size.is_some())
        {
            ctx.at_key(
                IST0002,
                id,
                &format!("{path}.loadBalancer.consistentHash.minimumRingSize"),
                "consistentHash.minimumRingSize is deprecated; use consistentHash.ringHash.minimumRingSize",
            );
        }
    }
    if od.is_some_and(|o| o.consecutive_errors.is_some()) {
        ctx.at_key(
            IST0002,
            id,
            &format!("{path}.outlierDetection.consecutiveErrors"),
            "outlierDetection.consecutiveErrors is deprecated; use consecutive5xxErrors (or consecutiveGatewayErrors for 502/503/504 only)",
        );
    }
}
