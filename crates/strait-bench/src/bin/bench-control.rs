//! `bench-control`: the control plane at scale. Generates a mesh (by default the reference mesh:
//! 10,000 services, 50,000 endpoints over 3 clusters, 1,000 proxies), loads it in the real
//! control plane, opens one discovery stream per proxy over TLS on loopback, and measures a
//! full push, endpoint changes, VirtualService edits and peak memory. See
//! `scripts/bench-control.sh`. Progress goes to stderr, the Markdown report to stdout. Exit
//! codes: 0 done, 1 the benchmark failed, 2 usage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use strait_bench::control::{Options, render, run};

/// The allocator of the `strait` binary, so that memory and time are the control plane's as
/// shipped (with the system allocator, peak RSS at 1,000 services was about twice as high).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXAMPLES: &str = "Examples:
  bench-control                      # the reference mesh: 10,000 services, 1,000 proxies
  bench-control --scale 0.1          # a tenth of it (1,000 services, 100 proxies)
  bench-control --endpoint-changes 300 --vs-edits 20";

#[derive(Parser, Debug)]
#[command(about, after_help = EXAMPLES)]
struct Args {
    /// Size of the mesh relative to the reference mesh (10,000 services, 50,000 endpoints, 1,000
    /// proxies; always 3 clusters).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Mesh-wide changes pushed to every proxy.
    #[arg(long, default_value_t = 3)]
    full_pushes: usize,
    /// Endpoint changes (a pod's IP changed, a pod added, a pod removed, in turns).
    #[arg(long, default_value_t = 100)]
    endpoint_changes: usize,
    /// VirtualService edits.
    #[arg(long, default_value_t = 10)]
    vs_edits: usize,
    /// Seconds to wait for the proxies to converge on one change.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Where the control plane listens for discovery (the debug port is 2 above).
    #[arg(long, default_value = "127.0.0.1:25012")]
    listen: SocketAddr,
    /// Write the generated mesh here (kept) instead of a temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Args = match strait_bench::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let opts = Options {
        scale: args.scale,
        full_pushes: args.full_pushes,
        endpoint_changes: args.endpoint_changes,
        vs_edits: args.vs_edits,
        timeout: Duration::from_secs(args.timeout),
        listen: args.listen,
        dir: args.dir,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-control: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&opts)) {
        Ok(report) => {
            print!("{}", render(&report));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-control: {e:#}");
            ExitCode::FAILURE
        }
    }
}
