//! Negative status conditions (IST0171): in a dump of a live cluster, the control plane has
//! already written down in `status.conditions` what it could not do with an object.
//!
//! Mirrors istioctl's `conditions.ConditionAnalyzer`: per kind, a fixed list of condition types
//! whose `"False"` status is bad news (a Service, ServiceEntry or WorkloadEntry that could not
//! be bound to its waypoint; an AuthorizationPolicy ztunnel or the waypoint did not accept),
//! plus an AuthorizationPolicy the waypoint accepted only in part (`WaypointAccepted` with
//! reason `PartiallyInvalid`, whatever its status). Other condition types, and statuses other
//! than the exact string `False`, are not reported. Gateway API Gateways (`Accepted`,
//! `Programmed`, `ResolvedRefs`) are read the same way; HTTPRoutes and GRPCRoutes hold their
//! conditions per parent, in `status.parents[].conditions`.
//!
//! Status is not part of the typed objects, so it is read from the spanned source tree.

use strait_api::Kind;
use strait_api::yaml::NodeRef;

use super::util;
use crate::catalog::IST0171;
use crate::context::Ctx;

/// Condition types whose `False` status istioctl reports, per kind.
fn negative_types(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Service | Kind::ServiceEntry | Kind::WorkloadEntry => &["istio.io/WaypointBound"],
        Kind::AuthorizationPolicy => &["ZtunnelAccepted", "WaypointAccepted"],
        Kind::KubeGateway | Kind::HTTPRoute | Kind::GRPCRoute => {
            &["Accepted", "Programmed", "ResolvedRefs"]
        }
        _ => &[],
    }
}

const KINDS: [Kind; 7] = [
    Kind::Service,
    Kind::ServiceEntry,
    Kind::WorkloadEntry,
    Kind::AuthorizationPolicy,
    Kind::KubeGateway,
    Kind::HTTPRoute,
    Kind::GRPCRoute,
];

/// Every condition of an object's status, with its field path: routes hold theirs per parent.
fn conditions(status: NodeRef<'_>) -> Vec<(String, NodeRef<'_>)> {
    fn at<'n>(prefix: &str, list: Option<NodeRef<'n>>) -> Vec<(String, NodeRef<'n>)> {
        list.into_iter()
            .flat_map(NodeRef::items)
            .enumerate()
            .map(|(i, c)| (format!("{prefix}.conditions[{i}]"), c))
            .collect()
    }
    let mut out = at("status", status.get("conditions"));
    for (j, p) in status
        .get("parents")
        .into_iter()
        .flat_map(NodeRef::items)
        .enumerate()
    {
        out.extend(at(&format!("status.parents[{j}]"), p.get("conditions")));
    }
    out
}

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for kind in KINDS {
        for (id, o) in util::objects(mesh, kind) {
            let Some(status) = o.source.root().get("status") else {
                continue;
            };
            for (at, c) in conditions(status) {
                let field = |k: &str| c.get(k).and_then(NodeRef::as_str).unwrap_or("");
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
                    "Accepted" => "the gateway controller did not accept it",
                    "Programmed" => "it is not programmed into the gateway",
                    "ResolvedRefs" => "some of its references do not resolve",
                    _ if partial && !negative => "the waypoint enforces only part of it",
                    _ => "the waypoint does not enforce it",
                };
                ctx.at(
                    IST0171,
                    id,
                    &format!("{at}.status"),
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
