//! The parts of a running local mesh, as child processes: how each is started (in its
//! network's namespace in namespace mode), restarted with back-off, and stopped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::UpError;
use super::files::Credentials;
use super::plan::{Plan, PodPlan};
use super::state::State;
use crate::apps::AppKind;
use crate::process::{Exited, Supervisor, spawn};

/// A part that ran this long before exiting restarts after the base delay again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
pub(super) const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    ControlPlane,
    Proxy,
    App,
}

#[derive(Clone, Debug)]
pub(super) struct Spec {
    pub role: Role,
    /// Cluster name (control planes) or pod key (proxies, apps).
    pub owner: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The namespace to run in (namespace mode).
    pub netns: Option<String>,
    started: Instant,
    failures: u32,
}

pub(super) struct Parts {
    pub program: PathBuf,
    pub log: String,
    pub access_logs: bool,
    pub specs: HashMap<String, Spec>,
    /// Apps and proxies; stopped before the control planes.
    pub workloads: Supervisor,
    pub control: Supervisor,
    pub state: State,
}

impl Parts {
    pub fn start(&mut self, name: &str) -> Result<u32, UpError> {
        let spec = self
            .specs
            .get_mut(name)
            .ok_or_else(|| UpError::Internal(format!("no part named {name}")))?;
        let mut env = spec.env.clone();
        if std::env::var_os("STRAIT_LOG").is_none() {
            env.push(("STRAIT_LOG".into(), self.log.clone()));
        }
        if !self.access_logs {
            env.push(("STRAIT_ACCESS_LOG".into(), "off".into()));
        }
        let child = match &spec.netns {
            // `ip netns exec` enters the namespace and execs the part: same process, so the
            // lifeline and signals reach it as they would reach it directly.
            Some(ns) => {
                let mut args = vec![
                    "netns".to_string(),
                    "exec".into(),
                    ns.clone(),
                    self.program.display().to_string(),
                ];
                args.extend(spec.args.iter().cloned());
                spawn(name, "ip", &args, env)?
            }
            None => spawn(name, &self.program, &spec.args, env)?,
        };
        let pid = child.pid();
        spec.started = Instant::now();
        let (role, owner) = (spec.role, spec.owner.clone());
        match role {
            Role::ControlPlane => self.control.add(child),
            Role::Proxy | Role::App => self.workloads.add(child),
        }
        record_pid(&mut self.state, role, &owner, Some(pid), None);
        Ok(pid)
    }

    pub fn add(
        &mut self,
        name: String,
        role: Role,
        owner: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        netns: Option<String>,
    ) {
        self.specs.insert(
            name,
            Spec {
                role,
                owner,
                args,
                env,
                netns,
                started: Instant::now(),
                failures: 0,
            },
        );
    }

    /// Stops a part for good (a pod scaled away): it is not restarted.
    pub async fn remove(&mut self, name: &str, grace: Duration) {
        if let Some(spec) = self.specs.remove(name) {
            let group = match spec.role {
                Role::ControlPlane => &mut self.control,
                Role::Proxy | Role::App => &mut self.workloads,
            };
            group.stop(name, grace).await;
        }
    }

    /// Records an exit and returns when to restart the part (`None`: it was removed).
    pub fn exited(&mut self, ex: &Exited, base: Duration) -> Option<Duration> {
        let spec = self.specs.get_mut(&ex.name)?;
        if spec.started.elapsed() >= HEALTHY_RUN {
            spec.failures = 0;
        }
        let delay = base
            .saturating_mul(1 << spec.failures.min(5))
            .min(MAX_RESTART_DELAY);
        spec.failures += 1;
        let (role, owner) = (spec.role, spec.owner.clone());
        record_pid(&mut self.state, role, &owner, None, Some(ex.pid));
        Some(delay)
    }

    /// The names of the parts of pod `key`.
    pub fn of_pod(&self, key: &str) -> Vec<String> {
        self.specs
            .iter()
            .filter(|(_, s)| s.role != Role::ControlPlane && s.owner == key)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// Keeps the state file's process IDs current: `started` when a part starts, `exited` when
/// one exits.
fn record_pid(
    state: &mut State,
    role: Role,
    owner: &str,
    started: Option<u32>,
    exited: Option<u32>,
) {
    if role == Role::ControlPlane {
        if let Some(cp) = state
            .clusters
            .iter_mut()
            .find(|c| c.name == owner)
            .and_then(|c| c.control_plane.as_mut())
        {
            cp.pid = started;
        }
        return;
    }
    let Some(p) = state.pods.iter_mut().find(|p| p.key() == owner) else {
        return;
    };
    if role == Role::Proxy {
        p.proxy_pid = started;
    } else {
        p.app_pids.retain(|pid| Some(*pid) != exited);
        p.app_pids.extend(started);
    }
}

/// Adds a pod's parts: its app on each port, and its proxy. Returns their names.
pub(super) fn add_pod(
    parts: &mut Parts,
    plan: &Plan,
    p: &PodPlan,
    creds: &Credentials,
    reach_files: &std::collections::BTreeMap<String, PathBuf>,
) -> Vec<String> {
    let mut names = Vec::new();
    let netns = plan.network(&p.network).and_then(|n| n.netns.clone());
    if let Some(app) = p.app.filter(|a| *a != AppKind::Sleep) {
        // sleep serves nothing: its pod exists for its sidecar, which `strait exec` uses.
        for port in &p.ports {
            let mut args = vec![
                "app".to_string(),
                app.as_str().into(),
                "--listen".into(),
                SocketAddr::new(p.app_ip, *port).to_string(),
                "--pod".into(),
                p.name.clone(),
                "--namespace".into(),
                p.namespace.clone(),
                "--cluster".into(),
                p.cluster.clone(),
                "--workload".into(),
                p.workload.clone(),
                "--version".into(),
                p.version.clone(),
                "--service-account".into(),
                p.service_account.clone(),
                "--source".into(),
                p.app_ip.to_string(),
            ];
            if let Some(file) = reach_files.get(&p.network) {
                args.extend(["--reach".into(), path_arg(file)]);
            }
            if p.sidecar() {
                // Behind its sidecar, the app answers the sidecar only: nobody reaches it
                // around the mesh's mTLS and policy.
                args.extend(["--sidecar".into(), p.ip.to_string()]);
            }
            let calls = p
                .annotations
                .get(crate::apps::CALLS_ANNOTATION)
                .map(String::as_str)
                .unwrap_or("");
            for url in calls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                args.extend(["--call".into(), url.to_string()]);
            }
            // An app reaches the mesh through its sidecar, as curl does through a proxy.
            let mut env = vec![
                ("NO_PROXY".to_string(), String::new()),
                ("no_proxy".to_string(), String::new()),
            ];
            if p.sidecar() {
                let proxy = format!("http://{}", SocketAddr::new(p.ip, 15001));
                env.extend([
                    ("HTTP_PROXY".to_string(), proxy.clone()),
                    ("http_proxy".to_string(), proxy),
                ]);
            }
            let name = format!("{} app:{port}", p.key());
            parts.add(name.clone(), Role::App, p.key(), args, env, netns.clone());
            names.push(name);
        }
    }
    if let Some(bs) = creds.bootstraps.get(&p.key()) {
        let args = vec![
            "proxy".to_string(),
            "--bootstrap".into(),
            path_arg(bs),
            "--lifeline".into(),
        ];
        let name = format!("{} proxy", p.key());
        parts.add(name.clone(), Role::Proxy, p.key(), args, Vec::new(), netns);
        names.push(name);
    }
    names
}

pub(super) fn path_arg(p: &Path) -> String {
    p.display().to_string()
}
