//! NetworkPolicies in a mesh on several networks: requests from the other networks arrive
//! from the east-west gateway's pods, which a policy admitting only its own namespace's
//! callers drops (STR0501).

use std::path::Path;

use strait_analyze::{Options, analyze};
use strait_model::BuildOptions;

const MESH: &str = "clusters:
- {name: east, network: net-east, role: primary}
- {name: west, network: net-west, role: primary}
";

const ISTIO: &str = "apiVersion: v1
kind: Namespace
metadata: {name: istio-system, labels: {topology.istio.io/network: NET}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-eastwestgateway, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: eastwestgateway}}
  template:
    metadata:
      labels: {istio: eastwestgateway, app: istio-eastwestgateway, topology.istio.io/network: NET}
      annotations: {inject.istio.io/templates: gateway}
    spec:
      containers: [{name: istio-proxy, image: auto}]
---
apiVersion: v1
kind: Service
metadata: {name: istio-eastwestgateway, namespace: istio-system}
spec:
  type: LoadBalancer
  selector: {istio: eastwestgateway}
  ports:
  - {name: tls, port: 15443}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network-gateway, namespace: istio-system}
spec:
  selector: {istio: eastwestgateway}
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: ['*.local']
";

const SHOP: &str = "apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec:
      containers:
      - name: cart
        image: example.org/cart:1
        ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: shop}
spec:
  selector: {app: cart}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cart-callers, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  ingress:
  - from: FROM
    ports: [{port: 8080}]
";

/// A mesh directory of two clusters on two networks, with `shop` in cluster east.
fn mesh_dir(shop: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::write(root.join("mesh.yaml"), MESH).expect("mesh.yaml");
    for (cluster, net) in [("east", "net-east"), ("west", "net-west")] {
        let d = root.join(cluster);
        std::fs::create_dir(&d).expect("cluster dir");
        std::fs::write(d.join("istio.yaml"), ISTIO.replace("NET", net)).expect("istio");
    }
    std::fs::write(root.join("east/shop.yaml"), shop).expect("shop");
    dir
}

fn findings(from: &str) -> Vec<String> {
    run(mesh_dir(&SHOP.replace("FROM", from)).path())
}

fn run(root: &Path) -> Vec<String> {
    let input = strait_api::read_input(&[root.to_path_buf()]);
    let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
    let report = analyze(&mesh, &diags, &Options::default());
    report
        .findings
        .iter()
        .filter(|f| f.code == "STR0501")
        .map(|f| f.message.clone())
        .collect()
}

#[test]
fn a_policy_for_local_callers_only_drops_requests_from_other_networks() {
    let found = findings("[{podSelector: {matchLabels: {app: frontend}}}]");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("shop/cart")
            && found[0].contains(
                "port 8080 from the east-west gateway istio-system/istio-eastwestgateway"
            ),
        "{found:#?}"
    );
}

#[test]
fn a_policy_admitting_the_east_west_gateway_is_silent() {
    for from in [
        "[{podSelector: {matchLabels: {app: frontend}}}, {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: istio-system}}, podSelector: {matchLabels: {istio: eastwestgateway}}}]",
        "[{namespaceSelector: {}}]",
        "[{ipBlock: {cidr: 10.0.0.0/8}}]",
    ] {
        let found = findings(from);
        assert!(found.is_empty(), "{from}: {found:#?}");
    }
}

#[test]
fn a_gateway_selector_for_another_namespace_still_drops_them() {
    let found = findings(
        "[{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}, podSelector: {matchLabels: {istio: eastwestgateway}}}]",
    );
    assert_eq!(found.len(), 1, "{found:#?}");
}

/// Two workloads behind one policy on the same port, dropped for different gateways: each
/// finding names the gateways that reach its own workload.
#[test]
fn each_workload_names_the_gateways_that_reach_it() {
    let web = "---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: example.org/web:1, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  template:
    metadata:
      labels: {istio: ingressgateway}
      annotations: {inject.istio.io/templates: gateway}
    spec:
      containers: [{name: istio-proxy, image: auto}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [shop.example.com]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/public]
  http: [{route: [{destination: {host: web}}]}]
";
    let shop = SHOP
        .replace("FROM", "[{podSelector: {matchLabels: {app: frontend}}}]")
        .replace(
            "podSelector: {matchLabels: {app: cart}}\n  ingress",
            "podSelector: {}\n  ingress",
        );
    let found = run(mesh_dir(&format!("{shop}{web}")).path());
    assert_eq!(found.len(), 2, "{found:#?}");
    let cart = found
        .iter()
        .find(|m| m.contains("workload shop/cart "))
        .expect("cart");
    let web = found
        .iter()
        .find(|m| m.contains("workload shop/web "))
        .expect("web");
    assert!(!cart.contains("ingress gateway"), "{cart}");
    assert!(
        web.contains("ingress gateway istio-system/istio-ingressgateway"),
        "{web}"
    );
}
