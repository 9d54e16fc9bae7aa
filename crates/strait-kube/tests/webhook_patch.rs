//! The injector's caBundle patcher against a mock API server: which requests it makes (path,
//! method, patch type and body), that a correct caBundle is left alone, and that a reset one is
//! repaired at the next check.

use std::time::Duration;

use base64::Engine;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use strait_kube::inject::webhook_patch::{PatchOutcome, keep_current, reconcile};
use tower_test::mock::{self, Handle};

const NAME: &str = "istio-sidecar-injector";
const PATH: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-sidecar-injector";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn roots() -> String {
    b64("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
}

/// The configuration as the install renders it, with the given caBundle per entry.
fn config(bundles: &[Option<&str>]) -> Value {
    let names = [
        "rev.namespace.sidecar-injector.istio.io",
        "rev.object.sidecar-injector.istio.io",
        "namespace.sidecar-injector.istio.io",
        "object.sidecar-injector.istio.io",
    ];
    let webhooks: Vec<Value> = names
        .iter()
        .zip(bundles)
        .map(|(n, b)| {
            let mut client_config = json!({"service": {
                "name": "istiod", "namespace": "istio-system", "port": 443, "path": "/inject"}});
            if let Some(b) = b {
                client_config["caBundle"] = json!(b);
            }
            json!({
                "name": n,
                "clientConfig": client_config,
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            })
        })
        .collect();
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": NAME, "resourceVersion": "7"},
        "webhooks": webhooks,
    })
}

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn mock_client() -> (kube::Client, ApiHandle) {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(svc, "default"), handle)
}

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).expect("json")))
        .expect("response")
}

async fn body_json(req: Request<Body>) -> Value {
    let bytes = req.into_body().collect_bytes().await.expect("body");
    serde_json::from_slice(&bytes).expect("json body")
}

/// Answers one GET of the configuration with `object`.
async fn expect_get(handle: &mut ApiHandle, object: &Value) {
    let (req, send) = handle.next_request().await.expect("a GET");
    assert_eq!(req.method(), Method::GET);
    assert_eq!(req.uri().path(), PATH);
    send.send_response(respond(StatusCode::OK, object));
}

/// Takes one PATCH and returns its body, answering with `object`.
async fn expect_patch(handle: &mut ApiHandle, object: &Value) -> Value {
    let (req, send) = handle.next_request().await.expect("a PATCH");
    assert_eq!(req.method(), Method::PATCH);
    assert_eq!(req.uri().path(), PATH);
    assert!(
        req.uri()
            .query()
            .is_some_and(|q| q.contains("fieldManager=strait-injector")),
        "{:?}",
        req.uri()
    );
    assert_eq!(
        req.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/strategic-merge-patch+json")
    );
    let body = body_json(req).await;
    send.send_response(respond(StatusCode::OK, object));
    body
}

#[tokio::test]
async fn stale_entries_are_patched_by_name_and_only_they() {
    let (client, mut handle) = mock_client();
    let want = roots();
    let old = b64("an old root");
    let task = tokio::spawn(async move { reconcile(&client, NAME, &roots()).await });
    expect_get(
        &mut handle,
        &config(&[
            Some(want.as_str()),
            None,
            Some(old.as_str()),
            Some(want.as_str()),
        ]),
    )
    .await;
    let body = expect_patch(&mut handle, &config(&[Some(want.as_str()); 4])).await;
    assert_eq!(
        body,
        json!({"webhooks": [
            {"name": "rev.object.sidecar-injector.istio.io", "clientConfig": {"caBundle": want}},
            {"name": "namespace.sidecar-injector.istio.io", "clientConfig": {"caBundle": want}},
        ]})
    );
    let outcome = task.await.expect("task").expect("reconciled");
    assert_eq!(
        outcome,
        PatchOutcome::Patched(vec![
            "rev.object.sidecar-injector.istio.io".into(),
            "namespace.sidecar-injector.istio.io".into(),
        ])
    );
}

#[tokio::test]
async fn a_correct_ca_bundle_is_left_alone() {
    let (client, mut handle) = mock_client();
    let want = roots();
    let task = tokio::spawn(async move { reconcile(&client, NAME, &roots()).await });
    expect_get(&mut handle, &config(&[Some(want.as_str()); 4])).await;
    let outcome = task.await.expect("task").expect("reconciled");
    assert_eq!(outcome, PatchOutcome::Current);
    // The client is gone with the task: had it sent anything more, it would be queued here.
    assert!(handle.next_request().await.is_none(), "no PATCH was sent");
}

#[tokio::test]
async fn a_missing_configuration_is_reported_as_not_found() {
    let (client, mut handle) = mock_client();
    let task = tokio::spawn(async move { reconcile(&client, NAME, &roots()).await });
    let (req, send) = handle.next_request().await.expect("a GET");
    assert_eq!(req.method(), Method::GET);
    send.send_response(respond(
        StatusCode::NOT_FOUND,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "NotFound", "code": 404,
            "message": "mutatingwebhookconfigurations.admissionregistration.k8s.io \"istio-sidecar-injector\" not found"}),
    ));
    let err = task.await.expect("task").expect_err("not found");
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains(NAME), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_reset_ca_bundle_is_repaired_at_the_next_check() {
    let (client, mut handle) = mock_client();
    let want = roots();
    let checker = tokio::spawn(keep_current(
        client,
        vec![NAME.to_string()],
        roots,
        Duration::from_secs(30),
    ));
    // At start: rendered empty, so patched.
    expect_get(&mut handle, &config(&[None; 4])).await;
    let first = expect_patch(&mut handle, &config(&[Some(want.as_str()); 4])).await;
    assert_eq!(first["webhooks"].as_array().map(Vec::len), Some(4));
    // Next check: current, nothing sent.
    expect_get(&mut handle, &config(&[Some(want.as_str()); 4])).await;
    // A `kubectl apply` of the install reset it: the check after repairs it.
    expect_get(&mut handle, &config(&[None; 4])).await;
    let repaired = expect_patch(&mut handle, &config(&[Some(want.as_str()); 4])).await;
    assert_eq!(repaired, first);
    checker.abort();
}
