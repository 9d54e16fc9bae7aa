//! What the injector is told at start: which revision it serves, what it injects, and what it
//! knows of the cluster. Read from a JSON file (`strait injector --config`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The injector's settings. Every field but `image` has Istio's default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The proxy image injected, and filled into `image: auto` (required; the same image runs
    /// `strait init` in the `istio-init` container).
    pub image: String,
    /// The revision this injector serves (`istio.io/rev`). Default `default`.
    #[serde(default = "default_revision")]
    pub revision: String,
    /// Whether this injector is the default revision: it alone serves
    /// `istio-injection=enabled` and `sidecar.istio.io/inject=true` pods. Default true.
    #[serde(default = "yes")]
    pub default_revision: bool,
    /// Inject namespaces without injection labels
    /// (`sidecarInjectorWebhook.enableNamespacesByDefault`). Default false.
    #[serde(default)]
    pub inject_by_default: bool,
    /// The cluster ID proxies report (`ISTIO_META_CLUSTER_ID`). Default `Kubernetes`, Istio's.
    #[serde(default = "default_cluster")]
    pub cluster_id: String,
    /// The cluster's network (`topology.istio.io/network` of `istio-system`); empty: none, and
    /// no network label is added. Default empty.
    #[serde(default)]
    pub network: String,
    /// The mesh's trust domain. Default `cluster.local`.
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Where proxies reach the control plane for configuration and certificates, host:port.
    /// Default `istiod.istio-system.svc:15012`.
    #[serde(default = "default_discovery")]
    pub discovery_address: String,
    /// The Kubernetes version of the cluster, `major.minor`. From 1.29 the proxy is injected
    /// as a native sidecar (an init container with `restartPolicy: Always`), which starts
    /// before and stops after the application, so Jobs complete. Default `1.28`: a regular
    /// container, which works everywhere.
    #[serde(default = "default_kubernetes_version")]
    pub kubernetes_version: String,
    /// Labels of the cluster's namespaces, by name, for an injector that does not watch them
    /// (the API server sends the pod, not its namespace). Labels a watch keeps in [`live`]
    /// win. For a namespace known to neither the injector trusts the webhook's
    /// namespaceSelector, which chose it before the call (Istio's behaviour), and only the
    /// pod's labels can still decline. Default empty.
    ///
    /// [`live`]: Config::live
    #[serde(default)]
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// The cluster's namespace labels as a watch keeps them (`strait injector` runs one when
    /// it can reach the API server); not part of the file.
    #[serde(skip)]
    pub live: super::namespaces::LiveNamespaces,
}

fn default_revision() -> String {
    "default".into()
}
fn yes() -> bool {
    true
}
fn default_cluster() -> String {
    "Kubernetes".into()
}
fn default_trust_domain() -> String {
    "cluster.local".into()
}
fn default_discovery() -> String {
    "istiod.istio-system.svc:15012".into()
}
fn default_kubernetes_version() -> String {
    "1.28".into()
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read injector config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("injector config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "injector config {path}: kubernetes_version {version:?} is not major.minor (for example \"1.30\")"
    )]
    Version { path: PathBuf, version: String },
    #[error("injector config {path}: image is empty; set the strait image proxies run")]
    NoImage { path: PathBuf },
}

impl Config {
    /// A configuration with Istio's defaults around `image`.
    pub fn new(image: impl Into<String>) -> Config {
        Config {
            image: image.into(),
            revision: default_revision(),
            default_revision: true,
            inject_by_default: false,
            cluster_id: default_cluster(),
            network: String::new(),
            trust_domain: default_trust_domain(),
            discovery_address: default_discovery(),
            kubernetes_version: default_kubernetes_version(),
            namespaces: BTreeMap::new(),
            live: super::namespaces::LiveNamespaces::default(),
        }
    }

    /// Reads and checks a JSON configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Config = serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if config.image.trim().is_empty() {
            return Err(ConfigError::NoImage {
                path: path.to_path_buf(),
            });
        }
        if parse_version(&config.kubernetes_version).is_none() {
            return Err(ConfigError::Version {
                path: path.to_path_buf(),
                version: config.kubernetes_version,
            });
        }
        Ok(config)
    }

    /// Whether the cluster runs native sidecars (Kubernetes 1.29, where `SidecarContainers` is
    /// on by default). An unreadable version counts as too old: a regular container works on
    /// every version.
    pub fn native_sidecars(&self) -> bool {
        parse_version(&self.kubernetes_version).is_some_and(|v| v >= (1, 29))
    }
}

/// `"1.29"`, `"v1.30.2"` → `(1, 29)`, `(1, 30)`.
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_sidecars_from_1_29() {
        let mut c = Config::new("strait");
        assert!(!c.native_sidecars());
        for (v, native) in [
            ("1.29", true),
            ("v1.30.2", true),
            ("1.28", false),
            ("2.0", true),
            ("1.33+", true),
            ("x", false),
        ] {
            c.kubernetes_version = v.into();
            assert_eq!(c.native_sidecars(), native, "{v}");
        }
    }

    #[test]
    fn defaults_are_istios() {
        let c: Config = serde_json::from_str(r#"{"image": "strait:1"}"#).expect("parses");
        assert_eq!(c, Config::new("strait:1"));
        let err = serde_json::from_str::<Config>(r#"{"image": "s", "revison": "x"}"#);
        assert!(err.is_err_and(|e| e.to_string().contains("revison")));
    }
}
