//! The server side of mTLS: which mode a workload accepts on a port, composed from its
//! PeerAuthentications the way istiod's `ComposePeerAuthentication` does (mesh, then namespace,
//! then workload; UNSET inherits; port-level settings of the workload policy last). The proxy
//! compiler and the analyzer both use it, so what is reported is what is enforced.

use std::collections::BTreeMap;

use crate::service::{Port, TargetPort};
use crate::{ClusterId, Mesh, ObjId, Workload, selector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strait_api::Kind;
use strait_api::istio::security::{MtlsMode, PeerAuthenticationSpec};

/// The label selector of a policy, when it selects workloads (empty means namespace-wide).
pub fn workload_selector(spec: &PeerAuthenticationSpec) -> Option<&BTreeMap<String, String>> {
    spec.selector
        .as_ref()
        .map(|s| &s.match_labels)
        .filter(|m| !m.is_empty())
}

/// One PeerAuthentication.
#[derive(Debug)]
pub struct Pa<'m> {
    pub id: ObjId,
    pub namespace: &'m str,
    pub spec: &'m PeerAuthenticationSpec,
}

/// The PeerAuthentications of one control plane, by scope.
#[derive(Debug)]
pub struct PeerPolicies<'m> {
    mesh: Option<Pa<'m>>,
    namespaces: BTreeMap<&'m str, Pa<'m>>,
    workloads: Vec<Pa<'m>>,
}

/// A workload's mTLS mode and the policy field that decided it (`None`: Istio's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    pub mode: MtlsMode,
    pub source: Option<(ObjId, String)>,
}

impl<'m> PeerPolicies<'m> {
    pub fn of(mesh: &'m Mesh, cluster: ClusterId) -> PeerPolicies<'m> {
        let root = mesh.cluster(cluster).root_namespace();
        // Oldest first, as istiod picks within a scope; without timestamps, by name.
        let mut all: Vec<(bool, Option<Time>, &str, Pa<'m>)> = mesh
            .cluster(cluster)
            .of_kind(Kind::PeerAuthentication)
            .filter_map(|(id, o)| {
                let pa = o.peer_authentication()?;
                let created = pa.metadata.creation_timestamp.clone();
                Some((
                    created.is_none(),
                    created,
                    o.name(),
                    Pa {
                        id,
                        namespace: o.namespace(),
                        spec: &pa.spec,
                    },
                ))
            })
            .collect();
        all.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        let mut out = PeerPolicies {
            mesh: None,
            namespaces: BTreeMap::new(),
            workloads: Vec::new(),
        };
        for (_, _, _, pa) in all {
            match (workload_selector(pa.spec).is_some(), pa.namespace == root) {
                (false, true) => {
                    if out.mesh.is_none() {
                        out.mesh = Some(pa);
                    }
                }
                (false, false) => {
                    out.namespaces.entry(pa.namespace).or_insert(pa);
                }
                // istiod ignores workload policies in the root namespace.
                (true, true) => {}
                (true, false) => out.workloads.push(pa),
            }
        }
        out
    }

    /// The oldest workload-level policy selecting `w`.
    pub fn workload_policy(&self, w: &Workload) -> Option<&Pa<'m>> {
        self.workloads.iter().find(|pa| {
            pa.namespace == w.namespace
                && workload_selector(pa.spec)
                    .is_some_and(|sel| selector::map_selects(sel, &w.labels))
        })
    }

    /// The mode `w` accepts on `port` (the port it listens on; `None` for the workload as a
    /// whole).
    pub fn effective(&self, w: &Workload, port: Option<u32>) -> Effective {
        let mut eff = Effective {
            mode: MtlsMode::Permissive,
            source: None,
        };
        let wl = self.workload_policy(w);
        let scopes = [
            self.mesh.as_ref(),
            self.namespaces.get(w.namespace.as_str()),
            wl,
        ];
        for pa in scopes.into_iter().flatten() {
            if let Some(m) = pa.spec.mode() {
                eff.mode = m;
                eff.source = Some((pa.id, "spec.mtls.mode".to_string()));
            }
        }
        if let (Some(pa), Some(p)) = (wl, port)
            && let Some(m) = pa
                .spec
                .port_level_mtls
                .get(&p)
                .and_then(|m| m.mode)
                .filter(|m| *m != MtlsMode::Unset)
        {
            eff.mode = m;
            eff.source = Some((pa.id, format!("spec.portLevelMtls[\"{p}\"].mode")));
        }
        eff
    }
}

/// The ports the sidecar of `w` serves inbound, each with a Service port that targets it, in
/// the order the Services are found (several Services may target one port).
pub fn inbound_ports<'m>(
    mesh: &'m Mesh,
    w: &Workload,
) -> Vec<(u32, &'m crate::service::ServiceInstance, &'m Port)> {
    let mut out = Vec::new();
    for s in mesh.services_of(w) {
        for p in &s.ports {
            if let Some(target) = target_port(mesh, w, p).filter(|t| intercepts(w, *t)) {
                out.push((target, s, p));
            }
        }
    }
    out
}

/// The port `w` listens on for a service port (named target ports resolved from the pod's
/// container ports or the WorkloadEntry's port map).
pub fn target_port(mesh: &Mesh, w: &Workload, port: &Port) -> Option<u32> {
    match &port.target {
        None => Some(port.number),
        Some(TargetPort::Number(n)) => Some(*n),
        Some(TargetPort::Name(name)) => {
            let obj = mesh.object(w.object);
            if let Some(we) = obj.workload_entry() {
                return we.spec.ports.get(name).copied();
            }
            w.pod_spec(obj)?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port.max(0) as u32)
        }
    }
}

/// Whether the sidecar of `w` intercepts inbound traffic to `port` (the
/// `traffic.sidecar.istio.io/{include,exclude}InboundPorts` annotations).
pub fn intercepts(w: &Workload, port: u32) -> bool {
    let list = |key: &str| -> Option<Vec<String>> {
        w.annotations.get(key).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    };
    let p = port.to_string();
    if list("traffic.sidecar.istio.io/excludeInboundPorts").is_some_and(|l| l.contains(&p)) {
        return false;
    }
    match list("traffic.sidecar.istio.io/includeInboundPorts") {
        Some(l) => l.iter().any(|x| x == "*" || *x == p),
        None => true,
    }
}
