//! Leader election against a mock API server answering with real Lease bodies. Time is
//! given to each round explicitly; the running elector is checked by the state it reaches.

mod control_mock;

use std::sync::LazyLock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use control_mock::{ApiServer, Seen, client, data};
use http::Method;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use strait_kube::control::lease::NAMESPACE_CONTROLLER;
use strait_kube::control::{ElectionConfig, Elector, Moment};

const ME: &str = "istiod-7c9d8b6f5-xk2lp";
const OTHER: &str = "istiod-5d8f7c9b4-abcde";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/istio-system/leases";

/// `secs` after the test's epoch, on both clocks.
fn t(secs: u64) -> Moment {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    Moment {
        wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000 + secs),
        mono: *START + Duration::from_secs(secs),
    }
}

fn stamp(at: Moment) -> Option<MicroTime> {
    Some(MicroTime(Timestamp::try_from(at.wall).expect("timestamp")))
}

fn lease_path() -> String {
    format!("{LEASES}/{NAMESPACE_CONTROLLER}")
}

fn elector() -> (Elector, ApiServer) {
    let (c, server) = client();
    let config = ElectionConfig::new("istio-system", NAMESPACE_CONTROLLER, ME);
    (Elector::new(c, config), server)
}

/// Bounds a round so that a request the test does not answer fails instead of blocking.
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("the round ends")
}

fn lease(body: &Value) -> Lease {
    serde_json::from_value(body.clone()).expect("a Lease")
}

fn not_found() -> Value {
    data("status-lease-not-found.json")
}

/// Takes the free lease at `at`: GET answers 404, the create succeeds.
async fn acquire(e: &mut Elector, server: &mut ApiServer, at: Moment) -> Seen {
    let (won, (get, create)) = tokio::join!(bounded(e.try_acquire_or_renew(at)), async {
        (
            server.answer(404, not_found()).await,
            server.echo(201, "1").await,
        )
    });
    assert!(won.expect("round"));
    assert_eq!((get.method, get.path), (Method::GET, lease_path()));
    create
}

#[tokio::test]
async fn a_free_lease_is_created_and_held() {
    let (mut e, mut server) = elector();
    let leadership = e.leadership();
    assert!(!leadership.is_leader());
    let create = acquire(&mut e, &mut server, t(0)).await;
    assert_eq!(
        (create.method, create.path.as_str()),
        (Method::POST, LEASES)
    );
    let l = lease(&create.body);
    assert_eq!(l.metadata.name.as_deref(), Some(NAMESPACE_CONTROLLER));
    let spec = l.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(ME));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert_eq!(spec.lease_transitions, Some(0));
    assert_eq!(spec.acquire_time, stamp(t(0)));
    assert_eq!(spec.renew_time, stamp(t(0)));
    assert!(leadership.is_leader());
}

#[tokio::test]
async fn the_holder_renews_guarded_by_the_version_it_read() {
    let (mut e, mut server) = elector();
    let create = acquire(&mut e, &mut server, t(0)).await;
    let mut held = create.body.clone();
    held["metadata"]["resourceVersion"] = json!("1");
    let (won, (_, put)) = tokio::join!(bounded(e.try_acquire_or_renew(t(2))), async {
        (server.answer(200, held).await, server.echo(200, "2").await)
    });
    assert!(won.expect("round"));
    assert_eq!((put.method, put.path), (Method::PUT, lease_path()));
    let l = lease(&put.body);
    assert_eq!(l.metadata.resource_version.as_deref(), Some("1"));
    let spec = l.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(ME));
    assert_eq!(spec.acquire_time, stamp(t(0)));
    assert_eq!(spec.renew_time, stamp(t(2)));
    assert_eq!(spec.lease_transitions, Some(0));
    assert!(e.leadership().is_leader());
}

#[tokio::test]
async fn a_live_lease_of_another_replica_is_not_taken() {
    let (mut e, mut server) = elector();
    assert_eq!(data("lease-held.json")["spec"]["holderIdentity"], OTHER);
    // Seen first now, and still unchanged just before a lease duration has passed: only
    // reads, no write (a write would go unanswered and fail the bounded round).
    for at in [t(0), t(14)] {
        let (won, get) = tokio::join!(
            bounded(e.try_acquire_or_renew(at)),
            server.answer(200, data("lease-held.json"))
        );
        assert!(!won.expect("round"));
        assert_eq!(get.method, Method::GET);
    }
    assert!(!e.leadership().is_leader());
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let (mut e, mut server) = elector();
    let (won, _) = tokio::join!(
        bounded(e.try_acquire_or_renew(t(0))),
        server.answer(200, data("lease-held.json"))
    );
    assert!(!won.expect("round"));
    // Unchanged for a whole lease duration since it was first seen: its holder is gone.
    let (won, (_, put)) = tokio::join!(bounded(e.try_acquire_or_renew(t(15))), async {
        (
            server.answer(200, data("lease-held.json")).await,
            server.echo(200, "1300").await,
        )
    });
    assert!(won.expect("round"));
    assert_eq!((put.method, put.path), (Method::PUT, lease_path()));
    let l = lease(&put.body);
    assert_eq!(l.metadata.resource_version.as_deref(), Some("1207"));
    let spec = l.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(ME));
    assert_eq!(spec.lease_transitions, Some(3));
    assert_eq!(spec.acquire_time, stamp(t(15)));
    assert_eq!(spec.renew_time, stamp(t(15)));
    assert!(e.leadership().is_leader());
}

#[tokio::test]
async fn expiry_counts_from_the_last_change_seen() {
    let (mut e, mut server) = elector();
    let renewed = || {
        let mut l = data("lease-held.json");
        l["metadata"]["resourceVersion"] = json!("1208");
        l
    };
    let rounds = [
        (t(0), data("lease-held.json")),
        // The holder renewed (a new version): the clock starts again.
        (t(10), renewed()),
        // 20 s after first seen, but only 10 s after the renewal: still live.
        (t(20), renewed()),
    ];
    for (at, body) in rounds {
        let (won, _) = tokio::join!(
            bounded(e.try_acquire_or_renew(at)),
            server.answer(200, body)
        );
        assert!(!won.expect("round"));
    }
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once() {
    let (mut e, mut server) = elector();
    let mut released = data("lease-held.json");
    let spec = released["spec"].as_object_mut().expect("spec");
    spec.remove("holderIdentity");
    spec.insert("leaseDurationSeconds".into(), json!(1));
    let (won, (_, put)) = tokio::join!(bounded(e.try_acquire_or_renew(t(0))), async {
        (
            server.answer(200, released).await,
            server.echo(200, "1300").await,
        )
    });
    assert!(won.expect("round"));
    let spec = lease(&put.body).spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(ME));
    assert_eq!(spec.lease_duration_seconds, Some(15));
}

#[tokio::test]
async fn losing_a_write_race_gives_up_leadership() {
    let (mut e, mut server) = elector();
    let create = acquire(&mut e, &mut server, t(0)).await;
    let leadership = e.leadership();
    assert!(leadership.is_leader());
    let mut held = create.body.clone();
    held["metadata"]["resourceVersion"] = json!("1");
    let (won, (_, put)) = tokio::join!(bounded(e.try_acquire_or_renew(t(2))), async {
        (
            server.answer(200, held).await,
            server.answer(409, data("status-lease-conflict.json")).await,
        )
    });
    assert!(!won.expect("round"));
    assert_eq!(put.method, Method::PUT);
    assert!(!leadership.is_leader());
}

#[tokio::test]
async fn losing_the_create_race_is_not_leading() {
    let (mut e, mut server) = elector();
    let exists = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "leases.coordination.k8s.io \"istio-namespace-controller-election\" already exists",
        "reason": "AlreadyExists", "code": 409});
    let (won, _) = tokio::join!(bounded(e.try_acquire_or_renew(t(0))), async {
        server.answer(404, not_found()).await;
        server.answer(409, exists).await;
    });
    assert!(!won.expect("round"));
    assert!(!e.leadership().is_leader());
}

#[tokio::test]
async fn an_api_error_is_reported_with_the_lease() {
    let (mut e, mut server) = elector();
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "leases.coordination.k8s.io \"istio-namespace-controller-election\" is forbidden: User \"system:serviceaccount:istio-system:istiod\" cannot get resource \"leases\"",
        "reason": "Forbidden", "code": 403});
    let (result, _) = tokio::join!(
        bounded(e.try_acquire_or_renew(t(0))),
        server.answer(403, forbidden)
    );
    let err = result.expect_err("an error");
    let text = err.to_string();
    assert!(
        text.contains("istio-system/istio-namespace-controller-election"),
        "{text}"
    );
    assert!(text.contains("cannot get resource"), "{text}");
}

/// A Lease store behind the mock: GET, POST and PUT as the API server does them, PUT checked
/// against the stored resourceVersion; `broken` makes every request fail with 500, `silent`
/// leaves it unanswered.
#[derive(Default)]
struct Store {
    lease: Option<Value>,
    version: u64,
    broken: bool,
    silent: bool,
}

impl Store {
    fn reply(&mut self, seen: &Seen) -> Option<(u16, Value)> {
        if self.silent {
            return None;
        }
        Some(self.answer(seen))
    }

    fn answer(&mut self, seen: &Seen) -> (u16, Value) {
        if self.broken {
            return (
                500,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "etcdserver: leader changed", "reason": "InternalError", "code": 500}),
            );
        }
        match (seen.method.clone(), &self.lease) {
            (Method::GET, Some(l)) => (200, l.clone()),
            (Method::GET, None) => (404, not_found()),
            (Method::POST, None) => self.store(&seen.body, 201),
            (Method::PUT, Some(l))
                if l["metadata"]["resourceVersion"] == seen.body["metadata"]["resourceVersion"] =>
            {
                self.store(&seen.body, 200)
            }
            _ => (409, data("status-lease-conflict.json")),
        }
    }

    fn store(&mut self, body: &Value, status: u16) -> (u16, Value) {
        self.version += 1;
        let mut l = body.clone();
        l["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.lease = Some(l.clone());
        (status, l)
    }
}

fn fast() -> ElectionConfig {
    ElectionConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(500),
        retry_period: Duration::from_millis(20),
        ..ElectionConfig::new("istio-system", NAMESPACE_CONTROLLER, ME)
    }
}

async fn wait_for(leadership: &strait_kube::control::Leadership, leader: bool) {
    let mut rx = leadership.watch();
    tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|l| *l == leader))
        .await
        .expect("leadership reaches the state")
        .expect("elector alive");
}

#[tokio::test]
async fn a_running_elector_leads_steps_down_when_it_cannot_renew_and_releases_on_stop() {
    let (c, server) = client();
    let store = Arc::new(Mutex::new(Store::default()));
    let s = store.clone();
    let api = tokio::spawn(server.serve(move |seen| s.lock().expect("store").reply(seen)));
    let e = Elector::new(c, fast());
    let leadership = e.leadership();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(e.run(async {
        let _ = stop_rx.await;
    }));

    wait_for(&leadership, true).await;
    store.lock().expect("store").broken = true;
    wait_for(&leadership, false).await;
    store.lock().expect("store").broken = false;
    wait_for(&leadership, true).await;

    stop_tx.send(()).expect("elector running");
    bounded(run).await.expect("elector ends");
    assert!(!leadership.is_leader());
    let held = store.lock().expect("store").lease.clone().expect("lease");
    assert_eq!(held["spec"].get("holderIdentity"), None, "released: {held}");
    bounded(api).await.expect("API ends with its client");
}

/// The API server stops answering a leader mid-renewal. Its last renewal began no later than
/// it became leader, so it must step down within the renew deadline of that, before another
/// replica (which saw the change no earlier) may take the lease at the lease duration. A
/// round left waiting is abandoned at the deadline, not a whole round timeout later. Time is
/// tokio's paused clock, so the bound is exact, not a race.
#[tokio::test(start_paused = true)]
async fn a_leader_whose_api_server_goes_silent_steps_down_by_its_renew_deadline() {
    let (c, server) = client();
    let store = Arc::new(Mutex::new(Store::default()));
    let s = store.clone();
    let _api = tokio::spawn(server.serve(move |seen| s.lock().expect("store").reply(seen)));
    let config = ElectionConfig::new("istio-system", NAMESPACE_CONTROLLER, ME);
    let deadline = config.renew_deadline;
    assert!(deadline < config.lease_duration);
    let e = Elector::new(c, config);
    let leadership = e.leadership();
    let _run = tokio::spawn(e.run(std::future::pending()));

    wait_for(&leadership, true).await;
    let led = tokio::time::Instant::now();
    store.lock().expect("store").silent = true;
    wait_for(&leadership, false).await;
    let after = led.elapsed();
    assert!(
        after <= deadline,
        "stepped down {after:?} after leading; the renew deadline is {deadline:?}"
    );
}
