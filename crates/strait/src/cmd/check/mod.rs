//! `strait check`: questions about the running mesh, answered from what its parts report
//! (the control planes' `/debug/networkz` and `/debug/syncz`, the proxies' `/config_dump`)
//! and from real connections made where traffic would come from. Every subcommand prints a
//! table or JSON (`-o json`) and exits 1 when a check fails.
//!
//! `check sync`, `check gateways` and `check trace` (without `--send`) read what the parts
//! report, so they also run against clusters (`--kubeconfig`, `--context`), reading them
//! through the API servers (for `check gateways`, whether a network reaches a gateway is the
//! probe of the control plane in that network). `check lb` and `check trace --send` need a
//! local run (`strait up`): they send requests from inside the mesh's networks, which only a
//! local run lets this machine stand in.

mod gateways;
pub(crate) mod lb;
mod sync;
pub(crate) mod trace;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use strait_local::up::state::{self, PodState, State};
use strait_net::netns::Vantage;

use super::running::Running;
use crate::cli::{CheckArgs, CheckCommand};

/// How long a part of the mesh has to answer.
const ANSWER: Duration = Duration::from_secs(5);

pub fn run(cmd: &CheckCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CheckCommand::Gateways(args) => gateways::run(&Ctx::open(args)?, args),
        CheckCommand::Sync(args) => sync::run(&Ctx::open(args)?, args),
        CheckCommand::Lb(args) => {
            local_only("lb", LB_NEEDS, &args.clusters)?;
            lb::run(&Ctx::open_dir(&args.state)?, args)
        }
        CheckCommand::Trace(args) => {
            trace::run(&Ctx::open_from(&args.state, &args.clusters)?, args)
        }
    }
}

const LB_NEEDS: &str = "it sends requests from a workload through its sidecar and counts where they land, and this machine cannot send as a pod of a cluster. Against clusters, `strait proxy-config endpoints <pod>.<namespace> --context ...` shows the weights the sidecar holds";

/// Fails, saying why, when clusters are named for a check that needs a local run.
fn local_only(check: &str, why: &str, clusters: &crate::cli::ClusterArgs) -> anyhow::Result<()> {
    if clusters.given() {
        anyhow::bail!("check {check} needs a mesh running on this machine (strait up): {why}");
    }
    Ok(())
}

/// The running mesh, and a runtime to ask its parts with.
pub(crate) struct Ctx {
    mesh: Running,
    runtime: tokio::runtime::Runtime,
}

impl Ctx {
    /// The mesh `args` name: a local run, or clusters.
    fn open(args: &CheckArgs) -> anyhow::Result<Ctx> {
        Ctx::open_from(&args.state, &args.clusters)
    }

    /// The mesh the command line names: clusters (`--kubeconfig`, `--context`) or a local run.
    fn open_from(
        state: &crate::cli::StateArg,
        clusters: &crate::cli::ClusterArgs,
    ) -> anyhow::Result<Ctx> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Ctx {
            mesh: Running::open(state, clusters, &runtime)?,
            runtime,
        })
    }

    fn open_dir(arg: &crate::cli::StateArg) -> anyhow::Result<Ctx> {
        Ctx::open_path(&arg.state.clone().unwrap_or_else(state::default_dir))
    }

    /// The mesh running with state directory `dir`. Blocking: not for an async context
    /// (it runs its own runtime).
    pub(crate) fn open_path(dir: &std::path::Path) -> anyhow::Result<Ctx> {
        Ok(Ctx {
            mesh: Running::local(State::load(dir)?),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    /// `GET path` on `pod`'s proxy admin port, wherever the mesh runs, as JSON.
    pub(crate) fn proxy_json(&self, pod: &PodState, path: &str) -> anyhow::Result<Value> {
        let at = self.mesh.proxy_at(pod);
        let (status, body) = self.runtime.block_on(self.mesh.proxy_get(pod, path))?;
        anyhow::ensure!(status.is_success(), "{at}{path} answered {status}");
        serde_json::from_slice(&body).with_context(|| format!("{at}{path}: not JSON"))
    }

    /// `GET path` on `addr` from `vantage`, as JSON.
    pub(crate) fn json(
        &self,
        vantage: &Vantage,
        addr: SocketAddr,
        path: &str,
    ) -> anyhow::Result<Value> {
        let (status, body) = self
            .runtime
            .block_on(strait_local::fetch::get_from(vantage, addr, path, ANSWER))?;
        anyhow::ensure!(status.is_success(), "{addr}{path} answered {status}");
        serde_json::from_slice(&body).with_context(|| format!("{addr}{path}: not JSON"))
    }

    /// What each control plane answers on `path`, by cluster; the ones that do not answer,
    /// with why.
    fn control_planes(&self, path: &str) -> (Vec<(String, Value)>, Vec<String>) {
        let mut answers = Vec::new();
        let mut silent = Vec::new();
        for cp in self.mesh.control_planes() {
            let answer = self
                .runtime
                .block_on(self.mesh.control_plane_get(&cp.cluster, path))
                .and_then(|(status, body)| {
                    anyhow::ensure!(status.is_success(), "{}{path} answered {status}", cp.at);
                    serde_json::from_slice::<Value>(&body)
                        .with_context(|| format!("{}{path}: not JSON", cp.at))
                });
            match answer {
                Ok(v) => answers.push((cp.cluster, v)),
                Err(e) => silent.push(format!("control plane of {}: {e:#}", cp.cluster)),
            }
        }
        (answers, silent)
    }
}

/// The workload `from` names, which must have a sidecar: requests from a workload leave
/// through it.
pub(crate) fn sidecar_client<'s>(ctx: &'s Ctx, from: &str) -> anyhow::Result<&'s PodState> {
    let pod = crate::cmd::target::find_proxy(&ctx.mesh.st, from)?;
    if !pod.sidecar || pod.gateway {
        anyhow::bail!(
            "{from}: requests from a workload leave through its sidecar; this pod has none"
        );
    }
    Ok(pod)
}

/// A proxy's Prometheus exposition.
fn proxy_metrics(ctx: &Ctx, pod: &PodState) -> anyhow::Result<String> {
    Ok(ctx
        .runtime
        .block_on(strait_local::observe::scrape(pod, ANSWER))?)
}

/// One problem a check found: where, and why.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Problem {
    /// What it is about: a proxy (`<pod>.<namespace>`), a network, a control plane.
    subject: String,
    /// The service or gateway concerned, when there is one.
    #[serde(skip_serializing_if = "String::is_empty")]
    service: String,
    cause: String,
}

/// What a check found: its data, the same for a terminal, and the problems.
pub(crate) struct Report {
    pub data: Value,
    pub text: String,
    pub problems: Vec<Problem>,
}

impl Report {
    /// What `-o json` prints, with the text for a terminal as `text`.
    pub(crate) fn into_json(self) -> anyhow::Result<Value> {
        let mut data = with_verdict(self.data, &self.problems)?;
        data["text"] = Value::String(self.text);
        Ok(data)
    }
}

/// `data` with the problems and whether there are none (`ok`).
fn with_verdict(mut data: Value, problems: &[Problem]) -> anyhow::Result<Value> {
    data["problems"] = serde_json::to_value(problems)?;
    data["ok"] = Value::Bool(problems.is_empty());
    Ok(data)
}

/// Prints the result and makes the exit code: `data` and the problems as JSON, or `table`
/// followed by the problems.
fn finish(
    output: crate::cli::TableFormat,
    data: Value,
    table: String,
    problems: &[Problem],
) -> anyhow::Result<ExitCode> {
    let text = match output {
        crate::cli::TableFormat::Json => {
            serde_json::to_string_pretty(&with_verdict(data, problems)?)? + "\n"
        }
        crate::cli::TableFormat::Table => {
            let mut text = table;
            if problems.is_empty() {
                text.push_str("\nNo problems found.\n");
            } else {
                let rows: Vec<Vec<String>> = problems
                    .iter()
                    .map(|p| vec![p.subject.clone(), p.service.clone(), p.cause.clone()])
                    .collect();
                text.push('\n');
                text.push_str(&crate::out::table(&["PROBLEM", "SERVICE", "CAUSE"], &rows));
            }
            text
        }
    };
    crate::out::print(&text)?;
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
