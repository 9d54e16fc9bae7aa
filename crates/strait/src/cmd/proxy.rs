//! `strait proxy`: a sidecar or gateway, from a bootstrap file (local mode) or from the pod's
//! environment (Kubernetes: `--bootstrap-env`, or `--kubernetes --gateway`).

use std::process::ExitCode;

use anyhow::Context;
use strait_local::process::process_stop;
use strait_proxy::Bootstrap;
use strait_proxy::bootstrap::ProxyRole;

use crate::cli::ProxyArgs;

pub fn run(args: &ProxyArgs) -> anyhow::Result<ExitCode> {
    super::logging::init();
    let bs = match &args.bootstrap {
        Some(path) => Bootstrap::load(path)?,
        None => {
            let role = args.gateway.then_some(ProxyRole::Gateway);
            match Bootstrap::from_process_env(role) {
                Ok(bs) => bs,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    };
    tracing::info!(
        pod = %format!("{}/{}", bs.namespace, bs.pod),
        role = ?bs.role,
        control_plane = %bs.control_plane,
        "proxy starting"
    );
    // Two workers: a sidecar shares its pod's CPU with the application (Envoy's default
    // concurrency for sidecars is 2 as well). Each serves its connections on its own
    // thread; the main thread accepts and talks to the control plane.
    let workers = strait_proxy::workers::Workers::start(2).context("starting worker threads")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let lifeline = args.lifeline;
    runtime.block_on(async move {
        let stop = process_stop(lifeline);
        strait_proxy::run(bs, workers, async move { stop.wait().await }).await
    })?;
    Ok(ExitCode::SUCCESS)
}
