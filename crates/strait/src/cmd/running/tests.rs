//! The same mesh read locally and through an API server gives the same `proxy-status`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use strait_kube::read::ClusterClient;
use strait_local::up::state::{ClusterState, ControlPlaneState, PodState, State};

use super::Running;
use crate::cli::TableFormat;

fn syncz() -> Value {
    json!({"proxies": [
        {"proxy": "sleep-7f9c-k2x4q.sample", "cluster": "c1", "namespace": "sample",
         "pod": "sleep-7f9c-k2x4q", "state": "SYNCED", "sent_version": "2026-12-07T01:00:00Z/4",
         "acked_version": "2026-12-07T01:00:00Z/4", "build": "0.1.0"},
        {"proxy": "web-0.sample", "cluster": "c1", "namespace": "sample", "pod": "web-0",
         "state": "NACKED", "nack": "route helloworld: no cluster", "sent_version": "2026-12-07T01:00:00Z/4",
         "acked_version": "2026-12-07T01:00:00Z/3", "build": "0.1.0"},
    ]})
}

/// A proxy's `/config_dump`: a configuration with one outbound cluster.
fn dump() -> Value {
    json!({"version": "v4", "ready": true, "config": {
        "mesh": strait_model::compile::ProxyConfig::default().mesh,
        "services": {}, "inbound": {},
        "clusters": {"outbound|5000||helloworld.sample.svc.cluster.local": {
            "name": "outbound|5000||helloworld.sample.svc.cluster.local",
            "host": "helloworld.sample.svc.cluster.local", "port": 5000, "subset": "",
            "endpoints": [],
        }},
    }})
}

/// A pod as the API server lists it, with a sidecar.
fn pod(name: &str, workload: &str, ip: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "sample",
            "labels": {"app": workload, "pod-template-hash": "7f9c"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("{workload}-7f9c"), "uid": "u", "controller": true}]},
        "spec": {"serviceAccountName": workload,
            "containers": [{"name": workload}, {"name": "istio-proxy"}]},
        "status": {"phase": "Running", "podIP": ip},
    })
}

fn list(items: Vec<Value>) -> Value {
    json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": items})
}

/// An API server for cluster c1 (its control plane pod answering `/debug/syncz` through the
/// pod proxy), and the paths it was asked.
fn api_server() -> (kube::Client, Arc<Mutex<Vec<String>>>) {
    let (svc, mut handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = asked.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            log.lock().expect("log").push(path.clone());
            let (status, body) = match path.as_str() {
                "/api/v1/namespaces" => (
                    200,
                    list(vec![json!({"metadata": {
                    "name": "istio-system",
                    "labels": {"topology.istio.io/network": "network1"}}})]),
                ),
                "/api/v1/pods" => (
                    200,
                    list(vec![
                        pod("sleep-7f9c-k2x4q", "sleep", "10.244.0.7"),
                        pod("web-0", "web", "10.244.0.8"),
                        pod("lonely-7f9c-zz", "lonely", "10.244.0.9"),
                    ]),
                ),
                "/api/v1/namespaces/istio-system/pods"
                    if query.contains("labelSelector=app%3Distiod") =>
                {
                    (
                        200,
                        list(vec![json!({
                            "metadata": {"name": "istiod-5f4-abcde", "namespace": "istio-system"},
                            "spec": {"containers": [{"name": "discovery"}]},
                            "status": {"phase": "Running",
                                "conditions": [{"type": "Ready", "status": "True"}]},
                        })]),
                    )
                }
                "/api/v1/namespaces/istio-system/pods/istiod-5f4-abcde:15014/proxy/debug/syncz" => {
                    (200, syncz())
                }
                "/api/v1/namespaces/sample/pods/web-0:15000/proxy/config_dump" => (200, dump()),
                _ => (
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": "not found"}),
                ),
            };
            send.send_response(
                http::Response::builder()
                    .status(status)
                    .body(kube::client::Body::from(body.to_string().into_bytes()))
                    .expect("response"),
            );
        }
    });
    (kube::Client::new(svc, "default"), asked)
}

/// A local control plane's debug port answering `/debug/syncz`.
async fn local_debug_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| {
                        let body = if req.uri().path() == "/debug/syncz" {
                            syncz().to_string()
                        } else {
                            String::new()
                        };
                        async move {
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn local_pod(name: &str, workload: &str, ip: [u8; 4]) -> PodState {
    let ip = std::net::IpAddr::from(ip);
    PodState {
        cluster: "c1".into(),
        namespace: "sample".into(),
        name: name.into(),
        workload: workload.into(),
        service_account: workload.into(),
        network: "network1".into(),
        ip,
        app_ip: ip,
        app: None,
        ports: Vec::new(),
        sidecar: true,
        gateway: false,
        netns: None,
        proxy_pid: None,
        app_pids: Vec::new(),
    }
}

fn local_state(debug: SocketAddr) -> State {
    State {
        pid: 0,
        mesh: Default::default(),
        mode: Default::default(),
        networks: Vec::new(),
        clusters: vec![ClusterState {
            name: "c1".into(),
            network: "network1".into(),
            control_plane_of: "c1".into(),
            control_plane: Some(ControlPlaneState {
                grpc: debug,
                debug,
                pid: None,
            }),
        }],
        pods: vec![
            local_pod("sleep-7f9c-k2x4q", "sleep", [127, 0, 0, 7]),
            local_pod("web-0", "web", [127, 0, 0, 8]),
            local_pod("lonely-7f9c-zz", "lonely", [127, 0, 0, 9]),
        ],
        load_balancers: Vec::new(),
        public_netns: None,
    }
}

#[tokio::test]
async fn proxy_status_through_the_api_server_is_the_local_table() {
    let local = Running::local(local_state(local_debug_port().await));
    let (client, asked) = api_server();
    let kube = Running::clusters(
        vec![ClusterClient {
            name: "c1".into(),
            origin: "context c1".into(),
            client,
        }],
        "istio-system",
    )
    .await
    .expect("clusters");

    let status = crate::cmd::proxy_status::report;
    for (target, format) in [
        (None, TableFormat::Table),
        (None, TableFormat::Json),
        (Some("sleep.sample"), TableFormat::Table),
        (Some("c1/sample/web-0"), TableFormat::Table),
    ] {
        let (want, local_silent) = status(&local, target, format).await.expect("local");
        let (got, kube_silent) = status(&kube, target, format).await.expect("kube");
        assert_eq!(got, want, "{target:?} {format:?}");
        assert!(!local_silent && !kube_silent);
    }
    let (table, _) = status(&kube, None, TableFormat::Table).await.expect("kube");
    assert!(
        table.contains("NACKED (route helloworld: no cluster)")
            && table.contains("lonely-7f9c-zz.sample")
            && table.contains("NOT CONNECTED"),
        "{table}"
    );
    assert!(
        asked.lock().expect("log").iter().any(|p| p
            == "/api/v1/namespaces/istio-system/pods/istiod-5f4-abcde:15014/proxy/debug/syncz"),
        "{:?}",
        asked.lock().expect("log")
    );
}

#[tokio::test]
async fn proxy_config_reads_the_admin_port_through_the_api_server() {
    let (client, asked) = api_server();
    let kube = Running::clusters(
        vec![ClusterClient {
            name: "c1".into(),
            origin: "context c1".into(),
            client,
        }],
        "istio-system",
    )
    .await
    .expect("clusters");
    let pod = crate::cmd::target::find_proxy(&kube.st, "web.sample").expect("web.sample");
    assert_eq!(pod.key(), "c1/sample/web-0");
    let got = super::super::proxy_config::fetch_dump(&kube, pod)
        .await
        .expect("dump");
    assert_eq!(got, dump());
    assert!(
        asked
            .lock()
            .expect("log")
            .iter()
            .any(|p| p == "/api/v1/namespaces/sample/pods/web-0:15000/proxy/config_dump")
    );
    let e =
        super::super::proxy_config::fetch_dump(&kube, &local_pod("gone", "gone", [127, 0, 0, 1]))
            .await
            .expect_err("404");
    assert_eq!(
        format!("{e:#}"),
        "cluster c1 (context c1): the API server answered 404 for sample/gone:15000/config_dump: not found"
    );
}
