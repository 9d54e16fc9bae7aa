//! `strait check`: questions about the running mesh, answered from what its parts report
//! (the control planes' `/debug/networkz` and `/debug/syncz`, the proxies' `/config_dump`)
//! and from real connections made where traffic would come from. Every subcommand prints a
//! table or JSON (`-o json`) and exits 1 when a check fails.

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

use crate::cli::{CheckArgs, CheckCommand};

/// How long a part of the mesh has to answer.
const ANSWER: Duration = Duration::from_secs(5);

pub fn run(cmd: &CheckCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CheckCommand::Gateways(args) => gateways::run(&Ctx::open(args)?, args),
        CheckCommand::Sync(args) => sync::run(&Ctx::open(args)?, args),
        CheckCommand::Lb(args) => lb::run(&Ctx::open_dir(&args.state)?, args),
        CheckCommand::Trace(args) => trace::run(&Ctx::open_dir(&args.state)?, args),
    }
}

/// The running mesh, and a runtime to ask its parts with.
pub(crate) struct Ctx {
    st: State,
    runtime: tokio::runtime::Runtime,
}

impl Ctx {
    fn open(args: &CheckArgs) -> anyhow::Result<Ctx> {
        Ctx::open_dir(&args.state)
    }

    fn open_dir(arg: &crate::cli::StateArg) -> anyhow::Result<Ctx> {
        Ctx::open_path(&arg.state.clone().unwrap_or_else(state::default_dir))
    }

    /// The mesh running with state directory `dir`. Blocking: not for an async context
    /// (it runs its own runtime).
    pub(crate) fn open_path(dir: &std::path::Path) -> anyhow::Result<Ctx> {
        Ok(Ctx {
            st: State::load(dir)?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
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
        for c in &self.st.clusters {
            let Some(cp) = &c.control_plane else { continue };
            match self.json(&self.st.vantage_of_cluster(&c.name), cp.debug, path) {
                Ok(v) => answers.push((c.name.clone(), v)),
                Err(e) => silent.push(format!("control plane of {}: {e:#}", c.name)),
            }
        }
        (answers, silent)
    }
}

/// The workload `from` names, which must have a sidecar: requests from a workload leave
/// through it.
pub(crate) fn sidecar_client<'s>(ctx: &'s Ctx, from: &str) -> anyhow::Result<&'s PodState> {
    let pod = crate::cmd::target::find_proxy(&ctx.st, from)?;
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
