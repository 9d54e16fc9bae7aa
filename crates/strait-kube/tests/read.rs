//! Reading a mesh from API servers: recorded list responses (two clusters, a list in two
//! pages, CRDs not installed, a kind the credentials may not list) become the same input a
//! mesh directory gives, with `kube://` names.

#[path = "support/api_fixture.rs"]
mod api_fixture;

use std::path::Path;
use std::sync::{Arc, Mutex};

use api_fixture::Fixture;
use strait_api::Kind;
use strait_api::layout::Role;
use strait_kube::read::{ClusterClient, Note, ReadError, ReadOptions, read};

type Seen = Arc<Mutex<Vec<String>>>;

/// A client whose API server answers from the recordings of `cluster`, and the requests it
/// received.
fn recorded(cluster: &str) -> (ClusterClient, Seen) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/read");
    let fixture = Fixture::open(&root, cluster);
    let (svc, mut handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            log.lock().expect("log").push(req.uri().to_string());
            let (code, body) = fixture.answer(req.uri().path(), req.uri().query());
            let response = http::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(body))
                .expect("response");
            send.send_response(response);
        }
    });
    let client = ClusterClient {
        name: cluster.to_string(),
        origin: format!("context {cluster}"),
        client: kube::Client::new(svc, "default"),
    };
    (client, seen)
}

#[tokio::test]
async fn two_clusters_read_page_by_page_load_as_a_mesh() {
    let (c1, seen1) = recorded("c1");
    let (c2, _) = recorded("c2");
    let read = read(&[c1, c2], &ReadOptions::default())
        .await
        .expect("read");

    // Each cluster declared by its istio-system namespace.
    let mesh = read.input.mesh.as_ref().expect("mesh");
    let decls: Vec<(&str, Option<&str>, Role)> = mesh
        .clusters
        .iter()
        .map(|d| (d.name.as_str(), d.network.as_deref(), d.role))
        .collect();
    assert_eq!(
        decls,
        [
            ("c1", Some("network1"), Role::Primary),
            ("c2", Some("network2"), Role::Primary)
        ]
    );

    // Both pages of c1's Services, its VirtualService, its namespaces.
    let names = |i: usize| -> Vec<String> {
        read.input.clusters[i]
            .objects
            .iter()
            .map(|o| {
                read.input
                    .loaded
                    .sources
                    .name(o.source.file)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    let c1_names = names(0);
    for want in [
        "kube://c1/Namespace/istio-system",
        "kube://c1/default/Service/kubernetes",
        "kube://c1/kube-system/Service/kube-dns",
        "kube://c1/sample/Service/helloworld",
        "kube://c1/sample/VirtualService/helloworld",
        "kube://c1/sample/Pod/sleep-5c8d6f7b9d-x2k4q",
    ] {
        assert!(c1_names.iter().any(|n| n == want), "{want} in {c1_names:?}");
    }
    assert_eq!(c1_names.len(), 8, "{c1_names:?}");
    assert_eq!(names(1).len(), 3, "{:?}", names(1));
    assert!(
        read.input.loaded.diagnostics.is_empty(),
        "{:?}",
        read.input.loaded.diagnostics
    );

    // Pages of kubectl's size, and the second page asked with the first one's token.
    let seen = seen1.lock().expect("log").clone();
    let services: Vec<&String> = seen
        .iter()
        .filter(|u| u.starts_with("/api/v1/services?"))
        .collect();
    assert_eq!(services.len(), 2, "{seen:?}");
    assert!(services.iter().all(|u| u.contains("limit=500")), "{seen:?}");
    assert!(services[1].contains("continue=eyJ2Ij"), "{seen:?}");
    assert_eq!(seen.len(), strait_kube::objects::OWN.len() + 1, "{seen:?}");

    // The Gateway API is not installed in either; c2 may not list Secrets.
    let not_served: Vec<(&str, Kind)> = read
        .notes
        .iter()
        .filter_map(|n| match n {
            Note::NotServed { cluster, kind } => Some((cluster.as_str(), *kind)),
            Note::Forbidden { .. } => None,
        })
        .collect();
    for cluster in ["c1", "c2"] {
        for kind in [Kind::KubeGateway, Kind::HTTPRoute, Kind::ReferenceGrant] {
            assert!(not_served.contains(&(cluster, kind)), "{cluster} {kind}");
        }
    }
    let forbidden: Vec<String> = read
        .notes
        .iter()
        .filter(|n| n.is_warning())
        .map(ToString::to_string)
        .collect();
    assert_eq!(forbidden.len(), 1, "{forbidden:?}");
    assert!(
        forbidden[0].starts_with("cluster c2 (context c2): not allowed to list Secret")
            && forbidden[0].contains("grant \"list\" on secrets")
            && forbidden[0].contains("User \"mesh-reader\" cannot list"),
        "{}",
        forbidden[0]
    );
}

#[tokio::test]
async fn refused_credentials_name_the_cluster_and_stop_the_read() {
    let (svc, mut handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    tokio::spawn(async move {
        while let Some((_, send)) = handle.next_request().await {
            let body = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
            });
            send.send_response(
                http::Response::builder()
                    .status(401)
                    .body(kube::client::Body::from(body.to_string().into_bytes()))
                    .expect("response"),
            );
        }
    });
    let c = ClusterClient {
        name: "east".into(),
        origin: "context prod-east".into(),
        client: kube::Client::new(svc, "default"),
    };
    let e = read(&[c], &ReadOptions::default())
        .await
        .expect_err("401 fails the read");
    assert!(matches!(e, ReadError::Unauthorized { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with(
            "cluster east (context prod-east): the API server refused the credentials"
        ),
        "{text}"
    );
}
