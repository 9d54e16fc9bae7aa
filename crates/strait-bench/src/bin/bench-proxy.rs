//! `bench-proxy`: strait's sidecar pair against Envoy's and against no proxy, side by side.
//! See `scripts/bench-proxy.sh`, which installs Envoy and builds everything first.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use strait_bench::proxy::{Options, run};

#[derive(Parser, Debug)]
#[command(about = "Measures strait's sidecar pair against Envoy's and against no proxy")]
struct Args {
    /// The strait binary.
    #[arg(long)]
    strait: PathBuf,
    /// The Envoy binary.
    #[arg(long)]
    envoy: PathBuf,
    /// Loopback network 127.<NET>.0.0/16 to use.
    #[arg(long, default_value_t = 230)]
    net: u8,
    /// Requests per second in the fixed-rate runs.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Connections in the fixed-rate runs.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Connections in the closed-loop runs.
    #[arg(long, default_value_t = 16)]
    closed_connections: usize,
    /// Response size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Seconds of unrecorded warm-up before each measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Seconds measured per run and shape.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Runs per path (alternating between paths).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let opts = Options {
        strait: args.strait,
        envoy: args.envoy,
        net: args.net,
        rate: args.rate,
        connections: args.connections,
        closed_connections: args.closed_connections,
        size: args.size,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration.max(1)),
        runs: args.runs.max(1),
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
