//! Namespace labels as the API server has them now. An AdmissionReview carries the pod, not
//! its namespace, yet the selection the webhook makes inside (a namespace's `istio.io/rev`
//! naming another revision, `istio-injection=disabled`, injection by default) reads the
//! namespace's labels, and must read what `strait analyze` reads. With a watch running
//! ([`watch`]), [`LiveNamespaces`] holds every namespace's labels; before the first list, and
//! for reviews sent on behalf of another cluster (a remote's webhook calls its primary's
//! injector), it holds nothing and the config's `namespaces` and the webhook's
//! namespaceSelector decide, as before.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};

/// Labels by namespace name.
pub type Labels = BTreeMap<String, BTreeMap<String, String>>;

/// The labels a watch keeps current; empty (no watch, or not listed yet) by default. Cheap to
/// clone: every clone sees the same labels.
#[derive(Clone, Default)]
pub struct LiveNamespaces(Arc<ArcSwapOption<Labels>>);

impl LiveNamespaces {
    /// Every namespace's labels as last listed, `None` before the first list.
    pub fn snapshot(&self) -> Option<Arc<Labels>> {
        self.0.load_full()
    }

    /// Replaces what is known (the watch does this; tests may too).
    pub fn set(&self, labels: Labels) {
        self.0.store(Some(Arc::new(labels)));
    }
}

impl std::fmt::Debug for LiveNamespaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.snapshot() {
            Some(l) => write!(f, "LiveNamespaces({} namespaces)", l.len()),
            None => f.write_str("LiveNamespaces(not listed)"),
        }
    }
}

/// Equal whatever they hold: the labels are the cluster's state, not configuration.
impl PartialEq for LiveNamespaces {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for LiveNamespaces {}

/// Keeps `live` current from the API server's namespaces until the task is dropped: a list,
/// then a watch, started over with backoff on errors (a 410 Gone re-lists).
pub async fn watch(client: Client, live: LiveNamespaces) {
    let (store, writer) = reflector::store::<Namespace>();
    let mut events = reflector(
        writer,
        watcher(Api::<Namespace>::all(client), watcher::Config::default()),
    )
    .default_backoff()
    .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Ok(_) => live.set(
                store
                    .state()
                    .iter()
                    .filter_map(|ns| {
                        let name = ns.metadata.name.clone()?;
                        Some((name, ns.metadata.labels.clone().unwrap_or_default()))
                    })
                    .collect(),
            ),
            Err(e) => tracing::warn!(error = %e, "watching namespaces; retrying"),
        }
    }
}
