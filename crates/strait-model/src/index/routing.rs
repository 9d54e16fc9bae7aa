//! One config cluster's routing configuration, indexed: VirtualServices bound to the mesh by
//! host, DestinationRules by namespace and host, Sidecars by namespace. Entries hold ids and
//! resolved hosts; specs are read from the mesh when used.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strait_api::Kind;
use strait_api::istio::destination_rule::DestinationRuleSpec;
use strait_api::istio::virtual_service::VirtualServiceSpec;

use crate::cluster::Cluster;
use crate::host::{self, ExportTo};
use crate::ids::ObjId;
use crate::mesh::Mesh;
use crate::scope::Scope;
use crate::selector;
use crate::workload::Workload;

/// A VirtualService that binds the mesh (sidecars), its hosts fully qualified.
#[derive(Debug)]
pub struct VsEntry {
    pub id: ObjId,
    pub namespace: String,
    pub hosts: Vec<String>,
    pub export: ExportTo,
}

impl VsEntry {
    /// Whether a sidecar in `ns` with `scope` applies it: exported to it, and one of its hosts
    /// admitted by the scope in the VirtualService's namespace (istiod's sidecar scope selects
    /// VirtualServices the same way).
    pub fn visible(&self, ns: &str, scope: &Scope) -> bool {
        (self.namespace == ns || self.export.visible_to(ns))
            && self.hosts.iter().any(|h| scope.allows(&self.namespace, h))
    }

    pub fn spec<'m>(&self, mesh: &'m Mesh) -> Option<&'m VirtualServiceSpec> {
        mesh.object(self.id).virtual_service().map(|v| &v.spec)
    }
}

/// A DestinationRule, its host fully qualified.
#[derive(Debug)]
pub struct DrEntry {
    pub id: ObjId,
    pub namespace: String,
    pub host: String,
    pub export: ExportTo,
    /// `workloadSelector` labels: the rule applies only to the proxies it selects.
    pub selector: Option<BTreeMap<String, String>>,
}

impl DrEntry {
    pub fn spec<'m>(&self, mesh: &'m Mesh) -> Option<&'m DestinationRuleSpec> {
        mesh.object(self.id).destination_rule().map(|d| &d.spec)
    }

    /// Whether the rule's workload selector (if any) selects `w`.
    pub fn applies_to(&self, w: &Workload) -> bool {
        self.selector.as_ref().is_none_or(|sel| {
            self.namespace == w.namespace && selector::map_selects(sel, &w.labels)
        })
    }
}

/// A Sidecar resource.
#[derive(Debug)]
pub struct SidecarEntry {
    pub id: ObjId,
    pub namespace: String,
    /// `workloadSelector` labels, when it has some.
    pub selector: Option<BTreeMap<String, String>>,
    /// The egress hosts of all its listeners; `None` when it has no egress listener.
    pub egress: Option<Vec<String>>,
}

#[derive(Debug, Default)]
struct NsRules {
    exact: HashMap<String, Vec<u32>>,
    wildcard: Vec<u32>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Routing {
    /// In Istio's precedence: oldest first, then namespace and name.
    vs: Vec<VsEntry>,
    /// Lowercase host → indices into `vs`, ascending.
    vs_by_host: HashMap<String, Vec<u32>>,
    /// Indices of VirtualServices with a wildcard host, ascending.
    vs_wildcard: Vec<u32>,
    /// In object order (ties between equally specific rules go to the later one).
    drs: Vec<DrEntry>,
    dr_by_ns: HashMap<String, NsRules>,
    /// Oldest first.
    sidecars: Vec<SidecarEntry>,
    root: String,
}

type Age = (bool, Option<Time>, String, String);

fn age(o: &strait_api::Object) -> Age {
    let created = o.meta().creation_timestamp.clone();
    (
        created.is_none(),
        created,
        o.namespace().to_string(),
        o.name().to_string(),
    )
}

impl Routing {
    pub fn build(_mesh: &Mesh, c: &Cluster) -> Routing {
        let mut vs: Vec<(Option<Time>, String, String, VsEntry)> = c
            .of_kind(Kind::VirtualService)
            .filter_map(|(id, o)| {
                let v = o.virtual_service()?;
                let binds_mesh =
                    v.spec.gateways.is_empty() || v.spec.gateways.iter().any(|g| g == "mesh");
                binds_mesh.then(|| {
                    (
                        o.meta().creation_timestamp.clone(),
                        o.namespace().to_string(),
                        o.name().to_string(),
                        VsEntry {
                            id,
                            namespace: o.namespace().to_string(),
                            hosts: v
                                .spec
                                .hosts
                                .iter()
                                .map(|h| host::fqdn(h, o.namespace(), &c.domain))
                                .collect(),
                            export: ExportTo::parse(&v.spec.export_to, o.namespace(), true),
                        },
                    )
                })
            })
            .collect();
        // Istio applies the oldest VirtualService for a host; without timestamps, name order.
        vs.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
        let vs: Vec<VsEntry> = vs.into_iter().map(|(_, _, _, e)| e).collect();
        let mut vs_by_host: HashMap<String, Vec<u32>> = HashMap::new();
        let mut vs_wildcard = Vec::new();
        for (i, e) in vs.iter().enumerate() {
            let i = i as u32;
            for h in &e.hosts {
                let list = vs_by_host.entry(h.to_ascii_lowercase()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
            if e.hosts.iter().any(|h| host::is_wildcard(h)) {
                vs_wildcard.push(i);
            }
        }

        let mut drs = Vec::new();
        let mut dr_by_ns: HashMap<String, NsRules> = HashMap::new();
        for (id, o) in c.of_kind(Kind::DestinationRule) {
            let Some(d) = o.destination_rule() else {
                continue;
            };
            let i = drs.len() as u32;
            let entry = DrEntry {
                id,
                namespace: o.namespace().to_string(),
                host: host::fqdn(&d.spec.host, o.namespace(), &c.domain),
                export: ExportTo::parse(&d.spec.export_to, o.namespace(), true),
                selector: d
                    .spec
                    .workload_selector
                    .as_ref()
                    .map(|s| s.match_labels.clone()),
            };
            let ns = dr_by_ns.entry(entry.namespace.clone()).or_default();
            if host::is_wildcard(&entry.host) {
                ns.wildcard.push(i);
            } else {
                ns.exact.entry(entry.host.clone()).or_default().push(i);
            }
            drs.push(entry);
        }

        let mut sidecars: Vec<(Age, SidecarEntry)> = c
            .of_kind(Kind::Sidecar)
            .filter_map(|(id, o)| {
                let s = o.sidecar()?;
                let selector = s
                    .spec
                    .workload_selector
                    .as_ref()
                    .map(|w| w.labels.clone())
                    .filter(|l| !l.is_empty());
                let egress = (!s.spec.egress.is_empty()).then(|| {
                    s.spec
                        .egress
                        .iter()
                        .flat_map(|e| e.hosts.iter().cloned())
                        .collect()
                });
                Some((
                    age(o),
                    SidecarEntry {
                        id,
                        namespace: o.namespace().to_string(),
                        selector,
                        egress,
                    },
                ))
            })
            .collect();
        sidecars.sort_by(|a, b| a.0.cmp(&b.0));
        Routing {
            vs,
            vs_by_host,
            vs_wildcard,
            drs,
            dr_by_ns,
            sidecars: sidecars.into_iter().map(|(_, s)| s).collect(),
            root: c.root_namespace().to_string(),
        }
    }

    /// The Sidecar resource that applies to sidecar `w`, if any.
    pub fn sidecar_for(&self, w: &Workload) -> Option<&SidecarEntry> {
        let in_ns = || self.sidecars.iter().filter(|s| s.namespace == w.namespace);
        in_ns()
            .find(|s| {
                s.selector
                    .as_ref()
                    .is_some_and(|sel| selector::map_selects(sel, &w.labels))
            })
            .or_else(|| in_ns().find(|s| s.selector.is_none()))
            .or_else(|| {
                self.sidecars
                    .iter()
                    .find(|s| s.namespace == self.root && s.selector.is_none())
            })
    }

    /// What sidecar `w` can reach.
    pub fn scope_for(&self, w: &Workload) -> Scope {
        match self.sidecar_for(w).and_then(|s| s.egress.as_ref()) {
            Some(hosts) => Scope::from_hosts(hosts.iter().map(String::as_str), &w.namespace),
            None => Scope::All,
        }
    }

    /// The VirtualService a sidecar in `ns` applies to `hostname`: among those it sees, the
    /// oldest naming the host exactly, else the one with the most specific wildcard covering
    /// it.
    pub fn virtual_service_for(&self, hostname: &str, ns: &str, scope: &Scope) -> Option<&VsEntry> {
        let exact = self
            .vs_by_host
            .get(&hostname.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .map(|i| &self.vs[*i as usize])
            .find(|v| v.visible(ns, scope));
        exact.or_else(|| {
            self.vs_wildcard
                .iter()
                .map(|i| &self.vs[*i as usize])
                .filter(|v| v.visible(ns, scope))
                .filter_map(|v| {
                    v.hosts
                        .iter()
                        .filter(|h| host::is_wildcard(h) && host::subset_of(hostname, h))
                        .map(|h| h.len())
                        .max()
                        .map(|len| (len, v))
                })
                .max_by_key(|(len, _)| *len)
                .map(|(_, v)| v)
        })
    }

    /// The DestinationRules with a workload selector that select `w`, as indices for
    /// [`Routing::destination_rule_for`].
    pub fn selected_rules(&self, w: &Workload) -> Vec<u32> {
        (0..self.drs.len() as u32)
            .filter(|i| {
                let d = &self.drs[*i as usize];
                d.selector.is_some() && d.applies_to(w)
            })
            .collect()
    }

    /// The most specific rule of namespace `ns` for `hostname` (an exact host beats wildcards,
    /// a longer wildcard beats a shorter one; among equals the later one), counting the rules
    /// in `selected` that are in `ns`. Rules with a selector count only through `selected`.
    fn most_specific_in(&self, ns: &str, hostname: &str, selected: &[u32]) -> Option<&DrEntry> {
        let rules = self.dr_by_ns.get(ns)?;
        let usable = |i: &u32| {
            let d = &self.drs[*i as usize];
            d.selector.is_none() || selected.contains(i)
        };
        let mut candidates: Vec<u32> = rules
            .exact
            .get(hostname)
            .into_iter()
            .flatten()
            .copied()
            .filter(usable)
            .collect();
        let exact = candidates.len();
        candidates.extend(rules.wildcard.iter().copied().filter(usable));
        // Object order within exact and within wildcard rules, as one list would have them.
        candidates[..exact].sort_unstable();
        candidates[exact..].sort_unstable();
        candidates
            .into_iter()
            .map(|i| &self.drs[i as usize])
            .filter(|d| host::subset_of(hostname, &d.host))
            .max_by_key(|d| (!host::is_wildcard(&d.host), d.host.len()))
    }

    /// The DestinationRule a client in `client_ns` applies to `hostname` (a service in
    /// `svc_ns`), as istiod picks it: the client namespace's own, else the service
    /// namespace's if exported to the client, else the root namespace's. `selected`: the
    /// client's workload-selected rules ([`Routing::selected_rules`]).
    pub fn destination_rule_for(
        &self,
        hostname: &str,
        client_ns: &str,
        svc_ns: &str,
        selected: &[u32],
    ) -> Option<&DrEntry> {
        self.most_specific_in(client_ns, hostname, selected)
            .or_else(|| {
                self.most_specific_in(svc_ns, hostname, selected)
                    .filter(|d| d.export.visible_to(client_ns))
            })
            .or_else(|| {
                self.most_specific_in(&self.root, hostname, selected)
                    .filter(|d| d.export.visible_to(client_ns))
            })
    }

    pub fn root_namespace(&self) -> &str {
        &self.root
    }
}
