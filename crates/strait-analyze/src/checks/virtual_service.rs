//! VirtualService checks: references (gateways, hosts, ports, subsets), conflicting mesh
//! hosts, unreachable rules, gateway host coverage, timeouts against retries.

use std::collections::{BTreeMap, HashMap};

use strait_api::Kind;
use strait_api::istio::virtual_service::{Destination, HttpMatchRequest, VirtualServiceSpec};
use strait_model::{ClusterId, ObjId, host};

use super::util::{self, fqdn, resolve};
use crate::catalog::{
    IST0002, IST0101, IST0109, IST0112, IST0130, IST0131, IST0132, IST0140, IST0149, IST0165,
    STR0201, STR0203,
};
use crate::context::Ctx;

/// Every destination of a VirtualService with its field path.
fn destinations(spec: &VirtualServiceSpec) -> Vec<(String, &Destination)> {
    let mut out = Vec::new();
    for (i, r) in spec.http.iter().enumerate() {
        for (j, d) in r.route.iter().enumerate() {
            if let Some(dest) = &d.destination {
                out.push((format!("spec.http[{i}].route[{j}].destination"), dest));
            }
        }
        if let Some(m) = &r.mirror {
            out.push((format!("spec.http[{i}].mirror"), m));
        }
        for (j, m) in r.mirrors.iter().enumerate() {
            if let Some(dest) = &m.destination {
                out.push((format!("spec.http[{i}].mirrors[{j}].destination"), dest));
            }
        }
    }
    for (i, r) in spec.tls.iter().enumerate() {
        for (j, d) in r.route.iter().enumerate() {
            if let Some(dest) = &d.destination {
                out.push((format!("spec.tls[{i}].route[{j}].destination"), dest));
            }
        }
    }
    for (i, r) in spec.tcp.iter().enumerate() {
        for (j, d) in r.route.iter().enumerate() {
            if let Some(dest) = &d.destination {
                out.push((format!("spec.tcp[{i}].route[{j}].destination"), dest));
            }
        }
    }
    out
}

/// Gateway references of a VirtualService, with paths (top-level and per-match).
fn gateway_refs(spec: &VirtualServiceSpec) -> Vec<(String, &str)> {
    let mut out: Vec<(String, &str)> = spec
        .gateways
        .iter()
        .enumerate()
        .map(|(i, g)| (format!("spec.gateways[{i}]"), g.as_str()))
        .collect();
    for (i, r) in spec.http.iter().enumerate() {
        for (j, m) in r.matches.iter().enumerate() {
            for (k, g) in m.gateways.iter().enumerate() {
                out.push((
                    format!("spec.http[{i}].match[{j}].gateways[{k}]"),
                    g.as_str(),
                ));
            }
        }
    }
    out
}

/// DestinationRule subsets by (cluster, fully qualified host), built once per run: resolving
/// every route's subset by scanning all DestinationRules would be quadratic.
pub(crate) struct SubsetIndex {
    exact: HashMap<(ClusterId, String), Vec<SubsetEntry>>,
    wildcard: Vec<(ClusterId, String, SubsetEntry)>,
}

pub(crate) struct SubsetEntry {
    export: host::ExportTo,
    subsets: Vec<String>,
}

impl SubsetIndex {
    pub(crate) fn new(mesh: &strait_model::Mesh) -> SubsetIndex {
        let mut idx = SubsetIndex {
            exact: HashMap::new(),
            wildcard: Vec::new(),
        };
        for (id, o) in util::objects(mesh, Kind::DestinationRule) {
            let Some(d) = o.destination_rule() else {
                continue;
            };
            let entry = SubsetEntry {
                export: host::ExportTo::parse(&d.spec.export_to, o.namespace(), true),
                subsets: d.spec.subsets.iter().map(|s| s.name.clone()).collect(),
            };
            let h = fqdn(mesh, id, &d.spec.host);
            if host::is_wildcard(&h) {
                idx.wildcard.push((id.cluster, h, entry));
            } else {
                idx.exact
                    .entry((id.cluster, h.to_ascii_lowercase()))
                    .or_default()
                    .push(entry);
            }
        }
        idx
    }

    /// Whether a DestinationRule of `cluster`, visible from `ns`, defines `subset` for `host`.
    pub(crate) fn has(&self, cluster: ClusterId, host_name: &str, ns: &str, subset: &str) -> bool {
        let ok = |e: &SubsetEntry| e.export.visible_to(ns) && e.subsets.iter().any(|s| s == subset);
        self.exact
            .get(&(cluster, host_name.to_ascii_lowercase()))
            .is_some_and(|v| v.iter().any(ok))
            || self
                .wildcard
                .iter()
                .any(|(c, h, e)| *c == cluster && host::subset_of(host_name, h) && ok(e))
    }
}

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let subsets = SubsetIndex::new(mesh);
    for (id, o, vs) in util::virtual_services(mesh) {
        check_gateways(ctx, id, o.namespace(), &vs.spec);
        check_destinations(ctx, id, &vs.spec, &subsets);
        check_rules(ctx, id, &vs.spec);
        check_deprecated(ctx, id, &vs.spec);
        check_hosts(ctx, id, &vs.spec);
        check_jwt_claim_routing(ctx, id, o.namespace(), &vs.spec);
    }
    check_conflicting_mesh_hosts(ctx);
    check_ingress_subsets(ctx);
}

fn check_gateways(ctx: &mut Ctx, id: ObjId, ns: &str, spec: &VirtualServiceSpec) {
    let mesh = ctx.mesh;
    for (path, g) in gateway_refs(spec) {
        if g == "mesh" {
            continue;
        }
        if g.ends_with("-istio-autogenerated-k8s-gateway")
            || g.ends_with("-istio-autogenerated-k8s-ingress")
        {
            ctx.at(IST0165, id, &path, format!("gateway \"{g}\" is generated by Istio's Gateway API or Ingress support; reference the Gateway resource itself"));
            continue;
        }
        let (gns, name) = util::split_ref(g, ns);
        if mesh
            .cluster(id.cluster)
            .find(Kind::Gateway, gns, name)
            .is_none()
        {
            ctx.at(IST0101, id, &path, format!("referenced gateway not found: \"{gns}/{name}\" (no Gateway of that name in cluster {})", mesh.cluster(id.cluster).name));
            continue;
        }
        if !path.starts_with("spec.gateways") {
            continue;
        }
        check_host_in_gateway(ctx, id, ns, spec, &path, gns, name);
    }
}

fn check_host_in_gateway(
    ctx: &mut Ctx,
    id: ObjId,
    ns: &str,
    spec: &VirtualServiceSpec,
    path: &str,
    gns: &str,
    name: &str,
) {
    let mesh = ctx.mesh;
    let Some((_, gw_obj)) = mesh.cluster(id.cluster).find(Kind::Gateway, gns, name) else {
        return;
    };
    let Some(gw) = gw_obj.gateway() else { return };
    let allowed: Vec<String> = gw
        .spec
        .servers
        .iter()
        .flat_map(|s| s.hosts.iter())
        .map(|h| host::ScopedHost::parse(h))
        .filter(|h| h.allows_namespace(ns, gw_obj.namespace()))
        .map(|h| h.host)
        .collect();
    let covered = spec
        .hosts
        .iter()
        .any(|h| allowed.iter().any(|g| host::matches(h, g)));
    if !covered && !spec.hosts.is_empty() {
        let serves = if allowed.is_empty() {
            format!("it serves no host to namespace {ns}")
        } else {
            format!(
                "it serves {} to namespace {ns}",
                util::join(
                    &allowed
                        .iter()
                        .map(|h| format!("\"{h}\""))
                        .collect::<Vec<_>>()
                )
            )
        };
        let pos = ctx.pos(id, path);
        ctx.at(
            IST0132,
            id,
            "spec.hosts",
            format!(
                "gateway {gns}/{name} serves none of the hosts {}: {serves}, so requests for them get 404 at the gateway",
                util::join(&spec.hosts.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>())
            ),
        )
        .related("the gateway is referenced here", pos);
    }
}

fn check_destinations(ctx: &mut Ctx, id: ObjId, spec: &VirtualServiceSpec, subsets: &SubsetIndex) {
    let mesh = ctx.mesh;
    let obj = mesh.object(id);
    let ns = obj.namespace();
    let gateway_bound =
        !util::binds_mesh(&spec.gateways) || spec.gateways.iter().any(|g| g != "mesh");
    for (path, d) in destinations(spec) {
        if d.host.is_empty() {
            continue;
        }
        if let Some(full) = util::truncated_service(mesh, id, &d.host) {
            ctx.at(
                STR0203,
                id,
                &format!("{path}.host"),
                format!(
                    "host \"{}\" is taken literally by Istio and matches no Kubernetes service; write \"{full}\"",
                    d.host
                ),
            );
            continue;
        }
        let services = resolve(mesh, id, &d.host);
        if services.is_empty() {
            let full = fqdn(mesh, id, &d.host);
            let hidden = mesh.registry.resolve_any(&full);
            let msg = if let Some(s) = hidden.first() {
                format!(
                    "referenced host \"{}\" exists but is not exported to namespace {ns} (exportTo of {} {}/{})",
                    d.host,
                    if s.source == strait_model::ServiceSource::ServiceEntry {
                        "ServiceEntry"
                    } else {
                        "Service"
                    },
                    s.namespace,
                    s.name
                )
            } else {
                format!(
                    "referenced host not found: \"{}\" ({full}) is neither a Service nor a ServiceEntry host in any cluster",
                    d.host
                )
            };
            ctx.at(IST0101, id, &format!("{path}.host"), msg);
            continue;
        }
        let mut ports: Vec<u32> = services
            .iter()
            .flat_map(|s| s.ports.iter().map(|p| p.number))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        match d.port.as_ref().map(|p| p.number) {
            Some(p) if !ports.is_empty() && !ports.contains(&p) => {
                ctx.at(
                    IST0101,
                    id,
                    &format!("{path}.port.number"),
                    format!("referenced host:port not found: \"{}:{p}\" (the service has ports {ports:?})", d.host),
                );
            }
            None if gateway_bound
                && ports.len() > 1
                && !path.starts_with("spec.tls")
                && !path.starts_with("spec.tcp") =>
            {
                ctx.at_key(
                    IST0112,
                    id,
                    &path,
                    format!(
                        "destination \"{}\" has several ports {ports:?}; name one with port.number",
                        d.host
                    ),
                );
            }
            _ => {}
        }
        if !d.subset.is_empty() && !subsets.has(id.cluster, &fqdn(mesh, id, &d.host), ns, &d.subset)
        {
            ctx.at(
                IST0101,
                id,
                &format!("{path}.subset"),
                format!("referenced host+subset in destinationrule not found: \"{}+{}\" (no DestinationRule for the host defines subset {})", d.host, d.subset, d.subset),
            );
        }
    }
}

/// A comparable form of a match, ignoring its name.
fn match_key(m: &HttpMatchRequest) -> String {
    let mut m = m.clone();
    m.name.clear();
    m.stat_prefix.clear();
    format!("{m:?}")
}

fn check_rules(ctx: &mut Ctx, id: ObjId, spec: &VirtualServiceSpec) {
    let mut catch_all: Option<usize> = None;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in spec.http.iter().enumerate() {
        if let Some(prev) = catch_all {
            ctx.at(
                IST0130,
                id,
                &format!("spec.http[{i}]"),
                format!("rule {i} can never match: rule {prev} before it has no match and takes every request"),
            );
            continue;
        }
        if r.matches.is_empty() {
            catch_all = Some(i);
            continue;
        }
        let mut duplicates = 0;
        for (j, m) in r.matches.iter().enumerate() {
            let key = match_key(m);
            if let Some(prev) = seen.get(&key) {
                duplicates += 1;
                ctx.at(
                    IST0131,
                    id,
                    &format!("spec.http[{i}].match[{j}]"),
                    format!("this match repeats one of rule {prev} and never applies"),
                );
            } else {
                seen.insert(key, i);
            }
        }
        if duplicates == r.matches.len() {
            ctx.at(
                IST0130,
                id,
                &format!("spec.http[{i}]"),
                format!(
                    "rule {i} can never match: every one of its matches is taken by an earlier rule"
                ),
            );
        }
    }
    for (i, r) in spec.http.iter().enumerate() {
        let (Some(timeout), Some(retries)) = (r.timeout, r.retries.as_ref()) else {
            continue;
        };
        let attempts = retries.attempts.unwrap_or(0);
        let Some(per_try) = retries.per_try_timeout else {
            continue;
        };
        if attempts <= 0 || timeout.as_millis() == 0 {
            continue;
        }
        let budget = per_try.as_millis() * u128::from(attempts as u32);
        if per_try.as_millis() >= timeout.as_millis() {
            ctx.at(
                STR0201,
                id,
                &format!("spec.http[{i}].timeout"),
                format!("timeout {timeout} is not longer than perTryTimeout {per_try}: the first attempt uses the whole budget and the {attempts} retries never run"),
            );
        } else if budget > timeout.as_millis() {
            let fit = timeout.as_millis() / per_try.as_millis().max(1);
            ctx.at(
                STR0201,
                id,
                &format!("spec.http[{i}].timeout"),
                format!("timeout {timeout} ends before {attempts} attempts of {per_try} ({}ms) can run; at most {fit} will", budget),
            );
        }
    }
}

fn check_deprecated(ctx: &mut Ctx, id: ObjId, spec: &VirtualServiceSpec) {
    for (i, r) in spec.http.iter().enumerate() {
        if r.fault
            .as_ref()
            .and_then(|f| f.delay.as_ref())
            .and_then(|d| d.percent)
            .is_some()
        {
            ctx.at_key(
                IST0002,
                id,
                &format!("spec.http[{i}].fault.delay.percent"),
                "fault.delay.percent is deprecated; use fault.delay.percentage.value",
            );
        }
        if r.mirror_percent.is_some() || r.mirror_percent_legacy.is_some() {
            let key = if r.mirror_percent.is_some() {
                "mirrorPercent"
            } else {
                "mirror_percent"
            };
            ctx.at_key(
                IST0002,
                id,
                &format!("spec.http[{i}].{key}"),
                format!("{key} is deprecated; use mirrorPercentage.value"),
            );
        }
    }
}

fn check_hosts(ctx: &mut Ctx, id: ObjId, spec: &VirtualServiceSpec) {
    for (i, h) in spec.hosts.iter().enumerate() {
        if let Some(full) = util::truncated_service(ctx.mesh, id, h) {
            ctx.at(
                STR0203,
                id,
                &format!("spec.hosts[{i}]"),
                format!("host \"{h}\" is taken literally and matches no Kubernetes service, so these rules never apply to it; write \"{full}\""),
            );
        }
    }
}

/// IST0149: routing on JWT claims (`@request.auth.claims.*` headers) needs a
/// RequestAuthentication on the gateway pods, or the claims are never set and the match never
/// applies.
fn check_jwt_claim_routing(ctx: &mut Ctx, id: ObjId, ns: &str, spec: &VirtualServiceSpec) {
    let mesh = ctx.mesh;
    let mut claim_paths = Vec::new();
    for (i, r) in spec.http.iter().enumerate() {
        for (j, m) in r.matches.iter().enumerate() {
            for (field, map) in [
                ("headers", &m.headers),
                ("withoutHeaders", &m.without_headers),
            ] {
                for key in map.keys().filter(|k| k.starts_with("@request.auth.claims")) {
                    claim_paths.push((
                        format!("spec.http[{i}].match[{j}].{field}[\"{key}\"]"),
                        key.clone(),
                    ));
                }
            }
        }
    }
    if claim_paths.is_empty() {
        return;
    }
    let cluster = mesh.cluster(id.cluster);
    let root = cluster.root_namespace();
    let mut uncovered = Vec::new();
    for g in spec.gateways.iter().filter(|g| g.as_str() != "mesh") {
        let (gns, name) = util::split_ref(g, ns);
        let Some((_, gw_obj)) = cluster.find(Kind::Gateway, gns, name) else {
            continue;
        };
        let Some(gw) = gw_obj.gateway() else { continue };
        if gw.spec.selector.is_empty() {
            continue;
        }
        for w in mesh.select(id.cluster, "", &gw.spec.selector) {
            let covered =
                util::in_cluster(mesh, id.cluster, Kind::RequestAuthentication).any(|(_, o)| {
                    let Some(ra) = o.request_authentication() else {
                        return false;
                    };
                    let selects = ra.spec.selector.as_ref().is_none_or(|s| {
                        strait_model::selector::map_selects(&s.match_labels, &w.labels)
                    });
                    (o.namespace() == w.namespace || o.namespace() == root)
                        && selects
                        && !ra.spec.jwt_rules.is_empty()
                });
            if !covered {
                uncovered.push(format!("{}/{} (gateway {gns}/{name})", w.namespace, w.name));
            }
        }
    }
    if uncovered.is_empty() {
        return;
    }
    for (path, key) in claim_paths {
        ctx.at_key(
            IST0149,
            id,
            &path,
            format!(
                "routing on JWT claim \"{key}\" needs a RequestAuthentication on the gateway pods, but none applies to {}: the claim is never extracted and this match never applies",
                util::join(&uncovered)
            ),
        );
    }
}

/// IST0109: VirtualServices on the mesh gateway claiming one host in one config cluster.
fn check_conflicting_mesh_hosts(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let mut claims: BTreeMap<(u16, String), Vec<(ObjId, usize)>> = BTreeMap::new();
    for (id, o, vs) in util::virtual_services(mesh) {
        if !util::binds_mesh(&vs.spec.gateways) {
            continue;
        }
        let _ = o;
        for (i, h) in vs.spec.hosts.iter().enumerate() {
            if host::is_wildcard(h) {
                continue;
            }
            claims
                .entry((id.cluster.0, fqdn(mesh, id, h)))
                .or_default()
                .push((id, i));
        }
    }
    for ((_, h), owners) in claims {
        if owners.len() < 2 {
            continue;
        }
        for (k, (id, i)) in owners.iter().enumerate() {
            let vs = mesh.object(*id).virtual_service();
            let export_i = vs.map(|v| {
                host::ExportTo::parse(&v.spec.export_to, mesh.object(*id).namespace(), true)
            });
            let others: Vec<String> = owners
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .filter(|(_, (oid, _))| {
                    let ov = mesh.object(*oid);
                    let oe = ov
                        .virtual_service()
                        .map(|v| host::ExportTo::parse(&v.spec.export_to, ov.namespace(), true));
                    match (&export_i, &oe) {
                        (Some(a), Some(b)) => overlaps(a, b),
                        _ => true,
                    }
                })
                .map(|(_, (oid, _))| mesh.object(*oid).display_name())
                .collect();
            if others.is_empty() {
                continue;
            }
            let f = ctx.at(
                IST0109,
                *id,
                &format!("spec.hosts[{i}]"),
                format!("host {h} is also claimed for the mesh by {}; only one VirtualService per host applies to sidecars (merge them, or use delegation)", util::join(&others)),
            );
            let _ = f;
        }
    }
}

fn overlaps(a: &host::ExportTo, b: &host::ExportTo) -> bool {
    match (a, b) {
        (host::ExportTo::All, _) | (_, host::ExportTo::All) => true,
        (host::ExportTo::Namespaces(x), host::ExportTo::Namespaces(y)) => {
            x.iter().any(|n| y.contains(n))
        }
    }
}

/// IST0140: gateway traffic to a host without subset while mesh rules split it by subset.
fn check_ingress_subsets(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let mut subset_routed: BTreeMap<(u16, String), ObjId> = BTreeMap::new();
    for (id, _, vs) in util::virtual_services(mesh) {
        if !util::binds_mesh(&vs.spec.gateways) {
            continue;
        }
        for (_, d) in destinations(&vs.spec) {
            if !d.subset.is_empty() {
                subset_routed
                    .entry((id.cluster.0, fqdn(mesh, id, &d.host)))
                    .or_insert(id);
            }
        }
    }
    for (id, _, vs) in util::virtual_services(mesh) {
        if util::binds_mesh(&vs.spec.gateways) {
            continue;
        }
        for (path, d) in destinations(&vs.spec) {
            if !d.subset.is_empty() {
                continue;
            }
            let full = fqdn(mesh, id, &d.host);
            if let Some(other) = subset_routed.get(&(id.cluster.0, full.clone())) {
                let other_name = mesh.object(*other).display_name();
                let pos = ctx.pos(*other, "");
                ctx.at(
                    IST0140,
                    id,
                    &format!("{path}.host"),
                    format!("traffic from the gateway to {full} ignores the subset routing of {other_name}: mesh VirtualServices do not apply to gateways; route to the subsets here too"),
                )
                .related("subset routing defined here", pos);
            }
        }
    }
}
