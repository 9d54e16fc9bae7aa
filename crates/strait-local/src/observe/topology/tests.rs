use super::*;

fn pod(
    cluster: &str,
    network: &str,
    ns: &str,
    name: &str,
    workload: &str,
    gateway: bool,
) -> serde_json::Value {
    serde_json::json!({
        "cluster": cluster, "namespace": ns, "name": name, "workload": workload,
        "service_account": "default", "network": network, "ip": "127.0.1.3",
        "app_ip": "127.0.129.3", "app": null, "ports": [5000], "sidecar": true,
        "gateway": gateway, "proxy_pid": null, "app_pids": []
    })
}

fn state() -> State {
    serde_json::from_value(serde_json::json!({
        "pid": 1, "mesh": "/m",
        "networks": [{"name": "network1", "ranges": [], "netns": null},
                     {"name": "network2", "ranges": [], "netns": null}],
        "clusters": [
            {"name": "cluster1", "network": "network1", "control_plane_of": "cluster1", "control_plane": null},
            {"name": "cluster2", "network": "network2", "control_plane_of": "cluster1", "control_plane": null}
        ],
        "pods": [
            pod("cluster1", "network1", "sample", "helloworld-v1-a", "helloworld-v1", false),
            pod("cluster1", "network1", "sample", "helloworld-v1-b", "helloworld-v1", false),
            pod("cluster2", "network2", "sample", "helloworld-v2-a", "helloworld-v2", false),
            pod("cluster2", "network2", "istio-system", "ew-a", "istio-eastwestgateway", true),
            pod("cluster2", "network2", "istio-system", "in-a", "istio-ingressgateway", true)
        ],
        "load_balancers": [
            {"cluster": "cluster2", "namespace": "istio-system", "name": "istio-eastwestgateway",
             "network": "network2", "address": "127.0.112.3", "ports": [15021, 15443]},
            {"cluster": "cluster2", "namespace": "istio-system", "name": "istio-ingressgateway",
             "network": "network2", "address": "127.0.112.4", "ports": [80]}
        ]
    }))
    .expect("state")
}

fn info(cluster: &str, name: &str, version: &str) -> WorkloadInfo {
    WorkloadInfo {
        cluster: cluster.into(),
        namespace: "sample".into(),
        name: name.into(),
        app: "helloworld".into(),
        version: version.into(),
        services: vec!["helloworld.sample.svc.cluster.local".into()],
        gateway: None,
    }
}

#[test]
fn clusters_networks_gateways_and_versions() {
    let t = topology(
        &state(),
        &[
            info("cluster1", "helloworld-v1", "v1"),
            info("cluster2", "helloworld-v2", "v2"),
        ],
    );
    assert_eq!(t.networks.len(), 2);
    assert_eq!(t.networks[1].clusters, vec!["cluster2"]);
    assert!(t.clusters[0].primary && !t.clusters[1].primary);
    assert_eq!(t.clusters[1].config_cluster, "cluster1");
    let v1 = &t.workloads[0];
    assert_eq!(
        (v1.key.as_str(), v1.version.as_str(), v1.pods),
        ("cluster1/sample/helloworld-v1", "v1", 2)
    );
    assert_eq!(
        t.services["helloworld.sample.svc.cluster.local"],
        vec![
            "cluster1/sample/helloworld-v1",
            "cluster2/sample/helloworld-v2"
        ]
    );
    // Without word from the manifests, the east-west port tells the gateways apart.
    let kinds: Vec<(&str, &str)> = t
        .gateways
        .iter()
        .map(|g| (g.workload.as_str(), g.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("istio-eastwestgateway", "east-west"),
            ("istio-ingressgateway", "gateway")
        ]
    );
    assert_eq!(
        t.gateways[0].addresses,
        vec!["127.0.112.3:15021", "127.0.112.3:15443"]
    );
}

#[test]
fn the_manifests_name_a_gateways_role() {
    let mut gw = info("cluster2", "istio-ingressgateway", "");
    gw.namespace = "istio-system".into();
    gw.gateway = Some("ingress");
    let t = topology(&state(), &[gw]);
    assert_eq!(t.gateways[1].kind, "ingress");
    assert_eq!(
        t.workloads[0].app, "helloworld-v1",
        "no manifest: the workload's name"
    );
}

#[test]
fn the_model_gives_versions_services_and_gateway_roles() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/multicluster");
    let (mesh, _) = strait_model::build(
        strait_api::read_input(&[dir]),
        &strait_model::BuildOptions::default(),
    );
    let info = workload_info(&mesh);
    let v2 = info
        .iter()
        .find(|i| i.cluster == "cluster2" && i.name == "helloworld-v2")
        .expect("helloworld-v2 in cluster2");
    assert_eq!(v2.version, "v2");
    assert_eq!(v2.app, "helloworld");
    assert!(
        v2.services
            .iter()
            .any(|s| s.starts_with("helloworld.sample.svc.")),
        "{v2:?}"
    );
    assert!(
        info.iter().any(|i| i.gateway == Some("east-west")),
        "{info:#?}"
    );
}
