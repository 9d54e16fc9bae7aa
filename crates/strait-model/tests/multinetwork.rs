//! Compiling for a mesh of two clusters on two networks: split-horizon endpoints for sidecars,
//! SNI-DNAT clusters for east-west gateways, control-plane exposure through a PASSTHROUGH
//! server, and config read from the config cluster only.

mod support;

use strait_model::Mesh;
use strait_model::compile::{
    ListenerKind, ProxyConfig, ProxyRef, ProxyRole, Runtime, TlsAction, compile,
};
use support::mesh;

const MESH: &str = "meshID: mesh1
clusters:
- {name: cluster1, network: network1}
- {name: cluster2, network: network2}
";

/// A cluster's manifests: helloworld `version`, sleep, an east-west gateway with a load
/// balancer at `lb`, the cross-network Gateway, and the pods as the API server shows them.
fn cluster(n: u8, version: &str, lb: &str) -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: sample, labels: {{istio-injection: enabled}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: istio-system, labels: {{topology.istio.io/network: network{n}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: helloworld, namespace: sample}}
spec:
  selector: {{app: helloworld}}
  ports: [{{name: http, port: 5000}}]
---
apiVersion: v1
kind: Service
metadata:
  name: istio-eastwestgateway
  namespace: istio-system
  labels: {{istio: eastwestgateway, topology.istio.io/network: network{n}}}
spec:
  type: LoadBalancer
  selector: {{istio: eastwestgateway}}
  ports:
  - {{name: status-port, port: 15021}}
  - {{name: tls, port: 15443}}
  - {{name: tls-istiod, port: 15012}}
status:
  loadBalancer:
    ingress: [{{ip: {lb}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: cross-network-gateway, namespace: istio-system}}
spec:
  selector: {{istio: eastwestgateway}}
  servers:
  - port: {{number: 15443, name: tls, protocol: TLS}}
    tls: {{mode: AUTO_PASSTHROUGH}}
    hosts: ['*.local']
---
apiVersion: v1
kind: Pod
metadata:
  name: helloworld-{version}-abcde
  namespace: sample
  labels: {{app: helloworld, version: {version}}}
spec:
  containers:
  - {{name: helloworld, image: helloworld, ports: [{{containerPort: 5000}}]}}
  - {{name: istio-proxy, image: proxyv2}}
status: {{phase: Running, podIP: 10.{n}.0.1}}
---
apiVersion: v1
kind: Pod
metadata:
  name: sleep-fghij
  namespace: sample
  labels: {{app: sleep}}
spec:
  serviceAccountName: sleep
  containers: [{{name: sleep, image: curl}}, {{name: istio-proxy, image: proxyv2}}]
status: {{phase: Running, podIP: 10.{n}.0.2}}
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-eastwestgateway-klmno
  namespace: istio-system
  labels: {{istio: eastwestgateway, topology.istio.io/network: network{n}}}
  annotations: {{inject.istio.io/templates: gateway}}
spec:
  containers:
  - name: istio-proxy
    image: auto
    env: [{{name: ISTIO_META_REQUESTED_NETWORK_VIEW, value: network{n}}}]
status: {{phase: Running, podIP: 10.{n}.0.3}}
"
    )
}

fn proxy(cluster: &str, namespace: &str, pod: &str) -> ProxyRef {
    ProxyRef {
        cluster: cluster.into(),
        namespace: namespace.into(),
        pod: pod.into(),
    }
}

fn two_networks() -> (tempfile::TempDir, Mesh) {
    let c1 = cluster(1, "v1", "198.18.0.1");
    let c2 = cluster(2, "v2", "198.18.0.2");
    mesh(&[
        ("mesh.yaml", MESH),
        ("cluster1/all.yaml", &c1),
        ("cluster2/all.yaml", &c2),
    ])
}

fn endpoints(cfg: &ProxyConfig, cluster: &str) -> Vec<(String, u32, u32, bool)> {
    cfg.clusters
        .get(cluster)
        .map(|c| {
            c.endpoints
                .iter()
                .map(|e| (e.address.clone(), e.port, e.weight, e.via_gateway))
                .collect()
        })
        .unwrap_or_default()
}

const HW: &str = "outbound|5000||helloworld.sample.svc.cluster.local";

#[test]
fn a_sidecar_reaches_the_other_network_through_its_gateway() {
    let (_d, mesh) = two_networks();
    let cfg = compile(
        &mesh,
        &Runtime::default(),
        &proxy("cluster1", "sample", "sleep-fghij"),
    )
    .expect("compile");
    assert_eq!(
        endpoints(&cfg, HW),
        vec![
            ("10.1.0.1".into(), 5000, 1, false),
            ("198.18.0.2".into(), 15443, 1, true),
        ]
    );
    let gw = &cfg.clusters[HW].endpoints[1];
    assert_eq!(
        (gw.workload.cluster.as_str(), gw.workload.network.as_str()),
        ("cluster2", "network2")
    );
    assert_eq!(
        cfg.clusters[HW].sni,
        "outbound_.5000_._.helloworld.sample.svc.cluster.local"
    );
    // The other way round, from cluster2.
    let cfg = compile(
        &mesh,
        &Runtime::default(),
        &proxy("cluster2", "sample", "sleep-fghij"),
    )
    .expect("compile");
    assert_eq!(
        endpoints(&cfg, HW),
        vec![
            ("10.2.0.1".into(), 5000, 1, false),
            ("198.18.0.1".into(), 15443, 1, true),
        ]
    );
    // A gateway the control plane found dead is marked.
    let rt = Runtime {
        unhealthy: [("198.18.0.2".to_string(), 15443)].into(),
        ..Runtime::default()
    };
    let cfg = compile(&mesh, &rt, &proxy("cluster1", "sample", "sleep-fghij")).expect("compile");
    assert!(cfg.clusters[HW].endpoints[1].unhealthy);
}

#[test]
fn an_east_west_gateway_exposes_its_own_network_by_sni() {
    let (_d, mesh) = two_networks();
    let cfg = compile(
        &mesh,
        &Runtime::default(),
        &proxy("cluster2", "istio-system", "istio-eastwestgateway-klmno"),
    )
    .expect("compile");
    assert_eq!(cfg.mesh.node.role, ProxyRole::Gateway);
    assert!(cfg.services.is_empty() && cfg.inbound.is_empty());
    let l = &cfg.listeners["15443"];
    assert_eq!((l.port, l.bind_port), (15443, 15443));
    assert_eq!(l.public, vec!["198.18.0.2".to_string()]);
    let ListenerKind::Tls { chains } = &l.kind else {
        panic!("{l:?}")
    };
    assert_eq!(chains[0].action, TlsAction::AutoPassthrough);
    // Only this network's pods stand behind the SNI: never another network's gateway.
    let sni = "outbound_.5000_._.helloworld.sample.svc.cluster.local";
    assert_eq!(
        endpoints(&cfg, sni),
        vec![("10.2.0.1".into(), 5000, 1, false)]
    );
    // The load balancer's health checks reach the proxy's readiness port.
    assert_eq!(cfg.listeners["15021"].kind, ListenerKind::Health);
}

#[test]
fn config_comes_from_the_config_cluster_only() {
    // A ServiceEntry and a mesh config in cluster2 must not reach cluster1's proxies.
    let c1 = cluster(1, "v1", "198.18.0.1");
    let c2 = format!(
        "{}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: only-in-cluster2, namespace: sample}}
spec:
  hosts: [api.example.com]
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  resolution: DNS
",
        cluster(2, "v2", "198.18.0.2")
    );
    let (_d, mesh) = mesh(&[
        ("mesh.yaml", MESH),
        ("cluster1/all.yaml", &c1),
        ("cluster2/all.yaml", &c2),
    ]);
    let cfg = compile(
        &mesh,
        &Runtime::default(),
        &proxy("cluster1", "sample", "sleep-fghij"),
    )
    .expect("compile");
    assert!(
        !cfg.services.contains_key("api.example.com:443"),
        "{:?}",
        cfg.services.keys()
    );
    let cfg = compile(
        &mesh,
        &Runtime::default(),
        &proxy("cluster2", "sample", "sleep-fghij"),
    )
    .expect("compile");
    assert!(cfg.services.contains_key("api.example.com:443"));
}

#[test]
fn a_remote_is_configured_by_its_primary_and_reaches_it_through_passthrough() {
    let mesh_file = "meshID: mesh1
clusters:
- {name: cluster1, network: network1}
- {name: cluster2, network: network2, role: remote, primary: cluster1}
";
    let expose = "---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istiod-gateway, namespace: istio-system}
spec:
  selector: {istio: eastwestgateway}
  servers:
  - port: {name: tls-istiod, number: 15012, protocol: tls}
    tls: {mode: PASSTHROUGH}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: istiod-vs, namespace: istio-system}
spec:
  hosts: ['*']
  gateways: [istiod-gateway]
  tls:
  - match: [{port: 15012, sniHosts: ['*']}]
    route:
    - destination: {host: istiod.istio-system.svc.cluster.local, port: {number: 15012}}
---
apiVersion: v1
kind: Service
metadata: {name: istiod, namespace: istio-system}
spec:
  selector: {app: istiod}
  ports: [{name: grpc-xds-tls, port: 15012}]
---
apiVersion: v1
kind: Pod
metadata: {name: istiod-pqrst, namespace: istio-system, labels: {app: istiod}}
spec: {containers: [{name: discovery, image: strait}]}
status: {phase: Running, podIP: 10.1.0.9}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    accessLogFile: /dev/stdout
";
    let c1 = format!("{}{expose}", cluster(1, "v1", "198.18.0.1"));
    let (_d, mesh) = mesh(&[
        ("mesh.yaml", mesh_file),
        ("cluster1/all.yaml", &c1),
        ("cluster2/all.yaml", &cluster(2, "v2", "198.18.0.2")),
    ]);
    let cfg = compile(
        &mesh,
        &Runtime::default(),
        &proxy("cluster1", "istio-system", "istio-eastwestgateway-klmno"),
    )
    .expect("compile");
    let ListenerKind::Tls { chains } = &cfg.listeners["15012"].kind else {
        panic!("{:?}", cfg.listeners)
    };
    let TlsAction::Passthrough { route } = &chains[0].action else {
        panic!("{chains:?}")
    };
    assert_eq!(chains[0].server_names, vec!["*".to_string()]);
    let istiod = "outbound|15012||istiod.istio-system.svc.cluster.local";
    assert_eq!(route[0].cluster, istiod);
    assert_eq!(
        endpoints(&cfg, istiod),
        vec![("10.1.0.9".into(), 15012, 1, false)]
    );
    // The remote's sidecar runs with its primary's mesh config.
    let cfg = compile(
        &mesh,
        &Runtime::default(),
        &proxy("cluster2", "sample", "sleep-fghij"),
    )
    .expect("compile");
    assert!(cfg.mesh.access_log);
    assert_eq!(cfg.mesh.node.cluster, "cluster2");
}
