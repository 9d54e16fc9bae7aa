//! The per-generation index: what compiling every proxy's configuration looks up, built once
//! per [`Mesh`] and shared by every compile (istiod's `PushContext`). A mesh is immutable once
//! built, so the index is built lazily on first use ([`Mesh::index`]) and lives as long as the
//! mesh: a control plane builds it once per generation, a one-off `proxy-config` once.
//!
//! Without it, compiling one proxy scanned every workload for each service's endpoints and
//! every VirtualService for each host, and built the DestinationRule index again: at 10,000
//! services and 1,000 proxies, O(proxies × services × workloads).
//!
//! - endpoints by service instance and service instances by workload (the selector relation,
//!   matched once per (cluster, namespace) rather than across the mesh);
//! - service instances by namespace (what a Sidecar's `namespace/*` egress host reaches);
//! - per config cluster, its routing configuration ([`Routing`]): VirtualServices by host,
//!   DestinationRules by namespace and host, Sidecars.

mod routing;

use std::collections::HashMap;

pub use routing::{DrEntry, Routing, SidecarEntry, VsEntry};

use crate::ids::{ClusterId, ServiceId, WorkloadId};
use crate::mesh::Mesh;
use crate::selector;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Index {
    /// Workloads a service instance's selector selects, by [`ServiceId`], in workload order.
    endpoints: Vec<Vec<WorkloadId>>,
    /// Service instances selecting a workload, by [`WorkloadId`], in registry order.
    services_of: Vec<Vec<ServiceId>>,
    /// Service instances by namespace, in registry order.
    by_namespace: HashMap<String, Vec<ServiceId>>,
    /// Routing configuration by [`ClusterId`] (a remote's proxies use their primary's).
    routing: Vec<Routing>,
}

impl Index {
    pub fn build(mesh: &Mesh) -> Index {
        // Workloads grouped by (cluster, namespace): a selector only ever matches within one.
        let mut groups: HashMap<(ClusterId, &str), Vec<WorkloadId>> = HashMap::new();
        for w in &mesh.workloads {
            groups
                .entry((w.cluster, w.namespace.as_str()))
                .or_default()
                .push(w.id);
        }
        let services = mesh.registry.all();
        let mut endpoints = vec![Vec::new(); services.len()];
        let mut services_of = vec![Vec::new(); mesh.workloads.len()];
        let mut by_namespace: HashMap<String, Vec<ServiceId>> = HashMap::new();
        for s in services {
            by_namespace
                .entry(s.namespace.clone())
                .or_default()
                .push(s.id);
            let Some(sel) = &s.selector else { continue };
            let Some(group) = groups.get(&(s.cluster, s.namespace.as_str())) else {
                continue;
            };
            for wid in group {
                if selector::map_selects(sel, &mesh.workload(*wid).labels) {
                    endpoints[s.id.0 as usize].push(*wid);
                    services_of[wid.0 as usize].push(s.id);
                }
            }
        }
        let routing = mesh
            .clusters
            .iter()
            .map(|c| Routing::build(mesh, c))
            .collect();
        Index {
            endpoints,
            services_of,
            by_namespace,
            routing,
        }
    }

    /// The workloads backing a service instance.
    pub fn endpoints(&self, s: ServiceId) -> &[WorkloadId] {
        self.endpoints.get(s.0 as usize).map_or(&[], Vec::as_slice)
    }

    /// The service instances selecting a workload.
    pub fn services_of(&self, w: WorkloadId) -> &[ServiceId] {
        self.services_of
            .get(w.0 as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// Service instances defined in `namespace` (any cluster).
    pub fn services_in(&self, namespace: &str) -> &[ServiceId] {
        self.by_namespace.get(namespace).map_or(&[], Vec::as_slice)
    }

    /// The routing configuration a config cluster's control plane uses.
    pub fn routing(&self, config: ClusterId) -> Option<&Routing> {
        self.routing.get(config.0 as usize)
    }
}
