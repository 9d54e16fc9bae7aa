//! VirtualService checks: references (gateways, hosts, ports, subsets), gateway host
//! coverage, deprecated fields here; conflicting mesh hosts, unreachable rules and JWT claim
//! routing in the submodules.

mod jwt;
mod mesh_hosts;
mod rules;

use std::collections::{BTreeMap, HashMap};

use strait_api::Kind;
use strait_api::istio::virtual_service::VirtualServiceSpec;
use strait_model::{ClusterId, ObjId, host};

use super::util::{self, fqdn};
use crate::catalog::{IST0002, IST0101, IST0112, IST0132, IST0140, IST0165, STR0203};
use crate::context::Ctx;

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
        check_routes_without_destination(ctx, id, &vs.spec);
        rules::check(ctx, id, &vs.spec);
        check_deprecated(ctx, id, &vs.spec);
        check_hosts(ctx, id, &vs.spec);
        jwt::check(ctx, id, o.namespace(), &vs.spec);
    }
    mesh_hosts::check(ctx);
    check_ingress_subsets(ctx);
}

fn check_gateways(ctx: &mut Ctx, id: ObjId, ns: &str, spec: &VirtualServiceSpec) {
    let mesh = ctx.mesh;
    for (path, g) in gateway_refs(spec) {
        if g == "mesh" {
            continue;
        }
        if is_internal_gateway(g) {
            ctx.at(IST0165, id, &path, format!("gateway \"{g}\" is the internal Gateway Istio generates for a listener of a Gateway API Gateway; its name is an implementation detail that can change: reference the Gateway API Gateway itself (namespace/name)"));
            continue;
        }
        let (gns, name) = util::split_ref(g, ns);
        let top_level = path.starts_with("spec.gateways");
        let c = mesh.cluster(id.cluster);
        // A VirtualService may bind to a Gateway API Gateway by its namespace/name too.
        if c.find(Kind::Gateway, gns, name).is_none()
            && c.find(Kind::KubeGateway, gns, name).is_none()
        {
            ctx.not_found(IST0101, id, &path, format!("referenced gateway not found: \"{gns}/{name}\" (no Gateway of that name in cluster {})", c.name));
            // Istio reports the hosts as not served too: a missing Gateway serves nothing.
            if top_level && !spec.hosts.is_empty() {
                ctx.not_found(
                    IST0132,
                    id,
                    &path,
                    format!(
                        "gateway {gns}/{name} does not exist, so it serves none of the hosts {} and they are not reachable through it",
                        quoted(&spec.hosts)
                    ),
                );
            }
            continue;
        }
        if top_level {
            check_host_in_gateway(ctx, id, ns, spec, &path, gns, name);
        }
    }
}

/// Istio's rule for a reference to the Gateway it generates from a Gateway API Gateway
/// (`<gateway>~istio-autogenerated-k8s-gateway~<listener>`, optionally `namespace/`-prefixed).
fn is_internal_gateway(reference: &str) -> bool {
    let name = reference.split_once('/').map_or(reference, |(_, n)| n);
    name.contains("~istio-autogenerated-k8s-gateway~")
}

fn quoted(hosts: &[String]) -> String {
    util::join(&hosts.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>())
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
    let c = ctx.mesh.cluster(id.cluster);
    let allowed: Vec<String> = if let Some((_, gw_obj)) = c.find(Kind::Gateway, gns, name) {
        let Some(gw) = gw_obj.gateway() else { return };
        gw.spec
            .servers
            .iter()
            .flat_map(|s| s.hosts.iter())
            .map(|h| host::ScopedHost::parse(h))
            .filter(|h| h.allows_namespace(ns, gw_obj.namespace()))
            .map(|h| h.host)
            .collect()
    } else if let Some(gw) = c
        .find(Kind::KubeGateway, gns, name)
        .and_then(|(_, o)| o.kube_gateway())
    {
        // A listener without a hostname accepts every host.
        gw.spec
            .listeners
            .iter()
            .map(|l| {
                if l.hostname.is_empty() {
                    "*".to_string()
                } else {
                    l.hostname.clone()
                }
            })
            .collect()
    } else {
        return;
    };
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
                quoted(&spec.hosts)
            ),
        )
        .related("the gateway is referenced here", pos);
    }
}

/// A route entry with no destination (`- {}`) sends to no host: Istio reports the empty host as
/// not found.
fn check_routes_without_destination(ctx: &mut Ctx, id: ObjId, spec: &VirtualServiceSpec) {
    // Per route kind, per route: whether each of its entries names a destination.
    let named: [(&str, Vec<Vec<bool>>); 3] = [
        (
            "http",
            spec.http
                .iter()
                .map(|r| r.route.iter().map(|d| d.destination.is_some()).collect())
                .collect(),
        ),
        (
            "tls",
            spec.tls
                .iter()
                .map(|r| r.route.iter().map(|d| d.destination.is_some()).collect())
                .collect(),
        ),
        (
            "tcp",
            spec.tcp
                .iter()
                .map(|r| r.route.iter().map(|d| d.destination.is_some()).collect())
                .collect(),
        ),
    ];
    for (kind, routes) in named {
        for (i, entries) in routes.iter().enumerate() {
            for (j, _) in entries.iter().enumerate().filter(|(_, named)| !**named) {
                let at = format!("spec.{kind}[{i}].route[{j}]");
                ctx.at(
                    IST0101,
                    id,
                    &at,
                    format!("referenced host not found: \"\" ({at} has no destination, so it routes to no host)"),
                );
            }
        }
    }
}

fn check_destinations(ctx: &mut Ctx, id: ObjId, spec: &VirtualServiceSpec, subsets: &SubsetIndex) {
    let mesh = ctx.mesh;
    let obj = mesh.object(id);
    let ns = obj.namespace();
    // The namespaces whose sidecars use this VirtualService: its own, or those its exportTo
    // names. A destination must be visible from one of them, as istioctl checks it.
    let viewers: Vec<String> = match host::ExportTo::parse(&spec.export_to, ns, false) {
        host::ExportTo::Namespaces(list) if !list.is_empty() => list,
        // Everywhere, or (`~`) nowhere: judged from its own namespace.
        _ => vec![ns.to_string()],
    };
    for (path, d) in spec.destinations() {
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
        let full = fqdn(mesh, id, &d.host);
        let services: Vec<_> = viewers
            .iter()
            .flat_map(|v| mesh.registry.resolve(&full, v))
            .collect();
        if services.is_empty() {
            let hidden = mesh.registry.resolve_any(&full);
            let field = format!("{path}.host");
            if let Some(s) = hidden.first() {
                // The host is in the input, only not visible from here: a real fault.
                let msg = format!(
                    "referenced host \"{}\" exists but is not exported to namespace {} (exportTo of {} {}/{})",
                    d.host,
                    util::join(&viewers),
                    if s.source == strait_model::ServiceSource::ServiceEntry {
                        "ServiceEntry"
                    } else {
                        "Service"
                    },
                    s.namespace,
                    s.name
                );
                ctx.at(IST0101, id, &field, msg);
            } else {
                let msg = format!(
                    "referenced host not found: \"{}\" ({full}) is neither a Service nor a ServiceEntry host in any cluster",
                    d.host
                );
                ctx.not_found(IST0101, id, &field, msg);
            }
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
            // Istio requires the port whenever the service has several, for every route and
            // mirror destination, mesh-bound or not (the API reference says so as well).
            None if ports.len() > 1 => {
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
            ctx.not_found(
                IST0101,
                id,
                &format!("{path}.subset"),
                format!("referenced host+subset in destinationrule not found: \"{}+{}\" (no DestinationRule for the host defines subset {})", d.host, d.subset, d.subset),
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

/// IST0140: gateway traffic to a host without subset while mesh rules split it by subset.
fn check_ingress_subsets(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let mut subset_routed: BTreeMap<(u16, String), ObjId> = BTreeMap::new();
    for (id, _, vs) in util::virtual_services(mesh) {
        if !util::binds_mesh(&vs.spec.gateways) {
            continue;
        }
        for (_, d) in vs.spec.destinations() {
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
        for (path, d) in vs.spec.destinations() {
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
