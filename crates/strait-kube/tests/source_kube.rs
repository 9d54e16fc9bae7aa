//! `KubeSource` against recorded API responses: lists and watch streams as an API server sends
//! them, served by an in-memory server behind kube-rs's mock service layer.

#[path = "source_support/mock.rs"]
mod mock;

use std::sync::Arc;
use std::time::Duration;

use mock::{Server, data, json, until};
use strait_api::{Kind, Severity};
use strait_control::source::{ClusterSource, Source};
use strait_kube::client::{ClientError, from_remote_secret};
use strait_kube::objects;
use strait_kube::source::{KubeSource, Options};
use strait_model::{BuildOptions, Mesh};

const SERVICES: &str = "/api/v1/services";
/// The Istio namespace's Secrets (the only ones a control plane reads), and the same
/// collection watched by label for remote secrets (the mock's key for that watch).
const SECRETS: &str = "/api/v1/namespaces/istio-system/secrets";
const REMOTE_SECRETS: &str = "/api/v1/namespaces/istio-system/secrets?labelSelector";
const DEADLINE: Duration = Duration::from_secs(60);

/// cluster1's API server: bookinfo's reviews (Service, VirtualService, Deployment, ReplicaSet,
/// Pod) and no Gateway API nor most Istio CRDs (their paths answer 404).
fn cluster1() -> (Server, kube::Client) {
    let (server, client) = Server::start();
    server.serve_builtin(objects::CONTROL_PLANE);
    server.set_list("/api/v1/namespaces", json("namespaces.json"));
    server.set_list(SERVICES, json("services.json"));
    server.set_list(
        "/apis/networking.istio.io/v1/virtualservices",
        json("virtualservices.json"),
    );
    server.set_list("/apis/apps/v1/deployments", json("deployments.json"));
    server.set_list("/apis/apps/v1/replicasets", json("replicasets.json"));
    server.set_list("/api/v1/pods", json("pods.json"));
    server.set_list(SECRETS, json("secrets.json"));
    server.set_list(REMOTE_SECRETS, json("secrets.json"));
    (server, client)
}

fn start(options: Options, client: kube::Client) -> KubeSource {
    KubeSource::start(options, client, &tokio::runtime::Handle::current())
}

/// Builds the model of a read, which must load without errors.
fn build(source: &KubeSource) -> Mesh {
    let (mesh, diags) = strait_model::build(source.read(None), &BuildOptions::default());
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message.clone())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    mesh
}

/// `cluster/namespace/name` of every Kubernetes Service of the model.
fn services(mesh: &Mesh) -> Vec<String> {
    let mut out: Vec<String> = mesh
        .registry
        .all()
        .iter()
        .filter(|s| mesh.object(s.object).kind == Kind::Service)
        .map(|s| {
            format!(
                "{}/{}/{}",
                mesh.cluster(s.cluster).name,
                s.namespace,
                s.name
            )
        })
        .collect();
    out.sort();
    out
}

fn has_service(source: &KubeSource, name: &str) -> bool {
    services(&build(source)).iter().any(|s| s == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_watch_events_show_up_in_the_model() {
    let (server, client) = cluster1();
    let source = start(Options::new("cluster1"), client);
    source.wait_synced(DEADLINE).await.expect("initial sync");
    source.reachable("cluster1").expect("own cluster synced");

    let mesh = build(&source);
    assert_eq!(
        services(&mesh),
        ["cluster1/bookinfo/reviews", "cluster1/default/kubernetes"]
    );
    let c1 = mesh.cluster_by_name("cluster1").expect("cluster1");
    assert!(
        c1.find(Kind::VirtualService, "bookinfo", "reviews")
            .is_some(),
        "the VirtualService is read"
    );
    // The network comes from the Istio namespace's label, as istiod reads it.
    assert_eq!(c1.network, "network1");
    // Server bookkeeping is not kept.
    let (_, svc) = c1
        .find(Kind::Service, "bookinfo", "reviews")
        .expect("reviews");
    assert!(
        svc.annotation("kubectl.kubernetes.io/last-applied-configuration")
            .is_none()
    );

    // Secrets are watched without Helm releases and service-account tokens.
    let secrets_listed = server
        .log()
        .into_iter()
        .find(|r| r.starts_with(SECRETS) && r.contains("fieldSelector"));
    let listed = secrets_listed.expect("secrets listed");
    assert!(
        listed.contains("fieldSelector=type%21%3Dhelm.sh%2Frelease.v1%2Ctype%21%3Dkubernetes.io%2Fservice-account-token"),
        "{listed}"
    );

    // ADDED ratings, MODIFIED reviews (a label), BOOKMARK.
    let before = source.fingerprint();
    assert_eq!(before, source.fingerprint(), "unchanged without events");
    until("a watch of services is open", || server.watching(SERVICES)).await;
    server.push_watch(SERVICES, &data("services-watch-1.jsonl"));
    until("ratings is read", || {
        has_service(&source, "cluster1/bookinfo/ratings")
    })
    .await;
    until("the modified reviews is read", || {
        let mesh = build(&source);
        mesh.registry.all().iter().any(|s| {
            s.name == "reviews" && s.labels.get("tier").map(String::as_str) == Some("backend")
        })
    })
    .await;
    assert_ne!(source.fingerprint(), before);

    // DELETED ratings.
    until("the watch resumed", || server.watching(SERVICES)).await;
    server.push_watch(SERVICES, &data("services-watch-2.jsonl"));
    until("ratings is gone", || {
        !has_service(&source, "cluster1/bookinfo/ratings")
    })
    .await;
    assert!(has_service(&source, "cluster1/bookinfo/reviews"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bookmark_changes_nothing_and_gone_relists() {
    let (server, client) = cluster1();
    let source = start(Options::new("cluster1"), client);
    source.wait_synced(DEADLINE).await.expect("initial sync");
    until("a watch of services is open", || server.watching(SERVICES)).await;

    let before = source.fingerprint();
    let read_before = build(&source);
    server.push_watch(SERVICES, &data("services-bookmark.jsonl"));
    // The watcher resumes from the bookmark's resourceVersion: the bookmark was taken.
    until("the watch resumes at the bookmark", || {
        server.watching(SERVICES)
            && server.log().iter().any(|r| {
                r.starts_with(SERVICES)
                    && r.contains("watch=true")
                    && r.contains("resourceVersion=1200")
            })
    })
    .await;
    assert_eq!(source.fingerprint(), before, "a bookmark is no change");
    assert_eq!(services(&build(&source)), services(&read_before));

    // 410 Gone: the watcher lists again and the new list replaces the store.
    server.set_list(SERVICES, json("services-relist.json"));
    server.push_watch(SERVICES, &data("services-gone.jsonl"));
    until("the re-list replaced the services", || {
        services(&build(&source)) == ["cluster1/bookinfo/details", "cluster1/default/kubernetes"]
    })
    .await;
    assert_ne!(source.fingerprint(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_not_served_do_not_block_sync() {
    let (server, client) = cluster1();
    let source = start(Options::new("cluster1"), client);
    source.wait_synced(DEADLINE).await.expect("initial sync");
    let log = server.log();
    // The Gateway API is not installed: its kinds were asked for, got 404, and read as empty.
    assert!(
        log.iter()
            .any(|r| r.starts_with("/apis/gateway.networking.k8s.io/v1/httproutes?")),
        "{log:?}"
    );
    let mesh = build(&source);
    let c1 = mesh.cluster_by_name("cluster1").expect("cluster1");
    assert_eq!(c1.of_kind(Kind::HTTPRoute).count(), 0);
    assert!(c1.find(Kind::Service, "bookinfo", "reviews").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_sync_gives_up_at_the_callers_deadline() {
    // An API server that answers nothing.
    let (svc, _handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let source = start(Options::new("cluster1"), kube::Client::new(svc, "default"));
    let err = source
        .wait_synced(Duration::from_millis(50))
        .await
        .expect_err("nothing is listed");
    assert!(
        err.to_string().contains("cluster cluster1: not synced"),
        "{err}"
    );
    assert!(source.reachable("cluster1").is_err());
}

/// A connector that checks each kubeconfig as a real control plane would, then hands out the
/// mock client of the cluster it names.
fn connector(clients: Vec<(&'static str, kube::Client)>) -> strait_kube::source::Connector {
    Arc::new(move |cluster: &str, kubeconfig: &str, origin: &str| {
        let (kubeconfig, origin) = (kubeconfig.to_string(), origin.to_string());
        let mock = clients
            .iter()
            .find(|(name, _)| *name == cluster)
            .map(|(_, c)| c.clone());
        Box::pin(async move {
            from_remote_secret(&kubeconfig, &origin).await?;
            mock.ok_or_else(|| ClientError::Build {
                origin,
                message: "cannot connect: no such test cluster".into(),
            })
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_secret_opens_and_closes_a_second_cluster() {
    let (server, client) = cluster1();
    let (remote, remote_client) = Server::start();
    remote.serve_builtin(objects::REMOTE);
    remote.set_list("/api/v1/namespaces", json("cluster2-namespaces.json"));
    remote.set_list(SERVICES, json("cluster2-services.json"));
    let mut options = Options::new("cluster1");
    options.connector = connector(vec![("cluster2", remote_client)]);
    let source = Arc::new(start(options, client));
    source.wait_synced(DEADLINE).await.expect("initial sync");
    assert!(source.reachable("cluster2").is_err());

    // The Secret arrives: in the remote-secret watch and in the own cluster's Secrets.
    until("the remote secrets are watched", || {
        server.watching(REMOTE_SECRETS) && server.watching(SECRETS)
    })
    .await;
    server.push_watch(REMOTE_SECRETS, &data("remote-secret-added.jsonl"));
    server.push_watch(SECRETS, &data("remote-secret-added.jsonl"));
    until("cluster2 is synced", || {
        source.reachable("cluster2").is_ok()
    })
    .await;
    // The key naming the own cluster is ignored.
    assert_eq!(source.clusters().names(), ["cluster1", "cluster2"]);
    until("cluster2's service is read", || {
        has_service(&source, "cluster2/bookinfo/ratings")
    })
    .await;
    let mesh = build(&source);
    let c2 = mesh.cluster_by_name("cluster2").expect("cluster2");
    assert_eq!(c2.network, "network2");
    // Only what istiod reads through a remote secret was asked of cluster2.
    let asked = remote.log();
    assert!(
        asked
            .iter()
            .all(|r| !r.starts_with("/apis/networking.istio.io")),
        "{asked:?}"
    );

    // The control plane's own view: cluster1 entitles it to cluster2 through the Secret.
    let control = Source {
        clusters: source.clone(),
        own: Some("cluster1".into()),
    };
    until("the control plane reads cluster2", || {
        control.load().is_ok_and(|loaded| {
            services(&loaded.mesh).contains(&"cluster2/bookinfo/ratings".to_string())
                && loaded
                    .clusters
                    .iter()
                    .any(|a| a.cluster == "cluster2" && a.via == "secret" && a.status == "synced")
        })
    })
    .await;

    // The Secret is deleted: cluster2's watches stop, its client goes, its objects go.
    let before = source.fingerprint();
    until("the remote-secret watch resumed", || {
        server.watching(REMOTE_SECRETS)
    })
    .await;
    server.push_watch(REMOTE_SECRETS, &data("remote-secret-deleted.jsonl"));
    until("cluster2 is gone", || {
        source.clusters().get("cluster2").is_none()
    })
    .await;
    assert_ne!(source.fingerprint(), before);
    assert!(source.reachable("cluster2").is_err());
    let mesh = build(&source);
    assert!(mesh.cluster_by_name("cluster2").is_none());
    assert!(!services(&mesh).iter().any(|s| s.starts_with("cluster2/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_kubeconfig_is_reported_not_fatal() {
    let (server, client) = cluster1();
    let mut options = Options::new("cluster1");
    options.connector = connector(Vec::new());
    let source = start(options, client);
    source.wait_synced(DEADLINE).await.expect("initial sync");
    until("the remote secrets are watched", || {
        server.watching(REMOTE_SECRETS)
    })
    .await;
    server.push_watch(REMOTE_SECRETS, &data("remote-secret-unparseable.jsonl"));
    until("cluster3 is reported", || {
        source.reachable("cluster3").is_err_and(|e| {
            e.contains("remote secret istio-system/istio-remote-secret-cluster3, key cluster3")
        })
    })
    .await;
    assert_eq!(source.clusters().names(), ["cluster1"]);
    source
        .reachable("cluster1")
        .expect("the own cluster is unaffected");
    assert!(has_service(&source, "cluster1/bookinfo/reviews"));
}

/// A live workload as a cluster holds it: a Deployment, the ReplicaSet it owns and the pod
/// that ReplicaSet owns. The control plane reads pods, not their controllers, so the pod is
/// the workload's one endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployments_pod_is_one_endpoint() {
    let (_server, client) = cluster1();
    let source = start(Options::new("cluster1"), client);
    source.wait_synced(DEADLINE).await.expect("initial sync");
    let mesh = build(&source);
    let reviews = mesh
        .registry
        .all()
        .iter()
        .find(|s| s.name == "reviews")
        .expect("reviews");
    let selected = mesh.endpoints_of(reviews);
    let kinds: Vec<String> = selected
        .iter()
        .map(|w| format!("{:?} {}/{}", w.kind, w.namespace, w.name))
        .collect();
    assert!(
        !kinds.iter().any(|k| k.starts_with("ReplicaSet")),
        "a Deployment's ReplicaSet is not a workload of its own: {kinds:?}"
    );
    let reachable: Vec<&str> = selected
        .iter()
        .filter_map(|w| w.address.as_deref())
        .collect();
    assert_eq!(reachable.len(), 1, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_cluster_that_cannot_be_reached_is_reported() {
    let (server, client) = cluster1();
    // cluster2's API server refuses every connection.
    let (svc, mut handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    tokio::spawn(async move {
        while let Some((_, send)) = handle.next_request().await {
            send.send_error(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "tcp connect error: Connection refused (os error 111)",
            ));
        }
    });
    let mut options = Options::new("cluster1");
    options.connector = connector(vec![("cluster2", kube::Client::new(svc, "default"))]);
    let source = start(options, client);
    source.wait_synced(DEADLINE).await.expect("initial sync");
    until("the remote secrets are watched", || {
        server.watching(REMOTE_SECRETS)
    })
    .await;
    server.push_watch(REMOTE_SECRETS, &data("remote-secret-added.jsonl"));
    until("cluster2's failure is reported", || {
        source.reachable("cluster2").is_err_and(|e| {
            e.starts_with("remote secret istio-system/istio-remote-secret-cluster2: ")
                && e.contains("Connection refused")
        })
    })
    .await;
    // It has a client (the secret is in force) but is not read until it syncs.
    assert!(source.clusters().get("cluster2").is_some());
    source
        .reachable("cluster1")
        .expect("the own cluster is unaffected");
}

/// A kind whose CRD is missing is asked for again only after a backoff: over two minutes (of
/// the runtime's paused clock) the retries stay far below what a loop without one would send,
/// at most one per 800 ms, the backoff's shortest delay.
#[tokio::test(start_paused = true)]
async fn a_kind_not_served_is_retried_with_backoff() {
    let (server, client) = cluster1();
    let source = start(Options::new("cluster1"), client);
    source.wait_synced(DEADLINE).await.expect("initial sync");
    let routes = format!("{}?", mock::path(Kind::HTTPRoute));
    let count = || {
        server
            .log()
            .iter()
            .filter(|r| r.starts_with(&routes))
            .count()
    };
    let requested = server.requested();
    let window = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(window);
    loop {
        tokio::select! {
            () = &mut window => break,
            () = requested.notified() => assert!(count() <= 151, "HTTPRoute asked for {} times", count()),
        }
    }
    assert!(count() >= 2, "retried: {}", count());
    assert!(count() <= 151, "{}", count());
}

/// A security kind the API server stops serving (CRDs re-applied without that version, an API
/// server restarting) keeps the policies last listed: a 404 must not make a DENY policy vanish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_outlive_a_404_of_their_kind() {
    const POLICIES: &str = "/apis/security.istio.io/v1/authorizationpolicies";
    let (server, client) = cluster1();
    server.set_list(
        POLICIES,
        serde_json::json!({
            "kind": "AuthorizationPolicyList", "apiVersion": "security.istio.io/v1",
            "metadata": {"resourceVersion": "1300"},
            "items": [{
                "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                "metadata": {"name": "deny-ratings", "namespace": "bookinfo",
                             "uid": "0f9c6a1e-2b1d-4c55-9f0e-7a1d2c3b4e5f", "resourceVersion": "1290"},
                "spec": {"action": "DENY", "selector": {"matchLabels": {"app": "ratings"}},
                         "rules": [{"from": [{"source": {"namespaces": ["untrusted"]}}]}]},
            }],
        }),
    );
    let source = start(Options::new("cluster1"), client);
    source.wait_synced(DEADLINE).await.expect("initial sync");
    let has_policy = |source: &KubeSource| {
        let input = source.read(None);
        input.clusters[0]
            .objects
            .iter()
            .any(|o| o.kind == Kind::AuthorizationPolicy && o.name() == "deny-ratings")
    };
    assert!(has_policy(&source));
    until("the policies are watched", || server.watching(POLICIES)).await;
    let before = server.requests_to(POLICIES);
    server.unserve(POLICIES);
    // The watch ends, is started again and answered 404, more than once.
    until("the kind is asked for again and refused", || {
        server.requests_to(POLICIES) >= before + 2
    })
    .await;
    assert!(has_policy(&source), "the DENY policy was dropped on a 404");
}
