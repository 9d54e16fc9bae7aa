//! `strait exec`.

use std::process::ExitCode;

use anyhow::{Context, bail};
use strait_local::up::state::{self, State};

use crate::cli::ExecArgs;

pub fn run(args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let dir = args.state.state.clone().unwrap_or_else(state::default_dir);
    let st = State::load(&dir)?;
    let pod = st.find_pod(&args.target)?;
    if !pod.sidecar {
        bail!(
            "{}: the pod has no sidecar (not injected), and locally a workload reaches services only through one",
            args.target
        );
    }
    if pod.gateway {
        bail!(
            "{}: a gateway's pod is its proxy; there is nothing to run commands from (use a workload with a sidecar)",
            args.target
        );
    }
    let proxy = format!("http://{}", pod.outbound());
    let (program, rest) = args
        .command
        .split_first()
        .context("no command given after --")?;
    // The command runs "in the pod": in namespace mode, inside its network's namespace, so
    // it sees what the pod sees and nothing else.
    let mut cmd = match &pod.netns {
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => std::process::Command::new(program),
    };
    let status = cmd
        .args(rest)
        .env("HTTP_PROXY", &proxy)
        .env("http_proxy", &proxy)
        .env("HTTPS_PROXY", &proxy)
        .env("https_proxy", &proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("STRAIT_CLUSTER", &pod.cluster)
        .env("STRAIT_NAMESPACE", &pod.namespace)
        .env("STRAIT_POD", &pod.name)
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal: the shell's convention, 128 + the signal number.
        None => {
            use std::os::unix::process::ExitStatusExt;
            let signal = status.signal().unwrap_or(0);
            ExitCode::from(u8::try_from(128 + signal).unwrap_or(255))
        }
    })
}
