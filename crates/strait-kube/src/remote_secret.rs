//! Remote secrets: the Secret that lets a control plane read another cluster's API server,
//! in istioctl's format (`istioctl create-remote-secret`), so strait's and Istio's control
//! planes both read it and either tool's output can be applied.
//!
//! The Secret, applied in `istio-system` of every cluster whose control plane must read
//! cluster `<name>`: name `istio-remote-secret-<name>`, label `istio/multiCluster: "true"` (what
//! control planes watch for), annotation `networking.istio.io/cluster: <name>` (for people; the
//! data key is what counts), and one `stringData` entry keyed by the cluster's name holding a
//! kubeconfig with the API server's address, its CA and a bearer token. Only a bearer token:
//! control planes refuse exec plugins, auth providers and file references in a remote secret
//! (anyone who can write Secrets in `istio-system` could otherwise run code or read files as
//! the control plane), so a kubeconfig that authenticates otherwise is refused here, before it
//! is applied and silently ignored.
//!
//! Reading the kubeconfig file and the token file is the caller's; this is pure.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::install::{NAMESPACE, yaml};

/// What to write.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The cluster's name in the mesh (its cluster ID).
    pub name: &'a str,
    /// The kubeconfig's text and where it came from (for messages).
    pub kubeconfig: &'a str,
    pub kubeconfig_path: &'a str,
    /// The context to use; `None`: the kubeconfig's current context.
    pub context: Option<&'a str>,
    /// The API server address other clusters should use, when the kubeconfig's is only
    /// reachable from here (a private endpoint, a tunnel, `127.0.0.1`).
    pub server: Option<&'a str>,
    /// A bearer token to use instead of the kubeconfig user's (typically the reader service
    /// account's).
    pub token: Option<&'a str>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RemoteSecretError {
    #[error(
        "--name {0:?}: a cluster name is a DNS label (lowercase letters, digits and '-', at most 63)"
    )]
    Name(String),
    #[error("{path}: not a kubeconfig: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: no context {context:?} (contexts: {available})")]
    NoContext {
        path: String,
        context: String,
        available: String,
    },
    #[error("{path}: no current-context; choose one with --context (contexts: {available})")]
    NoCurrentContext { path: String, available: String },
    #[error("{path}: context {context:?} names {what} {name:?}, which the file does not define")]
    Dangling {
        path: String,
        context: String,
        what: &'static str,
        name: String,
    },
    #[error(
        "{path}: cluster {cluster:?} has no server; give the API server's address with --server"
    )]
    NoServer { path: String, cluster: String },
    #[error(
        "{path}: cluster {cluster:?} reads its CA from a file ({file}), which a remote secret cannot carry; \
         flatten the kubeconfig first: kubectl config view --raw --flatten --minify > kubeconfig"
    )]
    CaFile {
        path: String,
        cluster: String,
        file: String,
    },
    #[error(
        "{path}: user {user:?} authenticates with {method}, and control planes accept only a bearer token \
         in a remote secret; pass the reader account's token with --token-file \
         (kubectl -n istio-system get secret istio-reader-service-account-token -o jsonpath='{{.data.token}}' | base64 -d > token)"
    )]
    NotBearer {
        path: String,
        user: String,
        method: String,
    },
    #[error("the token is empty")]
    EmptyToken,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Kubeconfig {
    clusters: Vec<Named<ClusterEntry>>,
    contexts: Vec<Named<ContextEntry>>,
    users: Vec<Named<UserEntry>>,
    #[serde(rename = "current-context")]
    current_context: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    body: T,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct ClusterEntry {
    server: String,
    certificate_authority_data: Option<String>,
    certificate_authority: Option<String>,
    tls_server_name: Option<String>,
    insecure_skip_tls_verify: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ContextEntry {
    cluster: String,
    user: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UserEntry {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    exec: Option<Value>,
    #[serde(rename = "auth-provider")]
    auth_provider: Option<Value>,
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-certificate")]
    client_certificate: Option<String>,
    username: Option<String>,
}

/// The Secret's name for cluster `name`.
pub fn secret_name(name: &str) -> String {
    format!("istio-remote-secret-{name}")
}

/// The remote secret for `req.name`, as a Kubernetes object.
pub fn create(req: &Request) -> Result<Value, RemoteSecretError> {
    if !strait_api::layout::is_dns_label(req.name) {
        return Err(RemoteSecretError::Name(req.name.to_string()));
    }
    let path = req.kubeconfig_path.to_string();
    let config = parse(req.kubeconfig, &path)?;
    let available = || {
        let names: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let context_name = match req.context {
        Some(c) => c.to_string(),
        None if config.current_context.is_empty() => {
            return Err(RemoteSecretError::NoCurrentContext {
                path,
                available: available(),
            });
        }
        None => config.current_context.clone(),
    };
    let Some(context) = config.contexts.iter().find(|c| c.name == context_name) else {
        return Err(RemoteSecretError::NoContext {
            path,
            context: context_name,
            available: available(),
        });
    };
    let dangling = |what, name: &str| RemoteSecretError::Dangling {
        path: path.clone(),
        context: context_name.clone(),
        what,
        name: name.to_string(),
    };
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.body.cluster)
        .ok_or_else(|| dangling("cluster", &context.body.cluster))?;
    let token = match req.token {
        Some(t) => t.trim().to_string(),
        None => {
            let user = config
                .users
                .iter()
                .find(|u| u.name == context.body.user)
                .ok_or_else(|| dangling("user", &context.body.user))?;
            bearer(&user.name, &user.body, &path)?
        }
    };
    if token.is_empty() {
        return Err(RemoteSecretError::EmptyToken);
    }
    let server = req.server.unwrap_or(&cluster.body.server);
    if server.is_empty() {
        return Err(RemoteSecretError::NoServer {
            path,
            cluster: cluster.name.clone(),
        });
    }
    let c = &cluster.body;
    let mut entry = json!({"server": server});
    match (&c.certificate_authority_data, &c.certificate_authority) {
        (Some(data), _) => entry["certificate-authority-data"] = json!(data),
        (None, Some(file)) => {
            return Err(RemoteSecretError::CaFile {
                path,
                cluster: cluster.name.clone(),
                file: file.clone(),
            });
        }
        (None, None) if c.insecure_skip_tls_verify => {
            entry["insecure-skip-tls-verify"] = json!(true);
        }
        (None, None) => {}
    }
    if let Some(sni) = &c.tls_server_name {
        entry["tls-server-name"] = json!(sni);
    }
    Ok(secret(req.name, &kubeconfig(req.name, entry, &token)))
}

/// The kubeconfig the secret carries: one cluster, one user, one context, all named after the
/// cluster, as istioctl writes it.
fn kubeconfig(name: &str, cluster: Value, token: &str) -> String {
    yaml::to_document(&json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
        "users": [{"name": name, "user": {"token": token}}],
    }))
}

fn secret(name: &str, kubeconfig: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(name),
            "namespace": NAMESPACE,
            "labels": {"istio/multiCluster": "true"},
            "annotations": {"networking.istio.io/cluster": name},
        },
        "stringData": {name: kubeconfig},
    })
}

fn parse(text: &str, path: &str) -> Result<Kubeconfig, RemoteSecretError> {
    let err = |message: String| RemoteSecretError::Parse {
        path: path.to_string(),
        message,
    };
    let parsed = strait_api::yaml::parse(text, strait_api::FileId(0), 0, 0);
    if let Some(e) = parsed.error {
        return Err(err(e.message.to_string()));
    }
    let doc = parsed
        .documents
        .first()
        .ok_or_else(|| err("the file is empty".into()))?;
    // Unknown fields (preferences, extensions) are kubeconfig's business, not errors here.
    match strait_api::de::from_node::<Kubeconfig>(doc) {
        (Some(k), _) => Ok(k),
        (None, issues) => Err(err(issues
            .first()
            .map(|i| format!("line {}: {}", i.pos.line, i.message))
            .unwrap_or_else(|| "not a mapping".into()))),
    }
}

/// The user's bearer token, or why there is none.
fn bearer(name: &str, user: &UserEntry, path: &str) -> Result<String, RemoteSecretError> {
    if let Some(t) = &user.token {
        return Ok(t.clone());
    }
    let method = if user.token_file.is_some() {
        "a token file (tokenFile)"
    } else if user.exec.is_some() {
        "an exec plugin (cloud CLIs such as aws or kubelogin do this)"
    } else if user.auth_provider.is_some() {
        "an auth provider"
    } else if user.client_certificate_data.is_some() || user.client_certificate.is_some() {
        "a client certificate"
    } else if user.username.is_some() {
        "a username and password"
    } else {
        "no credentials"
    };
    Err(RemoteSecretError::NotBearer {
        path: path.to_string(),
        user: name.to_string(),
        method: method.to_string(),
    })
}
