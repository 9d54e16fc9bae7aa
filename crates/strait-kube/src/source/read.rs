//! A read: the stores of the clusters asked for, rendered for the loader, with the mesh layout
//! synthesised from each cluster's Istio namespace.

use std::collections::HashMap;
use std::sync::Arc;

use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use strait_api::layout::{ClusterDecl, MeshFile};
use strait_api::{Diagnostic, Input, Kind, ParseCache, Problem, Severity};

use super::{Shared, lock};
use crate::objects::{self, ClusterObjects, Rendered};

/// One cluster's rendered objects by (kind, uid), with the `resourceVersion` each was
/// rendered at: a read renders again only what changed since the previous one.
#[derive(Default)]
pub(super) struct RenderCache {
    entries: HashMap<(Kind, String), (String, Rendered)>,
}

impl RenderCache {
    /// A cluster's objects, kind by kind and sorted by namespace and name within a kind,
    /// rendered again only where the `resourceVersion` changed. Entries of objects that are
    /// gone are dropped.
    fn render(
        &mut self,
        cluster: &str,
        kinds: impl Iterator<Item = (Kind, Vec<Arc<DynamicObject>>)>,
    ) -> Vec<Rendered> {
        let mut previous = std::mem::take(&mut self.entries);
        let mut objects = Vec::new();
        for (kind, mut state) in kinds {
            state.sort_by(|a, b| {
                (&a.metadata.namespace, &a.metadata.name)
                    .cmp(&(&b.metadata.namespace, &b.metadata.name))
            });
            for o in &state {
                let (key, version) = key(kind, o);
                let rendered = match previous.remove(&key) {
                    Some((v, r)) if v == version && !v.is_empty() => r,
                    _ => match render(cluster, kind, o) {
                        Some(r) => r,
                        None => continue,
                    },
                };
                objects.push(rendered.clone());
                self.entries.insert(key, (version, rendered));
            }
        }
        objects
    }
}

/// The input for `clusters` (every watched cluster when `None`; names not watched are left
/// out). `mesh` declares every watched cluster, as `mesh.yaml` declares every cluster whatever
/// is read.
pub(super) fn input(
    shared: &Shared,
    clusters: Option<&[String]>,
    cache: Option<&Arc<ParseCache>>,
) -> Input {
    let options = &shared.options;
    // The stores (cheap handles), taken under the lock and read after it: rendering a large
    // cluster for the first time takes a while, and watches come and go meanwhile.
    let stores: Vec<(String, Stores)> = {
        let watched = lock(&shared.watched);
        lock(&shared.renders).retain(|name, _| watched.contains_key(name));
        // The own cluster first, then the others by name.
        watched
            .iter()
            .filter(|(n, _)| **n == options.cluster_id)
            .chain(watched.iter().filter(|(n, _)| **n != options.cluster_id))
            .map(|(n, w)| {
                let kinds = w.kinds.iter().map(|k| (k.kind, k.store.clone())).collect();
                (n.clone(), kinds)
            })
            .collect()
    };
    let mut decls = Vec::new();
    let mut read = Vec::new();
    for (name, kinds) in stores {
        let decl = declaration(options, &name, &kinds);
        decls.push(decl.clone());
        if clusters.is_some_and(|only| !only.contains(&name)) {
            continue;
        }
        let state = kinds.iter().map(|(kind, store)| (*kind, store.state()));
        let objects = lock(&shared.renders)
            .entry(name.clone())
            .or_default()
            .render(&name, state);
        read.push(ClusterObjects { decl, objects });
    }
    let mesh = MeshFile {
        mesh_id: options.mesh_id.clone(),
        trust_domain: options.trust_domain.clone(),
        clusters: decls,
    };
    let mut input = objects::to_input(mesh, read, cache);
    let now = leave_out_unreadable(&mut input);
    let mut logged = lock(&shared.left_out);
    for line in now.difference(&logged) {
        tracing::warn!("{line}");
    }
    *logged = now;
    drop(logged);
    // Serving a half-listed cluster would withdraw every endpoint not listed yet: until the own
    // cluster is listed whole, a read is an input error (a control plane keeps its last good
    // mesh, or stays not ready, and says why).
    if let Err(reason) = shared.synced(&options.cluster_id) {
        input.loaded.diagnostics.push(Diagnostic {
            problem: Problem::Unreadable,
            severity: Severity::Error,
            pos: None,
            path: Some(format!("kube://{}", options.cluster_id).into()),
            message: format!("not listed whole yet: {reason}"),
            object: None,
            field: None,
        });
    }
    input
}

/// Kinds whose objects are never left out: a security policy strait cannot read whole must not
/// vanish from the mesh (a dropped ALLOW or DENY policy changes who may call whom), so it
/// refuses the update instead and the last good mesh, with the policy as it was, stays.
const NEVER_LEFT_OUT: &[Kind] = &[
    Kind::AuthorizationPolicy,
    Kind::PeerAuthentication,
    Kind::RequestAuthentication,
];

/// An object the API server holds but strait cannot read whole (a value its CRD's schema
/// does not check, a field of a newer Kubernetes) is left out of the mesh with a warning, as
/// istiod skips invalid configuration: one tenant's typo must not freeze every other update
/// (endpoints included) mesh-wide. Security policies are the exception ([`NEVER_LEFT_OUT`]).
/// Returns one line per problem of the objects left out (`<document>:line:col: message`).
fn leave_out_unreadable(input: &mut Input) -> std::collections::BTreeSet<String> {
    use std::collections::HashSet;
    let mut lines = std::collections::BTreeSet::new();
    let kind_of_file: HashMap<strait_api::FileId, Kind> = input
        .clusters
        .iter()
        .flat_map(|c| c.objects.iter())
        .map(|o| (o.source.file, o.kind))
        .collect();
    let mut left_out = HashSet::new();
    for d in input
        .loaded
        .diagnostics
        .iter_mut()
        .filter(|d| d.severity == Severity::Error)
    {
        let Some(file) = d.pos.map(|p| p.file) else {
            continue;
        };
        if kind_of_file
            .get(&file)
            .is_some_and(|k| NEVER_LEFT_OUT.contains(k))
        {
            continue;
        }
        d.severity = Severity::Warning;
        d.message = format!(
            "{} (left out of the mesh: the API server holds it, strait cannot read it whole)",
            d.message
        );
        left_out.insert(file);
        if let Some(pos) = d.pos {
            lines.insert(format!(
                "{}: {}",
                input.loaded.sources.display(pos),
                d.message
            ));
        }
    }
    for c in &mut input.clusters {
        c.objects.retain(|o| !left_out.contains(&o.source.file));
    }
    lines
}

/// Every watched cluster's place in the mesh, read from its Istio namespace now.
pub(super) fn declarations(shared: &Shared) -> Vec<ClusterDecl> {
    let stores: Vec<(String, Stores)> = lock(&shared.watched)
        .iter()
        .map(|(n, w)| {
            let kinds = w.kinds.iter().map(|k| (k.kind, k.store.clone())).collect();
            (n.clone(), kinds)
        })
        .collect();
    stores
        .iter()
        .map(|(name, kinds)| declaration(&shared.options, name, kinds))
        .collect()
}

/// `cluster`'s declaration: the labels and annotations of its Istio namespace, the network
/// override for the own cluster.
fn declaration(options: &super::Options, cluster: &str, kinds: &Stores) -> ClusterDecl {
    let istio_ns = kinds
        .iter()
        .find(|(kind, _)| *kind == Kind::Namespace)
        .and_then(|(_, store)| {
            store.find(|ns| ns.metadata.name.as_deref() == Some(&options.istio_namespace))
        })
        .and_then(|ns| serde_json::to_value(&*ns).ok());
    let network = (cluster == options.cluster_id)
        .then_some(options.network.as_deref())
        .flatten();
    objects::declare(cluster, istio_ns.as_ref(), network)
}

/// One cluster's stores, kind by kind.
type Stores = Vec<(Kind, Store<DynamicObject>)>;

/// An object's cache key, (kind, uid), and its `resourceVersion`.
fn key(kind: Kind, o: &DynamicObject) -> ((Kind, String), String) {
    let uid = o.metadata.uid.clone().unwrap_or_else(|| {
        format!(
            "{}/{}",
            o.metadata.namespace.as_deref().unwrap_or(""),
            o.metadata.name.as_deref().unwrap_or("")
        )
    });
    let version = o.metadata.resource_version.clone().unwrap_or_default();
    ((kind, uid), version)
}

/// `o` as the loader reads it.
fn render(cluster: &str, kind: Kind, o: &DynamicObject) -> Option<Rendered> {
    match serde_json::to_value(o) {
        Ok(value) => Some(objects::render(cluster, kind, &value)),
        Err(e) => {
            // Decoded from JSON, so it encodes again; were it not, the object is left out
            // rather than read as something it is not.
            tracing::error!(%cluster, %kind, error = %e, "cannot encode an object read from the API server; left out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, version: &str, port: u16) -> Arc<DynamicObject> {
        let o = serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "bookinfo", "uid": format!("uid-{name}"),
                         "resourceVersion": version},
            "spec": {"ports": [{"port": port}]},
        });
        Arc::new(serde_json::from_value(o).expect("service"))
    }

    #[test]
    fn only_changed_objects_are_rendered_again() {
        let mut cache = RenderCache::default();
        let first = cache.render(
            "east",
            [(
                Kind::Service,
                vec![service("reviews", "7", 9080), service("details", "3", 9080)],
            )]
            .into_iter(),
        );
        let names: Vec<&str> = first.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kube://east/bookinfo/Service/details",
                "kube://east/bookinfo/Service/reviews"
            ]
        );
        // reviews changed (a new resourceVersion), details did not; details is kept as it was.
        let second = cache.render(
            "east",
            [(
                Kind::Service,
                vec![service("reviews", "8", 9443), service("details", "3", 9080)],
            )]
            .into_iter(),
        );
        assert!(
            Arc::ptr_eq(&first[0].text, &second[0].text),
            "details reused"
        );
        assert!(!Arc::ptr_eq(&first[1].text, &second[1].text));
        assert!(second[1].text.contains("9443"), "{}", second[1].text);
        // details deleted: its entry goes.
        let third = cache.render(
            "east",
            [(Kind::Service, vec![service("reviews", "8", 9443)])].into_iter(),
        );
        assert_eq!(third.len(), 1);
        assert!(Arc::ptr_eq(&third[0].text, &second[1].text));
        assert_eq!(cache.entries.len(), 1);
    }
}
