//! Starting and supervising the parts of a local mesh.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use strait_control::source::Source;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::plan::{Plan, PodPlan};
use super::state::{ClusterState, ControlPlaneState, PodState, State};
use super::{UpError, UpOptions, files, plan};
use crate::fetch;
use crate::process::{Exited, Supervisor, spawn};
use crate::stop::Stop;

/// How long a control plane may take to serve, and all sidecars to become ready.
const CONTROL_PLANE_START: Duration = Duration::from_secs(30);
const PROXIES_READY: Duration = Duration::from_secs(60);
/// Grace period for parts to stop on their own before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// A part that ran this long before exiting restarts after the base delay again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// Progress messages for the operator.
pub type Say = Arc<dyn Fn(String) + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    ControlPlane,
    Proxy,
    App,
}

#[derive(Clone, Debug)]
struct Spec {
    role: Role,
    /// Cluster name (control planes) or pod key (proxies, apps).
    owner: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    started: Instant,
    failures: u32,
}

struct Parts {
    program: PathBuf,
    log: String,
    specs: HashMap<String, Spec>,
    /// Apps and sidecars; stopped before the control planes.
    workloads: Supervisor,
    control: Supervisor,
    state: State,
}

impl Parts {
    fn start(&mut self, name: &str) -> Result<u32, UpError> {
        let spec = self
            .specs
            .get_mut(name)
            .ok_or_else(|| UpError::Internal(format!("no part named {name}")))?;
        let mut env = spec.env.clone();
        if std::env::var_os("STRAIT_LOG").is_none() {
            env.push(("STRAIT_LOG".into(), self.log.clone()));
        }
        let child = spawn(name, &self.program, &spec.args, env)?;
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

    fn add(
        &mut self,
        name: String,
        role: Role,
        owner: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) {
        self.specs.insert(
            name,
            Spec {
                role,
                owner,
                args,
                env,
                started: Instant::now(),
                failures: 0,
            },
        );
    }

    /// Records an exit and returns when to restart the part.
    fn exited(&mut self, ex: &Exited, base: Duration) -> Option<Duration> {
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

/// Brings the mesh up, keeps it running until `stop` fires, then stops every part.
pub async fn run(opts: UpOptions, stop: Stop, say: Say) -> Result<(), UpError> {
    let dir = &opts.state_dir;
    if let Ok(s) = State::load(dir) {
        return Err(UpError::AlreadyRunning {
            dir: dir.clone(),
            pid: s.pid,
        });
    }
    let _lock = clean(dir)?;
    let source = Source {
        paths: vec![opts.mesh.clone()],
        extra: Vec::new(),
    };
    let mesh = source.load().map_err(|r| UpError::Config(r.errors))?;
    let plan = plan::plan(&mesh, opts.net)?;
    preflight(&plan)?;
    for s in &plan.skipped {
        say(format!("not started: {s}"));
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
    let trust_domain = mesh.trust_domain.clone();
    drop(mesh);
    let certs = dir.join("certs");
    if !without_ca.is_empty() {
        strait_ca::init(
            &without_ca,
            &certs,
            &trust_domain,
            &strait_ca::InitOptions { force: true },
        )?;
    }
    let pods_files = files::write_pods(dir, &plan)?;
    let creds = files::write_bootstraps(dir, &plan, opts.cert_ttl.as_secs())?;

    let mut parts = Parts {
        program: opts.program.clone(),
        log: opts.log.clone(),
        specs: HashMap::new(),
        workloads: Supervisor::new(),
        control: Supervisor::new(),
        state: initial_state(&opts, &plan),
    };
    let mesh_arg = opts.mesh.display().to_string();
    for c in &plan.clusters {
        let Some(cp) = c.control_plane else { continue };
        let mut args = vec![
            "control-plane".to_string(),
            mesh_arg.clone(),
            "--cluster".into(),
            c.name.clone(),
        ];
        for (cluster, path) in &pods_files {
            args.extend(["--extra".into(), format!("{cluster}={}", path.display())]);
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
            "--lifeline".into(),
        ]);
        if without_ca.contains(&c.name) {
            args.extend(["--ca-dir".into(), certs.join(&c.name).display().to_string()]);
        }
        let name = format!("{}/control-plane", c.name);
        parts.add(
            name.clone(),
            Role::ControlPlane,
            c.name.clone(),
            args,
            Vec::new(),
        );
        parts.start(&name)?;
        say(format!(
            "{name}: starting on {} (debug http://{}/debug/syncz)",
            cp.grpc, cp.debug
        ));
        let ready = wait_ready(
            &mut parts.control,
            &[(name.clone(), cp.debug, "/ready")],
            CONTROL_PLANE_START,
            &stop,
        )
        .await;
        if let Err(e) = ready {
            parts.control.stop_all(STOP_GRACE).await;
            return interrupted_is_ok(e, &say);
        }
    }
    for p in &plan.pods {
        add_app(&mut parts, p);
        if let Some(bs) = creds.bootstraps.get(&p.key()) {
            let args = vec![
                "proxy".to_string(),
                "--bootstrap".into(),
                bs.display().to_string(),
                "--lifeline".into(),
            ];
            parts.add(
                format!("{} proxy", p.key()),
                Role::Proxy,
                p.key(),
                args,
                Vec::new(),
            );
        }
    }
    let mut names: Vec<String> = parts
        .specs
        .iter()
        .filter(|(_, s)| s.role != Role::ControlPlane)
        .map(|(n, _)| n.clone())
        .collect();
    names.sort();
    for n in &names {
        parts.start(n)?;
    }
    let checks: Vec<(String, SocketAddr, &'static str)> = plan
        .pods
        .iter()
        .filter(|p| p.sidecar)
        .map(|p| {
            (
                format!("{} proxy", p.key()),
                SocketAddr::new(p.ip, 15021),
                "/healthz/ready",
            )
        })
        .collect();
    say(format!(
        "starting {} pods ({} sidecars)",
        plan.pods.len(),
        checks.len()
    ));
    let ready = wait_ready(&mut parts.workloads, &checks, PROXIES_READY, &stop).await;
    if let Err(e) = ready {
        parts.workloads.stop_all(STOP_GRACE).await;
        parts.control.stop_all(STOP_GRACE).await;
        return interrupted_is_ok(e, &say);
    }
    parts.state.save(dir)?;
    say(summary(&plan, dir));
    supervise(&mut parts, &opts, &stop, &say).await;
    say("stopping".to_string());
    parts.workloads.stop_all(STOP_GRACE).await;
    parts.control.stop_all(STOP_GRACE).await;
    let _ = std::fs::remove_file(super::state::file(dir));
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

fn add_app(parts: &mut Parts, p: &PodPlan) {
    let Some(app) = p.app else { return };
    if app == crate::apps::AppKind::Sleep {
        // sleep serves nothing: its pod exists for its sidecar, which `strait exec` uses.
        return;
    }
    for port in &p.ports {
        let args = vec![
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
        ];
        // An app reaches the mesh through its sidecar, as curl does through a proxy.
        let mut env = vec![
            ("NO_PROXY".to_string(), String::new()),
            ("no_proxy".to_string(), String::new()),
        ];
        if p.sidecar {
            let proxy = format!("http://{}", SocketAddr::new(p.ip, 15001));
            env.extend([
                ("HTTP_PROXY".to_string(), proxy.clone()),
                ("http_proxy".to_string(), proxy),
            ]);
        }
        parts.add(
            format!("{} app:{port}", p.key()),
            Role::App,
            p.key(),
            args,
            env,
        );
    }
}

fn initial_state(opts: &UpOptions, plan: &Plan) -> State {
    State {
        pid: std::process::id(),
        mesh: opts.mesh.clone(),
        clusters: plan
            .clusters
            .iter()
            .map(|c| ClusterState {
                name: c.name.clone(),
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
                ip: p.ip,
                app_ip: p.app_ip,
                app: p.app.map(|a| a.as_str().to_string()),
                ports: p.ports.clone(),
                sidecar: p.sidecar,
                proxy_pid: None,
                app_pids: Vec::new(),
            })
            .collect(),
    }
}

/// Fails early, naming the address, when another process holds one the plan needs (a mesh
/// already running on the same `--net`).
fn preflight(plan: &Plan) -> Result<(), UpError> {
    let mut addrs: Vec<SocketAddr> = plan
        .clusters
        .iter()
        .filter_map(|c| c.control_plane)
        .flat_map(|cp| [cp.grpc, cp.debug])
        .collect();
    for p in &plan.pods {
        if p.sidecar {
            // Admin, outbound, health, stats, then an inbound listener per port.
            let proxy = [15000, 15001, 15021, 15090]
                .into_iter()
                .chain(p.ports.iter().copied());
            addrs.extend(proxy.map(|port| SocketAddr::new(p.ip, port)));
        }
        if p.app.is_some_and(|a| a != crate::apps::AppKind::Sleep) {
            let ip = if p.sidecar { p.app_ip } else { p.ip };
            addrs.extend(p.ports.iter().map(|port| SocketAddr::new(ip, *port)));
        }
    }
    for addr in addrs.into_iter().filter(|a| a.port() != 0) {
        // Only "in use" is a collision; anything else the part itself reports when it starts.
        if let Err(e) = std::net::TcpListener::bind(addr)
            && e.kind() == std::io::ErrorKind::AddrInUse
        {
            return Err(UpError::Start(format!(
                "{addr} is not available ({e}); is another mesh running on this --net? pick another with --net"
            )));
        }
    }
    Ok(())
}

/// Takes the state directory for this run: checks it is private, locks it (held by the
/// returned file for the whole run, so a second `strait up` on the same directory cannot wipe
/// this one's keys while it starts), and removes what a previous run left (its pods, tokens
/// and certificates are stale).
fn clean(dir: &Path) -> Result<std::fs::File, UpError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UpError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    check_private(dir)?;
    let lock_path = dir.join("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(UpError::Start(format!(
                "another strait up is using state directory {} (it holds {}); stop it first or use --state",
                dir.display(),
                lock_path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
    }
    for sub in ["clusters", "pods", "certs"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(io(&p))?;
        }
    }
    Ok(lock)
}

/// The state directory holds keys and tokens, and often sits in a shared temporary
/// directory under a predictable name: it must be a real directory of this user's, closed to
/// others. One created in advance by another user is refused, not used.
fn check_private(dir: &Path) -> Result<(), UpError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let io = |source| UpError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let meta = std::fs::symlink_metadata(dir).map_err(io)?;
        if !meta.is_dir() {
            return Err(UpError::Start(format!(
                "state directory {} is not a directory (a symbolic link?); pick another with --state",
                dir.display()
            )));
        }
        let me = super::state::effective_uid(dir).map_err(io)?;
        if meta.uid() != me {
            return Err(UpError::Start(format!(
                "state directory {} belongs to another user (uid {}); pick one of your own with --state or STRAIT_STATE",
                dir.display(),
                meta.uid()
            )));
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

/// Polls each endpoint until it answers 200. Fails when the deadline passes (naming what is
/// not ready), when a part of `group` exits meanwhile (with its last output), or when `stop`
/// fires (Ctrl-C during startup).
async fn wait_ready(
    group: &mut Supervisor,
    checks: &[(String, SocketAddr, &'static str)],
    timeout: Duration,
    stop: &Stop,
) -> Result<(), UpError> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<(String, SocketAddr, &'static str)> = checks.to_vec();
    let poll = async {
        while !pending.is_empty() {
            if Instant::now() >= deadline {
                let names: Vec<&str> = pending.iter().map(|(n, _, _)| n.as_str()).collect();
                return Err(UpError::Start(format!(
                    "not ready after {}s: {}",
                    timeout.as_secs(),
                    names.join(", ")
                )));
            }
            let mut set = JoinSet::new();
            for (i, (_, addr, path)) in pending.iter().enumerate() {
                let (addr, path) = (*addr, *path);
                set.spawn(async move { (i, fetch::get(addr, path, Duration::from_secs(1)).await) });
            }
            let mut ready = Vec::new();
            while let Some(r) = set.join_next().await {
                if let Ok((i, Ok((StatusCode::OK, _)))) = r {
                    ready.push(i);
                }
            }
            ready.sort_unstable();
            for i in ready.into_iter().rev() {
                pending.remove(i);
            }
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    };
    tokio::select! {
        r = poll => r,
        Some(ex) = group.wait_any() => Err(UpError::Start(ex.to_string())),
        () = stop.wait() => Err(UpError::Interrupted),
    }
}

/// Restarts parts that exit, until `stop` fires.
async fn supervise(parts: &mut Parts, opts: &UpOptions, stop: &Stop, say: &Say) {
    let mut due: BTreeMap<Instant, Vec<String>> = BTreeMap::new();
    loop {
        let next = due.keys().next().copied();
        let exited = tokio::select! {
            () = stop.wait() => return,
            Some(ex) = parts.workloads.wait_any(), if !parts.workloads.is_empty() => ex,
            Some(ex) = parts.control.wait_any(), if !parts.control.is_empty() => ex,
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                let ready: Vec<Instant> = due.range(..=now).map(|(t, _)| *t).collect();
                for t in ready {
                    for name in due.remove(&t).unwrap_or_default() {
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

fn summary(plan: &Plan, dir: &Path) -> String {
    let mut out = String::from("mesh is up\n");
    for c in &plan.clusters {
        if let Some(cp) = c.control_plane {
            out.push_str(&format!(
                "  {}: control plane {} (debug http://{}/debug/syncz)\n",
                c.name, cp.grpc, cp.debug
            ));
        }
    }
    let width = plan.pods.iter().map(|p| p.key().len()).max().unwrap_or(0);
    out.push_str(&format!(
        "  {:width$}  {:<15} {:<10} {}\n",
        "POD", "ADDRESS", "SIDECAR", "APP"
    ));
    for p in &plan.pods {
        let app = match (p.app, p.ports.as_slice()) {
            (Some(a), []) | (Some(a @ crate::apps::AppKind::Sleep), _) => a.as_str().to_string(),
            (Some(a), ports) => format!(
                "{} :{}",
                a.as_str(),
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            (None, _) => "-".to_string(),
        };
        let sidecar = if p.sidecar { "ready" } else { "none" };
        out.push_str(&format!(
            "  {:width$}  {:<15} {:<10} {app}\n",
            p.key(),
            p.ip.to_string(),
            sidecar
        ));
    }
    out.push_str(&format!("state: {}\n", super::state::file(dir).display()));
    if let Some(example) = example_exec(plan) {
        out.push_str(&format!("try:   {example}\n"));
    }
    out.push_str("Ctrl-C stops everything.");
    out
}

/// A first command to try: a client workload calling a service in its cluster.
fn example_exec(plan: &Plan) -> Option<String> {
    let client = plan
        .pods
        .iter()
        .find(|p| p.sidecar && p.app == Some(crate::apps::AppKind::Sleep))
        .or_else(|| plan.pods.iter().find(|p| p.sidecar))?;
    let (server, (service, port)) = plan
        .pods
        .iter()
        .filter(|p| p.workload != client.workload && p.cluster == client.cluster)
        .find_map(|p| p.services.first().map(|s| (p, s)))?;
    let path = if server.app == Some(crate::apps::AppKind::Helloworld) {
        "/hello"
    } else {
        "/"
    };
    Some(format!(
        "strait exec {}/{}/{} -- curl -sS {service}:{port}{path}",
        client.cluster, client.namespace, client.workload
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn state_directory_is_private_and_must_be_ours() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let lock = clean(&dir).expect("our own directory");
        let e = clean(&dir).expect_err("locked by the first");
        assert!(e.to_string().contains("another strait up"), "{e}");
        drop(lock);
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        // A symbolic link planted where the directory should be is refused.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        assert!(clean(&link).is_err());

        // Another user's directory (only root can make one to test with).
        if std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).is_ok() {
            let e = clean(&dir).expect_err("someone else's directory");
            let _ = std::fs::remove_file(dir.join("lock"));
            assert!(e.to_string().contains("another user"), "{e}");
        }
    }
}
