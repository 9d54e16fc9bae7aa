use std::path::{Path, PathBuf};

use super::*;
use crate::{BuildOptions, build};

/// A running pod of `deployment` as the API server would show it.
fn pod(name: &str, deployment: &str, labels: &str, ip: &str, sa: &str) -> String {
    format!(
        "---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: sample
  labels: {{{labels}}}
  ownerReferences:
  - {{apiVersion: apps/v1, kind: ReplicaSet, name: {deployment}-5d8f7c, uid: x, controller: true}}
spec:
  serviceAccountName: {sa}
  containers:
  - {{name: app, image: app, ports: [{{containerPort: 5000}}]}}
  - {{name: istio-proxy, image: docker.io/istio/proxyv2:1.24.0}}
status:
  phase: Running
  podIP: {ip}
"
    )
}

pub(super) fn mesh_with(extra: &str) -> (tempfile::TempDir, crate::Mesh) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/single-cluster");
    copy(&src, dir.path());
    let mut pods = String::new();
    pods.push_str(&pod(
        "helloworld-v1-aaaaa",
        "helloworld-v1",
        "app: helloworld, version: v1",
        "10.1.0.1",
        "default",
    ));
    pods.push_str(&pod(
        "helloworld-v2-bbbbb",
        "helloworld-v2",
        "app: helloworld, version: v2",
        "10.1.0.2",
        "default",
    ));
    pods.push_str(&pod(
        "sleep-ccccc",
        "sleep",
        "app: sleep",
        "10.1.0.3",
        "sleep",
    ));
    std::fs::write(dir.path().join("cluster1/pods.yaml"), pods).expect("pods");
    std::fs::write(dir.path().join("cluster1/extra.yaml"), extra).expect("extra");
    let (mesh, diags) = build(
        strait_api::read_input(&[dir.path().to_path_buf()]),
        &BuildOptions::default(),
    );
    assert!(
        diags
            .iter()
            .all(|d| d.severity != strait_api::Severity::Error),
        "{diags:?}"
    );
    (dir, mesh)
}

fn copy(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read") {
        let e = e.expect("entry");
        let target: PathBuf = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

pub(super) fn sleep_proxy() -> ProxyRef {
    ProxyRef {
        cluster: "cluster1".into(),
        namespace: "sample".into(),
        pod: "sleep-ccccc".into(),
    }
}

const HW: &str = "helloworld.sample.svc.cluster.local";

#[test]
fn default_routes_and_endpoints() {
    let (_d, mesh) = mesh_with("");
    let cfg = compile(&mesh, &Runtime::default(), &sleep_proxy()).expect("compile");
    assert_eq!(cfg.mesh.node.workload, "sleep");
    assert_eq!(
        cfg.mesh.node.identity,
        "spiffe://cluster.local/ns/sample/sa/sleep"
    );
    let sp = &cfg.services[&format!("{HW}:5000")];
    assert_eq!(sp.protocol, AppProtocol::Http);
    assert_eq!(sp.http.len(), 1);
    assert_eq!(
        sp.http[0].action,
        HttpAction::Route(vec![WeightedCluster {
            cluster: format!("outbound|5000||{HW}"),
            weight: 100,
            ..WeightedCluster::default()
        }])
    );
    let c = &cfg.clusters[&format!("outbound|5000||{HW}")];
    assert_eq!(c.tls, UpstreamTls::Auto);
    assert_eq!(c.lb, LbPolicy::LeastRequest);
    assert_eq!(c.sni, format!("outbound_.5000_._.{HW}"));
    let eps: Vec<(&str, u32, bool, &str)> = c
        .endpoints
        .iter()
        .map(|e| {
            (
                e.address.as_str(),
                e.port,
                e.mtls,
                e.workload.workload.as_str(),
            )
        })
        .collect();
    assert_eq!(
        eps,
        [
            ("10.1.0.1", 5000, true, "helloworld-v1"),
            ("10.1.0.2", 5000, true, "helloworld-v2")
        ]
    );
    assert_eq!(
        c.identities,
        ["spiffe://cluster.local/ns/sample/sa/default"]
    );
    // The sleep proxy serves its own port 80.
    assert_eq!(cfg.inbound["80"].mtls, InboundMtls::Permissive);
}

#[test]
fn weighted_subsets_and_header_match() {
    let (_d, mesh) = mesh_with(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld, namespace: sample}
spec:
  hosts: [helloworld]
  http:
  - match: [{headers: {x-version: {exact: v2}}}]
    route: [{destination: {host: helloworld, subset: v2}}]
  - timeout: 3s
    retries: {attempts: 3, perTryTimeout: 1s, retryOn: 5xx}
    route:
    - {destination: {host: helloworld, subset: v1}, weight: 80}
    - {destination: {host: helloworld, subset: v2}, weight: 20}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld, namespace: sample}
spec:
  host: helloworld
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
",
    );
    let cfg = compile(&mesh, &Runtime::default(), &sleep_proxy()).expect("compile");
    let sp = &cfg.services[&format!("{HW}:5000")];
    assert_eq!(sp.virtual_service.as_deref(), Some("sample/helloworld"));
    assert_eq!(sp.http.len(), 2);
    assert_eq!(sp.http[0].matches[0].headers[0].name, "x-version");
    assert_eq!(sp.http[1].timeout_ms, Some(3000));
    assert_eq!(sp.http[1].retries.attempts, 3);
    assert_eq!(sp.http[1].retries.retry_on, ["5xx"]);
    let HttpAction::Route(ws) = &sp.http[1].action else {
        panic!("route")
    };
    assert_eq!(ws.iter().map(|w| w.weight).collect::<Vec<_>>(), [80, 20]);
    let v1 = &cfg.clusters[&format!("outbound|5000|v1|{HW}")];
    assert_eq!(v1.lb, LbPolicy::RoundRobin);
    assert_eq!(v1.endpoints.len(), 1);
    assert_eq!(v1.endpoints[0].workload.version, "v1");
    let v2 = &cfg.clusters[&format!("outbound|5000|v2|{HW}")];
    assert_eq!(v2.lb, LbPolicy::Random, "the subset's own policy wins");
    assert_eq!(v2.sni, format!("outbound_.5000_.v2_.{HW}"));
}

#[test]
fn mtls_settings_follow_policy() {
    let (_d, mesh) = mesh_with(
        "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: sample}
spec: {mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld, namespace: sample}
spec:
  host: helloworld
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
",
    );
    let hw = ProxyRef {
        cluster: "cluster1".into(),
        namespace: "sample".into(),
        pod: "helloworld-v1-aaaaa".into(),
    };
    let cfg = compile(&mesh, &Runtime::default(), &hw).expect("compile");
    assert_eq!(cfg.inbound["5000"].mtls, InboundMtls::Strict);
    assert_eq!(cfg.inbound["5000"].services, [format!("{HW}:5000")]);
    let cfg = compile(&mesh, &Runtime::default(), &sleep_proxy()).expect("compile");
    assert_eq!(
        cfg.clusters[&format!("outbound|5000||{HW}")].tls,
        UpstreamTls::IstioMutual
    );
}

#[test]
fn unknown_proxy_is_an_error() {
    let (_d, mesh) = mesh_with("");
    let p = ProxyRef {
        cluster: "cluster1".into(),
        namespace: "sample".into(),
        pod: "nope".into(),
    };
    assert!(matches!(
        compile(&mesh, &Runtime::default(), &p),
        Err(CompileError::UnknownProxy(_))
    ));
}

#[test]
fn resources_round_trip() {
    let (_d, mesh) = mesh_with("");
    let cfg = compile(&mesh, &Runtime::default(), &sleep_proxy()).expect("compile");
    let mut back = ProxyConfig::default();
    for r in cfg.resources() {
        // Through the bytes, as the discovery stream carries them.
        let bytes = prost::Message::encode_to_vec(&r);
        let r: strait_config::proto::Resource =
            prost::Message::decode(bytes.as_slice()).expect("decode");
        back.apply(r).expect("apply");
    }
    assert_eq!(back, cfg);
    let empty = strait_config::proto::Resource {
        name: "x".into(),
        body: None,
    };
    assert!(back.apply(empty).is_err());
}

#[test]
fn rewrites_headers_and_faults() {
    let (_d, mesh) = mesh_with(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld, namespace: sample}
spec:
  hosts: [helloworld]
  http:
  - match: [{uri: {prefix: /a}}]
    rewrite: {uri: /b, authority: other}
    headers:
      request: {set: {X-One: '1'}, remove: [X-Two]}
    fault:
      delay: {fixedDelay: 50ms}
      abort: {httpStatus: 503, percentage: {value: 12.5}}
    route:
    - destination: {host: helloworld}
      headers: {response: {add: {x-dest: d}}}
  - fault:
      delay: {fixedDelay: 1s, percent: 30}
    route: [{destination: {host: helloworld}}]
",
    );
    let cfg = compile(&mesh, &Runtime::default(), &sleep_proxy()).expect("compile");
    let sp = &cfg.services[&format!("{HW}:5000")];
    let p = &sp.http[0].policy;
    let rw = p.rewrite.as_ref().expect("rewrite");
    assert_eq!((rw.uri.as_str(), rw.authority.as_str()), ("/b", "other"));
    assert_eq!(
        p.headers.request.set,
        [("x-one".to_string(), "1".to_string())]
    );
    assert_eq!(p.headers.request.remove, ["x-two"]);
    let f = p.fault.as_ref().expect("fault");
    assert_eq!(f.delay_ms, Some(50));
    assert_eq!(
        f.delay_per_million, 0,
        "no percentage: no request is delayed, as in Istio"
    );
    assert_eq!((f.abort_status, f.abort_per_million), (Some(503), 125_000));
    let HttpAction::Route(ws) = &sp.http[0].action else {
        panic!("route")
    };
    assert_eq!(
        ws[0].headers.response.add,
        [("x-dest".to_string(), "d".to_string())]
    );
    let legacy = sp.http[1].policy.fault.as_ref().expect("fault");
    assert_eq!(
        legacy.delay_per_million, 300_000,
        "the deprecated integer percent"
    );
}

/// A captured connection carries only its original destination: the compiled service port
/// must say which addresses are the service's (the Service's cluster IP, a ServiceEntry's
/// addresses), or the proxy could not route it.
#[test]
fn service_ports_carry_their_virtual_addresses() {
    let (_d, mesh) = mesh_with(
        "apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: sample}
spec:
  clusterIP: 10.96.0.42
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: sample}
spec:
  hosts: [db.example.com]
  addresses: [240.240.1.0/24]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 10.2.0.1}]
",
    );
    let cfg = compile(&mesh, &Runtime::default(), &sleep_proxy()).expect("compile");
    assert_eq!(
        cfg.services["ratings.sample.svc.cluster.local:9080"].addresses,
        ["10.96.0.42"]
    );
    assert_eq!(
        cfg.services["db.example.com:5432"].addresses,
        ["240.240.1.0/24"]
    );
    // A Service without a cluster IP in its manifest (one not yet applied) has none.
    assert!(cfg.services[&format!("{HW}:5000")].addresses.is_empty());
}
