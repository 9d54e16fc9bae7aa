//! The proxy's own endpoints, all on the pod address: admin on 15000 (`/config_dump`,
//! `/ready`), health on 15021 (`/healthz/ready`, 200 once the proxy has a certificate and a
//! configuration), Prometheus stats on 15090 (`/stats/prometheus`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use http::{Response, StatusCode};
use prometheus_client::registry::Registry;

use strait_net::Door;
use strait_protocol::http_admin;
use tokio::net::TcpListener;

use crate::ProxyError;
use crate::body::{self, Body};
use crate::context::Shared;
use crate::snapshot::Snapshot;

/// Whether the proxy can serve: it has a certificate and a configuration.
pub fn ready(px: &Shared) -> bool {
    px.creds.current().is_some() && !px.snapshot.load().version.is_empty()
}

fn json_response(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// The certificate part of the dump.
#[derive(serde::Serialize)]
struct CertificateInfo {
    identity: Option<String>,
    not_before: u64,
    not_after: u64,
}

fn certificate_info(px: &Shared) -> Option<CertificateInfo> {
    let leaf = px.creds.leaf()?;
    let (nb, na) = strait_ca::validity(&leaf).ok()?;
    let secs = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Some(CertificateInfo {
        identity: strait_ca::identity_of(&leaf).map(|i| i.to_string()),
        not_before: secs(nb),
        not_after: secs(na),
    })
}

/// The configuration the proxy holds, its version, and its certificate.
struct ConfigDump {
    snapshot: Arc<Snapshot>,
    ready: bool,
    certificate: Option<CertificateInfo>,
}

impl serde::Serialize for ConfigDump {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ConfigDump", 5)?;
        st.serialize_field("version", &self.snapshot.version)?;
        st.serialize_field("ready", &self.ready)?;
        st.serialize_field("certificate", &self.certificate)?;
        st.serialize_field("ejected", &self.snapshot.ejected())?;
        st.serialize_field("config", &self.snapshot.config)?;
        st.end()
    }
}

/// The `/config_dump` response, streamed: a large configuration is serialized in chunks as
/// the client reads them, so a dump costs the proxy a few chunks of memory, not a copy of
/// everything it holds (which the allocator would then keep).
fn config_dump(px: &Shared) -> Response<Body> {
    let dump = ConfigDump {
        snapshot: px.snapshot.load_full(),
        ready: ready(px),
        certificate: certificate_info(px),
    };
    json_response(body::json_stream(dump))
}

async fn bind(ip: std::net::IpAddr, port: u16) -> Result<TcpListener, ProxyError> {
    let addr = SocketAddr::new(ip, port);
    strait_net::listen(addr).map_err(|source| ProxyError::Listen { addr, source })
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
            "/config_dump" => config_dump(&a),
            "/ready" if ready(&a) => body::text(StatusCode::OK, "LIVE\n"),
            "/ready" => body::text(StatusCode::SERVICE_UNAVAILABLE, "PRE_INITIALIZING\n"),
            "/stats/prometheus" => body::text(StatusCode::OK, a.metrics.render(&r)),
            "/debug/trace" => crate::explain::answer(&a, req.uri().query()),
            _ => body::text(
                StatusCode::NOT_FOUND,
                "admin: /config_dump /ready /stats/prometheus /debug/trace\n",
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
