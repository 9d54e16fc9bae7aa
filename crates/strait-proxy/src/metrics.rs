//! Istio's standard metrics, with Istio's names and label set, so Istio's Grafana dashboards
//! and Kiali read a strait mesh unchanged. Exposed on 15090 `/stats/prometheus`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Who called whom over which connection, as Istio labels a TCP connection. Unknown values
/// are `unknown`, as in Istio.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TcpLabels {
    pub reporter: String,
    pub source_workload: String,
    pub source_workload_namespace: String,
    pub source_principal: String,
    pub source_app: String,
    pub source_version: String,
    pub source_canonical_service: String,
    pub source_canonical_revision: String,
    pub source_cluster: String,
    pub destination_workload: String,
    pub destination_workload_namespace: String,
    pub destination_principal: String,
    pub destination_app: String,
    pub destination_version: String,
    pub destination_service: String,
    pub destination_service_name: String,
    pub destination_service_namespace: String,
    pub destination_canonical_service: String,
    pub destination_canonical_revision: String,
    pub destination_cluster: String,
    pub request_protocol: String,
    pub response_flags: String,
    pub connection_security_policy: String,
}

/// A request's labels: the connection's, then how it was answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    #[prometheus(flatten)]
    pub call: TcpLabels,
    pub response_code: String,
    pub grpc_response_status: String,
}

/// One side of a call, for labels.
#[derive(Clone, Debug, Default)]
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
    fn tcp_labels(&self, flags: &str) -> TcpLabels {
        let s = &self.source;
        let d = &self.destination;
        TcpLabels {
            reporter: self.reporter.to_string(),
            source_workload: or_unknown(&s.workload),
            source_workload_namespace: or_unknown(&s.namespace),
            source_principal: or_unknown(&s.principal),
            source_app: or_unknown(&s.app),
            source_version: or_unknown(&s.version),
            source_canonical_service: or_unknown(if s.app.is_empty() {
                &s.workload
            } else {
                &s.app
            }),
            source_canonical_revision: if s.version.is_empty() {
                "latest".into()
            } else {
                s.version.clone()
            },
            source_cluster: or_unknown(&s.cluster),
            destination_workload: or_unknown(&d.workload),
            destination_workload_namespace: or_unknown(&d.namespace),
            destination_principal: or_unknown(&d.principal),
            destination_app: or_unknown(&d.app),
            destination_version: or_unknown(&d.version),
            destination_service: or_unknown(&self.service.host),
            destination_service_name: or_unknown(self.service.name()),
            destination_service_namespace: or_unknown(self.service.namespace()),
            destination_canonical_service: or_unknown(if d.app.is_empty() {
                &d.workload
            } else {
                &d.app
            }),
            destination_canonical_revision: if d.version.is_empty() {
                "latest".into()
            } else {
                d.version.clone()
            },
            destination_cluster: or_unknown(&d.cluster),
            request_protocol: self.protocol.to_string(),
            response_flags: if flags.is_empty() {
                "-".into()
            } else {
                flags.to_string()
            },
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

    fn request_labels(&self, code: u16, flags: &str, grpc_status: Option<&str>) -> RequestLabels {
        RequestLabels {
            call: self.tcp_labels(flags),
            response_code: code.to_string(),
            grpc_response_status: grpc_status.unwrap_or("").to_string(),
        }
    }
}

fn ms_buckets() -> impl Iterator<Item = f64> {
    [
        0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
        30000.0, 60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
    ]
    .into_iter()
}

fn byte_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(1.0, 10.0, 9)
}

/// The proxy's metric families, registered in one registry.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram>,
    request_bytes: Family<RequestLabels, Histogram>,
    response_bytes: Family<RequestLabels, Histogram>,
    tcp_opened: Family<TcpLabels, Counter>,
    tcp_closed: Family<TcpLabels, Counter>,
    tcp_sent: Family<TcpLabels, Counter>,
    tcp_received: Family<TcpLabels, Counter>,
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
    /// Registers the families in `registry` (Istio's names; counters get `_total`).
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(ms_buckets())),
            request_bytes: Family::new_with_constructor(|| Histogram::new(byte_buckets())),
            response_bytes: Family::new_with_constructor(|| Histogram::new(byte_buckets())),
            tcp_opened: Family::default(),
            tcp_closed: Family::default(),
            tcp_sent: Family::default(),
            tcp_received: Family::default(),
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
        registry.register(
            "istio_requests",
            "Requests, by Istio's standard labels",
            m.requests.clone(),
        );
        registry.register(
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds",
            m.duration.clone(),
        );
        registry.register(
            "istio_request_bytes",
            "Request body sizes",
            m.request_bytes.clone(),
        );
        registry.register(
            "istio_response_bytes",
            "Response body sizes",
            m.response_bytes.clone(),
        );
        registry.register(
            "istio_tcp_connections_opened",
            "TCP connections opened",
            m.tcp_opened.clone(),
        );
        registry.register(
            "istio_tcp_connections_closed",
            "TCP connections closed",
            m.tcp_closed.clone(),
        );
        registry.register(
            "istio_tcp_sent_bytes",
            "Bytes sent on TCP connections",
            m.tcp_sent.clone(),
        );
        registry.register(
            "istio_tcp_received_bytes",
            "Bytes received on TCP connections",
            m.tcp_received.clone(),
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

    /// Records a finished HTTP request.
    pub fn request(&self, call: &Call, o: &Outcome<'_>) {
        let l = call.request_labels(o.code, o.flags, o.grpc_status);
        self.requests.get_or_create(&l).inc();
        self.duration.get_or_create(&l).observe(o.ms);
        self.request_bytes
            .get_or_create(&l)
            .observe(o.request_bytes as f64);
        self.response_bytes
            .get_or_create(&l)
            .observe(o.response_bytes as f64);
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
        self.tcp_opened.get_or_create(&call.tcp_labels("")).inc();
    }

    /// Records a closed TCP connection with its byte counts (sent = towards the destination).
    pub fn tcp_closed(&self, call: &Call, flags: &str, sent: u64, received: u64) {
        let l = call.tcp_labels(flags);
        self.tcp_closed.get_or_create(&l).inc();
        self.tcp_sent.get_or_create(&l).inc_by(sent);
        self.tcp_received.get_or_create(&l).inc_by(received);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    component: String,
    tag: String,
}

/// The registry rendered in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
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
        let text = render(&reg);
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
    }
}
