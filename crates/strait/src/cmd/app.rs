//! `strait app`: one built-in sample app in the foreground, as `strait up` runs each pod.

use std::process::ExitCode;

use strait_local::apps::{self, AppConfig};
use strait_local::process::child_stop;

use crate::cli::AppArgs;

pub fn run(args: AppArgs) -> anyhow::Result<ExitCode> {
    super::logging::init();
    let cfg = AppConfig {
        listen: args.listen,
        pod: args.pod,
        namespace: args.namespace,
        cluster: args.cluster,
        workload: args.workload,
        version: args.version,
        service_account: args.service_account,
        trust_domain: args.trust_domain,
        reach: {
            let mut r = super::reach(args.reach.as_deref(), args.source)?;
            // Behind a sidecar the app admits its pod only; without one, its whole network.
            r.pod = match args.sidecar {
                Some(sidecar) => std::iter::once(sidecar).chain(args.source).collect(),
                None => Vec::new(),
            };
            r
        },
        calls: args.calls,
    };
    // One thread: a local mesh runs dozens of these, and a sample app needs no more.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Stops when the supervisor closes our stdin (or dies), or on SIGINT/SIGTERM.
        let stop = child_stop();
        tracing::info!(app = %args.app, pod = %cfg.pod, listen = %cfg.listen, "listening");
        apps::run(args.app, cfg, stop).await
    })?;
    Ok(ExitCode::SUCCESS)
}
