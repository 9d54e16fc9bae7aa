//! A Kubernetes API server on loopback, for end-to-end tests of Kubernetes mode without a
//! cluster: it serves lists and watches of the objects a test gives it (every resource is
//! served; one it holds nothing of lists empty), accepts creates, updates, merge patches and
//! deletes with resourceVersion checks (Leases, ConfigMaps), answers TokenReviews from a table
//! of tokens, and records every request. Objects go in as the JSON `kubectl get -o json`
//! prints; the collection is found from `apiVersion` and `kind`.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

type Body = BoxBody<Bytes, Infallible>;

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub body: Option<Value>,
}

#[derive(Default)]
struct State {
    /// Collection path (`/api/v1/services`, `/apis/networking.istio.io/v1/virtualservices`)
    /// → objects, keyed by `namespace/name`.
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    rv: u64,
    watchers: Vec<Watcher>,
    seen: Vec<Seen>,
    /// Bearer token → service-account user name, for TokenReviews.
    tokens: HashMap<String, String>,
}

struct Watcher {
    collection: String,
    namespace: Option<String>,
    labels: Option<String>,
    fields: Option<String>,
    tx: mpsc::UnboundedSender<Bytes>,
}

/// A running fake API server; it stops with the test process.
#[derive(Clone)]
pub struct ApiServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// `apiVersion` + plural → the collection path.
fn collection(api_version: &str, plural: &str) -> String {
    if api_version.contains('/') {
        format!("/apis/{api_version}/{plural}")
    } else {
        format!("/api/{api_version}/{plural}")
    }
}

/// The plural the API server uses for a kind.
fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower == "endpoints" {
        lower
    } else if let Some(stem) = lower
        .strip_suffix('y')
        .filter(|stem| !stem.ends_with(['a', 'e', 'i', 'o', 'u']))
    {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

fn key(o: &Value) -> String {
    format!(
        "{}/{}",
        o["metadata"]["namespace"].as_str().unwrap_or(""),
        o["metadata"]["name"].as_str().unwrap_or("")
    )
}

fn selects(labels: &Option<String>, o: &Value) -> bool {
    let Some(sel) = labels else { return true };
    sel.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => o["metadata"]["labels"][k].as_str() == Some(v),
        None => true,
    })
}

/// `fieldSelector` terms on the fields the API server indexes for every kind:
/// `metadata.name`, `metadata.namespace` (and a Secret's `type`), with `=`, `==` or `!=`.
fn fields_select(sel: &Option<String>, o: &Value) -> bool {
    let Some(sel) = sel else { return true };
    sel.split(',').all(|term| {
        let (path, want, equal) = if let Some((p, v)) = term.split_once("!=") {
            (p, v, false)
        } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (p, v, true)
        } else {
            return true;
        };
        let have = match path {
            "metadata.name" => o["metadata"]["name"].as_str(),
            "metadata.namespace" => o["metadata"]["namespace"].as_str(),
            "type" => o["type"].as_str(),
            _ => return true,
        };
        (have == Some(want)) == equal
    })
}

fn event(kind: &str, o: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": o}).to_string();
    line.push('\n');
    Bytes::from(line)
}

impl State {
    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn notify(&mut self, collection: &str, kind: &str, o: &Value) {
        let ns = o["metadata"]["namespace"].as_str().map(str::to_string);
        self.watchers.retain(|w| {
            if w.collection != collection
                || (w.namespace.is_some() && w.namespace != ns)
                || !selects(&w.labels, o)
                || !fields_select(&w.fields, o)
            {
                return !w.tx.is_closed();
            }
            w.tx.send(event(kind, o)).is_ok()
        });
    }

    fn put(&mut self, collection: &str, mut o: Value) -> Value {
        let k = key(&o);
        if o["kind"] == "CustomResourceDefinition" {
            // What the API server's CRD controller reports once the kind is served.
            o["status"] = json!({"conditions": [{"type": "Established", "status": "True"}]});
        }
        let existed = self
            .objects
            .get(collection)
            .is_some_and(|m| m.contains_key(&k));
        o["metadata"]["resourceVersion"] = json!(self.next_rv());
        if o["metadata"]["uid"].is_null() {
            o["metadata"]["uid"] = json!(format!("uid-{}", self.rv));
        }
        self.objects
            .entry(collection.to_string())
            .or_default()
            .insert(k, o.clone());
        self.notify(collection, if existed { "MODIFIED" } else { "ADDED" }, &o);
        o
    }

    fn remove(&mut self, collection: &str, k: &str) -> Option<Value> {
        let mut o = self.objects.get_mut(collection)?.remove(k)?;
        o["metadata"]["resourceVersion"] = json!(self.next_rv());
        self.notify(collection, "DELETED", &o);
        Some(o)
    }
}

fn reply(status: StatusCode, v: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    reply(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

/// A request path taken apart: the collection, the namespace and the object's name.
struct Target {
    collection: String,
    namespace: Option<String>,
    name: Option<String>,
}

fn target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => (format!("/api/{v}"), rest),
        ["apis", g, v, rest @ ..] => (format!("/apis/{g}/{v}"), rest),
        _ => return None,
    };
    let t = |plural: &str, namespace: Option<&str>, name: Option<&str>| Target {
        collection: format!("{prefix}/{plural}"),
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
    };
    Some(match rest {
        [plural] => t(plural, None, None),
        ["namespaces", ns, plural] => t(plural, Some(ns), None),
        ["namespaces", ns, plural, name] => t(plural, Some(ns), Some(name)),
        [plural, name] => t(plural, None, Some(name)),
        _ => return None,
    })
}

fn query(uri: &hyper::Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            v.replace("%3D", "=")
                .replace("%2F", "/")
                .replace("%2C", ",")
                .replace("%21", "!")
        })
    })
}

/// A merge patch; `strategic` merges lists of named objects by `name`, as a strategic merge
/// patch does for the lists this server is patched on (webhooks, containers).
fn merge(base: &mut Value, patch: &Value, strategic: bool) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v, strategic);
                }
            }
        }
        (Value::Array(b), Value::Array(p))
            if strategic && p.iter().all(|e| e["name"].is_string()) =>
        {
            for e in p {
                match b.iter_mut().find(|x| x["name"] == e["name"]) {
                    Some(x) => merge(x, e, strategic),
                    None => b.push(e.clone()),
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

impl ApiServer {
    /// Starts a server on a loopback port of its own, on a runtime thread of its own.
    pub fn start() -> ApiServer {
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(l.local_addr().expect("addr")).expect("send addr");
                loop {
                    let Ok((conn, _)) = l.accept().await else {
                        continue;
                    };
                    let st = st.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let st = st.clone();
                            async move { Ok::<_, Infallible>(handle(&st, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(conn), svc)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().expect("server address");
        ApiServer { addr, state }
    }

    /// A kubeconfig with one context, `context`, for this server.
    pub fn kubeconfig(&self, context: &str) -> String {
        kubeconfig(&[(context, self.addr)])
    }

    /// Adds or replaces an object (as `kubectl apply` would), telling watchers.
    pub fn apply(&self, o: Value) -> Value {
        let av = o["apiVersion"].as_str().unwrap_or("v1").to_string();
        let kind = o["kind"].as_str().unwrap_or("").to_string();
        let mut st = self.state.lock().expect("state");
        st.put(&collection(&av, &plural(&kind)), o)
    }

    /// Deletes an object, telling watchers.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) {
        let mut st = self.state.lock().expect("state");
        st.remove(
            &collection(api_version, &plural(kind)),
            &format!("{namespace}/{name}"),
        );
    }

    /// An object as the server holds it now.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let st = self.state.lock().expect("state");
        st.objects
            .get(&collection(api_version, &plural(kind)))?
            .get(&format!("{namespace}/{name}"))
            .cloned()
    }

    /// TokenReviews of `token` authenticate `system:serviceaccount:<namespace>:<sa>`.
    pub fn grant_token(&self, token: &str, namespace: &str, service_account: &str) {
        self.state.lock().expect("state").tokens.insert(
            token.to_string(),
            format!("system:serviceaccount:{namespace}:{service_account}"),
        );
    }

    /// How many objects the server holds.
    pub fn count(&self) -> usize {
        let st = self.state.lock().expect("state");
        st.objects.values().map(BTreeMap::len).sum()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("state").seen.clone()
    }
}

/// The pod proxy subresource (`/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/<path>`), as
/// the API server serves it: the request goes on to the pod's address and port, and the pod's
/// answer comes back. `None` for any other path.
async fn pod_proxy(st: &Arc<Mutex<State>>, uri: &hyper::Uri) -> Option<Response<Body>> {
    let parts: Vec<&str> = uri.path().trim_start_matches('/').splitn(7, '/').collect();
    let ["api", "v1", "namespaces", ns, "pods", target, rest] = parts.as_slice() else {
        return None;
    };
    let (pod, rest) = (target.to_string(), rest.strip_prefix("proxy")?.to_string());
    let (pod, port) = pod.split_once(':').map_or((pod.clone(), 80), |(p, port)| {
        (p.to_string(), port.parse().unwrap_or(80))
    });
    let ip = {
        let s = st.lock().expect("state");
        s.objects
            .get("/api/v1/pods")
            .and_then(|m| m.get(&format!("{ns}/{pod}")))
            .and_then(|p| p["status"]["podIP"].as_str())
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
    };
    let Some(ip) = ip else {
        return Some(status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{pod}\" not found"),
        ));
    };
    let path = match uri.query() {
        Some(q) => format!("{}?{q}", if rest.is_empty() { "/" } else { &rest }),
        None => {
            if rest.is_empty() {
                "/".to_string()
            } else {
                rest
            }
        }
    };
    let addr = SocketAddr::new(ip, port);
    let answer = tokio::task::spawn_blocking(move || super::operator_get(addr, &path)).await;
    Some(match answer {
        Ok(Ok(r)) => Response::builder()
            .status(r.status)
            .body(Full::new(Bytes::from(r.body)).boxed())
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed())),
        _ => status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            &format!("error trying to reach service: dial tcp {addr}: connect: connection refused"),
        ),
    })
}

/// A kubeconfig with a context per `(name, API server address)`, the first one current, each
/// with a bearer token of its own.
pub fn kubeconfig(servers: &[(&str, SocketAddr)]) -> String {
    let mut clusters = String::new();
    let mut contexts = String::new();
    let mut users = String::new();
    for (name, addr) in servers {
        clusters.push_str(&format!(
            "- name: {name}\n  cluster:\n    server: http://{addr}\n"
        ));
        contexts.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n"
        ));
        users.push_str(&format!(
            "- name: {name}\n  user:\n    token: admin-{name}\n"
        ));
    }
    let current = servers.first().map_or("", |(n, _)| n);
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {current}\nclusters:\n{clusters}contexts:\n{contexts}users:\n{users}"
    )
}

async fn handle(st: &Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    let uri = parts.uri.clone();
    if let Some(answer) = pod_proxy(st, &uri).await {
        return answer;
    }
    let mut s = st.lock().expect("state");
    s.seen.push(Seen {
        method: parts.method.to_string(),
        uri: uri.to_string(),
        body: body.clone(),
    });
    let Some(t) = target(uri.path()) else {
        return status(StatusCode::NOT_FOUND, "NotFound", "no such path");
    };
    if t.collection.ends_with("/tokenreviews") && parts.method == Method::POST {
        let token = body
            .as_ref()
            .and_then(|b| b["spec"]["token"].as_str())
            .unwrap_or("");
        let mut review = body.clone().unwrap_or_else(|| json!({}));
        review["status"] = match s.tokens.get(token) {
            Some(user) => json!({"authenticated": true, "audiences": ["istio-ca"], "user": {
                "username": user, "uid": "u-1",
                "groups": ["system:serviceaccounts", "system:authenticated"]}}),
            None => json!({"authenticated": false, "error": "token not found"}),
        };
        return reply(StatusCode::CREATED, &review);
    }
    let k = |name: &str| format!("{}/{name}", t.namespace.as_deref().unwrap_or(""));
    match (&parts.method, &t.name) {
        (&Method::GET, None) if query(&uri, "watch").as_deref() == Some("true") => {
            let (tx, rx) = mpsc::unbounded_channel();
            s.watchers.push(Watcher {
                collection: t.collection.clone(),
                namespace: t.namespace.clone(),
                labels: query(&uri, "labelSelector"),
                fields: query(&uri, "fieldSelector"),
                tx,
            });
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                let b = rx.recv().await?;
                Some((Ok::<_, Infallible>(Frame::data(b)), rx))
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
        }
        (&Method::GET, None) => {
            let labels = query(&uri, "labelSelector");
            let fields = query(&uri, "fieldSelector");
            let items: Vec<Value> = s
                .objects
                .get(&t.collection)
                .map(|m| {
                    m.values()
                        .filter(|o| {
                            t.namespace.is_none()
                                || o["metadata"]["namespace"].as_str() == t.namespace.as_deref()
                        })
                        .filter(|o| selects(&labels, o) && fields_select(&fields, o))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            reply(
                StatusCode::OK,
                &json!({"kind": "List", "apiVersion": "v1",
                        "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}),
            )
        }
        (&Method::GET, Some(name)) => {
            match s.objects.get(&t.collection).and_then(|m| m.get(&k(name))) {
                Some(o) => reply(StatusCode::OK, o),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{name} not found"),
                ),
            }
        }
        (&Method::POST, None) => {
            let Some(mut o) = body else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "no body");
            };
            if let Some(ns) = &t.namespace {
                o["metadata"]["namespace"] = json!(ns);
            }
            let exists = s
                .objects
                .get(&t.collection)
                .is_some_and(|m| m.contains_key(&key(&o)));
            if exists {
                return status(StatusCode::CONFLICT, "AlreadyExists", "already exists");
            }
            let o = s.put(&t.collection, o);
            reply(StatusCode::CREATED, &o)
        }
        (&Method::PUT, Some(name)) => {
            let Some(mut o) = body else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "no body");
            };
            let current = s.objects.get(&t.collection).and_then(|m| m.get(&k(name)));
            let Some(current) = current else {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{name} not found"),
                );
            };
            let want = o["metadata"]["resourceVersion"].as_str();
            if want.is_some() && want != current["metadata"]["resourceVersion"].as_str() {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "the object has been modified",
                );
            }
            if let Some(ns) = &t.namespace {
                o["metadata"]["namespace"] = json!(ns);
            }
            let o = s.put(&t.collection, o);
            reply(StatusCode::OK, &o)
        }
        (&Method::PATCH, Some(name)) => {
            let current = s
                .objects
                .get(&t.collection)
                .and_then(|m| m.get(&k(name)))
                .cloned();
            // A server-side apply creates what does not exist yet.
            let content_type = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let apply = content_type.contains("apply-patch");
            let strategic = content_type.contains("strategic-merge-patch");
            let current = match current {
                None if apply => Some(json!({"metadata": {}})),
                other => other,
            };
            let (Some(mut o), Some(patch)) = (current, body) else {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{name} not found"),
                );
            };
            merge(&mut o, &patch, strategic);
            if let Some(ns) = &t.namespace {
                o["metadata"]["namespace"] = json!(ns);
            }
            let o = s.put(&t.collection, o);
            reply(StatusCode::OK, &o)
        }
        (&Method::DELETE, Some(name)) => match s.remove(&t.collection, &k(name)) {
            Some(o) => reply(StatusCode::OK, &o),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{name} not found"),
            ),
        },
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not served",
        ),
    }
}
