//! The control-plane benchmark: a generated mesh ([`mesh`]) loaded by the real control plane
//! (`strait_control::Hub`, its gRPC server and discovery sessions, over TLS on loopback),
//! with one real stream per proxy ([`clients`]). It measures, against the goals of the
//! control plane at scale:
//!
//! - the initial push (every stream opened at once until every proxy has ACKed its full
//!   state) and a full push (a mesh-wide change: `accessLogFile` toggled, which changes every
//!   proxy's `mesh` resource) until every proxy has ACKed it;
//! - one endpoint change (a pod's IP changed, a pod added, a pod removed, in turns) until every
//!   proxy is in sync with it: p50 and p99, and how many proxies were recompiled and how many
//!   were sent anything;
//! - one VirtualService edit (weights changed), the same way;
//! - peak RSS of the process (the streams' side is small: they keep no configuration).
//!
//! Changes are written to the files, then the hub is told to reload, as its file watcher would
//! after its poll: times start there, so the watcher's poll interval (200 ms by default, plus
//! one more poll to let an editor finish writing) is not in them.

pub mod clients;
pub mod mesh;
mod report;

pub use report::{line, render};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait_control::hub::Hub;

use clients::Arrivals;
use mesh::{Generated, Pod, Shape};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// 1.0 is the reference mesh: 10,000 services, 50,000 endpoints, 1,000 proxies.
    pub scale: f64,
    pub full_pushes: usize,
    pub endpoint_changes: usize,
    pub vs_edits: usize,
    /// How long to wait for the proxies to converge on one change.
    pub timeout: Duration,
    /// Where the control plane listens (discovery; debug is the next port).
    pub listen: SocketAddr,
    /// Keep the generated mesh here instead of a temporary directory.
    pub dir: Option<PathBuf>,
}

/// One change and how the proxies converged on it.
#[derive(Clone, Debug)]
pub struct Event {
    pub what: String,
    pub generation: u64,
    /// Time in `Hub::reload` (read, parse, build, index, publish).
    pub reload: Duration,
    /// From the reload's start until every proxy was in sync with the new generation.
    pub converged: Option<Duration>,
    /// From the reload's start until the last response of this generation arrived.
    pub last_arrival: Option<Duration>,
    /// Proxies sent something.
    pub sent: usize,
    /// Proxies whose configuration the control plane compiled.
    pub compiled: u64,
    /// Proxies whose configuration can depend on the change (same namespace, for a
    /// namespace-scoped change), for comparison.
    pub expected: usize,
    pub bytes: usize,
}

impl Event {
    /// Time for the change to reach every proxy it affects: the last response, or, when none
    /// was needed, the time to find that out.
    pub fn latency(&self) -> Option<Duration> {
        match (self.converged, self.last_arrival) {
            (_, Some(a)) => Some(a),
            (Some(c), None) => Some(c),
            (None, None) => None,
        }
    }
}

#[derive(Debug)]
pub struct Report {
    pub shape: Shape,
    pub files: usize,
    pub bytes: usize,
    pub objects: usize,
    pub first_load: Duration,
    pub initial: Event,
    pub full: Vec<Event>,
    pub endpoints: Vec<Event>,
    pub vs: Vec<Event>,
    pub peak_rss_kb: u64,
    pub rss_kb: u64,
    pub errors: Vec<String>,
}

/// Runs the benchmark. Progress goes to stderr.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let shape = Shape::scaled(opts.scale);
    let tmp = tempfile::tempdir()?;
    let dir = opts.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    eprintln!(
        "generating: {} services, {} endpoints, {} clusters, {} proxies",
        shape.services, shape.endpoints, shape.clusters, shape.proxies
    );
    let mut g = mesh::write(&dir, shape)?;
    eprintln!(
        "wrote {} files, {:.1} MB",
        g.files,
        g.bytes as f64 / 1_048_576.0
    );
    strait_ca::init(
        &["cluster0".to_string()],
        &dir.join("certs"),
        "cluster.local",
        &strait_ca::InitOptions { force: true },
    )?;
    let root = dir.join("root-cert.pem");

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(strait_control::metrics::Metrics::new(&mut registry));
    let source = g.source();
    let started = Instant::now();
    let hub = tokio::task::spawn_blocking(move || Hub::new(source, metrics))
        .await?
        .map_err(|r| anyhow::anyhow!("first load rejected:\n{}", r.errors.join("\n")))?;
    let first_load = started.elapsed();
    let hub = Arc::new(hub);
    let objects = hub.mesh().clusters.iter().map(|c| c.objects.len()).sum();
    eprintln!("first load: {first_load:.2?}, {objects} objects");

    let debug = SocketAddr::new(opts.listen.ip(), opts.listen.port() + 2);
    let cp = strait_control::Options {
        source: hub.source.clone(),
        cluster: "cluster0".into(),
        grpc: opts.listen,
        debug,
        ca_dir: Some(dir.join("certs/cluster0")),
        tokens: strait_control::Tokens::File(g.tokens.clone()),
        root_cert_out: Some(root.clone()),
        on_roots: None,
        retry_first_load: false,
        names: Vec::new(),
        // The benchmark reloads the hub itself.
        poll: Duration::from_secs(3600),
        reach: strait_net::Reach::default(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(strait_control::serve(cp, hub.clone(), registry, async {
        let _ = stop_rx.await;
    }));
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(opts.listen).await.is_ok() && root.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let arrivals = Arc::new(Arrivals::default());
    let mut bench = Bench {
        hub: hub.clone(),
        arrivals: arrivals.clone(),
        proxies: g.proxies.len(),
        timeout: opts.timeout,
    };
    eprintln!("opening {} discovery streams", g.proxies.len());
    let compiled_before = bench.compiled();
    let t0 = Instant::now();
    clients::connect_all(&g.proxies, opts.listen, &root, &arrivals).await?;
    let initial = bench
        .wait(
            "initial push (streams opened)".into(),
            1,
            t0,
            Duration::ZERO,
            compiled_before,
            g.proxies.len(),
        )
        .await;
    eprintln!("{}", line(&initial));

    let mut full = Vec::new();
    for i in 0..opts.full_pushes {
        let path = g.mesh_dir.join("cluster0/istio-system.yaml");
        let text = std::fs::read_to_string(&path)?;
        let (from, to) = if i % 2 == 0 {
            ("accessLogFile: /dev/stdout", "accessLogFile: \"\"")
        } else {
            ("accessLogFile: \"\"", "accessLogFile: /dev/stdout")
        };
        std::fs::write(&path, text.replacen(from, to, 1))?;
        let e = bench
            .change(
                "full push (meshConfig.accessLogFile)".into(),
                g.proxies.len(),
            )
            .await?;
        eprintln!("{}", line(&e));
        full.push(e);
    }

    let mut endpoints = Vec::new();
    let candidates = endpoint_files(&g);
    let mut rng = Lcg(0x5eed);
    let mut added: Option<(usize, usize)> = None;
    let mut fresh = 60_000usize;
    for i in 0..opts.endpoint_changes {
        let (what, c, k) = match (i % 3, added.take()) {
            (2, Some((c, k))) => {
                let p = g.pods[c][k].1.pop();
                (
                    format!("pod removed ({})", p.map_or(String::new(), |p| p.name)),
                    c,
                    k,
                )
            }
            (1, _) => {
                let (c, k) = candidates[rng.next() % candidates.len()];
                let list = &mut g.pods[c][k].1;
                let Some(tpl) = list.first().cloned() else {
                    continue;
                };
                fresh += 1;
                list.push(Pod {
                    name: format!("{}-{}-5d8f7c-9{i:04}", tpl.app, tpl.version),
                    ip: mesh::pod_ip(c, fresh),
                    ..tpl
                });
                added = Some((c, k));
                ("pod added".into(), c, k)
            }
            _ => {
                let (c, k) = candidates[rng.next() % candidates.len()];
                let list = &mut g.pods[c][k].1;
                if list.is_empty() {
                    continue;
                }
                let j = rng.next() % list.len();
                fresh += 1;
                list[j].ip = mesh::pod_ip(c, fresh);
                ("pod IP changed".into(), c, k)
            }
        };
        let (ns, list) = &g.pods[c][k];
        std::fs::write(g.pod_file(c, ns), mesh::render_pods(list))?;
        let expected = g.proxies.iter().filter(|p| p.namespace == *ns).count();
        let e = bench
            .change(format!("{what} in {ns} of cluster{c}"), expected)
            .await?;
        eprintln!("{}", line(&e));
        endpoints.push(e);
    }

    let mut vs = Vec::new();
    for i in 0..opts.vs_edits {
        let (c, k) = candidates[(i * 7) % candidates.len()];
        let ns = g.pods[c][k].0.clone();
        let path = g.config_file(0, &ns);
        let app = format!("svc{}", i % mesh::SERVICES_PER_NS);
        let text = std::fs::read_to_string(&path)?;
        std::fs::write(&path, edit_weights(&text, &app))?;
        let expected = g.proxies.iter().filter(|p| p.namespace == ns).count();
        let e = bench
            .change(format!("VirtualService {ns}/{app} weights"), expected)
            .await?;
        eprintln!("{}", line(&e));
        vs.push(e);
    }

    let errors = arrivals.errors();
    let (peak_rss_kb, rss_kb) = rss();
    let _ = stop_tx.send(());
    serving.abort();
    Ok(Report {
        shape,
        files: g.files,
        bytes: g.bytes,
        objects,
        first_load,
        initial,
        full,
        endpoints,
        vs,
        peak_rss_kb,
        rss_kb,
        errors,
    })
}

struct Bench {
    hub: Arc<Hub>,
    arrivals: Arc<Arrivals>,
    proxies: usize,
    timeout: Duration,
}

impl Bench {
    fn compiled(&self) -> u64 {
        self.hub.metrics.compiles.get()
    }

    /// Reloads the hub (the files were just written) and waits for the proxies.
    async fn change(&mut self, what: String, expected: usize) -> anyhow::Result<Event> {
        let before = self.hub.generation();
        let compiled = self.compiled();
        let hub = self.hub.clone();
        let t0 = Instant::now();
        tokio::task::spawn_blocking(move || hub.reload()).await?;
        let reload = t0.elapsed();
        let generation = self.hub.generation();
        if generation == before {
            let why = self
                .hub
                .rejected()
                .map(|r| r.errors.join("; "))
                .unwrap_or_else(|| "no change seen".into());
            anyhow::bail!("{what}: not applied: {why}");
        }
        Ok(self
            .wait(what, generation, t0, reload, compiled, expected)
            .await)
    }

    async fn wait(
        &mut self,
        what: String,
        generation: u64,
        t0: Instant,
        reload: Duration,
        compiled: u64,
        expected: usize,
    ) -> Event {
        let version = generation.to_string();
        let deadline = t0 + self.timeout;
        let mut converged = None;
        while Instant::now() < deadline {
            let synced = self.hub.synced(&version);
            if synced >= self.proxies {
                converged = Some(t0.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let arrivals = self.arrivals.of(generation);
        Event {
            what,
            generation,
            reload,
            converged,
            last_arrival: arrivals.iter().map(|a| a.at.duration_since(t0)).max(),
            sent: arrivals.len(),
            compiled: self.compiled() - compiled,
            expected,
            bytes: arrivals.iter().map(|a| a.bytes).sum(),
        }
    }
}

/// Pod files of the namespaces cluster0's proxies live in (a change elsewhere affects none of
/// them), as (cluster, index in `pods[cluster]`).
fn endpoint_files(g: &Generated) -> Vec<(usize, usize)> {
    let local: Vec<&str> = g.pods[0].iter().map(|(ns, _)| ns.as_str()).collect();
    let mut out = Vec::new();
    for (c, list) in g.pods.iter().enumerate() {
        for (k, (ns, pods)) in list.iter().enumerate() {
            if local.contains(&ns.as_str()) && !pods.is_empty() {
                out.push((c, k));
            }
        }
    }
    out
}

/// Toggles the route weights of VirtualService `app` (90/10 ↔ 80/20).
fn edit_weights(text: &str, app: &str) -> String {
    let docs: Vec<String> = text
        .split("\n---\n")
        .map(|d| {
            if d.contains("kind: VirtualService") && d.contains(&format!("\n  name: {app}\n")) {
                if d.contains("weight: 90") {
                    d.replace("weight: 90", "weight: 80")
                        .replace("weight: 10", "weight: 20")
                } else {
                    d.replace("weight: 80", "weight: 90")
                        .replace("weight: 20", "weight: 10")
                }
            } else {
                d.to_string()
            }
        })
        .collect();
    docs.join("\n---\n")
}

/// Peak and current resident set size (KiB).
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A small deterministic generator, so runs change the same pods.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }
}
