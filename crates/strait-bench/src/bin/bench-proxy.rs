//! `bench-proxy`: strait's sidecar pair against Envoy's and against no proxy, side by side.
//! See `scripts/bench-proxy.sh`, which installs Envoy and wrk and builds everything first.
//! Progress goes to stderr, the Markdown report to stdout. Exit codes: 0 done, 1 the
//! benchmark failed, 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use strait_bench::proxy::{Options, Sections, run, wrk};

const EXAMPLES: &str = "Examples:
  bench-proxy --strait target/release/strait --envoy envoy                 # everything, 5 runs
  bench-proxy --strait ... --envoy ... --only latency --runs 3 --duration 5
  bench-proxy --strait ... --envoy ... --only memory --only scale --pin

A default run takes about 10 minutes on 2 cores (plus the build, in the script).";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Section {
    /// Latency at a fixed rate, saturation, CPU per request, and the wrk cross-check.
    Latency,
    /// Memory idle, under 256 connections, after config dumps and after a load spike.
    Memory,
    /// 1,000 services in every proxy: memory, and strait's time to ready.
    Scale,
}

#[derive(Parser, Debug)]
#[command(
    about = "Measures strait's sidecar pair against Envoy's and against no proxy",
    after_help = EXAMPLES
)]
struct Args {
    /// The strait binary.
    #[arg(long)]
    strait: PathBuf,
    /// The Envoy binary.
    #[arg(long)]
    envoy: PathBuf,
    /// Sections to run (repeatable; default all).
    #[arg(long, value_enum)]
    only: Vec<Section>,
    /// Loopback network 127.<NET>.0.0/16 to use, and no other.
    #[arg(long, default_value_t = 230, value_parser = clap::value_parser!(u8).range(1..=254))]
    net: u8,
    /// Runs per path, alternating between paths.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seconds measured per run and shape (and under load in the other sections).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of unrecorded warm-up before each measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Requests per second in the fixed-rate runs.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Connections in the fixed-rate runs.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Connections in the closed-loop runs (and wrk's).
    #[arg(long, default_value_t = 16)]
    closed_connections: usize,
    /// Response size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Load generator threads [default: the CPUs this process may use, 1 with --pin].
    #[arg(long)]
    threads: Option<usize>,
    /// Pin the load generator (and wrk) to one CPU, the proxies and apps to the others.
    #[arg(long)]
    pin: bool,
    /// The wrk binary for the cross-check [default: wrk on PATH, if any].
    #[arg(long)]
    wrk: Option<PathBuf>,
    /// Skip the wrk cross-check.
    #[arg(long)]
    no_wrk: bool,
    /// Seconds wrk runs per path.
    #[arg(long, default_value_t = 5)]
    wrk_duration: u64,
    /// Connections held open in the memory section.
    #[arg(long, default_value_t = 256)]
    hold_connections: usize,
    /// Requests per second over the held connections.
    #[arg(long, default_value_t = 1000)]
    hold_rate: u32,
    /// Connections of the load spike (a closed loop) in the memory section.
    #[arg(long, default_value_t = 64)]
    spike_connections: usize,
    /// Seconds memory is left to settle after config dumps or a spike.
    #[arg(long, default_value_t = 5)]
    settle: u64,
    /// Services every proxy holds in the scale section.
    #[arg(long, default_value_t = 1000)]
    services: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let all = args.only.is_empty();
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let opts = Options {
        strait: args.strait,
        envoy: args.envoy,
        net: args.net,
        rate: args.rate.max(1),
        connections: args.connections.max(1),
        closed_connections: args.closed_connections.max(1),
        size: args.size,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration.max(1)),
        runs: args.runs.max(1),
        threads: args
            .threads
            .unwrap_or(if args.pin { 1 } else { cpus })
            .max(1),
        pin: args.pin,
        sections: Sections {
            latency: all || args.only.contains(&Section::Latency),
            memory: all || args.only.contains(&Section::Memory),
            scale: all || args.only.contains(&Section::Scale),
        },
        wrk: if args.no_wrk {
            None
        } else {
            args.wrk.or_else(wrk::find)
        },
        wrk_duration: Duration::from_secs(args.wrk_duration.max(1)),
        hold_connections: args.hold_connections.max(1),
        hold_rate: args.hold_rate.max(1),
        spike_connections: args.spike_connections.max(1),
        settle: Duration::from_secs(args.settle),
        services: args.services,
    };
    match run(&opts) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}
