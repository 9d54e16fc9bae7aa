//! `strait proxy-status`: each sidecar's sync state, from the control planes' `/debug/syncz`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use strait_local::up::state::{self, State};

use super::target::find_proxy;
use crate::cli::{ProxyStatusArgs, TableFormat};

pub fn run(args: &ProxyStatusArgs) -> anyhow::Result<ExitCode> {
    let dir = args.state.state.clone().unwrap_or_else(state::default_dir);
    let st = State::load(&dir)?;
    let only = args
        .target
        .as_deref()
        .map(|t| find_proxy(&st, t))
        .transpose()?
        .map(|p| p.key());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rows: Vec<Value> = Vec::new();
    let mut unreachable = false;
    for c in &st.clusters {
        let Some(cp) = &c.control_plane else { continue };
        match runtime.block_on(strait_local::fetch::get_from(
            &st.vantage_of_cluster(&c.name),
            cp.debug,
            "/debug/syncz",
            Duration::from_secs(5),
        )) {
            Ok((status, body)) if status.is_success() => {
                let v: Value = serde_json::from_slice(&body)
                    .with_context(|| format!("{}/debug/syncz: not JSON", cp.debug))?;
                for p in v
                    .get("proxies")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let mut p = p.clone();
                    p["control_plane"] = json!(c.name);
                    rows.push(p);
                }
            }
            Ok((status, _)) => {
                eprintln!(
                    "{} control plane ({}): /debug/syncz answered {status}",
                    c.name, cp.debug
                );
                unreachable = true;
            }
            Err(e) => {
                eprintln!("{} control plane: {e}", c.name);
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
    let text = match args.output {
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
    crate::out::print(&text)?;
    Ok(if unreachable {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
