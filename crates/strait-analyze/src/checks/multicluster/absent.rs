//! STR0116: pods that a Service of another cluster selects, in a cluster that lacks that
//! Service. istiod builds a cluster's endpoints of `name.namespace.svc` from that cluster's own
//! Service: without it there, its pods are no endpoints of the service in any cluster, and
//! its clients cannot resolve the name (unless DNS proxying answers for them).

use std::collections::HashMap;

use strait_model::{ServiceInstance, ServiceSource, WorkloadKind, selector};

use crate::catalog::STR0116;
use crate::checks::injection::is_replica;
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    if !mesh.is_multicluster() {
        return;
    }
    let mut by_namespace: HashMap<&str, Vec<&ServiceInstance>> = HashMap::new();
    for s in mesh.registry.all() {
        if s.source == ServiceSource::Kubernetes
            && s.selector.as_ref().is_some_and(|m| !m.is_empty())
        {
            by_namespace
                .entry(s.namespace.as_str())
                .or_default()
                .push(s);
        }
    }
    for w in &mesh.workloads {
        let c = mesh.cluster(w.cluster);
        if w.gateway.is_some()
            || w.kind == WorkloadKind::WorkloadEntry
            || w.namespace == c.istio_namespace
            || w.namespace == "kube-system"
            || !mesh.services_of(w).is_empty()
            || is_replica(mesh, w)
        {
            continue;
        }
        let mut elsewhere: Vec<&ServiceInstance> = by_namespace
            .get(w.namespace.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(|s| s.cluster != w.cluster)
            .filter(|s| {
                s.selector
                    .as_ref()
                    .is_some_and(|sel| selector::map_selects(sel, &w.labels))
            })
            .collect();
        elsewhere.sort_by_key(|s| (&s.name, s.cluster));
        elsewhere.dedup_by_key(|s| &s.name);
        let Some(first) = elsewhere.first() else {
            continue;
        };
        let other = &mesh.cluster(first.cluster).name;
        ctx.at(
            STR0116,
            w.object,
            &format!("{}.labels", w.pod_meta_path()),
            format!(
                "these pods match Service {}/{} of cluster {other}, but cluster {} has no such Service: istiod builds {}'s endpoints in each cluster from that cluster's own Service, so these pods get no traffic through it, and clients in {} cannot resolve its name unless DNS proxying answers for them. Apply the Service in cluster {} too",
                first.namespace, first.name, c.name, first.hostname, c.name, c.name
            ),
        );
    }
}
