use rand::SeedableRng;
use rand::rngs::StdRng;
use strait_config::{Cluster, LbPolicy, OutlierDetection};

use super::*;

fn cluster(lb: LbPolicy, n: usize) -> Cluster {
    let addresses: Vec<String> = (0..n).map(|i| format!("10.0.0.{i}")).collect();
    crate::test_support::cluster("c", lb, &addresses)
}

#[test]
fn round_robin_least_request_and_exclusion() {
    let c = cluster(LbPolicy::RoundRobin, 3);
    let b = Balancer::new(3);
    let mut rng = StdRng::seed_from_u64(1);
    let picks: Vec<usize> = (0..6).filter_map(|_| b.choose(&c, &[], &mut rng)).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    assert_ne!(b.choose(&c, &[0], &mut rng), Some(0));
    let lr = cluster(LbPolicy::LeastRequest, 2);
    let b = Balancer::new(2);
    let _busy = b.start(0);
    let _busy2 = b.start(0);
    let ones = (0..200)
        .filter(|_| b.choose(&lr, &[], &mut rng) == Some(1))
        .count();
    assert!(
        ones > 140,
        "least request prefers the idle endpoint: {ones}"
    );
    assert_eq!(
        Balancer::new(0).choose(&cluster(LbPolicy::Random, 0), &[], &mut rng),
        None
    );
}

#[test]
fn weights_and_health_steer_the_choice() {
    let mut c = cluster(LbPolicy::RoundRobin, 3);
    c.endpoints[0].weight = 2;
    c.endpoints[2].unhealthy = true;
    let b = Balancer::new(3);
    let mut rng = StdRng::seed_from_u64(1);
    let picks: Vec<usize> = (0..6).filter_map(|_| b.choose(&c, &[], &mut rng)).collect();
    // Weight 2 takes two turns in three; the unhealthy endpoint none.
    assert_eq!(picks, [0, 0, 1, 0, 0, 1]);
    // When every endpoint is unhealthy, all are used (Envoy's panic mode).
    for e in &mut c.endpoints {
        e.unhealthy = true;
    }
    assert!(b.choose(&c, &[], &mut rng).is_some());
}

/// Two local endpoints on priority 0 and a gateway on priority 1, ejecting after one 5xx.
fn failover_cluster() -> Cluster {
    let mut c = cluster(LbPolicy::RoundRobin, 3);
    c.endpoints[2].priority = 1;
    c.outlier = Some(OutlierDetection {
        consecutive_5xx: Some(1),
        max_ejection_percent: 100,
        base_ejection_ms: 60_000,
        ..OutlierDetection::istio_default()
    });
    c
}

fn spread(b: &Balancer, c: &Cluster, n: usize) -> [usize; 3] {
    let mut rng = StdRng::seed_from_u64(7);
    let mut seen = [0; 3];
    for _ in 0..n {
        if let Some(i) = b.choose(c, &[], &mut rng) {
            seen[i] += 1;
        }
    }
    seen
}

#[test]
fn a_healthy_first_level_takes_everything() {
    let c = failover_cluster();
    let b = Balancer::new(3);
    assert_eq!(spread(&b, &c, 100)[2], 0);
}

#[test]
fn traffic_spills_as_the_first_level_is_ejected_and_returns_after() {
    let c = failover_cluster();
    let b = Balancer::new(3);
    // One of two ejected: level 0 is 50 % healthy, 70 % with overprovisioning; 30 % spills.
    assert!(b.record(&c, 0, Status::CONNECT_FAILED));
    assert!(matches!(b.outlier_state(0), OutlierState::Ejected(_)));
    let s = spread(&b, &c, 2000);
    assert_eq!(s[0], 0, "an ejected endpoint takes nothing");
    assert!((450..750).contains(&s[2]), "about 30 % spills: {s:?}");
    // Both ejected: everything goes to the next level.
    assert!(b.record(&c, 1, Status(500)));
    assert_eq!(spread(&b, &c, 200), [0, 0, 200]);
    // A success does not end an ejection; time does.
    b.record(&c, 0, Status::OK);
    assert!(matches!(b.outlier_state(0), OutlierState::Ejected(_)));
}

#[test]
fn ejection_ends_after_the_base_time() {
    // The clock is given, not slept on: ejected at t, out until t + base, then back.
    let c = failover_cluster();
    let b = Balancer::new(3);
    let t = 1_000;
    let od = c.outlier.clone().expect("outlier detection");
    assert!(outlier::record(
        &od,
        &b.health,
        0,
        Status::CONNECT_FAILED,
        t
    ));
    assert!(outlier::record(
        &od,
        &b.health,
        1,
        Status::CONNECT_FAILED,
        t
    ));
    let mut rng = StdRng::seed_from_u64(7);
    let end = t + od.base_ejection_ms;
    for _ in 0..50 {
        assert_eq!(b.choose_at(&c, &[], end - 1, &mut rng), Some(2));
    }
    assert!(!b.health[0].is_ejected(end));
    for _ in 0..50 {
        assert_ne!(
            b.choose_at(&c, &[], end, &mut rng),
            Some(2),
            "traffic is back on level 0"
        );
    }
}

#[test]
fn thresholds_and_the_ejection_cap() {
    let mut c = cluster(LbPolicy::RoundRobin, 10);
    c.outlier = Some(OutlierDetection {
        consecutive_5xx: Some(3),
        consecutive_gateway_errors: None,
        ..OutlierDetection::istio_default()
    });
    let b = Balancer::new(10);
    // Not consecutive: a success in between starts the count again.
    b.record(&c, 0, Status(503));
    b.record(&c, 0, Status(503));
    b.record(&c, 0, Status::OK);
    b.record(&c, 0, Status(503));
    assert!(!b.record(&c, 0, Status(503)));
    assert!(b.record(&c, 0, Status(503)));
    // 10 % of ten: a second endpoint may not go out while the first is.
    for _ in 0..3 {
        assert!(!b.record(&c, 1, Status(500)));
    }
    assert_eq!(b.outlier_state(1), OutlierState::Ok);
    // 4xx are not errors of the server.
    let mut d = cluster(LbPolicy::RoundRobin, 2);
    d.outlier = Some(OutlierDetection {
        consecutive_5xx: None,
        consecutive_gateway_errors: Some(1),
        ..OutlierDetection::istio_default()
    });
    let b = Balancer::new(2);
    assert!(!b.record(&d, 0, Status(404)));
    assert!(!b.record(&d, 0, Status(500)), "500 is not a gateway error");
    assert!(b.record(&d, 0, Status::TIMEOUT));
}

#[test]
fn no_healthy_endpoint_is_no_endpoint_unless_panic_is_allowed() {
    let mut c = cluster(LbPolicy::RoundRobin, 1);
    c.outlier = Some(OutlierDetection {
        consecutive_5xx: Some(1),
        ..OutlierDetection::istio_default()
    });
    let b = Balancer::new(1);
    assert!(b.record(&c, 0, Status(503)));
    let mut rng = StdRng::seed_from_u64(1);
    assert_eq!(b.choose(&c, &[], &mut rng), None);
    if let Some(od) = c.outlier.as_mut() {
        od.min_health_percent = 50;
    }
    assert_eq!(b.choose(&c, &[], &mut rng), Some(0), "panic mode uses it");
}

#[test]
fn ejections_survive_a_config_update() {
    let c = failover_cluster();
    let b = Balancer::new(3);
    b.record(&c, 1, Status(503));
    let mut next = c.clone();
    next.endpoints.remove(0);
    let carried = Balancer::carried_over(&b, &c, &next);
    assert!(matches!(carried.outlier_state(0), OutlierState::Ejected(_)));
    assert_eq!(carried.outlier_state(1), OutlierState::Ok);
}

#[test]
fn distribute_weights_split_between_localities() {
    let mut c = cluster(LbPolicy::Random, 3);
    c.endpoints[0].locality = "r1/z1".into();
    c.endpoints[1].locality = "r1/z1".into();
    c.endpoints[2].locality = "r2/z1".into();
    c.locality_weights = [("r1/z1".to_string(), 20), ("r2/z1".to_string(), 80)].into();
    let s = spread(&Balancer::new(3), &c, 2000);
    assert!(
        (1450..1750).contains(&s[2]),
        "80 % to r2 though it has one endpoint: {s:?}"
    );
}
