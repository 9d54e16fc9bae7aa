use super::*;
use crate::observe::prom::parse;

const HELLO: &str = "helloworld.sample.svc.cluster.local";

/// One `istio_requests_total` line.
fn req(reporter: &str, src: (&str, &str), dst: (&str, &str), code: &str, n: u64) -> String {
    format!(
        "istio_requests_total{{reporter=\"{reporter}\",source_workload=\"{}\",source_workload_namespace=\"sample\",\
         source_cluster=\"{}\",destination_workload=\"{}\",destination_workload_namespace=\"sample\",\
         destination_service=\"{HELLO}\",destination_cluster=\"{}\",response_code=\"{code}\"}} {n}\n",
        src.0, src.1, dst.0, dst.1
    )
}

fn scrape(at: f64, text: &str) -> Scrape {
    Scrape {
        at,
        samples: parse(text, FAMILIES),
    }
}

fn find<'a>(edges: &'a [Edge], src: &str, dst: &str) -> &'a Edge {
    edges
        .iter()
        .find(|e| e.source.key() == src && e.destination.key() == dst)
        .unwrap_or_else(|| panic!("no edge {src} -> {dst}: {edges:#?}"))
}

#[test]
fn a_rate_is_the_growth_over_the_window_counted_once() {
    let sleep = ("sleep", "cluster1");
    let v1 = ("helloworld-v1", "cluster1");
    let before = scrape(
        10.0,
        &(req("source", sleep, v1, "200", 100) + &req("destination", sleep, v1, "200", 100)),
    );
    let after = scrape(
        20.0,
        &(req("source", sleep, v1, "200", 150)
            + &req("source", sleep, v1, "503", 10)
            + &req("destination", sleep, v1, "200", 150)),
    );
    let edges = edges(&[Window {
        before: &before,
        after: &after,
    }]);
    assert_eq!(
        edges.len(),
        1,
        "the destination's report is not counted again: {edges:#?}"
    );
    let e = find(
        &edges,
        "cluster1/sample/sleep",
        "cluster1/sample/helloworld-v1",
    );
    assert_eq!(e.protocol, "http");
    assert!((e.rate - 6.0).abs() < 1e-9, "{e:?}");
    assert!((e.error_rate - 1.0).abs() < 1e-9, "{e:?}");
    assert!((e.error_ratio() - 1.0 / 6.0).abs() < 1e-9);
    assert_eq!(e.codes.get("503"), Some(&1.0));
}

#[test]
fn requests_through_a_gateway_are_divided_as_the_destinations_report_them() {
    let sleep = ("sleep", "cluster1");
    let gw = (UNKNOWN, "cluster2");
    let before = scrape(0.0, "");
    let client = scrape(
        10.0,
        &(req("source", sleep, gw, "200", 40) + &req("source", sleep, gw, "503", 5)),
    );
    // Two versions behind cluster2's gateway; the 503s never reached a sidecar.
    let v2 = scrape(
        10.0,
        &req(
            "destination",
            sleep,
            ("helloworld-v2", "cluster2"),
            "200",
            30,
        ),
    );
    let v3 = scrape(
        10.0,
        &req(
            "destination",
            sleep,
            ("helloworld-v3", "cluster2"),
            "200",
            10,
        ),
    );
    let edges = edges(&[
        Window {
            before: &before,
            after: &client,
        },
        Window {
            before: &before,
            after: &v2,
        },
        Window {
            before: &before,
            after: &v3,
        },
    ]);
    let to_v2 = find(
        &edges,
        "cluster1/sample/sleep",
        "cluster2/sample/helloworld-v2",
    );
    let to_v3 = find(
        &edges,
        "cluster1/sample/sleep",
        "cluster2/sample/helloworld-v3",
    );
    assert!((to_v2.rate - 3.0).abs() < 1e-9, "{to_v2:?}");
    assert!((to_v3.rate - 1.0).abs() < 1e-9, "{to_v3:?}");
    let lost = find(&edges, "cluster1/sample/sleep", "cluster2/unknown/unknown");
    assert!((lost.error_rate - 0.5).abs() < 1e-9, "{lost:?}");
    assert_eq!(edges.len(), 3, "{edges:#?}");
}

#[test]
fn a_client_without_a_sidecar_is_counted_by_the_destination() {
    let outside = (UNKNOWN, UNKNOWN);
    let v1 = ("helloworld-v1", "cluster1");
    let edges = edges(&[Window {
        before: &scrape(0.0, ""),
        after: &scrape(2.0, &req("destination", outside, v1, "200", 4)),
    }]);
    let e = find(
        &edges,
        "unknown/sample/unknown",
        "cluster1/sample/helloworld-v1",
    );
    assert!((e.rate - 2.0).abs() < 1e-9);
}

#[test]
fn a_restarted_proxy_counts_from_zero_and_no_time_means_no_rate() {
    let sleep = ("sleep", "cluster1");
    let v1 = ("helloworld-v1", "cluster1");
    let before = scrape(0.0, &req("source", sleep, v1, "200", 500));
    let after = scrape(5.0, &req("source", sleep, v1, "200", 20));
    let e = edges(&[Window {
        before: &before,
        after: &after,
    }]);
    assert!((e[0].rate - 4.0).abs() < 1e-9, "{e:?}");
    assert!(
        edges(&[Window {
            before: &after,
            after: &after
        }])
        .is_empty()
    );
}

#[test]
fn tcp_edges_count_connections_and_bytes() {
    let labels = "reporter=\"source\",source_workload=\"istio-eastwestgateway\",source_workload_namespace=\"istio-system\",\
        source_cluster=\"cluster2\",destination_workload=\"helloworld-v2\",destination_workload_namespace=\"sample\",\
        destination_service=\"helloworld.sample.svc.cluster.local\",destination_cluster=\"cluster2\",response_flags=\"-\"";
    let text = format!(
        "istio_tcp_connections_opened_total{{{labels}}} 4\nistio_tcp_sent_bytes_total{{{labels}}} 3000\n\
         istio_tcp_received_bytes_total{{{labels}}} 1000\n"
    );
    let e = edges(&[Window {
        before: &scrape(0.0, ""),
        after: &scrape(2.0, &text),
    }]);
    let e = find(
        &e,
        "cluster2/istio-system/istio-eastwestgateway",
        "cluster2/sample/helloworld-v2",
    );
    assert_eq!(e.protocol, "tcp");
    assert!(
        (e.rate - 2.0).abs() < 1e-9 && (e.bytes_rate - 2000.0).abs() < 1e-9,
        "{e:?}"
    );
}

#[test]
fn an_idle_path_through_a_gateway_keeps_its_destination() {
    let sleep = ("sleep", "cluster1");
    let text = req("source", sleep, (UNKNOWN, "cluster2"), "200", 40);
    let v2 = req(
        "destination",
        sleep,
        ("helloworld-v2", "cluster2"),
        "200",
        40,
    );
    let (c, d) = (scrape(0.0, &text), scrape(0.0, &v2));
    let (c2, d2) = (scrape(5.0, &text), scrape(5.0, &v2));
    let edges = edges(&[
        Window {
            before: &c,
            after: &c2,
        },
        Window {
            before: &d,
            after: &d2,
        },
    ]);
    assert_eq!(edges.len(), 1, "{edges:#?}");
    let e = find(
        &edges,
        "cluster1/sample/sleep",
        "cluster2/sample/helloworld-v2",
    );
    assert_eq!(e.rate, 0.0);
}
