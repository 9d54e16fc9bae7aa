//! The demo's failover scene: cluster1 sits in us-west-2 and cluster2 in eastus. With a
//! DestinationRule that sets outlier detection (which Istio's locality failover needs),
//! cluster1's sleep keeps helloworld traffic in its own region; when the local helloworld is
//! killed, its first failure ejects it and traffic crosses to eastus through cluster2's
//! east-west gateway; when it is restarted, traffic comes back.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use strait_local::up::state::{PodState, State};

use super::live::{HELLO, config_of, get, wait_for};
use crate::out;

const CLUSTER: &str = "outbound|5000||helloworld.sample.svc.cluster.local";

/// Istio's locality failover task, as users write it (the end-to-end test applies it too).
const RULE: &str = include_str!("helloworld-failover.yaml");

/// How long the demo lets a killed app stay down before its supervisor restarts it.
pub(super) const RESTART_DELAY: Duration = Duration::from_secs(6);

pub(super) async fn scene(dir: &Path, sleep: &PodState) -> anyhow::Result<()> {
    let file = dir.join("cluster1/helloworld-failover.yaml");
    std::fs::write(&file, RULE)?;
    let shown = act(dir, sleep).await;
    // The mesh is left as it was written, whatever happened.
    let removed = std::fs::remove_file(&file);
    shown?;
    removed.with_context(|| format!("removing {}", file.display()))
}

async fn act(dir: &Path, sleep: &PodState) -> anyhow::Result<()> {
    let mut s = String::from(
        "4. Locality failover across networks: cluster1 runs in us-west-2, cluster2 in eastus\n   cluster1/helloworld-failover.yaml: localityLbSetting failover us-west-2 -> eastus, outlierDetection consecutive5xxErrors 1, baseEjectionTime 3s\n",
    );
    wait_for(
        Duration::from_secs(20),
        "the failover rule to arrive",
        || async {
            config_of(sleep).await.is_ok_and(|c| {
                c.clusters
                    .get(CLUSTER)
                    .is_some_and(|cl| cl.outlier.is_some())
            })
        },
    )
    .await?;
    let config = config_of(sleep).await?;
    for e in config
        .clusters
        .get(CLUSTER)
        .map(|c| c.endpoints.as_slice())
        .unwrap_or_default()
    {
        let who = if e.via_gateway {
            format!("east-west gateway of {}", e.workload.network)
        } else {
            format!("{} ({})", e.workload.pod, e.workload.cluster)
        };
        s.push_str(&format!(
            "     {:<22} priority {}  {:<22} {who}\n",
            format!("{}:{}", e.address, e.port),
            e.priority,
            e.locality
        ));
    }
    let kept = count(sleep, 20, Duration::ZERO).await?;
    s.push_str(&format!(
        "     20 requests from cluster1's sleep: {}   (kept in us-west-2)\n",
        summary(&kept)
    ));
    out::print(&s)?;

    let st = State::load(&dir.join("../state"))?;
    let v1 = st.find_pod("cluster1/sample/helloworld-v1")?.clone();
    if v1.app_pids.is_empty() {
        bail!("helloworld-v1 runs no app to kill");
    }
    for pid in &v1.app_pids {
        strait_local::process::crash(*pid)
            .with_context(|| format!("killing helloworld-v1's app (pid {pid})"))?;
    }
    let window = RESTART_DELAY - Duration::from_secs(2);
    let crossed = count(sleep, 1, window).await?;
    let total: usize = crossed.values().sum();
    let ejected = config_of_ejected(sleep).await;
    out::print(&format!(
        "   helloworld-v1's app killed (kill -9 {}); it is restarted after {} s\n     {total} requests over {} s: {}   (its first failure ejected it; that request's retry and all after crossed to eastus through cluster2's gateway)\n     outlier check of helloworld-v1 in cluster1's sleep: {ejected}\n",
        v1.app_pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        RESTART_DELAY.as_secs(),
        window.as_secs(),
        summary(&crossed)
    ))?;
    if crossed.contains_key("v1") || !crossed.contains_key("v2") {
        bail!("traffic did not fail over to cluster2: {crossed:?}");
    }

    let started = Instant::now();
    wait_for(
        Duration::from_secs(40),
        "helloworld-v1 back in us-west-2",
        || async {
            count(sleep, 5, Duration::ZERO)
                .await
                .is_ok_and(|c| c.get("v1") == Some(&5))
        },
    )
    .await?;
    let back = count(sleep, 20, Duration::ZERO).await?;
    out::print(&format!(
        "   helloworld-v1 restarted; traffic back in us-west-2 {:.1} s later: {}\n   (cluster1/helloworld-failover.yaml removed again)\n\n",
        started.elapsed().as_secs_f64(),
        summary(&back)
    ))?;
    Ok(())
}

/// What cluster1's sleep's outlier detection says of helloworld-v1 now.
async fn config_of_ejected(sleep: &PodState) -> String {
    let dump = get(&sleep.vantage(), sleep.admin(), "/config_dump").await;
    let Ok((_, body)) = dump else {
        return "unknown (config dump unavailable)".into();
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    match v["ejected"][CLUSTER].as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(ep, ms)| {
                format!(
                    "{ep} FAILED (ejected, {:.1} s left)",
                    ms.as_f64().unwrap_or(0.0) / 1000.0
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => "OK (between ejections)".into(),
    }
}

/// Requests from `sleep` to helloworld, at least `n` and for at least `min`: answers counted
/// by version (`errors` for anything but a 200).
async fn count(
    sleep: &PodState,
    n: usize,
    min: Duration,
) -> anyhow::Result<BTreeMap<String, usize>> {
    let started = Instant::now();
    let mut seen = BTreeMap::new();
    let mut sent = 0;
    while sent < n || started.elapsed() < min {
        sent += 1;
        let key = match get(&sleep.vantage(), sleep.outbound(), HELLO).await {
            Ok((200, body)) => body
                .split("version: ")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .unwrap_or("?")
                .to_string(),
            _ => "errors".to_string(),
        };
        *seen.entry(key).or_insert(0) += 1;
    }
    Ok(seen)
}

fn summary(seen: &BTreeMap<String, usize>) -> String {
    let mut parts: Vec<String> = ["v1", "v2"]
        .iter()
        .map(|v| format!("{v} {}", seen.get(*v).copied().unwrap_or(0)))
        .collect();
    parts.push(format!(
        "errors {}",
        seen.get("errors").copied().unwrap_or(0)
    ));
    parts.join(", ")
}
