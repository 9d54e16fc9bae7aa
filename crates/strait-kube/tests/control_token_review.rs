//! Bootstrap tokens checked with TokenReview against a mock API server answering with real
//! review bodies: who is accepted, who is refused and why, and which cluster is asked.

mod control_mock;

use std::time::Duration;

use control_mock::{client, data};
use serde_json::json;
use strait_control::auth::{AuthError, Authenticator, Caller};
use strait_kube::client::Clusters;
use strait_kube::control::TokenReview;

const TOKEN: &str =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IjRkZmJ0In0.eyJhdWQiOlsiaXN0aW8tY2EiXX0.c2lnbmF0dXJl";

/// Awaits something that must not ask the API server: a request nobody answers would block
/// it, so a generous deadline turns that into a failure.
async fn without_request<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("answered without asking the API server")
}

fn reviewer(cluster: &str) -> (TokenReview, control_mock::ApiServer) {
    let (c, server) = client();
    (TokenReview::new(Clusters::new(cluster, c), cluster), server)
}

/// Authenticates `TOKEN` as coming from `claimed` while the API server answers once.
async fn review_once(
    claimed: &str,
    status: u16,
    body: serde_json::Value,
) -> (Result<Caller, AuthError>, control_mock::Seen) {
    let (auth, mut server) = reviewer("cluster1");
    tokio::join!(
        auth.authenticate(TOKEN, claimed),
        server.answer(status, body)
    )
}

#[tokio::test]
async fn an_authenticated_service_account_is_the_caller() {
    let (result, seen) = review_once("cluster1", 201, data("tokenreview-authenticated.json")).await;
    assert_eq!(seen.method, http::Method::POST);
    assert_eq!(seen.path, "/apis/authentication.k8s.io/v1/tokenreviews");
    assert_eq!(seen.body["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(seen.body["kind"], "TokenReview");
    assert_eq!(seen.body["spec"]["token"], TOKEN);
    assert_eq!(seen.body["spec"]["audiences"], json!(["istio-ca"]));
    assert_eq!(
        result.expect("authenticated"),
        Caller {
            cluster: "cluster1".into(),
            namespace: "sample".into(),
            service_account: "sleep".into(),
        }
    );
}

#[tokio::test]
async fn a_caller_naming_no_cluster_is_reviewed_by_the_own_cluster() {
    let (result, _) = review_once("", 201, data("tokenreview-authenticated.json")).await;
    assert_eq!(result.expect("authenticated").cluster, "cluster1");
}

#[tokio::test]
async fn an_unauthenticated_token_is_refused_with_the_servers_reason() {
    let (result, _) = review_once("cluster1", 201, data("tokenreview-expired.json")).await;
    let e = result.expect_err("refused");
    assert!(
        matches!(&e, AuthError::NotAuthenticated { cluster, reason }
            if cluster == "cluster1" && reason.contains("has expired")),
        "{e:?}"
    );
    assert!(!e.retryable());
}

#[tokio::test]
async fn authenticated_false_without_an_error_is_refused() {
    let mut body = data("tokenreview-authenticated.json");
    body["status"]["authenticated"] = json!(false);
    let (result, _) = review_once("cluster1", 201, body).await;
    assert!(matches!(result, Err(AuthError::NotAuthenticated { .. })));
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let (result, _) = review_once("cluster1", 201, data("tokenreview-other-audience.json")).await;
    let e = result.expect_err("refused");
    assert!(
        matches!(&e, AuthError::WrongAudience { audiences, wanted, .. }
            if audiences == &["https://kubernetes.default.svc.cluster.local"] && wanted == "istio-ca"),
        "{e:?}"
    );
    assert!(e.to_string().contains("istio-ca"), "{e}");
}

/// No audiences in the answer means the token is valid for the API server's own audience
/// only: a pod's default service-account token, which must not buy a mesh identity.
#[tokio::test]
async fn a_token_valid_for_no_audience_of_ours_is_refused() {
    let mut body = data("tokenreview-authenticated.json");
    body["status"]
        .as_object_mut()
        .expect("status")
        .remove("audiences");
    let (result, _) = review_once("cluster1", 201, body).await;
    let e = result.expect_err("refused");
    assert!(
        matches!(&e, AuthError::WrongAudience { audiences, wanted, .. } if audiences.is_empty() && wanted == "istio-ca"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_user_that_is_not_a_service_account_is_refused() {
    let (result, _) = review_once("cluster1", 201, data("tokenreview-user.json")).await;
    let e = result.expect_err("refused");
    assert!(
        matches!(&e, AuthError::NotServiceAccount { username, .. } if username == "oidc:alice@example.com"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_service_account_name_outside_the_service_account_group_is_refused() {
    // A username shaped like a service account's, from an authenticator that does not put
    // it in system:serviceaccounts (an impersonating webhook, a static token file).
    let mut body = data("tokenreview-authenticated.json");
    body["status"]["user"]["groups"] = json!(["system:authenticated"]);
    let (result, _) = review_once("cluster1", 201, body).await;
    assert!(matches!(result, Err(AuthError::NotServiceAccount { .. })));
}

#[tokio::test]
async fn a_forbidden_review_names_the_missing_permission() {
    let (result, _) = review_once("cluster1", 403, data("status-forbidden-tokenreview.json")).await;
    let e = result.expect_err("refused");
    assert!(
        matches!(&e, AuthError::ReviewForbidden { cluster, .. } if cluster == "cluster1"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("tokenreviews.authentication.k8s.io"),
        "{text}"
    );
    assert!(text.contains("cannot create resource"), "{text}");
    assert!(e.retryable());
}

#[tokio::test]
async fn a_server_error_is_unavailable_not_a_verdict() {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500});
    let (result, _) = review_once("cluster1", 500, status).await;
    let e = result.expect_err("refused");
    assert!(
        matches!(&e, AuthError::ReviewUnavailable { reason, .. } if reason.contains("etcdserver")),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_unknown_cluster_is_refused_without_asking_anyone() {
    let (auth, _server) = reviewer("cluster1");
    let e = without_request(auth.authenticate(TOKEN, "cluster9"))
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, AuthError::UnknownCluster { cluster, known } if cluster == "cluster9" && known == &["cluster1"]),
        "{e:?}"
    );
    assert!(e.to_string().contains("cluster9"), "{e}");
}

#[tokio::test]
async fn a_remote_caller_is_reviewed_by_its_own_cluster() {
    let (own, _own_server) = client();
    let (remote, mut remote_server) = client();
    let clusters = Clusters::new("cluster1", own);
    clusters.insert("cluster2", remote);
    let auth = TokenReview::new(clusters, "cluster1");
    let (result, seen) = tokio::join!(
        auth.authenticate(TOKEN, "cluster2"),
        remote_server.answer(201, data("tokenreview-authenticated.json"))
    );
    assert_eq!(seen.path, "/apis/authentication.k8s.io/v1/tokenreviews");
    assert_eq!(result.expect("authenticated").cluster, "cluster2");
}

#[tokio::test]
async fn a_positive_review_is_reused_and_a_negative_one_is_not() {
    let (auth, mut server) = reviewer("cluster1");
    let (first, _) = tokio::join!(
        auth.authenticate(TOKEN, "cluster1"),
        server.answer(201, data("tokenreview-authenticated.json"))
    );
    first.expect("authenticated");
    // No request reaches the server: the review is remembered.
    let again = without_request(auth.authenticate(TOKEN, "cluster1"))
        .await
        .expect("cached");
    assert_eq!(again.namespace, "sample");

    // A refused token is asked about every time.
    for _ in 0..2 {
        let (r, _) = tokio::join!(
            auth.authenticate("other-token", "cluster1"),
            server.answer(201, data("tokenreview-expired.json"))
        );
        r.expect_err("refused");
    }
}

#[tokio::test]
async fn the_cache_is_bounded_oldest_out_first() {
    let (auth, mut server) = reviewer("cluster1");
    let auth = auth.with_cache(Duration::from_secs(3600), 1);
    for token in ["token-a", "token-b"] {
        let (r, _) = tokio::join!(
            auth.authenticate(token, "cluster1"),
            server.answer(201, data("tokenreview-authenticated.json"))
        );
        r.expect("authenticated");
    }
    // token-b is remembered; token-a made room for it and is reviewed again.
    without_request(auth.authenticate("token-b", "cluster1"))
        .await
        .expect("cached");
    let (r, seen) = tokio::join!(
        auth.authenticate("token-a", "cluster1"),
        server.answer(201, data("tokenreview-authenticated.json"))
    );
    r.expect("authenticated");
    assert_eq!(seen.body["spec"]["token"], "token-a");
}

#[tokio::test]
async fn a_review_is_remembered_per_cluster() {
    let (own, mut own_server) = client();
    let (remote, mut remote_server) = client();
    let clusters = Clusters::new("cluster1", own);
    clusters.insert("cluster2", remote);
    let auth = TokenReview::new(clusters, "cluster1");
    let (r, _) = tokio::join!(
        auth.authenticate(TOKEN, "cluster1"),
        own_server.answer(201, data("tokenreview-authenticated.json"))
    );
    r.expect("authenticated");
    // The same token claimed for another cluster is that cluster's to judge.
    let (r, _) = tokio::join!(
        auth.authenticate(TOKEN, "cluster2"),
        remote_server.answer(201, data("tokenreview-expired.json"))
    );
    r.expect_err("refused by cluster2");
}
