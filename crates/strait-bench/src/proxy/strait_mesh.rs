//! The strait path: `strait up` on a two-workload mesh (a client and an echo server, each
//! with its sidecar), optionally with many extra services for the proxies to hold.
//!
//! The proxies do their full job: mesh-wide STRICT mTLS (a PeerAuthentication in the root
//! namespace), Istio's standard metrics (strait's sidecars always record them), and no access
//! log (Istio's default: the IstioOperator sets no `accessLogFile`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use strait_local::up::state::{PodState, State};

/// The echo server's port (and its Service's).
pub const SERVER_PORT: u16 = 8080;
/// The Host header that names the server.
pub const SERVER_HOST: &str = "server.bench:8080";

const MESH_YAML: &str = "meshID: bench\ntrustDomain: cluster.local\nclusters:\n- name: cluster1\n  network: network1\n  role: primary\n";

const CONTROL_PLANE: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata:
  name: cluster1
  namespace: istio-system
spec:
  values:
    global:
      meshID: bench
      multiCluster:
        clusterName: cluster1
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
"#;

const WORKLOADS: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: bench
  labels:
    istio-injection: enabled
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: client
  namespace: bench
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: server
  namespace: bench
---
apiVersion: v1
kind: Service
metadata:
  name: server
  namespace: bench
spec:
  selector:
    app: server
  ports:
  - name: http
    port: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: server
  namespace: bench
spec:
  selector:
    matchLabels: {app: server}
  template:
    metadata:
      labels: {app: server}
    spec:
      serviceAccountName: server
      containers:
      - name: echo
        image: hashicorp/http-echo
        ports:
        - containerPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: client
  namespace: bench
spec:
  selector:
    matchLabels: {app: client}
  template:
    metadata:
      labels: {app: client}
    spec:
      serviceAccountName: client
      containers:
      - name: sleep
        image: curlimages/curl
"#;

/// A running `strait up` of the benchmark mesh. Dropping it stops the mesh.
#[derive(Debug)]
pub struct StraitMesh {
    child: Child,
    lifeline: Option<ChildStdin>,
    pub state_dir: PathBuf,
    cluster_dir: PathBuf,
    log: PathBuf,
    /// From starting `strait up` to every proxy ready (its state file written).
    pub up_in: Duration,
}

impl StraitMesh {
    /// Writes the mesh under `dir`, with `extra` manifests (more services) beside the two
    /// workloads, and brings it up on `127.<net>.0.0/16`.
    pub fn start(strait: &Path, dir: &Path, net: u8, extra: &str) -> anyhow::Result<StraitMesh> {
        let mesh = dir.join("mesh");
        let cluster = mesh.join("cluster1");
        std::fs::create_dir_all(&cluster)
            .with_context(|| format!("creating {}", cluster.display()))?;
        std::fs::write(mesh.join("mesh.yaml"), MESH_YAML)?;
        std::fs::write(cluster.join("istio-system.yaml"), CONTROL_PLANE)?;
        std::fs::write(cluster.join("bench.yaml"), WORKLOADS)?;
        if !extra.is_empty() {
            std::fs::write(cluster.join("extra.yaml"), extra)?;
        }
        let state_dir = dir.join("state");
        let log = dir.join("strait-up.log");
        let log_file = std::fs::File::create(&log)?;
        let started = Instant::now();
        let mut child = Command::new(strait)
            .arg("up")
            .arg(&mesh)
            .arg("--state")
            .arg(&state_dir)
            .arg("--net")
            .arg(net.to_string())
            // The scale scenario restarts a sidecar to time its readiness.
            .args(["--restart-delay", "100ms"])
            .arg("--lifeline")
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("running {} up", strait.display()))?;
        let lifeline = child.stdin.take();
        let deadline = started + Duration::from_secs(120);
        let state_file = strait_local::up::state::file(&state_dir);
        while !state_file.exists() {
            if let Some(status) = child.try_wait()? {
                bail!("strait up exited with {status}:\n{}", read(&log));
            }
            if Instant::now() > deadline {
                bail!("the mesh was not up after 120 s:\n{}", read(&log));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let up_in = started.elapsed();
        let m = StraitMesh {
            child,
            lifeline,
            state_dir,
            cluster_dir: cluster,
            log,
            up_in,
        };
        // Fail early if the state lacks what the benchmark needs.
        m.proxy_pids()?;
        m.app_pid()?;
        Ok(m)
    }

    /// The state as `strait up` last wrote it (it rewrites it when a part restarts).
    pub fn state(&self) -> anyhow::Result<State> {
        Ok(State::load(&self.state_dir)?)
    }

    /// The client and server pods.
    pub fn pods(&self) -> anyhow::Result<(PodState, PodState)> {
        let state = self.state()?;
        let client = state.find_pod("cluster1/bench/client")?.clone();
        let server = state.find_pod("cluster1/bench/server")?.clone();
        Ok((client, server))
    }

    /// Where the load generator connects: the client sidecar's outbound listener.
    pub fn entry(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.pods()?.0.outbound())
    }

    /// The two sidecars' process ids (client, server).
    pub fn proxy_pids(&self) -> anyhow::Result<[u32; 2]> {
        let (c, s) = self.pods()?;
        match (c.proxy_pid, s.proxy_pid) {
            (Some(c), Some(s)) => Ok([c, s]),
            _ => bail!("the mesh state has no sidecar process ids (a sidecar restarting?)"),
        }
    }

    /// The sidecars' admin addresses (client, server), for `/config_dump`.
    pub fn admins(&self) -> anyhow::Result<[SocketAddr; 2]> {
        let (c, s) = self.pods()?;
        Ok([c.admin(), s.admin()])
    }

    /// The echo app behind the server sidecar.
    pub fn app_pid(&self) -> anyhow::Result<u32> {
        let (_, s) = self.pods()?;
        s.app_pids
            .first()
            .copied()
            .context("the mesh state has no process id for the server's app")
    }

    /// The control plane's debug address (`/debug/syncz`).
    pub fn control_plane_debug(&self) -> anyhow::Result<SocketAddr> {
        self.state()?
            .clusters
            .iter()
            .find_map(|c| c.control_plane.as_ref().map(|cp| cp.debug))
            .context("the mesh state has no control plane")
    }

    /// Writes (or replaces) a manifest file in the cluster's directory: a live change the
    /// control plane picks up and pushes.
    pub fn write_manifest(&self, name: &str, yaml: &str) -> anyhow::Result<()> {
        let path = self.cluster_dir.join(name);
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))
    }

    /// The mesh's CA directory (Istio's cacerts layout).
    pub fn ca_dir(&self) -> PathBuf {
        self.state_dir.join("certs").join("cluster1")
    }

    /// The end of `strait up`'s log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = read(&self.log);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for StraitMesh {
    fn drop(&mut self) {
        // Closing the lifeline stops `strait up`, which stops everything it started.
        super::procs::stop_child(&mut self.child, &mut self.lifeline, Duration::from_secs(15));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
