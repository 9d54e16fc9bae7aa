//! An API server played by the test: kube's client talks to a `tower_test` mock, and the
//! test answers each request with a real Kubernetes JSON body after looking at what was
//! asked.

#![allow(dead_code)]

use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::Value;
use tower_test::mock::{self, Handle};

/// How long a test waits for the client's next request before failing.
const DEADLINE: Duration = Duration::from_secs(30);

pub struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
}

/// A request as the API server saw it.
#[derive(Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Value,
}

/// A client whose every request goes to the returned [`ApiServer`].
pub fn client() -> (kube::Client, ApiServer) {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(svc, "default"), ApiServer { handle })
}

/// A test data file as JSON.
pub fn data(name: &str) -> Value {
    let path = format!("{}/tests/data/control/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("test data");
    serde_json::from_str(&text).expect("test data is JSON")
}

impl ApiServer {
    /// Waits for the next request; the test answers it through the returned sender.
    async fn next(&mut self) -> (Seen, mock::SendResponse<Response<Body>>) {
        tokio::time::timeout(DEADLINE, self.next_or_gone())
            .await
            .expect("the client sends a request")
            .expect("the client is alive")
    }

    /// The next request, or `None` once every client is gone.
    async fn next_or_gone(&mut self) -> Option<(Seen, mock::SendResponse<Response<Body>>)> {
        let (req, send) = self.handle.next_request().await?;
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.expect("request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("request body is JSON")
        };
        let seen = Seen {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            body,
        };
        Some((seen, send))
    }

    /// Answers every request with what `reply` makes of it, until every client is gone; a
    /// request `reply` has no answer for is left pending, as a watch with no events is.
    pub async fn serve(mut self, mut reply: impl FnMut(&Seen) -> Option<(u16, Value)>) {
        let mut pending = Vec::new();
        while let Some((seen, send)) = self.next_or_gone().await {
            match reply(&seen) {
                Some((status, body)) => send.send_response(json_response(status, &body)),
                None => pending.push(send),
            }
        }
    }

    /// Waits for the next request and answers it with `status` and `body`.
    pub async fn answer(&mut self, status: u16, body: Value) -> Seen {
        let (seen, send) = self.next().await;
        send.send_response(json_response(status, &body));
        seen
    }

    /// Answers the next request with its own body, `resourceVersion` set to `version`, as a
    /// successful create or update does.
    pub async fn echo(&mut self, status: u16, version: &str) -> Seen {
        let (seen, send) = self.next().await;
        let mut out = seen.body.clone();
        out["metadata"]["resourceVersion"] = Value::String(version.to_string());
        send.send_response(json_response(status, &out));
        seen
    }
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).expect("json")))
        .expect("response")
}
