//! `strait up`: a whole mesh on this machine. Reads the mesh like the control plane does,
//! plans pods and addresses ([`plan`]), writes what each part needs ([`files`]), then starts
//! and supervises the parts ([`supervise`]): control planes first, then apps, then sidecars,
//! and restarts any that exits, as a kubelet restarts containers.

mod checks;
pub mod files;
pub mod netns;
mod parts;
pub mod plan;
mod reconcile;
pub mod state;
mod summary;
mod supervise;

use std::path::PathBuf;
use std::time::Duration;

pub use checks::private_dir;
pub use supervise::{Say, run};

/// How to bring a mesh up.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// The mesh directory (or one cluster's files).
    pub mesh: PathBuf,
    /// Where runtime files and `up.json` go.
    pub state_dir: PathBuf,
    /// Second octet of the loopback range used (`127.<net>.0.0/16`).
    pub net: u8,
    /// How networks are kept apart: address discipline on one loopback, or a network
    /// namespace per network.
    pub mode: plan::Mode,
    /// Lifetime of workload certificates (zero: the CA's default, 24 h).
    pub cert_ttl: Duration,
    /// Delay before restarting a part that exited; doubles on repeated failures.
    pub restart_delay: Duration,
    /// The `strait` executable that runs each part.
    pub program: PathBuf,
    /// `STRAIT_LOG` for the parts.
    pub log: String,
    /// Let the proxies write access logs when the mesh config asks for them (`false` for a
    /// tour that keeps the terminal for its own story).
    pub access_logs: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("the mesh has errors:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(
        "a mesh is already running with state directory {dir} (strait up, pid {pid}); stop it first or use --state"
    )]
    AlreadyRunning { dir: PathBuf, pid: u32 },
    #[error(
        "no mesh is running with state directory {0} (start one with `strait up DIR`, or pass the same --state)"
    )]
    NotRunning(PathBuf),
    #[error("{path}: {reason}")]
    State { path: PathBuf, reason: String },
    #[error("{target}: {reason}")]
    Target { target: String, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificates: {0}")]
    Ca(#[from] strait_ca::Error),
    #[error(transparent)]
    Spawn(#[from] crate::process::SpawnError),
    #[error("{0}")]
    Start(String),
    /// Stopped (Ctrl-C, SIGTERM, lifeline) before the mesh was up.
    #[error("stopped while starting")]
    Interrupted,
    #[error("internal error: {0}")]
    Internal(String),
}
