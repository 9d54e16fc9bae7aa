//! `strait check gateways`: every network's east-west gateways, as the control planes see
//! them (`/debug/networkz`: address, resolution, health), whether a connection to each really
//! opens from every other network, and the Gateway servers its pods serve on that port (their
//! `/config_dump`). In a local run the connection is dialled from inside the other network;
//! against clusters, this machine is on none of their networks, so the answer is the probe of
//! the control plane that runs in the other network (every control plane connects to every
//! gateway address every few seconds, from its own pod).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Ctx, Problem, finish};
use crate::cli::CheckArgs;

/// How long a dial across networks may take before the gateway counts as unreachable.
const DIAL: Duration = Duration::from_secs(2);

/// One gateway address of a network.
#[derive(Debug, Clone, serde::Serialize)]
struct Gateway {
    network: String,
    cluster: String,
    address: String,
    port: u16,
    /// The control plane's view: healthy, unhealthy, unresolved, or no address.
    status: String,
    /// Per other network: whether a connection opened from there; `None` (null) when nothing
    /// can try from there (no control plane of this mesh runs in that network).
    reachable_from: BTreeMap<String, Option<bool>>,
    /// The Gateway resources served on this port by the gateway's pods, with the kind of
    /// listener (`tls`, `http`, `tcp`).
    servers: Vec<String>,
    ready: bool,
}

pub(super) fn run(ctx: &Ctx, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let (answers, silent) = ctx.control_planes("/debug/networkz");
    let mut problems: Vec<Problem> = silent
        .into_iter()
        .map(|cause| Problem {
            subject: "control plane".into(),
            service: String::new(),
            cause,
        })
        .collect();
    // Every control plane reports the networks of its mesh: merge their views.
    let mut networks: BTreeMap<String, BTreeMap<(String, String, u16), Value>> = BTreeMap::new();
    for (_, v) in &answers {
        for n in v["networks"].as_array().into_iter().flatten() {
            let id = n["network"].as_str().unwrap_or("").to_string();
            let gws = networks.entry(id).or_default();
            for g in n["gateways"].as_array().into_iter().flatten() {
                let key = (
                    g["cluster"].as_str().unwrap_or("").to_string(),
                    g["address"].as_str().unwrap_or("").to_string(),
                    g["port"]
                        .as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(0),
                );
                gws.entry(key).or_insert_with(|| g.clone());
            }
        }
    }
    let multi = networks.len() > 1;
    let mut gateways = Vec::new();
    for (network, gws) in &networks {
        if gws.is_empty() && multi {
            problems.push(Problem {
                subject: format!("network {network}"),
                service: String::new(),
                cause: "no east-west gateway: services in this network cannot be reached from the others".into(),
            });
        }
        for ((cluster, address, port), g) in gws {
            let gw = check_one(
                ctx, &answers, &networks, network, cluster, address, *port, g,
            );
            if !gw.ready {
                problems.push(Problem {
                    subject: format!("gateway {}:{} ({network})", gw.address, gw.port),
                    service: gw.servers.join(" "),
                    cause: why_not_ready(&gw),
                });
            }
            gateways.push(gw);
        }
    }
    let rows: Vec<Vec<String>> = gateways
        .iter()
        .map(|g| {
            let reach: Vec<String> = g
                .reachable_from
                .iter()
                .map(|(n, ok)| {
                    let seen = match ok {
                        Some(true) => "yes",
                        Some(false) => "NO",
                        None => "unknown",
                    };
                    format!("{n}:{seen}")
                })
                .collect();
            vec![
                g.network.clone(),
                g.cluster.clone(),
                format!("{}:{}", g.address, g.port),
                g.status.clone(),
                if reach.is_empty() {
                    "-".into()
                } else {
                    reach.join(",")
                },
                if g.servers.is_empty() {
                    "-".into()
                } else {
                    g.servers.join(" ")
                },
                if g.ready { "yes".into() } else { "NO".into() },
            ]
        })
        .collect();
    let table = crate::out::table(
        &[
            "NETWORK",
            "CLUSTER",
            "ADDRESS",
            "STATUS",
            "REACHABLE FROM",
            "SERVES",
            "READY",
        ],
        &rows,
    );
    finish(
        args.output,
        json!({ "gateways": gateways }),
        table,
        &problems,
    )
}

fn why_not_ready(g: &Gateway) -> String {
    if g.status != "healthy" {
        return format!("the control plane reports it {}", g.status);
    }
    let unreachable: Vec<&str> = g
        .reachable_from
        .iter()
        .filter(|(_, ok)| **ok == Some(false))
        .map(|(n, _)| n.as_str())
        .collect();
    if g.servers.is_empty() {
        // Nothing configures the port: that is why nothing answers there.
        let refused = if unreachable.is_empty() {
            String::new()
        } else {
            format!(
                ", so connections from network {} are refused",
                unreachable.join(", ")
            )
        };
        return format!(
            "its pods serve no Gateway on port {} (no AUTO_PASSTHROUGH Gateway selects this east-west gateway?){refused}",
            g.port
        );
    }
    format!(
        "no connection opens to it from network {} (a firewall, a NetworkPolicy, or a load balancer not reachable from there?)",
        unreachable.join(", ")
    )
}

#[allow(clippy::too_many_arguments)]
fn check_one(
    ctx: &Ctx,
    answers: &[(String, Value)],
    networks: &BTreeMap<String, BTreeMap<(String, String, u16), Value>>,
    network: &str,
    cluster: &str,
    address: &str,
    port: u16,
    g: &Value,
) -> Gateway {
    let status = g["status"].as_str().unwrap_or("unknown").to_string();
    let ip = address.parse::<IpAddr>().ok().or_else(|| {
        g["resolved"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find_map(|s| s.parse().ok())
    });
    let mut reachable_from = BTreeMap::new();
    for other in networks.keys().filter(|n| n.as_str() != network) {
        let ok = if ctx.mesh.is_local() {
            // Dial from inside the other network, as its sidecars would.
            let Some(from) = ctx.mesh.st.clusters.iter().find(|c| &c.network == other) else {
                continue;
            };
            let vantage = ctx.mesh.st.vantage_of_cluster(&from.name);
            Some(ip.is_some_and(|ip| {
                ctx.runtime
                    .block_on(vantage.connect(SocketAddr::new(ip, port), DIAL))
                    .is_ok()
            }))
        } else {
            // The probe of a control plane running in the other network, when one runs there.
            probed_from(ctx, answers, other, cluster, address, port)
        };
        reachable_from.insert(other.clone(), ok);
    }
    let servers = served(ctx, network, cluster, port);
    // Unknown reachability does not make a gateway unready: nothing has shown it refused.
    let ready = status == "healthy"
        && reachable_from.values().all(|ok| *ok != Some(false))
        && !servers.is_empty();
    Gateway {
        network: network.to_string(),
        cluster: cluster.to_string(),
        address: address.to_string(),
        port,
        status,
        reachable_from,
        servers,
        ready,
    }
}

/// Whether a control plane running in `network` reports the gateway `(cluster, address,
/// port)` healthy (its connections open); `None` when no control plane runs there.
fn probed_from(
    ctx: &Ctx,
    answers: &[(String, Value)],
    network: &str,
    cluster: &str,
    address: &str,
    port: u16,
) -> Option<bool> {
    let in_network = |c: &str| {
        ctx.mesh
            .st
            .clusters
            .iter()
            .any(|s| s.name == c && s.network == network)
    };
    let mut seen = None;
    for (_, v) in answers.iter().filter(|(c, _)| in_network(c)) {
        let g = v["networks"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|n| n["gateways"].as_array().into_iter().flatten())
            .find(|g| {
                g["cluster"] == cluster
                    && g["address"] == address
                    && g["port"].as_u64() == Some(u64::from(port))
            });
        // A control plane there that does not know the gateway did not reach it either.
        let healthy = g.is_some_and(|g| g["status"] == "healthy");
        seen = Some(seen.unwrap_or(false) || healthy);
    }
    seen
}

/// The Gateway resources the gateway pods of `cluster` in `network` serve on `port`.
fn served(ctx: &Ctx, network: &str, cluster: &str, port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for pod in ctx
        .mesh
        .st
        .pods
        .iter()
        .filter(|p| p.gateway && p.cluster == cluster && p.network == network)
    {
        let Ok(dump) = ctx.proxy_json(pod, "/config_dump") else {
            continue;
        };
        for l in dump["config"]["listeners"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|l| l["port"].as_u64() == Some(u64::from(port)))
        {
            let kind = l["kind"]
                .as_object()
                .and_then(|k| k.keys().next().cloned())
                .or_else(|| l["kind"].as_str().map(str::to_string))
                .unwrap_or_default();
            for gw in l["gateways"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let s = format!("{gw}({kind})");
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}
