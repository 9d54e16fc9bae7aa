//! IST0144: applications that run as UID 1337, the sidecar's. The iptables rules the sidecar
//! installs let that UID's traffic bypass the proxy.
//!
//! Like istioctl, every Pod and Deployment is checked whatever its injection (a workload moved
//! into the mesh later keeps its UID), at pod level (`securityContext.runAsUser`) and per
//! container, skipping the control plane (objects labelled `istio` or `release=istio`) and
//! containers named `istio-proxy` or `istio-operator`. strait also skips gateways, whose proxy
//! is the main container, and pods whose controller is in the input (the controller is
//! reported). The `resources` analyzer reports the injected workloads of every controller kind
//! with the same messages, so where both report, the findings merge.

use std::collections::BTreeMap;

use strait_model::{Injection, WorkloadKind};

use super::{is_replica, is_system_namespace};
use crate::catalog::IST0144;
use crate::context::Ctx;

const PROXY_UID: i64 = 1337;

/// Containers istioctl does not check: the proxy itself, and the operator of old installs.
fn skipped(name: &str) -> bool {
    matches!(name, "istio-proxy" | "istio-operator")
}

/// Containers the proxy's installation adds (they do not inherit anything from the app).
fn istio_owned(name: &str) -> bool {
    matches!(name, "istio-proxy" | "istio-init" | "istio-validation")
}

fn is_control_plane(labels: &BTreeMap<String, String>) -> bool {
    labels.contains_key("istio") || labels.get("release").is_some_and(|v| v == "istio")
}

fn uid_message(who: &str) -> String {
    format!(
        "{who} runs as UID {PROXY_UID}, which is reserved for the sidecar proxy: the iptables rules let traffic from that UID bypass the proxy, so its outbound calls get no mTLS, routing or policy. Run it as another UID"
    )
}

pub(super) fn check(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for w in &mesh.workloads {
        if !matches!(w.kind, WorkloadKind::Pod | WorkloadKind::Deployment)
            || w.gateway.is_some()
            || is_system_namespace(&w.namespace)
            || is_replica(mesh, w)
        {
            continue;
        }
        let obj = mesh.object(w.object);
        let cluster = mesh.cluster(w.cluster);
        // istiod runs as 1337 without a sidecar, which is right.
        let control_plane = is_control_plane(obj.labels())
            || is_control_plane(&w.labels)
            || (w.namespace == cluster.istio_namespace
                && !matches!(w.sidecar, Injection::Injected(_)));
        if control_plane {
            continue;
        }
        let Some(spec) = w.pod_spec(obj) else {
            continue;
        };
        let base = w.pod_spec_path();
        let uid_of = |c: &k8s_openapi::api::core::v1::Container| {
            c.security_context.as_ref().and_then(|s| s.run_as_user)
        };
        for (i, c) in spec.containers.iter().enumerate() {
            if !skipped(&c.name) && uid_of(c) == Some(PROXY_UID) {
                ctx.at(
                    IST0144,
                    w.object,
                    &format!("{base}.containers[{i}].securityContext.runAsUser"),
                    uid_message(&format!("container {}", c.name)),
                );
            }
        }
        if spec.security_context.as_ref().and_then(|s| s.run_as_user) != Some(PROXY_UID) {
            continue;
        }
        let inherits = spec
            .containers
            .iter()
            .any(|c| !istio_owned(&c.name) && uid_of(c).is_none());
        let message = if inherits {
            uid_message("the pod")
        } else {
            format!(
                "the pod's securityContext sets UID {PROXY_UID}, which is reserved for the sidecar proxy. Its containers set their own UID, but init containers and any container added without a runAsUser of its own run as the proxy's UID, and the iptables rules let their traffic bypass the proxy. Set another UID at pod level"
            )
        };
        ctx.at(
            IST0144,
            w.object,
            &format!("{base}.securityContext.runAsUser"),
            message,
        );
    }
}
