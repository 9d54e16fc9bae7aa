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
    // concurrency for sidecars is 2 as well).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("proxy")
        .build()
        .context("starting the runtime")?;
    let lifeline = args.lifeline;
    runtime.block_on(async move {
        let stop = process_stop(lifeline);
        strait_proxy::run(bs, async move { stop.wait().await }).await
    })?;
    Ok(ExitCode::SUCCESS)
}
