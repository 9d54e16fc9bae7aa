//! The strait path: `strait up` on a two-workload mesh (a client and an echo server, each
//! with its sidecar), STRICT mTLS, no access log.

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
    pub client: PodState,
    pub server: PodState,
    log: PathBuf,
}

impl StraitMesh {
    /// Writes the mesh under `dir` and brings it up on `127.<net>.0.0/16`.
    pub fn start(strait: &Path, dir: &Path, net: u8) -> anyhow::Result<StraitMesh> {
        let mesh = dir.join("mesh");
        let cluster = mesh.join("cluster1");
        std::fs::create_dir_all(&cluster)
            .with_context(|| format!("creating {}", cluster.display()))?;
        std::fs::write(mesh.join("mesh.yaml"), MESH_YAML)?;
        std::fs::write(cluster.join("istio-system.yaml"), CONTROL_PLANE)?;
        std::fs::write(cluster.join("bench.yaml"), WORKLOADS)?;
        let state_dir = dir.join("state");
        let log = dir.join("strait-up.log");
        let log_file = std::fs::File::create(&log)?;
        let mut child = Command::new(strait)
            .arg("up")
            .arg(&mesh)
            .arg("--state")
            .arg(&state_dir)
            .arg("--net")
            .arg(net.to_string())
            .arg("--lifeline")
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("running {} up", strait.display()))?;
        let lifeline = child.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(60);
        let state_file = state_dir.join("up.json");
        while !state_file.exists() {
            if let Some(status) = child.try_wait()? {
                bail!("strait up exited with {status}:\n{}", read(&log));
            }
            if Instant::now() > deadline {
                bail!("the mesh was not up after 60 s:\n{}", read(&log));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let state = State::load(&state_dir)?;
        let client = state.find_pod("cluster1/bench/client")?.clone();
        let server = state.find_pod("cluster1/bench/server")?.clone();
        Ok(StraitMesh {
            child,
            lifeline,
            state_dir,
            client,
            server,
            log,
        })
    }

    /// The echo app itself, bypassing both sidecars.
    pub fn app(&self) -> SocketAddr {
        SocketAddr::new(self.server.app_ip, SERVER_PORT)
    }

    /// The two sidecars' process ids (client, server).
    pub fn proxy_pids(&self) -> anyhow::Result<[u32; 2]> {
        match (self.client.proxy_pid, self.server.proxy_pid) {
            (Some(c), Some(s)) => Ok([c, s]),
            _ => bail!("the mesh state has no sidecar process ids"),
        }
    }

    /// The mesh's CA directory (Istio's cacerts layout).
    pub fn ca_dir(&self) -> PathBuf {
        self.state_dir.join("certs").join("cluster1")
    }

    pub fn log(&self) -> String {
        read(&self.log)
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
