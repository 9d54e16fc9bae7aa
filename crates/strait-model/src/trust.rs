//! Trust material found in manifests: the plug-in CA (`cacerts` Secret, Istio's layout) and
//! remote secrets (kubeconfigs that let one control plane read another cluster).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use x509_parser::prelude::*;

use crate::ids::{ClusterId, ObjId};

/// A certificate, reduced to what checks and messages need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    pub der: Vec<u8>,
}

impl CertInfo {
    /// `subject (serial ab:cd:..)`, for messages.
    pub fn describe(&self) -> String {
        let serial: String = self.serial.chars().take(23).collect();
        format!("\"{}\" (serial {serial})", self.subject)
    }
}

/// The `cacerts` Secret of one cluster, decoded.
#[derive(Clone, Debug)]
pub struct CaBundle {
    pub cluster: ClusterId,
    pub object: ObjId,
    /// `root-cert.pem` (several roots make a trust bundle).
    pub roots: Vec<CertInfo>,
    /// `ca-cert.pem`: the intermediate that signs workload certificates.
    pub ca_cert: Option<CertInfo>,
    /// `cert-chain.pem`.
    pub chain: Vec<CertInfo>,
    pub has_key: bool,
    /// Whether `ca-cert.pem` verifies against one of the roots (directly or through the chain).
    pub chains_to_root: Option<bool>,
    /// `(data key, problem)`.
    pub problems: Vec<(String, String)>,
}

/// Secret data with `stringData` applied on top of `data`, as the API server merges them.
pub fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.as_bytes().to_vec());
    }
    out
}

fn parse_pem_certs(bytes: &[u8]) -> Result<Vec<CertInfo>, String> {
    let mut out = Vec::new();
    for pem in Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| format!("not PEM: {e}"))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        let (_, cert) = X509Certificate::from_der(&pem.contents)
            .map_err(|e| format!("certificate does not parse: {e}"))?;
        out.push(CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            der: pem.contents.clone(),
        });
    }
    if out.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(out)
}

fn verifies(cert: &CertInfo, issuer: &CertInfo) -> bool {
    let (Ok((_, c)), Ok((_, i))) = (
        X509Certificate::from_der(&cert.der),
        X509Certificate::from_der(&issuer.der),
    ) else {
        return false;
    };
    c.verify_signature(Some(i.public_key())).is_ok()
}

/// Decodes a `cacerts` Secret in Istio's layout (or the `kubernetes.io/tls` one).
pub fn ca_bundle(cluster: ClusterId, object: ObjId, secret: &Secret) -> CaBundle {
    let data = secret_data(secret);
    let tls_layout = data.contains_key("tls.crt");
    let (ca_key, root_key, key_key) = if tls_layout {
        ("tls.crt", "ca.crt", "tls.key")
    } else {
        ("ca-cert.pem", "root-cert.pem", "ca-key.pem")
    };
    let mut b = CaBundle {
        cluster,
        object,
        roots: Vec::new(),
        ca_cert: None,
        chain: Vec::new(),
        has_key: data.contains_key(key_key),
        chains_to_root: None,
        problems: Vec::new(),
    };
    for key in [ca_key, root_key, key_key] {
        if !data.contains_key(key) {
            b.problems.push((key.to_string(), "is missing".to_string()));
        }
    }
    if let Some(bytes) = data.get(root_key) {
        match parse_pem_certs(bytes) {
            Ok(c) => b.roots = c,
            Err(e) => b.problems.push((root_key.to_string(), e)),
        }
    }
    if let Some(bytes) = data.get(ca_key) {
        match parse_pem_certs(bytes) {
            Ok(mut c) => b.ca_cert = Some(c.remove(0)),
            Err(e) => b.problems.push((ca_key.to_string(), e)),
        }
    }
    if let Some(bytes) = data.get("cert-chain.pem") {
        match parse_pem_certs(bytes) {
            Ok(c) => b.chain = c,
            Err(e) => b.problems.push(("cert-chain.pem".to_string(), e)),
        }
    }
    if let Some(ca) = &b.ca_cert
        && !b.roots.is_empty()
    {
        let mut candidates: Vec<&CertInfo> = b.roots.iter().collect();
        candidates.extend(b.chain.iter());
        let direct = b.roots.iter().any(|r| verifies(ca, r));
        let via_chain = b
            .chain
            .iter()
            .any(|i| i.der != ca.der && verifies(ca, i) && b.roots.iter().any(|r| verifies(i, r)));
        let self_root = b.roots.iter().any(|r| r.der == ca.der);
        b.chains_to_root = Some(direct || via_chain || self_root);
    }
    b
}

/// One cluster a remote secret gives access to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteCluster {
    /// The data key: istiod uses it as the cluster ID.
    pub cluster_id: String,
    /// The API server address from the kubeconfig, if it parsed.
    pub server: Option<String>,
    pub problem: Option<String>,
}

/// A Secret labelled `istio/multiCluster=true`.
#[derive(Clone, Debug)]
pub struct RemoteSecret {
    /// Where it is applied (the cluster whose control plane reads it).
    pub cluster: ClusterId,
    pub object: ObjId,
    pub clusters: Vec<RemoteCluster>,
}

pub fn is_remote_secret(labels: &BTreeMap<String, String>) -> bool {
    labels.get("istio/multiCluster").map(String::as_str) == Some("true")
}

pub fn remote_secret(cluster: ClusterId, object: ObjId, secret: &Secret) -> RemoteSecret {
    let clusters = secret_data(secret)
        .into_iter()
        .map(|(key, bytes)| {
            let (server, problem) = match String::from_utf8(bytes) {
                Ok(text) => kubeconfig_server(&text),
                Err(_) => (None, Some("the kubeconfig is not UTF-8".to_string())),
            };
            RemoteCluster {
                cluster_id: key,
                server,
                problem,
            }
        })
        .collect();
    RemoteSecret {
        cluster,
        object,
        clusters,
    }
}

/// The current context's server of a kubeconfig (the first cluster's when no context).
fn kubeconfig_server(text: &str) -> (Option<String>, Option<String>) {
    let parsed = strait_api::yaml::parse(text, strait_api::FileId(u32::MAX), 0, 0);
    if let Some(e) = parsed.error {
        return (
            None,
            Some(format!("the kubeconfig is not valid YAML: {}", e.message)),
        );
    }
    let Some(doc) = parsed.documents.first() else {
        return (None, Some("the kubeconfig is empty".into()));
    };
    let (value, _) = strait_api::de::from_node::<serde_json::Value>(doc);
    let Some(v) = value else {
        return (None, Some("the kubeconfig could not be read".into()));
    };
    let clusters = v.get("clusters").and_then(|c| c.as_array());
    let Some(clusters) = clusters.filter(|c| !c.is_empty()) else {
        return (None, Some("the kubeconfig has no clusters".into()));
    };
    let context_cluster = v
        .get("current-context")
        .and_then(|c| c.as_str())
        .and_then(|cur| {
            v.get("contexts")?
                .as_array()?
                .iter()
                .find(|c| c.get("name").and_then(|n| n.as_str()) == Some(cur))?
                .get("context")?
                .get("cluster")?
                .as_str()
        });
    let chosen = context_cluster
        .and_then(|name| {
            clusters
                .iter()
                .find(|c| c.get("name").and_then(|n| n.as_str()) == Some(name))
        })
        .unwrap_or(&clusters[0]);
    let server = chosen
        .get("cluster")
        .and_then(|c| c.get("server"))
        .and_then(|s| s.as_str())
        .map(str::to_string);
    let problem = match server {
        None => Some("the kubeconfig names no API server".to_string()),
        Some(_) => unsafe_auth(&v),
    };
    (server, problem)
}

/// What istiod refuses in a remote secret's kubeconfig (`sanitizeKubeConfig`): credentials
/// that run a program (`exec`), auth providers other than `oidc`, and references to files
/// on the control plane's own disk (`tokenFile`, `client-certificate`, `client-key`). A
/// remote secret can be written by anyone who can create Secrets in the Istio namespace;
/// these would let them run code or read files as the control plane.
fn unsafe_auth(kubeconfig: &serde_json::Value) -> Option<String> {
    let users = kubeconfig.get("users")?.as_array()?;
    for u in users {
        let name = u.get("name").and_then(|n| n.as_str()).unwrap_or("");
        let Some(user) = u.get("user") else { continue };
        if user.get("exec").is_some() {
            return Some(format!(
                "user {name} runs a credential plugin (exec), which a control plane refuses to run"
            ));
        }
        if let Some(p) = user.get("auth-provider") {
            let provider = p.get("name").and_then(|n| n.as_str()).unwrap_or("");
            if provider != "oidc" {
                return Some(format!(
                    "user {name} uses auth-provider {provider:?}; only oidc (or inline tokens and certificates) is accepted"
                ));
            }
        }
        for key in ["tokenFile", "client-certificate", "client-key"] {
            if user.get(key).is_some() {
                return Some(format!(
                    "user {name} refers to a file ({key}) on the control plane's disk; put the credential inline (token, client-certificate-data, client-key-data)"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(user: &str) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: c2
  cluster: {{server: 'https://c2.example:6443'}}
contexts:
- name: c2
  context: {{cluster: c2, user: c2}}
current-context: c2
users:
- name: c2
  user: {user}
"
        )
    }

    #[test]
    fn inline_credentials_are_accepted_and_plugins_and_files_refused() {
        let (server, problem) = kubeconfig_server(&kubeconfig("{token: abc}"));
        assert_eq!(server.as_deref(), Some("https://c2.example:6443"));
        assert_eq!(problem, None);
        let (_, problem) = kubeconfig_server(&kubeconfig("{auth-provider: {name: oidc}}"));
        assert_eq!(problem, None);
        for (user, word) in [
            ("{exec: {command: /bin/sh}}", "exec"),
            ("{auth-provider: {name: gcp}}", "gcp"),
            ("{tokenFile: /var/run/token}", "tokenFile"),
            ("{client-key: /etc/key.pem}", "client-key"),
        ] {
            let (_, problem) = kubeconfig_server(&kubeconfig(user));
            let p = problem.unwrap_or_default();
            assert!(p.contains(word), "{user}: {p}");
        }
    }
}
