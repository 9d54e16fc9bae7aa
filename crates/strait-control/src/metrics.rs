//! Control-plane metrics, exposed as istiod exposes them so that Istio's dashboards and
//! alerts (the "Istio Control Plane" Grafana dashboard, say) read them unchanged: the same
//! names, types, labels and histogram buckets (`pilot/pkg/xds/monitoring.go`,
//! `pkg/xds/monitoring.go`, `security/pkg/server/ca/monitoring.go`). istiod's exporter writes
//! counters without the `_total` suffix, so these do too ([`IstioCounter`]). What istiod has no
//! equivalent for is named `strait_*`.
//!
//! strait's configuration travels as its own resource kinds, not Envoy's; each is counted
//! under the xDS type that carries the same content in Envoy ([`xds_type`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use strait_config::Kind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: String,
}

/// A counter written as istiod writes one: `# TYPE x counter` and `x{...} n`, no `_total`.
/// Clones share the count (the registry holds one, the code that counts another).
#[derive(Clone, Debug, Default)]
pub struct IstioCounter(Arc<AtomicU64>);

impl IstioCounter {
    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl TypedMetric for IstioCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for IstioCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // The gauge encoding writes the bare name; the family's TYPE line says counter.
        encoder.encode_gauge(&self.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// Builds the histograms of a family with fixed buckets.
#[derive(Clone, Copy, Debug)]
pub struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// istiod's buckets, per histogram.
const PUSH_TIME: &[f64] = &[0.01, 0.1, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0];
const CONVERGENCE: &[f64] = &[0.1, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0];
const SEND_TIME: &[f64] = &[0.01, 0.1, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0];
const CONFIG_SIZE: &[f64] = &[
    1.0,
    10_000.0,
    1_000_000.0,
    4_000_000.0,
    10_000_000.0,
    40_000_000.0,
];

/// The Envoy xDS type (as istiod's `type` label writes it) that carries what a strait
/// resource kind carries: routes are RDS, clusters CDS (with their endpoints, EDS),
/// listeners and what configures them (inbound ports, policy, mesh settings) LDS, TLS
/// material SDS.
pub fn xds_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Service => "rds",
        Kind::Cluster => "cds",
        Kind::Listener | Kind::Inbound | Kind::Authz | Kind::Mesh => "lds",
        Kind::Secret => "sds",
    }
}

#[derive(Debug)]
pub struct Metrics {
    /// Connected discovery streams, by proxy version (`pilot_xds`).
    pub connected: Family<VersionLabel, Gauge>,
    /// Responses sent, by xDS type (`pilot_xds_pushes`); send failures are `<type>_senderr`.
    pub pushes: Family<TypeLabel, IstioCounter>,
    /// Responses proxies rejected, by xDS type (`pilot_total_xds_rejects`).
    pub rejects: Family<TypeLabel, IstioCounter>,
    /// Seconds to build and send a push, by xDS type (`pilot_xds_push_time`).
    pub push_time: Family<TypeLabel, Histogram, Buckets>,
    /// Seconds to send a built push (`pilot_xds_send_time`).
    pub send_time: Histogram,
    /// Seconds from a configuration change to a proxy holding it (`pilot_proxy_convergence_time`).
    pub convergence: Histogram,
    /// Bytes of each configuration pushed, by xDS type (`pilot_xds_config_size_bytes`).
    pub config_size: Family<TypeLabel, Histogram, Buckets>,
    /// Services known (`pilot_services`).
    pub services: Gauge,
    /// VirtualServices known (`pilot_virt_services`).
    pub virtual_services: Gauge,
    /// Configuration updates received, by type (`pilot_inbound_updates`, `type="config"`).
    pub inbound_updates: Family<TypeLabel, IstioCounter>,
    /// Pushes triggered, by reason (`pilot_push_triggers`).
    pub push_triggers: Family<TypeLabel, IstioCounter>,
    /// Certificate signing requests received (`citadel_server_csr_count`).
    pub csr: IstioCounter,
    /// Certificates issued (`citadel_server_success_cert_issuance_count`).
    pub issued: IstioCounter,
    /// Callers that could not be authenticated (`citadel_server_authentication_failure_count`).
    pub authn_failures: IstioCounter,
    /// Requests whose CSR could not be read (`citadel_server_csr_parsing_err_count`).
    pub csr_parse_errors: IstioCounter,
    /// Requests for which no identity could be made (`citadel_server_id_extraction_err_count`).
    pub id_errors: IstioCounter,
    /// Signing failures, by error (`citadel_server_csr_sign_err_count`).
    pub sign_errors: Family<ErrorLabel, IstioCounter>,
    /// Configuration generation in force.
    pub config_generation: Gauge,
    /// Configuration updates rejected for input errors.
    pub config_rejects: IstioCounter,
    /// Proxy configurations compiled (a proxy whose configuration a change cannot affect is
    /// not compiled again).
    pub compiles: IstioCounter,
}

impl Metrics {
    pub fn new(reg: &mut Registry) -> Metrics {
        let m = Metrics {
            connected: Family::default(),
            pushes: Family::default(),
            rejects: Family::default(),
            push_time: Family::new_with_constructor(Buckets(PUSH_TIME)),
            send_time: Histogram::new(SEND_TIME.iter().copied()),
            convergence: Histogram::new(CONVERGENCE.iter().copied()),
            config_size: Family::new_with_constructor(Buckets(CONFIG_SIZE)),
            services: Gauge::default(),
            virtual_services: Gauge::default(),
            inbound_updates: Family::default(),
            push_triggers: Family::default(),
            csr: IstioCounter::default(),
            issued: IstioCounter::default(),
            authn_failures: IstioCounter::default(),
            csr_parse_errors: IstioCounter::default(),
            id_errors: IstioCounter::default(),
            sign_errors: Family::default(),
            config_generation: Gauge::default(),
            config_rejects: IstioCounter::default(),
            compiles: IstioCounter::default(),
        };
        m.register(reg)
    }

    fn register(self, reg: &mut Registry) -> Metrics {
        // Registering clones the handle; `self` keeps the other.
        macro_rules! r {
            ($name:literal, $help:literal, $metric:expr) => {
                reg.register($name, $help, $metric)
            };
        }
        r!(
            "pilot_xds",
            "Number of endpoints connected to this pilot using XDS.",
            self.connected.clone()
        );
        r!(
            "pilot_xds_pushes",
            "Pilot build and send errors for lds, rds, cds and eds.",
            self.pushes.clone()
        );
        r!(
            "pilot_total_xds_rejects",
            "Total number of XDS responses from pilot rejected by proxy.",
            self.rejects.clone()
        );
        r!(
            "pilot_xds_push_time",
            "Total time in seconds Pilot takes to push lds, rds, cds and eds.",
            self.push_time.clone()
        );
        r!(
            "pilot_xds_send_time",
            "Total time in seconds Pilot takes to send generated configuration.",
            self.send_time.clone()
        );
        r!(
            "pilot_proxy_convergence_time",
            "Delay in seconds between config change and a proxy receiving all required configuration.",
            self.convergence.clone()
        );
        r!(
            "pilot_xds_config_size_bytes",
            "Distribution of configuration sizes pushed to clients",
            self.config_size.clone()
        );
        r!(
            "pilot_services",
            "Total services known to pilot.",
            self.services.clone()
        );
        r!(
            "pilot_virt_services",
            "Total virtual services known to pilot.",
            self.virtual_services.clone()
        );
        r!(
            "pilot_inbound_updates",
            "Total number of updates received by pilot.",
            self.inbound_updates.clone()
        );
        r!(
            "pilot_push_triggers",
            "Total number of times a push was triggered, labeled by reason for the push.",
            self.push_triggers.clone()
        );
        r!(
            "citadel_server_csr_count",
            "The number of CSRs received by Citadel server.",
            self.csr.clone()
        );
        r!(
            "citadel_server_success_cert_issuance_count",
            "The number of certificates issuances that have succeeded.",
            self.issued.clone()
        );
        r!(
            "citadel_server_authentication_failure_count",
            "The number of authentication failures.",
            self.authn_failures.clone()
        );
        r!(
            "citadel_server_csr_parsing_err_count",
            "The number of errors occurred when parsing the CSR.",
            self.csr_parse_errors.clone()
        );
        r!(
            "citadel_server_id_extraction_err_count",
            "The number of errors occurred when extracting the ID from CSR.",
            self.id_errors.clone()
        );
        r!(
            "citadel_server_csr_sign_err_count",
            "The number of errors occurred when signing the CSR.",
            self.sign_errors.clone()
        );
        r!(
            "strait_config_generation",
            "Configuration generation in force",
            self.config_generation.clone()
        );
        r!(
            "strait_config_rejects",
            "Configuration updates rejected",
            self.config_rejects.clone()
        );
        r!(
            "strait_proxy_compiles",
            "Proxy configurations compiled",
            self.compiles.clone()
        );
        self
    }

    /// Counts one pushed resource of `kind` and its encoded size.
    pub fn pushed(&self, kind: Kind, bytes: usize) {
        let label = TypeLabel {
            r#type: xds_type(kind).into(),
        };
        self.pushes.get_or_create(&label).inc();
        if kind == Kind::Cluster {
            // Envoy receives a cluster's endpoints by EDS.
            self.pushes
                .get_or_create(&TypeLabel {
                    r#type: "eds".into(),
                })
                .inc();
        }
        self.config_size.get_or_create(&label).observe(bytes as f64);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// istiod's control-plane metrics as its sources define them (`pilot/pkg/xds/monitoring.go`,
    /// `pkg/xds/monitoring.go`, `security/pkg/server/ca/monitoring.go`): name, type, label
    /// names, histogram buckets.
    const ISTIOD: &[(&str, &str, &[&str], &[f64])] = &[
        ("pilot_xds", "gauge", &["version"], &[]),
        ("pilot_xds_pushes", "counter", &["type"], &[]),
        ("pilot_total_xds_rejects", "counter", &["type"], &[]),
        ("pilot_xds_push_time", "histogram", &["type"], PUSH_TIME),
        ("pilot_xds_send_time", "histogram", &[], SEND_TIME),
        (
            "pilot_proxy_convergence_time",
            "histogram",
            &[],
            CONVERGENCE,
        ),
        (
            "pilot_xds_config_size_bytes",
            "histogram",
            &["type"],
            CONFIG_SIZE,
        ),
        ("pilot_services", "gauge", &[], &[]),
        ("pilot_virt_services", "gauge", &[], &[]),
        ("pilot_inbound_updates", "counter", &["type"], &[]),
        ("pilot_push_triggers", "counter", &["type"], &[]),
        ("citadel_server_csr_count", "counter", &[], &[]),
        (
            "citadel_server_success_cert_issuance_count",
            "counter",
            &[],
            &[],
        ),
        (
            "citadel_server_authentication_failure_count",
            "counter",
            &[],
            &[],
        ),
        ("citadel_server_csr_parsing_err_count", "counter", &[], &[]),
        (
            "citadel_server_id_extraction_err_count",
            "counter",
            &[],
            &[],
        ),
        (
            "citadel_server_csr_sign_err_count",
            "counter",
            &["error"],
            &[],
        ),
    ];

    /// What an exposition says of one family.
    #[derive(Debug, Default)]
    struct Seen {
        kind: String,
        labels: BTreeSet<String>,
        buckets: Vec<f64>,
        samples: Vec<String>,
    }

    /// Reads the Prometheus text exposition: `# TYPE` lines and samples, by family.
    fn parse(text: &str) -> BTreeMap<String, Seen> {
        let mut out: BTreeMap<String, Seen> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                out.entry(name.to_string()).or_default().kind = kind.to_string();
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, _value) = line.rsplit_once(' ').expect("sample value");
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| out.contains_key(*f)))
                .unwrap_or(name);
            let seen = out.entry(family.to_string()).or_default();
            seen.samples.push(name.to_string());
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').expect("label pair");
                if k == "le" {
                    let v = v.trim_matches('"');
                    if v != "+Inf" {
                        let b: f64 = v.parse().expect("bucket bound");
                        if !seen.buckets.contains(&b) {
                            seen.buckets.push(b);
                        }
                    }
                } else {
                    seen.labels.insert(k.to_string());
                }
            }
        }
        out
    }

    #[test]
    fn the_exposition_matches_istiod_name_for_name() {
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        // Give every family a sample, as a running control plane would.
        m.connected
            .get_or_create(&VersionLabel {
                version: "1.0.0".into(),
            })
            .set(2);
        m.pushed(Kind::Cluster, 300);
        m.pushed(Kind::Service, 200);
        let t = |ty: &str| TypeLabel { r#type: ty.into() };
        m.rejects.get_or_create(&t("lds")).inc();
        m.push_time.get_or_create(&t("cds")).observe(0.02);
        m.send_time.observe(0.001);
        m.convergence.observe(0.2);
        m.services.set(3);
        m.virtual_services.set(1);
        m.inbound_updates.get_or_create(&t("config")).inc();
        m.push_triggers.get_or_create(&t("config")).inc();
        for c in [
            &m.csr,
            &m.issued,
            &m.authn_failures,
            &m.csr_parse_errors,
            &m.id_errors,
        ] {
            c.inc();
        }
        m.sign_errors
            .get_or_create(&ErrorLabel {
                error: "ca_error".into(),
            })
            .inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).expect("encode");
        let seen = parse(&text);
        for (name, kind, labels, buckets) in ISTIOD {
            let s = seen
                .get(*name)
                .unwrap_or_else(|| panic!("{name} is not exposed:\n{text}"));
            assert_eq!(s.kind, *kind, "type of {name}");
            let want: BTreeSet<String> = labels.iter().map(|l| l.to_string()).collect();
            assert_eq!(s.labels, want, "labels of {name}");
            assert_eq!(s.buckets, buckets.to_vec(), "buckets of {name}");
            if *kind == "counter" {
                // istiod's exporter drops the `_total` suffix: dashboards query the bare name.
                assert!(
                    s.samples.iter().all(|n| n == name),
                    "{name}: {:?}",
                    s.samples
                );
            }
        }
        assert!(text.contains("pilot_xds_pushes{type=\"eds\"} 1"), "{text}");
        assert!(text.contains("pilot_xds_pushes{type=\"rds\"} 1"), "{text}");
    }
}
