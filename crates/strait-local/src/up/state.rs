//! The state file of a running local mesh (`up.json`): what `strait exec`, `proxy-config`
//! and `proxy-status` need to find pods, sidecars and control planes. Written by `strait up`
//! when the mesh is ready and after every restart of a part; removed when it stops.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::UpError;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// The supervisor's process ID.
    pub pid: u32,
    /// What was brought up.
    pub mesh: PathBuf,
    /// How networks are kept apart.
    #[serde(default)]
    pub mode: super::plan::Mode,
    #[serde(default)]
    pub networks: Vec<NetworkState>,
    pub clusters: Vec<ClusterState>,
    pub pods: Vec<PodState>,
    #[serde(default)]
    pub load_balancers: Vec<LbState>,
    /// Namespace mode: where clients outside the mesh stand (the link between networks).
    #[serde(default)]
    pub public_netns: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkState {
    pub name: String,
    pub ranges: Vec<String>,
    /// Namespace mode: the network's namespace.
    pub netns: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterState {
    pub name: String,
    #[serde(default)]
    pub network: String,
    /// The cluster whose control plane serves this one.
    pub control_plane_of: String,
    pub control_plane: Option<ControlPlaneState>,
}

/// A load balancer and its public address.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LbState {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub network: String,
    pub address: IpAddr,
    /// Service ports.
    pub ports: Vec<u16>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ControlPlaneState {
    pub grpc: SocketAddr,
    pub debug: SocketAddr,
    pub pid: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PodState {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub workload: String,
    pub service_account: String,
    #[serde(default)]
    pub network: String,
    pub ip: IpAddr,
    pub app_ip: IpAddr,
    pub app: Option<String>,
    pub ports: Vec<u16>,
    /// The pod runs a proxy (`gateway`: the proxy is the gateway itself).
    pub sidecar: bool,
    #[serde(default)]
    pub gateway: bool,
    /// Namespace mode: the namespace of the pod's network.
    #[serde(default)]
    pub netns: Option<String>,
    pub proxy_pid: Option<u32>,
    pub app_pids: Vec<u32>,
}

impl PodState {
    /// `<cluster>/<namespace>/<pod>`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.cluster, self.namespace, self.name)
    }

    /// The sidecar's outbound proxy (`HTTP_PROXY`).
    pub fn outbound(&self) -> SocketAddr {
        SocketAddr::new(self.ip, 15001)
    }

    /// The sidecar's admin endpoint.
    pub fn admin(&self) -> SocketAddr {
        SocketAddr::new(self.ip, 15000)
    }

    /// Where to open connections to the pod from: its network's namespace, if any.
    pub fn vantage(&self) -> strait_net::netns::Vantage {
        match &self.netns {
            Some(ns) => strait_net::netns::Vantage::In(strait_net::netns::Netns::named(ns.clone())),
            None => strait_net::netns::Vantage::Here,
        }
    }
}

impl State {
    /// Where a client outside the mesh connects from: the link between the networks in
    /// namespace mode, this host otherwise.
    pub fn outside(&self) -> strait_net::netns::Vantage {
        match &self.public_netns {
            Some(ns) => strait_net::netns::Vantage::In(strait_net::netns::Netns::named(ns.clone())),
            None => strait_net::netns::Vantage::Here,
        }
    }

    /// Where to reach the control plane of `cluster` from.
    pub fn vantage_of_cluster(&self, cluster: &str) -> strait_net::netns::Vantage {
        let network = self
            .clusters
            .iter()
            .find(|c| c.name == cluster)
            .map(|c| c.network.as_str())
            .unwrap_or("");
        match self
            .networks
            .iter()
            .find(|n| n.name == network)
            .and_then(|n| n.netns.clone())
        {
            Some(ns) => strait_net::netns::Vantage::In(strait_net::netns::Netns::named(ns)),
            None => strait_net::netns::Vantage::Here,
        }
    }
}

/// The default state directory: `$STRAIT_STATE`, else `<tmp>/strait-<user>`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STRAIT_STATE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let user = std::env::var("USER")
        .ok()
        .filter(|u| {
            !u.is_empty()
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .unwrap_or_else(|| "user".into());
    std::env::temp_dir().join(format!("strait-{user}"))
}

/// The state file tells `exec` where to send a command's traffic and tokens live next to it:
/// one written by another user (a planted file in a shared temporary directory) is refused.
fn check_owner(path: &Path) -> Result<(), UpError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let io = |source| UpError::Io {
            path: path.to_path_buf(),
            source,
        };
        let owner = std::fs::metadata(path).map_err(io)?.uid();
        let me = effective_uid(path.parent().unwrap_or(Path::new("."))).map_err(io)?;
        if owner != me {
            return Err(UpError::State {
                path: path.to_path_buf(),
                reason: format!(
                    "written by another user (uid {owner}); not trusted. Pass --state with your own mesh's directory"
                ),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// This process's effective user: the owner of `/proc/self` on Linux, elsewhere the owner of
/// a file it creates in `scratch` (then removes).
#[cfg(unix)]
pub(crate) fn effective_uid(scratch: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata("/proc/self") {
        return Ok(meta.uid());
    }
    let probe = scratch.join(".owner");
    let _ = std::fs::remove_file(&probe);
    std::fs::write(&probe, b"")?;
    let uid = std::fs::metadata(&probe)?.uid();
    let _ = std::fs::remove_file(&probe);
    Ok(uid)
}

pub fn file(dir: &Path) -> PathBuf {
    dir.join("up.json")
}

impl State {
    pub fn save(&self, dir: &Path) -> Result<(), UpError> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| UpError::Internal(e.to_string()))?;
        super::files::write(&file(dir), &text)
    }

    /// Reads the state of the mesh running with state directory `dir`.
    pub fn load(dir: &Path) -> Result<State, UpError> {
        let path = file(dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                UpError::NotRunning(dir.to_path_buf())
            } else {
                UpError::Io {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        check_owner(&path)?;
        let state: State = serde_json::from_str(&text).map_err(|e| UpError::State {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if !process_alive(state.pid) {
            return Err(UpError::NotRunning(dir.to_path_buf()));
        }
        Ok(state)
    }

    /// The pod a target names: `<cluster>/<namespace>/<workload or pod>`; for a workload,
    /// its first replica.
    pub fn find_pod(&self, target: &str) -> Result<&PodState, UpError> {
        let parts: Vec<&str> = target.split('/').collect();
        let [cluster, namespace, name] = parts.as_slice() else {
            return Err(UpError::Target {
                target: target.to_string(),
                reason: "expected <cluster>/<namespace>/<workload or pod>".into(),
            });
        };
        let in_ns = || {
            self.pods
                .iter()
                .filter(|p| p.cluster == *cluster && p.namespace == *namespace)
        };
        in_ns()
            .find(|p| p.name == *name)
            .or_else(|| in_ns().find(|p| p.workload == *name))
            .ok_or_else(|| {
                let mut known: Vec<String> = in_ns().map(|p| p.workload.clone()).collect();
                known.dedup();
                UpError::Target {
                    target: target.to_string(),
                    reason: if known.is_empty() {
                        format!("no pods in {cluster}/{namespace}")
                    } else {
                        format!(
                            "no such workload or pod; {cluster}/{namespace} has {}",
                            known.join(", ")
                        )
                    },
                }
            })
    }
}

/// Whether process `pid` runs (Linux: its /proc entry, not a zombie).
pub fn process_alive(pid: u32) -> bool {
    // A zombie has exited; only its parent has not collected it yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_of_another_user_is_not_trusted() {
        let dir = tempfile::tempdir().expect("tmp");
        let state = State {
            pid: std::process::id(),
            mesh: PathBuf::from("/mesh"),
            mode: super::super::plan::Mode::Loopback,
            networks: Vec::new(),
            clusters: Vec::new(),
            pods: Vec::new(),
            load_balancers: Vec::new(),
            public_netns: None,
        };
        state.save(dir.path()).expect("save");
        assert_eq!(State::load(dir.path()).expect("ours").pid, state.pid);
        // Only root can hand the file to someone else to test with.
        #[cfg(target_os = "linux")]
        if std::os::unix::fs::chown(file(dir.path()), Some(65534), None).is_ok() {
            let e = State::load(dir.path()).expect_err("someone else's");
            assert!(e.to_string().contains("another user"), "{e}");
        }
    }
}
