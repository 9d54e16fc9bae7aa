//! Valid Istio configuration strait does not act on (yet). It is accepted, never silently:
//! every use is reported with its file and line, by the control plane when it loads the mesh
//! and by `strait analyze` (STR0015), each with what happens instead. Where acting on part of
//! a resource would let through what the whole forbids, the part is not served (it fails
//! closed) and the report says so.

use strait_api::de::{FieldPath, Seg};
use strait_api::istio::destination_rule::{ClientTlsMode, SimpleLb};
use strait_api::istio::gateway::ServerTlsMode;
use strait_api::istio::service_entry::Resolution;
use strait_api::{Kind, Object};

use crate::cluster::Cluster;
use crate::ids::ObjId;
use crate::mesh::Mesh;

mod security;
mod table;

use strait_api::yaml::{Hit, Paths};
pub use strait_api::yaml::{Step, steps};

pub use table::{REPORTED, Reported, SAME_AS, When, below, canonical, places, reported};

/// One field in use that is not acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotApplied {
    pub object: ObjId,
    /// Field path in the object (`spec.http[0].mirror`).
    pub path: String,
    /// What happens instead.
    pub what: String,
    /// A whole API strait's data path does not serve yet (the Kubernetes Gateway API), rather
    /// than a field of one it serves: worth knowing, not a fault of the configuration.
    pub not_served: bool,
}

impl NotApplied {
    pub(crate) fn new(object: ObjId, path: String, what: &str) -> NotApplied {
        NotApplied {
            object,
            path,
            what: what.to_string(),
            not_served: false,
        }
    }
}

/// Every use of a field strait does not act on, in the config clusters.
pub fn report(mesh: &Mesh) -> Vec<NotApplied> {
    let mut out = Vec::new();
    // Istio config is read from config clusters only; what a remote holds is not applied at
    // all (the analyzer says so).
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::VirtualService) {
            let Some(vs) = o.virtual_service() else {
                continue;
            };
            let mut note = |path: String, what: &str| out.push(NotApplied::new(id, path, what));
            for (i, r) in vs.spec.http.iter().enumerate() {
                if r.mirror.is_some() || !r.mirrors.is_empty() {
                    note(
                        format!("spec.http[{i}].mirror"),
                        "not applied: requests are not mirrored",
                    );
                }
                if r.cors_policy.is_some() {
                    note(
                        format!("spec.http[{i}].corsPolicy"),
                        "not applied: no CORS handling in the sidecar",
                    );
                }
                if r.delegate.is_some() {
                    note(
                        format!("spec.http[{i}].delegate"),
                        "not applied: delegate VirtualServices are not followed",
                    );
                }
                if let Some(a) = r.fault.as_ref().and_then(|f| f.abort.as_ref())
                    && a.http_status.is_none()
                {
                    note(
                        format!("spec.http[{i}].fault.abort"),
                        "only httpStatus aborts are injected",
                    );
                }
                if r.fault
                    .as_ref()
                    .and_then(|f| f.delay.as_ref())
                    .is_some_and(|d| d.fixed_delay.is_none())
                {
                    note(
                        format!("spec.http[{i}].fault.delay"),
                        "only fixedDelay is injected",
                    );
                }
            }
            let binds_mesh =
                vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh");
            if !vs.spec.tls.is_empty() && binds_mesh {
                note(
                    "spec.tls".into(),
                    "not applied by sidecars: TLS traffic is routed by its service's default route (gateways apply TLS routes)",
                );
            }
        }
        for (id, o) in c.of_kind(Kind::DestinationRule) {
            let Some(dr) = o.destination_rule() else {
                continue;
            };
            for (path, tp) in dr.spec.traffic_policies() {
                let own = tp.tls.as_ref().map(|t| (format!("{path}.tls"), t));
                let ports = tp
                    .port_level_settings
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| {
                        p.tls
                            .as_ref()
                            .map(|t| (format!("{path}.portLevelSettings[{i}].tls"), t))
                    });
                for (field, tls) in own.into_iter().chain(ports) {
                    if matches!(
                        tls.mode,
                        Some(ClientTlsMode::Simple | ClientTlsMode::Mutual)
                    ) {
                        out.push(NotApplied::new(
                            id,
                            format!("{field}.mode"),
                            "not applied: TLS origination is not supported, so requests to this destination are refused (503 NC) rather than sent in plaintext",
                        ));
                    }
                }
            }
        }
    }
    gateways(mesh, &mut out);
    kinds(mesh, &mut out);
    ingresses(mesh, &mut out);
    gateway_api(mesh, &mut out);
    security::report(mesh, &mut out);
    load_balancers(mesh, &mut out);
    service_entries(mesh, &mut out);
    workload_entry_ports(mesh, &mut out);
    when_set(mesh, &mut out);
    access_log_files(mesh, &mut out);
    out
}

/// The fields [`REPORTED`] reports wherever they are set, found in the objects as written.
fn when_set(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    let mut wanted: Vec<(Kind, String, &str)> = Vec::new();
    for (kind, path, when) in reported() {
        if let When::Set(what) = when {
            wanted.extend(
                places(kind, path)
                    .into_iter()
                    .map(|(kind, path)| (kind, path, what)),
            );
        }
    }
    let mut kinds: Vec<Kind> = Vec::new();
    for (kind, _, _) in &wanted {
        if !kinds.contains(kind) {
            kinds.push(*kind);
        }
    }
    let by_kind: Vec<(Kind, Paths)> = kinds
        .into_iter()
        .map(|kind| {
            let paths = wanted.iter().enumerate().filter(|(_, w)| w.0 == kind);
            (kind, Paths::new(paths.map(|(i, w)| (w.1.as_str(), i))))
        })
        .collect();
    for c in mesh.primaries() {
        let mut found: Vec<(usize, NotApplied)> = Vec::new();
        for (kind, paths) in &by_kind {
            for (id, o) in holding(c, *kind) {
                for hit in paths.find(o.source.root(), o.kind == Kind::ConfigMap) {
                    found.push((hit.path, NotApplied::new(id, hit.at, wanted[hit.path].2)));
                }
            }
        }
        // Reported path by path, as the table lists them (a stable sort keeps each path's
        // uses in object and tree order).
        found.sort_by_key(|(path, _)| *path);
        out.extend(found.into_iter().map(|(_, n)| n));
    }
}

/// The objects of `kind` in `c` that hold Istio configuration: of the ConfigMaps, only the
/// mesh config's, as the model reads them.
fn holding(c: &Cluster, kind: Kind) -> impl Iterator<Item = (ObjId, &Object)> {
    c.of_kind(kind).filter(move |(_, o)| {
        kind != Kind::ConfigMap
            || (o.namespace() == c.istio_namespace
                && (o.name() == "istio" || o.name().starts_with("istio-")))
    })
}

/// `meshConfig.accessLogFile` turns access logs on; the proxy writes them to its standard
/// output (standard error for `/dev/stderr`), whatever the path.
fn access_log_files(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    for c in mesh.primaries() {
        for (kind, path) in places(Kind::IstioOperator, "spec.meshConfig.accessLogFile") {
            let paths = Paths::new([(path.as_str(), 0)]);
            for (id, o) in holding(c, kind) {
                for Hit { at, value, .. } in paths.find(o.source.root(), o.kind == Kind::ConfigMap)
                {
                    if value.is_some_and(|v| v != "/dev/stdout" && v != "/dev/stderr") {
                        out.push(NotApplied::new(
                            id,
                            at,
                            "not applied as a path: access log lines go to the proxy's standard output (standard error for /dev/stderr), as with /dev/stdout, not to this file",
                        ));
                    }
                }
            }
        }
    }
}

/// Kinds whose objects are accepted and not acted on at all.
fn kinds(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    let table: [(Kind, &str); 4] = [
        (
            Kind::WasmPlugin,
            "not applied: strait's proxy runs no Wasm plugins, so requests pass without this plugin",
        ),
        (
            Kind::ProxyConfig,
            "not applied: proxy settings come from the mesh config and pod annotations",
        ),
        (
            Kind::EnvoyFilter,
            "not applied: strait's proxy is not Envoy",
        ),
        (
            Kind::WorkloadGroup,
            "not applied: no WorkloadEntries are created from it",
        ),
    ];
    for c in mesh.primaries() {
        for (kind, what) in table {
            for (id, _) in c.of_kind(kind) {
                out.push(NotApplied::new(id, "spec".into(), what));
            }
        }
    }
}

/// Kubernetes Ingresses Istio would serve (class `istio`): strait's gateways serve Gateways.
fn ingresses(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    for c in &mesh.clusters {
        for (id, _) in c.of_kind(Kind::Ingress) {
            if crate::ingress::served_by_istio(mesh, id) {
                out.push(NotApplied::new(
                    id,
                    "spec".into(),
                    "not applied: strait's ingress gateways serve Gateways and VirtualServices, not Kubernetes Ingress, so requests for these hosts find no route (404); write a Gateway and a VirtualService for them",
                ));
            }
        }
    }
}

/// What Istio serves through the Kubernetes Gateway API: Istio's Gateways, the routes that
/// attach to them or to Services, and the policies and listener sets beside them. strait's data
/// path serves Istio's own Gateway and VirtualService only.
fn gateway_api(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    const WHAT: &str = "not served: strait's data path does not serve the Kubernetes Gateway API yet, so under `strait up` no gateway is deployed and no route is programmed for it (Istio serves it); use an Istio Gateway and VirtualService to run it on strait";
    for c in mesh.primaries() {
        let gateways = c.of_kind(Kind::KubeGateway).filter(|(_, o)| {
            crate::gateway_api::class_of(c, o) == crate::gateway_api::Class::Istio
        });
        let routes = crate::gateway_api::ROUTE_KINDS
            .iter()
            .flat_map(|k| c.of_kind(*k))
            .filter(|(_, o)| crate::gateway_api::route_is_istio(mesh, c, o));
        let others = [Kind::BackendTLSPolicy, Kind::ListenerSet]
            .iter()
            .flat_map(|k| c.of_kind(*k));
        for (id, _) in gateways.chain(routes).chain(others) {
            let mut n = NotApplied::new(id, "spec".into(), WHAT);
            n.not_served = true;
            out.push(n);
        }
    }
}

/// Load-balancer settings strait reads but cannot honour as written.
fn load_balancers(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::DestinationRule) {
            let Some(dr) = o.destination_rule() else {
                continue;
            };
            for (path, tp) in dr.spec.traffic_policies() {
                let own = tp.load_balancer.as_ref().map(|lb| (path.clone(), lb));
                let ports = tp
                    .port_level_settings
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| {
                        p.load_balancer
                            .as_ref()
                            .map(|lb| (format!("{path}.portLevelSettings[{i}]"), lb))
                    });
                for (at, lb) in own.into_iter().chain(ports) {
                    if lb.simple == Some(SimpleLb::Passthrough) {
                        out.push(NotApplied::new(
                            id,
                            format!("{at}.loadBalancer.simple"),
                            "PASSTHROUGH is not supported: requests are balanced over the service's endpoints by LEAST_REQUEST, not sent to the address the client asked for",
                        ));
                    }
                }
            }
        }
    }
}

/// ServiceEntry features the proxy does not act on.
fn service_entries(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::ServiceEntry) {
            let Some(se) = o.service_entry() else {
                continue;
            };
            if !se.spec.endpoints.is_empty() {
                out.push(NotApplied::new(
                    id,
                    "spec.endpoints".into(),
                    "not applied: only workloads its workloadSelector selects are endpoints; requests to its hosts find none (503)",
                ));
            } else if se.spec.workload_selector.is_none() {
                let what = match se.spec.effective_resolution() {
                    Resolution::Static => continue,
                    Resolution::None => {
                        "not applied: connections to its hosts are not passed through to the address the client asked for"
                    }
                    Resolution::Dns | Resolution::DnsRoundRobin | Resolution::DynamicDns => {
                        "not applied: its hosts are not resolved in DNS"
                    }
                };
                out.push(NotApplied::new(
                    id,
                    "spec.resolution".into(),
                    &format!(
                        "{what}; only workloads a workloadSelector selects are endpoints, so requests to its hosts find none (503 UH)"
                    ),
                ));
            }
        }
    }
}

/// WorkloadEntry `ports`: Istio maps a service port *name* to the entry's port; strait reads
/// the map only when a Service's targetPort names a port. Reported where the two differ.
fn workload_entry_ports(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::WorkloadEntry) {
            let Some(we) = o.workload_entry() else {
                continue;
            };
            if we.spec.ports.is_empty() {
                continue;
            }
            let Some(w) = mesh.workloads.iter().find(|w| w.object == id) else {
                continue;
            };
            let mut seen: Vec<String> = Vec::new();
            for s in mesh.services_of(w) {
                for p in &s.ports {
                    let Some(want) = we.spec.ports.get(&p.name) else {
                        continue;
                    };
                    let got = crate::peer_auth::target_port(mesh, w, p);
                    if got == Some(*want) {
                        continue;
                    }
                    let path = FieldPath(vec![
                        Seg::Key("spec".into()),
                        Seg::Key("ports".into()),
                        Seg::Key(p.name.clone()),
                    ])
                    .to_string();
                    if seen.contains(&path) {
                        continue;
                    }
                    let instead = match got {
                        Some(n) => format!("goes to port {n}"),
                        None => "is not delivered".to_string(),
                    };
                    out.push(NotApplied::new(
                        id,
                        path.clone(),
                        &format!(
                            "not applied: traffic for port {} of {} {instead}, not to {want} (strait reads this map only for a Service whose targetPort names a port)",
                            p.name, s.hostname
                        ),
                    ));
                    seen.push(path);
                }
            }
        }
    }
}

/// Gateway server settings strait does not serve: the server is left out, so its port refuses
/// rather than serving something weaker than asked.
fn gateways(mesh: &Mesh, out: &mut Vec<NotApplied>) {
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::Gateway) {
            let Some(g) = o.gateway() else { continue };
            for (i, s) in g.spec.servers.iter().enumerate() {
                let at = |f: &str| format!("spec.servers[{i}].{f}");
                if !s.default_endpoint.is_empty() {
                    out.push(NotApplied::new(
                        id,
                        at("defaultEndpoint"),
                        "not applied: traffic goes to the routes' destinations",
                    ));
                }
                if !s.bind.is_empty() {
                    out.push(NotApplied::new(
                        id,
                        at("bind"),
                        "not applied: the server listens on every address of the gateway",
                    ));
                }
                let Some(tls) = &s.tls else { continue };
                let mode = tls.effective_mode();
                let terminates = matches!(
                    mode,
                    ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
                );
                let refused = |f: &str, why: &str| {
                    NotApplied::new(
                        id,
                        at(f),
                        &format!(
                            "{why}; the server is not served and its port refuses TLS for its hosts (fail closed)"
                        ),
                    )
                };
                if mode == ServerTlsMode::IstioMutual {
                    out.push(refused(
                        "tls.mode",
                        "ISTIO_MUTUAL termination at a gateway is not supported",
                    ));
                }
                if terminates && tls.credential_name.is_empty() {
                    out.push(refused("tls", "certificates from files in the gateway pod (serverCertificate, privateKey) cannot be read; use credentialName"));
                }
                if !tls.credential_names.is_empty() || !tls.tls_certificates.is_empty() {
                    out.push(NotApplied::new(
                        id,
                        at("tls.credentialNames"),
                        "not applied: only credentialName (one certificate) is served",
                    ));
                }
                if terminates && !tls.ca_crl.is_empty() {
                    out.push(refused(
                        "tls.caCrl",
                        "certificate revocation lists are not checked",
                    ));
                }
                if terminates
                    && (!tls.verify_certificate_spki.is_empty()
                        || !tls.verify_certificate_hash.is_empty())
                {
                    out.push(refused(
                        "tls.verifyCertificateSpki",
                        "client certificate pinning is not supported",
                    ));
                }
            }
        }
    }
}
