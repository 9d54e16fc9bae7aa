//! The scrape loop: every [`EVERY`] the state file is read again (pods come and go), every
//! proxy's metrics are scraped at once, and a new snapshot of the mesh (topology and edges)
//! replaces the last. Requests for `/api/mesh` read the snapshot and never wait on a proxy.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use strait_local::observe::prom;
use strait_local::observe::topology::{self, Topology, WorkloadInfo};
use strait_local::observe::traffic::{self, Edge, Scrape, Window};
use strait_local::up::state::{PodState, State};

/// How often the proxies are scraped (the page asks as often).
pub(super) const EVERY: Duration = Duration::from_secs(2);
/// The span a rate is taken over: long enough that a few requests a second give a steady
/// figure, short enough that a change shows within a few refreshes.
const WINDOW: Duration = Duration::from_secs(10);
/// How long one proxy has to answer a scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the manifests are read again for versions and services.
const MODEL_EVERY: Duration = Duration::from_secs(10);

/// The latest snapshot, as the JSON `/api/mesh` serves.
#[derive(Default)]
pub(super) struct Live {
    json: Mutex<Bytes>,
}

impl Live {
    pub(super) fn get(&self) -> Bytes {
        let b = self
            .json
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if b.is_empty() {
            Bytes::from_static(b"{\"error\":\"no snapshot yet\"}")
        } else {
            b
        }
    }

    pub(super) fn set(&self, b: Bytes) {
        *self.json.lock().unwrap_or_else(PoisonError::into_inner) = b;
    }
}

/// What `/api/mesh` answers.
#[derive(Serialize)]
struct Snapshot<'a> {
    /// Seconds since the Unix epoch when it was taken.
    at: f64,
    /// The mesh directory.
    mesh: String,
    /// The span rates are taken over, in seconds (shorter just after start).
    window_seconds: f64,
    topology: &'a Topology,
    edges: &'a [Edge],
    /// Proxies whose metrics were read.
    scraped: usize,
    /// What went wrong this round (a proxy that did not answer, a mesh that stopped).
    problems: &'a [String],
}

/// The scrape loop's memory: each proxy's recent scrapes, and what the manifests say.
pub(super) struct Scraper {
    dir: PathBuf,
    started: Instant,
    history: BTreeMap<String, VecDeque<Scrape>>,
    model: Option<(Instant, Vec<WorkloadInfo>)>,
}

impl Scraper {
    pub(super) fn new(dir: &Path) -> Scraper {
        Scraper {
            dir: dir.to_path_buf(),
            started: Instant::now(),
            history: BTreeMap::new(),
            model: None,
        }
    }

    /// Runs rounds forever, publishing each to `live`.
    pub(super) async fn run(mut self, live: Arc<Live>) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            live.set(self.round().await);
        }
    }

    /// One round: read the state, scrape every proxy, compute the snapshot.
    pub(super) async fn round(&mut self) -> Bytes {
        let mut problems = Vec::new();
        let st = match State::load(&self.dir) {
            Ok(st) => st,
            Err(e) => {
                // Keep serving the page: the mesh may be restarting.
                problems.push(format!("no running mesh: {e}"));
                return json(&Snapshot {
                    at: now(),
                    mesh: String::new(),
                    window_seconds: 0.0,
                    topology: &topology::topology(&empty_state(), &[]),
                    edges: &[],
                    scraped: 0,
                    problems: &problems,
                });
            }
        };
        let info = self.workload_info(&st).await;
        let proxies: Vec<PodState> = st.pods.iter().filter(|p| p.sidecar).cloned().collect();
        let mut scrapes = tokio::task::JoinSet::new();
        let live: Vec<String> = proxies.iter().map(PodState::key).collect();
        for pod in proxies {
            scrapes.spawn(async move {
                let text = strait_local::observe::scrape(&pod, SCRAPE_TIMEOUT).await;
                (pod.key(), text)
            });
        }
        let at = self.started.elapsed().as_secs_f64();
        let mut scraped = 0;
        while let Some(done) = scrapes.join_next().await {
            let Ok((key, text)) = done else { continue };
            match text {
                Ok(text) => {
                    scraped += 1;
                    let h = self.history.entry(key).or_default();
                    h.push_back(Scrape {
                        at,
                        samples: prom::parse(&text, traffic::FAMILIES),
                    });
                    // Keep the newest scrape older than the window, as its start.
                    while h.len() > 2 && h.get(1).is_some_and(|s| at - s.at >= WINDOW.as_secs_f64())
                    {
                        h.pop_front();
                    }
                }
                Err(e) => problems.push(format!("{key}: {e}")),
            }
        }
        self.history.retain(|k, _| live.contains(k));
        let windows: Vec<Window<'_>> = self
            .history
            .values()
            .filter(|h| h.len() >= 2)
            .filter_map(|h| {
                Some(Window {
                    before: h.front()?,
                    after: h.back()?,
                })
            })
            .collect();
        let window_seconds = windows
            .iter()
            .map(|w| w.after.at - w.before.at)
            .fold(0.0, f64::max);
        let edges = traffic::edges(&windows);
        json(&Snapshot {
            at: now(),
            mesh: st.mesh.display().to_string(),
            window_seconds,
            topology: &topology::topology(&st, &info),
            edges: &edges,
            scraped,
            problems: &problems,
        })
    }

    /// What the manifests say about each workload, read again every [`MODEL_EVERY`] (the
    /// files may be edited while the mesh runs). Building the model is CPU work: off the
    /// runtime's threads.
    async fn workload_info(&mut self, st: &State) -> Vec<WorkloadInfo> {
        if let Some((built, info)) = &self.model
            && built.elapsed() < MODEL_EVERY
        {
            return info.clone();
        }
        let mesh = st.mesh.clone();
        let info = tokio::task::spawn_blocking(move || {
            let input = strait_api::read_input(&[mesh]);
            let (model, _) = strait_model::build(input, &strait_model::BuildOptions::default());
            topology::workload_info(&model)
        })
        .await
        .unwrap_or_default();
        self.model = Some((Instant::now(), info.clone()));
        info
    }
}

fn json(s: &Snapshot<'_>) -> Bytes {
    // Serializing plain data with string keys cannot fail; an empty object stands in if it did.
    Bytes::from(serde_json::to_vec(s).unwrap_or_else(|_| b"{}".to_vec()))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn empty_state() -> State {
    State {
        pid: 0,
        mesh: PathBuf::new(),
        mode: Default::default(),
        networks: Vec::new(),
        clusters: Vec::new(),
        pods: Vec::new(),
        load_balancers: Vec::new(),
        public_netns: None,
    }
}
