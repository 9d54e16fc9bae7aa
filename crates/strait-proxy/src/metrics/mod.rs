//! Istio's standard metrics, with Istio's names and label set, so Istio's Grafana dashboards
//! and Kiali read a strait mesh unchanged. Exposed on 15090 `/stats/prometheus`.
//!
//! The request and TCP families are kept by [`series`] (labels interned once per caller, atomics
//! per request); the rest (authorization, build info) by `prometheus_client`. [`Metrics::render`]
//! writes both in one OpenMetrics exposition.

mod render;
mod series;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use series::{CallLabels, CallSeries};

/// One side of a call, for labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    pub workload: String,
    pub namespace: String,
    pub principal: String,
    pub app: String,
    pub version: String,
    pub cluster: String,
}

/// The service a call was for.
#[derive(Clone, Debug, Default)]
pub struct ServiceRef {
    /// Fully qualified host.
    pub host: String,
}

impl ServiceRef {
    fn name(&self) -> &str {
        self.host.split('.').next().unwrap_or("")
    }

    fn namespace(&self) -> &str {
        let mut parts = self.host.split('.');
        parts.next();
        parts.next().unwrap_or("")
    }
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "unknown".to_string()
    } else {
        s.to_string()
    }
}

/// Everything a metric line needs besides the numbers.
#[derive(Clone, Debug)]
pub struct Call {
    pub reporter: &'static str,
    pub source: Peer,
    pub destination: Peer,
    pub service: ServiceRef,
    /// `http`, `grpc` or `tcp`.
    pub protocol: &'static str,
    pub mutual_tls: bool,
}

impl Call {
    /// The series' labels, Istio's set in Istio's order; unknown values are `unknown`.
    fn labels(&self) -> CallLabels {
        let s = &self.source;
        let d = &self.destination;
        let canonical = |p: &Peer| {
            or_unknown(if p.app.is_empty() {
                &p.workload
            } else {
                &p.app
            })
        };
        let revision = |p: &Peer| {
            if p.version.is_empty() {
                "latest".to_string()
            } else {
                p.version.clone()
            }
        };
        CallLabels {
            head: vec![
                ("reporter", self.reporter.to_string()),
                ("source_workload", or_unknown(&s.workload)),
                ("source_workload_namespace", or_unknown(&s.namespace)),
                ("source_principal", or_unknown(&s.principal)),
                ("source_app", or_unknown(&s.app)),
                ("source_version", or_unknown(&s.version)),
                ("source_canonical_service", canonical(s)),
                ("source_canonical_revision", revision(s)),
                ("source_cluster", or_unknown(&s.cluster)),
                ("destination_workload", or_unknown(&d.workload)),
                ("destination_workload_namespace", or_unknown(&d.namespace)),
                ("destination_principal", or_unknown(&d.principal)),
                ("destination_app", or_unknown(&d.app)),
                ("destination_version", or_unknown(&d.version)),
                ("destination_service", or_unknown(&self.service.host)),
                ("destination_service_name", or_unknown(self.service.name())),
                (
                    "destination_service_namespace",
                    or_unknown(self.service.namespace()),
                ),
                ("destination_canonical_service", canonical(d)),
                ("destination_canonical_revision", revision(d)),
                ("destination_cluster", or_unknown(&d.cluster)),
                ("request_protocol", self.protocol.to_string()),
            ],
            connection_security_policy: if self.reporter == "destination" {
                if self.mutual_tls {
                    "mutual_tls".into()
                } else {
                    "none".into()
                }
            } else {
                "unknown".into()
            },
        }
    }
}

/// The proxy's metric families.
#[derive(Debug)]
pub struct Metrics {
    /// Every connection-level series, by its labels (interning).
    calls: Mutex<HashMap<CallLabels, Arc<CallSeries>>>,
    authz: Family<AuthzLabels, Counter>,
    jwt_rejected: Family<JwtLabels, Counter>,
}

/// One authorization decision (Envoy's `rbac.allowed` / `rbac.denied`, with the policy).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthzLabels {
    /// `http` or `tcp`.
    protocol: String,
    /// `allowed`, `denied` or `audited`.
    decision: String,
    /// The policy that decided (`namespace/name`), empty when nothing denied.
    policy: String,
    /// Why a request was denied (`deny_rule`, `no_allow_matched`, `custom`).
    reason: String,
}

/// A request refused by RequestAuthentication.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JwtLabels {
    /// The RequestAuthentication and issuer, when the token's issuer was known.
    provider: String,
    /// Envoy's wording of the failure (`Jwt is expired`, ...).
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    component: String,
    tag: String,
}

/// How one HTTP request ended, as the request metrics record it.
#[derive(Clone, Debug, Default)]
pub struct Outcome<'a> {
    pub code: u16,
    /// Envoy-style response flags (`UO`, `UF`, ...), empty when none.
    pub flags: &'a str,
    pub grpc_status: Option<&'a str>,
    pub ms: f64,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl Metrics {
    /// Registers the families kept by `prometheus_client` in `registry`; the request and TCP
    /// families are kept here and written by [`Metrics::render`].
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            calls: Mutex::new(HashMap::new()),
            authz: Family::default(),
            jwt_rejected: Family::default(),
        };
        registry.register(
            "strait_authz_decisions",
            "AuthorizationPolicy decisions, by protocol, decision, deciding policy and reason",
            m.authz.clone(),
        );
        registry.register(
            "strait_jwt_rejected_requests",
            "Requests refused by RequestAuthentication, by provider and reason",
            m.jwt_rejected.clone(),
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                component: "proxy".into(),
                tag: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        registry.register("istio_build", "Istio component build info", build);
        m
    }

    /// The series of `call`, created on first use. Keep it where the same labels recur (an
    /// endpoint of a configuration, a connection's caller): recording on it then costs no
    /// label building or hashing.
    pub fn series(&self, call: &Call) -> Arc<CallSeries> {
        let labels = call.labels();
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = calls.get(&labels) {
            return s.clone();
        }
        let s = Arc::new(CallSeries::new(labels.clone()));
        calls.insert(labels, s.clone());
        s
    }

    /// Records a finished HTTP request of `call`.
    pub fn request(&self, call: &Call, o: &Outcome<'_>) {
        record(&self.series(call), o);
    }

    /// Records an authorization decision.
    pub fn authz(&self, protocol: &str, decision: &str, policy: &str, reason: &str) {
        self.authz
            .get_or_create(&AuthzLabels {
                protocol: protocol.into(),
                decision: decision.into(),
                policy: policy.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// Records a request refused for its token.
    pub fn jwt_rejected(&self, provider: &str, reason: &str) {
        self.jwt_rejected
            .get_or_create(&JwtLabels {
                provider: provider.into(),
                reason: reason.into(),
            })
            .inc();
    }

    pub fn tcp_opened(&self, call: &Call) {
        tcp_opened(&self.series(call));
    }

    /// Records a closed TCP connection: `request_bytes` from the client towards the
    /// destination, `response_bytes` back. Istio's `istio_tcp_received_bytes_total` counts the
    /// first, `istio_tcp_sent_bytes_total` the second.
    pub fn tcp_closed(&self, call: &Call, flags: &str, request_bytes: u64, response_bytes: u64) {
        tcp_closed(&self.series(call), flags, request_bytes, response_bytes);
    }

    /// The exposition of every family: this proxy's request and TCP series, then the
    /// registry's, in the OpenMetrics text format.
    pub fn render(&self, registry: &Registry) -> String {
        let calls: Vec<Arc<CallSeries>> = self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut out = render::series(&calls);
        let mut rest = String::new();
        if prometheus_client::encoding::text::encode(&mut rest, registry).is_err() {
            rest = "# EOF\n".into();
        }
        out.push_str(&rest);
        out
    }
}

/// Records a finished HTTP request on `series`.
pub fn record(series: &CallSeries, o: &Outcome<'_>) {
    series.request(
        o.code,
        o.flags,
        o.grpc_status,
        o.ms,
        o.request_bytes,
        o.response_bytes,
    );
}

/// Records an opened TCP connection on `series`.
pub fn tcp_opened(series: &CallSeries) {
    series.tcp_stats("").opened.fetch_add(1, Ordering::Relaxed);
}

/// Records a closed TCP connection on `series` (see [`Metrics::tcp_closed`]).
pub fn tcp_closed(series: &CallSeries, flags: &str, request_bytes: u64, response_bytes: u64) {
    let s = series.tcp_stats(flags);
    s.closed.fetch_add(1, Ordering::Relaxed);
    s.sent.fetch_add(response_bytes, Ordering::Relaxed);
    s.received.fetch_add(request_bytes, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_names_and_labels() {
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        let call = Call {
            reporter: "destination",
            source: Peer {
                workload: "sleep".into(),
                namespace: "sample".into(),
                principal: "spiffe://cluster.local/ns/sample/sa/sleep".into(),
                app: "sleep".into(),
                version: String::new(),
                cluster: "cluster1".into(),
            },
            destination: Peer {
                workload: "helloworld-v1".into(),
                namespace: "sample".into(),
                app: "helloworld".into(),
                version: "v1".into(),
                cluster: "cluster2".into(),
                ..Peer::default()
            },
            service: ServiceRef {
                host: "helloworld.sample.svc.cluster.local".into(),
            },
            protocol: "http",
            mutual_tls: true,
        };
        m.request(
            &call,
            &Outcome {
                code: 200,
                ms: 3.2,
                response_bytes: 40,
                ..Outcome::default()
            },
        );
        let text = m.render(&reg);
        assert!(
            text.contains(
                "istio_requests_total{reporter=\"destination\",source_workload=\"sleep\""
            ),
            "{text}"
        );
        assert!(text.contains("source_cluster=\"cluster1\""));
        assert!(text.contains("destination_cluster=\"cluster2\""));
        assert!(text.contains("destination_service_name=\"helloworld\""));
        assert!(text.contains("destination_service_namespace=\"sample\""));
        assert!(text.contains("connection_security_policy=\"mutual_tls\""));
        assert!(text.contains("response_code=\"200\""));
        assert!(text.contains("source_canonical_revision=\"latest\""));
        assert!(text.contains("istio_request_duration_milliseconds_bucket{"));
        assert!(text.contains("istio_build{component=\"proxy\""));
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }

    #[test]
    fn tcp_bytes_count_as_istio_counts_them() {
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        let call = Call {
            reporter: "destination",
            source: Peer::default(),
            destination: Peer {
                workload: "db".into(),
                ..Peer::default()
            },
            service: ServiceRef {
                host: "db.data.svc.cluster.local".into(),
            },
            protocol: "tcp",
            mutual_tls: false,
        };
        m.tcp_opened(&call);
        m.tcp_closed(&call, "", 100, 7000);
        let text = m.render(&reg);
        let value = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .unwrap_or("")
                .to_string()
        };
        // Istio: sent = the response's bytes, received = the request's.
        assert_eq!(value("istio_tcp_sent_bytes_total"), "7000");
        assert_eq!(value("istio_tcp_received_bytes_total"), "100");
        assert_eq!(value("istio_tcp_connections_opened_total"), "1");
        assert!(text.contains("source_workload=\"unknown\""), "{text}");
        assert!(
            text.contains("connection_security_policy=\"none\""),
            "{text}"
        );
    }

    #[test]
    fn series_are_interned_and_label_values_escaped() {
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        let call = Call {
            reporter: "source",
            source: Peer {
                workload: "odd\"name\\".into(),
                ..Peer::default()
            },
            destination: Peer::default(),
            service: ServiceRef::default(),
            protocol: "http",
            mutual_tls: true,
        };
        assert!(Arc::ptr_eq(&m.series(&call), &m.series(&call)));
        m.request(
            &call,
            &Outcome {
                code: 503,
                flags: "UF",
                ..Outcome::default()
            },
        );
        let text = m.render(&reg);
        assert!(
            text.contains("source_workload=\"odd\\\"name\\\\\""),
            "{text}"
        );
        assert!(text.contains("response_flags=\"UF\""));
        assert!(text.contains("connection_security_policy=\"unknown\""));
    }

    /// Istio's standard metrics as its documentation ("Istio Standard Metrics") defines them:
    /// name as exposed, type, and label names; the HTTP families carry the response code and
    /// gRPC status, the TCP ones do not.
    const ISTIO_HTTP: &[(&str, &str)] = &[
        ("istio_requests_total", "counter"),
        ("istio_request_duration_milliseconds", "histogram"),
        ("istio_request_bytes", "histogram"),
        ("istio_response_bytes", "histogram"),
    ];
    const ISTIO_TCP: &[&str] = &[
        "istio_tcp_connections_opened_total",
        "istio_tcp_connections_closed_total",
        "istio_tcp_sent_bytes_total",
        "istio_tcp_received_bytes_total",
    ];
    const LABELS: &[&str] = &[
        "reporter",
        "source_workload",
        "source_workload_namespace",
        "source_principal",
        "source_app",
        "source_version",
        "source_canonical_service",
        "source_canonical_revision",
        "source_cluster",
        "destination_workload",
        "destination_workload_namespace",
        "destination_principal",
        "destination_app",
        "destination_version",
        "destination_service",
        "destination_service_name",
        "destination_service_namespace",
        "destination_canonical_service",
        "destination_canonical_revision",
        "destination_cluster",
        "request_protocol",
        "response_flags",
        "connection_security_policy",
    ];
    const HTTP_ONLY: &[&str] = &["response_code", "grpc_response_status"];
    /// Envoy's default histogram buckets, which Istio's proxies use for durations.
    const DURATION_BUCKETS: &[f64] = &[
        0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
        30000.0, 60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
    ];

    /// The label names of one exposed sample line, and its `le` bound if any.
    fn labels_of(line: &str) -> (std::collections::BTreeSet<String>, Option<String>) {
        let inner = line
            .split_once('{')
            .and_then(|(_, r)| r.rsplit_once('}'))
            .map_or("", |(l, _)| l);
        let mut names = std::collections::BTreeSet::new();
        let mut le = None;
        // Values are quoted and may hold escaped quotes: split on `",` boundaries.
        for pair in inner.split("\",") {
            let Some((k, v)) = pair.split_once("=\"") else {
                continue;
            };
            if k == "le" {
                le = Some(v.trim_end_matches('"').to_string());
            } else {
                names.insert(k.to_string());
            }
        }
        (names, le)
    }

    #[test]
    fn the_exposition_matches_istios_standard_metrics() {
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        let call = |protocol: &'static str| Call {
            reporter: "destination",
            source: Peer {
                workload: "sleep".into(),
                namespace: "sample".into(),
                ..Peer::default()
            },
            destination: Peer {
                workload: "db".into(),
                ..Peer::default()
            },
            service: ServiceRef {
                host: "db.data.svc.cluster.local".into(),
            },
            protocol,
            mutual_tls: true,
        };
        m.request(
            &call("http"),
            &Outcome {
                code: 200,
                ms: 3.0,
                request_bytes: 10,
                response_bytes: 20,
                ..Outcome::default()
            },
        );
        m.tcp_opened(&call("tcp"));
        m.tcp_closed(&call("tcp"), "", 1, 2);
        let text = m.render(&reg);
        let want = |http: bool| {
            let mut w: std::collections::BTreeSet<String> =
                LABELS.iter().map(|l| l.to_string()).collect();
            if http {
                w.extend(HTTP_ONLY.iter().map(|l| l.to_string()));
            }
            w
        };
        for (name, kind) in ISTIO_HTTP {
            let family = name.trim_end_matches("_total");
            assert!(
                text.contains(&format!("# TYPE {family} {kind}\n")),
                "{name} is not a {kind}:\n{text}"
            );
            let sample = if *kind == "histogram" {
                format!("{name}_bucket{{")
            } else {
                format!("{name}{{")
            };
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&sample)).collect();
            assert!(!lines.is_empty(), "no {name} samples:\n{text}");
            for line in &lines {
                assert_eq!(labels_of(line).0, want(true), "labels of {name}");
            }
            if *name == "istio_request_duration_milliseconds" {
                let bounds: Vec<f64> = lines
                    .iter()
                    .filter_map(|l| labels_of(l).1)
                    .filter(|le| le != "+Inf")
                    .filter_map(|le| le.parse().ok())
                    .collect();
                assert_eq!(bounds, DURATION_BUCKETS, "{name} buckets");
            }
        }
        for name in ISTIO_TCP {
            let family = name.trim_end_matches("_total");
            assert!(
                text.contains(&format!("# TYPE {family} counter\n")),
                "{name} is not a counter:\n{text}"
            );
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name}{{")))
                .unwrap_or_else(|| panic!("no {name} sample:\n{text}"));
            assert_eq!(labels_of(line).0, want(false), "labels of {name}");
        }
    }
}
