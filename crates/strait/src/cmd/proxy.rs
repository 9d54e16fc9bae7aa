//! `strait proxy`.

use std::process::ExitCode;

use anyhow::Context;
use strait_local::process::process_stop;
use strait_proxy::Bootstrap;

use crate::cli::ProxyArgs;

pub fn run(args: &ProxyArgs) -> anyhow::Result<ExitCode> {
    super::logging::init();
    let bs = Bootstrap::load(&args.bootstrap)?;
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
