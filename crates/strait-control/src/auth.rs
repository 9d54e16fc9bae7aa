//! Who is calling. A proxy proves itself with a bootstrap token for its first certificate and
//! with that certificate afterwards. Tokens are checked through [`Authenticator`]: locally a
//! table written by `strait up`; in Kubernetes the seam is a TokenReview against the API server
//! of the cluster the caller names (Istio's `ClusterID`).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

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
    #[error(
        "the caller says it is in cluster {cluster}, but no API server is known for it \
         (known: {}); a remote cluster needs a remote secret",
        .known.join(", ")
    )]
    UnknownCluster { cluster: String, known: Vec<String> },
    #[error("cannot review the token with the API server of cluster {cluster}: {reason}")]
    ReviewUnavailable { cluster: String, reason: String },
    #[error(
        "the API server of cluster {cluster} refused the TokenReview ({message}): the control \
         plane's service account there needs `create` on tokenreviews.authentication.k8s.io"
    )]
    ReviewForbidden { cluster: String, message: String },
    #[error("the API server of cluster {cluster} does not authenticate the token: {reason}")]
    NotAuthenticated { cluster: String, reason: String },
    #[error(
        "the token from cluster {cluster} is for audiences [{}], not {wanted}",
        .audiences.join(", ")
    )]
    WrongAudience {
        cluster: String,
        audiences: Vec<String>,
        wanted: String,
    },
    #[error(
        "the token from cluster {cluster} belongs to {username}, not a service account \
         (system:serviceaccount:<namespace>:<name>)"
    )]
    NotServiceAccount { cluster: String, username: String },
}

impl AuthError {
    /// Whether the same credential may succeed later: the verifier could not decide, as
    /// opposed to deciding against the caller.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            AuthError::ReviewUnavailable { .. }
                | AuthError::ReviewForbidden { .. }
                | AuthError::UnknownCluster { .. }
                | AuthError::File { .. }
        )
    }
}

pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Caller, AuthError>> + Send + 'a>>;

/// Checks a bearer token presented with the caller's cluster ID.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    fn authenticate<'a>(&'a self, token: &'a str, cluster: &'a str) -> AuthFuture<'a>;
}

/// Where the control plane checks bootstrap tokens.
#[derive(Clone, Debug)]
pub enum Tokens {
    /// A token table written by `strait up` (local mode), read with [`StaticTokens`].
    File(PathBuf),
    /// Any other verifier; in Kubernetes mode a TokenReview against the API server of the
    /// cluster the caller names.
    Review(Arc<dyn Authenticator>),
}

impl Tokens {
    /// The verifier these tokens are checked with; a token file is read now.
    pub fn authenticator(&self) -> Result<Arc<dyn Authenticator>, AuthError> {
        match self {
            Tokens::File(path) => Ok(Arc::new(StaticTokens::load(path)?)),
            Tokens::Review(a) => Ok(a.clone()),
        }
    }
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
