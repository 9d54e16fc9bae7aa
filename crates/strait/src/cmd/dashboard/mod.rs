//! `strait dashboard`: one page, served on 127.0.0.1, that draws the running local mesh —
//! networks, clusters, east-west and ingress gateways, workloads as their services' versions
//! — with live request and error rates between workloads, from the proxies' own Istio
//! metrics. Clicking an edge shows its `strait check trace`.
//!
//! - [`live`]: the scrape loop and the snapshot `/api/mesh` serves; the arithmetic (rates,
//!   who counts a request, topology) is `strait_local::observe`, testable without a mesh;
//! - [`routes`]: the page, `/api/mesh`, `/api/trace` and their errors;
//! - [`query`]: the strict parsing of `/api/trace`'s query;
//! - [`trace`]: an edge's trace, with `check trace`'s own code.
//!
//! The server is the operator ports' small HTTP server (`strait_protocol::http_admin`), with
//! the admin ports' rule: only the mesh's owner (and root) may connect, since a trace shows
//! what config dumps show.

mod live;
mod query;
mod routes;
mod trace;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use strait_local::up::state::{self, State};
use strait_net::{Cidr, Door, Reach};

use crate::cli::DashboardArgs;

pub fn run(args: &DashboardArgs) -> anyhow::Result<ExitCode> {
    let dir = args.state.state.clone().unwrap_or_else(state::default_dir);
    // No mesh, no dashboard: say so now rather than serve an empty page.
    State::load(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let code = runtime.block_on(serve(dir, args.port));
    // A trace in progress holds a blocking thread; do not wait for it on the way out.
    runtime.shutdown_timeout(Duration::from_millis(500));
    code
}

async fn serve(dir: std::path::PathBuf, port: u16) -> anyhow::Result<ExitCode> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (pick another with --port)"))?;
    let bound = listener.local_addr()?;
    let live = Arc::new(live::Live::default());
    // The first snapshot before the first visitor: the page never shows "loading" for long.
    let mut scraper = live::Scraper::new(&dir);
    live.set(scraper.round().await);
    tokio::spawn(scraper.run(live.clone()));
    let handler = routes::handler(dir, live);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "strait dashboard: http://{bound}/")?;
        out.flush()?;
    }
    eprintln!("Ctrl-C stops it.");
    tokio::select! {
        () = strait_protocol::http_admin::serve(listener, owner_only(bound.ip()), Door::Admin, handler) => {}
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The table of a listener only this user's processes (and root's) may use, from `ip`.
fn owner_only(ip: IpAddr) -> Reach {
    Reach {
        ranges: vec![Cidr::host(ip)],
        operator: vec![ip],
        owner: Some(own_uid()),
        ..Reach::default()
    }
}

/// This process's user, as the proxies' admin ports know the mesh's owner.
fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}
