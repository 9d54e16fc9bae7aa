//! The strait control plane: istiod's job for the proxies of one primary cluster and its
//! remotes.
//!
//! ```text
//!  files ──(poll, settle)──▶ Source::load ──▶ Hub (mesh, generation) ──▶ discovery sessions
//!                              │ errors: update rejected,                 compile per proxy,
//!                              ▼ previous mesh stays                      delta, ACK/NACK
//!  CSR + token/cert ──▶ CertService ──▶ Authority (cacerts) ──▶ chain leaf..root
//! ```
//!
//! Both services share one TLS port (15012). Proxies verify the control plane through its
//! serving certificate, signed by the same CA as theirs; the control plane identifies a proxy
//! by its bootstrap token or, once it has one, its certificate. The debug port (15014) serves
//! `/debug/syncz`, `/debug/configz` and `/metrics`, and the health endpoints: `/healthz`
//! from the start, `/ready` once the first load succeeded and both services serve.

pub mod auth;
pub mod ca;
pub mod certs;
pub mod conn;
pub mod debug;
pub mod discovery;
pub mod hub;
pub mod identify;
pub mod jwks;
pub mod lb_status;
pub mod metrics;
pub mod networks;
pub mod serving;
pub mod source;
pub mod unsupported;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::registry::Registry;
use strait_protocol::v1::certificates_server::CertificatesServer;
use strait_protocol::v1::discovery_server::DiscoveryServer;
use tokio::net::TcpListener;

pub use crate::auth::Tokens;
use crate::hub::Hub;
use crate::identify::Identify;
use crate::source::Source;

/// The DNS names proxies use for the control plane by default.
pub const DEFAULT_NAMES: [&str; 3] = [
    "istiod.istio-system.svc",
    "istiod.istio-system.svc.cluster.local",
    "istiod",
];

#[derive(Clone, Debug)]
pub struct Options {
    pub source: Source,
    /// The primary cluster this control plane runs in; it also serves that cluster's remotes.
    /// Empty: the only cluster of a single-cluster mesh.
    pub cluster: String,
    /// Discovery and certificates (15012).
    pub grpc: SocketAddr,
    /// Debug and metrics (15014).
    pub debug: SocketAddr,
    /// A plug-in CA directory (`cacerts` layout) instead of the one in the manifests.
    pub ca_dir: Option<PathBuf>,
    /// How bootstrap tokens are checked: a token file
    /// (`{"<token>": {"cluster", "namespace", "service_account"}}`) or a verifier such as a
    /// TokenReview.
    pub tokens: Tokens,
    /// Where to write the trust bundle proxies need (istiod's `istio-ca-root-cert`).
    pub root_cert_out: Option<PathBuf>,
    /// Told the trust bundle (PEM) once the CA is loaded, before anything is served: whoever
    /// publishes it elsewhere (the `istio-ca-root-cert` ConfigMaps) learns it here.
    pub on_roots: Option<OnRoots>,
    /// Kubernetes mode: a first load with errors is tried again every `poll` instead of ending
    /// the run (istiod keeps running while someone fixes the cluster's configuration), and
    /// `/ready` answers 503 with the errors until one succeeds. Off: the errors end the run.
    pub retry_first_load: bool,
    /// DNS names in the serving certificate.
    pub names: Vec<String>,
    /// How often the files are checked for changes.
    pub poll: Duration,
    /// Which peers its listeners admit and where its own connections (gateway probes) leave
    /// from; unrestricted by default.
    pub reach: strait_net::Reach,
}

/// A callback given the trust bundle (PEM) the control plane's CA makes proxies trust.
#[derive(Clone)]
pub struct OnRoots(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for OnRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnRoots")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("configuration has errors:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    #[error("{0}")]
    Cluster(String),
    #[error("CA: {0}")]
    Ca(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tokens(#[from] auth::AuthError),
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("serving: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("loading the configuration stopped unexpectedly: {0}")]
    Load(String),
}

/// Runs the control plane until `stop` resolves.
pub async fn run(
    opts: Options,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ControlError> {
    let mut registry = Registry::default();
    let metrics = Arc::new(metrics::Metrics::new(&mut registry));
    // A control plane in a cluster of a multi-cluster mesh reads its own cluster and those it
    // is entitled to (its remotes, its remote secrets), not the whole directory.
    let mut source = opts.source.clone();
    if !opts.cluster.is_empty() {
        source.own = Some(opts.cluster.clone());
    }
    // The debug port answers from the start: liveness while the first load runs, readiness
    // only after it.
    let registry = Arc::new(registry);
    let health = debug::Health::default();
    let debug_l = bind(opts.debug).await?;
    let _debug = Background(tokio::spawn(debug::serve(
        debug_l,
        opts.reach.clone(),
        health.clone(),
        registry.clone(),
    )));
    let mut stop = std::pin::pin!(stop);
    let retry = opts.retry_first_load.then_some(opts.poll);
    let hub = tokio::select! {
        hub = first_load(source, metrics, retry, &health) => hub?,
        () = &mut stop => return Ok(()),
    };
    serve_loaded(opts, hub, &health, stop).await
}

/// The first load, on a blocking thread (it reads every cluster); with `retry`, a rejected
/// load is tried again after that long.
async fn first_load(
    source: Source,
    metrics: Arc<metrics::Metrics>,
    retry: Option<Duration>,
    health: &debug::Health,
) -> Result<Arc<Hub>, ControlError> {
    loop {
        let (s, m) = (source.clone(), metrics.clone());
        let loaded = tokio::task::spawn_blocking(move || Hub::new(s, m))
            .await
            .map_err(|e| ControlError::Load(e.to_string()))?;
        match (loaded, retry) {
            (Ok(hub), _) => return Ok(Arc::new(hub)),
            (Err(rejected), Some(after)) => {
                tracing::warn!(
                    errors = %rejected.errors.join("; "),
                    "configuration has errors; not ready, trying again"
                );
                health.waiting(rejected.errors);
                tokio::time::sleep(after).await;
            }
            (Err(rejected), None) => return Err(ControlError::Config(rejected.errors)),
        }
    }
}

/// A task that ends with the run that started it (the debug port closes when the control
/// plane stops, whichever way).
struct Background(tokio::task::JoinHandle<()>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ControlError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ControlError::Listen { addr, source })
}

/// Serves an already loaded hub until `stop` resolves: what [`run`] does after the first
/// load. Benchmarks and tests that drive the hub themselves (reloading it, reading its
/// metrics) start here.
pub async fn serve(
    opts: Options,
    hub: Arc<Hub>,
    registry: Registry,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ControlError> {
    let health = debug::Health::default();
    let debug_l = bind(opts.debug).await?;
    let _debug = Background(tokio::spawn(debug::serve(
        debug_l,
        opts.reach.clone(),
        health.clone(),
        Arc::new(registry),
    )));
    serve_loaded(opts, hub, &health, stop).await
}

/// Serves both services for a loaded hub; the debug port is already up and reports ready
/// once they serve.
async fn serve_loaded(
    opts: Options,
    hub: Arc<Hub>,
    health: &debug::Health,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ControlError> {
    let metrics = hub.metrics.clone();
    let mesh = hub.mesh();
    let cluster =
        match (opts.cluster.as_str(), mesh.clusters.as_slice()) {
            ("", [only]) => only.name.clone(),
            ("", _) => return Err(ControlError::Cluster(
                "a multi-cluster mesh: say which cluster this control plane runs in (--cluster)"
                    .into(),
            )),
            (c, _) => c.to_string(),
        };
    let own = mesh
        .cluster_by_name(&cluster)
        .ok_or_else(|| ControlError::Cluster(format!("no cluster named {cluster} in the mesh")))?;
    if !own.is_primary() {
        return Err(ControlError::Cluster(format!(
            "cluster {cluster} is a remote: its proxies are served by its primary's control plane"
        )));
    }
    let served: Vec<String> = mesh
        .served_by(own.id)
        .into_iter()
        .map(|c| mesh.cluster(c).name.clone())
        .collect();
    let mut trust_domains = vec![own.trust_domain().to_string()];
    trust_domains.extend(own.mesh_config.trust_domain_aliases.iter().cloned());

    let (authority, origin) = ca::load(opts.ca_dir.as_deref(), &mesh, &cluster)?;
    let authority = Arc::new(authority);
    tracing::info!(%cluster, ca = %origin, "signing CA loaded");
    if let Some(path) = &opts.root_cert_out {
        write_atomic(path, authority.roots_pem().as_bytes())?;
    }
    if let Some(OnRoots(tell)) = &opts.on_roots {
        tell(authority.roots_pem());
    }
    let names = if opts.names.is_empty() {
        DEFAULT_NAMES.map(String::from).to_vec()
    } else {
        opts.names.clone()
    };
    let serving = serving::ServingCert::new(authority.clone(), names)?;
    tokio::spawn(serving.clone().renew_forever());
    let tls = conn::server_config(authority.roots(), serving.resolver())?;

    let grpc = bind(opts.grpc).await?;
    let watcher = source::Watcher::spawn(opts.poll, hub.clone());
    let runtime = tokio::spawn(networks::maintain(hub.clone(), opts.reach.clone()));
    let keys = tokio::spawn(jwks::maintain(hub.clone(), opts.reach.clone()));

    let identify = Identify {
        tokens: opts.tokens.authenticator()?,
        clusters: served_now(hub.clone(), cluster.clone()),
        trust_domains,
    };
    let discovery = discovery::DiscoveryService {
        hub: hub.clone(),
        identify: identify.clone(),
        sessions: AtomicU64::new(0),
    };
    let certs = certs::CertService {
        authority,
        trust_domain: own.trust_domain().to_string(),
        identify,
        metrics,
    };
    drop(mesh);
    tracing::info!(grpc = %opts.grpc, debug = %opts.debug, clusters = %served.join(","), "control plane serving");
    let incoming = conn::incoming(
        grpc,
        opts.reach.clone(),
        tokio_rustls::TlsAcceptor::from(tls),
    );
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(DiscoveryServer::new(discovery))
        .add_service(CertificatesServer::new(certs))
        .serve_with_incoming(incoming);
    health.serving(hub.clone());
    // Discovery streams never end by themselves: stopping drops them rather than waiting.
    let result = tokio::select! {
        r = server => r,
        () = stop => Ok(()),
    };
    watcher.stop();
    runtime.abort();
    keys.abort();
    tracing::info!("control plane stopped");
    Ok(result?)
}

/// The clusters `own`'s control plane serves in the mesh in force at each call: itself and its
/// remotes, including those a remote secret added after start.
fn served_now(hub: Arc<Hub>, own: String) -> identify::Served {
    identify::Served::dynamic(move || {
        let mesh = hub.mesh();
        match mesh.cluster_by_name(&own) {
            Some(c) => mesh
                .served_by(c.id)
                .into_iter()
                .map(|c| mesh.cluster(c).name.clone())
                .collect(),
            None => vec![own.clone()],
        }
    })
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), ControlError> {
    let err = |source| ControlError::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
