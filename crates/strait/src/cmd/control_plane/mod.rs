//! `strait control-plane`: from a mesh directory (local mode), or from the Kubernetes API
//! ([`kubernetes`]).

mod kubernetes;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use strait_control::Options;
use strait_control::source::{Files, Source};
use strait_local::process::process_stop;

use crate::cli::ControlPlaneArgs;

pub fn run(args: ControlPlaneArgs) -> anyhow::Result<ExitCode> {
    super::logging::init();
    if args.kubernetes {
        return kubernetes::run(args);
    }
    let Some(tokens) = args.tokens else {
        bail!("--tokens FILE is required when the control plane reads files (or use --kubernetes)");
    };
    let pairs = |flag: &str, values: &[String]| -> anyhow::Result<Vec<(String, PathBuf)>> {
        values
            .iter()
            .map(|e| match e.split_once('=') {
                Some((cluster, path)) if !cluster.is_empty() && !path.is_empty() => {
                    Ok((cluster.to_string(), PathBuf::from(path)))
                }
                _ => bail!("--{flag} {e}: expected CLUSTER=PATH"),
            })
            .collect()
    };
    let files = Files {
        paths: args.paths,
        extra: pairs("extra", &args.extra)?,
        status: pairs("lb-status", &args.lb_status)?,
    };
    let reach = super::reach(args.reach.as_deref(), args.source)?;
    let opts = Options {
        source: Source {
            clusters: Arc::new(files),
            own: None,
        },
        reach,
        cluster: args.cluster,
        grpc: args.listen,
        debug: args.debug,
        ca_dir: args.ca_dir,
        tokens: strait_control::Tokens::File(tokens),
        root_cert_out: args.root_cert_out,
        on_roots: None,
        retry_first_load: false,
        names: args.names,
        poll: Duration::from_millis(args.poll_ms.max(10)),
    };
    let runtime = runtime()?;
    let lifeline = args.lifeline;
    runtime.block_on(async move {
        let stop = process_stop(lifeline);
        strait_control::run(opts, async move { stop.wait().await }).await
    })?;
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("control-plane")
        .build()
        .context("starting the runtime")
}
