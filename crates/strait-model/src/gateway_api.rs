//! The Kubernetes Gateway API as istiod reads it: which Gateways are Istio's (by their class),
//! which routes attach to which listeners, and which cross-namespace references a
//! ReferenceGrant permits. The analyzer checks manifests with it and the not-served report
//! ([`crate::unsupported`]) names what Istio would serve.

use strait_api::gateway_api::routes::{BackendRef, ParentReference};
use strait_api::gateway_api::{self as api, BUILTIN_CLASSES, ISTIO_CONTROLLER, Listener};
use strait_api::{Kind, Object};

use crate::ObjId;
use crate::cluster::Cluster;
use crate::mesh::Mesh;
use crate::selector;

/// Who serves a Gateway, by its `gatewayClassName`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// A class istiod creates, or one whose controller is Istio's.
    Istio,
    /// A GatewayClass of another controller.
    Other { controller: String },
    /// A class neither built into Istio nor defined in the input.
    Unknown,
}

/// The class of the Gateway `o` in cluster `c`.
pub fn class_of(c: &Cluster, o: &Object) -> Class {
    let Some(gw) = o.kube_gateway() else {
        return Class::Unknown;
    };
    let name = gw.spec.gateway_class_name.as_str();
    if let Some((_, class)) = c.find(Kind::GatewayClass, "", name) {
        let controller = class
            .gateway_class()
            .map(|g| g.spec.controller_name.clone())
            .unwrap_or_default();
        return if controller == ISTIO_CONTROLLER {
            Class::Istio
        } else {
            Class::Other { controller }
        };
    }
    if BUILTIN_CLASSES.contains(&name) {
        Class::Istio
    } else {
        Class::Unknown
    }
}

/// The parts every route kind shares.
#[derive(Debug)]
pub struct Route<'o> {
    pub parents: &'o [ParentReference],
    pub hostnames: &'o [String],
    /// Each backend with its field path (`spec.rules[0].backendRefs[1]`).
    pub backends: Vec<(String, &'o BackendRef)>,
}

/// The route kinds strait reads.
pub const ROUTE_KINDS: [Kind; 4] = [
    Kind::HTTPRoute,
    Kind::GRPCRoute,
    Kind::TLSRoute,
    Kind::TCPRoute,
];

/// The shared view of a route object; `None` for other kinds.
pub fn route(o: &Object) -> Option<Route<'_>> {
    fn paths<'a>(rules: impl Iterator<Item = &'a [BackendRef]>) -> Vec<(String, &'a BackendRef)> {
        rules
            .enumerate()
            .flat_map(|(i, refs)| {
                refs.iter()
                    .enumerate()
                    .map(move |(j, b)| (format!("spec.rules[{i}].backendRefs[{j}]"), b))
            })
            .collect()
    }
    if let Some(r) = o.http_route() {
        return Some(Route {
            parents: &r.spec.parent_refs,
            hostnames: &r.spec.hostnames,
            backends: paths(r.spec.rules.iter().map(|r| r.backend_refs.as_slice())),
        });
    }
    if let Some(r) = o.grpc_route() {
        return Some(Route {
            parents: &r.spec.parent_refs,
            hostnames: &r.spec.hostnames,
            backends: paths(r.spec.rules.iter().map(|r| r.backend_refs.as_slice())),
        });
    }
    let r = o.tls_route().or_else(|| o.tcp_route())?;
    Some(Route {
        parents: &r.spec.parent_refs,
        hostnames: &r.spec.hostnames,
        backends: paths(r.spec.rules.iter().map(|r| r.backend_refs.as_slice())),
    })
}

/// What a parent reference points at.
#[derive(Debug)]
pub enum Parent<'c> {
    /// A Gateway of the input (with its class).
    Gateway(ObjId, &'c Object, Class),
    /// A Service or ServiceEntry: a mesh (east-west) route, served by the sidecars.
    Mesh(ObjId),
    /// Nothing in the input: the kind it names, and `namespace/name`.
    Missing { kind: &'static str, name: String },
    /// A kind Istio does not attach routes to.
    Unsupported,
}

/// The Services named `namespace/name` in any cluster of the mesh: istiod resolves a route's
/// Service references through its registry, which holds every cluster it discovers.
pub fn services<'m>(mesh: &'m Mesh, namespace: &str, name: &str) -> Vec<(ObjId, &'m Object)> {
    mesh.clusters
        .iter()
        .filter_map(|c| c.find(Kind::Service, namespace, name))
        .collect()
}

/// Resolves `p`, written in a route in `route_ns` of config cluster `c`.
pub fn parent<'c>(
    mesh: &'c Mesh,
    c: &'c Cluster,
    route_ns: &str,
    p: &ParentReference,
) -> Parent<'c> {
    let ns = p.namespace.as_deref().unwrap_or(route_ns);
    let (kind, label) = match (p.group_or_default(), p.kind_or_default()) {
        (api::GROUP, "Gateway") => (Kind::KubeGateway, "Gateway"),
        ("" | "core", "Service") => (Kind::Service, "Service"),
        ("networking.istio.io", "ServiceEntry") => (Kind::ServiceEntry, "ServiceEntry"),
        _ => return Parent::Unsupported,
    };
    let found = if kind == Kind::Service {
        services(mesh, ns, &p.name).into_iter().next()
    } else {
        c.find(kind, ns, &p.name)
    };
    match found {
        Some((id, o)) if kind == Kind::KubeGateway => Parent::Gateway(id, o, class_of(c, o)),
        Some((id, _)) => Parent::Mesh(id),
        None => Parent::Missing {
            kind: label,
            name: format!("{ns}/{}", p.name),
        },
    }
}

/// Whether Istio serves the route `o`: one of its parents is an Istio Gateway, a Service or a
/// ServiceEntry.
pub fn route_is_istio(mesh: &Mesh, c: &Cluster, o: &Object) -> bool {
    route(o).is_some_and(|r| {
        r.parents
            .iter()
            .any(|p| match parent(mesh, c, o.namespace(), p) {
                Parent::Gateway(_, _, class) => class == Class::Istio,
                Parent::Mesh(_) => true,
                Parent::Missing { .. } | Parent::Unsupported => false,
            })
    })
}

/// Why a listener does not take a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `sectionName` names no listener, or `port` no listener port.
    NoSuchListener(String),
    /// The listener's `allowedRoutes.namespaces` excludes the route's namespace.
    Namespace { listener: String, from: String },
    /// The listener does not take this route kind.
    RouteKind {
        listener: String,
        allowed: Vec<String>,
    },
    /// No hostname of the route falls under the listener's.
    Hostname { listener: String, hostname: String },
}

/// The listeners of Gateway `gw` that take a route of `kind` in `route_ns` with `hostnames`,
/// through the reference `p` (its `sectionName` and `port`); when none does, why the closest
/// one refused.
pub fn attach<'g>(
    c: &Cluster,
    gw: &'g api::GatewaySpec,
    gw_ns: &str,
    kind: Kind,
    route_ns: &str,
    hostnames: &[String],
    p: &ParentReference,
) -> Result<Vec<&'g Listener>, Refusal> {
    let candidates: Vec<&Listener> = gw
        .listeners
        .iter()
        .filter(|l| p.section_name.as_deref().is_none_or(|s| s == l.name))
        .filter(|l| p.port.is_none_or(|port| port == l.port))
        .collect();
    use Refusal::*;
    if candidates.is_empty() {
        let what = match (&p.section_name, p.port) {
            (Some(s), Some(port)) => format!("no listener named \"{s}\" on port {port}"),
            (Some(s), None) => format!("no listener named \"{s}\""),
            (None, Some(port)) => format!("no listener on port {port}"),
            (None, None) => "no listeners".to_string(),
        };
        return Err(NoSuchListener(what));
    }
    let mut refusal = None;
    let mut taken = Vec::new();
    for l in candidates {
        let step = namespace_allowed(c, l, gw_ns, route_ns)
            .and_then(|()| kind_allowed(l, kind))
            .and_then(|()| hostname_intersects(l, hostnames));
        match step {
            Ok(()) => taken.push(l),
            // Keep the refusal of the furthest step: it says the most.
            Err(r) => {
                if refusal.as_ref().is_none_or(|old| rank(&r) > rank(old)) {
                    refusal = Some(r);
                }
            }
        }
    }
    match refusal {
        Some(r) if taken.is_empty() => Err(r),
        _ => Ok(taken),
    }
}

fn rank(r: &Refusal) -> u8 {
    match r {
        Refusal::NoSuchListener(_) => 0,
        Refusal::Namespace { .. } => 1,
        Refusal::RouteKind { .. } => 2,
        Refusal::Hostname { .. } => 3,
    }
}

fn namespace_allowed(
    c: &Cluster,
    l: &Listener,
    gw_ns: &str,
    route_ns: &str,
) -> Result<(), Refusal> {
    let ns = l
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    let from = ns
        .map(|n| n.from.as_str())
        .filter(|f| !f.is_empty())
        .unwrap_or("Same");
    let ok = match from {
        "All" => true,
        "Same" => gw_ns == route_ns,
        "Selector" => {
            // Kubernetes labels every namespace with its own name.
            let mut labels = c
                .find(Kind::Namespace, "", route_ns)
                .map(|(_, o)| o.labels().clone())
                .unwrap_or_default();
            labels.insert("kubernetes.io/metadata.name".into(), route_ns.into());
            ns.and_then(|n| n.selector.as_ref())
                .is_some_and(|s| selector::label_selector_matches(s, &labels))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::Namespace {
            listener: l.name.clone(),
            from: from.to_string(),
        })
    }
}

/// The route kinds a listener takes: its `allowedRoutes.kinds`, else those of its protocol.
pub fn allowed_kinds(l: &Listener) -> Vec<String> {
    let explicit: Vec<String> = l
        .allowed_routes
        .iter()
        .flat_map(|a| &a.kinds)
        .filter(|k| k.group_or_default() == api::GROUP)
        .map(|k| k.kind.clone())
        .collect();
    if l.allowed_routes
        .as_ref()
        .is_some_and(|a| !a.kinds.is_empty())
    {
        return explicit;
    }
    let by_protocol: &[&str] = match l.protocol.as_str() {
        "HTTP" | "HTTPS" => &["HTTPRoute", "GRPCRoute"],
        "TLS" => &["TLSRoute", "TCPRoute"],
        "TCP" => &["TCPRoute"],
        "UDP" => &["UDPRoute"],
        _ => &[],
    };
    by_protocol.iter().map(|s| s.to_string()).collect()
}

fn kind_allowed(l: &Listener, kind: Kind) -> Result<(), Refusal> {
    let allowed = allowed_kinds(l);
    if allowed.iter().any(|k| k == kind.name()) {
        Ok(())
    } else {
        Err(Refusal::RouteKind {
            listener: l.name.clone(),
            allowed,
        })
    }
}

fn hostname_intersects(l: &Listener, hostnames: &[String]) -> Result<(), Refusal> {
    if l.hostname.is_empty() || hostnames.is_empty() {
        return Ok(());
    }
    if hostnames
        .iter()
        .any(|h| hostnames_intersect(&l.hostname, h))
    {
        Ok(())
    } else {
        Err(Refusal::Hostname {
            listener: l.name.clone(),
            hostname: l.hostname.clone(),
        })
    }
}

/// Whether two Gateway API hostnames (each exact or `*.`-prefixed) have a name in common. A
/// wildcard stands for one or more labels, so `*.example.com` takes `a.b.example.com` but not
/// `example.com`.
pub fn hostnames_intersect(a: &str, b: &str) -> bool {
    let under = |wild: &str, name: &str| {
        wild.strip_prefix('*')
            .is_some_and(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
    };
    a == b || under(a, b) || under(b, a)
}

/// Whether a ReferenceGrant in `to_ns` of cluster `c` lets a `from_kind` in `from_ns` refer to
/// the `to_group`/`to_kind` object named `to_name`.
pub fn reference_granted(
    c: &Cluster,
    from_kind: Kind,
    from_ns: &str,
    to_ns: &str,
    (to_group, to_kind, to_name): (&str, &str, &str),
) -> bool {
    c.of_kind(Kind::ReferenceGrant)
        .filter(|(_, o)| o.namespace() == to_ns)
        .filter_map(|(_, o)| o.reference_grant())
        .any(|g| {
            let from = g.spec.from.iter().any(|f| {
                f.group == api::GROUP && f.kind == from_kind.name() && f.namespace == from_ns
            });
            let to = g.spec.to.iter().any(|t| {
                let group = if t.group == "core" {
                    ""
                } else {
                    t.group.as_str()
                };
                group == to_group
                    && t.kind == to_kind
                    && t.name
                        .as_deref()
                        .is_none_or(|n| n.is_empty() || n == to_name)
            });
            from && to
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_stand_for_one_label_or_more() {
        assert!(hostnames_intersect("*.example.com", "a.example.com"));
        assert!(hostnames_intersect("a.b.example.com", "*.example.com"));
        assert!(hostnames_intersect("*.example.com", "*.a.example.com"));
        assert!(!hostnames_intersect("*.example.com", "example.com"));
        assert!(!hostnames_intersect("a.example.com", "b.example.com"));
        assert!(hostnames_intersect("a.example.com", "a.example.com"));
    }
}
