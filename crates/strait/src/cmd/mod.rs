//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

mod analyze;
mod app;
mod ca;
mod check;
mod cluster_target;
mod control_plane;
mod dashboard;
mod demo;

mod exec;
mod init;
mod injector;
mod install;
mod logging;
mod proxy;
mod proxy_config;
mod proxy_status;
mod remote_secret;
mod running;
pub(crate) mod target;
mod up;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Analyze(args) => analyze::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::App(args) => app::run(args),
        Command::Ca(cmd) => ca::run(&cmd),
        Command::ControlPlane(args) => control_plane::run(args),
        Command::Proxy(args) => proxy::run(&args),
        Command::Injector(args) => injector::run(&args),
        Command::Up(args) => up::run(args),
        Command::Exec(args) => exec::run(&args),
        Command::ProxyConfig(args) => proxy_config::run(&args),
        Command::ProxyStatus(args) => proxy_status::run(&args),
        Command::Check(cmd) => check::run(&cmd),
        Command::Dashboard(args) => dashboard::run(&args),
        Command::Init(args) => init::run(&args),
        Command::Install(args) => install::run(&args),
        Command::CreateRemoteSecret(args) => remote_secret::run(&args),
    }
}

/// The network table of a part (`--reach FILE`, `--source IP`); none: unrestricted.
pub(crate) fn reach(
    file: Option<&std::path::Path>,
    source: Option<std::net::IpAddr>,
) -> anyhow::Result<strait_net::Reach> {
    let mut r = match file {
        Some(path) => strait_net::Reach::load(path)?,
        None => strait_net::Reach::default(),
    };
    if let Some(ip) = source {
        r.source = Some(ip);
        if r.pod.is_empty() {
            r.pod.push(ip);
        }
    }
    Ok(r)
}
