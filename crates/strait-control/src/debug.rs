//! The control plane's debug and monitoring port (15014, as istiod's):
//! - `/debug/syncz`: every connected proxy with what it was sent and acknowledged, and its
//!   `proxy-status` verdict (SYNCED, STALE, NACKED, NOT SENT);
//! - `/debug/configz?proxy=<cluster>/<namespace>/<pod>`: the configuration compiled for a pod,
//!   exactly what a push would carry;
//! - `/debug/mesh`: generation in force and the errors of a rejected update;
//! - `/debug/clusterz`: the clusters this control plane reads and why (its own, its remotes,
//!   its remote secrets), with each one's status (istioctl's `remote-clusters`);
//! - `/debug/networkz`: the networks and their gateways' addresses, resolved and probed;
//! - `/metrics`: Prometheus;
//! - `/healthz`: 200 whenever the process answers (liveness: the port comes up before the
//!   first load, so a slow first read of the clusters does not get the pod restarted);
//! - `/ready`: 200 once the first load succeeded and discovery and certificates serve, 503
//!   (with the errors of a rejected first load) before.
//!
//! Until then every `/debug` page answers 503 as well: there is no mesh to show yet.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use prometheus_client::registry::Registry;
use serde_json::json;
use strait_model::compile::{self, ProxyRef};
use strait_net::Reach;
use tokio::net::TcpListener;

use crate::hub::Hub;

/// What the health endpoints report: the hub, once it serves; before that, why not yet.
#[derive(Clone, Debug, Default)]
pub struct Health {
    hub: Arc<OnceLock<Arc<Hub>>>,
    /// The errors of the last rejected first load.
    rejected: Arc<Mutex<Vec<String>>>,
}

impl Health {
    /// The services serve `hub`: ready from now on.
    pub fn serving(&self, hub: Arc<Hub>) {
        let _ = self.hub.set(hub);
    }

    /// The first load was rejected with `errors`; another one follows.
    pub fn waiting(&self, errors: Vec<String>) {
        *self.rejected.lock().unwrap_or_else(PoisonError::into_inner) = errors;
    }

    fn hub(&self) -> Option<&Arc<Hub>> {
        self.hub.get()
    }

    fn not_ready(&self) -> Response<Full<Bytes>> {
        let errors = self
            .rejected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let text = if errors.is_empty() {
            "not ready: loading the configuration\n".to_string()
        } else {
            format!(
                "not ready: the configuration has errors:\n  {}\n",
                errors.join("\n  ")
            )
        };
        respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            text.into_bytes(),
        )
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/json",
        serde_json::to_vec_pretty(v).unwrap_or_default(),
    )
}

fn query<'a>(req: &'a Request<Incoming>, key: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn syncz(hub: &Hub) -> serde_json::Value {
    let proxies: Vec<serde_json::Value> = hub
        .proxies()
        .into_iter()
        .map(|p| {
            let state = p.state();
            let mut v = serde_json::to_value(&p).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "state".into(),
                    serde_json::to_value(state).unwrap_or_default(),
                );
            }
            v
        })
        .collect();
    json!({ "generation": hub.generation(), "proxies": proxies })
}

fn configz(hub: &Hub, proxy: Option<&str>) -> Response<Full<Bytes>> {
    let parts: Vec<&str> = proxy.unwrap_or("").split('/').collect();
    let [cluster, namespace, pod] = parts.as_slice() else {
        return json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "give ?proxy=<cluster>/<namespace>/<pod>"}),
        );
    };
    let p = ProxyRef {
        cluster: (*cluster).to_string(),
        namespace: (*namespace).to_string(),
        pod: (*pod).to_string(),
    };
    let current = hub.snapshot();
    match compile::compile(&current.mesh, &current.runtime, &p) {
        Ok(c) => json(
            StatusCode::OK,
            &json!({"generation": current.generation, "config": c.redacted()}),
        ),
        Err(e) => json(StatusCode::NOT_FOUND, &json!({"error": e.to_string()})),
    }
}

fn route(health: &Health, registry: &Registry, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/healthz" => respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
        "/metrics" | "/stats/prometheus" => metrics(registry),
        path => match health.hub() {
            Some(hub) => route_loaded(hub, path, req),
            None => health.not_ready(),
        },
    }
}

fn metrics(registry: &Registry) -> Response<Full<Bytes>> {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            text.into_bytes(),
        ),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            e.to_string().into_bytes(),
        ),
    }
}

fn route_loaded(hub: &Hub, path: &str, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    match path {
        "/debug/syncz" => json(StatusCode::OK, &syncz(hub)),
        "/debug/clusterz" => {
            let c = hub.snapshot();
            json(StatusCode::OK, &json!({"clusters": *c.clusters}))
        }
        "/debug/networkz" => json(StatusCode::OK, &crate::networks::networkz(&hub.snapshot())),
        "/debug/configz" => configz(hub, query(req, "proxy")),
        "/debug/mesh" => json(
            StatusCode::OK,
            &json!({
                "generation": hub.generation(),
                "rejected": hub.rejected().map(|r| r.errors),
            }),
        ),
        "/ready" => respond(StatusCode::OK, "text/plain", b"ready\n".to_vec()),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
    }
}

/// Serves the debug port on an already bound listener; `health` says when the mesh is there.
pub async fn serve(listener: TcpListener, reach: Reach, health: Health, registry: Arc<Registry>) {
    // Every proxy's configuration and the mesh's topology: the mesh's owner only.
    strait_protocol::http_admin::serve(listener, reach, strait_net::Door::Admin, move |req| {
        route(&health, &registry, req)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::source::Source;
    use crate::{ControlError, Options, Tokens};

    const SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec:
  ports: [{name: http, port: 80}]
";
    const BROKEN: &str = "  bogusField: [\n";

    /// Status and body of `GET path`, or `None` while nothing listens.
    async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: strait\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let status = out.split(' ').nth(1)?.parse().ok()?;
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((status, body))
    }

    /// Waits until `GET path` answers `status` with a body containing `text`.
    async fn wait_for(addr: SocketAddr, path: &str, status: u16, text: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let got = get(addr, path).await;
            if got
                .as_ref()
                .is_some_and(|(s, b)| *s == status && b.contains(text))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: waited for {status} {text:?}, last {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn options(dir: &Path, file: &Path, n: u8, retry: bool) -> Options {
        let tokens = dir.join("tokens.json");
        std::fs::write(&tokens, "{}").expect("tokens");
        Options {
            source: Source::files(vec![file.to_path_buf()]),
            cluster: String::new(),
            grpc: format!("127.79.{n}.2:15012").parse().expect("addr"),
            debug: format!("127.79.{n}.2:15014").parse().expect("addr"),
            ca_dir: None,
            tokens: Tokens::File(tokens),
            root_cert_out: None,
            on_roots: None,
            retry_first_load: retry,
            names: Vec::new(),
            poll: Duration::from_millis(20),
            reach: strait_net::Reach::default(),
        }
    }

    #[tokio::test]
    async fn alive_at_once_ready_only_after_a_good_first_load() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, format!("{SERVICE}{BROKEN}")).expect("write");
        let opts = options(dir.path(), &file, 1, true);
        let debug = opts.debug;
        let (roots_tx, mut roots_rx) = tokio::sync::mpsc::unbounded_channel();
        let opts = Options {
            on_roots: Some(crate::OnRoots(std::sync::Arc::new(move |pem: &str| {
                let _ = roots_tx.send(pem.to_string());
            }))),
            ..opts
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(crate::run(opts, async {
            let _ = stop_rx.await;
        }));

        wait_for(debug, "/healthz", 200, "ok").await;
        wait_for(debug, "/ready", 503, "a.yaml:7:1").await;
        wait_for(debug, "/debug/syncz", 503, "not ready").await;

        std::fs::write(&file, SERVICE).expect("fix");
        wait_for(debug, "/ready", 200, "ready").await;
        wait_for(debug, "/debug/syncz", 200, "generation").await;
        wait_for(debug, "/healthz", 200, "ok").await;
        let pem = roots_rx.recv().await.expect("told the roots");
        assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");

        stop_tx.send(()).expect("running");
        run.await.expect("task").expect("clean stop");
    }

    #[tokio::test]
    async fn without_retry_a_bad_first_load_ends_the_run() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, format!("{SERVICE}{BROKEN}")).expect("write");
        let opts = options(dir.path(), &file, 2, false);
        let result = crate::run(opts, std::future::pending()).await;
        assert!(matches!(result, Err(ControlError::Config(_))), "{result:?}");
    }
}
