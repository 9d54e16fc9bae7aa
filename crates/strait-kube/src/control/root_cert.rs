//! The trust bundle in every namespace, as istiod's namespace controller keeps it: a
//! ConfigMap `istio-ca-root-cert` with the mesh's roots under `root-cert.pem`, which every
//! sidecar mounts to verify the control plane. While this replica leads, each cluster it
//! serves (its own and its remotes, through their clients) gets the ConfigMap in every
//! namespace: created when missing, its key restored when someone edits or deletes it, and
//! new namespaces get one as they appear. Other keys and labels on the ConfigMap are left
//! as they are.
//!
//! Each pass lists namespaces and these ConfigMaps and writes only what differs; watches on
//! both trigger a pass at once, and a periodic pass ([`RESYNC`]) catches anything a watch
//! missed and picks up clusters added to the client table since. A replica that loses the
//! lease finishes the pass under way and writes nothing more.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::{Notify, watch};

use super::lease::Leadership;
use crate::client::Clusters;

/// The ConfigMap's name, in every namespace.
pub const CONFIG_MAP: &str = "istio-ca-root-cert";
/// The key holding the PEM trust bundle.
pub const DATA_KEY: &str = "root-cert.pem";
/// The label istiod puts on the ConfigMaps it writes.
pub const LABEL: (&str, &str) = ("istio.io/config", "true");
/// Namespaces that get no ConfigMap: the cluster's own machinery, where the injector puts no
/// sidecar. (Recent istiod writes `kube-system` too, for ambient mode's ztunnel, which some
/// platforms install there; strait runs no ztunnel.)
pub const SKIPPED_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];
/// How often every cluster is checked whether or not a watch reported a change.
pub const RESYNC: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RootCertError {
    #[error("cluster {cluster}: cannot {action}: {source}")]
    Api {
        cluster: String,
        action: String,
        #[source]
        source: kube::Error,
    },
}

/// What one pass over a cluster did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Namespaces that had no ConfigMap and got one.
    pub created: Vec<String>,
    /// Namespaces whose ConfigMap had another bundle or lacked the label, and was restored.
    pub restored: Vec<String>,
    /// Namespaces whose ConfigMap was already right.
    pub correct: Vec<String>,
    /// Namespaces left alone: skipped by name, terminating, or gone while being written.
    pub skipped: Vec<String>,
    /// Writes the API server refused, with why (an immutable ConfigMap, a webhook, a
    /// permission); tried again at the next pass.
    pub failed: Vec<String>,
}

/// One pass over the cluster `cluster`: makes every namespace's ConfigMap hold `bundle`.
/// A write that loses a race (409) or meets a namespace being deleted is left to the next
/// pass; one the API server refuses otherwise is reported in [`Outcome::failed`] and does
/// not stop the others. Only a failed list ends the pass.
pub async fn reconcile(
    client: Client,
    cluster: &str,
    bundle: &str,
) -> Result<Outcome, RootCertError> {
    let err = |action: String| {
        move |source| RootCertError::Api {
            cluster: cluster.to_string(),
            action,
            source,
        }
    };
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(err("list namespaces".into()))?;
    let existing: HashMap<String, ConfigMap> = Api::<ConfigMap>::all(client.clone())
        .list(&ListParams::default().fields(&format!("metadata.name={CONFIG_MAP}")))
        .await
        .map_err(err(format!("list ConfigMaps {CONFIG_MAP}")))?
        .items
        .into_iter()
        .filter_map(|cm| Some((cm.metadata.namespace.clone()?, cm)))
        .collect();
    let mut outcome = Outcome::default();
    for ns in namespaces.items {
        let Some(name) = ns.metadata.name.clone() else {
            continue;
        };
        let terminating = ns.metadata.deletion_timestamp.is_some()
            || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        if terminating || SKIPPED_NAMESPACES.contains(&name.as_str()) {
            outcome.skipped.push(name);
            continue;
        }
        let api = Api::<ConfigMap>::namespaced(client.clone(), &name);
        let at = format!("{name}/{CONFIG_MAP}");
        let written = match existing.get(&name) {
            None => api
                .create(&PostParams::default(), &desired(&name, bundle))
                .await
                .map(|_| &mut outcome.created)
                .map_err(|e| (format!("create ConfigMap {at}"), e)),
            Some(cm) => match restored(cm, bundle) {
                None => Ok(&mut outcome.correct),
                Some(fixed) => api
                    .replace(CONFIG_MAP, &PostParams::default(), &fixed)
                    .await
                    .map(|_| &mut outcome.restored)
                    .map_err(|e| (format!("update ConfigMap {at}"), e)),
            },
        };
        match written {
            Ok(list) => list.push(name),
            Err((_, kube::Error::Api(s)))
                if s.is_conflict() || s.is_already_exists() || s.is_not_found() =>
            {
                tracing::debug!(cluster, namespace = %name, reason = %s.reason, "root certificate left to the next pass");
                outcome.skipped.push(name);
            }
            Err((action, kube::Error::Api(s))) => outcome.failed.push(format!(
                "cannot {action}: {} {}: {}",
                s.code, s.reason, s.message
            )),
            Err((action, other)) => outcome.failed.push(format!("cannot {action}: {other}")),
        }
    }
    Ok(outcome)
}

/// The ConfigMap a namespace should have.
fn desired(namespace: &str, bundle: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIG_MAP.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(LABEL.0.to_string(), LABEL.1.to_string())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(DATA_KEY.to_string(), bundle.to_string())])),
        ..ConfigMap::default()
    }
}

/// `cm` with the bundle and label put back, or `None` when it already has both. The
/// resourceVersion read stays, so a concurrent edit makes the write fail rather than vanish.
fn restored(cm: &ConfigMap, bundle: &str) -> Option<ConfigMap> {
    let data_ok = cm
        .data
        .as_ref()
        .and_then(|d| d.get(DATA_KEY))
        .is_some_and(|v| v == bundle);
    let label_ok = cm
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL.0))
        .is_some_and(|v| v == LABEL.1);
    if data_ok && label_ok {
        return None;
    }
    let mut fixed = cm.clone();
    fixed
        .data
        .get_or_insert_with(BTreeMap::new)
        .insert(DATA_KEY.to_string(), bundle.to_string());
    fixed
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(LABEL.0.to_string(), LABEL.1.to_string());
    fixed.metadata.managed_fields = None;
    Some(fixed)
}

/// Keeps the ConfigMaps of the clusters a control plane serves, while it leads.
pub struct RootCertWriter {
    clients: Clusters,
    served: Served,
    resync: Duration,
}

/// The clusters a pass writes to.
enum Served {
    Fixed(Vec<String>),
    /// Every cluster in `clients` at the time of a pass.
    Every,
    /// Whatever the function says at the time of a pass.
    Dynamic(Arc<dyn Fn() -> Vec<String> + Send + Sync>),
}

impl std::fmt::Debug for RootCertWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCertWriter")
            .field("clients", &self.clients)
            .field("served", &self.clusters())
            .field("resync", &self.resync)
            .finish()
    }
}

impl RootCertWriter {
    /// Writes to the clusters named in `served` (the own one and its remotes), each through
    /// its client in `clients` at the time of the pass: a remote whose secret arrives later
    /// is served from the pass after.
    pub fn new(clients: Clusters, served: Vec<String>) -> RootCertWriter {
        RootCertWriter {
            clients,
            served: Served::Fixed(served),
            resync: RESYNC,
        }
    }

    /// Writes to every cluster that has a client in `clients` at the time of a pass: the own
    /// cluster and each one a remote secret adds, as istiod runs its namespace controller for
    /// every cluster it reads.
    pub fn every_cluster(clients: Clusters) -> RootCertWriter {
        RootCertWriter {
            clients,
            served: Served::Every,
            resync: RESYNC,
        }
    }

    /// Writes to the clusters `served` names at the time of each pass: the clusters a control
    /// plane serves change as remote secrets and their namespaces' annotations come and go.
    pub fn dynamic(
        clients: Clusters,
        served: impl Fn() -> Vec<String> + Send + Sync + 'static,
    ) -> RootCertWriter {
        RootCertWriter {
            clients,
            served: Served::Dynamic(Arc::new(served)),
            resync: RESYNC,
        }
    }

    fn clusters(&self) -> Vec<String> {
        match &self.served {
            Served::Fixed(s) => s.clone(),
            Served::Every => self.clients.names(),
            Served::Dynamic(f) => f(),
        }
    }

    /// Checks every cluster this often even when no watch reported a change (default
    /// [`RESYNC`]).
    pub fn with_resync(self, resync: Duration) -> RootCertWriter {
        RootCertWriter { resync, ..self }
    }

    /// Runs passes while `leadership` says this replica leads and `bundle` holds the trust
    /// bundle, until `stop` resolves.
    pub async fn run(
        self,
        leadership: Leadership,
        mut bundle: watch::Receiver<Option<String>>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut stop = std::pin::pin!(stop);
        let mut leader = leadership.watch();
        let wake = Arc::new(Notify::new());
        let mut triggers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        // A closed channel keeps its last value: fixed leadership, a bundle that no longer
        // changes.
        let (mut leader_open, mut bundle_open) = (true, true);
        loop {
            let clusters = self.clusters();
            triggers.retain(|c, t| {
                let keep = clusters.contains(c);
                if !keep {
                    t.abort();
                }
                keep
            });
            for c in &clusters {
                triggers.entry(c.clone()).or_insert_with(|| {
                    tokio::spawn(trigger(self.clients.clone(), c.clone(), wake.clone()))
                });
            }
            let current = bundle.borrow_and_update().clone();
            let leading = *leader.borrow_and_update();
            if let (true, Some(pem)) = (leading, current.as_deref()) {
                for cluster in &clusters {
                    self.pass(cluster, pem).await;
                }
            }
            let wait = if leading { self.resync } else { Duration::MAX };
            tokio::select! {
                () = wake.notified() => {}
                () = membership_changes(|| self.clusters(), &clusters) => {}
                () = sleep_or_forever(wait) => {}
                r = leader.changed(), if leader_open => leader_open = r.is_ok(),
                r = bundle.changed(), if bundle_open => bundle_open = r.is_ok(),
                () = &mut stop => break,
            }
        }
        for t in triggers.values() {
            t.abort();
        }
    }

    async fn pass(&self, cluster: &str, bundle: &str) {
        let Some(client) = self.clients.get(cluster) else {
            tracing::warn!(
                cluster,
                "no API client for this cluster (no remote secret yet); its root certificates wait"
            );
            return;
        };
        // An API server that accepts and never answers must not hold up the other clusters
        // (kube's client sets no read timeout): the pass gives up and the next one retries.
        let Ok(result) =
            tokio::time::timeout(PASS_TIMEOUT, reconcile(client, cluster, bundle)).await
        else {
            tracing::warn!(
                cluster,
                "root certificates: the API server did not answer within {}s; retrying at the next pass",
                PASS_TIMEOUT.as_secs()
            );
            return;
        };
        match result {
            Ok(o) => {
                for ns in &o.created {
                    tracing::info!(cluster, namespace = %ns, "root certificate ConfigMap created");
                }
                for ns in &o.restored {
                    tracing::info!(cluster, namespace = %ns, "root certificate ConfigMap restored");
                }
                for why in &o.failed {
                    tracing::warn!(cluster, error = %why, "root certificate ConfigMap");
                }
            }
            Err(e) => tracing::warn!(error = %e, "root certificates"),
        }
    }
}

/// How long one cluster's pass may take before it is given up for the next.
pub(crate) const PASS_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a changing set of clusters (remote secrets come and go) is looked at.
pub(crate) const MEMBERSHIP: Duration = Duration::from_secs(1);

/// Resolves once `now()` differs from `known`, looked at every [`MEMBERSHIP`]: a cluster that
/// joins is served at once, not at the next resync.
pub(crate) async fn membership_changes(now: impl Fn() -> Vec<String>, known: &[String]) {
    loop {
        tokio::time::sleep(MEMBERSHIP).await;
        if now() != known {
            return;
        }
    }
}

async fn sleep_or_forever(d: Duration) {
    if d == Duration::MAX {
        std::future::pending::<()>().await;
    } else {
        tokio::time::sleep(d).await;
    }
}

/// Wakes the writer whenever a namespace or one of these ConfigMaps of `cluster` changes.
/// The watches restart now and then, so a cluster's replaced client is picked up.
async fn trigger(clients: Clusters, cluster: String, wake: Arc<Notify>) {
    const RESTART: Duration = Duration::from_secs(300);
    loop {
        let Some(client) = clients.get(&cluster) else {
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        };
        let namespaces = watcher(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .map(|e| e.map(|_| ()))
        .boxed();
        let config_maps = watcher(
            Api::<ConfigMap>::all(client),
            watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP}")),
        )
        .default_backoff()
        .map(|e| e.map(|_| ()))
        .boxed();
        let mut events = futures::stream::select(namespaces, config_maps);
        let watch = async {
            while let Some(event) = events.next().await {
                match event {
                    Ok(()) => wake.notify_one(),
                    Err(e) => tracing::debug!(%cluster, error = %e, "root certificate watch"),
                }
            }
        };
        let _ = tokio::time::timeout(RESTART, watch).await;
    }
}
