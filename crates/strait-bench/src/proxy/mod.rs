//! The proxy benchmark: the same requests over three paths, measured side by side in one run.
//!
//! - **no proxy**: load generator → echo app;
//! - **strait**: load generator → client sidecar → HTTP/2 over mTLS → server sidecar → echo
//!   app, as `strait up` runs it;
//! - **Envoy**: the same path through two Envoys configured as Istio's sidecars are.
//!
//! All three end at the same app (`strait app echo`): the mesh's own, which admits only its
//! sidecar, for strait; a standalone one for the others. Three sections, each optional
//! (`--only`):
//!
//! - **latency** ([`latency`]): per run and path, a fixed rate (Istio's harness shape: 1 KB
//!   responses, mTLS, two workers per proxy) and a closed loop (saturation), with the
//!   proxies' CPU time from `/proc`; runs alternate between paths (each run starts with the
//!   next path) so that drift on the machine hits all of them alike, and the report gives
//!   the median and range over runs. Then `wrk` against each path, to show the generator is
//!   not the limit.
//! - **memory** ([`memory`]): each proxy pair's resident and private memory fresh, idle,
//!   after config dumps, holding 256 connections and during a load spike, and whether each
//!   stage's growth went away.
//! - **scale** ([`scale`]): a mesh whose proxies hold 1,000 services (and Envoys holding the
//!   same), memory idle, after config dumps and under load, and strait's time to ready.
//!
//! Every measured window reads the machine's CPU time from `/proc/stat`: windows whose
//! hypervisor steal is above 5%, or where other processes used more than 10% of the CPUs
//! (a shared machine), are flagged in the report. `--pin` puts the generator on one CPU and
//! the proxies and apps on the others.

mod echo;
pub mod envoy;
pub mod http;
mod latency;
pub mod load;
mod measure;
mod memory;
pub mod pin;
pub mod procs;
mod report;
mod scale;
pub mod services;
pub mod stats;
pub mod strait_mesh;
pub mod wrk;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use self::load::Target;
pub use self::report::Report;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub strait: PathBuf,
    pub envoy: PathBuf,
    /// Loopback network `127.<net>.0.0/16` for everything: the echo app, the meshes (one at
    /// a time) and the Envoys.
    pub net: u8,
    /// Requests per second in the fixed-rate runs.
    pub rate: u32,
    /// Connections in the fixed-rate runs.
    pub connections: usize,
    /// Connections in the closed-loop runs.
    pub closed_connections: usize,
    /// Response body size in bytes.
    pub size: usize,
    pub warmup: Duration,
    /// Measured time per run and shape.
    pub duration: Duration,
    /// Runs per path (alternating between paths).
    pub runs: usize,
    /// Load generator threads.
    pub threads: usize,
    pub pin: bool,
    pub sections: Sections,
    /// `wrk`, for the cross-check; `None` skips it.
    pub wrk: Option<PathBuf>,
    pub wrk_duration: Duration,
    /// Connections held open in the memory section, and the total rate over them.
    pub hold_connections: usize,
    pub hold_rate: u32,
    /// Connections of the load spike (a closed loop).
    pub spike_connections: usize,
    /// How long memory is left to settle after a config dump or a spike.
    pub settle: Duration,
    /// Services each proxy holds in the scale section.
    pub services: usize,
}

/// Which sections run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    pub latency: bool,
    pub memory: bool,
    pub scale: bool,
}

/// The three paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    Direct,
    Strait,
    Envoy,
}

impl Path {
    pub const ALL: [Path; 3] = [Path::Direct, Path::Strait, Path::Envoy];
    pub const PROXIES: [Path; 2] = [Path::Strait, Path::Envoy];

    pub fn name(self) -> &'static str {
        match self {
            Path::Direct => "no proxy",
            Path::Strait => "strait",
            Path::Envoy => "Envoy",
        }
    }
}

/// One path, ready to measure: where to send, and which processes to account and pin.
#[derive(Clone, Debug)]
struct Lane {
    path: Path,
    target: Target,
    /// The path's proxies (client side first); none for no proxy.
    proxies: Vec<u32>,
    /// The apps answering.
    apps: Vec<u32>,
    /// The proxies' admin addresses, for config dumps.
    admins: Vec<SocketAddr>,
}

/// What every section shares.
#[derive(Debug)]
struct Bench<'a> {
    opts: &'a Options,
    ticks: f64,
    pin: Option<pin::Pinning>,
}

impl Bench<'_> {
    fn target(&self, addr: SocketAddr) -> Target {
        Target {
            addr,
            host: strait_mesh::SERVER_HOST.to_string(),
            path: format!("/?size={}", self.opts.size),
        }
    }

    /// Pins a lane's processes (every thread) when pinning is on.
    fn pin_lane(&self, lane: &Lane) -> anyhow::Result<()> {
        if let Some(p) = &self.pin {
            for pid in lane.proxies.iter().chain(&lane.apps) {
                p.pin_process(*pid)?;
            }
        }
        Ok(())
    }
}

/// The paths of the two-workload mesh, as they are now (a restarted sidecar has a new pid).
fn lanes(
    bench: &Bench<'_>,
    mesh: &strait_mesh::StraitMesh,
    envoys: &envoy::EnvoyPair,
    echo: &echo::EchoApp,
) -> anyhow::Result<Vec<Lane>> {
    Ok(vec![
        Lane {
            path: Path::Direct,
            target: bench.target(echo.addr),
            proxies: Vec::new(),
            apps: vec![echo.pid()],
            admins: Vec::new(),
        },
        strait_lane(bench, mesh)?,
        envoy_lane(bench, envoys, echo),
    ])
}

fn envoy_lane(bench: &Bench<'_>, envoys: &envoy::EnvoyPair, echo: &echo::EchoApp) -> Lane {
    Lane {
        path: Path::Envoy,
        target: bench.target(envoys.entry),
        proxies: envoys.pids().to_vec(),
        apps: vec![echo.pid()],
        admins: envoys.admins().to_vec(),
    }
}

fn strait_lane(bench: &Bench<'_>, mesh: &strait_mesh::StraitMesh) -> anyhow::Result<Lane> {
    Ok(Lane {
        path: Path::Strait,
        target: bench.target(mesh.entry()?),
        proxies: mesh.proxy_pids()?.to_vec(),
        apps: vec![mesh.app_pid()?],
        admins: mesh.admins()?.to_vec(),
    })
}

/// Runs the benchmark and returns its report.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let bench = Bench {
        opts,
        ticks: procs::clock_ticks(),
        pin: if opts.pin {
            Some(pin::Pinning::split()?)
        } else {
            None
        },
    };
    let mut report = Report::new(opts.clone(), bench.pin.as_ref().map(pin::Pinning::describe));
    let echo_addr: SocketAddr = format!("127.{}.201.1:8080", opts.net).parse()?;
    eprintln!("starting the standalone echo app on {echo_addr}");
    let echo = echo::EchoApp::start(&opts.strait, tmp.path(), echo_addr)?;

    if opts.sections.latency || opts.sections.memory {
        let dir = tmp.path().join("two");
        eprintln!("starting the strait mesh on 127.{}.0.0/16", opts.net);
        let mesh = strait_mesh::StraitMesh::start(&opts.strait, &dir, opts.net, "")?;
        eprintln!("starting the Envoy pair ({})", opts.envoy.display());
        let envoys = envoy::start_pair(&envoy::PairSpec {
            envoy: &opts.envoy,
            dir: &dir.join("envoy"),
            ca_dir: &mesh.ca_dir(),
            trust_domain: "cluster.local",
            client_ip: format!("127.{}.200.1", opts.net).parse()?,
            server_ip: format!("127.{}.200.2", opts.net).parse()?,
            app: echo.addr,
            concurrency: 2,
            extra: &[],
        })?;
        let current = || lanes(&bench, &mesh, &envoys, &echo);
        // Memory first, so that "idle" is the proxies' first idle.
        if opts.sections.memory {
            report.memory = Some(
                memory::run(&bench, &current)
                    .with_context(|| format!("memory section\n{}", mesh.log_tail()))?,
            );
        }
        if opts.sections.latency {
            report.latency = Some(
                latency::run(&bench, &current)
                    .with_context(|| format!("latency section\n{}", mesh.log_tail()))?,
            );
        }
        report.full_job = report::FullJob::check(&mesh).ok();
        drop(envoys);
        drop(mesh);
    }
    if opts.sections.scale {
        report.scale = Some(scale::run(&bench, &tmp.path().join("scale"), &echo)?);
    }
    drop(echo);
    Ok(report)
}
