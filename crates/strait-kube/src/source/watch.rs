//! One cluster's watches: a kube-runtime watcher and a reflector store per kind, and whether
//! each has listed once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::store::{Store, Writer};
use kube::runtime::watcher::{self, Event};
use strait_api::Kind;
use tokio::sync::watch as notify;
use tokio::task::JoinHandle;

use super::{Shared, lock};
use crate::objects;

/// Istio's field selector for Secrets (its credentials and secret controllers use the same):
/// Helm's release records and service-account tokens are most of a cluster's Secrets, large,
/// and nothing a mesh reads.
pub(super) const SECRET_FIELDS: &str =
    "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token";

/// Objects per page of an initial list (client-go's default).
const PAGE_SIZE: u32 = 500;

/// A task that ends when this handle is dropped.
#[derive(Debug)]
pub(super) struct AbortOnDrop(pub(super) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where one kind's watch stands.
#[derive(Debug, Default)]
pub(super) struct KindState {
    /// Listed once (or found not served).
    pub synced: bool,
    /// The API server does not serve the kind (404): its CRD is not installed.
    pub absent: bool,
    pub last_error: Option<String>,
}

/// One kind of one cluster.
pub(super) struct KindWatch {
    pub kind: Kind,
    pub store: Store<DynamicObject>,
    pub state: Arc<Mutex<KindState>>,
    _task: AbortOnDrop,
}

/// The watches of one cluster; dropping it ends them and frees their stores.
pub(super) struct ClusterWatch {
    /// For a remote cluster: the Secret (`namespace/name`) that names it.
    pub secret: Option<String>,
    pub kinds: Vec<KindWatch>,
}

impl ClusterWatch {
    /// Starts a watch per kind of `kinds` on `client`.
    pub fn start(
        shared: &Shared,
        cluster: &str,
        client: &Client,
        kinds: &[Kind],
        secret: Option<String>,
    ) -> ClusterWatch {
        let kinds = kinds
            .iter()
            .map(|&kind| {
                let ar = objects::api_resource(kind);
                // Secrets only where the control plane's own live (`cacerts`, remote
                // secrets, gateway credentials): its RBAC grants no other namespace. The
                // mesh's ConfigMaps (`istio`, the injector's) live there too: watching every
                // namespace's would hold them all and rebuild the mesh at every write.
                let api = if matches!(kind, Kind::Secret | Kind::ConfigMap) {
                    Api::<DynamicObject>::namespaced_with(
                        client.clone(),
                        &shared.options.istio_namespace,
                        &ar,
                    )
                } else {
                    Api::<DynamicObject>::all_with(client.clone(), &ar)
                };
                let writer = Writer::new(ar);
                let store = writer.as_reader();
                let state = Arc::new(Mutex::new(KindState::default()));
                let task = shared.runtime.spawn(run(
                    Target {
                        cluster: cluster.to_string(),
                        kind,
                        state: state.clone(),
                        generation: shared.generation.clone(),
                    },
                    api,
                    writer,
                ));
                KindWatch {
                    kind,
                    store,
                    state,
                    _task: AbortOnDrop(task),
                }
            })
            .collect();
        ClusterWatch { secret, kinds }
    }

    /// Ok when every kind has listed once; otherwise the kinds still listing and why, the
    /// kinds that fail alike named together.
    pub fn synced(&self) -> Result<(), String> {
        let mut pending: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for k in &self.kinds {
            let s = lock(&k.state);
            if !s.synced {
                let why = s
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not synced yet".into());
                pending.entry(why).or_default().push(k.kind.name());
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        Err(pending
            .into_iter()
            .map(|(why, kinds)| format!("{}: {why}", kinds.join(", ")))
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// What a watch task reports to.
struct Target {
    cluster: String,
    kind: Kind,
    state: Arc<Mutex<KindState>>,
    generation: notify::Sender<u64>,
}

impl Target {
    fn bump(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }
}

fn config(kind: Kind) -> watcher::Config {
    let config = watcher::Config::default().page_size(PAGE_SIZE);
    if kind == Kind::Secret {
        config.fields(SECRET_FIELDS)
    } else {
        config
    }
}

/// Drops what no check reads and what can make up half an object.
pub(super) fn strip(o: &mut DynamicObject) {
    o.metadata.managed_fields = None;
    if let Some(a) = o.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Feeds one kind's store until the task is aborted. A watcher error never ends the stream:
/// the watcher starts over (a re-list after 410 Gone), after the default backoff.
async fn run(target: Target, api: Api<DynamicObject>, mut writer: Writer<DynamicObject>) {
    let mut events = watcher::watcher(api, config(target.kind))
        .default_backoff()
        .boxed();
    while let Some(item) = events.next().await {
        match item {
            Ok(event) => {
                let event = event.modify(strip);
                writer.apply_watcher_event(&event);
                match event {
                    Event::Init | Event::InitApply(_) => {}
                    Event::InitDone => {
                        *lock(&target.state) = KindState {
                            synced: true,
                            ..KindState::default()
                        };
                        target.bump();
                    }
                    Event::Apply(_) | Event::Delete(_) => target.bump(),
                }
            }
            Err(e) if optional(target.kind) && not_served(&e) => {
                let first = {
                    let mut s = lock(&target.state);
                    // A security kind that was listed keeps what it held: a 404 from an API
                    // server restarting, or CRDs re-applied without this version, must not
                    // make every DENY policy vanish. Only a kind never listed reads as empty.
                    if s.synced && !s.absent && keeps_on_404(target.kind) {
                        if s.last_error.is_none() {
                            tracing::warn!(
                                cluster = %target.cluster, kind = %target.kind, error = %e,
                                "the API server stopped serving this kind; keeping the policies last listed, retrying"
                            );
                        }
                        s.last_error = Some(e.to_string());
                        continue;
                    }
                    let first = !s.absent;
                    *s = KindState {
                        synced: true,
                        absent: true,
                        last_error: Some(e.to_string()),
                    };
                    first
                };
                if first {
                    // A CRD deleted after the kind was listed leaves no objects behind.
                    writer.apply_watcher_event(&Event::Init);
                    writer.apply_watcher_event(&Event::InitDone);
                    tracing::warn!(
                        cluster = %target.cluster, kind = %target.kind, error = %e,
                        "the API server does not serve this kind (CRD not installed?); read as empty, retrying"
                    );
                    target.bump();
                }
            }
            Err(e) => {
                let message = e.to_string();
                let mut s = lock(&target.state);
                if s.last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(
                        cluster = %target.cluster, kind = %target.kind, error = %message,
                        "watch failed; retrying"
                    );
                } else {
                    tracing::debug!(cluster = %target.cluster, kind = %target.kind, error = %message, "watch failed again");
                }
                s.last_error = Some(message);
            }
        }
    }
}

/// Whether a cluster may lack the kind: Istio's and the Gateway API's kinds come with CRDs
/// that a cluster may not have installed. A built-in kind the server does not serve means the
/// server is not what it should be, and is reported as an error.
/// Kinds whose last listed objects stay in force when their API disappears.
fn keeps_on_404(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::AuthorizationPolicy | Kind::PeerAuthentication | Kind::RequestAuthentication
    )
}

fn optional(kind: Kind) -> bool {
    kind.is_istio() || kind.group() == "gateway.networking.k8s.io"
}

/// A 404 on list or watch: the server does not serve the kind.
fn not_served(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s)) => s.code == 404,
        _ => false,
    }
}
