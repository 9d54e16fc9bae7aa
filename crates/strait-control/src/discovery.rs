//! The discovery service: one stream per proxy. The first response carries the proxy's whole
//! configuration; after that, every mesh change is compiled again and only the resources that
//! differ from what the proxy acknowledged are sent, with the names of those that went away.
//! One response is in flight at a time: the next waits for the proxy's ACK or NACK, so a delta
//! always applies to a state the proxy really holds. A NACK leaves the proxy on its previous
//! configuration; it is recorded (and shown by `/debug/syncz`) and not retried until the mesh
//! changes again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strait_config::Kind;
use strait_config::proto::resource::Body;
use strait_config::proto::{Resource, ResourceName};
use strait_model::compile::{self, CompileError, Footprint, ProxyRef};
use strait_protocol::v1::discovery_server::Discovery;
use strait_protocol::v1::{DiscoveryRequest, DiscoveryResponse, Node};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Caller;
use crate::conn::Peer;
use crate::hub::{Current, Hub, ProxyStatus, unix_now};
use crate::identify::Identify;
use crate::metrics::TypeLabel;

/// A proxy's compiled configuration, as a session keeps it.
struct Built {
    service_account: String,
    footprint: Footprint,
    /// Every resource in its wire form.
    state: BTreeMap<Key, Body>,
}

impl Built {
    fn of(current: &Current, proxy: &ProxyRef) -> Result<Built, CompileError> {
        let config = compile::compile(&current.mesh, &current.runtime, proxy)?;
        Ok(Built {
            footprint: Footprint::of(&current.mesh, proxy, &config),
            state: config
                .resources()
                .into_iter()
                .filter_map(|r| Some(((Kind::of(&r)?, r.name), r.body?)))
                .collect(),
            service_account: config.mesh.node.service_account,
        })
    }
}

/// How long a new stream may take to say who it is.
const HELLO_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct DiscoveryService {
    pub hub: Arc<Hub>,
    pub identify: Identify,
    pub sessions: AtomicU64,
}

type Out = mpsc::Sender<Result<DiscoveryResponse, Status>>;

#[tonic::async_trait]
impl Discovery for DiscoveryService {
    type StreamStream = ReceiverStream<Result<DiscoveryResponse, Status>>;

    async fn stream(
        &self,
        req: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let address = req
            .extensions()
            .get::<Peer>()
            .map(|p| p.addr.to_string())
            .unwrap_or_default();
        let caller = self.identify.caller(&req).await.inspect_err(|s| {
            tracing::warn!(peer = %address, message = s.message(), "discovery stream refused");
        })?;
        let requests = req.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let id = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        let hub = self.hub.clone();
        tokio::spawn(async move {
            let mut requests = requests;
            match hello(&mut requests, &caller).await {
                Ok(node) => {
                    let mut s = Session::new(hub, node, caller, address, id, tx);
                    s.run(requests).await;
                    s.hub.disconnect_proxy(&s.key, id);
                    tracing::info!(proxy = %s.proxy, "discovery stream closed");
                }
                Err(status) => {
                    tracing::warn!(%address, error = %status.message(), "discovery stream refused");
                    let _ = tx.send(Err(status)).await;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Reads the first request and checks that the node it names belongs to the caller.
async fn hello(
    requests: &mut Streaming<DiscoveryRequest>,
    caller: &Caller,
) -> Result<Node, Status> {
    let first = tokio::time::timeout(HELLO_DEADLINE, requests.message())
        .await
        .map_err(|_| Status::deadline_exceeded("no node sent within 10 s"))??
        .ok_or_else(|| Status::cancelled("stream closed before the node was sent"))?;
    let node = first
        .node
        .ok_or_else(|| Status::invalid_argument("the first request must carry the node"))?;
    for (field, value) in [
        ("cluster", &node.cluster),
        ("namespace", &node.namespace),
        ("pod", &node.pod),
    ] {
        if value.is_empty() {
            return Err(Status::invalid_argument(format!("node.{field} is empty")));
        }
    }
    if node.cluster != caller.cluster || node.namespace != caller.namespace {
        return Err(Status::permission_denied(format!(
            "identity {}/{} (cluster {}) cannot ask for the configuration of pod {}/{} in cluster {}",
            caller.namespace,
            caller.service_account,
            caller.cluster,
            node.namespace,
            node.pod,
            node.cluster
        )));
    }
    Ok(node)
}

type Key = (Kind, String);

struct InFlight {
    nonce: String,
    version: String,
    state: BTreeMap<Key, Body>,
    /// The xDS types the response carried (for `pilot_total_xds_rejects`).
    types: std::collections::BTreeSet<&'static str>,
}

struct Session {
    hub: Arc<Hub>,
    proxy: ProxyRef,
    key: String,
    caller: Caller,
    id: u64,
    tx: Out,
    /// What the proxy holds: the resources of the last response it accepted.
    acked: BTreeMap<Key, Body>,
    /// Whether the proxy has accepted a full state on this stream.
    initialised: bool,
    in_flight: Option<InFlight>,
    nonces: u64,
    /// What the last compiled configuration depends on, and the generation it was compiled
    /// from: a later generation whose changes cannot affect it is not compiled.
    footprint: Option<Footprint>,
    compiled: u64,
    /// Whether the proxy rejected the last response (it is then compiled again on the next
    /// change, as before incremental pushes).
    nacked: bool,
}

enum Next {
    Continue,
    Close,
}

impl Session {
    fn new(
        hub: Arc<Hub>,
        node: Node,
        caller: Caller,
        address: String,
        id: u64,
        tx: Out,
    ) -> Session {
        let proxy = ProxyRef {
            cluster: node.cluster.clone(),
            namespace: node.namespace.clone(),
            pod: node.pod.clone(),
        };
        let key = format!("{}/{}/{}", proxy.cluster, proxy.namespace, proxy.pod);
        hub.connect_proxy(
            key.clone(),
            ProxyStatus {
                proxy: format!("{}.{}", node.pod, node.namespace),
                cluster: node.cluster,
                namespace: node.namespace,
                pod: node.pod,
                address: if node.ip.is_empty() { address } else { node.ip },
                build: node.build,
                connected_at: unix_now(),
                session: id,
                sent_version: String::new(),
                acked_version: String::new(),
                sent_nonce: String::new(),
                acked_nonce: String::new(),
                nack: None,
                pending: None,
            },
        );
        tracing::info!(proxy = %proxy, "discovery stream open");
        Session {
            hub,
            proxy,
            key,
            caller,
            id,
            tx,
            acked: BTreeMap::new(),
            initialised: false,
            in_flight: None,
            nonces: 0,
            footprint: None,
            compiled: 0,
            nacked: false,
        }
    }

    async fn run(&mut self, mut requests: Streaming<DiscoveryRequest>) {
        let mut generations = self.hub.subscribe();
        generations.mark_changed();
        let mut dirty = false;
        loop {
            if dirty && self.in_flight.is_none() {
                dirty = false;
                if let Next::Close = self.push().await {
                    return;
                }
            }
            tokio::select! {
                changed = generations.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    dirty = true;
                }
                msg = requests.message() => match msg {
                    Ok(Some(m)) => self.answer(m),
                    Ok(None) => return,
                    Err(e) => {
                        tracing::debug!(proxy = %self.proxy, error = %e, "discovery stream error");
                        return;
                    }
                },
                () = self.tx.closed() => return,
            }
        }
    }

    /// Compiles the proxy's configuration and sends what changed.
    async fn push(&mut self) -> Next {
        let started = Instant::now();
        let current = self.hub.snapshot();
        let generation = current.generation;
        if self.unaffected(generation) {
            // Nothing this proxy holds can have changed: it is in sync with this generation.
            self.compiled = generation;
            self.in_sync(generation.to_string());
            return Next::Continue;
        }
        // Compiling is CPU work of tens of milliseconds at 10,000 services: it runs on the
        // blocking pool, at most one per core at a time, so that a burst (every proxy
        // connecting at once, a mesh-wide change) never starves the runtime's threads of the
        // TLS handshakes, first requests and ACKs of other streams, which have deadlines.
        let Ok(slot) = self.hub.compile_slots.clone().acquire_owned().await else {
            return Next::Close;
        };
        // Waiting for a slot may have taken a while: compile what is in force now (a later
        // generation's changes include those of the one that woke this session).
        let current = self.hub.snapshot();
        let generation = current.generation;
        let since = current.since;
        self.hub.metrics.compiles.inc();
        let proxy = self.proxy.clone();
        let built = tokio::task::spawn_blocking(move || Built::of(&current, &proxy)).await;
        let built = match built {
            Ok(Ok(b)) => b,
            Ok(Err(e @ (CompileError::UnknownProxy(_) | CompileError::UnknownCluster(_)))) => {
                // The pod may not be in the control plane's view yet: wait for the next change.
                let why = e.to_string();
                tracing::warn!(proxy = %self.proxy, "{why}; waiting for it to appear");
                self.hub
                    .update_proxy(&self.key, self.id, |s| s.pending = Some(why));
                return Next::Continue;
            }
            Err(e) => {
                tracing::error!(proxy = %self.proxy, error = %e, "compiling the configuration failed");
                return Next::Close;
            }
        };
        drop(slot);
        if built.service_account != self.caller.service_account {
            let status = Status::permission_denied(format!(
                "pod {} runs as service account {}, but the caller is {}",
                self.proxy, built.service_account, self.caller.service_account
            ));
            tracing::warn!(proxy = %self.proxy, error = %status.message(), "discovery stream refused");
            let _ = self.tx.send(Err(status)).await;
            return Next::Close;
        }
        self.footprint = Some(built.footprint);
        self.compiled = generation;
        let state = built.state;
        let full_state = !self.initialised;
        let changed: Vec<(&Key, &Body)> = state
            .iter()
            .filter(|(k, body)| full_state || self.acked.get(*k) != Some(*body))
            .collect();
        let removed: Vec<&Key> = if full_state {
            Vec::new()
        } else {
            self.acked
                .keys()
                .filter(|k| !state.contains_key(*k))
                .collect()
        };
        self.hub
            .update_proxy(&self.key, self.id, |s| s.pending = None);
        if changed.is_empty() && removed.is_empty() {
            // The proxy already holds this generation's config: nothing is sent, and it is in
            // sync with it (after a NACK, the mesh may have moved back to what it accepted).
            self.nacked = false;
            self.in_sync(generation.to_string());
            return Next::Continue;
        }
        self.nonces += 1;
        let version = generation.to_string();
        let nonce = format!("{}-{}", self.id, self.nonces);
        let metrics = &self.hub.metrics;
        let mut types = std::collections::BTreeSet::new();
        for (k, b) in &changed {
            metrics.pushed(k.0, b.encoded_len());
            types.insert(crate::metrics::xds_type(k.0));
        }
        let resp = DiscoveryResponse {
            version: version.clone(),
            nonce: nonce.clone(),
            resources: changed
                .iter()
                .map(|((_, n), b)| Resource {
                    name: n.clone(),
                    body: Some((*b).clone()),
                })
                .collect(),
            removed: removed
                .iter()
                .map(|(k, n)| ResourceName {
                    kind: k.to_proto() as i32,
                    name: n.clone(),
                })
                .collect(),
            full_state,
        };
        tracing::debug!(
            proxy = %self.proxy, %version, full_state,
            changed = resp.resources.len(), removed = resp.removed.len(), "push"
        );
        let sending = Instant::now();
        if self.tx.send(Ok(resp)).await.is_err() {
            for ty in &types {
                metrics
                    .pushes
                    .get_or_create(&TypeLabel {
                        r#type: format!("{ty}_senderr"),
                    })
                    .inc();
            }
            return Next::Close;
        }
        metrics.send_time.observe(sending.elapsed().as_secs_f64());
        for ty in &types {
            metrics
                .push_time
                .get_or_create(&TypeLabel {
                    r#type: (*ty).into(),
                })
                .observe(started.elapsed().as_secs_f64());
        }
        metrics.convergence.observe(since.elapsed().as_secs_f64());
        self.hub.update_proxy(&self.key, self.id, |s| {
            s.sent_version.clone_from(&version);
            s.sent_nonce.clone_from(&nonce);
        });
        self.in_flight = Some(InFlight {
            nonce,
            version,
            state,
            types,
        });
        Next::Continue
    }

    /// Whether the changes since the last compile cannot affect this proxy's configuration,
    /// which it holds: it was accepted (or nothing needed sending).
    fn unaffected(&self, generation: u64) -> bool {
        let Some(fp) = &self.footprint else {
            return false;
        };
        self.initialised
            && !self.nacked
            && self
                .hub
                .changes_since(self.compiled, generation)
                .is_some_and(|c| !fp.affected_by(&c))
    }

    /// Records that the proxy holds `version`'s configuration without anything sent.
    fn in_sync(&self, version: String) {
        // After a NACK, the mesh may have moved back to what the proxy accepted.
        self.hub.update_proxy(&self.key, self.id, |s| {
            if s.nack.is_some() {
                s.sent_nonce.clone_from(&s.acked_nonce);
                s.nack = None;
            }
            if s.sent_nonce == s.acked_nonce && !s.acked_nonce.is_empty() {
                s.sent_version.clone_from(&version);
                s.acked_version.clone_from(&version);
            }
        });
    }

    /// An ACK or NACK of the response in flight.
    fn answer(&mut self, m: DiscoveryRequest) {
        let Some(f) = self.in_flight.take_if(|f| f.nonce == m.response_nonce) else {
            tracing::debug!(proxy = %self.proxy, nonce = %m.response_nonce, "answer to no response in flight; ignored");
            return;
        };
        self.nacked = !m.error_detail.is_empty();
        if m.error_detail.is_empty() {
            self.acked = f.state;
            self.initialised = true;
            self.hub.update_proxy(&self.key, self.id, |s| {
                s.acked_version.clone_from(&f.version);
                s.acked_nonce.clone_from(&f.nonce);
                s.nack = None;
            });
        } else {
            tracing::warn!(
                proxy = %self.proxy, version = %f.version, reason = %m.error_detail,
                "proxy rejected the configuration; it keeps its previous one"
            );
            for ty in &f.types {
                self.hub
                    .metrics
                    .rejects
                    .get_or_create(&TypeLabel {
                        r#type: (*ty).into(),
                    })
                    .inc();
            }
            self.hub.update_proxy(&self.key, self.id, |s| {
                s.nack = Some(m.error_detail.clone())
            });
        }
    }
}
