//! The running part of `strait demo`: the mesh brought up with `strait up` in this process,
//! then shown the way the seed's own scripts show a real one: each east-west gateway ready at
//! its public address, the sleep proxy's endpoints for the service (its own pods and the other
//! network's gateway on 15443), and requests answered from both clusters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use strait_local::stop::stop_pair;
use strait_local::up::plan::Mode;
use strait_local::up::state::{PodState, State};
use strait_local::up::{self, UpOptions};
use strait_model::compile::{ListenerKind, ProxyConfig, TlsAction};
use strait_net::netns::Vantage;

use crate::cli::DemoTopology;
use crate::out;

/// What to show.
#[derive(Debug)]
pub struct Show {
    pub dir: PathBuf,
    pub topology: DemoTopology,
    pub once: bool,
    pub netns: bool,
    pub color: bool,
}

pub(super) const HELLO: &str = "http://helloworld.sample:5000/hello";

/// GET `url` from `vantage` at `addr` (a proxy's outbound port takes absolute URLs).
pub(super) async fn get(
    vantage: &Vantage,
    addr: SocketAddr,
    url: &str,
) -> anyhow::Result<(u16, String)> {
    let (status, body) =
        strait_local::fetch::get_from(vantage, addr, url, Duration::from_secs(10)).await?;
    Ok((status.as_u16(), String::from_utf8_lossy(&body).into_owned()))
}

/// The configuration a proxy holds, from its admin port.
pub(super) async fn config_of(pod: &PodState) -> anyhow::Result<ProxyConfig> {
    let (_, body) = get(&pod.vantage(), pod.admin(), "/config_dump").await?;
    let dump: serde_json::Value = serde_json::from_str(&body)?;
    Ok(serde_json::from_value(
        dump.get("config").cloned().unwrap_or_default(),
    )?)
}

pub fn run(show: &Show) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(act(show))
}

async fn act(show: &Show) -> anyhow::Result<ExitCode> {
    let state_dir = show.dir.join("../state");
    let mut last_err = None;
    // A free range: another demo or mesh may hold one.
    for net in 250..=254u8 {
        let opts = UpOptions {
            mesh: show.dir.clone(),
            state_dir: state_dir.clone(),
            net,
            mode: if show.netns {
                Mode::Netns
            } else {
                Mode::Loopback
            },
            cert_ttl: Duration::ZERO,
            restart_delay: super::failover::RESTART_DELAY,
            program: std::env::current_exe().context("locating the strait executable")?,
            log: "error".into(),
            access_logs: false,
        };
        let (trigger, stop) = stop_pair();
        let notes: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let kept = notes.clone();
        let say: up::Say = Arc::new(move |line: String| {
            if let Ok(mut n) = kept.lock() {
                n.push(line);
            }
        });
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
        let shown = scenes(show, &state_dir, started).await;
        if let Err(e) = shown {
            trigger.stop();
            let _ = mesh.await;
            return Err(e);
        }
        if show.once {
            trigger.stop();
            mesh.await??;
            out::print("The mesh is stopped (--once).\n")?;
        } else {
            out::print(&format!(
                "The mesh keeps running until Ctrl-C. In another terminal:\n  strait exec --state {st} cluster1/{ns}/sleep -- curl -sS {url}\n  strait proxy-config endpoints --state {st} cluster1/{ns}/sleep\n  strait proxy-status --state {st}\n",
                st = state_dir.display(),
                ns = sample_ns(show.topology),
                url = match show.topology {
                    DemoTopology::MultiPrimary => HELLO,
                    DemoTopology::PrimaryRemote => "http://dashboard.multicluster/",
                },
            ))?;
            strait_local::process::shutdown_signal().await;
            trigger.stop();
            mesh.await??;
        }
        return Ok(ExitCode::SUCCESS);
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no free loopback range (127.250-254)")))
}

fn sample_ns(t: DemoTopology) -> &'static str {
    match t {
        DemoTopology::MultiPrimary => "sample",
        DemoTopology::PrimaryRemote => "multicluster",
    }
}

async fn scenes(show: &Show, state_dir: &Path, started: Instant) -> anyhow::Result<()> {
    let st = State::load(state_dir)?;
    let mut s = String::new();
    s.push_str(&format!(
        "2. strait up {}: up in {:.1} s, every part its own process, {}\n",
        show.dir.display(),
        started.elapsed().as_secs_f64(),
        if show.netns {
            "each network in its own network namespace"
        } else {
            "each network on addresses of its own, which the others' pods cannot reach"
        }
    ));
    for c in &st.clusters {
        match &c.control_plane {
            Some(cp) => s.push_str(&format!(
                "   {}  {}  control plane {}\n",
                c.name, c.network, cp.grpc
            )),
            None => s.push_str(&format!(
                "   {}  {}  remote: its proxies are configured by {}'s control plane\n",
                c.name, c.network, c.control_plane_of
            )),
        }
    }
    s.push('\n');
    s.push_str(&gateways(&st).await?);
    out::print(&s)?;
    match show.topology {
        DemoTopology::MultiPrimary => multi_primary(show, &st).await,
        DemoTopology::PrimaryRemote => primary_remote(&st).await,
    }
}

/// Readiness of each east-west gateway at its public address, and what it serves.
async fn gateways(st: &State) -> anyhow::Result<String> {
    let mut s =
        String::from("   Readiness of the east-west gateways (their load balancers' addresses)\n");
    let outside = st.outside();
    for lb in st
        .load_balancers
        .iter()
        .filter(|l| l.ports.contains(&15443))
    {
        let health = SocketAddr::new(lb.address, 15021);
        let ready = match get(&outside, health, "/healthz/ready").await {
            Ok((200, _)) => "ready".to_string(),
            Ok((code, _)) => format!("not ready ({code})"),
            Err(e) => format!("not answering ({e})"),
        };
        let serves = match st
            .pods
            .iter()
            .find(|p| p.gateway && p.cluster == lb.cluster && p.namespace == lb.namespace)
        {
            Some(pod) => served(&config_of(pod).await?),
            None => "no gateway pod".into(),
        };
        s.push_str(&format!(
            "     {:<9} {}/{:<24} {:<15} {ready:<6} {serves}\n",
            lb.cluster,
            lb.namespace,
            lb.name,
            lb.address.to_string()
        ));
    }
    s.push('\n');
    Ok(s)
}

/// What a gateway's listeners serve, in one line.
fn served(c: &ProxyConfig) -> String {
    let mut parts = Vec::new();
    for l in c.listeners.values() {
        if let ListenerKind::Tls { chains } = &l.kind {
            for ch in chains {
                match &ch.action {
                    TlsAction::AutoPassthrough => {
                        parts.push(format!("{} AUTO_PASSTHROUGH", l.port));
                    }
                    TlsAction::Passthrough { route } => parts.push(format!(
                        "{} PASSTHROUGH to {}",
                        l.port,
                        route
                            .first()
                            .map(|w| w.cluster.rsplit('|').next().unwrap_or(""))
                            .unwrap_or("?")
                    )),
                    _ => parts.push(format!("{} TLS", l.port)),
                }
            }
        }
    }
    if parts.is_empty() {
        "serves no Gateway".into()
    } else {
        parts.join(", ")
    }
}

/// A proxy's endpoints for one cluster name, as `proxy-config endpoints` shows them.
fn endpoint_rows(c: &ProxyConfig, cluster: &str) -> String {
    let Some(cl) = c.clusters.get(cluster) else {
        return format!("       (no cluster {cluster})\n");
    };
    cl.endpoints
        .iter()
        .map(|e| {
            let via = if e.via_gateway {
                format!(
                    "east-west gateway of {} ({})",
                    e.workload.network, e.workload.cluster
                )
            } else {
                format!(
                    "{} ({}, {})",
                    e.workload.pod, e.workload.cluster, e.workload.network
                )
            };
            format!(
                "       {:<22} {:<9} {cluster}  {via}\n",
                format!("{}:{}", e.address, e.port),
                if e.unhealthy { "UNHEALTHY" } else { "HEALTHY" },
            )
        })
        .collect()
}

/// Requests from a sleep pod until `n` are made and both `want` answers were seen (at most
/// 4n): what each answered, one line each.
async fn requests(
    sleep: &PodState,
    url: &str,
    n: usize,
    label: impl Fn(&str) -> String,
    want: &[&str],
) -> anyhow::Result<(Vec<String>, BTreeMap<String, usize>)> {
    let mut lines = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..4 * n {
        if i >= n && want.iter().all(|w| seen.contains_key(*w)) {
            break;
        }
        let (code, body) = get(&sleep.vantage(), sleep.outbound(), url).await?;
        let line = if code == 200 {
            label(&body)
        } else {
            format!("{code} {}", body.trim())
        };
        for w in want {
            if line.contains(w) {
                *seen.entry((*w).to_string()).or_insert(0) += 1;
            }
        }
        lines.push(line);
    }
    Ok((lines, seen))
}

async fn multi_primary(show: &Show, st: &State) -> anyhow::Result<()> {
    let cluster = "outbound|5000||helloworld.sample.svc.cluster.local";
    let mut s = String::from(
        "   Cross-cluster sync: each sleep proxy's endpoints for helloworld (strait proxy-config endpoints)\n",
    );
    let sleeps: Vec<PodState> = ["cluster1", "cluster2"]
        .iter()
        .map(|c| st.find_pod(&format!("{c}/sample/sleep")).cloned())
        .collect::<Result<_, _>>()?;
    for sleep in &sleeps {
        s.push_str(&format!("     {}:\n", sleep.cluster));
        s.push_str(&endpoint_rows(&config_of(sleep).await?, cluster));
    }
    s.push_str("\n   Cross-cluster load balancing: requests from each cluster's sleep\n");
    let mut missing = Vec::new();
    for sleep in &sleeps {
        let (lines, seen) =
            requests(sleep, HELLO, 10, |b| b.trim().to_string(), &["v1", "v2"]).await?;
        s.push_str(&format!(
            "     kubectl exec --context={} -n sample sleep -- curl -sS helloworld.sample:5000/hello   ({} times)\n",
            sleep.cluster,
            lines.len()
        ));
        for l in &lines {
            s.push_str(&format!("       {l}\n"));
        }
        for v in ["v1", "v2"] {
            if !seen.contains_key(v) {
                missing.push(format!("{v} never answered {}", sleep.cluster));
            }
        }
    }
    s.push('\n');
    out::print(&s)?;
    if !missing.is_empty() {
        bail!("{}", missing.join("; "));
    }
    live_mistake(show, &sleeps[0]).await?;
    super::failover::scene(&show.dir, &sleeps[0]).await
}

/// The first seeded mistake, made while the mesh runs: cluster2's cross-network Gateway is
/// deleted; analyze flags it, and cluster1 loses cluster2. Then it is put back.
async fn live_mistake(show: &Show, sleep: &PodState) -> anyhow::Result<()> {
    let file = show.dir.join("cluster2/istio-system.yaml");
    let original = std::fs::read_to_string(&file)?;
    let mut s = String::from(
        "3. The first mistake, made live: cluster2's cross-network Gateway deleted while the mesh runs\n",
    );
    std::fs::write(
        &file,
        super::remove_doc(&original, "name: cross-network-gateway"),
    )?;
    s.push_str(&super::analyze(&show.dir, show.color, Some("STR0102")));
    let st = State::load(&show.dir.join("../state"))?;
    let gw2 = st
        .pods
        .iter()
        .find(|p| {
            p.gateway && p.cluster == "cluster2" && p.name.starts_with("istio-eastwestgateway")
        })
        .cloned()
        .context("no east-west gateway in cluster2")?;
    wait_for(
        Duration::from_secs(20),
        "cluster2's gateway to stop serving 15443",
        || async {
            config_of(&gw2)
                .await
                .is_ok_and(|c| !c.listeners.contains_key("15443"))
        },
    )
    .await?;
    // Connections it already carried are drained, as Envoy drains a removed listener.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (lines, seen) = requests(sleep, HELLO, 10, |b| b.trim().to_string(), &["v1", "v2"]).await?;
    s.push_str(&format!(
        "     {} requests from cluster1's sleep: v1 {}, v2 {}   (cluster2's gateway refuses them now; the retries land on v1)\n",
        lines.len(),
        seen.get("v1").copied().unwrap_or(0),
        seen.get("v2").copied().unwrap_or(0)
    ));
    let cluster = "outbound|5000||helloworld.sample.svc.cluster.local";
    let gateway_health = |c: &ProxyConfig| {
        c.clusters
            .get(cluster)
            .and_then(|cl| cl.endpoints.iter().find(|e| e.via_gateway))
            .map(|e| e.unhealthy)
    };
    if wait_for(Duration::from_secs(15), "the gateway marked", || async {
        config_of(sleep)
            .await
            .is_ok_and(|c| gateway_health(&c) == Some(true))
    })
    .await
    .is_ok()
    {
        s.push_str(
            "     cluster1's control plane finds cluster2's gateway not answering and marks it:\n",
        );
        s.push_str(&endpoint_rows(&config_of(sleep).await?, cluster));
    }
    std::fs::write(&file, &original)?;
    wait_for(
        Duration::from_secs(20),
        "cluster2's gateway to serve 15443 again",
        || async {
            config_of(&gw2)
                .await
                .is_ok_and(|c| c.listeners.contains_key("15443"))
        },
    )
    .await?;
    wait_for(
        Duration::from_secs(20),
        "cluster2's gateway healthy again",
        || async {
            config_of(sleep)
                .await
                .is_ok_and(|c| gateway_health(&c) == Some(false))
        },
    )
    .await?;
    let (lines, seen) = requests(sleep, HELLO, 10, |b| b.trim().to_string(), &["v1", "v2"]).await?;
    s.push_str(&format!(
        "     put back: {} requests: v1 {}, v2 {}\n\n",
        lines.len(),
        seen.get("v1").copied().unwrap_or(0),
        seen.get("v2").copied().unwrap_or(0)
    ));
    out::print(&s)?;
    if !seen.contains_key("v2") {
        bail!("v2 did not answer again after the Gateway was put back");
    }
    Ok(())
}

pub(super) async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !f().await {
        if started.elapsed() > timeout {
            bail!("waited {}s for {what}", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn primary_remote(st: &State) -> anyhow::Result<()> {
    let mut s = String::from(
        "   Every proxy and the control plane it syncs with (strait proxy-status): cluster2's reach cluster1's\n   through cluster1's east-west gateway, port 15012, TLS passed through\n",
    );
    let cp = st
        .clusters
        .iter()
        .find_map(|c| c.control_plane.as_ref().map(|cp| (c, cp)))
        .context("no control plane")?;
    let (_, body) = get(
        &st.vantage_of_cluster(&cp.0.name),
        cp.1.debug,
        "/debug/syncz",
    )
    .await?;
    let syncz: serde_json::Value = serde_json::from_str(&body)?;
    let mut rows: Vec<(String, String, String)> = syncz["proxies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["cluster"].as_str().unwrap_or("").to_string(),
                p["proxy"].as_str().unwrap_or("").to_string(),
                p["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    rows.sort();
    for (cluster, proxy, state) in &rows {
        s.push_str(&format!("     {cluster:<9} {proxy:<52} {state}\n"));
    }
    let sleep = st.find_pod("cluster1/multicluster/sleep")?.clone();
    s.push_str("\n   Cross-cluster sync: sleep's endpoints for profile\n");
    s.push_str(&endpoint_rows(
        &config_of(&sleep).await?,
        "outbound|80||profile.multicluster.svc.cluster.local",
    ));
    s.push_str(
        "\n   Requests from cluster1's sleep to the dashboard, which calls profile and accounts\n",
    );
    let label = |body: &str| {
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let hop = |v: &serde_json::Value| {
            format!(
                "{} ({})",
                v["workload"].as_str().unwrap_or("?"),
                v["cluster"].as_str().unwrap_or("?")
            )
        };
        let calls: Vec<String> = v["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| hop(&c["body"]))
            .collect();
        format!("{} -> {}", hop(&v), calls.join(" + "))
    };
    let (lines, seen) = requests(
        &sleep,
        "http://dashboard.multicluster/",
        8,
        label,
        &["profile-v1 (cluster1)", "profile-v2 (cluster2)"],
    )
    .await?;
    for l in &lines {
        s.push_str(&format!("     {l}\n"));
    }
    s.push('\n');
    out::print(&s)?;
    if seen.len() < 2 {
        bail!("the dashboard's calls to profile did not reach both clusters: {seen:?}");
    }
    Ok(())
}
