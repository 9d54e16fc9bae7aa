//! Gateway checks: selectors that reach no gateway pod (IST0101), credentials missing from the
//! pods' namespace or unusable (IST0101, IST0161, in [`credentials`]), ports the gateway's
//! Service does not expose (IST0162, in [`ports`]), Gateways on the same pods that reuse a
//! certificate (IST0138) or claim the same port and host (IST0145), and public routes to
//! internal services (STR0204, in [`exposure`]).
//!
//! A Gateway lives in a primary's config and selects gateway pods in any namespace of the
//! clusters that primary serves (unless istiod runs with `PILOT_SCOPE_GATEWAY_TO_NAMESPACE`).
//! The input is the whole world (as a cluster is to istioctl): a selector that reaches no
//! gateway pod, or a credential Secret missing where the pods run, is IST0101 even when the
//! input holds no gateway pods or Secrets at all; under `--partial` these are Info. Like
//! istioctl, the credential and port checks take any pod the selector matches, not only the
//! ones strait recognises as gateway proxies (custom gateways need not carry `istio: *gateway`
//! labels); they stay silent when the selector matches no pod.

mod credentials;
mod exposure;
mod keypair;
mod ports;
mod routes;

pub(super) use credentials::credential_problem;
pub(super) use exposure::routes;

use std::collections::BTreeSet;

use strait_api::Kind;
use strait_api::istio::gateway::{GatewaySpec, Server};
use strait_model::{ObjId, Workload, WorkloadId, gateway, host, selector};

use super::util::{self, join};
use crate::catalog::{IST0101, IST0138, IST0145};
use crate::context::Ctx;
use crate::finding::Level;

/// A Gateway with the workloads its selector reaches.
pub(super) struct Gw<'m> {
    pub id: ObjId,
    pub namespace: &'m str,
    pub name: &'m str,
    pub spec: &'m GatewaySpec,
    /// Every workload the selector matches.
    pub matched: Vec<&'m Workload>,
    /// Of those, the gateway proxies (the only ones a Gateway configures).
    pub proxies: Vec<&'m Workload>,
}

impl Gw<'_> {
    fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in mesh.primaries() {
        let served = mesh.served_by(c.id);
        let scoped = gateway::scoped_to_namespace(mesh, c.id);
        let gws: Vec<Gw> = util::in_cluster(mesh, c.id, Kind::Gateway)
            .filter_map(|(id, o)| {
                let g = o.gateway()?;
                let matched: Vec<&Workload> = mesh
                    .workloads
                    .iter()
                    .filter(|w| served.contains(&w.cluster))
                    .filter(|w| gateway::selects(&g.spec, o.namespace(), scoped, w))
                    .collect();
                let proxies = matched
                    .iter()
                    .copied()
                    .filter(|w| w.gateway.is_some())
                    .collect();
                Some(Gw {
                    id,
                    namespace: o.namespace(),
                    name: o.name(),
                    spec: &g.spec,
                    matched,
                    proxies,
                })
            })
            .collect();
        let gateway_pods: Vec<&Workload> = mesh
            .workloads
            .iter()
            .filter(|w| served.contains(&w.cluster) && w.gateway.is_some())
            .collect();
        for g in &gws {
            check_selector(ctx, g, &gateway_pods);
            credentials::check(ctx, g);
            ports::check(ctx, g);
        }
        check_pairs(ctx, &gws);
        exposure::check(ctx, c.id, &gws);
        routes::check(ctx, c.id);
    }
}

/// IST0101: a selector that reaches no pod of the clusters the Gateway's primary serves.
fn check_selector(ctx: &mut Ctx, g: &Gw, gateway_pods: &[&Workload]) {
    if !g.matched.is_empty() {
        return;
    }
    let existing: BTreeSet<String> = gateway_pods
        .iter()
        .map(|w| match w.label("istio") {
            Some(v) => format!("istio={v}"),
            None => format!("{}/{}", w.namespace, w.name),
        })
        .collect();
    let here = if existing.is_empty() {
        "the input holds no gateway pods".to_string()
    } else {
        let shown: Vec<String> = existing.iter().take(4).cloned().collect();
        format!("the gateway pods here are {}", join(&shown))
    };
    ctx.not_found(
        IST0101,
        g.id,
        "spec.selector",
        format!(
            "referenced selector not found: {} matches no gateway pod ({here}); no proxy gets this Gateway's servers, so its hosts are not served; fix the selector",
            selector::describe(&g.spec.selector),
        ),
    );
}

/// Whether two gateways configure a common proxy: by the pods both select when the manifests
/// hold them, else by one selector containing the other (istioctl's rule).
fn share_pods(a: &Gw, b: &Gw) -> bool {
    if !a.proxies.is_empty() && !b.proxies.is_empty() {
        let ids: BTreeSet<WorkloadId> = a.proxies.iter().map(|w| w.id).collect();
        return b.proxies.iter().any(|w| ids.contains(&w.id));
    }
    if !a.proxies.is_empty() || !b.proxies.is_empty() {
        return false;
    }
    selector_within(a, b) || selector_within(b, a)
}

/// Whether every label `a` selects on is one `b` selects on too, with the same value: `a`
/// reaches every pod `b` does.
fn selector_within(a: &Gw, b: &Gw) -> bool {
    a.spec
        .selector
        .iter()
        .all(|(k, v)| b.spec.selector.get(k) == Some(v))
}

/// The host part of a server host (`ns/host` → `host`), lowercased.
fn host_part(h: &str) -> String {
    host::ScopedHost::parse(h).host.to_ascii_lowercase()
}

fn is_http(protocol: &str) -> bool {
    matches!(
        protocol.to_ascii_uppercase().as_str(),
        "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB"
    )
}

/// The certificate a TLS server presents, as a comparable key with its field path.
fn certificate(i: usize, s: &Server) -> Option<(String, String)> {
    let tls = s.tls.as_ref()?;
    if !tls.credential_name.is_empty() {
        return Some((
            format!("credential {}", tls.credential_name),
            format!("spec.servers[{i}].tls.credentialName"),
        ));
    }
    if !tls.server_certificate.is_empty() && !tls.private_key.is_empty() {
        return Some((
            format!(
                "certificate file {} with key {}",
                tls.server_certificate, tls.private_key
            ),
            format!("spec.servers[{i}].tls.serverCertificate"),
        ));
    }
    None
}

/// IST0138 and IST0145 over every pair of Gateways sharing pods.
fn check_pairs(ctx: &mut Ctx, gws: &[Gw]) {
    for (x, a) in gws.iter().enumerate() {
        for b in gws.iter().skip(x + 1) {
            if !share_pods(a, b) {
                continue;
            }
            for (i, sa) in a.spec.servers.iter().enumerate() {
                for (j, sb) in b.spec.servers.iter().enumerate() {
                    let (Some(pa), Some(pb)) = (&sa.port, &sb.port) else {
                        continue;
                    };
                    if pa.number != pb.number || sa.bind != sb.bind {
                        continue;
                    }
                    check_conflict(ctx, (a, i, sa), (b, j, sb), pa.number);
                    check_certificate(ctx, (a, i, sa), (b, j, sb), pa.number);
                }
            }
        }
    }
}

/// IST0145: the same host on the same port of the same pods.
fn check_conflict(ctx: &mut Ctx, a: (&Gw, usize, &Server), b: (&Gw, usize, &Server), port: u32) {
    let hb: BTreeSet<String> = b.2.hosts.iter().map(|h| host_part(h)).collect();
    let Some(k) = a.2.hosts.iter().position(|h| hb.contains(&host_part(h))) else {
        return;
    };
    let shared = host_part(&a.2.hosts[k]);
    let Some(l) = b.2.hosts.iter().position(|h| host_part(h) == shared) else {
        return;
    };
    // istiod rejects a second server with `tls` (even only httpsRedirect) for a host it already
    // has on the port; plain HTTP servers are merged into one route table instead.
    let plain_http = !(a.2.tls.is_some() && b.2.tls.is_some())
        && a.2.port.as_ref().is_some_and(|p| is_http(&p.protocol))
        && b.2.port.as_ref().is_some_and(|p| is_http(&p.protocol));
    for ((g, i, _), (other, _, _), idx) in [(a, b, k), (b, a, l)] {
        let message = if plain_http {
            format!(
                "gateway {} also serves host {shared} on port {port} of the same pods: the routes of both are merged into one virtual host, and where both match a request which one wins is not defined; serve each host from one Gateway",
                other.full_name()
            )
        } else {
            format!(
                "gateway {} also serves host {shared} on port {port} of the same pods: istiod keeps only one of the two servers and drops the other, so its routes and certificate are ignored; serve each host from one Gateway, or bind them to different addresses",
                other.full_name()
            )
        };
        let f = ctx.at(
            IST0145,
            g.id,
            &format!("spec.servers[{i}].hosts[{idx}]"),
            message,
        );
        if plain_http {
            f.level(Level::Warning);
        }
    }
}

/// IST0138: one certificate on different hosts of the same port and pods.
fn check_certificate(ctx: &mut Ctx, a: (&Gw, usize, &Server), b: (&Gw, usize, &Server), port: u32) {
    let (Some((ka, path_a)), Some((kb, path_b))) = (certificate(a.1, a.2), certificate(b.1, b.2))
    else {
        return;
    };
    if ka != kb {
        return;
    }
    let ha: BTreeSet<String> = a.2.hosts.iter().map(|h| host_part(h)).collect();
    let hb: BTreeSet<String> = b.2.hosts.iter().map(|h| host_part(h)).collect();
    if ha == hb {
        return;
    }
    // As istioctl reports it: on the Gateway whose selector reaches all of the other's pods
    // (on both when the selectors are the same); on both when the pods are shared but neither
    // selector holds the other.
    let unrelated = !selector_within(a.0, b.0) && !selector_within(b.0, a.0);
    for ((g, _, s), (other, _, os), path) in [(a, b, &path_a), (b, a, &path_b)] {
        if !unrelated && !selector_within(g, other) {
            continue;
        }
        let hosts: Vec<String> = s.hosts.iter().map(|h| host_part(h)).collect();
        let other_hosts: Vec<String> = os.hosts.iter().map(|h| host_part(h)).collect();
        ctx.at(
            IST0138,
            g.id,
            path,
            format!(
                "gateway {} presents the same {ka} on port {port} of the same pods for {}: a browser that opened an HTTP/2 connection for {} reuses it for those hosts, and this server's routes answer them with 404; serve all hosts of the certificate from one Gateway server, or give each Gateway its own certificate",
                other.full_name(),
                join(&other_hosts),
                join(&hosts)
            ),
        );
    }
}
