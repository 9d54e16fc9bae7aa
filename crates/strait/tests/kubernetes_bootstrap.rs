//! The proxy's Kubernetes-mode bootstrap, both sides of it:
//! * what the injector writes into a pod, and what `strait install` writes into its gateway
//!   Deployments, is exactly what `strait proxy --bootstrap-env` / `--kubernetes --gateway`
//!   reads (the downward API resolved as the kubelet would);
//! * end to end on loopback: a control plane serving `localhost` with a tokens table, and a
//!   sidecar and a gateway started from nothing but environment variables, with the control
//!   plane given as `localhost:<port>` and the credential as a token file. The token file does
//!   not exist when the sidecar starts: the sidecar gets its certificate once it is written,
//!   which shows the file is read for each request, not once.

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use strait_proxy::bootstrap::{ProxyRole, env::from_env};
use support::{STRAIT, operator_get};

/// The downward API as the kubelet resolves it for one pod.
fn downward(path: &str) -> &'static str {
    match path {
        "metadata.name" => "sleep-7d6c9f8b4-x2x9z",
        "metadata.namespace" => "sample",
        "status.podIP" => "10.244.1.7",
        "spec.serviceAccountName" => "sleep",
        other => panic!("a fieldRef the test does not resolve: {other}"),
    }
}

/// A container's `env` as the process sees it.
fn resolved_env(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let name = e["name"].as_str().expect("name").to_string();
            let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some(path) => downward(path).to_string(),
                None => e["value"].as_str().unwrap_or_default().to_string(),
            };
            (name, value)
        })
        .collect()
}

/// Applies the injector's JSON patch (only `add` operations) to the pod, as the API server
/// does.
fn apply(doc: &mut Value, patch: &Value) {
    for op in patch.as_array().expect("a patch is an array") {
        assert_eq!(op["op"], "add", "{op}");
        let path = op["path"].as_str().expect("path");
        let mut segments: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        let last = segments.pop().expect("a member");
        let mut target = &mut *doc;
        for s in &segments {
            target = match target {
                Value::Array(a) => &mut a[s.parse::<usize>().expect("index")],
                other => &mut other[s.as_str()],
            };
        }
        let value = op["value"].clone();
        match target {
            Value::Array(a) if last == "-" => a.push(value),
            Value::Array(a) => a.insert(last.parse().expect("index"), value),
            other => other[last.as_str()] = value,
        }
    }
}

/// The `istio-proxy` container of a review fixture's pod once the injector's patch is applied.
fn injected_proxy(fixture: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../strait-kube/tests/data")
        .join(fixture);
    let body = std::fs::read(&path).expect("fixture");
    let doc: Value = serde_json::from_slice(&body).expect("json");
    let mut config = strait_kube::inject::Config::new("strait:test");
    config.cluster_id = "cluster1".into();
    config.network = "network1".into();
    let answer = strait_kube::inject::review(&body, &config).expect("review");
    let patch = answer.response.decoded_patch().expect("a patch");
    let mut pod = doc["request"]["object"].clone();
    apply(&mut pod, &patch);
    ["containers", "initContainers"]
        .iter()
        .filter_map(|list| pod["spec"][list].as_array())
        .flatten()
        .find(|c| c["name"] == "istio-proxy")
        .cloned()
        .expect("an istio-proxy container")
}

#[test]
fn the_injected_sidecar_environment_is_what_the_proxy_reads() {
    let proxy = injected_proxy("deployment-pod.json");
    assert_eq!(proxy["args"], json!(["proxy", "--bootstrap-env"]));
    let env = resolved_env(&proxy);
    let bs = from_env(|n| env.get(n).cloned(), None).expect("a complete bootstrap");
    assert_eq!(bs.pod, "sleep-7d6c9f8b4-x2x9z");
    assert_eq!(bs.cluster, "cluster1");
    assert_eq!(bs.role, ProxyRole::Sidecar);
    assert!(bs.capture);
    assert_eq!(
        bs.control_plane.to_string(),
        "istiod.istio-system.svc:15012"
    );
    assert_eq!(bs.control_plane_name, "istiod.istio-system.svc");
    assert_eq!(
        bs.token_file.as_deref(),
        Some(Path::new("/var/run/secrets/tokens/istio-token"))
    );
    // The files it names are where the injected volumes are mounted.
    let mounts: Vec<&str> = proxy["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    for file in [bs.root_cert.clone(), bs.token_file.clone().expect("file")] {
        let dir = file.parent().and_then(Path::to_str).expect("dir");
        assert!(
            mounts.contains(&dir),
            "{} outside {mounts:?}",
            file.display()
        );
    }
}

#[test]
fn an_injected_gateway_reads_as_a_gateway() {
    let proxy = injected_proxy("gateway-pod.json");
    let env = resolved_env(&proxy);
    let bs = from_env(|n| env.get(n).cloned(), None).expect("a complete bootstrap");
    assert_eq!(bs.role, ProxyRole::Gateway);
    assert!(!bs.capture);
}

#[test]
fn the_installed_gateways_environment_is_what_the_proxy_reads() {
    let opts = strait_kube::install::Options {
        mesh_id: "mesh1".into(),
        cluster: "cluster1".into(),
        network: "network1".into(),
        role: strait_kube::install::Role::Primary {
            serves_remotes: false,
        },
        trust_domain: "example.org".into(),
        image: "strait:test".into(),
    };
    let objects = strait_kube::install::render(&opts).expect("render");
    let gateways: Vec<&Value> = objects
        .iter()
        .filter(|o| {
            o["kind"] == "Deployment"
                && o["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
        })
        .collect();
    assert_eq!(gateways.len(), 2, "east-west and ingress");
    for d in gateways {
        let spec = &d["spec"]["template"]["spec"];
        let proxy = &spec["containers"][0];
        let args: Vec<&str> = proxy["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(args, ["proxy", "--kubernetes", "--gateway"]);
        let env = resolved_env(proxy);
        let name = &d["metadata"]["name"];
        let bs = from_env(|n| env.get(n).cloned(), Some(ProxyRole::Gateway))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(bs.role, ProxyRole::Gateway);
        assert_eq!(bs.cluster, "cluster1");
        assert_eq!(bs.trust_domain, "example.org");
        let mounts: Vec<&str> = proxy["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .filter_map(|m| m["mountPath"].as_str())
            .collect();
        for file in [bs.root_cert.clone(), bs.token_file.clone().expect("file")] {
            let dir = file.parent().and_then(Path::to_str).expect("dir");
            assert!(
                mounts.contains(&dir),
                "{name}: {} outside {mounts:?}",
                file.display()
            );
        }
    }
}

#[test]
fn a_missing_variable_stops_the_proxy_with_its_name() {
    let out = Command::new(STRAIT)
        .args(["proxy", "--bootstrap-env"])
        .env_clear()
        .env("POD_NAME", "p")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("INSTANCE_IP") && err.contains("downward API"),
        "{err}"
    );

    let out = Command::new(STRAIT)
        .args(["proxy", "--gateway"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "--gateway alone is a usage error"
    );
}

/// A child process that stops when the test drops it (its stdin is its lifeline).
struct Proc {
    child: Child,
    lifeline: Option<ChildStdin>,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).expect("log");
        let mut child = cmd
            .arg("--lifeline")
            .stdin(Stdio::piped())
            .stdout(file.try_clone().expect("dup"))
            .stderr(file)
            .spawn()
            .expect("spawn");
        let lifeline = child.stdin.take();
        Proc {
            child,
            lifeline,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MANIFESTS: &str = "apiVersion: v1
kind: Namespace
metadata: {name: sample}
---
apiVersion: v1
kind: Service
metadata: {name: helloworld, namespace: sample}
spec:
  selector: {app: helloworld}
  ports: [{name: http, port: 5000}]
---
apiVersion: v1
kind: Pod
metadata: {name: sleep-1, namespace: sample, labels: {app: sleep}}
spec:
  serviceAccountName: sleep
  containers:
  - {name: sleep, image: curl}
  - {name: istio-proxy, image: strait}
status: {phase: Running, podIP: 127.171.0.2, podIPs: [{ip: 127.171.0.2}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-ingressgateway-1
  namespace: istio-system
  labels: {app: istio-ingressgateway, istio: ingressgateway}
spec:
  serviceAccountName: istio-ingressgateway
  containers:
  - {name: istio-proxy, image: strait, args: [proxy, --kubernetes, --gateway]}
status: {phase: Running, podIP: 127.171.0.3, podIPs: [{ip: 127.171.0.3}]}
";

/// A port on 127.0.0.1 free a moment ago: `localhost` must lead to the control plane.
fn free_local_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until `f` holds, up to `timeout`; panics with `what` and the processes' logs.
fn wait(timeout: Duration, what: &str, logs: &dyn Fn() -> String, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {timeout:?}: {what}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn config_dump(admin: SocketAddr) -> Option<Value> {
    let reply = operator_get(admin, "/config_dump").ok()?;
    (reply.status == 200)
        .then(|| serde_json::from_str(&reply.body).ok())
        .flatten()
}

#[test]
fn a_proxy_started_from_its_environment_gets_certificate_and_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("mesh")).expect("mkdir");
    std::fs::write(dir.join("mesh/sample.yaml"), MANIFESTS).expect("manifests");
    let tokens = json!({
        "sleep-token": {"cluster": "Kubernetes", "namespace": "sample", "service_account": "sleep"},
        "gateway-token": {"cluster": "Kubernetes", "namespace": "istio-system", "service_account": "istio-ingressgateway"},
    });
    std::fs::write(dir.join("tokens.json"), tokens.to_string()).expect("tokens");
    let port = free_local_port();
    let cp = Proc::spawn(
        Command::new(STRAIT)
            .arg("control-plane")
            .arg(dir.join("mesh"))
            .arg("--tokens")
            .arg(dir.join("tokens.json"))
            .arg("--root-cert-out")
            .arg(dir.join("root.pem"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--debug", "127.171.0.1:15014"])
            .args(["--name", "localhost"]),
        dir.join("cp.log"),
    );
    support::net::eventually(Duration::from_secs(30), "the trust bundle", || {
        dir.join("root.pem").exists()
    });

    let proxy = |pod: &str, ip: &str, sa: &str, ns: &str, token: &Path| {
        let mut cmd = Command::new(STRAIT);
        cmd.env_clear()
            .env("STRAIT_LOG", "info")
            .env("POD_NAME", pod)
            .env("POD_NAMESPACE", ns)
            .env("INSTANCE_IP", ip)
            .env("SERVICE_ACCOUNT", sa)
            .env("ISTIO_META_CLUSTER_ID", "Kubernetes")
            .env("TRUST_DOMAIN", "cluster.local")
            .env("CA_ADDR", format!("localhost:{port}"))
            .env("STRAIT_ROOT_CERT", dir.join("root.pem"))
            .env("STRAIT_TOKEN_FILE", token);
        cmd
    };
    // A sidecar without traffic capture (no iptables on loopback): the same bootstrap, the
    // proxy listening on its own address only.
    let sleep_token = dir.join("sleep-token");
    let sidecar = Proc::spawn(
        proxy("sleep-1", "127.171.0.2", "sleep", "sample", &sleep_token)
            .env("STRAIT_ROLE", "sidecar")
            .env("ISTIO_META_INTERCEPTION_MODE", "NONE")
            .args(["proxy", "--bootstrap-env"]),
        dir.join("sidecar.log"),
    );
    let gateway_token = dir.join("gateway-token");
    std::fs::write(&gateway_token, "gateway-token\n").expect("token");
    let gateway = Proc::spawn(
        proxy(
            "istio-ingressgateway-1",
            "127.171.0.3",
            "istio-ingressgateway",
            "istio-system",
            &gateway_token,
        )
        .args(["proxy", "--kubernetes", "--gateway"]),
        dir.join("gateway.log"),
    );
    let logs = || {
        format!(
            "--- control plane\n{}\n--- sidecar\n{}\n--- gateway\n{}",
            cp.log(),
            sidecar.log(),
            gateway.log()
        )
    };

    // The gateway, with its token in place, becomes ready.
    let gw_admin: SocketAddr = "127.171.0.3:15000".parse().expect("addr");
    let mut dump = None;
    wait(Duration::from_secs(60), "the gateway ready", &logs, || {
        dump = config_dump(gw_admin).filter(|d| d["ready"] == true);
        dump.is_some()
    });
    let dump = dump.unwrap_or_else(|| panic!("{}", logs()));
    assert_eq!(
        dump["certificate"]["identity"],
        "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway",
        "{}",
        logs()
    );

    // The sidecar waits for its credential: no token file yet, so no certificate.
    let sc_admin: SocketAddr = "127.171.0.2:15000".parse().expect("addr");
    wait(
        Duration::from_secs(30),
        "the sidecar's admin port",
        &logs,
        || config_dump(sc_admin).is_some(),
    );
    let waiting = config_dump(sc_admin).expect("dump");
    assert_eq!(waiting["ready"], false, "{}", logs());
    assert!(waiting["certificate"].is_null(), "{waiting}");
    wait(
        Duration::from_secs(30),
        "the missing token reported",
        &logs,
        || sidecar.log().contains("sleep-token"),
    );

    // The kubelet writes the projected token: the next request reads it.
    std::fs::write(&sleep_token, "sleep-token").expect("token");
    let mut dump = None;
    wait(Duration::from_secs(60), "the sidecar ready", &logs, || {
        dump = config_dump(sc_admin).filter(|d| d["ready"] == true);
        dump.is_some()
    });
    let dump = dump.unwrap_or_else(|| panic!("{}", logs()));
    assert_eq!(
        dump["certificate"]["identity"],
        "spiffe://cluster.local/ns/sample/sa/sleep",
        "{}",
        logs()
    );
    assert!(
        dump["config"]
            .to_string()
            .contains("helloworld.sample.svc.cluster.local"),
        "the sidecar holds the mesh's services: {dump}"
    );
    let health =
        operator_get("127.171.0.2:15021".parse().expect("addr"), "/healthz/ready").expect("health");
    assert_eq!(health.status, 200, "{}", logs());
}
