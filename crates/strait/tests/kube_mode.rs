//! `strait control-plane --kubernetes` end to end, against Kubernetes API servers on loopback
//! (`support::apiserver`): the control plane reads a cluster through list and watch, follows
//! remote secrets to a second cluster and back out, takes the leader lease, writes the trust
//! bundle into every namespace, and only then (and only while the cluster is listed whole)
//! reports ready.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use support::apiserver::ApiServer;
use support::net::eventually;
use support::{STRAIT, http_get};

const DEADLINE: Duration = Duration::from_secs(60);

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn namespace(name: &str, network: Option<&str>) -> Value {
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    if let Some(n) = network {
        ns["metadata"]["labels"] = json!({"topology.istio.io/network": n});
    }
    ns
}

fn service(ns: &str, name: &str, port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": name}, "clusterIP": "10.96.0.10",
                 "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]},
    })
}

/// A running, injected pod as the API server shows it.
fn pod(ns: &str, name: &str, app: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                     "labels": {"app": app, "version": "v1"}},
        "spec": {"serviceAccountName": app, "nodeName": "node-1", "containers": [
            {"name": app, "image": "registry.example/app:1", "ports": [{"containerPort": 5000}]},
            {"name": "istio-proxy", "image": "ghcr.io/strait-mesh/strait:0.1.0"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

struct ControlPlane {
    child: Child,
    debug: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ControlPlane {
    /// Starts `strait control-plane --kubernetes` for `cluster` with the kubeconfig `text`.
    fn start(dir: &Path, text: &str, cluster: &str, ca_dir: &Path) -> ControlPlane {
        Self::start_on(dir, text, cluster, ca_dir, free_port(), &[])
    }

    /// Like [`ControlPlane::start_on`], with its debug port on `debug`.
    fn start_debug_on(
        dir: &Path,
        text: &str,
        cluster: &str,
        ca_dir: &Path,
        debug: SocketAddr,
    ) -> ControlPlane {
        Self::launch(dir, text, cluster, ca_dir, free_port(), debug, &[])
    }

    /// Like [`ControlPlane::start`], serving proxies on `grpc`, with `localhost` in its
    /// serving certificate.
    fn start_on(
        dir: &Path,
        text: &str,
        cluster: &str,
        ca_dir: &Path,
        grpc: SocketAddr,
        env: &[(&str, &str)],
    ) -> ControlPlane {
        Self::launch(dir, text, cluster, ca_dir, grpc, free_port(), env)
    }

    fn launch(
        dir: &Path,
        text: &str,
        cluster: &str,
        ca_dir: &Path,
        grpc: SocketAddr,
        debug: SocketAddr,
        env: &[(&str, &str)],
    ) -> ControlPlane {
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, text).expect("kubeconfig");
        let log = dir.join("control-plane.log");
        let child = Command::new(STRAIT)
            .args(["control-plane", "--kubernetes", "--cluster", cluster])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--ca-dir")
            .arg(ca_dir)
            .args(["--listen", &grpc.to_string(), "--debug", &debug.to_string()])
            .args(["--poll-ms", "50", "--name", "localhost"])
            .env("POD_NAME", "istiod-5d4f8c7b9-x2x7q")
            .env("POD_NAMESPACE", "istio-system")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start the control plane");
        ControlPlane { child, debug, log }
    }

    fn get(&self, url: &str) -> (u16, String) {
        match http_get(self.debug, url, &[]) {
            Ok(r) => (r.status, r.body),
            Err(e) => (0, e.to_string()),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn until(&self, what: &str, mut f: impl FnMut(&ControlPlane) -> bool) {
        let mut done = false;
        eventually(DEADLINE, what, || {
            done = f(self);
            done
        });
        assert!(done, "{what}\ncontrol plane log:\n{}", self.log());
    }
}

/// An injected sidecar as its pod would run it: `strait proxy --bootstrap-env` with the
/// environment the injector writes, its projected token in a file, listening on the pod's
/// address (no iptables on loopback). Stopped when dropped.
struct Sidecar {
    child: Child,
    log: std::path::PathBuf,
}

impl Sidecar {
    fn start(
        dir: &Path,
        pod: &str,
        sa: &str,
        ip: &str,
        token: &str,
        grpc: SocketAddr,
        ca_dir: &Path,
    ) -> Sidecar {
        Sidecar::start_in(
            "cluster1", "network1", dir, pod, sa, ip, token, grpc, ca_dir,
        )
    }

    /// Like [`Sidecar::start`], for a pod of `cluster` on `network`.
    #[allow(clippy::too_many_arguments)]
    fn start_in(
        cluster: &str,
        network: &str,
        dir: &Path,
        pod: &str,
        sa: &str,
        ip: &str,
        token: &str,
        grpc: SocketAddr,
        ca_dir: &Path,
    ) -> Sidecar {
        let token_file = dir.join(format!("{pod}.token"));
        std::fs::write(&token_file, token).expect("token");
        let log = dir.join(format!("{pod}.log"));
        let child = Command::new(STRAIT)
            .args(["proxy", "--bootstrap-env"])
            .env_clear()
            .env("STRAIT_LOG", "info")
            .env("POD_NAME", pod)
            .env("POD_NAMESPACE", "sample")
            .env("INSTANCE_IP", ip)
            .env("SERVICE_ACCOUNT", sa)
            .env("ISTIO_META_CLUSTER_ID", cluster)
            .env("ISTIO_META_NETWORK", network)
            .env("TRUST_DOMAIN", "cluster.local")
            .env("CA_ADDR", format!("localhost:{}", grpc.port()))
            .env("STRAIT_ROOT_CERT", ca_dir.join("root-cert.pem"))
            .env("STRAIT_TOKEN_FILE", &token_file)
            .env("STRAIT_ROLE", "sidecar")
            .env("ISTIO_META_INTERCEPTION_MODE", "NONE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start the sidecar");
        Sidecar { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_dump(ip: &str) -> Value {
    let admin: SocketAddr = format!("{ip}:15000").parse().expect("addr");
    support::operator_get(admin, "/config_dump")
        .ok()
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .unwrap_or(Value::Null)
}

/// Whether `f` holds within `timeout` (the caller asserts, with the processes' logs).
fn holds_within(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ca(dir: &Path, cluster: &str) -> std::path::PathBuf {
    let out = dir.join("certs");
    let status = Command::new(STRAIT)
        .args(["ca", "init", "--clusters", cluster, "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("strait ca init");
    assert!(status.success());
    out.join(cluster)
}

/// cluster1's control plane, with its CA, started against `kubeconfig` and ready: the CA
/// directory and gRPC address sidecars need come with it.
fn ready_control_plane(
    dir: &Path,
    kubeconfig: &str,
    env: &[(&str, &str)],
) -> (ControlPlane, std::path::PathBuf, SocketAddr) {
    let ca_dir = ca(dir, "cluster1");
    let grpc = free_port();
    let cp = ControlPlane::start_on(dir, kubeconfig, "cluster1", &ca_dir, grpc, env);
    cp.until("ready", |cp| cp.get("/ready").0 == 200);
    (cp, ca_dir, grpc)
}

#[test]
fn the_control_plane_reads_its_cluster_and_remote_secrets_through_the_api() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api1 = ApiServer::start();
    for ns in ["istio-system", "sample", "kube-system"] {
        api1.apply(namespace(ns, (ns == "istio-system").then_some("network1")));
    }
    api1.apply(service("sample", "helloworld", 5000));
    api1.apply(pod(
        "sample",
        "helloworld-v1-7d9f8b6c5-abcde",
        "helloworld",
        "10.10.0.5",
    ));
    api1.apply(pod("sample", "sleep-6c8f9d7b4-fghij", "sleep", "10.10.0.6"));
    let ca_dir = ca(tmp.path(), "cluster1");
    let cp = ControlPlane::start(
        tmp.path(),
        &api1.kubeconfig("cluster1"),
        "cluster1",
        &ca_dir,
    );

    cp.until("/healthz answers", |cp| cp.get("/healthz").0 == 200);
    cp.until("ready once cluster1 is listed", |cp| {
        cp.get("/ready").0 == 200
    });
    let configz = "/debug/configz?proxy=cluster1/sample/sleep-6c8f9d7b4-fghij";
    let (code, body) = cp.get(configz);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("helloworld.sample.svc.cluster.local") && body.contains("10.10.0.5"),
        "the sleep pod's config has helloworld and its pod: {body}"
    );

    // A watch event reaches the proxies' configuration.
    api1.apply(pod(
        "sample",
        "helloworld-v1-7d9f8b6c5-klmno",
        "helloworld",
        "10.10.0.7",
    ));
    cp.until("a new pod becomes an endpoint", |cp| {
        cp.get(configz).1.contains("10.10.0.7")
    });
    api1.delete("v1", "Pod", "sample", "helloworld-v1-7d9f8b6c5-abcde");
    cp.until("a deleted pod stops being one", |cp| {
        !cp.get(configz).1.contains("10.10.0.5")
    });

    // One replica leads, and the leader writes the trust bundle into every namespace.
    cp.until("the leader lease is taken", |_| {
        api1.get(
            "coordination.k8s.io/v1",
            "Lease",
            "istio-system",
            "istio-namespace-controller-election",
        )
        .is_some_and(|l| l["spec"]["holderIdentity"] == "istiod-5d4f8c7b9-x2x7q")
    });
    let root = std::fs::read_to_string(ca_dir.join("root-cert.pem")).expect("root");
    let has_root = |ns: &str| {
        api1.get("v1", "ConfigMap", ns, "istio-ca-root-cert")
            .is_some_and(|c| c["data"]["root-cert.pem"].as_str() == Some(root.as_str()))
    };
    cp.until("istio-ca-root-cert in sample and istio-system", |_| {
        has_root("sample") && has_root("istio-system")
    });
    assert!(
        api1.get("v1", "ConfigMap", "kube-system", "istio-ca-root-cert")
            .is_none()
    );
    api1.apply(namespace("shop", None));
    cp.until("a new namespace gets it too", |_| has_root("shop"));

    // A remote secret brings cluster2 in; deleting it takes cluster2 out.
    let api2 = ApiServer::start();
    api2.apply(namespace("istio-system", Some("network1")));
    api2.apply(namespace("sample", None));
    api2.apply(service("sample", "helloworld", 5000));
    api2.apply(pod(
        "sample",
        "helloworld-v2-5c4b3a2d1-pqrst",
        "helloworld",
        "10.20.0.9",
    ));
    let kubeconfig = base64::engine::general_purpose::STANDARD.encode(api2.kubeconfig("cluster2"));
    api1.apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "istio-remote-secret-cluster2", "namespace": "istio-system",
                     "labels": {"istio/multiCluster": "true"},
                     "annotations": {"networking.istio.io/cluster": "cluster2"}},
        "data": {"cluster2": kubeconfig},
    }));
    cp.until("cluster2's pod is an endpoint", |cp| {
        cp.get(configz).1.contains("10.20.0.9")
    });
    let (_, clusterz) = cp.get("/debug/clusterz");
    assert!(
        clusterz.contains("cluster2") && clusterz.contains("synced"),
        "{clusterz}"
    );
    api1.delete(
        "v1",
        "Secret",
        "istio-system",
        "istio-remote-secret-cluster2",
    );
    cp.until("cluster2 is gone with its secret", |cp| {
        !cp.get(configz).1.contains("10.20.0.9")
            && !cp.get("/debug/clusterz").1.contains("cluster2")
    });
    // Only the remote kinds were asked of cluster2: its Istio configuration is not read.
    assert!(
        !api2
            .seen()
            .iter()
            .any(|s| s.uri.contains("networking.istio.io")),
        "cluster2 was asked for Istio configuration"
    );
}

#[test]
fn not_ready_until_the_cluster_is_listed_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A kubeconfig that points at a port nobody listens on: nothing can be listed.
    let api = ApiServer::start();
    let dead = free_port();
    let kubeconfig = api
        .kubeconfig("cluster1")
        .replace(&api.addr.to_string(), &dead.to_string());
    let ca_dir = ca(tmp.path(), "cluster1");
    let cp = ControlPlane::start(tmp.path(), &kubeconfig, "cluster1", &ca_dir);
    cp.until("/ready says why it is not ready", |cp| {
        let (code, body) = cp.get("/ready");
        code == 503 && body.contains("kube://cluster1") && body.contains("not listed whole yet")
    });
    assert_eq!(cp.get("/healthz").0, 200, "alive while not ready");
}

/// The whole Kubernetes-mode path of a sidecar: started from its pod's environment, it proves
/// itself with its projected service-account token, the control plane has the cluster's
/// TokenReview API vouch for it, and signs for the identity the review proves.
#[test]
fn a_sidecar_is_vouched_for_by_token_review() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::start();
    api.apply(namespace("istio-system", Some("network1")));
    api.apply(namespace("sample", None));
    api.apply(service("sample", "helloworld", 5000));
    api.apply(pod(
        "sample",
        "helloworld-v1-7d9f8b6c5-abcde",
        "helloworld",
        "10.10.0.5",
    ));
    api.apply(pod(
        "sample",
        "sleep-6c8f9d7b4-fghij",
        "sleep",
        "127.172.0.2",
    ));
    api.grant_token("projected-sleep-token", "sample", "sleep");
    let (cp, ca_dir, grpc) = ready_control_plane(tmp.path(), &api.kubeconfig("cluster1"), &[]);

    let sidecar = Sidecar::start(
        tmp.path(),
        "sleep-6c8f9d7b4-fghij",
        "sleep",
        "127.172.0.2",
        "projected-sleep-token",
        grpc,
        &ca_dir,
    );
    let mut dump = Value::Null;
    holds_within(DEADLINE, || {
        dump = config_dump("127.172.0.2");
        dump["ready"] == true
    });
    let logs = format!(
        "--- control plane\n{}\n--- sidecar\n{}",
        cp.log(),
        sidecar.log()
    );
    drop(sidecar);
    assert_eq!(dump["ready"], true, "{logs}");
    assert_eq!(
        dump["certificate"]["identity"], "spiffe://cluster.local/ns/sample/sa/sleep",
        "{logs}"
    );
    assert!(
        dump["config"].to_string().contains("10.10.0.5"),
        "the sidecar holds helloworld's pod: {logs}"
    );
    let reviewed = api.seen().into_iter().any(|s| {
        s.method == "POST"
            && s.uri.contains("/tokenreviews")
            && s.body.as_ref().is_some_and(|b| {
                b["spec"]["token"] == "projected-sleep-token"
                    && b["spec"]["audiences"] == json!(["istio-ca"])
            })
    });
    assert!(reviewed, "the token was reviewed by the API server: {logs}");
}

/// A token the cluster does not vouch for gets no certificate.
#[test]
fn a_token_the_cluster_rejects_gets_no_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::start();
    api.apply(namespace("istio-system", Some("network1")));
    api.apply(namespace("sample", None));
    api.apply(pod(
        "sample",
        "sleep-6c8f9d7b4-fghij",
        "sleep",
        "127.173.0.2",
    ));
    let (cp, ca_dir, grpc) = ready_control_plane(tmp.path(), &api.kubeconfig("cluster1"), &[]);
    let sidecar = Sidecar::start(
        tmp.path(),
        "sleep-6c8f9d7b4-fghij",
        "sleep",
        "127.173.0.2",
        "a-token-nobody-issued",
        grpc,
        &ca_dir,
    );
    let reviewed = || api.seen().iter().any(|s| s.uri.contains("/tokenreviews"));
    holds_within(DEADLINE, reviewed);
    let dump = config_dump("127.173.0.2");
    let log = sidecar.log();
    drop(sidecar);
    assert!(
        reviewed(),
        "--- control plane\n{}\n--- sidecar\n{log}",
        cp.log(),
    );
    assert_ne!(dump["ready"], true, "{dump}");
    assert!(dump["certificate"].is_null(), "{dump}");
}

/// `strait install` without `--dry-run` applies the render (server-side apply, CRDs waited on
/// until served), and applying it again changes nothing.
#[test]
fn install_applies_the_render_and_again_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::start();
    let kubeconfig = tmp.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig("cluster1")).expect("kubeconfig");
    let flags = ["--cluster", "cluster1", "--network", "network1"];
    let rendered = Command::new(STRAIT)
        .args(["install", "--dry-run", "-o", "json"])
        .args(flags)
        .output()
        .expect("render");
    let list: Value = serde_json::from_slice(&rendered.stdout).expect("a List");
    let items = list["items"].as_array().expect("items");
    let apply = || {
        Command::new(STRAIT)
            .arg("install")
            .args(flags)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--context", "cluster1"])
            .output()
            .expect("apply")
    };
    let out = apply();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert_eq!(api.count(), items.len(), "{err}");
    for o in items {
        let api_version = o["apiVersion"].as_str().expect("apiVersion");
        let kind = o["kind"].as_str().expect("kind");
        let ns = o["metadata"]["namespace"].as_str().unwrap_or("");
        let name = o["metadata"]["name"].as_str().expect("name");
        let held = api
            .get(api_version, kind, ns, name)
            .unwrap_or_else(|| panic!("{kind} {ns}/{name} not applied\n{err}"));
        assert_eq!(held["spec"], o["spec"], "{kind} {ns}/{name}");
    }
    // The CRDs were applied, and waited on, before the first Istio resource.
    let seen = api.seen();
    let last_crd = seen
        .iter()
        .rposition(|s| s.uri.contains("customresourcedefinitions"))
        .expect("CRDs applied");
    let first_istio = seen
        .iter()
        .position(|s| s.method == "PATCH" && s.uri.starts_with("/apis/networking.istio.io/"))
        .expect("an Istio resource applied");
    assert!(last_crd < first_istio);
    assert!(
        seen.iter()
            .filter(|s| s.method == "PATCH")
            .all(|s| s.uri.contains("fieldManager=strait-install") && s.uri.contains("force=true")),
        "server-side apply by strait-install"
    );
    let again = apply();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(api.count(), items.len(), "applying again adds nothing");
}

/// A primary serving a remote (`EXTERNAL_ISTIOD`): the remote declares it in its Istio
/// namespace, and the primary's leader gives the remote's namespaces the trust bundle and the
/// remote's injector webhook the CA to trust, through the remote secret's client.
#[test]
fn a_primary_supplies_its_remote() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api1 = ApiServer::start();
    api1.apply(namespace("istio-system", Some("network1")));
    let api2 = ApiServer::start();
    let mut ns = namespace("istio-system", Some("network2"));
    ns["metadata"]["annotations"] = json!({"topology.istio.io/controlPlaneClusters": "cluster1"});
    api2.apply(ns);
    api2.apply(namespace("sample", None));
    api2.apply(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "istio-sidecar-injector"},
        "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io",
                      "admissionReviewVersions": ["v1"], "sideEffects": "None",
                      "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system",
                                                   "path": "/inject/cluster/cluster2/net/network2"}}}],
    }));
    api2.apply(pod(
        "sample",
        "sleep-7b9c6d5f4-uvwxy",
        "sleep",
        "127.177.0.2",
    ));
    api2.grant_token("cluster2-sleep-token", "sample", "sleep");
    let (cp, ca_dir, grpc) = ready_control_plane(
        tmp.path(),
        &api1.kubeconfig("cluster1"),
        &[("EXTERNAL_ISTIOD", "true")],
    );
    let kubeconfig = base64::engine::general_purpose::STANDARD.encode(api2.kubeconfig("cluster2"));
    api1.apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "istio-remote-secret-cluster2", "namespace": "istio-system",
                     "labels": {"istio/multiCluster": "true"}},
        "data": {"cluster2": kubeconfig},
    }));
    let root = std::fs::read_to_string(ca_dir.join("root-cert.pem")).expect("root");
    let bundle = base64::engine::general_purpose::STANDARD.encode(&root);
    cp.until("the remote's namespaces get the trust bundle", |_| {
        api2.get("v1", "ConfigMap", "sample", "istio-ca-root-cert")
            .is_some_and(|c| c["data"]["root-cert.pem"].as_str() == Some(root.as_str()))
    });
    cp.until("the remote's webhook trusts the primary's CA", |_| {
        api2.get(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            "",
            "istio-sidecar-injector",
        )
        .is_some_and(|w| w["webhooks"][0]["clientConfig"]["caBundle"].as_str() == Some(&bundle))
    });
    let webhook = api2
        .get(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            "",
            "istio-sidecar-injector",
        )
        .expect("webhook");
    assert_eq!(
        webhook["webhooks"][0]["clientConfig"]["service"]["path"],
        "/inject/cluster/cluster2/net/network2",
        "only the caBundle is patched: {webhook}"
    );
    // The remote joined after the control plane started: its pods are served, their tokens
    // reviewed by the remote's own API server.
    let sidecar = Sidecar::start_in(
        "cluster2",
        "network2",
        tmp.path(),
        "sleep-7b9c6d5f4-uvwxy",
        "sleep",
        "127.177.0.2",
        "cluster2-sleep-token",
        grpc,
        &ca_dir,
    );
    let ready = holds_within(DEADLINE, || config_dump("127.177.0.2")["ready"] == true);
    assert!(ready, "{}\n{}", cp.log(), sidecar.log());
    assert!(
        api2.seen().iter().any(|s| s.uri.contains("/tokenreviews")),
        "reviewed by cluster2's API server"
    );
}

/// `check trace` and `proxy-config` against a cluster, through the API server's pod proxy to
/// real sidecars: the trace names the VirtualService rule at its `kube://` position and the
/// endpoint the client's sidecar would pick; proxy-config shows the same endpoint.
#[test]
fn check_trace_and_proxy_config_reach_sidecars_through_the_api_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::start();
    api.apply(namespace("istio-system", Some("network1")));
    api.apply(namespace("sample", None));
    api.apply(service("sample", "helloworld", 5000));
    api.apply(pod(
        "sample",
        "helloworld-v1-7d9f8b6c5-abcde",
        "helloworld",
        "127.174.0.3",
    ));
    api.apply(pod(
        "sample",
        "sleep-6c8f9d7b4-fghij",
        "sleep",
        "127.174.0.2",
    ));
    api.apply(json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "helloworld", "namespace": "sample"},
        "spec": {"hosts": ["helloworld"], "http": [
            {"name": "hello", "match": [{"uri": {"prefix": "/hello"}}],
             "route": [{"destination": {"host": "helloworld"}}]}]},
    }));
    api.grant_token("sleep-token", "sample", "sleep");
    api.grant_token("helloworld-token", "sample", "helloworld");
    let (cp, ca_dir, grpc) = ready_control_plane(tmp.path(), &api.kubeconfig("cluster1"), &[]);
    let sleep = Sidecar::start(
        tmp.path(),
        "sleep-6c8f9d7b4-fghij",
        "sleep",
        "127.174.0.2",
        "sleep-token",
        grpc,
        &ca_dir,
    );
    let hello = Sidecar::start(
        tmp.path(),
        "helloworld-v1-7d9f8b6c5-abcde",
        "helloworld",
        "127.174.0.3",
        "helloworld-token",
        grpc,
        &ca_dir,
    );
    let ready = holds_within(DEADLINE, || {
        config_dump("127.174.0.2")["ready"] == true && config_dump("127.174.0.3")["ready"] == true
    });
    assert!(ready, "{}\n{}\n{}", cp.log(), sleep.log(), hello.log());
    let kubeconfig = tmp.path().join("kubeconfig");

    let trace = Command::new(STRAIT)
        .args([
            "check",
            "trace",
            "--from",
            "sleep-6c8f9d7b4-fghij.sample",
            "http://helloworld.sample:5000/hello",
            "-o",
            "json",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--context", "cluster1"])
        .output()
        .expect("check trace");
    let stdout = String::from_utf8_lossy(&trace.stdout);
    let stderr = String::from_utf8_lossy(&trace.stderr);
    assert!(trace.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("kube://cluster1/sample/VirtualService/helloworld:"),
        "the rule's position: {stdout}"
    );
    assert!(stdout.contains("127.174.0.3"), "the endpoint: {stdout}");

    let send = Command::new(STRAIT)
        .args([
            "check",
            "trace",
            "--send",
            "--from",
            "sleep-6c8f9d7b4-fghij.sample",
            "http://helloworld.sample:5000/hello",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--context", "cluster1"])
        .output()
        .expect("check trace --send");
    assert!(!send.status.success());
    assert!(String::from_utf8_lossy(&send.stderr).contains("strait up"));

    let endpoints = Command::new(STRAIT)
        .args(["proxy-config", "endpoints", "sleep-6c8f9d7b4-fghij.sample"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--context", "cluster1"])
        .output()
        .expect("proxy-config");
    let out = String::from_utf8_lossy(&endpoints.stdout);
    assert!(
        endpoints.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&endpoints.stderr)
    );
    assert!(out.contains("127.174.0.3:5000"), "{out}");
}

/// `check gateways` against clusters: this machine is on neither network, so whether network1
/// reaches network2's east-west gateway is the probe of network1's control plane, read through
/// the API server's pod proxy; when the gateway stops answering, the check says so.
#[test]
fn check_gateways_reads_reachability_from_the_control_plane_in_the_other_network() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api1 = ApiServer::start();
    api1.apply(namespace("istio-system", Some("network1")));
    // The control plane's pod, at the address its debug port listens on.
    let mut istiod = pod(
        "istio-system",
        "istiod-5d4f8c7b9-x2x7q",
        "istiod",
        "127.176.0.1",
    );
    istiod["spec"]["containers"] = json!([{"name": "discovery", "image": "strait"}]);
    api1.apply(istiod);
    let api2 = ApiServer::start();
    api2.apply(namespace("istio-system", Some("network2")));
    // network2's east-west gateway: its load balancer's address answers on 15443.
    let lb = TcpListener::bind("127.176.0.9:15443").expect("the load balancer's address");
    api2.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "istio-eastwestgateway", "namespace": "istio-system",
                     "labels": {"istio": "eastwestgateway", "topology.istio.io/network": "network2"}},
        "spec": {"type": "LoadBalancer", "selector": {"istio": "eastwestgateway"},
                 "ports": [{"name": "tls", "port": 15443, "targetPort": 15443}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "127.176.0.9"}]}},
    }));
    let ca_dir = ca(tmp.path(), "cluster1");
    let cp = ControlPlane::start_debug_on(
        tmp.path(),
        &api1.kubeconfig("cluster1"),
        "cluster1",
        &ca_dir,
        "127.176.0.1:15014".parse().expect("addr"),
    );
    cp.until("ready", |cp| cp.get("/ready").0 == 200);
    let remote = base64::engine::general_purpose::STANDARD.encode(api2.kubeconfig("cluster2"));
    api1.apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "istio-remote-secret-cluster2", "namespace": "istio-system",
                     "labels": {"istio/multiCluster": "true"}},
        "data": {"cluster2": remote},
    }));
    cp.until("network2's gateway probed healthy", |cp| {
        let (_, body) = cp.get("/debug/networkz");
        body.contains("127.176.0.9") && body.contains("healthy") && !body.contains("unhealthy")
    });
    // One kubeconfig, a context per cluster.
    let two = support::apiserver::kubeconfig(&[("cluster1", api1.addr), ("cluster2", api2.addr)]);
    let kubeconfig = tmp.path().join("both");
    std::fs::write(&kubeconfig, two).expect("kubeconfig");
    let check = || {
        let out = Command::new(STRAIT)
            .args(["check", "gateways", "-o", "json"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--context", "cluster1", "--context", "cluster2"])
            .output()
            .expect("check gateways");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out, report)
    };
    let (out, report) = check();
    let gw = &report["gateways"][0];
    assert_eq!(
        gw["network"],
        "network2",
        "{report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(gw["address"], "127.176.0.9", "{report:#}");
    assert_eq!(gw["status"], "healthy", "{report:#}");
    assert_eq!(gw["reachable_from"]["network1"], true, "{report:#}");

    // The load balancer stops answering: network1's control plane sees it, and so does the
    // check.
    drop(lb);
    let mut last = Value::Null;
    let seen = holds_within(DEADLINE, || {
        last = check().1;
        last["gateways"][0]["reachable_from"]["network1"] == false
    });
    assert!(seen, "{last:#}\n{}", cp.log());
    assert_eq!(last["gateways"][0]["ready"], false);
}

/// A VirtualService the API server accepted but strait cannot read (its CRD does not check a
/// duration) is left out with a warning, and every other change keeps flowing; an
/// AuthorizationPolicy strait cannot read refuses the update instead (dropping it would change
/// who may call whom), and the last good mesh stays.
#[test]
fn one_unreadable_object_does_not_freeze_the_mesh_but_a_policy_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::start();
    api.apply(namespace("istio-system", Some("network1")));
    api.apply(namespace("sample", None));
    api.apply(service("sample", "helloworld", 5000));
    api.apply(pod(
        "sample",
        "helloworld-v1-7d9f8b6c5-abcde",
        "helloworld",
        "10.10.0.5",
    ));
    api.apply(pod("sample", "sleep-6c8f9d7b4-fghij", "sleep", "10.10.0.6"));
    let ca_dir = ca(tmp.path(), "cluster1");
    let cp = ControlPlane::start(tmp.path(), &api.kubeconfig("cluster1"), "cluster1", &ca_dir);
    cp.until("ready", |cp| cp.get("/ready").0 == 200);
    let configz = "/debug/configz?proxy=cluster1/sample/sleep-6c8f9d7b4-fghij";

    api.apply(json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "helloworld", "namespace": "sample"},
        "spec": {"hosts": ["helloworld"], "http": [
            {"timeout": "10 seconds", "route": [{"destination": {"host": "helloworld"}}]}]},
    }));
    api.apply(pod(
        "sample",
        "helloworld-v1-7d9f8b6c5-klmno",
        "helloworld",
        "10.10.0.7",
    ));
    cp.until(
        "the next pod is an endpoint despite the bad VirtualService",
        |cp| cp.get(configz).1.contains("10.10.0.7"),
    );
    cp.until("the VirtualService is reported, not served", |cp| {
        cp.log().contains("left out of the mesh")
    });

    api.apply(json!({
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "allow-sleep", "namespace": "sample"},
        "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"principals": "not-a-list"}}]}]},
    }));
    cp.until("the update is refused, naming the policy", |cp| {
        let (_, mesh) = cp.get("/debug/mesh");
        mesh.contains("kube://cluster1/sample/AuthorizationPolicy/allow-sleep")
    });
    api.apply(pod(
        "sample",
        "helloworld-v1-7d9f8b6c5-pqrst",
        "helloworld",
        "10.10.0.8",
    ));
    // The pod listed after the refused policy waits with the rest of that update.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !cp.get(configz).1.contains("10.10.0.8"),
        "an update holding an unreadable policy is not served"
    );
    api.delete(
        "security.istio.io/v1",
        "AuthorizationPolicy",
        "sample",
        "allow-sleep",
    );
    cp.until("fixed: the update goes through", |cp| {
        cp.get(configz).1.contains("10.10.0.8")
    });
}

/// Two control plane replicas each serve the sidecars connected to them: `proxy-status`
/// against the cluster asks both, so no healthy sidecar shows as not connected.
#[test]
fn proxy_status_asks_every_control_plane_replica() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::start();
    api.apply(namespace("istio-system", Some("network1")));
    api.apply(namespace("sample", None));
    api.apply(service("sample", "helloworld", 5000));
    for (name, ip) in [
        ("istiod-5d4f8c7b9-aaaaa", "127.178.0.1"),
        ("istiod-5d4f8c7b9-bbbbb", "127.178.0.2"),
    ] {
        let mut istiod = pod("istio-system", name, "istiod", ip);
        istiod["spec"]["containers"] = json!([{"name": "discovery", "image": "strait"}]);
        api.apply(istiod);
    }
    api.apply(pod(
        "sample",
        "helloworld-v1-7d9f8b6c5-abcde",
        "helloworld",
        "127.178.0.3",
    ));
    api.apply(pod(
        "sample",
        "sleep-6c8f9d7b4-fghij",
        "sleep",
        "127.178.0.4",
    ));
    api.grant_token("helloworld-token", "sample", "helloworld");
    api.grant_token("sleep-token", "sample", "sleep");
    let ca_dir = ca(tmp.path(), "cluster1");
    let mut replicas = Vec::new();
    for (i, ip) in ["127.178.0.1", "127.178.0.2"].iter().enumerate() {
        let dir = tmp.path().join(format!("replica{i}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let grpc = free_port();
        let cp = ControlPlane::launch(
            &dir,
            &api.kubeconfig("cluster1"),
            "cluster1",
            &ca_dir,
            grpc,
            format!("{ip}:15014").parse().expect("addr"),
            &[],
        );
        cp.until("ready", |cp| cp.get("/ready").0 == 200);
        replicas.push((cp, grpc));
    }
    // Each sidecar connects to another replica.
    let hello = Sidecar::start(
        tmp.path(),
        "helloworld-v1-7d9f8b6c5-abcde",
        "helloworld",
        "127.178.0.3",
        "helloworld-token",
        replicas[0].1,
        &ca_dir,
    );
    let sleep = Sidecar::start(
        tmp.path(),
        "sleep-6c8f9d7b4-fghij",
        "sleep",
        "127.178.0.4",
        "sleep-token",
        replicas[1].1,
        &ca_dir,
    );
    let ready = holds_within(DEADLINE, || {
        config_dump("127.178.0.3")["ready"] == true && config_dump("127.178.0.4")["ready"] == true
    });
    assert!(ready, "{}\n{}", hello.log(), sleep.log());
    let kubeconfig = tmp.path().join("replica0").join("kubeconfig");
    let mut rows = Value::Null;
    let synced = holds_within(DEADLINE, || {
        let out = Command::new(STRAIT)
            .args(["proxy-status", "-o", "json", "--context", "cluster1"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .output()
            .expect("proxy-status");
        rows = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        rows.as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|p| p["state"] == "SYNCED"))
    });
    assert!(
        synced,
        "both sidecars synced, each through its replica: {rows:#}"
    );
}
