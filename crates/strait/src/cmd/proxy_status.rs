//! `strait proxy-status`: each proxy's sync state, from the control planes' `/debug/syncz`,
//! of a local run or (`--kubeconfig`, `--context`) of clusters, read through their API
//! servers. Only the reading differs ([`Running`]); the rows and the table are one code.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use super::running::Running;
use super::target::find_proxy;
use crate::cli::{ProxyStatusArgs, TableFormat};

pub fn run(args: &ProxyStatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mesh = Running::open(&args.state, &args.clusters, &runtime)?;
    let (text, unreachable) =
        runtime.block_on(report(&mesh, args.target.as_deref(), args.output))?;
    crate::out::print(&text)?;
    Ok(if unreachable {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The table (or JSON) of `mesh`'s proxies, `target`'s only when given, and whether a control
/// plane did not answer (said on stderr).
pub(crate) async fn report(
    mesh: &Running,
    target: Option<&str>,
    output: TableFormat,
) -> anyhow::Result<(String, bool)> {
    let st = &mesh.st;
    let only = target
        .map(|t| find_proxy(st, t))
        .transpose()?
        .map(|p| p.key());
    let mut rows: Vec<Value> = Vec::new();
    let mut unreachable = false;
    for cp in mesh.control_plane_replicas() {
        match mesh.replica_get(&cp, "/debug/syncz").await {
            Ok((status, body)) if status.is_success() => {
                let v: Value = serde_json::from_slice(&body)
                    .with_context(|| format!("{}/debug/syncz: not JSON", cp.at))?;
                for p in v
                    .get("proxies")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let mut p = p.clone();
                    p["control_plane"] = json!(cp.cluster);
                    rows.push(p);
                }
            }
            Ok((status, _)) => {
                say(&format!(
                    "{} control plane ({}): /debug/syncz answered {status}",
                    cp.cluster, cp.at
                ));
                unreachable = true;
            }
            Err(e) => {
                say(&format!("{} control plane: {e:#}", cp.cluster));
                unreachable = true;
            }
        }
    }
    // Sidecars that should be connected but are not (restarting, or their control plane is down).
    let key = |v: &Value| {
        format!(
            "{}/{}/{}",
            v["cluster"].as_str().unwrap_or(""),
            v["namespace"].as_str().unwrap_or(""),
            v["pod"].as_str().unwrap_or("")
        )
    };
    let connected: Vec<String> = rows.iter().map(key).collect();
    for p in st
        .pods
        .iter()
        .filter(|p| p.sidecar && !connected.contains(&p.key()))
    {
        rows.push(json!({
            "proxy": format!("{}.{}", p.name, p.namespace),
            "cluster": p.cluster, "namespace": p.namespace, "pod": p.name,
            "state": "NOT_CONNECTED", "sent_version": "", "acked_version": "", "build": "",
            "control_plane": st.clusters.iter().find(|c| c.name == p.cluster).map(|c| c.control_plane_of.clone()),
        }));
    }
    rows.retain(|r| only.as_ref().is_none_or(|k| *k == key(r)));
    rows.sort_by_key(key);
    let text = match output {
        TableFormat::Json => serde_json::to_string_pretty(&rows)? + "\n",
        TableFormat::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let s = |k: &str| {
                        r[k].as_str()
                            .filter(|v| !v.is_empty())
                            .unwrap_or("-")
                            .to_string()
                    };
                    let mut state = s("state").replace('_', " ");
                    if let Some(n) = r["nack"].as_str() {
                        state = format!("{state} ({n})");
                    }
                    vec![
                        s("proxy"),
                        s("cluster"),
                        state,
                        s("sent_version"),
                        s("acked_version"),
                        s("control_plane"),
                        s("build"),
                    ]
                })
                .collect();
            crate::out::table(
                &[
                    "NAME",
                    "CLUSTER",
                    "STATUS",
                    "SENT",
                    "ACKED",
                    "CONTROL PLANE",
                    "VERSION",
                ],
                &cells,
            )
        }
    };
    Ok((text, unreachable))
}

/// A line for people on stderr; a closed stderr is not an error.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
