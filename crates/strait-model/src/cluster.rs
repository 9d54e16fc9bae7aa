//! One cluster: its objects indexed by kind, its namespaces, the mesh config its control plane
//! runs with, and the facts its manifests state about the mesh (mesh ID, cluster name, network,
//! trust domain), kept with their sources so conflicts can be reported precisely.

use std::collections::BTreeMap;
use std::path::PathBuf;

use strait_api::istio::mesh_config::{MeshConfig, MeshNetworks};
use strait_api::istio::operator::IstioOperatorSpec;
use strait_api::{IstioObject, Kind, Object, Pos, Role};

use crate::ids::{ClusterId, ObjId};
use crate::workload::NamespaceInfo;

/// A value some manifest states, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub value: String,
    pub object: ObjId,
    /// Field path in the object.
    pub path: String,
}

/// What a cluster's manifests say about the mesh.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub mesh_id: Vec<Fact>,
    pub cluster_name: Vec<Fact>,
    pub network: Vec<Fact>,
    pub trust_domain: Vec<Fact>,
    /// The `topology.istio.io/network` label of the Istio namespace, when the Namespace is in
    /// the manifests.
    pub istio_ns_network_label: Option<Fact>,
    /// The Istio namespace object, when present.
    pub istio_namespace_object: Option<ObjId>,
}

#[derive(Debug)]
pub struct Cluster {
    pub id: ClusterId,
    pub name: String,
    pub role: Role,
    /// A remote's primary.
    pub primary: Option<ClusterId>,
    /// The network the cluster is on ("" = none): `mesh.yaml`'s declaration, else what the
    /// manifests say (Istio namespace label, install values).
    pub network: String,
    /// The network istiod knows for the cluster's pods, from the manifests only (the Istio
    /// namespace's `topology.istio.io/network` label, else the install's `global.network`).
    /// When `mesh.yaml` places a cluster on a network its manifests never state, Istio gives
    /// its pods no network, and other networks dial their pod addresses directly.
    pub istio_network: String,
    /// DNS domain (`cluster.local`).
    pub domain: String,
    /// Where `mesh.yaml` says the cluster's nodes run (empty: not said).
    pub locality: strait_config::Locality,
    /// Where `mesh.yaml` declares it.
    pub decl_pos: Option<Pos>,
    pub dir: Option<PathBuf>,
    pub objects: Vec<Object>,
    pub(crate) by_kind: BTreeMap<Kind, Vec<u32>>,
    /// Objects by kind, namespace and name (the first of duplicates), for [`Cluster::find`].
    pub(crate) by_name: ByName,
    pub namespaces: BTreeMap<String, NamespaceInfo>,
    /// Where Istio is installed (`istio-system`).
    pub istio_namespace: String,
    /// Mesh config of this cluster's control plane (defaults, then the `istio` ConfigMap, an
    /// IstioOperator's `meshConfig`, and `--mesh-config`).
    pub mesh_config: MeshConfig,
    pub mesh_networks: MeshNetworks,
    pub facts: Facts,
    /// Whether the injector injects namespaces without labels.
    pub inject_by_default: bool,
}

/// Object indexes by kind, then namespace, then name.
pub(crate) type ByName = std::collections::HashMap<
    Kind,
    std::collections::HashMap<Box<str>, std::collections::HashMap<Box<str>, u32>>,
>;

/// Indexes `objects` by kind and by kind, namespace and name (the first of duplicates, as a
/// scan in input order finds it).
pub(crate) fn index_objects(objects: &[Object]) -> (BTreeMap<Kind, Vec<u32>>, ByName) {
    let mut by_kind: BTreeMap<Kind, Vec<u32>> = BTreeMap::new();
    let mut by_name = ByName::new();
    for (idx, o) in objects.iter().enumerate() {
        by_kind.entry(o.kind).or_default().push(idx as u32);
        by_name
            .entry(o.kind)
            .or_default()
            .entry(o.namespace().into())
            .or_default()
            .entry(o.name().into())
            .or_insert(idx as u32);
    }
    (by_kind, by_name)
}

impl Cluster {
    pub fn obj(&self, index: u32) -> &Object {
        &self.objects[index as usize]
    }

    pub fn obj_id(&self, index: u32) -> ObjId {
        ObjId {
            cluster: self.id,
            index,
        }
    }

    /// Objects of one kind, with their ids.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = (ObjId, &Object)> {
        self.by_kind
            .get(&kind)
            .into_iter()
            .flatten()
            .map(move |i| (self.obj_id(*i), self.obj(*i)))
    }

    /// Finds an object by kind, namespace and name; an empty namespace finds a namespaced
    /// kind's object in any namespace (the first in input order).
    pub fn find(&self, kind: Kind, namespace: &str, name: &str) -> Option<(ObjId, &Object)> {
        let indexed = || {
            let i = *self.by_name.get(&kind)?.get(namespace)?.get(name)?;
            Some((self.obj_id(i), self.obj(i)))
        };
        if !namespace.is_empty() {
            return indexed();
        }
        // Any namespace (a cluster-scoped object written with one included).
        indexed().or_else(|| self.of_kind(kind).find(|(_, o)| o.name() == name))
    }

    pub fn is_primary(&self) -> bool {
        self.role == Role::Primary
    }

    /// The namespace whose policies apply mesh-wide.
    pub fn root_namespace(&self) -> &str {
        self.mesh_config.root_namespace()
    }

    pub fn trust_domain(&self) -> &str {
        self.mesh_config.trust_domain()
    }

    /// IstioOperators in this cluster.
    pub fn operators(&self) -> impl Iterator<Item = (ObjId, &IstioObject<IstioOperatorSpec>)> {
        self.of_kind(Kind::IstioOperator)
            .filter_map(|(id, o)| o.istio_operator().map(|op| (id, op)))
    }
}
