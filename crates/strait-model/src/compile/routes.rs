//! Outbound services and their routing rules (VirtualServices).

use std::collections::{BTreeMap, BTreeSet};

use strait_api::Object;
use strait_api::istio::Percent;
use strait_api::istio::virtual_service::{
    Destination, HeaderOperations, Headers, HttpFaultInjection, HttpMatchRequest, HttpRoute,
    StringMatch, VirtualServiceSpec,
};

use crate::host;
use crate::ids::{ClusterId, ObjId, ServiceId};
use crate::mesh::Mesh;
use crate::protocol::Protocol;
use crate::scope::Scope;
use crate::selector;
use crate::workload::Workload;
use strait_config::types::*;

/// A cluster a route needs: (host, port, subset).
pub(super) type ClusterKey = (String, u32, String);

pub(super) fn app_protocol(p: Protocol) -> AppProtocol {
    match p {
        Protocol::Http | Protocol::HttpProxy => AppProtocol::Http,
        Protocol::Http2 | Protocol::GrpcWeb => AppProtocol::Http2,
        Protocol::Grpc => AppProtocol::Grpc,
        Protocol::Https | Protocol::Tls => AppProtocol::Tls,
        Protocol::Tcp | Protocol::Mongo | Protocol::Redis | Protocol::Mysql | Protocol::Udp => {
            AppProtocol::Tcp
        }
        Protocol::Unsupported => AppProtocol::Auto,
    }
}

/// A VirtualService a proxy may apply, with its hosts expanded.
pub(super) struct Vs<'m> {
    pub id: ObjId,
    pub obj: &'m Object,
    pub spec: &'m VirtualServiceSpec,
    pub hosts: Vec<String>,
}

impl<'m> Vs<'m> {
    /// An indexed VirtualService (hosts already expanded).
    pub fn from_entry(mesh: &'m Mesh, e: &crate::index::VsEntry) -> Option<Self> {
        let obj = mesh.object(e.id);
        Some(Vs {
            id: e.id,
            obj,
            spec: &obj.virtual_service()?.spec,
            hosts: e.hosts.clone(),
        })
    }

    pub fn new(mesh: &Mesh, id: ObjId, obj: &'m Object, spec: &'m VirtualServiceSpec) -> Self {
        let domain = &mesh.cluster(id.cluster).domain;
        Vs {
            id,
            obj,
            spec,
            hosts: spec
                .hosts
                .iter()
                .map(|h| host::fqdn(h, obj.namespace(), domain))
                .collect(),
        }
    }

    /// `namespace/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.obj.namespace(), self.obj.name())
    }
}

/// Where routes are applied: the sidecars (`mesh`), or one Gateway's proxies.
#[derive(Clone, Copy, Debug)]
pub(super) enum Bind<'a> {
    Mesh,
    Gateway { namespace: &'a str, name: &'a str },
}

impl Bind<'_> {
    /// Whether a match-level `gateways` list (empty: inherit the VirtualService's) admits it.
    fn admits(&self, refs: &[String], vs_ns: &str) -> bool {
        if refs.is_empty() {
            return true;
        }
        match self {
            Bind::Mesh => refs.iter().any(|g| g == "mesh"),
            Bind::Gateway { namespace, name } => {
                crate::gateway::names_gateway(refs, vs_ns, namespace, name)
            }
        }
    }
}

/// Builds the services the proxy sees (exported to its namespace and in its Sidecar's egress
/// scope) and returns the clusters their rules reference.
pub(super) fn compile(
    mesh: &Mesh,
    config: ClusterId,
    w: &Workload,
    scope: &Scope,
    out: &mut ProxyConfig,
) -> Vec<ClusterKey> {
    let ns = w.namespace.as_str();
    let index = mesh.index();
    let routing = index.routing(config);
    // A scope naming namespaces only looks at their services, not the mesh's.
    let candidates: Vec<ServiceId> = match scope.namespaces() {
        None => mesh.registry.all().iter().map(|s| s.id).collect(),
        Some(namespaces) => {
            let mut ids: Vec<ServiceId> = namespaces
                .iter()
                .flat_map(|n| index.services_in(n))
                .copied()
                .collect();
            // Registry order: the first instance defining a port gives its protocol.
            ids.sort_unstable();
            ids.dedup();
            ids
        }
    };
    // host -> port -> (protocol, service namespace)
    let mut ports: BTreeMap<&str, BTreeMap<u32, (Protocol, &str)>> = BTreeMap::new();
    // host -> its virtual addresses in every cluster (each cluster gives a Service its own
    // cluster IP; a captured connection may carry any of them).
    let mut addresses: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for id in candidates {
        let s = mesh.registry.get(id);
        if !super::from_config_cluster(s, config)
            || !(s.export_to.visible_to(ns) || s.namespace == ns)
            || !scope.allows(&s.namespace, &s.hostname)
        {
            continue;
        }
        addresses
            .entry(s.hostname.as_str())
            .or_default()
            .extend(s.addresses.iter().map(String::as_str));
        let entry = ports.entry(s.hostname.as_str()).or_default();
        for p in &s.ports {
            entry
                .entry(p.number)
                .or_insert((p.protocol, s.namespace.as_str()));
        }
    }
    let mut needed = Vec::new();
    for (hostname, by_port) in &ports {
        let vs = routing
            .and_then(|r| r.virtual_service_for(hostname, ns, scope))
            .and_then(|e| Vs::from_entry(mesh, e));
        let vs = vs.as_ref();
        for (port, (protocol, svc_ns)) in by_port {
            let protocol = app_protocol(*protocol);
            let mut sp = ServicePort {
                host: hostname.to_string(),
                port: *port,
                namespace: svc_ns.to_string(),
                protocol,
                http: Vec::new(),
                tcp: Vec::new(),
                virtual_service: vs.map(|v| format!("{}/{}", v.obj.namespace(), v.obj.name())),
                addresses: addresses
                    .get(hostname)
                    .into_iter()
                    .flatten()
                    .map(|a| a.to_string())
                    .collect(),
            };
            if let Some(v) = vs {
                if protocol == AppProtocol::Tcp || protocol == AppProtocol::Tls {
                    sp.tcp = tcp_routes(mesh, v, *port, hostname, w, Bind::Mesh, &mut needed);
                } else {
                    sp.http = http_rules(mesh, v, *port, hostname, w, Bind::Mesh, &mut needed);
                }
            }
            if sp.http.is_empty() && !matches!(protocol, AppProtocol::Tcp | AppProtocol::Tls) {
                needed.push((hostname.to_string(), *port, String::new()));
                sp.http.push(HttpRule {
                    name: "default".into(),
                    matches: Vec::new(),
                    action: HttpAction::Route(vec![WeightedCluster {
                        cluster: cluster_name(*port, "", hostname),
                        weight: 100,
                        ..WeightedCluster::default()
                    }]),
                    timeout_ms: None,
                    retries: Retry::istio_default(),
                    policy: RoutePolicy::default(),
                });
            }
            if sp.tcp.is_empty() {
                needed.push((hostname.to_string(), *port, String::new()));
                sp.tcp.push(WeightedCluster {
                    cluster: cluster_name(*port, "", hostname),
                    weight: 100,
                    ..WeightedCluster::default()
                });
            }
            out.services.insert(format!("{hostname}:{port}"), sp);
        }
    }
    needed
}

fn str_match(m: &StringMatch) -> Option<StrMatch> {
    if let Some(e) = &m.exact {
        Some(StrMatch::Exact(e.clone()))
    } else if let Some(p) = &m.prefix {
        Some(StrMatch::Prefix(p.clone()))
    } else {
        m.regex.as_ref().map(|r| StrMatch::Regex(r.clone()))
    }
}

/// A VirtualService match as the proxy evaluates it, or `None` when it cannot apply to this
/// proxy and port (another port, other source labels or namespace, other gateways).
fn request_match(
    m: &HttpMatchRequest,
    port: u32,
    w: &Workload,
    bind: Bind,
    vs_ns: &str,
) -> Option<RequestMatch> {
    if m.port.is_some_and(|p| p != port) {
        return None;
    }
    if !bind.admits(&m.gateways, vs_ns) {
        return None;
    }
    if !m.source_labels.is_empty() && !selector::map_selects(&m.source_labels, &w.labels) {
        return None;
    }
    if !m.source_namespace.is_empty() && m.source_namespace != w.namespace {
        return None;
    }
    let header = |k: &String, v, invert| {
        let claim = jwt_claim(k).unwrap_or_default();
        HeaderMatch {
            // A claim's name keeps its case; a header's does not matter.
            name: if claim.is_empty() {
                k.to_ascii_lowercase()
            } else {
                k.clone()
            },
            value: str_match(v),
            invert,
            claim,
        }
    };
    let mut headers: Vec<HeaderMatch> =
        m.headers.iter().map(|(k, v)| header(k, v, false)).collect();
    headers.extend(m.without_headers.iter().map(|(k, v)| header(k, v, true)));
    Some(RequestMatch {
        uri: m.uri.as_ref().and_then(str_match),
        method: m.method.as_ref().and_then(str_match),
        authority: m.authority.as_ref().and_then(str_match),
        scheme: m.scheme.as_ref().and_then(str_match),
        headers,
        query: m
            .query_params
            .iter()
            .filter_map(|(k, v)| str_match(v).map(|s| (k.clone(), s)))
            .collect(),
        ignore_uri_case: m.ignore_uri_case,
    })
}

/// The cluster a destination names; a destination without a port inherits the port the
/// request came on when its service has it, else the service's only port.
fn destination_cluster(
    mesh: &Mesh,
    vs: &Vs,
    d: &Destination,
    port: u32,
    hostname: &str,
    needed: &mut Vec<ClusterKey>,
) -> String {
    let dest_host = host::fqdn(
        &d.host,
        vs.obj.namespace(),
        &mesh.cluster(vs.id.cluster).domain,
    );
    let dest_port = d.port.as_ref().map(|p| p.number).unwrap_or_else(|| {
        if dest_host == hostname {
            port
        } else {
            let ports: Vec<u32> = mesh
                .registry
                .resolve_any(&dest_host)
                .iter()
                .flat_map(|s| s.ports.iter().map(|p| p.number))
                .collect();
            if ports.contains(&port) || ports.is_empty() {
                port
            } else {
                ports[0]
            }
        }
    });
    needed.push((dest_host.clone(), dest_port, d.subset.clone()));
    cluster_name(dest_port, &d.subset, &dest_host)
}

/// Weights as Istio reads them: unset everywhere means an even split; unset next to set
/// weights means zero.
fn weights(raw: &[Option<i32>]) -> Vec<u32> {
    if raw.iter().all(Option::is_none) {
        return vec![1; raw.len()];
    }
    raw.iter().map(|w| w.unwrap_or(0).max(0) as u32).collect()
}

pub(super) fn http_rules(
    mesh: &Mesh,
    vs: &Vs,
    port: u32,
    hostname: &str,
    w: &Workload,
    bind: Bind,
    needed: &mut Vec<ClusterKey>,
) -> Vec<HttpRule> {
    let mut out = Vec::new();
    for (i, r) in vs.spec.http.iter().enumerate() {
        let matches: Vec<RequestMatch> = r
            .matches
            .iter()
            .filter_map(|m| request_match(m, port, w, bind, vs.obj.namespace()))
            .collect();
        if !r.matches.is_empty() && matches.is_empty() {
            continue;
        }
        let action = http_action(mesh, vs, r, port, hostname, needed);
        out.push(HttpRule {
            name: if r.name.is_empty() {
                format!("{}.{}/{i}", vs.obj.name(), vs.obj.namespace())
            } else {
                r.name.clone()
            },
            matches,
            action,
            timeout_ms: r.timeout.map(|t| t.as_millis() as u64).filter(|t| *t > 0),
            retries: match &r.retries {
                Some(rt) => Retry {
                    attempts: rt.attempts.unwrap_or(0).max(0) as u32,
                    per_try_timeout_ms: rt.per_try_timeout.map(|t| t.as_millis() as u64),
                    retry_on: if rt.retry_on.is_empty() {
                        Retry::istio_default().retry_on
                    } else {
                        rt.retry_on
                            .split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    },
                },
                None => Retry::istio_default(),
            },
            policy: RoutePolicy {
                rewrite: r.rewrite.as_ref().map(|rw| Rewrite {
                    uri: rw.uri.clone(),
                    uri_regex: rw
                        .uri_regex_rewrite
                        .as_ref()
                        .map(|x| (x.matches.clone(), x.rewrite.clone())),
                    authority: rw.authority.clone(),
                }),
                headers: header_rules(r.headers.as_deref()),
                fault: r.fault.as_deref().map(fault),
            },
        });
    }
    out
}

fn header_ops(ops: Option<&HeaderOperations>) -> HeaderOps {
    let Some(ops) = ops else {
        return HeaderOps::default();
    };
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    };
    HeaderOps {
        set: pairs(&ops.set),
        add: pairs(&ops.add),
        remove: ops.remove.iter().map(|h| h.to_ascii_lowercase()).collect(),
    }
}

fn header_rules(h: Option<&Headers>) -> HeaderRules {
    HeaderRules {
        request: header_ops(h.and_then(|h| h.request.as_ref())),
        response: header_ops(h.and_then(|h| h.response.as_ref())),
    }
}

/// A share as Istio reads it: `percentage.value` (0–100), else the deprecated integer
/// `percent`, else none of the requests.
fn per_million(percentage: Option<&Percent>, percent: Option<i32>) -> u32 {
    let pct = percentage.map_or_else(|| f64::from(percent.unwrap_or(0)), |p| p.value);
    (pct.clamp(0.0, 100.0) * 10_000.0).round() as u32
}

fn fault(f: &HttpFaultInjection) -> Fault {
    let delay = f.delay.as_ref();
    let abort = f.abort.as_ref();
    Fault {
        delay_ms: delay
            .and_then(|d| d.fixed_delay)
            .map(|t| t.as_millis() as u64),
        delay_per_million: delay.map_or(0, |d| per_million(d.percentage.as_ref(), d.percent)),
        abort_status: abort
            .and_then(|a| a.http_status)
            .and_then(|s| u16::try_from(s).ok()),
        abort_per_million: abort.map_or(0, |a| per_million(a.percentage.as_ref(), None)),
    }
}

fn http_action(
    mesh: &Mesh,
    vs: &Vs,
    r: &HttpRoute,
    port: u32,
    hostname: &str,
    needed: &mut Vec<ClusterKey>,
) -> HttpAction {
    if let Some(d) = &r.direct_response {
        return HttpAction::Respond {
            status: d.status.min(999) as u16,
            body: d
                .body
                .as_ref()
                .and_then(|b| b.string.clone())
                .unwrap_or_default(),
        };
    }
    if let Some(red) = &r.redirect {
        return HttpAction::Redirect {
            uri: red.uri.clone(),
            authority: red.authority.clone(),
            code: red.redirect_code.unwrap_or(301).min(999) as u16,
        };
    }
    let ws = weights(&r.route.iter().map(|d| d.weight).collect::<Vec<_>>());
    HttpAction::Route(
        r.route
            .iter()
            .zip(ws)
            .filter_map(|(d, weight)| {
                let dest = d.destination.as_ref()?;
                Some(WeightedCluster {
                    cluster: destination_cluster(mesh, vs, dest, port, hostname, needed),
                    weight,
                    headers: header_rules(d.headers.as_ref()),
                })
            })
            .collect(),
    )
}

pub(super) fn tcp_routes(
    mesh: &Mesh,
    vs: &Vs,
    port: u32,
    hostname: &str,
    w: &Workload,
    bind: Bind,
    needed: &mut Vec<ClusterKey>,
) -> Vec<WeightedCluster> {
    let ns = vs.obj.namespace();
    for r in &vs.spec.tcp {
        let applies = r.matches.is_empty()
            || r.matches.iter().any(|m| {
                m.port.is_none_or(|p| p == port)
                    && (m.source_labels.is_empty()
                        || selector::map_selects(&m.source_labels, &w.labels))
                    && (m.source_namespace.is_empty() || m.source_namespace == w.namespace)
                    && bind.admits(&m.gateways, ns)
            });
        if applies {
            return route_destinations(mesh, vs, &r.route, port, hostname, needed);
        }
    }
    Vec::new()
}

/// The TLS routes of a VirtualService bound to a gateway, for server `port`: each matching
/// route's SNI hosts, and where its connections go (first match wins, as Envoy's filter
/// chains).
pub(super) fn tls_routes(
    mesh: &Mesh,
    vs: &Vs,
    port: u32,
    w: &Workload,
    bind: Bind,
    needed: &mut Vec<ClusterKey>,
) -> Vec<(Vec<String>, Vec<WeightedCluster>)> {
    let ns = vs.obj.namespace();
    let mut out = Vec::new();
    for r in &vs.spec.tls {
        let snis: Vec<String> = r
            .matches
            .iter()
            .filter(|m| {
                m.port.is_none_or(|p| p == port)
                    && (m.source_labels.is_empty()
                        || selector::map_selects(&m.source_labels, &w.labels))
                    && bind.admits(&m.gateways, ns)
            })
            .flat_map(|m| m.sni_hosts.iter().map(|h| h.to_ascii_lowercase()))
            .collect();
        if snis.is_empty() {
            continue;
        }
        let route = route_destinations(mesh, vs, &r.route, port, "", needed);
        out.push((snis, route));
    }
    out
}

fn route_destinations(
    mesh: &Mesh,
    vs: &Vs,
    route: &[strait_api::istio::virtual_service::RouteDestination],
    port: u32,
    hostname: &str,
    needed: &mut Vec<ClusterKey>,
) -> Vec<WeightedCluster> {
    let ws = weights(&route.iter().map(|d| d.weight).collect::<Vec<_>>());
    route
        .iter()
        .zip(ws)
        .filter_map(|(d, weight)| {
            let dest = d.destination.as_ref()?;
            Some(WeightedCluster {
                cluster: destination_cluster(mesh, vs, dest, port, hostname, needed),
                weight,
                ..WeightedCluster::default()
            })
        })
        .collect()
}

/// A VirtualService header key naming a claim of the request's verified JWT:
/// `@request.auth.claims.<name>` (nested names separated by `.`) or
/// `@request.auth.claims[<name>][<nested>]`. Only a proxy that verified the token (a gateway
/// with a RequestAuthentication) can match it; elsewhere such a match never holds.
pub fn jwt_claim(key: &str) -> Option<Vec<String>> {
    let rest = key.strip_prefix("@request.auth.claims")?;
    let Some(dotted) = rest.strip_prefix('.') else {
        return super::authz::bracketed(rest);
    };
    let names: Vec<String> = dotted.split('.').map(str::to_string).collect();
    names.iter().all(|n| !n.is_empty()).then_some(names)
}

#[cfg(test)]
mod claim_keys {
    use super::jwt_claim;

    #[test]
    fn claim_keys_in_both_spellings() {
        let v = |names: &[&str]| Some(names.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(jwt_claim("@request.auth.claims.groups"), v(&["groups"]));
        assert_eq!(
            jwt_claim("@request.auth.claims.realm.roles"),
            v(&["realm", "roles"])
        );
        assert_eq!(
            jwt_claim("@request.auth.claims[realm][roles]"),
            v(&["realm", "roles"])
        );
        assert_eq!(jwt_claim("@request.auth.claims"), None);
        assert_eq!(jwt_claim("@request.auth.claims..x"), None);
        assert_eq!(jwt_claim("x-user"), None);
    }
}
