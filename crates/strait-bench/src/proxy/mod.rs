//! The proxy benchmark: the same requests over three paths, measured side by side in one run.
//!
//! - **no proxy**: load generator → echo app;
//! - **strait**: load generator → client sidecar → HTTP/2 over mTLS → server sidecar → echo
//!   app, as `strait up` runs it;
//! - **Envoy**: the same path through two Envoys configured as Istio's sidecars are.
//!
//! Each run measures latency at a fixed rate (Istio's harness shape: 1 KB responses, mTLS,
//! two workers per proxy) and the highest rate reached by a closed loop, with the proxies'
//! CPU time from `/proc`. Runs alternate between paths so that drift on the machine hits
//! all of them alike; the report takes the median of the runs.

pub mod envoy;
pub mod load;
pub mod procs;
mod report;
pub mod strait_mesh;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use self::load::{Shape, Target};
pub use self::report::Report;
use self::report::{Measured, Path as BenchPath};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub strait: PathBuf,
    pub envoy: PathBuf,
    /// Loopback network `127.<net>.0.0/16` for the mesh and the Envoys.
    pub net: u8,
    pub rate: u32,
    pub connections: usize,
    pub closed_connections: usize,
    pub size: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub runs: usize,
}

/// Runs the benchmark and returns its report.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    eprintln!("starting the strait mesh on 127.{}.0.0/16", opts.net);
    let mesh = strait_mesh::StraitMesh::start(&opts.strait, tmp.path(), opts.net)?;
    let envoy_dir = tmp.path().join("envoy");
    std::fs::create_dir_all(&envoy_dir)?;
    eprintln!("starting the Envoy pair ({})", opts.envoy.display());
    let envoys = envoy::start_pair(&envoy::PairSpec {
        envoy: &opts.envoy,
        dir: &envoy_dir,
        ca_dir: &mesh.ca_dir(),
        trust_domain: "cluster.local",
        client_ip: format!("127.{}.200.1", opts.net).parse()?,
        server_ip: format!("127.{}.200.2", opts.net).parse()?,
        app: mesh.app(),
        concurrency: 2,
    })?;

    let path = format!("/?size={}", opts.size);
    let target = |addr| Target {
        addr,
        host: strait_mesh::SERVER_HOST.to_string(),
        path: path.clone(),
    };
    let paths = [
        (BenchPath::Direct, target(mesh.app()), Vec::new()),
        (
            BenchPath::Strait,
            target(mesh.client.outbound()),
            mesh.proxy_pids()?.to_vec(),
        ),
        (
            BenchPath::Envoy,
            target(envoys.entry),
            vec![envoys.client.pid(), envoys.server.pid()],
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the load generator's runtime")?;
    let ticks = procs::clock_ticks();
    let mut report = Report::new(opts.clone());
    for run in 1..=opts.runs {
        for (which, target, pids) in &paths {
            for shape in [Shape::FixedRate(opts.rate), Shape::ClosedLoop] {
                let connections = match shape {
                    Shape::FixedRate(_) => opts.connections,
                    Shape::ClosedLoop => opts.closed_connections,
                };
                let cpu_before = cpu(pids)?;
                let started = Instant::now();
                let sample = runtime
                    .block_on(load::run(
                        target,
                        shape,
                        connections,
                        opts.warmup,
                        opts.duration,
                    ))
                    .with_context(|| format!("{} path ({})", which.name(), target.addr))?;
                let wall = started.elapsed();
                let cpu_seconds = (cpu(pids)? - cpu_before) as f64 / ticks;
                let m = Measured::new(sample, opts.duration, cpu_seconds, wall);
                eprintln!(
                    "run {run}/{}: {} {}: {}",
                    opts.runs,
                    which.name(),
                    shape_name(shape),
                    m.summary()
                );
                report.add(*which, shape, m);
            }
        }
    }
    for (which, _, pids) in &paths {
        for pid in pids {
            report.memory(*which, procs::memory_kib(*pid)?);
        }
    }
    drop(envoys);
    drop(mesh);
    Ok(report)
}

fn cpu(pids: &[u32]) -> anyhow::Result<u64> {
    pids.iter().map(|p| procs::cpu_ticks(*p)).sum()
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::FixedRate(_) => "fixed rate",
        Shape::ClosedLoop => "closed loop",
    }
}
