//! The control plane in-process, driven by a scripted proxy over its real TLS port: what each
//! response carries (full state, then only what changed), ACK/NACK bookkeeping, and who may
//! ask for what.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use strait_config::Kind;
use strait_config::proto::Resource;
use strait_config::proto::resource::Body;
use strait_control::Options;
use strait_control::source::{Files, Source};
use strait_protocol::v1::discovery_client::DiscoveryClient;
use strait_protocol::v1::{DiscoveryRequest, DiscoveryResponse};
use strait_proxy::Bootstrap;
use strait_proxy::tls::Credentials;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const HW_SERVICE: &str = "helloworld.sample.svc.cluster.local:5000";

fn pod(name: &str, app: &str, version: &str, ip: &str, sa: &str) -> String {
    format!(
        "---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: sample
  labels: {{app: {app}, version: {version}}}
spec:
  serviceAccountName: {sa}
  containers:
  - {{name: app, image: x}}
  - {{name: istio-proxy, image: strait/proxy}}
status:
  phase: Running
  podIP: {ip}
"
    )
}

struct ControlPlane {
    _tmp: tempfile::TempDir,
    grpc: SocketAddr,
    debug: SocketAddr,
    mesh: PathBuf,
    root: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_dir() {
            copy(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

/// A control plane on `127.77.<n>.2` (each test its own address).
async fn start(n: u8) -> ControlPlane {
    let ip = format!("127.77.{n}.2");
    let (grpc, debug): (SocketAddr, SocketAddr) = (
        format!("{ip}:15012").parse().expect("addr"),
        format!("{ip}:15014").parse().expect("addr"),
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let mesh = tmp.path().join("mesh");
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/single-cluster"),
        &mesh,
    );
    let pods = tmp.path().join("pods.yaml");
    std::fs::write(
        &pods,
        pod(
            "helloworld-v1-a",
            "helloworld",
            "v1",
            "127.77.1.1",
            "default",
        ) + &pod("sleep-a", "sleep", "v1", "127.77.1.2", "sleep"),
    )
    .expect("pods");
    let tokens = tmp.path().join("tokens.json");
    std::fs::write(
        &tokens,
        r#"{"tok-sleep": {"cluster": "cluster1", "namespace": "sample", "service_account": "sleep"},
            "tok-hw": {"cluster": "cluster1", "namespace": "sample", "service_account": "default"},
            "tok-other": {"cluster": "cluster1", "namespace": "other", "service_account": "sleep"}}"#,
    )
    .expect("tokens");
    strait_ca::init(
        &["cluster1".to_string()],
        &tmp.path().join("certs"),
        "cluster.local",
        &strait_ca::InitOptions { force: true },
    )
    .expect("ca init");
    let root = tmp.path().join("root-cert.pem");
    let opts = Options {
        source: Source {
            clusters: Arc::new(Files {
                paths: vec![mesh.clone()],
                extra: vec![("cluster1".into(), pods)],
                status: Vec::new(),
            }),
            own: None,
        },
        cluster: String::new(),
        grpc,
        debug,
        ca_dir: Some(tmp.path().join("certs/cluster1")),
        tokens: strait_control::Tokens::File(tokens),
        root_cert_out: Some(root.clone()),
        on_roots: None,
        retry_first_load: false,
        names: Vec::new(),
        poll: Duration::from_millis(20),
        reach: strait_net::Reach::default(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if let Err(e) = strait_control::run(opts, async move {
            let _ = rx.await;
        })
        .await
        {
            panic!("control plane: {e}");
        }
    });
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(grpc).await.is_ok() && root.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ControlPlane {
        _tmp: tmp,
        grpc,
        debug,
        mesh,
        root,
        stop: Some(tx),
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn bootstrap(cp: &ControlPlane, pod: &str, sa: &str, token: &str) -> Bootstrap {
    serde_json::from_value(serde_json::json!({
        "cluster": "cluster1", "namespace": "sample", "pod": pod, "service_account": sa,
        "pod_ip": "127.77.1.2", "app_ip": "127.77.129.2", "control_plane": cp.grpc,
        "root_cert": cp.root, "token": token,
    }))
    .expect("bootstrap")
}

struct Stream {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: tonic::Streaming<DiscoveryResponse>,
}

async fn open(cp: &ControlPlane, bs: &Bootstrap) -> Result<Stream, tonic::Status> {
    let roots = strait_proxy::tls::root_store(&std::fs::read_to_string(&cp.root).expect("root"))
        .expect("roots");
    let creds: Arc<Credentials> = Credentials::new(roots);
    let ch = strait_proxy::control::channel(bs, &creds).expect("channel");
    let (tx, rx) = mpsc::channel(4);
    tx.send(strait_proxy::control::hello(bs))
        .await
        .expect("hello");
    let req = strait_proxy::control::authenticate(bs, tonic::Request::new(ReceiverStream::new(rx)));
    let rx = DiscoveryClient::new(ch).stream(req).await?.into_inner();
    Ok(Stream { tx, rx })
}

impl Stream {
    async fn next(&mut self) -> Result<DiscoveryResponse, tonic::Status> {
        match tokio::time::timeout(Duration::from_secs(10), self.rx.message()).await {
            Ok(Ok(Some(r))) => Ok(r),
            Ok(Ok(None)) => Err(tonic::Status::cancelled("stream ended")),
            Ok(Err(s)) => Err(s),
            Err(_) => Err(tonic::Status::deadline_exceeded("no response within 10 s")),
        }
    }

    async fn answer(&self, r: &DiscoveryResponse, error: &str) {
        let req = DiscoveryRequest {
            response_version: r.version.clone(),
            response_nonce: r.nonce.clone(),
            error_detail: error.to_string(),
            ..DiscoveryRequest::default()
        };
        self.tx.send(req).await.expect("send");
    }
}

fn kind(r: &Resource) -> &'static str {
    Kind::of(r).map_or("?", Kind::as_str)
}

fn names(r: &DiscoveryResponse) -> Vec<String> {
    let mut n: Vec<String> = r
        .resources
        .iter()
        .map(|r| format!("{} {}", kind(r), r.name))
        .collect();
    n.sort();
    n
}

async fn syncz_state(cp: &ControlPlane, pod: &str) -> (String, Option<String>) {
    let (_, body) = http_get(cp.debug, "/debug/syncz").await;
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let p = v["proxies"]
        .as_array()
        .expect("proxies")
        .iter()
        .find(|p| p["pod"] == pod)
        .cloned()
        .expect("proxy listed");
    (
        p["state"].as_str().unwrap_or("").to_string(),
        p["nack"].as_str().map(str::to_string),
    )
}

/// A minimal HTTP/1.0 GET (the debug port answers HTTP/1.x).
async fn http_get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let status = String::from_utf8_lossy(&raw[9..12])
        .parse()
        .expect("status");
    (status, raw[split..].to_vec())
}

const VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld, namespace: sample}
spec:
  hosts: [helloworld]
  http:
  - timeout: 3s
    route:
    - destination: {host: helloworld}
";

async fn eventually<F: AsyncFn() -> bool>(what: &str, f: F) {
    for _ in 0..250 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_state_then_only_what_changed_with_ack_and_nack() {
    let cp = start(1).await;
    let mut s = open(&cp, &bootstrap(&cp, "sleep-a", "sleep", "tok-sleep"))
        .await
        .expect("open");

    let first = s.next().await.expect("first response");
    assert!(first.full_state);
    let all = names(&first);
    assert!(all.contains(&format!("service {HW_SERVICE}")), "{all:?}");
    assert!(all.contains(&"mesh mesh".to_string()), "{all:?}");
    assert!(
        all.contains(&"cluster outbound|5000||helloworld.sample.svc.cluster.local".to_string()),
        "{all:?}"
    );
    s.answer(&first, "").await;
    eventually("SYNCED after ACK", async || {
        syncz_state(&cp, "sleep-a").await.0 == "SYNCED"
    })
    .await;

    // A VirtualService for helloworld changes one resource; only that one is sent.
    std::fs::write(cp.mesh.join("cluster1/vs.yaml"), VS).expect("write");
    let second = s.next().await.expect("second response");
    assert!(!second.full_state);
    assert_eq!(names(&second), [format!("service {HW_SERVICE}")]);
    assert!(second.removed.is_empty());

    // The proxy rejects it: recorded, and the next delta is computed from what it holds.
    s.answer(&second, "cannot apply: test").await;
    eventually("NACKED", async || {
        syncz_state(&cp, "sleep-a").await == ("NACKED".into(), Some("cannot apply: test".into()))
    })
    .await;
    std::fs::write(cp.mesh.join("cluster1/vs.yaml"), VS.replace("3s", "4s")).expect("write");
    let third = s.next().await.expect("third response");
    assert_eq!(names(&third), [format!("service {HW_SERVICE}")]);
    let Some(Body::Service(sp)) = &third.resources[0].body else {
        panic!("{:?}", third.resources[0]);
    };
    assert_eq!(sp.http[0].timeout_ms, Some(4000), "{sp:?}");
    s.answer(&third, "").await;
    eventually("SYNCED again", async || {
        syncz_state(&cp, "sleep-a").await == ("SYNCED".into(), None)
    })
    .await;

    // A new Service adds its route and cluster; deleting it removes exactly those.
    let svc = "apiVersion: v1
kind: Service
metadata: {name: extra, namespace: sample}
spec:
  selector: {app: sleep}
  ports: [{name: http, port: 8000}]
";
    std::fs::write(cp.mesh.join("cluster1/extra.yaml"), svc).expect("write");
    let added = s.next().await.expect("added");
    let added_names = names(&added);
    assert!(
        added_names.contains(&"service extra.sample.svc.cluster.local:8000".to_string()),
        "{added_names:?}"
    );
    assert!(
        added_names.contains(&"cluster outbound|8000||extra.sample.svc.cluster.local".to_string()),
        "{added_names:?}"
    );
    assert!(
        added_names
            .iter()
            .all(|n| n.contains("extra.sample") || n.starts_with("inbound")),
        "{added_names:?}"
    );
    s.answer(&added, "").await;
    std::fs::remove_file(cp.mesh.join("cluster1/extra.yaml")).expect("rm");
    let removed = s.next().await.expect("removed");
    let mut gone: Vec<String> = removed
        .removed
        .iter()
        .map(|r| {
            let kind = Kind::from_proto(r.kind).expect("kind");
            format!("{kind} {}", r.name)
        })
        .collect();
    gone.sort();
    assert!(
        gone.contains(&"service extra.sample.svc.cluster.local:8000".to_string()),
        "{gone:?}"
    );
    assert!(
        gone.contains(&"cluster outbound|8000||extra.sample.svc.cluster.local".to_string()),
        "{gone:?}"
    );
    assert!(
        removed.resources.iter().all(|r| kind(r) == "inbound"),
        "{:?}",
        names(&removed)
    );

    // A broken edit sends nothing.
    std::fs::write(
        cp.mesh.join("cluster1/vs.yaml"),
        VS.replace("timeout", "timeuot"),
    )
    .expect("write");
    s.answer(&removed, "").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), s.rx.message())
            .await
            .is_err(),
        "a broken edit was pushed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_may_only_ask_for_their_own_pods() {
    let cp = start(2).await;
    // Another namespace's token for a pod in `sample`.
    let mut s = open(&cp, &bootstrap(&cp, "sleep-a", "sleep", "tok-other"))
        .await
        .expect("open");
    let e = s.next().await.expect_err("refused");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e}");
    // The right namespace, the wrong service account.
    let mut s = open(&cp, &bootstrap(&cp, "sleep-a", "sleep", "tok-hw"))
        .await
        .expect("open");
    let e = s.next().await.expect_err("refused");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e}");
    assert!(e.message().contains("service account"), "{e}");
    // No valid token at all.
    let e = match open(&cp, &bootstrap(&cp, "sleep-a", "sleep", "forged")).await {
        Err(e) => e,
        Ok(mut s) => s.next().await.expect_err("refused"),
    };
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e}");

    // Certificates: issued for the token's identity, whatever the CSR says.
    let bs = bootstrap(&cp, "sleep-a", "sleep", "tok-sleep");
    let roots = strait_proxy::tls::root_store(&std::fs::read_to_string(&cp.root).expect("root"))
        .expect("roots");
    let creds = Credentials::new(roots);
    let ch = strait_proxy::control::channel(&bs, &creds).expect("channel");
    strait_proxy::control::issue(&bs, &creds, &ch)
        .await
        .expect("issue");
    let leaf = creds.leaf().expect("leaf");
    assert_eq!(
        strait_ca::identity_of(&leaf)
            .map(|i| i.to_string())
            .as_deref(),
        Some("spiffe://cluster.local/ns/sample/sa/sleep")
    );
    let forged = bootstrap(&cp, "sleep-a", "sleep", "forged");
    assert!(
        strait_proxy::control::issue(&forged, &creds, &ch)
            .await
            .is_err()
    );
}
