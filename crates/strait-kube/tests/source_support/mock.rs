//! A Kubernetes API server in memory, behind kube-rs's mock service layer: it answers a list
//! (`GET <path>`) with the list body set for that path and a watch (`GET <path>?watch=true`)
//! with the next queued event stream, holding the request open until the test queues one, as
//! an API server holds a watch open until something happens. Paths it has no data for get a
//! 404 `Status`, as an API server answers for a CRD that is not installed.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::SendResponse;

type Pending = SendResponse<Response<Body>>;

#[derive(Default)]
struct State {
    /// Signalled on every request.
    requested: Arc<tokio::sync::Notify>,
    lists: HashMap<String, Value>,
    watches: HashMap<String, VecDeque<String>>,
    parked: HashMap<String, Vec<Pending>>,
    /// Every request's path and query, in order.
    log: Vec<String>,
}

/// One mock API server.
#[derive(Clone, Default)]
pub struct Server {
    state: Arc<Mutex<State>>,
}

impl Server {
    /// A server and a client of it; the server runs until the client and all its clones are
    /// dropped.
    pub fn start() -> (Server, kube::Client) {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = Server::default();
        let s = server.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                s.answer(&req, send);
            }
        });
        (server, kube::Client::new(svc, "default"))
    }

    /// Sets the list response of `path` (e.g. `/api/v1/services`).
    pub fn set_list(&self, path: &str, list: Value) {
        self.lock().lists.insert(path.to_string(), list);
    }

    /// Queues one watch response for `path`: newline-delimited watch events. A watch waiting
    /// for one gets it at once.
    pub fn push_watch(&self, path: &str, events: &str) {
        let mut st = self.lock();
        let parked = st.parked.get_mut(path).and_then(Vec::pop);
        match parked {
            Some(send) => send.send_response(ok(events.as_bytes().to_vec())),
            None => st
                .watches
                .entry(path.to_string())
                .or_default()
                .push_back(events.to_string()),
        }
    }

    /// Stops serving `path`, as when its CRD (or that version of it) goes away: lists and
    /// watches answer 404 from now on, and a watch waiting for events ends.
    pub fn unserve(&self, path: &str) {
        let mut st = self.lock();
        st.lists.remove(path);
        for send in st.parked.remove(path).unwrap_or_default() {
            send.send_response(ok(Vec::new()));
        }
    }

    /// How many requests named `path` so far.
    pub fn requests_to(&self, path: &str) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|r| r.starts_with(&format!("{path}?")))
            .count()
    }

    /// Whether a watch of `path` is waiting for events.
    pub fn watching(&self, path: &str) -> bool {
        self.lock().parked.get(path).is_some_and(|p| !p.is_empty())
    }

    /// Serves an empty list for every kind of `kinds` that is built into Kubernetes (an API
    /// server always serves those); Istio's and the Gateway API's kinds are left unserved, as
    /// in a cluster without their CRDs.
    pub fn serve_builtin(&self, kinds: &[strait_api::Kind]) {
        for &kind in kinds {
            let g = kind.group();
            if kind.is_istio() || g == "gateway.networking.k8s.io" {
                continue;
            }
            let ar = strait_kube::objects::api_resource(kind);
            let list = json!({
                "kind": format!("{}List", ar.kind),
                "apiVersion": ar.api_version,
                "metadata": {"resourceVersion": "1"},
                "items": [],
            });
            // The control plane reads Secrets and ConfigMaps in its own namespace only.
            let at = if matches!(kind, strait_api::Kind::Secret | strait_api::Kind::ConfigMap) {
                format!("/api/v1/namespaces/istio-system/{}", ar.plural)
            } else {
                path(kind)
            };
            self.set_list(&at, list);
        }
    }

    /// Resolves at the next request.
    pub fn requested(&self) -> Arc<tokio::sync::Notify> {
        self.lock().requested.clone()
    }

    /// The requests so far (`path?query`).
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    fn answer(&self, req: &Request<Body>, send: Pending) {
        let query = req.uri().query().unwrap_or("");
        // A watch by label (remote secrets) and one without on the same collection are two
        // conversations: `<path>?labelSelector` is the first's key.
        let path = if query.contains("labelSelector=") {
            format!("{}?labelSelector", req.uri().path())
        } else {
            req.uri().path().to_string()
        };
        let mut st = self.lock();
        st.log.push(format!("{}?{query}", req.uri().path()));
        st.requested.notify_waiters();
        let Some(list) = st.lists.get(&path).cloned() else {
            drop(st);
            send.send_response(not_found(&path));
            return;
        };
        if query.split('&').any(|p| p == "watch=true") {
            match st.watches.get_mut(&path).and_then(VecDeque::pop_front) {
                Some(events) => send.send_response(ok(events.into_bytes())),
                None => st.parked.entry(path).or_default().push(send),
            }
        } else {
            drop(st);
            send.send_response(ok(list.to_string().into_bytes()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("mock state")
    }
}

/// The collection path of a kind (all namespaces).
pub fn path(kind: strait_api::Kind) -> String {
    let ar = strait_kube::objects::api_resource(kind);
    if ar.group.is_empty() {
        format!("/api/{}/{}", ar.version, ar.plural)
    } else {
        format!("/apis/{}/{}/{}", ar.group, ar.version, ar.plural)
    }
}

fn ok(body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("response")
}

/// What an API server answers for a resource it does not serve.
fn not_found(path: &str) -> Response<Body> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure",
        "message": format!("the server could not find the requested resource (get {path})"),
        "reason": "NotFound",
        "details": {},
        "code": 404,
    });
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header("content-type", "application/json")
        .body(Body::from(status.to_string().into_bytes()))
        .expect("response")
}

/// A file of `tests/data/source/`.
pub fn data(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/source")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A JSON file of `tests/data/source/`.
pub fn json(name: &str) -> Value {
    serde_json::from_str(&data(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Waits until `f` holds, at most a generous deadline; the deadline only turns a hang into a
/// failure.
pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
