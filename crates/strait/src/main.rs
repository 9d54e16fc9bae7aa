//! `strait`: the command line. Argument parsing and output only; the work is in the crates.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod cmd;
mod out;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cmd::run(args) {
        Ok(code) => code,
        Err(e) => {
            if out::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
