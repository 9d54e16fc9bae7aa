//! Control-plane metrics, named as istiod names them where an equivalent exists, so existing
//! dashboards and alerts keep working.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub error: String,
}

#[derive(Debug)]
pub struct Metrics {
    /// Connected discovery streams (`pilot_xds`).
    pub connected: Gauge,
    /// Responses sent, by resource type (`pilot_xds_pushes`).
    pub pushes: Family<TypeLabel, Counter>,
    /// Responses proxies rejected (`pilot_total_xds_rejects`).
    pub rejects: Family<TypeLabel, Counter>,
    /// Seconds from a configuration change to the push reaching the stream (`pilot_xds_push_time`).
    pub push_time: Histogram,
    /// Certificate signing requests received (`citadel_server_csr_count`).
    pub csr: Counter,
    /// Certificates issued (`citadel_server_success_cert_issuance_count`).
    pub issued: Counter,
    /// Signing requests refused, by reason.
    pub csr_errors: Family<ErrorLabel, Counter>,
    /// Configuration generation in force.
    pub config_generation: Gauge,
    /// Configuration updates rejected for input errors.
    pub config_rejects: Counter,
    /// Proxy configurations compiled (a proxy whose configuration a change cannot affect is
    /// not compiled again).
    pub compiles: Counter,
}

impl Metrics {
    pub fn new(reg: &mut Registry) -> Metrics {
        let m = Metrics {
            connected: Gauge::default(),
            pushes: Family::default(),
            rejects: Family::default(),
            push_time: Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            csr: Counter::default(),
            issued: Counter::default(),
            csr_errors: Family::default(),
            config_generation: Gauge::default(),
            config_rejects: Counter::default(),
            compiles: Counter::default(),
        };
        reg.register(
            "pilot_xds",
            "Connected discovery streams",
            m.connected.clone(),
        );
        reg.register(
            "pilot_xds_pushes",
            "Discovery responses sent",
            m.pushes.clone(),
        );
        reg.register(
            "pilot_total_xds_rejects",
            "Discovery responses proxies rejected",
            m.rejects.clone(),
        );
        reg.register(
            "pilot_xds_push_time",
            "Seconds to compute and send a push",
            m.push_time.clone(),
        );
        reg.register(
            "citadel_server_csr_count",
            "Certificate signing requests received",
            m.csr.clone(),
        );
        reg.register(
            "citadel_server_success_cert_issuance_count",
            "Certificates issued",
            m.issued.clone(),
        );
        reg.register(
            "citadel_server_csr_errors",
            "Signing requests refused",
            m.csr_errors.clone(),
        );
        reg.register(
            "strait_config_generation",
            "Configuration generation in force",
            m.config_generation.clone(),
        );
        reg.register(
            "strait_config_rejects",
            "Configuration updates rejected",
            m.config_rejects.clone(),
        );
        reg.register(
            "strait_proxy_compiles",
            "Proxy configurations compiled",
            m.compiles.clone(),
        );
        m
    }
}
