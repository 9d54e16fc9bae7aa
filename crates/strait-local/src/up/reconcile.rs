//! The workload set follows the files while the mesh runs: a Deployment added, deleted,
//! scaled or given a new pod template starts and stops pods, as a cluster's controllers
//! would. New pods get addresses of their own (running pods keep theirs), their tokens and
//! bootstraps, and appear in what the control planes read; pods that went away are stopped
//! and disappear from it. Routing edits need nothing from here: the control planes follow
//! them themselves.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use strait_control::source::{Fingerprint, Source};

use super::UpOptions;
use super::files;
use super::netns::Topology;
use super::parts::{self, Parts};
use super::plan::{self, Plan};
use super::supervise::{STOP_GRACE, Say, state_of};

/// How long the files must stay unchanged before a change is acted on (an editor saving in
/// several writes, a `cp -r` in progress).
const SETTLE: Duration = Duration::from_millis(300);

/// What a running mesh keeps to follow the files.
pub(super) struct Live {
    pub source: Source,
    pub plan: Plan,
    /// Bootstrap token of every proxy, by pod key.
    pub tokens: BTreeMap<String, String>,
    pub reach_files: BTreeMap<String, PathBuf>,
    pub topology: Option<Topology>,
    pub fingerprint: Option<Fingerprint>,
}

impl Live {
    /// Acts on a settled change of the files, if there is one.
    pub async fn follow(&mut self, parts: &mut Parts, opts: &UpOptions, say: &Say) {
        let now = self.source.fingerprint();
        if self.fingerprint.as_ref() == Some(&now) {
            return;
        }
        tokio::time::sleep(SETTLE).await;
        if self.source.fingerprint() != now {
            return;
        }
        self.fingerprint = Some(now);
        let mesh = match self.source.load() {
            Ok(l) => l.mesh,
            // The control planes report these errors with file:line and keep their config.
            Err(_) => return,
        };
        let next = match plan::plan(&mesh, opts.net, opts.mode, Some(&self.plan)) {
            Ok(p) => p,
            Err(e) => {
                say(format!("workloads not updated: {e}"));
                return;
            }
        };
        let names = |p: &Plan| -> Vec<(String, Option<std::net::SocketAddr>)> {
            p.clusters
                .iter()
                .map(|c| (c.name.clone(), c.control_plane.map(|cp| cp.grpc)))
                .collect()
        };
        if names(&next) != names(&self.plan) {
            say("clusters or control planes changed: restart strait up to apply that".into());
            return;
        }
        let old_keys: Vec<String> = self.plan.pods.iter().map(|p| p.key()).collect();
        let new_keys: Vec<String> = next.pods.iter().map(|p| p.key()).collect();
        let added: Vec<&plan::PodPlan> = next
            .pods
            .iter()
            .filter(|p| !old_keys.contains(&p.key()))
            .collect();
        let removed: Vec<String> = old_keys
            .iter()
            .filter(|k| !new_keys.contains(k))
            .cloned()
            .collect();
        let lbs = |p: &Plan| -> Vec<(String, std::net::IpAddr)> {
            p.load_balancers
                .iter()
                .map(|l| (l.key(), l.address))
                .collect()
        };
        if added.is_empty() && removed.is_empty() && lbs(&next) == lbs(&self.plan) {
            return;
        }
        if let Err(e) = self
            .apply(parts, opts, &mesh, &next, &added, &removed, say)
            .await
        {
            say(format!("workloads not updated: {e}"));
            return;
        }
        self.plan = next;
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &mut self,
        parts: &mut Parts,
        opts: &UpOptions,
        mesh: &strait_model::Mesh,
        next: &Plan,
        added: &[&plan::PodPlan],
        removed: &[String],
        say: &Say,
    ) -> Result<(), super::UpError> {
        let dir = &opts.state_dir;
        if let Some(t) = &self.topology {
            for lb in &next.load_balancers {
                t.add_public(next, &lb.network, lb.address)?;
            }
        }
        let (creds, tokens) =
            files::write_bootstraps(dir, next, opts.cert_ttl.as_secs(), &self.tokens)?;
        files::write_runtime(dir, mesh, next)?;
        self.tokens = tokens;
        // The new pods first, then the old ones go: a rolling update, not a gap.
        let mut started = Vec::new();
        for p in added {
            for name in parts::add_pod(parts, next, p, &creds, &self.reach_files) {
                started.push(name);
            }
        }
        let pids = parts.state.clone();
        parts.state = state_of(opts, next);
        for p in &mut parts.state.pods {
            if let Some(old) = pids.pods.iter().find(|o| o.key() == p.key()) {
                p.proxy_pid = old.proxy_pid;
                p.app_pids.clone_from(&old.app_pids);
            }
        }
        for c in &mut parts.state.clusters {
            if let (Some(cp), Some(old)) = (
                c.control_plane.as_mut(),
                pids.clusters
                    .iter()
                    .find(|o| o.name == c.name)
                    .and_then(|o| o.control_plane.as_ref()),
            ) {
                cp.pid = old.pid;
            }
        }
        started.sort();
        for name in &started {
            parts.start(name)?;
        }
        for p in added {
            say(format!("{}: started ({})", p.key(), p.ip));
        }
        for key in removed {
            for name in parts.of_pod(key) {
                parts.remove(&name, STOP_GRACE).await;
            }
            say(format!("{key}: stopped"));
        }
        parts.state.save(dir)?;
        Ok(())
    }
}
