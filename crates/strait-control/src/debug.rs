//! The control plane's debug and monitoring port (15014, as istiod's):
//! - `/debug/syncz`: every connected proxy with what it was sent and acknowledged, and its
//!   `proxy-status` verdict (SYNCED, STALE, NACKED, NOT SENT);
//! - `/debug/configz?proxy=<cluster>/<namespace>/<pod>`: the configuration compiled for a pod,
//!   exactly what a push would carry;
//! - `/debug/mesh`: generation in force and the errors of a rejected update;
//! - `/debug/clusterz`: the clusters this control plane reads and why (its own, its remotes,
//!   its remote secrets), with each one's status (istioctl's `remote-clusters`);
//! - `/debug/networkz`: the networks and their gateways' addresses, resolved and probed;
//! - `/metrics`: Prometheus; `/ready`: 200 once serving.

use std::sync::Arc;

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

fn route(hub: &Hub, registry: &Registry, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    match req.uri().path() {
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
        "/metrics" | "/stats/prometheus" => {
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
        "/ready" => respond(StatusCode::OK, "text/plain", b"ready\n".to_vec()),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
    }
}

/// Serves the debug port on an already bound listener.
pub async fn serve(listener: TcpListener, reach: Reach, hub: Arc<Hub>, registry: Arc<Registry>) {
    // Every proxy's configuration and the mesh's topology: the mesh's owner only.
    strait_protocol::http_admin::serve(listener, reach, strait_net::Door::Admin, move |req| {
        route(&hub, &registry, req)
    })
    .await;
}
