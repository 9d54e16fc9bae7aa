//! The control plane's configuration read from Kubernetes API servers: a
//! [`ClusterSource`] kept current by watches, as istiod's informers keep its view.
//!
//! **What is watched where.** In its own cluster (the config cluster) the control plane
//! watches every kind of [`objects::OWN`] across all namespaces: workloads, Services, Istio's
//! configuration, the Gateway API and what the analyzers read. In its own cluster's Istio
//! namespace it also watches the Secrets labelled `istio/multiCluster=true` (remote secrets):
//! every data key names a cluster, its value is a kubeconfig for that cluster's API server.
//! Through each such kubeconfig it watches only the kinds of [`objects::REMOTE`] (Services,
//! EndpointSlices, Pods, Nodes, Namespaces, ServiceAccounts): where that cluster's workloads
//! are. Istio configuration comes from the config cluster only, as in Istio. A key that names
//! the own cluster is ignored, as istiod ignores it; when two Secrets name one cluster, the one
//! in force keeps it (else the first by name) and the other key is logged and ignored. The
//! remote secrets are also among the own cluster's Secrets, where the model reads them to
//! decide which clusters a control plane is entitled to.
//!
//! **Memory.** Each watched kind is one kube-runtime watcher feeding one reflector store: the
//! initial list is paged (500 objects a page, client-go's default) and after it only watch
//! events arrive; a watch that falls too far behind (410 Gone) is re-listed and the new list
//! replaces the store whole. Objects are stored once, without `managedFields` and the
//! last-applied annotation (often half of an object, and read by no check). A read renders an
//! object to text only when its `resourceVersion` changed since the previous read and keeps
//! that text: memory is about two copies of every watched object, plus the loader's parse
//! cache. Secrets are watched with Istio's field selector
//! (`type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token`): Helm's release
//! records and service-account tokens are the bulk of a cluster's Secrets, large, and of no
//! use to a mesh.
//!
//! **Failure.** Every watch retries with kube-runtime's default backoff (exponential with
//! jitter, at most 30 s apart). An Istio or Gateway API kind whose API the server does not
//! serve (404: its CRD is not installed, e.g. no Gateway API) counts as synced and empty, is
//! logged once, and is tried again with the same backoff, so installing the CRD later is picked
//! up. A built-in kind that is not served keeps its cluster unsynced: that server is not a
//! Kubernetes API server as expected. A remote secret whose kubeconfig is refused or cannot be
//! parsed, or whose cluster cannot be reached, is logged and reported through
//! [`ClusterSource::reachable`]; it never stops the control plane.
//!
//! Every applied change bumps a generation counter: [`KubeSource::fingerprint`] is that
//! counter, so `strait_control`'s watcher reloads once per settled change.

mod read;
mod secrets;
mod watch;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use kube::Client;
use strait_api::{Input, ParseCache};
use strait_control::source::{ClusterSource, Fingerprint};
use tokio::runtime::Handle;
use tokio::sync::watch as notify;

use crate::client::{ClientError, Clusters};
use crate::objects;
use read::RenderCache;
use watch::{AbortOnDrop, ClusterWatch};

/// Builds a client from a remote secret's kubeconfig: `(cluster ID, kubeconfig, origin)`,
/// where origin names the Secret and key for messages. [`Options::new`] uses
/// [`crate::client::from_remote_secret`]; tests hand in clients of their own.
pub type Connector =
    Arc<dyn Fn(&str, &str, &str) -> BoxFuture<'static, Result<Client, ClientError>> + Send + Sync>;

/// What a [`KubeSource`] needs besides the own cluster's client.
#[derive(Clone)]
pub struct Options {
    /// The cluster this control plane runs in (istiod's `CLUSTER_ID`).
    pub cluster_id: String,
    /// Where Istio runs and remote secrets live (default `istio-system`).
    pub istio_namespace: String,
    /// The own cluster's network, overriding the `topology.istio.io/network` label of its Istio
    /// namespace (istiod's `NETWORK`). Default: none, the label decides.
    pub network: Option<String>,
    /// The mesh ID (`meshID`). Default: none.
    pub mesh_id: Option<String>,
    /// The trust domain. Default: none (the model's default, `cluster.local`).
    pub trust_domain: Option<String>,
    /// The table of clients per cluster that the source fills: the own cluster's client and
    /// one per remote-secret cluster in force. Default: a new, empty table.
    pub clusters: Clusters,
    /// How a remote secret's kubeconfig becomes a client.
    pub connector: Connector,
}

impl Options {
    /// Defaults for the cluster `cluster_id`.
    pub fn new(cluster_id: &str) -> Options {
        Options {
            cluster_id: cluster_id.to_string(),
            istio_namespace: "istio-system".into(),
            network: None,
            mesh_id: None,
            trust_domain: None,
            clusters: Clusters::default(),
            connector: Arc::new(|_cluster: &str, kubeconfig: &str, origin: &str| {
                let (kubeconfig, origin) = (kubeconfig.to_string(), origin.to_string());
                Box::pin(
                    async move { crate::client::from_remote_secret(&kubeconfig, &origin).await },
                )
            }),
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("cluster_id", &self.cluster_id)
            .field("istio_namespace", &self.istio_namespace)
            .field("network", &self.network)
            .field("mesh_id", &self.mesh_id)
            .field("trust_domain", &self.trust_domain)
            .field("clusters", &self.clusters)
            .finish_non_exhaustive()
    }
}

/// The initial sync of the own cluster did not finish in time.
#[derive(Debug, thiserror::Error)]
#[error("cluster {cluster}: not synced after {waited:?}: {reason}")]
pub struct NotSynced {
    pub cluster: String,
    pub waited: Duration,
    /// Which kinds are still listing, with their last error.
    pub reason: String,
}

/// The Kubernetes API as a [`ClusterSource`]. Watches run on the Tokio runtime given to
/// [`KubeSource::start`] until the source is dropped.
pub struct KubeSource {
    shared: Arc<Shared>,
    _secrets: AbortOnDrop,
}

/// What the watch tasks and reads share.
struct Shared {
    options: Options,
    runtime: Handle,
    /// The watches per cluster: the own cluster's and one per remote-secret cluster in force.
    watched: Mutex<BTreeMap<String, ClusterWatch>>,
    /// Clusters named by a remote secret that are not read, and why.
    refused: Mutex<BTreeMap<String, String>>,
    /// Bumped on every change of a store or of the set of clusters.
    generation: notify::Sender<u64>,
    renders: Mutex<BTreeMap<String, RenderCache>>,
    /// Objects left out of the mesh and already logged, so each is logged once.
    left_out: Mutex<std::collections::BTreeSet<String>>,
}

impl fmt::Debug for KubeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeSource")
            .field("cluster", &self.shared.options.cluster_id)
            .field(
                "watched",
                &lock(&self.shared.watched).keys().collect::<Vec<_>>(),
            )
            .field("generation", &*self.shared.generation.borrow())
            .finish()
    }
}

impl KubeSource {
    /// Starts watching the own cluster through `client` and its remote secrets, on `runtime`.
    /// Returns at once: [`KubeSource::wait_synced`] waits for the initial lists.
    pub fn start(options: Options, client: Client, runtime: &Handle) -> KubeSource {
        options.clusters.insert(&options.cluster_id, client.clone());
        let (generation, _) = notify::channel(0);
        let shared = Arc::new(Shared {
            runtime: runtime.clone(),
            watched: Mutex::new(BTreeMap::new()),
            refused: Mutex::new(BTreeMap::new()),
            generation,
            renders: Mutex::new(BTreeMap::new()),
            left_out: Mutex::new(std::collections::BTreeSet::new()),
            options,
        });
        let own = ClusterWatch::start(
            &shared,
            &shared.options.cluster_id,
            &client,
            objects::CONTROL_PLANE,
            None,
        );
        lock(&shared.watched).insert(shared.options.cluster_id.clone(), own);
        let secrets = AbortOnDrop(runtime.spawn(secrets::run(shared.clone(), client)));
        KubeSource {
            shared,
            _secrets: secrets,
        }
    }

    /// The table of clients per cluster this source keeps.
    pub fn clusters(&self) -> &Clusters {
        &self.shared.options.clusters
    }

    /// Waits until every kind of the own cluster has been listed once (or found not served),
    /// at most `deadline`: a control plane that serves before this would serve an empty mesh.
    pub async fn wait_synced(&self, deadline: Duration) -> Result<(), NotSynced> {
        let own = &self.shared.options.cluster_id;
        let mut changes = self.shared.generation.subscribe();
        let wait = async {
            loop {
                if self.shared.synced(own).is_ok() {
                    return;
                }
                if changes.changed().await.is_err() {
                    // The sender lives as long as `self`; this is not reached.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(deadline, wait)
            .await
            .map_err(|_| NotSynced {
                cluster: own.clone(),
                waited: deadline,
                reason: self
                    .shared
                    .synced(own)
                    .err()
                    .unwrap_or_else(|| "synced just now".into()),
            })
    }

    /// Every watched cluster's place in the mesh (network, role, primary) as its Istio
    /// namespace says now: cheap, no object is rendered.
    pub fn declarations(&self) -> Vec<strait_api::layout::ClusterDecl> {
        read::declarations(&self.shared)
    }

    /// The number of changes applied so far (what [`KubeSource::fingerprint`] encodes).
    pub fn generation(&self) -> u64 {
        *self.shared.generation.borrow()
    }
}

impl Drop for KubeSource {
    fn drop(&mut self) {
        // The watch tasks hold no reference to the source: dropping their handles ends them.
        let watched = std::mem::take(&mut *lock(&self.shared.watched));
        for cluster in watched.keys() {
            if *cluster != self.shared.options.cluster_id {
                self.shared.options.clusters.remove(cluster);
            }
        }
    }
}

impl Shared {
    fn bump(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Whether every watch of `cluster` has listed once.
    fn synced(&self, cluster: &str) -> Result<(), String> {
        match lock(&self.watched).get(cluster) {
            Some(w) => w.synced(),
            None => Err(format!("cluster {cluster} is not watched")),
        }
    }
}

/// The name of the one synthetic entry of a [`KubeSource`]'s fingerprint.
const GENERATION: &str = "kube://generation";

impl ClusterSource for KubeSource {
    fn read(&self, clusters: Option<&[String]>) -> Input {
        read::input(&self.shared, clusters, None)
    }

    fn read_cached(&self, clusters: Option<&[String]>, cache: &Arc<ParseCache>) -> Input {
        read::input(&self.shared, clusters, Some(cache))
    }

    fn fingerprint(&self) -> Fingerprint {
        vec![(PathBuf::from(GENERATION), self.generation(), None)]
    }

    fn reachable(&self, cluster: &str) -> Result<(), String> {
        if let Some(reason) = lock(&self.shared.refused).get(cluster) {
            return Err(reason.clone());
        }
        let watched = lock(&self.shared.watched);
        let Some(w) = watched.get(cluster) else {
            return Err(format!(
                "no remote secret in {} names cluster {cluster}",
                self.shared.options.istio_namespace
            ));
        };
        if self.shared.options.clusters.get(cluster).is_none() {
            return Err(format!("no API client for cluster {cluster}"));
        }
        w.synced().map_err(|e| match &w.secret {
            Some(s) => format!("remote secret {s}: {e}"),
            None => e,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
