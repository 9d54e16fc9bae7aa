//! DestinationRule checks: hosts that name no service, subsets that select no workload, client
//! TLS that does not verify the server, and deprecated load-balancer and outlier settings.

mod deprecated;
mod subsets;
mod tls;

use strait_api::Kind;
use strait_api::istio::destination_rule::DestinationRuleSpec;
use strait_model::host::{self, ExportTo};
use strait_model::{ObjId, ServiceInstance, ServiceSource};

use super::util::{self, fqdn};
use crate::catalog::IST0174;
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for (id, o) in util::objects(mesh, Kind::DestinationRule) {
        let Some(dr) = o.destination_rule() else {
            continue;
        };
        if let Some(services) = check_host(ctx, id, &dr.spec) {
            subsets::check(ctx, id, &dr.spec, &services);
        }
        tls::check(ctx, id, &dr.spec);
        deprecated::check(ctx, id, &dr.spec);
    }
}

/// IST0174. Returns the services the host names (for the subset check), or `None` when it
/// names nothing or cannot be judged.
fn check_host<'m>(
    ctx: &mut Ctx<'m>,
    id: ObjId,
    spec: &DestinationRuleSpec,
) -> Option<Vec<&'m ServiceInstance>> {
    let mesh = ctx.mesh;
    let h = spec.host.as_str();
    // An empty host is a schema error (reported by the schema analyzer).
    if h.is_empty() {
        return None;
    }
    if host::is_wildcard(h) {
        wildcard_host(ctx, id, h);
        return None;
    }
    let ns = mesh.object(id).namespace();
    let full = fqdn(mesh, id, h);
    let services = mesh.registry.resolve(&full, ns);
    if !services.is_empty() {
        return Some(services);
    }
    let hidden = mesh.registry.resolve_any(&full);
    if !hidden.is_empty() {
        let dr_export = ExportTo::parse(&spec.export_to, ns, true);
        // The rule applies wherever both it and the service are visible: only a rule that no
        // namespace sees together with the service is dead.
        if hidden
            .iter()
            .any(|s| shares_namespace(&dr_export, &s.export_to, &s.namespace))
        {
            return Some(hidden);
        }
        let s = hidden[0];
        ctx.at(
            IST0174,
            id,
            "spec.host",
            format!(
                "host {full} exists ({} {}/{}) but is not exported to any namespace this rule is visible in, so the rule never applies; widen the service's exportTo or move the rule to {}",
                source_kind(s),
                s.namespace,
                s.name,
                s.namespace
            ),
        );
        return None;
    }
    if let Some(full) = util::truncated_service(mesh, id, h) {
        ctx.at(
            IST0174,
            id,
            "spec.host",
            format!("host \"{h}\" is taken literally and matches no service, so this rule applies to nothing; write \"{full}\""),
        );
        return None;
    }
    // The input is the whole world: a host it has no service for does not exist (Info under
    // `--partial`).
    ctx.not_found(
        IST0174,
        id,
        "spec.host",
        format!(
            "host {full} matches no Service or ServiceEntry in any cluster, so this rule applies to nothing; check the name (and namespace), or add a ServiceEntry for an external host"
        ),
    );
    None
}

/// IST0174 for a wildcard host: a domain-wide policy is fine while it covers some service (or a
/// wildcard ServiceEntry overlaps it), whatever namespace sees it; one that covers no host at all
/// applies to nothing. istioctl goes further and reports every wildcard host that no wildcard
/// ServiceEntry covers, even `*.svc.cluster.local` over a cluster of Services; we do not.
fn wildcard_host(ctx: &mut Ctx, id: ObjId, h: &str) {
    if h == "*" {
        return;
    }
    let h = h.to_ascii_lowercase();
    if ctx
        .mesh
        .registry
        .all()
        .iter()
        .any(|s| host::matches(&s.hostname.to_ascii_lowercase(), &h))
    {
        return;
    }
    ctx.not_found(
        IST0174,
        id,
        "spec.host",
        format!(
            "wildcard host {h} covers no Service or ServiceEntry host in any cluster, so this rule applies to nothing; check the domain (and namespace), or add a ServiceEntry for the external hosts"
        ),
    );
}

fn source_kind(s: &ServiceInstance) -> &'static str {
    if s.source == ServiceSource::ServiceEntry {
        "ServiceEntry"
    } else {
        "Service"
    }
}

/// Whether some namespace sees both a rule exported as `rule` and a service exported as `svc`
/// from `svc_ns` (a service is always visible in its own namespace).
fn shares_namespace(rule: &ExportTo, svc: &ExportTo, svc_ns: &str) -> bool {
    match (rule, svc) {
        (ExportTo::All, _) | (_, ExportTo::All) => true,
        (ExportTo::Namespaces(r), ExportTo::Namespaces(s)) => {
            r.iter().any(|n| n == svc_ns || s.contains(n))
        }
    }
}
