//! The third act of `strait demo`: one cluster brought up on this machine with `strait up`,
//! real traffic through the sidecars, a live VirtualService edit, and a clean stop.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use strait_local::stop::stop_pair;
use strait_local::up::state::State;
use strait_local::up::{self, UpOptions};

const MESH: &str = include_str!("../../../../examples/single-cluster/mesh.yaml");
const ISTIO: &str = include_str!("../../../../examples/single-cluster/cluster1/istio-system.yaml");
const SAMPLE: &str = include_str!("../../../../examples/single-cluster/cluster1/sample.yaml");

const SPLIT: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld, namespace: sample}
spec:
  host: helloworld
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld, namespace: sample}
spec:
  hosts: [helloworld]
  http:
  - route:
    - {destination: {host: helloworld, subset: v1}, weight: 80}
    - {destination: {host: helloworld, subset: v2}, weight: 20}
";

const HELLO: &str = "http://helloworld.sample:5000/hello";

async fn get(via: SocketAddr, url: &str) -> anyhow::Result<(u16, String)> {
    let (status, body) = strait_local::fetch::get(via, url, Duration::from_secs(10)).await?;
    Ok((status.as_u16(), String::from_utf8_lossy(&body).into_owned()))
}

/// Requests from sleep; counts answers by helloworld version.
async fn versions(via: SocketAddr, n: usize) -> anyhow::Result<(usize, usize)> {
    let (mut v1, mut v2) = (0, 0);
    for _ in 0..n {
        let (status, body) = get(via, HELLO).await?;
        if status != 200 {
            bail!("request failed: {status} {body}");
        }
        if body.contains("version: v1") {
            v1 += 1;
        } else if body.contains("version: v2") {
            v2 += 1;
        }
    }
    Ok((v1, v2))
}

/// Brings the mesh in `dir` up on the first free loopback range from 127.250, drives traffic,
/// edits it live, stops it; returns the narration.
pub fn run(dir: &Path) -> anyhow::Result<String> {
    for (rel, text) in [
        ("mesh.yaml", MESH),
        ("cluster1/istio-system.yaml", ISTIO),
        ("cluster1/sample.yaml", SAMPLE),
        ("cluster1/routing.yaml", SPLIT),
    ] {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(act(dir))
}

async fn act(dir: &Path) -> anyhow::Result<String> {
    let state_dir = dir.join(".state");
    let mut last_err = None;
    for net in 250..=254u8 {
        let opts = UpOptions {
            mesh: dir.to_path_buf(),
            state_dir: state_dir.clone(),
            net,
            mode: up::plan::Mode::Loopback,
            cert_ttl: Duration::ZERO,
            restart_delay: Duration::from_secs(1),
            program: std::env::current_exe().context("locating the strait executable")?,
            log: "error".into(),
        };
        let (trigger, stop) = stop_pair();
        let say: up::Say = Arc::new(|_line: String| {});
        let mesh = tokio::spawn(up::run(opts, stop, say));
        let started = Instant::now();
        while !state_dir.join("up.json").exists() && !mesh.is_finished() {
            if started.elapsed() > Duration::from_secs(90) {
                trigger.stop();
                bail!("the local mesh did not start within 90 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if mesh.is_finished() {
            last_err = Some(match mesh.await {
                Ok(Err(e)) => anyhow::Error::from(e),
                Ok(Ok(())) => anyhow::anyhow!("the local mesh stopped at once"),
                Err(e) => anyhow::Error::from(e),
            });
            continue;
        }
        let narration = traffic(dir, &state_dir, started).await;
        trigger.stop();
        mesh.await??;
        return narration;
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no free loopback range")))
}

async fn traffic(dir: &Path, state_dir: &Path, started: Instant) -> anyhow::Result<String> {
    let st = State::load(state_dir)?;
    let sleep = st.find_pod("cluster1/sample/sleep")?.clone();
    let cp = st.clusters[0]
        .control_plane
        .clone()
        .context("no control plane")?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "3. One cluster running on this machine (strait up): a control plane, {} sidecars and the apps,\n   each its own process on loopback, up in {:.1} s.",
        st.pods.iter().filter(|p| p.sidecar).count(),
        started.elapsed().as_secs_f64()
    );
    let (v1, v2) = versions(sleep.outbound(), 100).await?;
    let _ = writeln!(
        s,
        "   100 requests from sleep to helloworld, VirtualService 80/20:   v1 {v1}, v2 {v2}   (mTLS between sidecars)"
    );

    let generation = syncz(cp.debug).await?["generation"].as_u64().unwrap_or(0);
    let edited = Instant::now();
    std::fs::write(
        dir.join("cluster1/routing.yaml"),
        SPLIT
            .replace("weight: 80", "weight: 0")
            .replace("weight: 20", "weight: 100"),
    )?;
    loop {
        let v = syncz(cp.debug).await?;
        let all_acked = v["proxies"].as_array().is_some_and(|ps| {
            !ps.is_empty()
                && ps.iter().all(|p| {
                    p["state"] == "SYNCED"
                        && p["acked_version"]
                            .as_str()
                            .and_then(|x| x.parse::<u64>().ok())
                            .unwrap_or(0)
                            > generation
                })
        });
        if all_acked {
            break;
        }
        if edited.elapsed() > Duration::from_secs(30) {
            bail!("the edit did not reach the sidecars");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let applied = edited.elapsed();
    let (v1, v2) = versions(sleep.outbound(), 20).await?;
    let _ = writeln!(
        s,
        "   edit the VirtualService to send everything to v2: every sidecar had it {} ms later; 20 requests: v1 {v1}, v2 {v2}",
        applied.as_millis()
    );
    let (_, stats) = get(SocketAddr::new(sleep.ip, 15090), "/stats/prometheus").await?;
    if let Some(line) = stats.lines().find(|l| {
        l.starts_with("istio_requests_total{reporter=\"source\"")
            && l.contains("destination_version=\"v2\"")
    }) {
        let count = line.rsplit(' ').next().unwrap_or("?");
        let _ = writeln!(
            s,
            "   sleep's sidecar on :15090: istio_requests_total{{source_cluster=\"cluster1\", destination_version=\"v2\", ...}} {count}"
        );
    }
    let _ = writeln!(
        s,
        "   try it yourself: strait up {}   then   strait exec cluster1/sample/sleep -- curl -sS helloworld.sample:5000/hello",
        dir.display()
    );
    Ok(s)
}

async fn syncz(debug: SocketAddr) -> anyhow::Result<serde_json::Value> {
    let (_, body) = get(debug, "/debug/syncz").await?;
    Ok(serde_json::from_str(&body)?)
}
