//! Clients for the API servers strait reads: its own cluster's (in a pod: the service
//! account's; from a workstation: a kubeconfig context), and other clusters' through the
//! kubeconfigs of remote secrets.
//!
//! [`Clusters`] holds one client per cluster ID. The remote-secret watcher adds and removes
//! entries; token review, the root-certificate writer and the source look them up by the
//! cluster a caller names.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("in-cluster configuration: {0} (is this running in a pod with a service account?)")]
    InCluster(String),
    #[error("{origin}: {message}")]
    Kubeconfig { origin: String, message: String },
    #[error(
        "{origin}: the kubeconfig authenticates with {what}; a remote secret may carry only a bearer token"
    )]
    Refused { origin: String, what: &'static str },
    #[error("{origin}: cannot build a client: {message}")]
    Build { origin: String, message: String },
}

/// A client for the cluster this process runs in (the pod's service account).
pub fn in_cluster() -> Result<Client, ClientError> {
    let config = kube::Config::incluster().map_err(|e| ClientError::InCluster(e.to_string()))?;
    Client::try_from(config).map_err(|e| ClientError::Build {
        origin: "in-cluster configuration".into(),
        message: e.to_string(),
    })
}

/// A client for `context` (the current context when `None`) of a kubeconfig file, as
/// `kubectl --kubeconfig FILE --context NAME` would use it. Exec plugins are allowed here: the
/// file is the operator's own.
pub async fn from_kubeconfig_file(
    path: &Path,
    context: Option<&str>,
) -> Result<Client, ClientError> {
    let origin = match context {
        Some(c) => format!("{} (context {c})", path.display()),
        None => path.display().to_string(),
    };
    let config = Kubeconfig::read_from(path).map_err(|e| ClientError::Kubeconfig {
        origin: origin.clone(),
        message: e.to_string(),
    })?;
    build(config, context, origin).await
}

/// A client from a remote secret's kubeconfig. Only bearer tokens and inline certificates are
/// accepted: anyone who can write Secrets in the Istio namespace could otherwise make the
/// control plane run a program or read a file (Istio refuses the same).
pub async fn from_remote_secret(text: &str, origin: &str) -> Result<Client, ClientError> {
    let config = Kubeconfig::from_yaml(text).map_err(|e| ClientError::Kubeconfig {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    for user in &config.auth_infos {
        let Some(auth) = &user.auth_info else {
            continue;
        };
        let refused = if auth.exec.is_some() {
            Some("an exec plugin")
        } else if auth.auth_provider.is_some() {
            Some("an auth provider")
        } else if auth.token_file.is_some()
            || auth.client_certificate.is_some()
            || auth.client_key.is_some()
        {
            Some("a file on the control plane's disk")
        } else {
            None
        };
        if let Some(what) = refused {
            return Err(ClientError::Refused {
                origin: origin.to_string(),
                what,
            });
        }
    }
    if config
        .clusters
        .iter()
        .filter_map(|c| c.cluster.as_ref())
        .any(|c| c.certificate_authority.is_some())
    {
        return Err(ClientError::Refused {
            origin: origin.to_string(),
            what: "a CA file on the control plane's disk",
        });
    }
    build(config, None, origin.to_string()).await
}

async fn build(
    config: Kubeconfig,
    context: Option<&str>,
    origin: String,
) -> Result<Client, ClientError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(config, &options)
        .await
        .map_err(|e| ClientError::Kubeconfig {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
    Client::try_from(config).map_err(|e| ClientError::Build {
        origin,
        message: e.to_string(),
    })
}

/// One client per cluster ID: the own cluster's, and one per remote secret that is in force.
/// Cheap to clone; every clone sees the same table.
#[derive(Clone, Default)]
pub struct Clusters {
    inner: Arc<RwLock<BTreeMap<String, Client>>>,
}

impl std::fmt::Debug for Clusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clusters")
            .field("clusters", &self.names())
            .finish()
    }
}

impl Clusters {
    /// A table holding only the own cluster's client.
    pub fn new(own: &str, client: Client) -> Clusters {
        let c = Clusters::default();
        c.insert(own, client);
        c
    }

    pub fn get(&self, cluster: &str) -> Option<Client> {
        self.read().get(cluster).cloned()
    }

    pub fn insert(&self, cluster: &str, client: Client) {
        self.write().insert(cluster.to_string(), client);
    }

    pub fn remove(&self, cluster: &str) -> Option<Client> {
        self.write().remove(cluster)
    }

    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Client>> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Client>> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
