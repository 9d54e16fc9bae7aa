//! Starting and supervising the parts of a local mesh.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strait_control::source::Source;
use tokio::time::Instant;

use super::checks::{self, Check};
use super::files::{self, Credentials};
use super::netns::Topology;
use super::parts::{self, MAX_RESTART_DELAY, Parts, Role};
use super::plan::{self, Mode, Plan};
use super::reconcile::Live;
use super::state::{ClusterState, ControlPlaneState, LbState, NetworkState, PodState, State};
use super::{UpError, UpOptions, summary};
use crate::process::Supervisor;
use crate::stop::Stop;

/// How long a control plane may take to serve, and all proxies to become ready.
const CONTROL_PLANE_START: Duration = Duration::from_secs(30);
const PROXIES_READY: Duration = Duration::from_secs(60);
/// Grace period for parts to stop on their own before they are killed.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);

/// Progress messages for the operator.
pub type Say = Arc<dyn Fn(String) + Send + Sync>;

/// Brings the mesh up, keeps it running until `stop` fires, then stops every part.
pub async fn run(opts: UpOptions, stop: Stop, say: Say) -> Result<(), UpError> {
    let dir = &opts.state_dir;
    if let Ok(s) = State::load(dir) {
        return Err(UpError::AlreadyRunning {
            dir: dir.clone(),
            pid: s.pid,
        });
    }
    if opts.mode == Mode::Netns {
        super::netns::check_privileges()?;
    }
    let _lock = checks::clean(dir)?;
    let source = Source::files(vec![opts.mesh.clone()]);
    let mesh = source.load().map_err(|r| UpError::Config(r.errors))?.mesh;
    let plan = plan::plan(&mesh, opts.net, opts.mode, None)?;
    if opts.mode == Mode::Loopback {
        checks::preflight(&plan)?;
    }
    for s in &plan.skipped {
        say(format!("not started: {s}"));
    }
    for w in &plan.warnings {
        say(format!("warning: {w}"));
    }
    // Primaries whose manifests carry no cacerts get one from a root made for this run, so
    // every cluster trusts every other.
    let without_ca: Vec<String> = plan
        .clusters
        .iter()
        .filter(|c| c.control_plane.is_some())
        .filter(|c| {
            let id = mesh.cluster_by_name(&c.name).map(|m| m.id);
            !mesh.ca_bundles.iter().any(|b| Some(b.cluster) == id)
        })
        .map(|c| c.name.clone())
        .collect();
    let certs = dir.join("certs");
    if !without_ca.is_empty() {
        strait_ca::init(
            &without_ca,
            &certs,
            &mesh.trust_domain,
            &strait_ca::InitOptions { force: true },
        )?;
    }
    let topology = match opts.mode {
        Mode::Netns => Some(Topology::create(&plan)?),
        Mode::Loopback => None,
    };
    let runtime = files::write_runtime(dir, &mesh, &plan)?;
    let reach_files = files::write_reach(dir, &plan)?;
    let (creds, tokens) =
        files::write_bootstraps(dir, &plan, opts.cert_ttl.as_secs(), &BTreeMap::new())?;
    drop(mesh);

    let mut parts = Parts {
        program: opts.program.clone(),
        log: opts.log.clone(),
        access_logs: opts.access_logs,
        specs: HashMap::new(),
        workloads: Supervisor::new(),
        control: Supervisor::new(),
        state: state_of(&opts, &plan),
    };
    let started = start_control_planes(
        &mut parts,
        &opts,
        &plan,
        &runtime,
        &creds,
        &reach_files,
        &without_ca,
        &stop,
        &say,
    )
    .await;
    if let Err(e) = started {
        parts.control.stop_all(STOP_GRACE).await;
        return interrupted_is_ok(e, &say);
    }
    let mut names = Vec::new();
    for p in &plan.pods {
        names.extend(parts::add_pod(&mut parts, &plan, p, &creds, &reach_files));
    }
    names.sort();
    for n in &names {
        parts.start(n)?;
    }
    let checks = proxy_checks(&plan, &say);
    say(format!(
        "starting {} pods ({} proxies)",
        plan.pods.len(),
        plan.pods.iter().filter(|p| p.proxy).count()
    ));
    let ready = checks::wait_ready(&mut parts.workloads, &checks, PROXIES_READY, &stop).await;
    if let Err(e) = ready {
        parts.workloads.stop_all(STOP_GRACE).await;
        parts.control.stop_all(STOP_GRACE).await;
        return interrupted_is_ok(e, &say);
    }
    parts.state.save(dir)?;
    say(summary::text(&plan, dir));
    let mut live = Live {
        source,
        plan,
        tokens,
        reach_files,
        topology,
        fingerprint: None,
    };
    live.fingerprint = Some(live.source.fingerprint());
    supervise(&mut parts, &mut live, &opts, &stop, &say).await;
    say("stopping".to_string());
    parts.workloads.stop_all(STOP_GRACE).await;
    parts.control.stop_all(STOP_GRACE).await;
    let _ = std::fs::remove_file(super::state::file(dir));
    drop(live);
    Ok(())
}

/// The readiness checks of every proxy whose cluster can reach its control plane; the others
/// were warned about and would only time out.
fn proxy_checks(plan: &Plan, say: &Say) -> Vec<Check> {
    let mut out = Vec::new();
    for p in plan.pods.iter().filter(|p| p.proxy) {
        let reachable = plan
            .cluster(&p.cluster)
            .is_some_and(|c| c.discovery.is_some());
        if !reachable {
            say(format!(
                "{}: not waiting for its proxy: its cluster cannot reach its control plane",
                p.key()
            ));
            continue;
        }
        out.push(Check {
            name: format!("{} proxy", p.key()),
            vantage: vantage(plan, &p.network),
            addr: SocketAddr::new(p.ip, 15021),
            path: "/healthz/ready",
        });
    }
    out
}

/// Where to connect to a part of network `network` from.
pub(super) fn vantage(plan: &Plan, network: &str) -> strait_net::netns::Vantage {
    match plan.network(network).and_then(|n| n.netns.clone()) {
        Some(ns) => strait_net::netns::Vantage::In(strait_net::netns::Netns::named(ns)),
        None => strait_net::netns::Vantage::Here,
    }
}

#[allow(clippy::too_many_arguments)]
async fn start_control_planes(
    parts: &mut Parts,
    opts: &UpOptions,
    plan: &Plan,
    runtime: &files::Runtime,
    creds: &Credentials,
    reach_files: &BTreeMap<String, PathBuf>,
    without_ca: &[String],
    stop: &Stop,
    say: &Say,
) -> Result<(), UpError> {
    let dir = &opts.state_dir;
    let certs = dir.join("certs");
    let mesh_arg = opts.mesh.display().to_string();
    for c in &plan.clusters {
        let Some(cp) = c.control_plane else { continue };
        let mut args = vec![
            "control-plane".to_string(),
            mesh_arg.clone(),
            "--cluster".into(),
            c.name.clone(),
        ];
        for (cluster, path) in &runtime.objects {
            args.extend(["--extra".into(), format!("{cluster}={}", path.display())]);
        }
        for (cluster, path) in &runtime.lb_status {
            args.extend([
                "--lb-status".into(),
                format!("{cluster}={}", path.display()),
            ]);
        }
        let tokens = creds
            .tokens
            .get(&c.name)
            .ok_or_else(|| UpError::Internal(format!("no tokens for {}", c.name)))?;
        args.extend([
            "--tokens".into(),
            tokens.display().to_string(),
            "--root-cert-out".into(),
            files::root_cert_path(dir, &c.name).display().to_string(),
            "--listen".into(),
            cp.grpc.to_string(),
            "--debug".into(),
            cp.debug.to_string(),
            "--source".into(),
            cp.grpc.ip().to_string(),
            "--lifeline".into(),
        ]);
        if let Some(file) = reach_files.get(&c.network) {
            args.extend(["--reach".into(), file.display().to_string()]);
        }
        if without_ca.contains(&c.name) {
            args.extend(["--ca-dir".into(), certs.join(&c.name).display().to_string()]);
        }
        let netns = plan.network(&c.network).and_then(|n| n.netns.clone());
        let name = format!("{}/control-plane", c.name);
        parts.add(
            name.clone(),
            Role::ControlPlane,
            c.name.clone(),
            args,
            Vec::new(),
            netns,
        );
        parts.start(&name)?;
        say(format!(
            "{name}: starting on {} (debug http://{}/debug/syncz)",
            cp.grpc, cp.debug
        ));
        let check = Check {
            name: name.clone(),
            vantage: vantage(plan, &c.network),
            addr: cp.debug,
            path: "/ready",
        };
        checks::wait_ready(&mut parts.control, &[check], CONTROL_PLANE_START, stop).await?;
    }
    Ok(())
}

/// A startup cut short by the user is a clean stop, not an error.
fn interrupted_is_ok(e: UpError, say: &Say) -> Result<(), UpError> {
    if matches!(e, UpError::Interrupted) {
        say("stopped before the mesh was up".to_string());
        Ok(())
    } else {
        Err(e)
    }
}

/// The state file's view of a plan (process IDs are filled in as parts start).
pub(super) fn state_of(opts: &UpOptions, plan: &Plan) -> State {
    State {
        pid: std::process::id(),
        mesh: opts.mesh.clone(),
        mode: plan.mode,
        networks: plan
            .networks
            .iter()
            .map(|n| NetworkState {
                name: n.name.clone(),
                ranges: n.ranges.iter().map(ToString::to_string).collect(),
                netns: n.netns.clone(),
            })
            .collect(),
        clusters: plan
            .clusters
            .iter()
            .map(|c| ClusterState {
                name: c.name.clone(),
                network: c.network.clone(),
                control_plane_of: c.control_plane_of.clone(),
                control_plane: c.control_plane.map(|cp| ControlPlaneState {
                    grpc: cp.grpc,
                    debug: cp.debug,
                    pid: None,
                }),
            })
            .collect(),
        pods: plan
            .pods
            .iter()
            .map(|p| PodState {
                cluster: p.cluster.clone(),
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                workload: p.workload.clone(),
                service_account: p.service_account.clone(),
                network: p.network.clone(),
                ip: p.ip,
                app_ip: p.app_ip,
                app: p.app.map(|a| a.as_str().to_string()),
                ports: p.ports.clone(),
                sidecar: p.proxy,
                gateway: p.gateway,
                netns: plan.network(&p.network).and_then(|n| n.netns.clone()),
                proxy_pid: None,
                app_pids: Vec::new(),
            })
            .collect(),
        load_balancers: plan
            .load_balancers
            .iter()
            .map(|l| LbState {
                cluster: l.cluster.clone(),
                namespace: l.namespace.clone(),
                name: l.name.clone(),
                network: l.network.clone(),
                address: l.address,
                ports: l.ports.iter().map(|(p, _)| *p).collect(),
            })
            .collect(),
        public_netns: plan.public_netns.clone(),
    }
}

/// How often the manifests are checked for workload changes.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// Restarts parts that exit and follows the manifests' workloads, until `stop` fires.
async fn supervise(parts: &mut Parts, live: &mut Live, opts: &UpOptions, stop: &Stop, say: &Say) {
    let mut due: BTreeMap<Instant, Vec<String>> = BTreeMap::new();
    let mut watch = tokio::time::interval(WATCH_EVERY);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = due.keys().next().copied();
        let exited = tokio::select! {
            () = stop.wait() => return,
            Some(ex) = parts.workloads.wait_any(), if !parts.workloads.is_empty() => ex,
            Some(ex) = parts.control.wait_any(), if !parts.control.is_empty() => ex,
            _ = watch.tick() => {
                live.follow(parts, opts, say).await;
                continue;
            }
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                let ready: Vec<Instant> = due.range(..=now).map(|(t, _)| *t).collect();
                for t in ready {
                    for name in due.remove(&t).unwrap_or_default() {
                        if !parts.specs.contains_key(&name) {
                            // Removed meanwhile (its pod was scaled away).
                            continue;
                        }
                        match parts.start(&name) {
                            Ok(pid) => say(format!("{name}: restarted (pid {pid})")),
                            Err(e) => {
                                say(format!("{name}: cannot restart: {e}"));
                                due.entry(now + MAX_RESTART_DELAY).or_default().push(name);
                            }
                        }
                    }
                }
                if let Err(e) = parts.state.save(&opts.state_dir) {
                    say(format!("cannot update the state file: {e}"));
                }
                continue;
            }
        };
        if let Some(delay) = parts.exited(&exited, opts.restart_delay) {
            say(format!(
                "{exited}\n  restarting in {:.1}s",
                delay.as_secs_f64()
            ));
            due.entry(Instant::now() + delay)
                .or_default()
                .push(exited.name.clone());
            if let Err(e) = parts.state.save(&opts.state_dir) {
                say(format!("cannot update the state file: {e}"));
            }
        }
    }
}
