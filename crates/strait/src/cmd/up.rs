//! `strait up`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use strait_local::process::process_stop;
use strait_local::up::{UpOptions, state};

use crate::cli::UpArgs;

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    super::logging::init();
    let opts = UpOptions {
        mesh: args.mesh,
        state_dir: args.state.unwrap_or_else(state::default_dir),
        net: args.net,
        mode: if args.netns {
            strait_local::up::plan::Mode::Netns
        } else {
            strait_local::up::plan::Mode::Loopback
        },
        cert_ttl: args.cert_ttl,
        restart_delay: args.restart_delay,
        program: std::env::current_exe().context("locating the strait executable")?,
        // Warnings from every part, the control plane's config events, and AUDIT decisions;
        // access logs when the mesh config turns them on.
        log: "warn,strait_control=info,access=info".into(),
        access_logs: true,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let lifeline = args.lifeline;
    runtime.block_on(async move {
        let stop = process_stop(lifeline);
        let say = Arc::new(|line: String| eprintln!("{line}"));
        strait_local::up::run(opts, stop, say).await
    })?;
    Ok(ExitCode::SUCCESS)
}
