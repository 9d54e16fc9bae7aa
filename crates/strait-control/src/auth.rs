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
#[derive(Debug, Default)]
pub struct StaticTokens {
    tokens: HashMap<String, Caller>,
}

impl StaticTokens {
    pub fn load(path: &Path) -> Result<StaticTokens, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|e| AuthError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let tokens = serde_json::from_str(&text).map_err(|e| AuthError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(StaticTokens { tokens })
    }

    pub fn from_map(tokens: HashMap<String, Caller>) -> StaticTokens {
        StaticTokens { tokens }
    }
}

impl Authenticator for StaticTokens {
    fn authenticate<'a>(&'a self, token: &'a str, cluster: &'a str) -> AuthFuture<'a> {
        Box::pin(async move {
            let caller = self.tokens.get(token).ok_or(AuthError::UnknownToken)?;
            if !cluster.is_empty() && caller.cluster != cluster {
                return Err(AuthError::WrongCluster {
                    token: caller.cluster.clone(),
                    claimed: cluster.to_string(),
                });
            }
            Ok(caller.clone())
        })
    }
}
