//! The Kubernetes Gateway API, checked as istiod and the API server would take it.
//!
//! Gateways: a class that is not Istio's (STR0206); what the Gateway CRD's validation rejects
//! (STR0016: listener names and port/protocol/hostname combinations that repeat, `tls` or
//! `hostname` where the protocol forbids them, HTTPS without a terminating TLS); listeners that
//! conflict with an earlier one on their port, which istiod marks Conflicted and does not
//! program (STR0209, the same first-wins order as istiod's); certificate Secrets that are
//! missing (IST0101), in another namespace without a ReferenceGrant (STR0208) or unusable
//! (IST0161); and, for a Gateway deployed onto an existing gateway Service (an address of type
//! Hostname), listener ports that Service does not expose (IST0162).
//!
//! Routes are in [`routes`], matches one route shadows in another (STR0210) in [`shadowed`],
//! the CRD bundle versions (IST0176) in [`crds`]. Status conditions
//! are read by the `conditions` analyzer (IST0171), selectors on a Gateway's pods by
//! `targetrefs` (IST0166).

mod crds;
mod routes;
mod shadowed;

use std::collections::BTreeSet;

use strait_api::Kind;
use strait_api::gateway_api::{GatewaySpec, Listener};
use strait_model::gateway_api::{self as gapi, Class};
use strait_model::{Cluster, ObjId, host};

use super::gateway::credential_problem;
use crate::catalog::{IST0101, IST0161, IST0162, STR0016, STR0206, STR0208, STR0209};
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    // Gateway API objects are configuration: istiod reads them from its config cluster (what
    // a remote holds is STR0113's).
    for c in mesh.primaries() {
        for (id, o) in c.of_kind(Kind::KubeGateway) {
            let Some(gw) = o.kube_gateway() else { continue };
            let spec = &gw.spec;
            match gapi::class_of(c, o) {
                Class::Istio => {}
                Class::Other { controller } => {
                    ctx.at(
                        STR0206,
                        id,
                        "spec.gatewayClassName",
                        format!(
                            "GatewayClass \"{}\" belongs to controller \"{controller}\", not Istio's ({}): Istio does not serve this Gateway or the routes on it",
                            spec.gateway_class_name,
                            strait_api::gateway_api::ISTIO_CONTROLLER
                        ),
                    );
                    continue;
                }
                Class::Unknown => {
                    let hint = strait_api::suggest::did_you_mean(
                        &spec.gateway_class_name,
                        strait_api::gateway_api::BUILTIN_CLASSES,
                    )
                    .map(|s| format!(" (did you mean \"{s}\"?)"))
                    .unwrap_or_default();
                    ctx.at(
                        STR0206,
                        id,
                        "spec.gatewayClassName",
                        format!(
                            "GatewayClass \"{}\" is neither one Istio creates ({}) nor defined in the input{hint}: Istio does not serve this Gateway or the routes on it",
                            spec.gateway_class_name,
                            strait_api::gateway_api::BUILTIN_CLASSES.join(", ")
                        ),
                    );
                    continue;
                }
            }
            would_reject(ctx, id, spec);
            conflicts(ctx, id, spec);
            certificates(ctx, c, id, o.namespace(), spec);
            service_ports(ctx, c, id, spec);
        }
    }
    routes::run(ctx);
    shadowed::run(ctx);
    crds::run(ctx);
}

/// What the Gateway CRD's validation rules refuse on apply.
fn would_reject(ctx: &mut Ctx, id: ObjId, spec: &GatewaySpec) {
    if spec.gateway_class_name.is_empty() {
        ctx.at(
            STR0016,
            id,
            "spec",
            "spec.gatewayClassName is required: the API server rejects this Gateway",
        );
    }
    let mut names = BTreeSet::new();
    let mut combos = BTreeSet::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        let at = |f: &str| format!("spec.listeners[{i}]{f}");
        let mut reject = |field: String, why: String| {
            ctx.at(
                STR0016,
                id,
                &field,
                format!("{why}: the API server rejects this Gateway"),
            );
        };
        if !names.insert(l.name.as_str()) {
            reject(
                at(".name"),
                format!(
                    "listener name \"{}\" is used twice; names must be unique",
                    l.name
                ),
            );
        }
        if !combos.insert((l.port, l.protocol.as_str(), l.hostname_or_any())) {
            reject(
                at(""),
                format!(
                    "another listener already has port {}, protocol {} and hostname {}; each combination must be unique",
                    l.port,
                    l.protocol,
                    l.hostname_or_any()
                ),
            );
        }
        if !(1..=65535).contains(&l.port) {
            reject(
                at(".port"),
                format!("port {} is not between 1 and 65535", l.port),
            );
        }
        let proto = l.protocol.as_str();
        if l.tls.is_some() && matches!(proto, "HTTP" | "TCP" | "UDP") {
            reject(
                at(".tls"),
                format!("tls must not be set for protocol {proto}"),
            );
        }
        if !l.hostname.is_empty() && matches!(proto, "TCP" | "UDP") {
            reject(
                at(".hostname"),
                format!("hostname must not be set for protocol {proto}"),
            );
        }
        if matches!(proto, "HTTPS" | "TLS") && l.tls.is_none() {
            reject(at(""), format!("tls must be set for protocol {proto}"));
        }
        if let Some(tls) = &l.tls {
            let terminate = tls.mode.is_empty() || tls.mode == "Terminate";
            if proto == "HTTPS" && !terminate {
                reject(
                    at(".tls.mode"),
                    format!(
                        "tls mode must be Terminate for protocol HTTPS, not {}",
                        tls.mode
                    ),
                );
            }
            if terminate && tls.certificate_refs.is_empty() && tls.options.is_empty() {
                reject(
                    at(".tls"),
                    "certificateRefs or options must be set when the tls mode is Terminate".into(),
                );
            }
        }
    }
}

/// Whether two HTTP-like or two TCP-like listeners on one port can both be served, as istiod
/// decides it: HTTP, HTTPS and TLS share a port by hostname; TCP and UDP own theirs.
fn distinct(a: &Listener, b: &Listener) -> bool {
    let http_like = |l: &Listener| matches!(l.protocol.as_str(), "HTTP" | "HTTPS" | "TLS");
    let stream = |l: &Listener| matches!(l.protocol.as_str(), "TCP" | "UDP");
    if a.port != b.port {
        return true;
    }
    if (stream(a) && http_like(b)) || (http_like(a) && stream(b)) || (stream(a) && stream(b)) {
        return false;
    }
    if http_like(a) && http_like(b) {
        return a.hostname_or_any() != b.hostname_or_any();
    }
    a.protocol != b.protocol
}

/// STR0209: listeners istiod marks Conflicted. Exact repeats of port, protocol and hostname
/// are the API server's to refuse (STR0016 above), so they are not reported twice.
fn conflicts(ctx: &mut Ctx, id: ObjId, spec: &GatewaySpec) {
    let mut accepted: Vec<&Listener> = Vec::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        let Some(prior) = accepted.iter().find(|p| !distinct(l, p)) else {
            accepted.push(l);
            continue;
        };
        let repeat = prior.protocol == l.protocol && prior.hostname_or_any() == l.hostname_or_any();
        if repeat {
            continue;
        }
        let stream = |l: &Listener| matches!(l.protocol.as_str(), "TCP" | "UDP");
        let reason = if prior.protocol == l.protocol && !(stream(l) && stream(prior)) {
            "HostnameConflict"
        } else {
            "ProtocolConflict"
        };
        ctx.at(
            STR0209,
            id,
            &format!("spec.listeners[{i}]"),
            format!(
                "listener \"{}\" ({} on port {}, hostname {}) conflicts with the earlier listener \"{}\" ({}, hostname {}): istiod marks it Conflicted ({reason}) and does not program it",
                l.name,
                l.protocol,
                l.port,
                l.hostname_or_any(),
                prior.name,
                prior.protocol,
                prior.hostname_or_any()
            ),
        );
    }
}

/// Listener certificate Secrets: present (IST0101), permitted across namespaces (STR0208) and
/// usable (IST0161).
fn certificates(ctx: &mut Ctx, c: &Cluster, id: ObjId, gw_ns: &str, spec: &GatewaySpec) {
    for (i, l) in spec.listeners.iter().enumerate() {
        let Some(tls) = &l.tls else { continue };
        for (k, r) in tls.certificate_refs.iter().enumerate() {
            let field = format!("spec.listeners[{i}].tls.certificateRefs[{k}]");
            let group = r.group.as_deref().unwrap_or("");
            let kind = r.kind.as_deref().unwrap_or("Secret");
            if !matches!(group, "" | "core") || kind != "Secret" {
                continue;
            }
            let ns = r.namespace.as_deref().unwrap_or(gw_ns);
            let Some((sid, secret)) = c.find(Kind::Secret, ns, &r.name) else {
                ctx.not_found(
                    IST0101,
                    id,
                    &field,
                    format!("Referenced certificate Secret {ns}/{} not found", r.name),
                );
                continue;
            };
            if ns != gw_ns
                && !gapi::reference_granted(
                    c,
                    Kind::KubeGateway,
                    gw_ns,
                    ns,
                    ("", "Secret", &r.name),
                )
            {
                ctx.at(
                    STR0208,
                    id,
                    &field,
                    format!(
                        "certificate Secret {ns}/{} is in another namespace and no ReferenceGrant in {ns} lets Gateways in {gw_ns} use it: the listener \"{}\" gets no certificate",
                        r.name, l.name
                    ),
                );
                continue;
            }
            let Some(s) = secret.secret() else { continue };
            if let Some(problem) = credential_problem(s, c.id, sid) {
                ctx.at(
                    IST0161,
                    id,
                    &field,
                    format!(
                        "Invalid certificate reference Secret {ns}/{}: {problem}",
                        r.name
                    ),
                );
            }
        }
    }
}

/// IST0162 for a Gateway deployed onto an existing gateway (an address of type Hostname naming
/// a Service): each listener port must be one of that Service's ports.
fn service_ports(ctx: &mut Ctx, c: &Cluster, id: ObjId, spec: &GatewaySpec) {
    for (a, addr) in spec.addresses.iter().enumerate() {
        if addr.kind != "Hostname" {
            continue;
        }
        let Some((name, ns)) = host::service_of(&addr.value, &c.domain) else {
            continue;
        };
        let Some((_, svc)) = c.find(Kind::Service, ns, name) else {
            ctx.not_found(
                IST0101,
                id,
                &format!("spec.addresses[{a}].value"),
                format!("Referenced gateway Service {ns}/{name} not found"),
            );
            continue;
        };
        let ports: BTreeSet<i32> = svc
            .service()
            .and_then(|s| s.spec.as_ref())
            .into_iter()
            .flat_map(|s| s.ports.iter().flatten())
            .map(|p| p.port)
            .collect();
        for (i, l) in spec.listeners.iter().enumerate() {
            if !ports.contains(&(l.port as i32)) {
                ctx.at(
                    IST0162,
                    id,
                    &format!("spec.listeners[{i}].port"),
                    format!(
                        "The gateway is listening on a port ({}) that is not defined in the Service {ns}/{name} it is deployed onto, so traffic cannot reach it",
                        l.port
                    ),
                );
            }
        }
    }
}
