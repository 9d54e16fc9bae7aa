//! STR0204: a VirtualService on a public ingress gateway that routes to a service that looks
//! internal — exported only to its own namespace, part of the control plane or its add-ons,
//! a database or cache, or an admin/debug/metrics endpoint nothing protects.
//!
//! "Public" means an ingress gateway (not east-west, not egress) whose Service is a
//! LoadBalancer without an internal-load-balancer annotation, a NodePort, or has external IPs;
//! a gateway whose Services are all cluster-internal is left alone.

use std::collections::BTreeMap;

use strait_api::Kind;
use strait_api::istio::security::{AuthorizationAction, AuthorizationPolicySpec};
use strait_api::istio::virtual_service::{Destination, VirtualServiceSpec};
use strait_model::service::ServiceType;
use strait_model::{
    ClusterId, GatewayRole, Mesh, Protocol, ServiceInstance, ServiceSource, Workload, host,
    selector,
};

use super::Gw;
use crate::catalog::STR0204;
use crate::checks::util::{self, join};
use crate::context::Ctx;

/// Ports databases, caches and search engines listen on by default.
const DATA_PORTS: &[(u32, &str)] = &[
    (3306, "MySQL"),
    (5432, "PostgreSQL"),
    (6379, "Redis"),
    (27017, "MongoDB"),
    (9200, "Elasticsearch"),
    (11211, "Memcached"),
];

/// Name parts that mark an endpoint meant for operators, not the public.
const INTERNAL_WORDS: &[&str] = &["admin", "internal", "debug", "metrics", "actuator", "pprof"];

/// Annotations cloud providers use for a load balancer on the private network.
const INTERNAL_LB: &[(&str, &str)] = &[
    ("service.beta.kubernetes.io/aws-load-balancer-internal", ""),
    (
        "service.beta.kubernetes.io/aws-load-balancer-scheme",
        "internal",
    ),
    ("networking.gke.io/load-balancer-type", "internal"),
    ("cloud.google.com/load-balancer-type", "internal"),
    (
        "service.beta.kubernetes.io/azure-load-balancer-internal",
        "true",
    ),
    (
        "service.beta.kubernetes.io/oci-load-balancer-internal",
        "true",
    ),
    (
        "service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type",
        "private",
    ),
];

/// Whether a Service of a gateway takes traffic from outside the cluster network.
fn externally_reachable(mesh: &Mesh, s: &ServiceInstance) -> bool {
    if !s.external_addresses.is_empty() && s.service_type != Some(ServiceType::LoadBalancer) {
        return true;
    }
    match s.service_type {
        Some(ServiceType::NodePort) => true,
        Some(ServiceType::LoadBalancer) => {
            if s.source != ServiceSource::Kubernetes {
                return true;
            }
            let o = mesh.object(s.object);
            !INTERNAL_LB.iter().any(|(key, value)| {
                o.annotation(key).is_some_and(|v| {
                    let v = v.to_ascii_lowercase();
                    if value.is_empty() {
                        v != "false"
                    } else {
                        v == *value
                    }
                })
            })
        }
        _ => false,
    }
}

/// Whether a gateway workload's name or labels say it serves a private network.
fn named_internal(w: &Workload) -> bool {
    let words = ["internal", "private", "ilb"];
    let mut names = vec![w.name.as_str()];
    names.extend(w.label("istio"));
    names.extend(w.label("app"));
    names
        .iter()
        .any(|n| words.iter().any(|x| n.to_ascii_lowercase().contains(x)))
}

/// Whether a Gateway is served by an ingress gateway reachable from outside the cluster.
fn public_ingress(mesh: &Mesh, g: &Gw) -> bool {
    g.proxies.iter().any(|w| {
        if w.gateway != Some(GatewayRole::Ingress) {
            return false;
        }
        let services = mesh.services_of(w);
        if services.is_empty() {
            return !named_internal(w);
        }
        services.iter().any(|s| externally_reachable(mesh, s))
    })
}

/// A route destination with the gateways its rule applies to.
pub(in crate::checks) struct Route<'a> {
    pub path: String,
    pub http: bool,
    pub dest: &'a Destination,
    pub gateways: Vec<&'a str>,
}

/// The gateways a rule applies to: each match's own `gateways`, or the VirtualService's.
fn rule_gateways<'a>(vs: &'a [String], matches: Vec<&'a [String]>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    if matches.is_empty() {
        out.extend(vs.iter().map(String::as_str));
    }
    for m in matches {
        let list = if m.is_empty() { vs } else { m };
        out.extend(list.iter().map(String::as_str));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Every route destination (mirrors excluded: their responses are dropped).
pub(in crate::checks) fn routes(spec: &VirtualServiceSpec) -> Vec<Route<'_>> {
    let mut out = Vec::new();
    for (i, r) in spec.http.iter().enumerate() {
        let gateways = rule_gateways(
            &spec.gateways,
            r.matches.iter().map(|m| m.gateways.as_slice()).collect(),
        );
        for (j, d) in r.route.iter().enumerate() {
            if let Some(dest) = &d.destination {
                out.push(Route {
                    path: format!("spec.http[{i}].route[{j}].destination.host"),
                    http: true,
                    dest,
                    gateways: gateways.clone(),
                });
            }
        }
    }
    for (i, r) in spec.tls.iter().enumerate() {
        let gateways = rule_gateways(
            &spec.gateways,
            r.matches.iter().map(|m| m.gateways.as_slice()).collect(),
        );
        for (j, d) in r.route.iter().enumerate() {
            if let Some(dest) = &d.destination {
                out.push(Route {
                    path: format!("spec.tls[{i}].route[{j}].destination.host"),
                    http: false,
                    dest,
                    gateways: gateways.clone(),
                });
            }
        }
    }
    for (i, r) in spec.tcp.iter().enumerate() {
        let gateways = rule_gateways(
            &spec.gateways,
            r.matches.iter().map(|m| m.gateways.as_slice()).collect(),
        );
        for (j, d) in r.route.iter().enumerate() {
            if let Some(dest) = &d.destination {
                out.push(Route {
                    path: format!("spec.tcp[{i}].route[{j}].destination.host"),
                    http: false,
                    dest,
                    gateways: gateways.clone(),
                });
            }
        }
    }
    out
}

/// The server hosts of `g` a VirtualService in `ns` with `hosts` attaches to.
fn served_hosts(g: &Gw, hosts: &[String], ns: &str) -> bool {
    g.spec.servers.iter().flat_map(|s| s.hosts.iter()).any(|h| {
        let sh = host::ScopedHost::parse(h);
        sh.allows_namespace(ns, g.namespace) && hosts.iter().any(|vh| host::matches(vh, &sh.host))
    })
}

/// A plain-HTTP server of `g` that takes any host, if the VirtualService also takes any host.
fn catch_all(g: &Gw, hosts: &[String]) -> Option<u32> {
    if !hosts.iter().any(|h| h == "*") {
        return None;
    }
    g.spec
        .servers
        .iter()
        .filter(|s| {
            s.tls.is_none()
                && s.hosts
                    .iter()
                    .any(|h| host::ScopedHost::parse(h).host == "*")
        })
        .filter_map(|s| s.port.as_ref())
        .find(|p| matches!(p.protocol.to_ascii_uppercase().as_str(), "HTTP" | "HTTP2"))
        .map(|p| p.number)
}

pub(super) fn check(ctx: &mut Ctx, cluster: ClusterId, gws: &[Gw]) {
    let mesh = ctx.mesh;
    let public: BTreeMap<(&str, &str), &Gw> = gws
        .iter()
        .filter(|g| public_ingress(mesh, g))
        .map(|g| ((g.namespace, g.name), g))
        .collect();
    if public.is_empty() {
        return;
    }
    for (id, o) in util::in_cluster(mesh, cluster, Kind::VirtualService) {
        let Some(vs) = o.virtual_service() else {
            continue;
        };
        let ns = o.namespace();
        for r in routes(&vs.spec) {
            let Some(g) = r
                .gateways
                .iter()
                .filter_map(|gref| public.get(&util::split_ref(gref, ns)).copied())
                .find(|g| served_hosts(g, &vs.spec.hosts, ns))
            else {
                continue;
            };
            let port = r.dest.port.as_ref().map(|p| p.number).filter(|n| *n != 0);
            let services = util::resolve(mesh, id, &r.dest.host);
            let Some((s, (reasons, guardable))) = services
                .iter()
                .filter(|s| s.source == ServiceSource::Kubernetes)
                .find_map(|s| {
                    let found = internal_reasons(mesh, s, port, g);
                    (!found.0.is_empty()).then_some((*s, found))
                })
            else {
                continue;
            };
            let scope = match catch_all(g, &vs.spec.hosts).filter(|_| r.http) {
                Some(p) => format!(
                    " for every host name on port {p} (both the Gateway and this VirtualService take hosts \"*\")"
                ),
                None => String::new(),
            };
            let fix = if guardable {
                "restrict the route to the paths meant to be public, protect the service with an AuthorizationPolicy (and a RequestAuthentication for end users), or remove the route"
            } else {
                "remove the route, or serve it from a gateway on a private network"
            };
            ctx.at(
                STR0204,
                id,
                &r.path,
                format!(
                    "this route exposes {}/{} through the public ingress gateway {}/{}{scope}, but the service looks internal: {}; {fix}",
                    s.namespace,
                    s.name,
                    g.namespace,
                    g.name,
                    join(&reasons)
                ),
            );
        }
    }
}

/// The ports a destination reaches: the one it names, or the service's only port.
fn routed_ports(s: &ServiceInstance, port: Option<u32>) -> Vec<&strait_model::service::Port> {
    match port {
        Some(n) => s.port(n).into_iter().collect(),
        None if s.ports.len() == 1 => s.ports.iter().collect(),
        None => Vec::new(),
    }
}

/// Words of a name (`payments-admin-api` → payments, admin, api).
fn words(name: &str) -> impl Iterator<Item = String> + '_ {
    name.split(['-', '.', '_']).map(str::to_ascii_lowercase)
}

/// Why a service looks internal (empty when it does not), and whether an authorization policy
/// would settle every reason.
fn internal_reasons(
    mesh: &Mesh,
    s: &ServiceInstance,
    port: Option<u32>,
    g: &Gw,
) -> (Vec<String>, bool) {
    let mut hard = Vec::new();
    let o = mesh.object(s.object);
    if o.annotation("networking.istio.io/exportTo").is_some()
        && s.export_to.is_private(&s.namespace)
    {
        hard.push(format!(
            "its Service is exported only to namespace {} (networking.istio.io/exportTo)",
            s.namespace
        ));
    }
    for p in routed_ports(s, port) {
        let proto = match p.protocol {
            Protocol::Mongo | Protocol::Redis | Protocol::Mysql => {
                Some(p.protocol.name().to_string())
            }
            _ => DATA_PORTS
                .iter()
                .find(|(n, _)| *n == p.number)
                .map(|(_, name)| name.to_string()),
        };
        if let Some(proto) = proto {
            hard.push(format!(
                "port {} is a {proto} port, a data store that should never face the internet",
                p.number
            ));
        }
    }
    let mut soft = Vec::new();
    let c = mesh.cluster(s.cluster);
    if s.namespace == c.istio_namespace || s.namespace == "kube-system" {
        soft.push(format!(
            "it runs in {}, the namespace of the control plane and its add-ons",
            s.namespace
        ));
    }
    if let Some(w) = words(&s.name).find(|w| INTERNAL_WORDS.contains(&w.as_str())) {
        soft.push(format!("its name says \"{w}\""));
    }
    for p in routed_ports(s, port) {
        if let Some(w) = words(&p.name).find(|w| INTERNAL_WORDS.contains(&w.as_str())) {
            soft.push(format!(
                "the routed port {} is named {} (\"{w}\")",
                p.number, p.name
            ));
        }
    }
    let guardable = hard.is_empty();
    if !soft.is_empty() && !protected(mesh, s, g) {
        hard.extend(soft);
    }
    (hard, guardable)
}

/// Whether an AuthorizationPolicy restricts access (DENY, CUSTOM, deny-all ALLOW, or ALLOW
/// whose every rule has conditions).
fn restricts(spec: &AuthorizationPolicySpec) -> bool {
    match spec.action.unwrap_or(AuthorizationAction::Allow) {
        AuthorizationAction::Deny | AuthorizationAction::Custom => true,
        AuthorizationAction::Audit => false,
        AuthorizationAction::Allow => spec
            .rules
            .iter()
            .all(|r| !(r.from.is_empty() && r.to.is_empty() && r.when.is_empty())),
    }
}

/// Whether an AuthorizationPolicy or RequestAuthentication guards the service's pods or the
/// gateway's.
fn protected(mesh: &Mesh, s: &ServiceInstance, g: &Gw) -> bool {
    let config = mesh.config_cluster(s.cluster);
    let root = mesh.cluster(config).root_namespace();
    let endpoints = mesh.endpoints_of(s);
    let applies = |ns: &str, sel: Option<&BTreeMap<String, String>>| -> bool {
        let sel = sel.filter(|m| !m.is_empty());
        let to_service = (ns == s.namespace || ns == root)
            && match sel {
                None => true,
                Some(sel) => {
                    endpoints
                        .iter()
                        .any(|w| selector::map_selects(sel, &w.labels))
                        || (endpoints.is_empty()
                            && s.selector
                                .as_ref()
                                .is_some_and(|ss| selector::may_overlap(ss, sel)))
                }
            };
        let to_gateway = g.proxies.iter().any(|w| {
            (ns == w.namespace || ns == root)
                && sel.is_none_or(|sel| selector::map_selects(sel, &w.labels))
        });
        to_service || to_gateway
    };
    let by_policy = util::in_cluster(mesh, config, Kind::AuthorizationPolicy).any(|(_, o)| {
        o.authorization_policy().is_some_and(|ap| {
            restricts(&ap.spec)
                && applies(
                    o.namespace(),
                    ap.spec.selector.as_ref().map(|m| &m.match_labels),
                )
        })
    });
    by_policy
        || util::in_cluster(mesh, config, Kind::RequestAuthentication).any(|(_, o)| {
            o.request_authentication().is_some_and(|ra| {
                applies(
                    o.namespace(),
                    ra.spec.selector.as_ref().map(|m| &m.match_labels),
                )
            })
        })
}
