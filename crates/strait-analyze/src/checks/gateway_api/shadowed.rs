//! STR0210: a Gateway API route match that another route already claims. When several
//! HTTPRoutes (or GRPCRoutes) on one listener, or one mesh Service, give the same hostname the
//! same match, the Gateway API's precedence decides: the oldest route wins (then the first by
//! namespace/name), and the other's rule never sees a request for it. The same match is the
//! same path (type and value), method, headers and query parameters, compared as written; a
//! rule without matches matches every path (`PathPrefix /`). Routes without hostnames and
//! listeners without one are compared as the hostname `*`.

use std::collections::BTreeMap;

use strait_api::Kind;
use strait_api::Object;
use strait_api::gateway_api::routes::{GrpcRouteMatch, HttpRouteMatch, NameMatch};
use strait_model::gateway_api::{self as gapi, Class, Parent};
use strait_model::{Cluster, Mesh, ObjId};

use crate::catalog::STR0210;
use crate::context::Ctx;

/// Where a match applies: the parent object, the listener (or mesh port) and the hostname.
type Place = (ObjId, String, String);

/// One claim: the route, its precedence key and the field of its match.
struct Claim {
    route: ObjId,
    order: Order,
    field: String,
}

/// Precedence: the creation time (a route without one, as in manifests not yet applied, sorts
/// by name only), then `namespace/name`.
type Order = (Option<k8s_openapi::jiff::Timestamp>, String);

pub(super) fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in mesh.primaries() {
        let mut claims: BTreeMap<(Place, String), Vec<Claim>> = BTreeMap::new();
        for kind in [Kind::HTTPRoute, Kind::GRPCRoute] {
            for (id, o) in c.of_kind(kind) {
                let places = places(mesh, c, o);
                for (field, key) in matches(o) {
                    for place in &places {
                        claims
                            .entry((place.clone(), key.clone()))
                            .or_default()
                            .push(Claim {
                                route: id,
                                order: order(o),
                                field: field.clone(),
                            });
                    }
                }
            }
        }
        let mut reported = std::collections::BTreeSet::new();
        for ((place, key), mut list) in claims {
            list.sort_by(|a, b| a.order.cmp(&b.order));
            let Some((first, rest)) = list.split_first() else {
                continue;
            };
            for loser in rest.iter().filter(|l| l.route != first.route) {
                if !reported.insert((loser.route, loser.field.clone())) {
                    continue;
                }
                let winner = mesh.object(first.route);
                let why = match (first.order.0, loser.order.0) {
                    (Some(a), Some(b)) if a < b => "created earlier",
                    _ => "first by namespace/name",
                };
                let (parent, listener, host) = &place;
                let on = match mesh.object(*parent).kind {
                    Kind::KubeGateway => format!(
                        "listener \"{listener}\" of Gateway {}",
                        mesh.object(*parent).name()
                    ),
                    _ => format!("Service {}", mesh.object(*parent).name()),
                };
                ctx.at(
                    STR0210,
                    loser.route,
                    &loser.field,
                    format!(
                        "this match ({key}) for hostname {host} on {on} is also {} {}/{}'s, which takes precedence ({why}) and gets its requests: this rule never sees them",
                        winner.kind,
                        winner.namespace(),
                        winner.name()
                    ),
                );
            }
        }
    }
}

/// The Gateway API's precedence: creation time, then namespace/name.
fn order(o: &Object) -> Order {
    let created = o.meta().creation_timestamp.as_ref().map(|t| t.0);
    (created, format!("{}/{}", o.namespace(), o.name()))
}

/// Every place the route is served: each Istio listener that takes it, each mesh Service.
fn places(mesh: &Mesh, c: &Cluster, o: &Object) -> Vec<Place> {
    let Some(route) = gapi::route(o) else {
        return Vec::new();
    };
    let hosts: Vec<String> = if route.hostnames.is_empty() {
        vec!["*".into()]
    } else {
        route.hostnames.to_vec()
    };
    let mut out = Vec::new();
    for p in route.parents {
        match gapi::parent(mesh, c, o.namespace(), p) {
            Parent::Gateway(gid, g, Class::Istio) => {
                let Some(gw) = g.kube_gateway() else { continue };
                let Ok(listeners) = gapi::attach(
                    c,
                    &gw.spec,
                    g.namespace(),
                    o.kind,
                    o.namespace(),
                    route.hostnames,
                    p,
                ) else {
                    continue;
                };
                for l in listeners {
                    for h in &hosts {
                        out.push((gid, l.name.clone(), h.clone()));
                    }
                }
            }
            Parent::Mesh(sid) => {
                let port = p.port.map(|n| n.to_string()).unwrap_or_else(|| "*".into());
                for h in &hosts {
                    out.push((sid, port.clone(), h.clone()));
                }
            }
            _ => {}
        }
    }
    out
}

fn names(list: &[NameMatch]) -> String {
    let mut v: Vec<String> = list
        .iter()
        .map(|m| {
            let kind = if m.kind.is_empty() { "Exact" } else { &m.kind };
            format!(
                "{}{}{}",
                m.name.to_ascii_lowercase(),
                if kind == "Exact" { "=" } else { "~" },
                m.value
            )
        })
        .collect();
    v.sort();
    v.join(",")
}

fn http_key(m: &HttpRouteMatch) -> String {
    let (kind, value) = match &m.path {
        Some(p) => (
            if p.kind.is_empty() {
                "PathPrefix"
            } else {
                p.kind.as_str()
            },
            p.value.as_deref().unwrap_or("/"),
        ),
        None => ("PathPrefix", "/"),
    };
    let mut key = format!("{kind} {value}");
    if !m.method.is_empty() {
        key.push_str(&format!(", method {}", m.method));
    }
    if !m.headers.is_empty() {
        key.push_str(&format!(", headers {}", names(&m.headers)));
    }
    if !m.query_params.is_empty() {
        key.push_str(&format!(", query {}", names(&m.query_params)));
    }
    key
}

fn grpc_key(m: &GrpcRouteMatch) -> String {
    let mut key = match &m.method {
        Some(g) => format!(
            "{} {}/{}",
            if g.kind.is_empty() {
                "Exact"
            } else {
                g.kind.as_str()
            },
            if g.service.is_empty() {
                "*"
            } else {
                g.service.as_str()
            },
            if g.method.is_empty() {
                "*"
            } else {
                g.method.as_str()
            }
        ),
        None => "any method".to_string(),
    };
    if !m.headers.is_empty() {
        key.push_str(&format!(", headers {}", names(&m.headers)));
    }
    key
}

/// Each match of the route with its field path and its key; a rule without matches matches
/// everything.
fn matches(o: &Object) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(r) = o.http_route() {
        for (i, rule) in r.spec.rules.iter().enumerate() {
            if rule.matches.is_empty() {
                out.push((
                    format!("spec.rules[{i}]"),
                    http_key(&HttpRouteMatch::default()),
                ));
            }
            for (j, m) in rule.matches.iter().enumerate() {
                out.push((format!("spec.rules[{i}].matches[{j}]"), http_key(m)));
            }
        }
    }
    if let Some(r) = o.grpc_route() {
        for (i, rule) in r.spec.rules.iter().enumerate() {
            if rule.matches.is_empty() {
                out.push((
                    format!("spec.rules[{i}]"),
                    grpc_key(&GrpcRouteMatch::default()),
                ));
            }
            for (j, m) in rule.matches.iter().enumerate() {
                out.push((format!("spec.rules[{i}].matches[{j}]"), grpc_key(m)));
            }
        }
    }
    out
}
