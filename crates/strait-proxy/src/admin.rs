//! The proxy's own endpoints, all on the pod address: admin on 15000 (`/config_dump`,
//! `/ready`), health on 15021 (`/healthz/ready`, 200 once the proxy has a certificate and a
//! configuration), Prometheus stats on 15090 (`/stats/prometheus`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use http::{Response, StatusCode};
use prometheus_client::registry::Registry;
use serde_json::json;
use strait_net::Door;
use strait_protocol::http_admin;
use tokio::net::TcpListener;

use crate::ProxyError;
use crate::body::{self, Body};
use crate::context::Shared;

/// Whether the proxy can serve: it has a certificate and a configuration.
pub fn ready(px: &Shared) -> bool {
    px.creds.current().is_some() && !px.snapshot.load().version.is_empty()
}

fn json_response(v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(body::full(serde_json::to_vec_pretty(v).unwrap_or_default()));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// The configuration the proxy holds, its version, and its certificate.
pub fn config_dump(px: &Shared) -> serde_json::Value {
    let snap = px.snapshot.load();
    let cert = px.creds.leaf().and_then(|leaf| {
        let id = strait_ca::identity_of(&leaf).map(|i| i.to_string());
        let (nb, na) = strait_ca::validity(&leaf).ok()?;
        let secs =
            |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Some(json!({"identity": id, "not_before": secs(nb), "not_after": secs(na)}))
    });
    json!({
        "version": snap.version,
        "ready": ready(px),
        "certificate": cert,
        "config": snap.config,
    })
}

async fn bind(ip: std::net::IpAddr, port: u16) -> Result<TcpListener, ProxyError> {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::Listen { addr, source })
}

/// Binds the admin, health and stats ports and serves them.
pub async fn spawn(
    px: Shared,
    registry: Arc<Registry>,
    admin: u16,
    health: u16,
    stats: u16,
) -> Result<(), ProxyError> {
    let ip = px.pod_ip;
    let (admin, health, stats) = (
        bind(ip, admin).await?,
        bind(ip, health).await?,
        bind(ip, stats).await?,
    );
    let (a, r) = (px.clone(), registry.clone());
    // The config dump names every service and endpoint the pod may reach: the pod itself and
    // the mesh's owner only.
    tokio::spawn(http_admin::serve(
        admin,
        px.reach.clone(),
        Door::Admin,
        move |req| match req.uri().path() {
            "/config_dump" => json_response(&config_dump(&a)),
            "/ready" if ready(&a) => body::text(StatusCode::OK, "LIVE\n"),
            "/ready" => body::text(StatusCode::SERVICE_UNAVAILABLE, "PRE_INITIALIZING\n"),
            "/stats/prometheus" => body::text(StatusCode::OK, a.metrics.render(&r)),
            _ => body::text(
                StatusCode::NOT_FOUND,
                "admin: /config_dump /ready /stats/prometheus\n",
            ),
        },
    ));
    let h = px.clone();
    tokio::spawn(http_admin::serve(
        health,
        px.reach.clone(),
        Door::Operator,
        move |req| match req.uri().path() {
            "/healthz/ready" if ready(&h) => body::text(StatusCode::OK, ""),
            "/healthz/ready" => body::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: waiting for certificate or configuration\n",
            ),
            _ => body::text(StatusCode::NOT_FOUND, ""),
        },
    ));
    let m = px.clone();
    tokio::spawn(http_admin::serve(
        stats,
        px.reach.clone(),
        Door::Operator,
        move |req| match req.uri().path() {
            "/stats/prometheus" | "/metrics" => {
                let mut r = body::text(StatusCode::OK, m.metrics.render(&registry));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                r
            }
            _ => body::text(StatusCode::NOT_FOUND, ""),
        },
    ));
    Ok(())
}
