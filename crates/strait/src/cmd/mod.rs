//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

mod analyze;
mod demo;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Analyze(args) => analyze::run(&args),
        Command::Demo(args) => demo::run(&args),
    }
}
