//! The model built from `examples/multicluster`: what a multi-primary, multi-network mesh
//! looks like once read.

use std::path::PathBuf;

use strait_model::{BuildOptions, GatewayRole, Injection, Layout, build};

fn example() -> strait_model::Mesh {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/multicluster");
    let (mesh, diags) = build(strait_api::read_input(&[dir]), &BuildOptions::default());
    assert!(diags.is_empty(), "{diags:?}");
    mesh
}

#[test]
fn clusters_and_networks() {
    let mesh = example();
    assert_eq!(mesh.layout, Layout::MeshDirectory);
    assert_eq!(mesh.id.as_deref(), Some("mesh1"));
    let names: Vec<&str> = mesh.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["cluster1", "cluster2"]);
    assert_eq!(mesh.clusters[1].network, "network2");
    assert!(mesh.is_multinetwork());
    let n2 = &mesh.networks["network2"];
    assert_eq!(n2.gateways.len(), 1);
    assert!(n2.gateways[0].reachable);
    assert_eq!(n2.gateways[0].port, 15443);
    // Facts the manifests state, with where they state them.
    let c1 = &mesh.clusters[0];
    assert_eq!(c1.facts.cluster_name[0].value, "cluster1");
    assert_eq!(c1.facts.mesh_id[0].value, "mesh1");
    assert!(c1.facts.istio_ns_network_label.is_some());
    assert_eq!(
        c1.mesh_config.access_log_file.as_deref(),
        Some("/dev/stdout")
    );
}

#[test]
fn services_merge_across_clusters() {
    let mesh = example();
    let hw: Vec<_> = mesh
        .registry
        .by_host("helloworld.sample.svc.cluster.local")
        .collect();
    assert_eq!(hw.len(), 2, "one instance per cluster");
    let backends: Vec<String> = hw
        .iter()
        .flat_map(|s| mesh.endpoints_of(s))
        .map(|w| format!("{}/{}", mesh.cluster(w.cluster).name, w.name))
        .collect();
    assert_eq!(
        backends,
        ["cluster1/helloworld-v1", "cluster2/helloworld-v2"]
    );
    // Short names resolve from the service's namespace only.
    assert_eq!(
        mesh.registry
            .resolve("helloworld.sample.svc.cluster.local", "sample")
            .len(),
        2
    );
}

#[test]
fn workloads_injection_and_identity() {
    let mesh = example();
    let sleep = mesh
        .workloads
        .iter()
        .find(|w| w.name == "sleep")
        .expect("sleep");
    assert!(
        matches!(sleep.sidecar, Injection::Injected(_)),
        "{:?}",
        sleep.sidecar
    );
    assert_eq!(
        mesh.identity(sleep),
        "spiffe://cluster.local/ns/sample/sa/sleep"
    );
    let ew = mesh
        .workloads
        .iter()
        .find(|w| w.name == "istio-eastwestgateway")
        .expect("east-west gateway");
    assert_eq!(ew.gateway, Some(GatewayRole::EastWest));
    assert_eq!(ew.network, "network1");
}

#[test]
fn trust_material() {
    let mesh = example();
    assert_eq!(mesh.ca_bundles.len(), 2);
    for b in &mesh.ca_bundles {
        assert!(b.problems.is_empty(), "{:?}", b.problems);
        assert_eq!(b.chains_to_root, Some(true));
    }
    assert_eq!(
        mesh.ca_bundles[0].roots[0].der, mesh.ca_bundles[1].roots[0].der,
        "one shared root"
    );
    let m = &mesh;
    let secrets: Vec<(&str, &str)> = m
        .remote_secrets
        .iter()
        .flat_map(|s| {
            s.clusters
                .iter()
                .map(move |c| (m.cluster(s.cluster).name.as_str(), c.cluster_id.as_str()))
        })
        .collect();
    assert_eq!(
        secrets,
        [("cluster1", "cluster2"), ("cluster2", "cluster1")]
    );
    assert_eq!(
        mesh.remote_secrets[0].clusters[0].server.as_deref(),
        Some("https://cluster2.example.internal:6443")
    );
}
