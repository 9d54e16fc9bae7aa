//! Configuration that differs between clusters that should agree.
//!
//! In a multi-primary mesh each control plane reads Istio config from its own cluster only, so
//! routing for a shared host must be applied to every primary; in primary-remote, config in a
//! remote is read by nobody.

use std::collections::BTreeMap;

use strait_api::Kind;
use strait_api::de::{FieldPath, locate};
use strait_api::yaml::{Children, NodeRef, Resolved, ValueRef};
use strait_model::{ClusterId, ObjId};

use crate::catalog::{IST0170, STR0111, STR0113};
use crate::checks::util;
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    config_in_remotes(ctx);
    drift_between_primaries(ctx);
    inconsistent_services(ctx);
}

const CONFIG_KINDS: &[Kind] = &[
    Kind::Gateway,
    Kind::VirtualService,
    Kind::DestinationRule,
    Kind::ServiceEntry,
    Kind::Sidecar,
    Kind::EnvoyFilter,
    Kind::PeerAuthentication,
    Kind::AuthorizationPolicy,
    Kind::RequestAuthentication,
    Kind::Telemetry,
    Kind::WorkloadGroup,
    Kind::WasmPlugin,
    Kind::ProxyConfig,
    // istiod reads the Gateway API from its config cluster too.
    Kind::KubeGateway,
    Kind::HTTPRoute,
    Kind::GRPCRoute,
    Kind::TLSRoute,
    Kind::TCPRoute,
    Kind::ReferenceGrant,
];

/// STR0113: Istio configuration placed in a remote cluster.
fn config_in_remotes(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in mesh.clusters.iter().filter(|c| !c.is_primary()) {
        let primary = c
            .primary
            .map(|p| mesh.cluster(p).name.clone())
            .unwrap_or_else(|| "its primary".into());
        for kind in CONFIG_KINDS {
            for (id, o) in c.of_kind(*kind) {
                ctx.at(
                    STR0113,
                    id,
                    "",
                    format!(
                        "{} is in remote cluster {}, whose proxies are configured by {primary}'s control plane from {primary}'s API server: nothing reads it. Apply it to {primary}",
                        o.display_name(),
                        c.name
                    ),
                );
            }
        }
    }
}

/// Structural equality of two YAML trees, ignoring positions, map key order and quoting.
fn same(a: NodeRef<'_>, b: NodeRef<'_>) -> bool {
    first_difference(a, b, &mut Vec::new()).is_none()
}

/// The path of the first difference between two trees.
fn first_difference<'n>(a: NodeRef<'n>, b: NodeRef<'n>, path: &mut Vec<String>) -> Option<String> {
    let here = |p: &Vec<String>| {
        if p.is_empty() {
            String::from("spec")
        } else {
            format!("spec{}", p.concat())
        }
    };
    match (a.value(), b.value()) {
        (ValueRef::Scalar(x), ValueRef::Scalar(y)) => {
            let eq = match (x.resolve(), y.resolve()) {
                (Resolved::Float(p), Resolved::Float(q)) => p == q,
                (p, q) => p == q,
            };
            (!eq).then(|| here(path))
        }
        (ValueRef::Seq(xs), ValueRef::Seq(ys)) => {
            if xs.items().len() != ys.items().len() {
                return Some(here(path));
            }
            for (i, (x, y)) in xs.items().zip(ys.items()).enumerate() {
                path.push(format!("[{i}]"));
                let d = first_difference(x, y, path);
                path.pop();
                if d.is_some() {
                    return d;
                }
            }
            None
        }
        (ValueRef::Map(xs), ValueRef::Map(ys)) => {
            let keys = |m: Children<'_>| -> BTreeMap<String, usize> {
                m.entries()
                    .enumerate()
                    .map(|(i, (k, _))| (k.scalar_text().unwrap_or("").to_string(), i))
                    .collect()
            };
            let value = |m: Children<'n>, i: usize| m.entry(i).map(|(_, v)| v);
            let (kx, ky) = (keys(xs), keys(ys));
            for (k, ix) in &kx {
                path.push(format!(".{k}"));
                let d = match (value(xs, *ix), ky.get(k).and_then(|iy| value(ys, *iy))) {
                    (Some(x), Some(y)) => first_difference(x, y, path),
                    _ => Some(here(path)),
                };
                path.pop();
                if d.is_some() {
                    return d;
                }
            }
            ky.keys()
                .find(|k| !kx.contains_key(*k))
                .map(|k| format!("{}.{k}", here(path)))
        }
        _ => Some(here(path)),
    }
}

fn spec_of<'m>(ctx: &Ctx<'m>, id: ObjId) -> Option<NodeRef<'m>> {
    let o = ctx.mesh.object(id);
    let (n, exact) = locate(o.source.root(), &FieldPath::parse("spec"));
    exact.then_some(n)
}

/// STR0111: primaries configure a shared host differently, or only some of them do.
fn drift_between_primaries(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let primaries: Vec<ClusterId> = mesh.primaries().map(|c| c.id).collect();
    if primaries.len() < 2 {
        return;
    }
    // (kind, key) -> objects per primary.
    let mut groups: BTreeMap<(Kind, String), Vec<ObjId>> = BTreeMap::new();
    for &p in &primaries {
        for (id, _, vs) in util::virtual_services(mesh).filter(|(id, _, _)| id.cluster == p) {
            if !util::binds_mesh(&vs.spec.gateways) {
                continue;
            }
            let mut hosts: Vec<String> = vs
                .spec
                .hosts
                .iter()
                .map(|h| util::fqdn(mesh, id, h))
                .collect();
            hosts.sort();
            groups
                .entry((Kind::VirtualService, hosts.join(",")))
                .or_default()
                .push(id);
        }
        for (id, o) in util::in_cluster(mesh, p, Kind::DestinationRule) {
            if let Some(dr) = o.destination_rule() {
                groups
                    .entry((
                        Kind::DestinationRule,
                        format!("{}|{}", o.namespace(), util::fqdn(mesh, id, &dr.spec.host)),
                    ))
                    .or_default()
                    .push(id);
            }
        }
        for (id, o) in util::in_cluster(mesh, p, Kind::Gateway) {
            groups
                .entry((Kind::Gateway, format!("{}/{}", o.namespace(), o.name())))
                .or_default()
                .push(id);
        }
    }
    for ((kind, key), ids) in groups {
        let first = ids[0];
        let first_cluster = mesh.cluster(first.cluster).name.clone();
        for &other in &ids[1..] {
            if other.cluster == first.cluster {
                continue;
            }
            let (Some(a), Some(b)) = (spec_of(ctx, first), spec_of(ctx, other)) else {
                continue;
            };
            if same(a, b) {
                continue;
            }
            let path = first_difference(a, b, &mut Vec::new()).unwrap_or_else(|| "spec".into());
            let pos = ctx.pos(first, &path);
            ctx.at(
                STR0111,
                other,
                &path,
                format!(
                    "{} differs from its copy in {first_clusters} at {path}: each primary configures only its own proxies, so the same request is routed differently depending on the client's cluster",
                    mesh.object(other).display_name(),
                    first_clusters = first_cluster
                ),
            )
            .related(format!("the copy in {first_cluster}"), pos);
        }
        if kind == Kind::Gateway {
            continue;
        }
        let present: Vec<ClusterId> = ids.iter().map(|i| i.cluster).collect();
        for &p in &primaries {
            if present.contains(&p) {
                continue;
            }
            let has_clients = mesh
                .served_by(p)
                .iter()
                .any(|c| mesh.workloads_in(*c).any(|w| w.sidecar.has_proxy()));
            if !has_clients {
                continue;
            }
            let what = match kind {
                Kind::VirtualService => "routing",
                _ => "traffic policy",
            };
            ctx.at(
                STR0111,
                first,
                "",
                format!(
                    "{} ({what} for {}) exists in {first_cluster} but not in primary {}: clients there ignore it. Apply the same config to every primary",
                    mesh.object(first).display_name(),
                    key.rsplit('|').next().unwrap_or(&key),
                    mesh.cluster(p).name
                ),
            );
        }
    }
}

/// IST0170: the same Service differs between clusters.
fn inconsistent_services(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    if mesh.clusters.len() < 2 {
        return;
    }
    let mut by_name: BTreeMap<(String, String), Vec<ObjId>> = BTreeMap::new();
    for c in &mesh.clusters {
        for (id, o) in c.of_kind(Kind::Service) {
            if o.namespace() == c.istio_namespace || o.namespace() == "kube-system" {
                continue;
            }
            by_name
                .entry((o.namespace().to_string(), o.name().to_string()))
                .or_default()
                .push(id);
        }
    }
    for ids in by_name.values() {
        let Some(&first) = ids.first() else { continue };
        let describe = |id: ObjId| {
            let s = mesh
                .object(id)
                .service()
                .and_then(|s| s.spec.clone())
                .unwrap_or_default();
            let headless = s.cluster_ip.as_deref() == Some("None");
            let ty = s.type_.clone().unwrap_or_else(|| "ClusterIP".into());
            let mut ports: Vec<(i32, String, String)> = s
                .ports
                .iter()
                .flatten()
                .map(|p| {
                    (
                        p.port,
                        p.name.clone().unwrap_or_default(),
                        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    )
                })
                .collect();
            ports.sort();
            (ty, headless, ports)
        };
        let (ty0, h0, p0) = describe(first);
        for &other in &ids[1..] {
            if other.cluster == first.cluster {
                continue;
            }
            let (ty, h, p) = describe(other);
            let mut diffs = Vec::new();
            if ty != ty0 {
                diffs.push(format!("type {ty} vs {ty0}"));
            }
            if h != h0 {
                diffs.push("headless in one cluster only".to_string());
            }
            if p != p0 {
                let fmt = |v: &[(i32, String, String)]| {
                    v.iter()
                        .map(|(n, name, proto)| format!("{n}/{proto} ({name})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                diffs.push(format!("ports [{}] vs [{}]", fmt(&p), fmt(&p0)));
            }
            if diffs.is_empty() {
                continue;
            }
            let pos = ctx.pos(first, "spec");
            ctx.at(
                IST0170,
                other,
                "spec",
                format!(
                    "Service {} is one service across clusters (same namespace and name), but it differs from cluster {}: {}. Clients see a merged service whose ports and behaviour depend on which cluster answers",
                    mesh.object(other).display_name(),
                    mesh.cluster(first.cluster).name,
                    diffs.join("; ")
                ),
            )
            .related(format!("the Service in {}", mesh.cluster(first.cluster).name), pos);
        }
    }
}
