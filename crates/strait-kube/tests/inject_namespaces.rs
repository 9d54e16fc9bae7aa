//! The injector reads namespace labels as the API server has them: a namespace that asks for
//! another revision is left to that revision's injector, which the config alone (and the
//! namespaceSelector's trust) would have injected.

use std::collections::BTreeMap;

use http::{Request, Response};
use kube::client::Body;
use serde_json::json;
use strait_kube::inject::{Config, Decision, decision, namespaces};

fn pod() -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "sleep-1", "namespace": "sample", "labels": {"app": "sleep"}},
        "spec": {"containers": [{"name": "sleep", "image": "curl"}]},
    }))
    .expect("pod")
}

/// An API server that lists two namespaces and then holds the watch open.
fn api() -> kube::Client {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        let mut parked = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            assert_eq!(req.uri().path(), "/api/v1/namespaces");
            if req.uri().query().unwrap_or("").contains("watch=true") {
                parked.push(send);
                continue;
            }
            let list = json!({
                "kind": "NamespaceList", "apiVersion": "v1",
                "metadata": {"resourceVersion": "812"},
                "items": [
                    {"metadata": {"name": "sample", "resourceVersion": "700",
                                  "labels": {"istio.io/rev": "canary"}}},
                    {"metadata": {"name": "shop", "resourceVersion": "701",
                                  "labels": {"istio-injection": "enabled"}}},
                ],
            });
            let body = Body::from(serde_json::to_vec(&list).expect("json"));
            send.send_response(
                Response::builder()
                    .status(200)
                    .body(body)
                    .expect("response"),
            );
        }
    });
    kube::Client::new(svc, "default")
}

#[tokio::test]
async fn namespace_labels_come_from_the_api_server() {
    let config = Config::new("strait:test");
    // Before the watch lists anything the webhook's namespaceSelector is trusted.
    assert!(matches!(
        decision(&pod(), "sample", &config),
        Decision::Sidecar(_)
    ));
    let task = tokio::spawn(namespaces::watch(api(), config.live.clone()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while config.live.snapshot().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "namespaces never listed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.abort();
    let live = config.live.snapshot().expect("listed");
    assert_eq!(
        live.get("sample"),
        Some(&BTreeMap::from([("istio.io/rev".into(), "canary".into())]))
    );
    // sample asks for the canary revision: not this (default) injector's pod.
    let d = decision(&pod(), "sample", &config);
    assert!(matches!(d, Decision::Skip(_)), "{d:?}");
    assert!(matches!(
        decision(&pod(), "shop", &config),
        Decision::Sidecar(_)
    ));
}
