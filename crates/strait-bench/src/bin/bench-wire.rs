//! `bench-wire`: what one proxy's configuration costs on the discovery stream, typed protobuf
//! against JSON of the same values, encoded (the control plane's side) and decoded and applied
//! (the proxy's). Compiles every proxy of the control-plane benchmark's mesh, then alternates
//! the forms. Progress goes to stderr, the Markdown table to stdout. Exit codes: 0 done, 1 the
//! benchmark failed, 2 usage.

use std::process::ExitCode;

use clap::Parser;
use strait_bench::wire::{Options, render, run};

/// The allocator of the `strait` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Size of the mesh relative to the control-plane benchmark's reference mesh (10,000
    /// services, 1,000 proxies).
    #[arg(long, default_value_t = 0.1)]
    scale: f64,
    /// Rounds per form.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
}

fn main() -> ExitCode {
    let args: Args = match strait_bench::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let opts = Options {
        scale: args.scale,
        rounds: args.rounds.max(1),
    };
    match run(opts) {
        Ok(report) => {
            print!("{}", render(&report));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-wire: {e:#}");
            ExitCode::FAILURE
        }
    }
}
