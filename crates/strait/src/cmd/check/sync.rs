//! `strait check sync`: whether every proxy holds a configuration that reaches across the
//! mesh's networks. From the control planes: proxies that are stale, rejected their last push
//! or are not connected (`/debug/syncz`), and networks without an east-west gateway or
//! clusters without a network (`/debug/networkz`). From each proxy's own configuration
//! (`/config_dump`): endpoints that are pods of another network, dialled directly, which no
//! packet can reach (split horizon should have put that network's gateway there).

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use serde_json::{Value, json};

use super::{Ctx, Problem, finish};
use crate::cli::CheckArgs;

pub(super) fn run(ctx: &Ctx, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    let mut proxies: BTreeMap<String, Value> = BTreeMap::new();
    let (syncz, silent) = ctx.control_planes("/debug/syncz");
    let (networkz, silent_n) = ctx.control_planes("/debug/networkz");
    for cause in silent.into_iter().chain(silent_n) {
        problems.push(problem("control plane", "", cause));
    }
    for (control_plane, v) in &syncz {
        for p in v["proxies"].as_array().into_iter().flatten() {
            let key = format!(
                "{}/{}/{}",
                p["cluster"].as_str().unwrap_or(""),
                p["namespace"].as_str().unwrap_or(""),
                p["pod"].as_str().unwrap_or("")
            );
            let mut p = p.clone();
            p["control_plane"] = json!(control_plane);
            proxies.insert(key, p);
        }
    }
    for p in proxies.values() {
        let state = p["state"].as_str().unwrap_or("");
        if state == "SYNCED" {
            continue;
        }
        let name = p["proxy"].as_str().unwrap_or("");
        let cause = match (state, p["nack"].as_str()) {
            ("NACKED", Some(why)) => {
                format!("rejected its configuration: {why}; it runs the previous one")
            }
            ("STALE", _) => format!(
                "holds version {} while version {} was sent: it has not acknowledged the latest push",
                p["acked_version"].as_str().unwrap_or("-"),
                p["sent_version"].as_str().unwrap_or("-")
            ),
            (other, _) => format!(
                "{} (no configuration acknowledged yet)",
                other.replace('_', " ")
            ),
        };
        problems.push(problem(name, "", cause));
    }
    for pod in ctx.mesh.st.pods.iter().filter(|p| p.sidecar || p.gateway) {
        if !proxies.contains_key(&pod.key()) {
            problems.push(problem(
                &format!("{}.{}", pod.name, pod.namespace),
                "",
                format!(
                    "not connected to its control plane (cluster {}): it holds no configuration or an old one",
                    pod.cluster
                ),
            ));
        }
    }
    // Networks, as the control planes see them.
    let mut networks: BTreeMap<String, (BTreeSet<String>, usize)> = BTreeMap::new();
    for (_, v) in &networkz {
        for n in v["networks"].as_array().into_iter().flatten() {
            let e = networks
                .entry(n["network"].as_str().unwrap_or("").to_string())
                .or_default();
            e.0.extend(
                n["clusters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            );
            e.1 = e.1.max(n["gateways"].as_array().map_or(0, Vec::len));
        }
    }
    if networks.len() > 1 {
        for (id, (clusters, gateways)) in &networks {
            let clusters: Vec<&str> = clusters.iter().map(String::as_str).collect();
            if id.is_empty() {
                problems.push(problem(
                    "clusters without a network",
                    "",
                    format!(
                        "cluster {} states no network (the topology.istio.io/network label on the Istio namespace), so its endpoints are taken to be reachable directly from every network",
                        clusters.join(", ")
                    ),
                ));
            } else if *gateways == 0 {
                problems.push(problem(
                    &format!("network {id}"),
                    "",
                    format!(
                        "no east-west gateway (clusters {}): other networks cannot reach its services",
                        clusters.join(", ")
                    ),
                ));
            }
        }
    }
    let mut checked = 0;
    for pod in ctx.mesh.st.pods.iter().filter(|p| p.sidecar || p.gateway) {
        let name = format!("{}.{}", pod.name, pod.namespace);
        let dump = match ctx.proxy_json(pod, "/config_dump") {
            Ok(d) => d,
            Err(e) => {
                problems.push(problem(
                    &name,
                    "",
                    format!("its configuration could not be read: {e:#}"),
                ));
                continue;
            }
        };
        checked += 1;
        problems.extend(raw_pod_addresses(ctx, &name, &pod.network, &dump));
    }
    let rows: Vec<Vec<String>> = proxies
        .values()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("-").to_string();
            vec![
                s("proxy"),
                s("cluster"),
                s("state"),
                s("acked_version"),
                s("control_plane"),
            ]
        })
        .collect();
    let mut table = crate::out::table(
        &["PROXY", "CLUSTER", "STATUS", "VERSION", "CONTROL PLANE"],
        &rows,
    );
    table.push_str(&format!(
        "\n{} proxies connected, {checked} configurations read, {} networks.\n",
        proxies.len(),
        networks.len()
    ));
    let data = json!({
        "proxies": proxies.values().collect::<Vec<_>>(),
        "networks": networks.iter().map(|(id, (c, g))| json!({"network": id, "clusters": c, "gateways": g})).collect::<Vec<_>>(),
    });
    finish(args.output, data, table, &problems)
}

/// The endpoints in `dump` that are pods of a network other than `network`, addressed
/// directly rather than through their network's gateway.
fn raw_pod_addresses(ctx: &Ctx, proxy: &str, network: &str, dump: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    for c in dump["config"]["clusters"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        let host = c["host"].as_str().unwrap_or("");
        for e in c["endpoints"].as_array().into_iter().flatten() {
            if e["via_gateway"].as_bool() == Some(true) {
                continue;
            }
            let address = e["address"].as_str().unwrap_or("");
            let declared = e["workload"]["network"].as_str().filter(|n| !n.is_empty());
            let pod = ctx
                .mesh
                .st
                .pods
                .iter()
                .find(|p| p.ip.to_string() == address);
            let theirs = declared.or(pod.map(|p| p.network.as_str()));
            if let Some(theirs) = theirs.filter(|n| *n != network && !network.is_empty()) {
                out.push(problem(
                    proxy,
                    host,
                    format!(
                        "endpoint {address}:{} is a pod of network {theirs}, dialled directly from network {network}, where it cannot be reached; it should be network {theirs}'s east-west gateway (is that network's gateway missing, or its network unknown to the control plane?)",
                        e["port"].as_u64().unwrap_or(0)
                    ),
                ));
            }
        }
    }
    out
}

fn problem(subject: &str, service: &str, cause: String) -> Problem {
    Problem {
        subject: subject.to_string(),
        service: service.to_string(),
        cause,
    }
}
