//! Kubernetes Ingresses Istio would serve (class `istio`, `strait_model::ingress`): backends
//! that name a Service, or a port of it, the input does not hold (IST0101). That strait's
//! gateways do not serve them at all is reported with the other configuration strait does not
//! act on (STR0015). Ingresses of other classes belong to other controllers and are left alone.

use k8s_openapi::api::networking::v1::IngressServiceBackend;
use strait_api::Kind;
use strait_model::{ObjId, ServiceSource, ingress};

use super::util;
use crate::catalog::IST0101;
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for (id, o) in util::objects(mesh, Kind::Ingress) {
        if !ingress::served_by_istio(mesh, id) {
            continue;
        }
        let Some(spec) = o.ingress().and_then(|i| i.spec.as_ref()) else {
            continue;
        };
        if let Some(svc) = spec
            .default_backend
            .as_ref()
            .and_then(|b| b.service.as_ref())
        {
            check_backend(ctx, id, "spec.defaultBackend.service", svc);
        }
        for (i, rule) in spec.rules.iter().flatten().enumerate() {
            let paths = rule
                .http
                .as_ref()
                .map(|h| h.paths.as_slice())
                .unwrap_or(&[]);
            for (j, p) in paths.iter().enumerate() {
                if let Some(svc) = &p.backend.service {
                    let field = format!("spec.rules[{i}].http.paths[{j}].backend.service");
                    check_backend(ctx, id, &field, svc);
                }
            }
        }
    }
}

/// IST0101: the Service, or its port, is not in the input (in any cluster: namespace sameness).
fn check_backend(ctx: &mut Ctx, id: ObjId, field: &str, backend: &IngressServiceBackend) {
    let mesh = ctx.mesh;
    let ns = mesh.object(id).namespace();
    let services: Vec<_> = mesh
        .registry
        .all()
        .iter()
        .filter(|s| s.source == ServiceSource::Kubernetes && s.namespace == ns)
        .filter(|s| s.name == backend.name)
        .collect();
    if services.is_empty() {
        ctx.not_found(
            IST0101,
            id,
            &format!("{field}.name"),
            format!(
                "referenced service not found: no Service {ns}/{} in any cluster, so requests routed to this backend fail (503); check the name",
                backend.name
            ),
        );
        return;
    }
    let Some(port) = &backend.port else { return };
    let (wanted, found) = match (&port.name, port.number) {
        (Some(name), _) if !name.is_empty() => (
            format!("port {name:?}"),
            services
                .iter()
                .any(|s| s.ports.iter().any(|p| &p.name == name)),
        ),
        (_, Some(n)) => (
            format!("port {n}"),
            services
                .iter()
                .any(|s| s.ports.iter().any(|p| i64::from(p.number) == i64::from(n))),
        ),
        _ => return,
    };
    if !found {
        ctx.not_found(
            IST0101,
            id,
            &format!("{field}.port"),
            format!(
                "referenced port not found: Service {ns}/{} has no {wanted}, so requests routed to this backend fail (503); use one of its ports",
                backend.name
            ),
        );
    }
}
