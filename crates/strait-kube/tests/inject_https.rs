//! The webhook over real HTTPS on loopback: a rustls client that trusts only the mesh's CA
//! (as the API server trusts the `caBundle`) posts hand-written AdmissionReviews.

mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use serde_json::Value;
use strait_ca::Authority;
use strait_kube::inject::{Limits, ServingCert, ca_bundle, dns_names, serve};
use support::{apply, config, names, review_json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

struct Webhook {
    addr: std::net::SocketAddr,
    roots: RootCertStore,
    serving: ServingCert,
    _stop: oneshot::Sender<()>,
}

async fn start(limits: Limits) -> Webhook {
    let authority = Arc::new(Authority::self_signed("cluster.local").expect("a CA"));
    let mut roots = RootCertStore::empty();
    for r in authority.roots() {
        roots.add(r.clone()).expect("a root");
    }
    let serving = ServingCert::new(authority, None, dns_names("istio-system", "default"))
        .expect("a serving certificate");
    let tls = serving.server_config().expect("tls");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(
        listener,
        tls,
        Arc::new(config()),
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    Webhook {
        addr,
        roots,
        serving,
        _stop: stop,
    }
}

impl Webhook {
    /// Posts `body` to `path` over a fresh TLS connection; returns status and body.
    async fn post(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(self.roots.clone())
        .with_no_client_auth();
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let name = ServerName::try_from("istiod.istio-system.svc").expect("name");
        let tls = TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await
            .expect("the webhook's certificate verifies against the mesh roots");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("http");
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "istiod.istio-system.svc")
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
            .await
            .expect("in time")
            .expect("a response");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, body.to_vec())
    }

    async fn review(&self, path: &str, doc: &Value) -> Value {
        let (status, body) = self
            .post(
                Method::POST,
                path,
                "application/json",
                doc.to_string().into_bytes(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).expect("JSON")
    }
}

fn patched(doc: &Value, answer: &Value) -> Value {
    let mut pod = doc["request"]["object"].clone();
    if let Some(patch) = answer["response"]["patch"].as_str() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .expect("base64");
        apply(
            &mut pod,
            &serde_json::from_slice(&bytes).expect("a JSON patch"),
        );
    }
    pod
}

#[tokio::test]
async fn reviews_over_https() {
    let hook = start(Limits::default()).await;

    let doc = review_json("deployment-pod.json");
    let answer = hook.review("/inject", &doc).await;
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], doc["request"]["uid"]);
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    let pod = patched(&doc, &answer);
    assert_eq!(names(&pod, "containers"), ["sleep", "istio-proxy"]);

    // A remote cluster's path names its own cluster and network.
    let answer = hook
        .review("/inject/cluster/cluster2/net/network2", &doc)
        .await;
    let pod = patched(&doc, &answer);
    assert_eq!(
        pod["metadata"]["labels"]["topology.istio.io/network"],
        "network2"
    );

    let job = review_json("job-pod.json");
    let answer = hook.review("/inject", &job).await;
    assert!(
        answer["response"]["warnings"]
            .as_array()
            .is_some_and(|w| !w.is_empty())
    );

    let gateway = review_json("gateway-pod.json");
    let answer = hook.review("/inject", &gateway).await;
    let pod = patched(&gateway, &answer);
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        "ghcr.io/strait-mesh/strait:0.1.0"
    );
}

#[tokio::test]
async fn refuses_what_is_not_a_review() {
    let hook = start(Limits {
        max_body: 16 * 1024,
        ..Limits::default()
    })
    .await;
    let doc = review_json("deployment-pod.json").to_string().into_bytes();
    let cases = [
        (
            Method::POST,
            "/inject",
            "text/plain",
            doc.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::GET,
            "/inject",
            "application/json",
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/mutate",
            "application/json",
            doc.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/inject",
            "application/json",
            b"{\"kind\":".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/inject",
            "application/json",
            vec![b' '; 20 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (method, path, ct, body, want) in cases {
        let (status, text) = hook.post(method.clone(), path, ct, body).await;
        assert_eq!(
            status,
            want,
            "{method} {path} {ct}: {}",
            String::from_utf8_lossy(&text)
        );
        assert!(!text.is_empty(), "an error says why");
    }
    // charset parameters are fine.
    let (status, _) = hook
        .post(
            Method::POST,
            "/inject",
            "application/json; charset=utf-8",
            doc,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_restart() {
    let hook = start(Limits::default()).await;
    let before = hook.serving.current_leaf().expect("a leaf");
    hook.serving.renew().expect("renews");
    let after = hook.serving.current_leaf().expect("a leaf");
    assert_ne!(before, after);
    let doc = review_json("deployment-pod.json");
    let answer = hook.review("/inject", &doc).await;
    assert_eq!(answer["response"]["allowed"], true);
    // The caBundle is the mesh's trust bundle, which verified both.
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(hook.serving.ca_bundle())
        .expect("base64");
    assert!(
        String::from_utf8(bundle)
            .expect("PEM")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let authority = Authority::self_signed("cluster.local").expect("a CA");
    assert_ne!(
        ca_bundle(&authority),
        hook.serving.ca_bundle(),
        "each CA its own bundle"
    );
}
