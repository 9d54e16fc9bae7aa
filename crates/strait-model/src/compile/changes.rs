//! Incremental pushes: what changed between two generations of the mesh ([`Changes`]), and
//! what one proxy's compiled configuration depends on ([`Footprint`]), so that a control plane
//! compiles again only the proxies a change can affect (istiod's `ProxyNeedsPush`).
//!
//! The rules are conservative: a change is classified finely only where the dependency is
//! plain, and anything else (a Namespace, a Secret, mesh config, PeerAuthentication, the
//! networks' gateways, run-time state) affects every proxy.
//!
//! - a workload (Pod, WorkloadEntry, pod template) changed: the services selecting it, before or
//!   after, and the proxy of that workload itself;
//! - a Service or ServiceEntry changed: its host, and the proxies of the workloads it selects;
//! - a service's host affects the proxies whose configuration holds it, or whose scope (Sidecar
//!   egress hosts) admits it in its namespace, since it may appear there;
//! - a VirtualService bound to the mesh: proxies whose scope admits it and that hold one of its
//!   hosts; a DestinationRule: proxies holding a cluster of its host;
//! - a Sidecar, AuthorizationPolicy or RequestAuthentication: the proxies of its namespace
//!   (every proxy from the root namespace);
//! - gateway proxies (few, and holding every exposed service) are compiled on any change.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use strait_api::{Kind, Object};

use super::{ProxyRef, find_proxy, scope_of};
use crate::host;
use crate::ids::ObjId;
use crate::mesh::Mesh;
use crate::scope::Scope;
use strait_config::types::ProxyConfig;

/// What changed from one generation to the next, as far as proxies care.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Something every proxy may depend on.
    pub everything: bool,
    /// Anything at all (gateway proxies are compiled on any change).
    pub any: bool,
    /// Services whose definition or endpoints changed: (namespace, hostname).
    pub services: BTreeSet<(String, String)>,
    /// VirtualServices bound to the mesh, before or after: (namespace, fully qualified hosts).
    pub virtual_services: BTreeSet<(String, Vec<String>)>,
    /// Hosts of DestinationRules, before or after (fully qualified).
    pub destination_rules: BTreeSet<String>,
    /// Namespaces whose proxies are affected whole.
    pub namespaces: BTreeSet<String>,
    /// Workloads whose own proxy is affected: (cluster, namespace, name).
    pub workloads: BTreeSet<(String, String, String)>,
}

impl Changes {
    /// A change every proxy must be compiled again for.
    pub fn everything() -> Changes {
        Changes {
            everything: true,
            any: true,
            ..Changes::default()
        }
    }

    /// Adds the changes of a later generation.
    pub fn merge(&mut self, other: &Changes) {
        self.everything |= other.everything;
        self.any |= other.any;
        self.services.extend(other.services.iter().cloned());
        self.virtual_services
            .extend(other.virtual_services.iter().cloned());
        self.destination_rules
            .extend(other.destination_rules.iter().cloned());
        self.namespaces.extend(other.namespaces.iter().cloned());
        self.workloads.extend(other.workloads.iter().cloned());
    }

    /// What changed from `old` to `new`. With `files`, only objects read from those files
    /// (the files that changed) are compared; a changed file that is no source of either mesh
    /// (a load-balancer status file, say) changes everything.
    pub fn between(old: &Mesh, new: &Mesh, files: Option<&BTreeSet<PathBuf>>) -> Changes {
        let mut out = Changes::default();
        if !same_frame(old, new) {
            return Changes::everything();
        }
        if let Some(files) = files {
            let known = |m: &Mesh, f: &PathBuf| m.sources.files().any(|(_, s)| s.name == *f);
            if files.iter().any(|f| !known(old, f) && !known(new, f)) {
                return Changes::everything();
            }
        }
        for (oc, nc) in old.clusters.iter().zip(&new.clusters) {
            let before = objects(old, oc.id.0, files);
            let after = objects(new, nc.id.0, files);
            let keys: BTreeSet<&Key> = before.keys().chain(after.keys()).collect();
            for key in keys {
                let (b, a) = (before.get(key), after.get(key));
                let b = b.map_or(&[][..], Vec::as_slice);
                let a = a.map_or(&[][..], Vec::as_slice);
                let same = b.len() == a.len()
                    && b.iter().zip(a).all(|(x, y)| {
                        let (x, y) = (old.object(*x), new.object(*y));
                        x.api_version == y.api_version && x.body == y.body
                    });
                if !same {
                    out.any = true;
                    out.object(old, b, key.0);
                    out.object(new, a, key.0);
                }
            }
            if out.everything {
                return Changes::everything();
            }
        }
        out
    }

    /// Records what an object that changed (as it is in `mesh`) affects.
    fn object(&mut self, mesh: &Mesh, ids: &[ObjId], kind: Kind) {
        for id in ids {
            let o = mesh.object(*id);
            let c = mesh.cluster(id.cluster);
            let root = mesh
                .cluster(mesh.config_cluster(id.cluster))
                .root_namespace();
            match kind {
                Kind::Pod
                | Kind::WorkloadEntry
                | Kind::Deployment
                | Kind::StatefulSet
                | Kind::DaemonSet
                | Kind::Job
                | Kind::CronJob => self.workloads_of(mesh, *id),
                Kind::Service | Kind::ServiceEntry => {
                    for s in mesh.registry.all().iter().filter(|s| s.object == *id) {
                        self.services
                            .insert((s.namespace.clone(), s.hostname.clone()));
                        for w in mesh.endpoints_of(s) {
                            self.workloads.insert(workload_key(mesh, w));
                        }
                    }
                }
                Kind::VirtualService => {
                    if let Some(v) = o.virtual_service() {
                        let binds_mesh = v.spec.gateways.is_empty()
                            || v.spec.gateways.iter().any(|g| g == "mesh");
                        if binds_mesh {
                            let hosts = v
                                .spec
                                .hosts
                                .iter()
                                .map(|h| host::fqdn(h, o.namespace(), &c.domain))
                                .collect();
                            self.virtual_services
                                .insert((o.namespace().to_string(), hosts));
                        }
                    }
                }
                Kind::DestinationRule => {
                    if let Some(d) = o.destination_rule() {
                        self.destination_rules.insert(host::fqdn(
                            &d.spec.host,
                            o.namespace(),
                            &c.domain,
                        ));
                    }
                }
                Kind::Sidecar | Kind::AuthorizationPolicy | Kind::RequestAuthentication => {
                    if o.namespace() == root {
                        self.everything = true;
                    } else {
                        self.namespaces.insert(o.namespace().to_string());
                    }
                }
                // Served by gateway proxies only, which `any` covers.
                Kind::Gateway => {}
                // Reported as not applied: no proxy reads them.
                Kind::EnvoyFilter | Kind::Telemetry | Kind::WorkloadGroup => {}
                _ => self.everything = true,
            }
        }
    }

    /// A workload object changed: its proxy, and the services selecting it.
    fn workloads_of(&mut self, mesh: &Mesh, id: ObjId) {
        for w in mesh.workloads.iter().filter(|w| w.object == id) {
            if w.gateway.is_some() {
                // Network gateways decide every proxy's view of other networks.
                self.everything = true;
            }
            self.workloads.insert(workload_key(mesh, w));
            for s in mesh.services_of(w) {
                self.services
                    .insert((s.namespace.clone(), s.hostname.clone()));
            }
        }
    }
}

type Key = (Kind, String, String);

fn workload_key(mesh: &Mesh, w: &crate::Workload) -> (String, String, String) {
    (
        mesh.cluster(w.cluster).name.clone(),
        w.namespace.clone(),
        w.name.clone(),
    )
}

/// The objects of cluster `c` (those read from `files`, when given), by kind and name.
fn objects(mesh: &Mesh, c: u16, files: Option<&BTreeSet<PathBuf>>) -> HashMap<Key, Vec<ObjId>> {
    let cluster = &mesh.clusters[c as usize];
    let wanted: Option<HashSet<u32>> = files.map(|files| {
        mesh.sources
            .files()
            .filter(|(_, s)| files.contains(&s.name))
            .map(|(id, _)| id.0)
            .collect()
    });
    let mut out: HashMap<Key, Vec<ObjId>> = HashMap::new();
    for (i, o) in cluster.objects.iter().enumerate() {
        if wanted
            .as_ref()
            .is_some_and(|w| !w.contains(&o.source.file.0))
        {
            continue;
        }
        out.entry(key(o)).or_default().push(ObjId {
            cluster: cluster.id,
            index: i as u32,
        });
    }
    out
}

fn key(o: &Object) -> Key {
    (o.kind, o.namespace().to_string(), o.name().to_string())
}

type GatewaysOf<'m> = (
    &'m String,
    &'m Vec<crate::ClusterId>,
    Vec<(&'m String, crate::ClusterId, &'m Vec<String>, u32, bool)>,
);

/// Whether the clusters, their settings and the networks' gateways are the same: when they
/// are not, every proxy is affected.
fn same_frame(old: &Mesh, new: &Mesh) -> bool {
    let cluster = |m: &Mesh| {
        m.clusters
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.role,
                    c.primary,
                    c.network.clone(),
                    c.istio_network.clone(),
                    c.domain.clone(),
                    c.istio_namespace.clone(),
                    c.inject_by_default,
                )
            })
            .collect::<Vec<_>>()
    };
    fn gateways(m: &Mesh) -> Vec<GatewaysOf<'_>> {
        m.networks
            .values()
            .map(|n| {
                let gws: Vec<_> = n
                    .gateways
                    .iter()
                    .map(|g| (&g.network, g.cluster, &g.addresses, g.port, g.reachable))
                    .collect();
                (&n.id, &n.clusters, gws)
            })
            .collect()
    }
    old.trust_domain == new.trust_domain
        && old.mesh_file == new.mesh_file
        && cluster(old) == cluster(new)
        && old
            .clusters
            .iter()
            .zip(&new.clusters)
            .all(|(a, b)| a.mesh_config == b.mesh_config && a.mesh_networks == b.mesh_networks)
        && gateways(old) == gateways(new)
}

/// What one proxy's compiled configuration depends on: who it is, what it can reach, and the
/// hosts its configuration holds.
#[derive(Clone, Debug)]
pub struct Footprint {
    pub cluster: String,
    pub namespace: String,
    pub pod: String,
    pub gateway: bool,
    pub scope: Scope,
    /// Hosts of its services, clusters and inbound ports.
    hosts: HashSet<String>,
    /// Those of them that are wildcards.
    wildcards: Vec<String>,
}

impl Footprint {
    /// The footprint of `config`, compiled from `mesh` for `proxy`.
    pub fn of(mesh: &Mesh, proxy: &ProxyRef, config: &ProxyConfig) -> Footprint {
        let w = mesh
            .cluster_by_name(&proxy.cluster)
            .and_then(|c| find_proxy(mesh, c.id, proxy));
        let scope = match w {
            Some(w) if w.gateway.is_none() => scope_of(mesh, mesh.config_cluster(w.cluster), w),
            _ => Scope::All,
        };
        let mut hosts: HashSet<String> = HashSet::new();
        hosts.extend(config.services.values().map(|s| s.host.clone()));
        hosts.extend(config.clusters.values().map(|c| c.host.clone()));
        for ip in config.inbound.values() {
            hosts.extend(ip.services.iter().map(|s| {
                s.rsplit_once(':')
                    .map_or(s.as_str(), |(h, _)| h)
                    .to_string()
            }));
        }
        let wildcards = hosts
            .iter()
            .filter(|h| host::is_wildcard(h))
            .cloned()
            .collect();
        Footprint {
            cluster: proxy.cluster.clone(),
            namespace: proxy.namespace.clone(),
            pod: proxy.pod.clone(),
            gateway: w.is_none_or(|w| w.gateway.is_some()),
            scope,
            hosts,
            wildcards,
        }
    }

    /// Whether the configuration holds `h` (or a host it covers, or a wildcard covering it).
    fn holds(&self, h: &str) -> bool {
        if host::is_wildcard(h) {
            self.hosts.iter().any(|x| host::matches(h, x))
        } else {
            self.hosts.contains(h) || self.wildcards.iter().any(|x| host::matches(x, h))
        }
    }

    /// Whether `changes` can change what this proxy is sent.
    pub fn affected_by(&self, c: &Changes) -> bool {
        if c.everything || (self.gateway && c.any) {
            return true;
        }
        c.workloads
            .iter()
            .any(|(cl, ns, pod)| *cl == self.cluster && *ns == self.namespace && *pod == self.pod)
            || c.namespaces.contains(&self.namespace)
            || c.services
                .iter()
                .any(|(ns, h)| self.holds(h) || self.scope.allows(ns, h))
            || c.virtual_services.iter().any(|(ns, hosts)| {
                hosts
                    .iter()
                    .any(|h| self.scope.allows(ns, h) && self.holds(h))
            })
            || c.destination_rules.iter().any(|h| self.holds(h))
    }
}
