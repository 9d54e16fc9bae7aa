//! mTLS consistency, per host and per port: what a client's DestinationRule sends against what
//! the server's PeerAuthentication accepts (STR0301), STRICT policies on workloads no proxy
//! enforces them for (STR0302), and port-level settings Istio ignores (STR0303).
//!
//! The server side mirrors istiod's `ComposePeerAuthentication`: mesh (selector-less, root
//! namespace), then namespace (selector-less), then workload (selector, not in the root
//! namespace), the oldest winning within a scope, UNSET inheriting from the scope above, and
//! `portLevelMtls` keyed by the port the workload listens on. The client side mirrors
//! `PushContext.destinationRule` and `MergeSubsetTrafficPolicy`: the most specific host match in
//! the client's namespace, then the service's, then the root namespace; a port-level entry
//! replaces the destination-level settings wholesale (a missing `tls` there means auto mTLS).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use strait_api::Kind;
use strait_api::istio::destination_rule::ClientTlsMode;
use strait_api::istio::security::MtlsMode;
use strait_model::host::{self, ExportTo};
use strait_model::{ClusterId, Injection, Mesh, ObjId, ServiceInstance, Workload, selector};

use super::util::{self, join};
use crate::catalog::{STR0301, STR0302, STR0303};
use crate::context::Ctx;
use strait_model::destination::{Dr, DrIndex, client_tls, subset_sets_tls};
use strait_model::peer_auth::{PeerPolicies, intercepts, target_port, workload_selector};

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let policies: BTreeMap<ClusterId, PeerPolicies> = mesh
        .clusters
        .iter()
        .filter(|c| c.is_primary())
        .map(|c| (c.id, PeerPolicies::of(mesh, c.id)))
        .collect();
    check_port_level_without_selector(ctx);
    check_client_server_modes(ctx, &policies);
    check_strict_without_sidecar(ctx, &policies);
}

fn mode_name(m: MtlsMode) -> &'static str {
    match m {
        MtlsMode::Unset => "UNSET",
        MtlsMode::Disable => "DISABLE",
        MtlsMode::Permissive => "PERMISSIVE",
        MtlsMode::Strict => "STRICT",
    }
}

fn tls_name(m: ClientTlsMode) -> &'static str {
    match m {
        ClientTlsMode::Disable => "DISABLE",
        ClientTlsMode::Simple => "SIMPLE",
        ClientTlsMode::Mutual => "MUTUAL",
        ClientTlsMode::IstioMutual => "ISTIO_MUTUAL",
    }
}

/// STR0303: Istio only reads `portLevelMtls` on workload-level policies.
fn check_port_level_without_selector(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for (id, o) in util::objects(mesh, Kind::PeerAuthentication) {
        let Some(pa) = o.peer_authentication() else {
            continue;
        };
        if pa.spec.port_level_mtls.is_empty() || workload_selector(&pa.spec).is_some() {
            continue;
        }
        let ports: Vec<String> = pa.spec.port_level_mtls.keys().map(u32::to_string).collect();
        let scope = if o.namespace() == mesh.cluster(id.cluster).root_namespace() {
            "mesh-wide"
        } else {
            "namespace-wide"
        };
        ctx.at_key(
            STR0303,
            id,
            "spec.portLevelMtls",
            format!(
                "portLevelMtls (ports {}) on a {scope} PeerAuthentication without selector is rejected by Istio's validation and ignored by istiod; move it to a PeerAuthentication with selector.matchLabels for the workloads that listen on these ports",
                ports.join(", ")
            ),
        );
    }
}

/// One STR0301 finding being gathered: a DestinationRule field against a server-side decision.
#[derive(Default)]
struct Conflict {
    hosts: BTreeSet<String>,
    workloads: BTreeSet<String>,
    ports: BTreeSet<String>,
    /// Namespaces of workloads whose injection is unknown (their Namespace is not in the
    /// input): presumed to run sidecars, as a STRICT policy for them implies.
    presumed: BTreeSet<String>,
}

type ConflictKey = (
    ObjId,
    String,
    ClientTlsMode,
    MtlsMode,
    Option<(ObjId, String)>,
);

/// STR0301: a DestinationRule's TLS mode that the server's effective PeerAuthentication refuses.
fn check_client_server_modes(ctx: &mut Ctx, policies: &BTreeMap<ClusterId, PeerPolicies>) {
    let mesh = ctx.mesh;
    let mut by_host: BTreeMap<&str, Vec<&ServiceInstance>> = BTreeMap::new();
    for s in mesh.registry.all() {
        if s.selector.is_some() && !host::is_wildcard(&s.hostname) {
            by_host.entry(s.hostname.as_str()).or_default().push(s);
        }
    }
    let mut conflicts: BTreeMap<ConflictKey, Conflict> = BTreeMap::new();
    for c in mesh.primaries() {
        let root = c.root_namespace();
        let drs: Vec<Dr> = util::in_cluster(mesh, c.id, Kind::DestinationRule)
            .filter_map(|(id, o)| {
                let d = o.destination_rule()?;
                Some(Dr {
                    id,
                    namespace: o.namespace(),
                    host: util::fqdn(mesh, id, &d.spec.host),
                    export: ExportTo::parse(&d.spec.export_to, o.namespace(), true),
                    spec: &d.spec,
                })
            })
            .filter(|d| !d.host.is_empty())
            .collect();
        if drs.is_empty() {
            continue;
        }
        let served = mesh.served_by(c.id);
        // A DestinationRule outside the service's and the root namespace only reaches clients
        // in its own namespace: skip it where every workload there runs without a sidecar.
        // Namespaces with workloads, and whether every one of them lacks a sidecar.
        let mut lacking: HashMap<&str, bool> = HashMap::new();
        for w in mesh
            .workloads
            .iter()
            .filter(|w| served.contains(&w.cluster))
        {
            let all = lacking.entry(w.namespace.as_str()).or_insert(true);
            *all = *all && w.sidecar.lacks_sidecar();
        }
        let inert = |ns: &str| lacking.get(ns).copied().unwrap_or(false);
        let index = DrIndex::new(&drs);
        for (hostname, instances) in &by_host {
            let svc_ns = instances[0].namespace.as_str();
            for dr in index.applicable(hostname, svc_ns, root) {
                if dr.namespace != svc_ns && dr.namespace != root && inert(dr.namespace) {
                    continue;
                }
                for s in instances {
                    gather(mesh, policies, dr, s, &mut conflicts);
                }
            }
        }
    }
    for ((dr_id, path, client, server, source), c) in conflicts {
        report_conflict(ctx, dr_id, &path, client, server, source, &c);
    }
}

/// Compares one DestinationRule with every sidecar endpoint of one service instance.
fn gather(
    mesh: &Mesh,
    policies: &BTreeMap<ClusterId, PeerPolicies>,
    dr: &Dr,
    s: &ServiceInstance,
    out: &mut BTreeMap<ConflictKey, Conflict>,
) {
    let endpoints: Vec<&Workload> = mesh
        .endpoints_of(s)
        .into_iter()
        .filter(|w| {
            matches!(w.sidecar, Injection::Injected(_) | Injection::Unknown) && w.gateway.is_none()
        })
        .collect();
    if endpoints.is_empty() {
        return;
    }
    let subsets = (0..dr.spec.subsets.len()).map(Some);
    for port in &s.ports {
        for subset in std::iter::once(None).chain(subsets.clone()) {
            if subset.is_some_and(|k| !subset_sets_tls(dr.spec, k, port.number)) {
                continue;
            }
            let Some((client, path)) = client_tls(dr.spec, port.number, subset) else {
                continue;
            };
            for w in &endpoints {
                if let Some(k) = subset
                    && dr
                        .spec
                        .subsets
                        .get(k)
                        .is_some_and(|sub| !selector::map_selects(&sub.labels, &w.labels))
                {
                    continue;
                }
                let Some(policy) = policies.get(&mesh.config_cluster(w.cluster)) else {
                    continue;
                };
                let Some(tp) = target_port(mesh, w, port) else {
                    continue;
                };
                if !intercepts(w, tp) {
                    continue;
                }
                let eff = policy.effective(w, Some(tp));
                let refused = match client {
                    ClientTlsMode::Disable | ClientTlsMode::Simple | ClientTlsMode::Mutual => {
                        eff.mode == MtlsMode::Strict
                    }
                    ClientTlsMode::IstioMutual => eff.mode == MtlsMode::Disable,
                };
                if !refused {
                    continue;
                }
                // An unknown injection is presumed a sidecar only when the namespace has its own
                // policy: a mesh-wide STRICT says nothing about whether the namespace is injected,
                // and DISABLE is right for a namespace that is not.
                let own_policy = eff
                    .source
                    .as_ref()
                    .is_some_and(|(pa, _)| mesh.object(*pa).namespace() == w.namespace);
                if w.sidecar == Injection::Unknown && !own_policy {
                    continue;
                }
                let entry = out
                    .entry((dr.id, path.clone(), client, eff.mode, eff.source.clone()))
                    .or_default();
                entry
                    .hosts
                    .insert(format!("{}:{}", s.hostname, port.number));
                entry.workloads.insert(workload_name(mesh, w));
                entry.ports.insert(tp.to_string());
                if w.sidecar == Injection::Unknown {
                    entry.presumed.insert(w.namespace.clone());
                }
            }
        }
    }
}

/// `namespace/name`, with the cluster when the mesh has several.
fn workload_name(mesh: &Mesh, w: &Workload) -> String {
    if mesh.is_multicluster() {
        format!(
            "{}/{} (cluster {})",
            w.namespace,
            w.name,
            mesh.cluster(w.cluster).name
        )
    } else {
        format!("{}/{}", w.namespace, w.name)
    }
}

fn first_few(items: &BTreeSet<String>, n: usize) -> String {
    let mut v: Vec<String> = items.iter().take(n).cloned().collect();
    if items.len() > n {
        v.push(format!("{} more", items.len() - n));
    }
    join(&v)
}

fn report_conflict(
    ctx: &mut Ctx,
    dr: ObjId,
    path: &str,
    client: ClientTlsMode,
    server: MtlsMode,
    source: Option<(ObjId, String)>,
    c: &Conflict,
) {
    let mesh = ctx.mesh;
    let hosts = first_few(&c.hosts, 3);
    let (workloads, accept, have) = if c.workloads.len() > 1 {
        (
            format!("workloads {}", first_few(&c.workloads, 3)),
            "accept",
            "have",
        )
    } else {
        (
            format!("workload {}", first_few(&c.workloads, 3)),
            "accepts",
            "has",
        )
    };
    let ports = c.ports.iter().cloned().collect::<Vec<_>>().join(", ");
    let port_word = if c.ports.len() > 1 { "ports" } else { "port" };
    let from = match &source {
        Some((pa, _)) => format!(
            "{}, set by {}",
            mode_name(server),
            mesh.object(*pa).display_name()
        ),
        None => mode_name(server).to_string(),
    };
    let message = match client {
        ClientTlsMode::Disable => format!(
            "sidecars send plaintext to {hosts} (tls.mode {}), but {workloads} {accept} only mTLS on {port_word} {ports} ({from}): connections are reset and requests fail with 503; remove this tls block so auto mTLS applies, or set ISTIO_MUTUAL",
            tls_name(client)
        ),
        ClientTlsMode::Simple | ClientTlsMode::Mutual => format!(
            "sidecars originate their own TLS to {hosts} (tls.mode {}), but {workloads} {accept} only Istio mTLS on {port_word} {ports} ({from}): the handshake fails; use ISTIO_MUTUAL for in-mesh destinations, or set portLevelMtls PERMISSIVE for {port_word} {ports} if the application terminates TLS itself",
            tls_name(client)
        ),
        ClientTlsMode::IstioMutual => format!(
            "sidecars send Istio mTLS to {hosts} (tls.mode ISTIO_MUTUAL), but {workloads} {have} mTLS disabled on {port_word} {ports} ({from}): the server's sidecar hands the encrypted bytes to the application and requests fail; remove this tls block so auto mTLS follows the server, or stop disabling mTLS there"
        ),
    };
    let message = if c.presumed.is_empty() {
        message
    } else {
        let ns: Vec<String> = c.presumed.iter().cloned().collect();
        let (word, verb) = if ns.len() > 1 {
            ("namespaces", "are")
        } else {
            ("namespace", "is")
        };
        format!(
            "{message} (the {word} {} {verb} not in the input, so this takes its workloads to run sidecars, as its own mTLS policy implies)",
            join(&ns)
        )
    };
    let related = source.map(|(pa, field)| (pa, ctx.pos(pa, &field)));
    let f = ctx.at(STR0301, dr, path, message);
    if let Some((pa, pos)) = related {
        f.related(
            format!(
                "{} sets {} here",
                mesh.object(pa).display_name(),
                mode_name(server)
            ),
            pos,
        );
    }
}

/// Whether a namespace takes part in the mesh: labelled for injection, or running sidecars.
fn namespace_in_mesh(mesh: &Mesh, cluster: ClusterId, ns: &str) -> bool {
    let labelled = mesh.cluster(cluster).namespaces.get(ns).is_some_and(|n| {
        n.labels.get("istio-injection").map(String::as_str) == Some("enabled")
            || n.labels.contains_key("istio.io/rev")
    });
    labelled
        || mesh
            .workloads_in(cluster)
            .any(|w| w.namespace == ns && matches!(w.sidecar, Injection::Injected(_)))
}

/// STR0302: STRICT decided by a policy for workloads that run without a sidecar.
fn check_strict_without_sidecar(ctx: &mut Ctx, policies: &BTreeMap<ClusterId, PeerPolicies>) {
    let mesh = ctx.mesh;
    let mut by_source: BTreeMap<(ObjId, String), Vec<&Workload>> = BTreeMap::new();
    for w in &mesh.workloads {
        let Injection::NotInjected(_) = &w.sidecar else {
            continue;
        };
        if w.gateway.is_some() || mesh.is_ambient(w) {
            continue;
        }
        let config = mesh.config_cluster(w.cluster);
        let Some(policy) = policies.get(&config) else {
            continue;
        };
        let c = mesh.cluster(w.cluster);
        if w.namespace.starts_with("kube-") || w.namespace == c.istio_namespace {
            continue;
        }
        let mut sources: Vec<(ObjId, String)> = Vec::new();
        let eff = policy.effective(w, None);
        if eff.mode == MtlsMode::Strict
            && let Some(src) = eff.source
        {
            let pa = mesh.object(src.0);
            let targeted = pa
                .peer_authentication()
                .is_some_and(|p| workload_selector(&p.spec).is_some());
            let mesh_wide = pa.namespace() == mesh.cluster(config).root_namespace();
            // A namespace or mesh default only matters for workloads something calls (a
            // Service selects them; a migration job is a pure client), and a mesh-wide one says
            // nothing about namespaces that are not in the mesh.
            let serves = !mesh.services_of(w).is_empty();
            if targeted
                || (serves && (!mesh_wide || namespace_in_mesh(mesh, w.cluster, &w.namespace)))
            {
                sources.push(src);
            }
        }
        if let Some(pa) = policy.workload_policy(w) {
            for (port, m) in &pa.spec.port_level_mtls {
                if m.mode == Some(MtlsMode::Strict) {
                    sources.push((pa.id, format!("spec.portLevelMtls[\"{port}\"].mode")));
                }
            }
        }
        for src in sources {
            by_source.entry(src).or_default().push(w);
        }
    }
    for ((pa, path), workloads) in by_source {
        let names: BTreeSet<String> = workloads.iter().map(|w| workload_name(mesh, w)).collect();
        let reason = match &workloads[0].sidecar {
            Injection::NotInjected(r) => r.clone(),
            _ => String::new(),
        };
        let (noun, they) = if names.len() > 1 {
            ("these workloads run", "they accept")
        } else {
            ("it runs", "it accepts")
        };
        ctx.at(
            STR0302,
            pa,
            &path,
            format!(
                "STRICT mTLS from this policy applies to {}, but {noun} without a sidecar ({reason}): no proxy enforces the policy, so {they} plaintext from any pod and sidecar clients fall back to plaintext; inject a sidecar (or enroll the namespace in ambient mode), or exempt the workload explicitly with a workload-level PeerAuthentication",
                first_few(&names, 5)
            ),
        );
    }
}
