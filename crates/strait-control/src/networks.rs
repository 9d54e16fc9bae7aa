//! What the control plane learns about network gateways while it runs:
//!
//! - **Hostnames.** Cloud load balancers (AWS's in particular) give a gateway Service a
//!   hostname, not an address. Proxies need addresses, so the control plane resolves them,
//!   keeps the last good answer when a lookup fails, and looks again every 30 seconds (istiod
//!   clamps DNS TTLs to at least that); a changed answer is pushed like an edit.
//! - **Liveness.** A gateway that stops answering is not silently kept: every few seconds each
//!   gateway address gets a TCP connect, and one that fails twice running is marked unhealthy.
//!   Proxies then avoid it while another endpoint is left, and `/debug/networkz` says so.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use strait_model::Mesh;
use strait_net::Reach;

use crate::hub::{Current, Hub};

/// How often hostnames are resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(30);
/// How often gateways are probed, and how long a probe may take.
const PROBE_EVERY: Duration = Duration::from_secs(3);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Failed probes in a row before a gateway is marked unhealthy.
const FAILURES_TO_MARK: u32 = 2;

/// Gateway addresses of the mesh: `(address or hostname, port)`.
fn gateway_addresses(mesh: &Mesh) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = mesh
        .networks
        .values()
        .flat_map(|n| n.gateways.iter())
        .flat_map(|g| g.addresses.iter().map(move |a| (a.clone(), g.port)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Keeps the hub's [`Runtime`] current until the task is dropped.
pub async fn maintain(hub: Arc<Hub>, reach: Reach) {
    let mut resolved: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failures: BTreeMap<(String, u32), u32> = BTreeMap::new();
    let mut last_resolve: Option<tokio::time::Instant> = None;
    loop {
        let mesh = hub.mesh();
        let addrs = gateway_addresses(&mesh);
        let hostnames: BTreeSet<&String> = addrs
            .iter()
            .map(|(a, _)| a)
            .filter(|a| a.parse::<IpAddr>().is_err())
            .collect();
        let due = last_resolve.is_none_or(|t| t.elapsed() >= RESOLVE_EVERY)
            || hostnames.iter().any(|h| !resolved.contains_key(*h));
        if due {
            last_resolve = Some(tokio::time::Instant::now());
            resolved.retain(|h, _| hostnames.contains(h));
            for h in hostnames {
                match tokio::net::lookup_host((h.as_str(), 0)).await {
                    Ok(it) => {
                        let mut ips: Vec<String> = it.map(|a| a.ip().to_string()).collect();
                        ips.sort();
                        ips.dedup();
                        if resolved.get(h) != Some(&ips) {
                            tracing::info!(hostname = %h, addresses = %ips.join(","), "gateway hostname resolved");
                        }
                        resolved.insert(h.clone(), ips);
                    }
                    Err(e) => {
                        // The last good answer stays: a DNS hiccup must not drop a network.
                        tracing::warn!(hostname = %h, error = %e, "cannot resolve gateway hostname; keeping the last answer");
                    }
                }
            }
        }
        let targets: Vec<(String, u32)> = addrs
            .iter()
            .flat_map(|(a, port)| match a.parse::<IpAddr>() {
                Ok(_) => vec![(a.clone(), *port)],
                Err(_) => resolved
                    .get(a)
                    .into_iter()
                    .flatten()
                    .map(|ip| (ip.clone(), *port))
                    .collect(),
            })
            .collect();
        failures.retain(|k, _| targets.contains(k));
        let probes = targets.iter().cloned().map(|(ip, port)| {
            let reach = reach.clone();
            let target = (ip.clone(), port);
            async move {
                let ok = match (ip.parse::<IpAddr>(), u16::try_from(port)) {
                    (Ok(ip), Ok(port)) => {
                        let addr = SocketAddr::new(ip, port);
                        matches!(
                            tokio::time::timeout(PROBE_TIMEOUT, reach.connect(addr)).await,
                            Ok(Ok(_))
                        )
                    }
                    _ => false,
                };
                (target, ok)
            }
        });
        let results = futures_join(probes).await;
        let mut unhealthy = BTreeSet::new();
        for (target, ok) in results {
            let n = failures.entry(target.clone()).or_insert(0);
            let was = *n >= FAILURES_TO_MARK;
            *n = if ok { 0 } else { n.saturating_add(1) };
            let is = *n >= FAILURES_TO_MARK;
            if is != was {
                if is {
                    tracing::warn!(gateway = %format!("{}:{}", target.0, target.1), "network gateway is not answering; marked unhealthy");
                } else {
                    tracing::info!(gateway = %format!("{}:{}", target.0, target.1), "network gateway answers again");
                }
            }
            if is {
                unhealthy.insert(target);
            }
        }
        hub.update_runtime(|rt| {
            rt.resolved.clone_from(&resolved);
            rt.unhealthy = unhealthy;
        });
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Runs the futures concurrently and collects their outputs in order.
async fn futures_join<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// `/debug/networkz`: each network with its clusters and gateways, as the control plane sees
/// them now.
pub fn networkz(current: &Current) -> serde_json::Value {
    let mesh = &current.mesh;
    let rt = &current.runtime;
    let networks: Vec<serde_json::Value> = mesh
        .networks
        .values()
        .map(|n| {
            let gateways: Vec<serde_json::Value> = n
                .gateways
                .iter()
                .flat_map(|g| {
                    let cluster = mesh.cluster(g.cluster).name.clone();
                    let none = (g.addresses.is_empty()).then(|| {
                        json!({"cluster": cluster, "address": null, "port": g.port,
                               "status": "no address (a load balancer not provisioned yet?)"})
                    });
                    g.addresses
                        .iter()
                        .map(move |a| {
                            let ips: Vec<String> = if a.parse::<IpAddr>().is_ok() {
                                vec![a.clone()]
                            } else {
                                rt.resolved.get(a).cloned().unwrap_or_default()
                            };
                            let status = if ips.is_empty() {
                                "unresolved".to_string()
                            } else if ips
                                .iter()
                                .all(|ip| rt.unhealthy.contains(&(ip.clone(), g.port)))
                            {
                                "unhealthy".to_string()
                            } else {
                                "healthy".to_string()
                            };
                            json!({"cluster": cluster, "address": a, "resolved": ips,
                                   "port": g.port, "status": status})
                        })
                        .chain(none)
                        .collect::<Vec<_>>()
                })
                .collect();
            let clusters: Vec<&str> = n
                .clusters
                .iter()
                .map(|c| mesh.cluster(*c).name.as_str())
                .collect();
            json!({"network": n.id, "clusters": clusters, "gateways": gateways})
        })
        .collect();
    json!({"generation": current.generation, "networks": networks})
}
