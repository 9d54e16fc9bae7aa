//! Negative status conditions (IST0171): in a dump of a live cluster, the control plane has
//! already written down in `status.conditions` what it could not do with an object.
//!
//! Mirrors istioctl's `conditions.ConditionAnalyzer`: per kind, a fixed list of condition types
//! whose `"False"` status is bad news (a Service, ServiceEntry or WorkloadEntry that could not
//! be bound to its waypoint; an AuthorizationPolicy ztunnel or the waypoint did not accept),
//! plus an AuthorizationPolicy the waypoint accepted only in part (`WaypointAccepted` with
//! reason `PartiallyInvalid`, whatever its status). Other condition types, and statuses other
//! than the exact string `False`, are not reported. istioctl also reads Gateway API Gateways,
//! HTTPRoutes and GRPCRoutes, which strait does not read (STR0014).
//!
//! Status is not part of the typed objects, so it is read from the spanned source tree.

use strait_api::Kind;
use strait_api::yaml::{Node, Value};

use super::util;
use crate::catalog::IST0171;
use crate::context::Ctx;

/// Condition types whose `False` status istioctl reports, per kind.
fn negative_types(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Service | Kind::ServiceEntry | Kind::WorkloadEntry => &["istio.io/WaypointBound"],
        Kind::AuthorizationPolicy => &["ZtunnelAccepted", "WaypointAccepted"],
        _ => &[],
    }
}

const KINDS: [Kind; 4] = [
    Kind::Service,
    Kind::ServiceEntry,
    Kind::WorkloadEntry,
    Kind::AuthorizationPolicy,
];

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for kind in KINDS {
        for (id, o) in util::objects(mesh, kind) {
            let Some(Value::Seq(conditions)) = o
                .source
                .tree
                .get("status")
                .and_then(|s| s.get("conditions"))
                .map(|c| &c.value)
            else {
                continue;
            };
            for (i, c) in conditions.iter().enumerate() {
                let field = |k: &str| c.get(k).and_then(Node::as_str).unwrap_or("");
                let (ty, status, reason) = (field("type"), field("status"), field("reason"));
                let negative = status == "False" && negative_types(kind).contains(&ty);
                let partial = kind == Kind::AuthorizationPolicy
                    && ty == "WaypointAccepted"
                    && reason == "PartiallyInvalid";
                if !(negative || partial) {
                    continue;
                }
                let message = field("message");
                let what = match ty {
                    "istio.io/WaypointBound" => "it is not bound to its waypoint",
                    "ZtunnelAccepted" => "ztunnel does not enforce it",
                    _ if partial && !negative => "the waypoint enforces only part of it",
                    _ => "the waypoint does not enforce it",
                };
                ctx.at(
                    IST0171,
                    id,
                    &format!("status.conditions[{i}].status"),
                    format!(
                        "the control plane reports condition {ty} status={status} (reason {}{}): {what}; fix the cause and let the control plane rewrite the status",
                        if reason.is_empty() { "unset" } else { reason },
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(", message \"{message}\"")
                        },
                    ),
                );
            }
        }
    }
}
