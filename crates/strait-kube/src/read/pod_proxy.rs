//! A pod's HTTP port, read through the API server: `GET
//! /api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/<path>` (the `pods/proxy` subresource,
//! what `kubectl get --raw` uses). No port-forward and no route to the pod network is needed,
//! only RBAC `get` on `pods/proxy`. This is how the control plane's debug port (15014) and a
//! proxy's admin port (15000, served on the pod address) are read from a workstation.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::Value;
use strait_api::Kind;

use super::{ClusterClient, Listed, ReadError, list_where};

/// Why a pod's port could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PodProxyError {
    #[error("cluster {cluster} ({origin}): cannot reach {what} through the API server: {message}")]
    Unreachable {
        cluster: String,
        origin: String,
        what: String,
        message: String,
    },
    #[error(
        "cluster {cluster} ({origin}): not allowed to read {what}: grant \"get\" on pods/proxy in namespace {namespace} ({message})"
    )]
    Forbidden {
        cluster: String,
        origin: String,
        what: String,
        namespace: String,
        message: String,
    },
    #[error(
        "cluster {cluster} ({origin}): the API server refused the credentials reading {what}: they are missing or expired"
    )]
    Unauthorized {
        cluster: String,
        origin: String,
        what: String,
    },
    #[error("cluster {cluster} ({origin}): the API server answered {code} for {what}: {message}")]
    ApiServer {
        cluster: String,
        origin: String,
        what: String,
        code: u16,
        message: String,
    },
    #[error("cluster {cluster}: {what} did not answer within {}s", .after.as_secs())]
    Timeout {
        cluster: String,
        what: String,
        after: Duration,
    },
    #[error(
        "cluster {cluster} ({origin}): not allowed to list pods in {namespace} to find the control plane: grant \"list\" on pods there ({message})"
    )]
    CannotList {
        cluster: String,
        origin: String,
        namespace: String,
        message: String,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// `GET path` (with its query) on `pod`'s `port`, through the API server: the pod's own
/// status and body, whatever they are. What the API server itself answers instead (a refusal,
/// no such pod, a pod it cannot reach) is an error with its message.
pub async fn get(
    c: &ClusterClient,
    namespace: &str,
    pod: &str,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), PodProxyError> {
    let what = format!("{namespace}/{pod}:{port}{path}");
    let uri = format!("/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{path}");
    let request = http::Request::get(uri)
        .body(kube::client::Body::from(Vec::new()))
        .map_err(|e| PodProxyError::Unreachable {
            cluster: c.name.clone(),
            origin: c.origin.clone(),
            what: what.clone(),
            message: e.to_string(),
        })?;
    let exchange = async {
        let response = c.client.send(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, kube::Error>((status, body))
    };
    let (status, body) = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => {
            return Err(PodProxyError::Timeout {
                cluster: c.name.clone(),
                what,
                after: timeout,
            });
        }
        Ok(Err(e)) => {
            return Err(PodProxyError::Unreachable {
                cluster: c.name.clone(),
                origin: c.origin.clone(),
                what,
                message: e.to_string(),
            });
        }
        Ok(Ok(answer)) => answer,
    };
    // The API server's own failures (refused, no such pod, pod unreachable) are a `Status`;
    // the pod's own answers, whatever their status, are passed on.
    if !status.is_success()
        && let Ok(s) = serde_json::from_slice::<Value>(&body)
        && s["kind"] == "Status"
    {
        let message = s["message"].as_str().unwrap_or("").to_string();
        let (cluster, origin) = (c.name.clone(), c.origin.clone());
        return Err(match status {
            StatusCode::UNAUTHORIZED => PodProxyError::Unauthorized {
                cluster,
                origin,
                what,
            },
            StatusCode::FORBIDDEN => PodProxyError::Forbidden {
                cluster,
                origin,
                what,
                namespace: namespace.to_string(),
                message,
            },
            _ => PodProxyError::ApiServer {
                cluster,
                origin,
                what,
                code: status.as_u16(),
                message,
            },
        });
    }
    Ok((status, body))
}

/// Istio's label on the control plane's pods.
pub const CONTROL_PLANE_SELECTOR: &str = "app=istiod";

/// The control plane pod of a cluster (label `app=istiod` in `istio_namespace`): a running
/// one, ready ones first, by name. None when the cluster runs none (a remote cluster).
pub async fn control_plane(
    c: &ClusterClient,
    istio_namespace: &str,
) -> Result<Option<String>, PodProxyError> {
    Ok(control_planes(c, istio_namespace).await?.into_iter().next())
}

/// Every running control plane pod of a cluster, ready ones first, by name: each replica
/// serves the proxies connected to it, so a question about all proxies asks them all.
pub async fn control_planes(
    c: &ClusterClient,
    istio_namespace: &str,
) -> Result<Vec<String>, PodProxyError> {
    let listed = list_where(
        c,
        Kind::Pod,
        Some(istio_namespace),
        CONTROL_PLANE_SELECTOR,
        100,
    )
    .await?;
    let pods = match listed {
        Listed::Items(pods) => pods,
        Listed::Skipped(note) => {
            return Err(PodProxyError::CannotList {
                cluster: c.name.clone(),
                origin: c.origin.clone(),
                namespace: istio_namespace.to_string(),
                message: note.to_string(),
            });
        }
    };
    let ready = |p: &Value| {
        p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    };
    let mut running: Vec<(bool, &str)> = pods
        .iter()
        .filter(|p| {
            p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .filter_map(|p| Some((!ready(p), p["metadata"]["name"].as_str()?)))
        .collect();
    running.sort_unstable();
    Ok(running
        .into_iter()
        .map(|(_, name)| name.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client whose API server answers every request with `status` and `body`.
    fn answering(status: u16, body: &'static str) -> ClusterClient {
        let (svc, mut handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                assert_eq!(
                    req.uri().path(),
                    "/api/v1/namespaces/istio-system/pods/istiod-1:15014/proxy/debug/syncz"
                );
                send.send_response(
                    http::Response::builder()
                        .status(status)
                        .body(kube::client::Body::from(body.as_bytes().to_vec()))
                        .expect("response"),
                );
            }
        });
        ClusterClient {
            name: "east".into(),
            origin: "context prod-east".into(),
            client: kube::Client::new(svc, "default"),
        }
    }

    async fn syncz(c: &ClusterClient) -> Result<(StatusCode, Bytes), PodProxyError> {
        get(
            c,
            "istio-system",
            "istiod-1",
            15014,
            "/debug/syncz",
            Duration::from_secs(30),
        )
        .await
    }

    #[tokio::test]
    async fn the_pods_answer_is_passed_on_and_the_api_servers_refusal_is_explained() {
        let (status, body) = syncz(&answering(200, "{\"proxies\":[]}"))
            .await
            .expect("answer");
        assert_eq!(
            (status, &body[..]),
            (StatusCode::OK, &b"{\"proxies\":[]}"[..])
        );
        // The pod's own error is its answer, not the API server's.
        let (status, _) = syncz(&answering(503, "not ready\n")).await.expect("answer");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

        let forbidden = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"istiod-1\" is forbidden: User \"dev\" cannot get resource \"pods/proxy\" in API group \"\" in the namespace \"istio-system\"","reason":"Forbidden","details":{"name":"istiod-1","kind":"pods"},"code":403}"#;
        let e = syncz(&answering(403, forbidden)).await.expect_err("403");
        assert!(
            e.to_string().starts_with(
                "cluster east (context prod-east): not allowed to read istio-system/istiod-1:15014/debug/syncz: grant \"get\" on pods/proxy in namespace istio-system"
            ),
            "{e}"
        );
        let unreachable = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"error trying to reach service: dial tcp 10.244.0.5:15014: connect: connection refused","reason":"ServiceUnavailable","code":503}"#;
        let e = syncz(&answering(503, unreachable)).await.expect_err("503");
        assert!(
            e.to_string().ends_with("answered 503 for istio-system/istiod-1:15014/debug/syncz: error trying to reach service: dial tcp 10.244.0.5:15014: connect: connection refused"),
            "{e}"
        );
    }
}
