//! `/api/trace`: an edge's `strait check trace`, the same code the command runs, for a GET of
//! the edge's service from its source workload. The page sends the edge's workload and
//! service host; the port, when not given, is the service's only port in the caller's own
//! proxy configuration (what `check lb` resolves a service name with).

use std::path::Path;

use serde_json::Value;

use super::query::EdgeQuery;
use crate::cmd::check::{Ctx, lb, sidecar_client, trace};

/// Why a trace could not be made.
#[derive(Debug)]
pub(super) enum TraceError {
    /// The query names something the running mesh lacks (no such workload, no sidecar, a
    /// service its proxy does not know, a service with several ports): the caller's to fix.
    Query(String),
    /// The mesh did not answer (stopped, a proxy down): worth retrying.
    Mesh(String),
}

/// Traces `q` in the mesh whose state directory is `dir`. Blocking: it asks the proxies
/// one after the other, as `check trace` does.
pub(super) fn edge(dir: &Path, q: &EdgeQuery) -> Result<Value, TraceError> {
    let mesh = |e: anyhow::Error| TraceError::Mesh(format!("{e:#}"));
    let ctx = Ctx::open_path(dir).map_err(mesh)?;
    let client = sidecar_client(&ctx, &q.from).map_err(|e| TraceError::Query(format!("{e:#}")))?;
    let dump = ctx
        .json(&client.vantage(), client.admin(), "/config_dump")
        .map_err(mesh)?;
    let wanted = match q.port {
        Some(p) => format!("{}:{p}", q.service),
        None => q.service.clone(),
    };
    let (key, port) = lb::service_port(&dump, &wanted, &client.namespace)
        .map_err(|e| TraceError::Query(format!("{e:#}")))?;
    let host = key.rsplit_once(':').map_or(key.as_str(), |(h, _)| h);
    let url = format!("http://{host}:{port}{}", q.path);
    let report = trace::report(
        &ctx,
        &trace::Request {
            from: &q.from,
            url: &url,
            method: "GET",
            headers: &[],
            send: false,
        },
    )
    .map_err(mesh)?;
    report.into_json().map_err(mesh)
}
