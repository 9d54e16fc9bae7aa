//! Remote secrets, read as istiod reads them: Secrets labelled `istio/multiCluster=true` in
//! the own cluster's Istio namespace, each data key a cluster ID and its value a kubeconfig.
//! Every cluster named gets a client in [`crate::client::Clusters`] and watches of
//! [`objects::REMOTE`]; a key deleted or changed stops them first.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use strait_api::Kind;

use super::watch::ClusterWatch;
use super::{Shared, lock};
use crate::objects;

/// Istio's label on a remote secret.
const LABEL: &str = "istio/multiCluster=true";

/// A key's kubeconfig, or why it cannot be one.
type Kubeconfig = Result<String, String>;

/// The remote secrets in force: Secret name → cluster ID → kubeconfig.
type Secrets = BTreeMap<String, BTreeMap<String, Kubeconfig>>;

/// A cluster read (or refused) through a remote secret.
#[derive(Clone, Debug, PartialEq, Eq)]
struct InForce {
    secret: String,
    kubeconfig: Kubeconfig,
}

/// Watches the remote secrets until aborted.
pub(super) async fn run(shared: Arc<Shared>, client: Client) {
    let ns = shared.options.istio_namespace.clone();
    let api =
        Api::<DynamicObject>::namespaced_with(client, &ns, &objects::api_resource(Kind::Secret));
    let config = watcher::Config::default().labels(LABEL);
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut secrets = Secrets::new();
    let mut listing: Option<Secrets> = None;
    let mut in_force = BTreeMap::new();
    while let Some(item) = events.next().await {
        match item {
            Ok(Event::Init) => listing = Some(Secrets::new()),
            Ok(Event::InitApply(s)) => {
                if let Some(l) = listing.as_mut() {
                    insert(l, &s);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(l) = listing.take() {
                    secrets = l;
                }
                reconcile(&shared, &secrets, &mut in_force).await;
            }
            Ok(Event::Apply(s)) => {
                insert(&mut secrets, &s);
                reconcile(&shared, &secrets, &mut in_force).await;
            }
            Ok(Event::Delete(s)) => {
                secrets.remove(s.metadata.name.as_deref().unwrap_or(""));
                reconcile(&shared, &secrets, &mut in_force).await;
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, error = %e, "watching remote secrets failed; retrying");
            }
        }
    }
}

/// Records a Secret's keys; a value that is not base64 of UTF-8 text is kept as its problem.
fn insert(secrets: &mut Secrets, s: &DynamicObject) {
    let name = s.metadata.name.clone().unwrap_or_default();
    let mut keys = BTreeMap::new();
    if let Some(data) = s.data.get("data").and_then(|d| d.as_object()) {
        for (cluster, value) in data {
            let kubeconfig = value
                .as_str()
                .ok_or_else(|| "the value is not a string".to_string())
                .and_then(|v| {
                    base64::engine::general_purpose::STANDARD
                        .decode(v)
                        .map_err(|e| format!("the value is not base64: {e}"))
                })
                .and_then(|bytes| {
                    String::from_utf8(bytes).map_err(|_| "the kubeconfig is not UTF-8 text".into())
                });
            keys.insert(cluster.clone(), kubeconfig);
        }
    }
    secrets.insert(name, keys);
}

/// Brings the remote clusters in line with `secrets`: stops what is gone or changed, starts
/// what is new, and bumps the generation when anything moved.
async fn reconcile(shared: &Shared, secrets: &Secrets, in_force: &mut BTreeMap<String, InForce>) {
    let ns = &shared.options.istio_namespace;
    let own = &shared.options.cluster_id;
    let wanted = wanted(secrets, in_force, own, ns);
    let mut changed = false;
    let stale: Vec<String> = in_force
        .iter()
        .filter(|(cluster, f)| wanted.get(*cluster) != Some(*f))
        .map(|(cluster, _)| cluster.clone())
        .collect();
    for cluster in stale {
        in_force.remove(&cluster);
        lock(&shared.watched).remove(&cluster);
        lock(&shared.refused).remove(&cluster);
        shared.options.clusters.remove(&cluster);
        tracing::info!(%cluster, "remote cluster removed");
        changed = true;
    }
    for (cluster, f) in wanted {
        if in_force.contains_key(&cluster) {
            continue;
        }
        let secret = format!("{ns}/{}", f.secret);
        let origin = format!("remote secret {secret}, key {cluster}");
        let connected = match &f.kubeconfig {
            Ok(text) => (shared.options.connector)(&cluster, text, &origin)
                .await
                .map_err(|e| e.to_string()),
            Err(problem) => Err(format!("{origin}: {problem}")),
        };
        match connected {
            Ok(client) => {
                shared.options.clusters.insert(&cluster, client.clone());
                let w =
                    ClusterWatch::start(shared, &cluster, &client, objects::REMOTE, Some(secret));
                lock(&shared.watched).insert(cluster.clone(), w);
                tracing::info!(%cluster, secret = %origin, "remote cluster added");
            }
            Err(reason) => {
                tracing::warn!(%cluster, error = %reason, "remote cluster not read");
                lock(&shared.refused).insert(cluster.clone(), reason);
            }
        }
        in_force.insert(cluster, f);
        changed = true;
    }
    if changed {
        shared.bump();
    }
}

/// The cluster each key of `secrets` asks for. A key naming the own cluster is ignored (as
/// istiod does); a cluster named by two Secrets stays with the one in force, and otherwise
/// goes to the first by name.
fn wanted(
    secrets: &Secrets,
    in_force: &BTreeMap<String, InForce>,
    own: &str,
    ns: &str,
) -> BTreeMap<String, InForce> {
    let mut wanted = BTreeMap::new();
    for (cluster, f) in in_force {
        if let Some(k) = secrets.get(&f.secret).and_then(|keys| keys.get(cluster)) {
            wanted.insert(
                cluster.clone(),
                InForce {
                    secret: f.secret.clone(),
                    kubeconfig: k.clone(),
                },
            );
        }
    }
    for (secret, keys) in secrets {
        for (cluster, kubeconfig) in keys {
            if cluster == own {
                tracing::debug!(%cluster, secret = %format!("{ns}/{secret}"), "remote secret for the own cluster ignored");
                continue;
            }
            match wanted.get(cluster) {
                Some(f) if f.secret != *secret => tracing::warn!(
                    %cluster,
                    secret = %format!("{ns}/{secret}"),
                    in_force = %format!("{ns}/{}", f.secret),
                    "cluster already read through another remote secret; this key is ignored"
                ),
                Some(_) => {}
                None => {
                    wanted.insert(
                        cluster.clone(),
                        InForce {
                            secret: secret.clone(),
                            kubeconfig: kubeconfig.clone(),
                        },
                    );
                }
            }
        }
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(entries: &[(&str, &[(&str, &str)])]) -> Secrets {
        entries
            .iter()
            .map(|(name, keys)| {
                let keys = keys
                    .iter()
                    .map(|(c, k)| (c.to_string(), Ok(k.to_string())))
                    .collect();
                (name.to_string(), keys)
            })
            .collect()
    }

    #[test]
    fn the_own_cluster_is_ignored_and_a_cluster_stays_with_its_secret() {
        let s = secrets(&[
            ("a", &[("c2", "k-a"), ("c1", "own")]),
            ("b", &[("c2", "k-b"), ("c3", "k3")]),
        ]);
        let w = wanted(&s, &BTreeMap::new(), "c1", "istio-system");
        let owners: Vec<(&str, &str)> = w
            .iter()
            .map(|(c, f)| (c.as_str(), f.secret.as_str()))
            .collect();
        assert_eq!(owners, [("c2", "a"), ("c3", "b")]);

        // c2 in force through b: it stays there while b names it.
        let in_force = BTreeMap::from([(
            "c2".to_string(),
            InForce {
                secret: "b".into(),
                kubeconfig: Ok("k-b".into()),
            },
        )]);
        let w = wanted(&s, &in_force, "c1", "istio-system");
        assert_eq!(w["c2"].secret, "b");
        // A changed kubeconfig is a different entry: the cluster is restarted.
        let changed = secrets(&[("b", &[("c2", "k-b2")])]);
        let w = wanted(&changed, &in_force, "c1", "istio-system");
        assert_ne!(w.get("c2"), in_force.get("c2"));
    }
}
