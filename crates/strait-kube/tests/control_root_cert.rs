//! The `istio-ca-root-cert` writer against a mock API server answering with real
//! NamespaceList and ConfigMapList bodies: what one pass writes, and what a running writer
//! does once it leads.

mod control_mock;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use control_mock::{Seen, client, data};
use http::Method;
use serde_json::{Value, json};
use strait_kube::client::Clusters;
use strait_kube::control::RootCertWriter;
use strait_kube::control::lease::Leadership;
use strait_kube::control::root_cert::{Outcome, reconcile};
use tokio::sync::watch;

fn bundle() -> String {
    strait_ca::Authority::self_signed("cluster.local")
        .expect("root")
        .roots_pem()
        .to_string()
}

/// The ConfigMapList of the data file, `default`'s ConfigMap holding `bundle`.
fn config_maps(bundle: &str) -> Value {
    let mut list = data("configmaps.json");
    list["items"][0]["data"]["root-cert.pem"] = json!(bundle);
    list
}

const CM_PATH: &str = "/api/v1/configmaps";
const SELECTOR: &str = "fieldSelector=metadata.name%3Distio-ca-root-cert";

#[tokio::test]
async fn a_pass_creates_restores_and_leaves_alone() {
    let pem = bundle();
    let (c, mut server) = client();
    let (outcome, seen) = tokio::join!(reconcile(c, "cluster1", &pem), async {
        let mut seen = vec![
            server.answer(200, data("namespaces.json")).await,
            server.answer(200, config_maps(&pem)).await,
        ];
        // `sample` (edited) then `shop` (missing), in the order of the namespace list.
        seen.push(server.echo(200, "48300").await);
        seen.push(server.echo(201, "48301").await);
        seen
    });
    let outcome = outcome.expect("pass");
    assert_eq!(
        outcome,
        Outcome {
            created: vec!["shop".into()],
            restored: vec!["sample".into()],
            correct: vec!["default".into()],
            skipped: vec!["kube-system".into(), "old".into()],
            failed: Vec::new(),
        }
    );

    let [ns, cms, put, post] = <[Seen; 4]>::try_from(seen).expect("four requests");
    assert_eq!(
        (ns.method, ns.path.as_str()),
        (Method::GET, "/api/v1/namespaces")
    );
    assert_eq!((cms.method, cms.path.as_str()), (Method::GET, CM_PATH));
    assert!(cms.query.contains(SELECTOR), "{}", cms.query);

    assert_eq!(put.method, Method::PUT);
    assert_eq!(
        put.path,
        "/api/v1/namespaces/sample/configmaps/istio-ca-root-cert"
    );
    // The bundle is put back; the version read guards the write; the rest stays.
    assert_eq!(put.body["data"]["root-cert.pem"], json!(pem));
    assert_eq!(put.body["data"]["extra.txt"], "kept");
    assert_eq!(put.body["metadata"]["resourceVersion"], "47990");
    assert_eq!(put.body["metadata"]["labels"]["team"], "payments");
    assert_eq!(put.body["metadata"]["labels"]["istio.io/config"], "true");

    assert_eq!(post.method, Method::POST);
    assert_eq!(post.path, "/api/v1/namespaces/shop/configmaps");
    assert_eq!(
        post.body,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "istio-ca-root-cert",
                "namespace": "shop",
                "labels": {"istio.io/config": "true"},
            },
            "data": {"root-cert.pem": pem},
        })
    );
}

#[tokio::test]
async fn a_configmap_without_the_label_gets_it_back() {
    let pem = bundle();
    let mut cms = config_maps(&pem);
    cms["items"][0]["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("labels");
    cms["items"][1]["data"]["root-cert.pem"] = json!(pem);
    let mut namespaces = data("namespaces.json");
    namespaces["items"]
        .as_array_mut()
        .expect("items")
        .retain(|n| n["metadata"]["name"] != "shop");
    let (c, mut server) = client();
    let (outcome, put) = tokio::join!(reconcile(c, "cluster1", &pem), async {
        server.answer(200, namespaces).await;
        server.answer(200, cms).await;
        server.echo(200, "48300").await
    });
    let outcome = outcome.expect("pass");
    assert_eq!(outcome.restored, ["default"]);
    assert_eq!(outcome.correct, ["sample"]);
    assert_eq!(
        put.path,
        "/api/v1/namespaces/default/configmaps/istio-ca-root-cert"
    );
    assert_eq!(put.body["metadata"]["labels"]["istio.io/config"], "true");
}

#[tokio::test]
async fn a_namespace_gone_while_writing_is_left_to_the_next_pass() {
    let pem = bundle();
    let mut namespaces = data("namespaces.json");
    namespaces["items"]
        .as_array_mut()
        .expect("items")
        .retain(|n| n["metadata"]["name"] == "shop");
    let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "namespaces \"shop\" not found", "reason": "NotFound",
        "details": {"name": "shop", "kind": "namespaces"}, "code": 404});
    let (c, mut server) = client();
    let (outcome, _) = tokio::join!(reconcile(c, "cluster1", &pem), async {
        server.answer(200, namespaces).await;
        server.answer(200, config_maps(&pem)).await;
        server.answer(404, gone).await
    });
    assert_eq!(outcome.expect("pass").skipped, ["shop"]);
}

#[tokio::test]
async fn a_refused_write_is_reported_and_the_pass_goes_on() {
    let pem = bundle();
    let mut cms = config_maps(&pem);
    cms["items"][1]["immutable"] = json!(true);
    let invalid = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "ConfigMap \"istio-ca-root-cert\" is invalid: data: Forbidden: field is immutable when `immutable` is set",
        "reason": "Invalid", "details": {"name": "istio-ca-root-cert", "kind": "ConfigMap"}, "code": 422});
    let (c, mut server) = client();
    let (outcome, post) = tokio::join!(reconcile(c, "cluster1", &pem), async {
        server.answer(200, data("namespaces.json")).await;
        server.answer(200, cms).await;
        server.answer(422, invalid).await;
        server.echo(201, "48301").await
    });
    let outcome = outcome.expect("pass");
    assert_eq!(post.path, "/api/v1/namespaces/shop/configmaps");
    assert_eq!(outcome.created, ["shop"]);
    let [failed] = outcome.failed.as_slice() else {
        panic!("one failure: {outcome:?}");
    };
    assert!(failed.contains("sample/istio-ca-root-cert"), "{failed}");
    assert!(failed.contains("field is immutable"), "{failed}");
}

#[tokio::test]
async fn a_refused_list_names_the_cluster() {
    let (c, mut server) = client();
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "namespaces is forbidden: User \"system:serviceaccount:istio-system:istiod\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope",
        "reason": "Forbidden", "code": 403});
    let (outcome, _) = tokio::join!(
        reconcile(c, "cluster2", "pem"),
        server.answer(403, forbidden)
    );
    let text = outcome.expect_err("refused").to_string();
    assert!(text.contains("cluster cluster2"), "{text}");
    assert!(text.contains("list namespaces"), "{text}");
}

/// A cluster behind the mock: namespaces and the ConfigMaps the writer reads and writes.
/// Watches stay open without events. Every write is recorded with whether the writer's
/// replica led at that moment.
struct Cluster {
    namespaces: Value,
    config_maps: BTreeMap<String, Value>,
    version: u64,
    writes: Vec<(String, bool)>,
    leader: watch::Receiver<bool>,
}

impl Cluster {
    fn reply(&mut self, seen: &Seen) -> Option<(u16, Value)> {
        if seen.query.contains("watch=true") {
            return None;
        }
        let parts: Vec<&str> = seen.path.trim_start_matches('/').split('/').collect();
        match (seen.method.clone(), parts.as_slice()) {
            (Method::GET, ["api", "v1", "namespaces"]) => Some((200, self.namespaces.clone())),
            (Method::GET, ["api", "v1", "configmaps"]) => Some((
                200,
                json!({"kind": "ConfigMapList", "apiVersion": "v1",
                    "metadata": {"resourceVersion": self.version.to_string()},
                    "items": self.config_maps.values().cloned().collect::<Vec<_>>()}),
            )),
            (Method::POST | Method::PUT, ["api", "v1", "namespaces", ns, "configmaps", ..]) => {
                self.version += 1;
                self.writes.push(((*ns).to_string(), *self.leader.borrow()));
                let mut cm = seen.body.clone();
                cm["metadata"]["resourceVersion"] = json!(self.version.to_string());
                self.config_maps.insert((*ns).to_string(), cm.clone());
                Some((
                    if seen.method == Method::POST {
                        201
                    } else {
                        200
                    },
                    cm,
                ))
            }
            _ => Some((
                404,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("unexpected {} {}", seen.method, seen.path),
                    "reason": "NotFound", "code": 404}),
            )),
        }
    }
}

async fn wait_until(cluster: &Arc<Mutex<Cluster>>, what: &str, ok: impl Fn(&Cluster) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !ok(&cluster.lock().expect("cluster")) {
        assert!(tokio::time::Instant::now() < deadline, "waited for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn holds(c: &Cluster, ns: &str, pem: &str) -> bool {
    c.config_maps
        .get(ns)
        .is_some_and(|cm| cm["data"]["root-cert.pem"] == pem)
}

/// A client for a fresh fake cluster holding the namespaces of the data file.
fn fake_cluster(leader: &watch::Receiver<bool>) -> (kube::Client, Arc<Mutex<Cluster>>) {
    let (c, server) = client();
    let cluster = Arc::new(Mutex::new(Cluster {
        namespaces: data("namespaces.json"),
        config_maps: BTreeMap::new(),
        version: 1,
        writes: Vec::new(),
        leader: leader.clone(),
    }));
    let state = cluster.clone();
    tokio::spawn(server.serve(move |seen| state.lock().expect("cluster").reply(seen)));
    (c, cluster)
}

const SUPPLIED: [&str; 3] = ["default", "sample", "shop"];

#[tokio::test]
async fn a_leading_writer_keeps_every_namespace_supplied() {
    let pem = bundle();
    let (leader_tx, leader_rx) = watch::channel(false);
    let (c, cluster) = fake_cluster(&leader_rx);

    // cluster2 is served but has no client yet: the writer goes on with cluster1.
    let clients = Clusters::new("cluster1", c);
    let writer = RootCertWriter::new(clients, vec!["cluster1".into(), "cluster2".into()])
        .with_resync(Duration::from_millis(20));
    let (bundle_tx, bundle_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(writer.run(Leadership::from(leader_rx), bundle_rx, async {
        let _ = stop_rx.await;
    }));

    bundle_tx.send_replace(Some(pem.clone()));
    leader_tx.send_replace(true);
    wait_until(&cluster, "every namespace supplied", |c| {
        SUPPLIED.iter().all(|ns| holds(c, ns, &pem))
    })
    .await;

    // Deleted by someone: it comes back.
    cluster
        .lock()
        .expect("cluster")
        .config_maps
        .remove("sample");
    wait_until(&cluster, "sample restored", |c| holds(c, "sample", &pem)).await;

    // A new root (CA rotation) reaches every namespace.
    let rotated = bundle();
    bundle_tx.send_replace(Some(rotated.clone()));
    wait_until(&cluster, "the new bundle everywhere", |c| {
        SUPPLIED.iter().all(|ns| holds(c, ns, &rotated))
    })
    .await;

    stop_tx.send(()).expect("writer running");
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("writer stops")
        .expect("writer task");
    let c = cluster.lock().expect("cluster");
    assert!(!c.config_maps.contains_key("kube-system"));
    assert!(!c.config_maps.contains_key("old"));
    assert!(
        c.writes.iter().all(|(_, leading)| *leading),
        "{:?}",
        c.writes
    );
}

#[tokio::test]
async fn a_cluster_added_later_is_supplied_too() {
    let pem = bundle();
    let leader = Leadership::fixed(true);
    let (c1, cluster1) = fake_cluster(&leader.watch());
    let (c2, cluster2) = fake_cluster(&leader.watch());
    let clients = Clusters::new("cluster1", c1);
    let writer =
        RootCertWriter::every_cluster(clients.clone()).with_resync(Duration::from_millis(20));
    let (_bundle_tx, bundle_rx) = watch::channel(Some(pem.clone()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(writer.run(leader, bundle_rx, async {
        let _ = stop_rx.await;
    }));
    wait_until(&cluster1, "cluster1 supplied", |c| {
        SUPPLIED.iter().all(|ns| holds(c, ns, &pem))
    })
    .await;

    // A remote secret arrives: its cluster gets the bundle as well.
    clients.insert("cluster2", c2);
    wait_until(&cluster2, "cluster2 supplied", |c| {
        SUPPLIED.iter().all(|ns| holds(c, ns, &pem))
    })
    .await;

    stop_tx.send(()).expect("writer running");
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("writer stops")
        .expect("writer task");
}

/// A cluster whose API server accepts requests and never answers does not hold up the
/// others: its pass is given up after a while and the own cluster is still supplied. (The
/// clock is paused: the wait is the writer's own timeout, not the test's.)
#[tokio::test(start_paused = true)]
async fn a_hung_cluster_does_not_hold_up_the_others() {
    let pem = bundle();
    let leader = Leadership::fixed(true);
    let (c1, cluster1) = fake_cluster(&leader.watch());
    // "a-hung" sorts before "cluster1", so its pass comes first.
    let (hung, mut handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let held = tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(request) = handle.next_request().await {
            pending.push(request);
        }
    });
    let clients = Clusters::new("cluster1", c1);
    clients.insert("a-hung", kube::Client::new(hung, "default"));
    let writer = RootCertWriter::every_cluster(clients.clone());
    let (_bundle_tx, bundle_rx) = watch::channel(Some(pem.clone()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(writer.run(leader, bundle_rx, async {
        let _ = stop_rx.await;
    }));
    // Longer than one pass's timeout, shorter than waiting for the hung server forever.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while !SUPPLIED
        .iter()
        .all(|ns| holds(&cluster1.lock().expect("cluster"), ns, &pem))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "cluster1 not supplied: the hung cluster held the writer up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_tx.send(()).expect("writer running");
    let _ = tokio::time::timeout(Duration::from_secs(60), run).await;
    held.abort();
}
