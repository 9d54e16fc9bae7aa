//! Who is calling. A proxy proves itself with a bootstrap token for its first certificate and
//! with that certificate afterwards. Tokens are checked through [`Authenticator`]: locally a
//! table written by `strait up`; in Kubernetes the seam is a TokenReview against the API server
//! of the cluster the caller names (Istio's `ClusterID`).

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// An authenticated workload identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub cluster: String,
    pub namespace: String,
    pub service_account: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credential: send a bootstrap token or a mesh certificate")]
    Missing,
    #[error("unknown or revoked token")]
    UnknownToken,
    #[error("the token belongs to cluster {token}, but the caller says {claimed}")]
    WrongCluster { token: String, claimed: String },
    #[error("token file {path}: {reason}")]
    File { path: String, reason: String },
}

pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Caller, AuthError>> + Send + 'a>>;

/// Checks a bearer token presented with the caller's cluster ID.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    fn authenticate<'a>(&'a self, token: &'a str, cluster: &'a str) -> AuthFuture<'a>;
}

/// Tokens issued by `strait up`: one per workload, in a JSON file (`{"<token>": Caller}`).
/// The file is read again whenever it changes, so pods started while the mesh runs (a
/// Deployment scaled up) can authenticate; a file that does not parse keeps the tokens read
/// before.
#[derive(Debug, Default)]
pub struct StaticTokens {
    path: Option<std::path::PathBuf>,
    state: std::sync::Mutex<TokenState>,
}

#[derive(Debug, Default)]
struct TokenState {
    tokens: HashMap<String, Caller>,
    /// Size and modification time of the file when last read.
    read: Option<(u64, Option<std::time::SystemTime>)>,
}

fn file_stamp(path: &Path) -> Option<(u64, Option<std::time::SystemTime>)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()))
}

fn read_tokens(path: &Path) -> Result<HashMap<String, Caller>, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|e| AuthError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| AuthError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

impl StaticTokens {
    pub fn load(path: &Path) -> Result<StaticTokens, AuthError> {
        let read = file_stamp(path);
        let tokens = read_tokens(path)?;
        Ok(StaticTokens {
            path: Some(path.to_path_buf()),
            state: std::sync::Mutex::new(TokenState { tokens, read }),
        })
    }

    pub fn from_map(tokens: HashMap<String, Caller>) -> StaticTokens {
        StaticTokens {
            path: None,
            state: std::sync::Mutex::new(TokenState { tokens, read: None }),
        }
    }

    fn lookup(&self, token: &str) -> Option<Caller> {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(path) = &self.path {
            let now = file_stamp(path);
            if now != st.read {
                match read_tokens(path) {
                    Ok(t) => {
                        st.tokens = t;
                        st.read = now;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "tokens not reloaded; keeping the previous ones")
                    }
                }
            }
        }
        st.tokens.get(token).cloned()
    }
}

impl Authenticator for StaticTokens {
    fn authenticate<'a>(&'a self, token: &'a str, cluster: &'a str) -> AuthFuture<'a> {
        Box::pin(async move {
            let caller = self.lookup(token).ok_or(AuthError::UnknownToken)?;
            if !cluster.is_empty() && caller.cluster != cluster {
                return Err(AuthError::WrongCluster {
                    token: caller.cluster.clone(),
                    claimed: cluster.to_string(),
                });
            }
            Ok(caller)
        })
    }
}
