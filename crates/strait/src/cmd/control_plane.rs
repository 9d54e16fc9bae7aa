//! `strait control-plane`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use strait_control::Options;
use strait_control::source::Source;
use strait_local::process::process_stop;

use crate::cli::ControlPlaneArgs;

pub fn run(args: ControlPlaneArgs) -> anyhow::Result<ExitCode> {
    super::logging::init();
    let mut extra = Vec::new();
    for e in &args.extra {
        let Some((cluster, path)) = e.split_once('=') else {
            bail!("--extra {e}: expected CLUSTER=PATH");
        };
        extra.push((cluster.to_string(), PathBuf::from(path)));
    }
    let opts = Options {
        source: Source {
            paths: args.paths,
            extra,
        },
        cluster: args.cluster,
        grpc: args.listen,
        debug: args.debug,
        ca_dir: args.ca_dir,
        tokens: args.tokens,
        root_cert_out: args.root_cert_out,
        names: args.names,
        poll: Duration::from_millis(args.poll_ms.max(10)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("control-plane")
        .build()
        .context("starting the runtime")?;
    let lifeline = args.lifeline;
    runtime.block_on(async move {
        let stop = process_stop(lifeline);
        strait_control::run(opts, async move { stop.wait().await }).await
    })?;
    Ok(ExitCode::SUCCESS)
}
