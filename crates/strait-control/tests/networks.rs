//! What the control plane learns about network gateways while it runs: a load balancer known
//! by hostname (as AWS gives them) is resolved and its addresses reach the proxies, and a
//! gateway that does not answer is marked, not silently kept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use strait_control::hub::Hub;
use strait_control::metrics::Metrics;
use strait_control::source::{Files, Source};
use strait_model::compile::{ProxyRef, compile};

const MESH: &str = "meshID: mesh1
clusters:
- {name: cluster1, network: network1}
- {name: cluster2, network: network2}
";

fn cluster(n: u8, version: &str) -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: istio-system, labels: {{topology.istio.io/network: network{n}}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: sample, labels: {{istio-injection: enabled}}}}
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
  ports: [{{name: tls, port: 15443}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: helloworld-{version}, namespace: sample, labels: {{app: helloworld}}}}
spec:
  containers: [{{name: hw, image: hw}}, {{name: istio-proxy, image: proxyv2}}]
status: {{phase: Running, podIP: 10.{n}.0.1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: sleep, namespace: sample, labels: {{app: sleep}}}}
spec:
  containers: [{{name: sleep, image: curl}}, {{name: istio-proxy, image: proxyv2}}]
status: {{phase: Running, podIP: 10.{n}.0.2}}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_hostnames_are_resolved_and_silent_gateways_marked() {
    let dir = tempfile::tempdir().expect("tmp");
    let mesh_dir = dir.path().join("mesh");
    std::fs::create_dir_all(mesh_dir.join("cluster1")).expect("mkdir");
    std::fs::create_dir_all(mesh_dir.join("cluster2")).expect("mkdir");
    std::fs::write(mesh_dir.join("mesh.yaml"), MESH).expect("mesh");
    std::fs::write(mesh_dir.join("cluster1/all.yaml"), cluster(1, "v1")).expect("c1");
    std::fs::write(mesh_dir.join("cluster2/all.yaml"), cluster(2, "v2")).expect("c2");
    // cluster2's load balancer is known by name, as AWS reports them.
    let status = dir.path().join("lb-status.json");
    std::fs::write(
        &status,
        r#"{"services": {"istio-system/istio-eastwestgateway": ["localhost"]}}"#,
    )
    .expect("status");
    let source = Source {
        clusters: Arc::new(Files {
            paths: vec![mesh_dir],
            extra: Vec::new(),
            status: vec![("cluster2".into(), status)],
        }),
        own: None,
    };
    let metrics = Arc::new(Metrics::new(
        &mut prometheus_client::registry::Registry::default(),
    ));
    let hub = Arc::new(Hub::new(source, metrics).expect("load"));
    let task = tokio::spawn(strait_control::networks::maintain(
        hub.clone(),
        strait_net::Reach::default(),
    ));
    let sleep = ProxyRef {
        cluster: "cluster1".into(),
        namespace: "sample".into(),
        pod: "sleep".into(),
    };
    let cluster = "outbound|5000||helloworld.sample.svc.cluster.local";
    let started = Instant::now();
    // Nothing listens on localhost:15443: once resolved, the gateway is found silent.
    let (resolved, marked) = loop {
        let c = hub.snapshot();
        let cfg = compile(&c.mesh, &c.runtime, &sleep).expect("compile");
        let via: Vec<_> = cfg.clusters[cluster]
            .endpoints
            .iter()
            .filter(|e| e.via_gateway)
            .cloned()
            .collect();
        if let Some(e) = via.first()
            && e.unhealthy
        {
            break (e.address.clone(), true);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "gateway not resolved and marked: {via:?} {:?}",
            c.runtime
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    task.abort();
    let ip: std::net::IpAddr = resolved.parse().expect("an address");
    assert!(ip.is_loopback(), "{ip}");
    assert!(marked);
    let z = strait_control::networks::networkz(&hub.snapshot());
    let text = z.to_string();
    assert!(text.contains("\"address\":\"localhost\""), "{text}");
    assert!(text.contains("\"status\":\"unhealthy\""), "{text}");
}
