//! The control plane's shared state: the current mesh (swapped whole when the files change and
//! the new version loads cleanly), a generation counter every discovery session watches, and
//! what each connected proxy was sent and acknowledged.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;
use strait_api::ParseCache;
use strait_model::Mesh;
use strait_model::compile::{Changes, Runtime};
use tokio::sync::watch;

use crate::metrics::{Metrics, TypeLabel, VersionLabel};
use crate::source::{ClusterAccess, Fingerprint, Loaded, Rejected, Source};

/// The mesh in force and its generation.
#[derive(Debug)]
pub struct Hub {
    pub source: Source,
    /// The mesh in force and its generation, swapped together so that a push never pairs
    /// one generation's config with another's version number.
    current: ArcSwap<Current>,
    /// The input files as they were when last read (loaded or rejected): the watcher reloads
    /// when they differ.
    read: Mutex<Fingerprint>,
    /// The input files as they were when the mesh in force was read: a reload compares only
    /// the objects of files that changed since.
    in_force: Mutex<Fingerprint>,
    /// What each recent generation changed, oldest first: a session compiles its proxy again
    /// only when a change since its last compile can affect it.
    history: Mutex<VecDeque<(u64, Arc<Changes>)>>,
    /// Wakes sessions when the generation changes.
    generation: watch::Sender<u64>,
    rejected: Mutex<Option<Rejected>>,
    proxies: Mutex<BTreeMap<String, ProxyStatus>>,
    /// Serialises run-time updates, so two learners never overwrite each other's part.
    runtime_writes: Mutex<()>,
    /// What the loads parsed, by file: a reload parses only the files that changed.
    parse_cache: Arc<ParseCache>,
    /// Compiles running at once: one per core (see `discovery`).
    pub(crate) compile_slots: Arc<tokio::sync::Semaphore>,
    pub metrics: Arc<Metrics>,
}

/// What a push is compiled from, under one generation: the mesh, what the control plane
/// learned at run time (gateway hostnames resolved, gateways not answering), and the clusters
/// it reads.
#[derive(Debug)]
pub struct Current {
    pub generation: u64,
    /// When this generation's change was made (for convergence time).
    pub since: std::time::Instant,
    pub mesh: Arc<Mesh>,
    pub runtime: Arc<Runtime>,
    pub clusters: Arc<Vec<ClusterAccess>>,
}

/// Sync state of one connected proxy, as `/debug/syncz` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct ProxyStatus {
    /// `<pod>.<namespace>`, istioctl's proxy naming.
    pub proxy: String,
    pub cluster: String,
    pub namespace: String,
    pub pod: String,
    pub address: String,
    pub build: String,
    pub connected_at: u64,
    /// Distinguishes a proxy's successive streams.
    #[serde(skip)]
    pub session: u64,
    /// Version of the last response sent, and of the last one the proxy accepted.
    pub sent_version: String,
    pub acked_version: String,
    pub sent_nonce: String,
    pub acked_nonce: String,
    /// The reason given with the last rejection, until a later version is accepted.
    pub nack: Option<String>,
    /// Why nothing could be sent (the pod is not in the mesh yet, say).
    pub pending: Option<String>,
}

/// The istioctl `proxy-status` verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncState {
    Synced,
    Stale,
    Nacked,
    NotSent,
}

impl ProxyStatus {
    pub fn state(&self) -> SyncState {
        if self.sent_nonce.is_empty() {
            SyncState::NotSent
        } else if self.nack.is_some() && self.acked_nonce != self.sent_nonce {
            SyncState::Nacked
        } else if self.acked_nonce == self.sent_nonce {
            SyncState::Synced
        } else {
            SyncState::Stale
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind: keep serving it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `pilot_services` and `pilot_virt_services` for the mesh in force.
fn record_mesh(metrics: &Metrics, mesh: &Mesh) {
    let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    metrics.services.set(gauge(mesh.registry.hostnames().len()));
    let vs = mesh
        .primaries()
        .map(|c| c.of_kind(strait_api::Kind::VirtualService).count())
        .sum();
    metrics.virtual_services.set(gauge(vs));
}

fn warn_unsupported(mesh: &Mesh) {
    for line in crate::unsupported::report(mesh) {
        tracing::warn!("{line}");
    }
}

/// What a reload does once the new generation is out, off the path of the push: reporting
/// the unsupported fields in use (a walk of every object, a fifth of a reload at 1,000
/// services) and freeing the replaced mesh (a tenth), unless sessions still hold it.
fn after_publish(old: Arc<Current>, mesh: Arc<Mesh>) {
    let m = mesh.clone();
    let spawned = std::thread::Builder::new()
        .name("config-report".into())
        .spawn(move || {
            drop(old);
            warn_unsupported(&m);
        });
    if spawned.is_err() {
        // No thread to be had: report here, late but reported.
        warn_unsupported(&mesh);
    }
}

fn log_clusters(clusters: &[ClusterAccess]) {
    for c in clusters.iter().filter(|c| c.via == "secret") {
        let secret = c.secret.as_deref().unwrap_or("");
        if c.status == "synced" {
            tracing::info!(cluster = %c.cluster, %secret, "reading remote cluster");
        } else {
            tracing::warn!(cluster = %c.cluster, %secret, status = %c.status, "remote cluster not read");
        }
    }
}

/// Generations whose changes are kept for sessions that are behind.
const HISTORY: usize = 256;

/// Files added, removed or changed between two fingerprints.
fn changed_files(before: &Fingerprint, after: &Fingerprint) -> BTreeSet<PathBuf> {
    let a: BTreeSet<_> = before.iter().collect();
    let b: BTreeSet<_> = after.iter().collect();
    a.symmetric_difference(&b)
        .map(|(path, _, _)| path.clone())
        .collect()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Hub {
    /// Loads the source; the first load must succeed.
    pub fn new(source: Source, metrics: Arc<Metrics>) -> Result<Hub, Rejected> {
        let parse_cache = Arc::new(ParseCache::new());
        let (loaded, read) = loop {
            let (result, read) = source.load_settled_with(Some(&parse_cache));
            // A load torn by a concurrent edit is tried again once the writing has paused.
            if let Some(read) = read {
                break (result?, read);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let Loaded { mesh, clusters } = loaded;
        mesh.index();
        warn_unsupported(&mesh);
        log_clusters(&clusters);
        metrics.config_generation.set(1);
        record_mesh(&metrics, &mesh);
        Ok(Hub {
            source,
            current: ArcSwap::from_pointee(Current {
                generation: 1,
                since: std::time::Instant::now(),
                mesh: Arc::new(mesh),
                runtime: Arc::new(Runtime::default()),
                clusters: Arc::new(clusters),
            }),
            in_force: Mutex::new(read.clone()),
            read: Mutex::new(read),
            history: Mutex::new(VecDeque::new()),
            generation: watch::channel(1).0,
            rejected: Mutex::new(None),
            proxies: Mutex::new(BTreeMap::new()),
            runtime_writes: Mutex::new(()),
            parse_cache,
            compile_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            metrics,
        })
    }

    pub fn mesh(&self) -> Arc<Mesh> {
        self.current.load().mesh.clone()
    }

    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }

    /// The mesh in force and its generation, read together.
    pub fn current(&self) -> (u64, Arc<Mesh>) {
        let c = self.current.load();
        (c.generation, c.mesh.clone())
    }

    /// Everything a push is compiled from, read together.
    pub fn snapshot(&self) -> Arc<Current> {
        self.current.load_full()
    }

    /// Changes what was learned at run time; a change is a new generation, pushed to every
    /// proxy like an edit. (Each learner changes its own part: gateways, JWKS.)
    pub fn update_runtime(&self, f: impl FnOnce(&mut Runtime)) {
        let _one_at_a_time = lock(&self.runtime_writes);
        let c = self.current.load();
        let mut runtime = (*c.runtime).clone();
        f(&mut runtime);
        if *c.runtime == runtime {
            return;
        }
        // What was learned at run time (gateway addresses, JWKS) reaches istiod as service
        // and endpoint updates.
        self.metrics
            .push_triggers
            .get_or_create(&TypeLabel {
                r#type: "service".into(),
            })
            .inc();
        let next = Current {
            generation: c.generation + 1,
            since: std::time::Instant::now(),
            mesh: c.mesh.clone(),
            runtime: Arc::new(runtime),
            clusters: c.clusters.clone(),
        };
        drop(c);
        self.publish(next, Changes::everything());
    }

    /// Makes `next` the generation in force; returns the one it replaces.
    fn publish(&self, next: Current, changes: Changes) -> Arc<Current> {
        let generation = next.generation;
        {
            let mut history = lock(&self.history);
            history.push_back((generation, Arc::new(changes)));
            while history.len() > HISTORY {
                history.pop_front();
            }
        }
        let old = self.current.swap(Arc::new(next));
        self.generation.send_replace(generation);
        self.metrics
            .config_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        old
    }

    /// What changed after generation `from` up to `to`; `None` when that is no longer known
    /// (a session that fell that far behind compiles again).
    pub fn changes_since(&self, from: u64, to: u64) -> Option<Changes> {
        let history = lock(&self.history);
        let mut out = Changes::default();
        let mut expect = from + 1;
        for (g, c) in history.iter().filter(|(g, _)| *g > from && *g <= to) {
            if *g != expect {
                return None;
            }
            out.merge(c);
            expect += 1;
        }
        (expect == to + 1).then_some(out)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Whether the input files differ from what was last read.
    pub fn changed(&self) -> bool {
        *lock(&self.read) != self.source.fingerprint()
    }

    /// Re-reads the source. A clean load replaces the mesh and wakes every session; an update
    /// with errors is logged and dropped, and the previous mesh stays in force. A load during
    /// which a file changed is dropped unseen: the watcher sees the change and comes back.
    pub fn reload(&self) {
        let (result, read) = self.source.load_settled_with(Some(&self.parse_cache));
        self.parse_cache.forget_missing();
        let Some(read) = read else {
            tracing::debug!("configuration changed while being read; reading it again");
            return;
        };
        *lock(&self.read) = read.clone();
        match result {
            Ok(Loaded { mesh, clusters }) => {
                // Built here, on the watcher's thread, rather than by the first session.
                mesh.index();
                let files = {
                    let mut in_force = lock(&self.in_force);
                    let files = changed_files(&in_force, &read);
                    *in_force = read;
                    files
                };
                let changes = Changes::between(&self.mesh(), &mesh, Some(&files));
                log_clusters(&clusters);
                record_mesh(&self.metrics, &mesh);
                // A configuration change, as istiod counts one from its config store.
                let label = TypeLabel {
                    r#type: "config".into(),
                };
                self.metrics.inbound_updates.get_or_create(&label).inc();
                self.metrics.push_triggers.get_or_create(&label).inc();
                let mesh = Arc::new(mesh);
                // Publishing takes the run-time lock too: a learner updating at the same
                // moment must not have its update replaced by the previous run-time state.
                let _one_at_a_time = lock(&self.runtime_writes);
                let c = self.current.load_full();
                let generation = c.generation + 1;
                let next = Current {
                    generation,
                    since: std::time::Instant::now(),
                    mesh: mesh.clone(),
                    runtime: c.runtime.clone(),
                    clusters: Arc::new(clusters),
                };
                drop(c);
                let old = self.publish(next, changes);
                *lock(&self.rejected) = None;
                tracing::info!(generation, "configuration reloaded");
                after_publish(old, mesh);
            }
            Err(rejected) => {
                self.metrics.config_rejects.inc();
                for e in &rejected.errors {
                    tracing::error!("{e}");
                }
                tracing::error!(
                    errors = rejected.errors.len(),
                    generation = self.generation(),
                    "configuration update rejected; keeping the previous one"
                );
                *lock(&self.rejected) = Some(rejected);
            }
        }
    }

    /// The errors of the last rejected update, if the files are still in that state.
    pub fn rejected(&self) -> Option<Rejected> {
        lock(&self.rejected).clone()
    }

    /// Updates a proxy's status, if `session` is still the one connected for it (an older
    /// stream of a proxy that reconnected must not overwrite the new one's state).
    pub fn update_proxy(&self, key: &str, session: u64, f: impl FnOnce(&mut ProxyStatus)) {
        if let Some(s) = lock(&self.proxies)
            .get_mut(key)
            .filter(|s| s.session == session)
        {
            f(s);
        }
    }

    pub fn connect_proxy(&self, key: String, status: ProxyStatus) {
        let mut proxies = lock(&self.proxies);
        proxies.insert(key, status);
        self.count_connected(&proxies);
    }

    /// `pilot_xds`: connected proxies by the version they report.
    fn count_connected(&self, proxies: &BTreeMap<String, ProxyStatus>) {
        let mut by_version: BTreeMap<&str, i64> = BTreeMap::new();
        for p in proxies.values() {
            *by_version.entry(p.build.as_str()).or_default() += 1;
        }
        self.metrics.connected.clear();
        for (version, n) in by_version {
            self.metrics
                .connected
                .get_or_create(&VersionLabel {
                    version: version.to_string(),
                })
                .set(n);
        }
    }

    pub fn disconnect_proxy(&self, key: &str, session: u64) {
        let mut proxies = lock(&self.proxies);
        // A proxy that reconnected already replaced its entry: leave the new one.
        if proxies.get(key).is_some_and(|s| s.session == session) {
            proxies.remove(key);
        }
        self.count_connected(&proxies);
    }

    pub fn proxies(&self) -> Vec<ProxyStatus> {
        lock(&self.proxies).values().cloned().collect()
    }

    /// How many connected proxies have accepted `version` and have nothing in flight, without
    /// copying their status (a benchmark polls this).
    pub fn synced(&self, version: &str) -> usize {
        lock(&self.proxies)
            .values()
            .filter(|p| p.acked_version == version && p.acked_nonce == p.sent_nonce)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec:
  ports: [{name: http, port: 80}]
";

    #[test]
    fn reloads_follow_the_files_and_a_broken_edit_keeps_the_last_good_mesh() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, SERVICE).expect("write");
        let source = Source::files(vec![file.clone()]);
        let metrics = Arc::new(Metrics::new(
            &mut prometheus_client::registry::Registry::default(),
        ));
        let hub = Hub::new(source, metrics).expect("first load");
        assert!(!hub.changed());
        assert_eq!(hub.current().0, 1);

        // Appending makes the size differ, whatever the file system's time resolution.
        std::fs::write(
            &file,
            format!("{SERVICE}---\n{}", SERVICE.replace("name: a", "name: b")),
        )
        .expect("edit");
        assert!(hub.changed());
        hub.reload();
        assert!(!hub.changed());
        let (generation, mesh) = hub.current();
        assert_eq!(generation, 2);
        assert_eq!(hub.generation(), 2);
        assert_eq!(
            mesh.clusters[0].of_kind(strait_api::Kind::Service).count(),
            2
        );

        std::fs::write(&file, format!("{SERVICE}  bogusField: [\n")).expect("break");
        assert!(hub.changed());
        hub.reload();
        assert!(
            !hub.changed(),
            "a rejected edit is not retried until it changes"
        );
        assert_eq!(hub.generation(), 2);
        assert!(hub.rejected().is_some());
        assert!(Arc::ptr_eq(&hub.mesh(), &mesh));
    }
}
