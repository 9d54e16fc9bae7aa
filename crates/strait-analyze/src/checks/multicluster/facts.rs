//! Mesh ID, trust domain, cluster names and networks: what `mesh.yaml` declares against what
//! the manifests install.

use strait_model::{Fact, Layout};

use crate::catalog::{STR0108, STR0109, STR0110, STR0112};
use crate::checks::util;
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    mesh_id(ctx);
    trust_domain(ctx);
    cluster_facts(ctx);
    network_label(ctx);
}

/// STR0108: clusters (or mesh.yaml) disagree on the mesh ID.
fn mesh_id(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let declared = mesh.mesh_file.as_ref().and_then(|m| m.mesh_id.clone());
    let mut reference: Option<(String, String)> =
        declared.clone().map(|d| (d, "mesh.yaml".to_string()));
    for c in &mesh.clusters {
        for f in &c.facts.mesh_id {
            match &reference {
                None => reference = Some((f.value.clone(), format!("cluster {}", c.name))),
                Some((v, source)) if *v != f.value => {
                    ctx.at(
                        STR0108,
                        f.object,
                        &f.path,
                        format!(
                            "cluster {} installs mesh ID \"{}\" but {source} says \"{v}\": clusters of one mesh must share the mesh ID (it labels telemetry and scopes multi-cluster discovery)",
                            c.name, f.value
                        ),
                    );
                }
                Some(_) => {}
            }
        }
    }
}

/// STR0109: clusters disagree on the trust domain and neither accepts the other's as an alias.
fn trust_domain(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    if mesh.clusters.len() < 2 && mesh.mesh_file.is_none() {
        return;
    }
    let declared = mesh.mesh_file.as_ref().and_then(|m| m.trust_domain.clone());
    for c in &mesh.clusters {
        let Some(f) = c.facts.trust_domain.last() else {
            continue;
        };
        let accepts =
            |td: &str| f.value == td || c.mesh_config.trust_domain_aliases.iter().any(|a| a == td);
        if let Some(d) = &declared
            && !accepts(d)
        {
            ctx.at(
                STR0109,
                f.object,
                &f.path,
                format!(
                    "cluster {} sets trust domain \"{}\" but mesh.yaml declares \"{d}\": identities (spiffe://{}/...) will not verify against peers expecting {d}",
                    c.name, f.value, f.value
                ),
            );
            continue;
        }
        let other = mesh.clusters.iter().filter(|o| o.id != c.id).find(|o| {
            let od = o.trust_domain();
            od != c.trust_domain()
                && !c.mesh_config.trust_domain_aliases.iter().any(|a| a == od)
                && !o
                    .mesh_config
                    .trust_domain_aliases
                    .iter()
                    .any(|a| a == c.trust_domain())
        });
        if let Some(o) = other
            && declared.is_none()
        {
            ctx.at(
                STR0109,
                f.object,
                &f.path,
                format!(
                    "cluster {} uses trust domain \"{}\" and cluster {} \"{}\": workloads reject each other's identities. Use one trust domain, or list the other in trustDomainAliases",
                    c.name,
                    c.trust_domain(),
                    o.name,
                    o.trust_domain()
                ),
            );
        }
    }
}

fn distinct(facts: &[Fact]) -> Vec<&Fact> {
    let mut out: Vec<&Fact> = Vec::new();
    for f in facts {
        if !out.iter().any(|o| o.value == f.value) {
            out.push(f);
        }
    }
    out
}

/// What files that hold several clusters' manifests should be analyzed as.
const SEVERAL_CLUSTERS: &str = "files are analyzed as one cluster, and these look like the manifests of several. Analyze them as a mesh directory (a mesh.yaml naming each cluster and its network, beside one directory of manifests per cluster), or read the clusters with --kubeconfig and --context";

/// STR0112: manifests name the cluster or its network differently from mesh.yaml, or from
/// each other.
fn cluster_facts(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    for c in &mesh.clusters {
        let decl = mesh
            .mesh_file
            .as_ref()
            .and_then(|m| m.clusters.iter().find(|d| d.name == c.name));
        for f in distinct(&c.facts.cluster_name) {
            if mesh.layout == Layout::MeshDirectory && f.value != c.name {
                ctx.at(
                    STR0112,
                    f.object,
                    &f.path,
                    format!(
                        "this installs the cluster as \"{}\" but it is cluster {} in mesh.yaml: remote secrets, endpoint shards and the source_cluster metric label will not match. Set clusterName to \"{}\"",
                        f.value, c.name, c.name
                    ),
                );
            }
        }
        let names = distinct(&c.facts.cluster_name);
        if names.len() > 1 && mesh.layout == Layout::Files {
            let f = names[1];
            ctx.at(
                STR0112,
                f.object,
                &f.path,
                format!(
                    "the manifests name this cluster both \"{}\" and \"{}\": {SEVERAL_CLUSTERS}",
                    names[0].value, f.value
                ),
            );
        }
        let declared_net = decl.and_then(|d| d.network.clone());
        let nets = distinct(&c.facts.network);
        for f in &nets {
            if let Some(d) = &declared_net
                && f.value != *d
            {
                ctx.at(
                    STR0112,
                    f.object,
                    &f.path,
                    format!(
                        "this puts cluster {} on network \"{}\" but mesh.yaml says \"{d}\": split-horizon routing would send other clusters to the wrong gateway",
                        c.name, f.value
                    ),
                );
            }
        }
        if declared_net.is_none() && nets.len() > 1 {
            let vals: Vec<String> = nets.iter().map(|f| format!("\"{}\"", f.value)).collect();
            let f = nets[1];
            ctx.at(
                STR0112,
                f.object,
                &f.path,
                format!(
                    "the manifests put cluster {} on several networks ({}){}",
                    c.name,
                    util::join(&vals),
                    if mesh.layout == Layout::Files {
                        format!(": {SEVERAL_CLUSTERS}")
                    } else {
                        String::new()
                    }
                ),
            );
        }
    }
}

/// STR0110: a multi-network cluster whose Istio namespace is not labelled with its network.
fn network_label(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    if !mesh.is_multinetwork() {
        return;
    }
    for c in &mesh.clusters {
        if c.network.is_empty() || c.facts.istio_ns_network_label.is_some() {
            continue;
        }
        let Some(ns) = c.facts.istio_namespace_object else {
            continue;
        };
        ctx.at_key(
            STR0110,
            ns,
            "metadata",
            format!(
                "namespace {} of cluster {} (network {}) has no topology.istio.io/network label: istiod assigns its pods no network, so other networks route to their pod IPs directly instead of through the east-west gateway. Add `topology.istio.io/network: {}`",
                c.istio_namespace, c.name, c.network, c.network
            ),
        );
    }
}
