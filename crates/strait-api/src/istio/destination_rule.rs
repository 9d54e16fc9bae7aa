//! `networking.istio.io` DestinationRule: what happens to traffic after routing (load
//! balancing, connection pools, outlier detection, client TLS, subsets).

use std::collections::BTreeMap;

use super::common::{Duration, MatchLabels, PortSelector, istio_enum, spec};

spec! {
    pub struct DestinationRuleSpec {
        pub host: String,
        pub traffic_policy: Option<Box<TrafficPolicy>>,
        pub subsets: Vec<Subset>,
        pub export_to: Vec<String>,
        pub workload_selector: Option<MatchLabels>,
    }
}

spec! {
    pub struct TrafficPolicy {
        pub load_balancer: Option<LoadBalancerSettings>,
        pub connection_pool: Option<ConnectionPoolSettings>,
        pub outlier_detection: Option<OutlierDetection>,
        pub tls: Option<ClientTlsSettings>,
        pub port_level_settings: Vec<PortTrafficPolicy>,
        pub tunnel: Option<TunnelSettings>,
        pub proxy_protocol: Option<ProxyProtocol>,
        pub retry_budget: Option<RetryBudget>,
    }
}

istio_enum! {
    pub enum SimpleLb {
        Unspecified,
        /// Deprecated: LEAST_REQUEST.
        LeastConn,
        Random,
        Passthrough,
        RoundRobin,
        LeastRequest,
    }
}

spec! {
    pub struct LoadBalancerSettings {
        pub simple: Option<SimpleLb>,
        pub consistent_hash: Option<ConsistentHashLb>,
        pub backend_utilization: Option<BackendUtilizationLb>,
        pub locality_lb_setting: Option<LocalityLoadBalancerSetting>,
        pub zone_aware_lb_setting: Option<ZoneAwareLoadBalancerSetting>,
        /// Deprecated: use `warmup`.
        pub warmup_duration_secs: Option<Duration>,
        pub warmup: Option<WarmupConfiguration>,
    }
}

spec! {
    pub struct BackendUtilizationLb {
        pub weight_stabilization_period: Option<Duration>,
        pub weight_expiration_period: Option<Duration>,
        pub weight_update_period: Option<Duration>,
        pub error_utilization_penalty_percent: u32,
        pub metric_names_for_computing_utilization: Vec<String>,
    }
}

spec! {
    pub struct ConsistentHashLb {
        pub http_header_name: Option<String>,
        pub http_cookie: Option<HttpCookie>,
        pub use_source_ip: Option<bool>,
        pub http_query_parameter_name: Option<String>,
        pub ring_hash: Option<RingHash>,
        pub maglev: Option<MagLev>,
        /// Deprecated: use `ringHash.minimumRingSize`.
        pub minimum_ring_size: Option<u64>,
    }
}

spec! {
    pub struct HttpCookie {
        pub name: String,
        pub path: String,
        pub ttl: Option<Duration>,
        pub attributes: Vec<CookieAttribute>,
    }
}

spec! {
    pub struct CookieAttribute {
        pub name: String,
        pub value: String,
    }
}

spec! {
    pub struct RingHash {
        pub minimum_ring_size: Option<u64>,
    }
}

spec! {
    pub struct MagLev {
        pub table_size: Option<u64>,
    }
}

spec! {
    pub struct LocalityLoadBalancerSetting {
        pub distribute: Vec<LocalityDistribute>,
        pub failover: Vec<LocalityFailover>,
        pub failover_priority: Vec<String>,
        pub enabled: Option<bool>,
    }
}

spec! {
    pub struct LocalityDistribute {
        pub from: String,
        pub to: BTreeMap<String, u32>,
    }
}

spec! {
    pub struct LocalityFailover {
        pub from: String,
        pub to: String,
    }
}

spec! {
    pub struct ZoneAwareLoadBalancerSetting {
        pub enabled: Option<bool>,
        pub failover: Vec<LocalityFailover>,
        pub failover_priority: Vec<String>,
        pub min_cluster_size: Option<u64>,
    }
}

spec! {
    pub struct WarmupConfiguration {
        pub duration: Option<Duration>,
        pub minimum_percent: Option<f64>,
        pub aggression: Option<f64>,
    }
}

spec! {
    pub struct ConnectionPoolSettings {
        pub tcp: Option<TcpSettings>,
        pub http: Option<HttpSettings>,
    }
}

spec! {
    pub struct TcpSettings {
        pub max_connections: Option<i32>,
        pub connect_timeout: Option<Duration>,
        pub tcp_keepalive: Option<TcpKeepalive>,
        pub max_connection_duration: Option<Duration>,
        pub idle_timeout: Option<Duration>,
    }
}

spec! {
    pub struct TcpKeepalive {
        pub probes: Option<u32>,
        pub time: Option<Duration>,
        pub interval: Option<Duration>,
    }
}

istio_enum! {
    pub enum H2UpgradePolicy {
        Default,
        DoNotUpgrade,
        Upgrade,
    }
}

spec! {
    pub struct HttpSettings {
        #[serde(rename = "http1MaxPendingRequests")]
        pub http1_max_pending_requests: Option<i32>,
        #[serde(rename = "http2MaxRequests")]
        pub http2_max_requests: Option<i32>,
        pub max_requests_per_connection: Option<i32>,
        pub max_retries: Option<i32>,
        pub idle_timeout: Option<Duration>,
        #[serde(rename = "h2UpgradePolicy")]
        pub h2_upgrade_policy: Option<H2UpgradePolicy>,
        pub use_client_protocol: bool,
        pub max_concurrent_streams: Option<i32>,
        #[serde(rename = "http2KeepAlive")]
        pub http2_keep_alive: Option<ConnectionKeepalive>,
    }
}

spec! {
    pub struct ConnectionKeepalive {
        pub interval: Option<Duration>,
        pub timeout: Option<Duration>,
    }
}

spec! {
    pub struct OutlierDetection {
        /// Deprecated: use `consecutive5xxErrors`.
        pub consecutive_errors: Option<i32>,
        pub split_external_local_origin_errors: bool,
        pub consecutive_local_origin_failures: Option<u32>,
        pub consecutive_gateway_errors: Option<u32>,
        #[serde(rename = "consecutive5xxErrors")]
        pub consecutive_5xx_errors: Option<u32>,
        pub interval: Option<Duration>,
        pub base_ejection_time: Option<Duration>,
        pub max_ejection_percent: Option<i32>,
        pub min_health_percent: Option<i32>,
        pub outlier_detection_http_error_codes: Vec<u32>,
    }
}

istio_enum! {
    pub enum ClientTlsMode {
        Disable,
        Simple,
        Mutual,
        IstioMutual,
    }
}

spec! {
    pub struct ClientTlsSettings {
        pub mode: Option<ClientTlsMode>,
        pub client_certificate: String,
        pub private_key: String,
        pub ca_certificates: String,
        pub credential_name: String,
        pub subject_alt_names: Vec<String>,
        pub sni: String,
        pub insecure_skip_verify: Option<bool>,
        pub ca_crl: String,
    }
}

spec! {
    pub struct PortTrafficPolicy {
        pub port: Option<PortSelector>,
        pub load_balancer: Option<LoadBalancerSettings>,
        pub connection_pool: Option<ConnectionPoolSettings>,
        pub outlier_detection: Option<OutlierDetection>,
        pub tls: Option<ClientTlsSettings>,
    }
}

spec! {
    pub struct TunnelSettings {
        pub protocol: String,
        pub target_host: String,
        pub target_port: u32,
    }
}

istio_enum! {
    pub enum ProxyProtocolVersion {
        V1,
        V2,
    }
}

spec! {
    pub struct ProxyProtocol {
        pub version: Option<ProxyProtocolVersion>,
    }
}

spec! {
    pub struct RetryBudget {
        pub percent: Option<f64>,
        pub min_retry_concurrency: Option<u32>,
        pub budget_interval: Option<Duration>,
    }
}

spec! {
    pub struct Subset {
        pub name: String,
        pub labels: BTreeMap<String, String>,
        pub traffic_policy: Option<Box<TrafficPolicy>>,
    }
}

impl DestinationRuleSpec {
    /// The rule's traffic policies with their field paths: its own, then each subset's.
    pub fn traffic_policies(&self) -> Vec<(String, &TrafficPolicy)> {
        let mut out = Vec::new();
        if let Some(tp) = &self.traffic_policy {
            out.push(("spec.trafficPolicy".to_string(), &**tp));
        }
        for (i, s) in self.subsets.iter().enumerate() {
            if let Some(tp) = &s.traffic_policy {
                out.push((format!("spec.subsets[{i}].trafficPolicy"), &**tp));
            }
        }
        out
    }
}

impl TrafficPolicy {
    /// The client TLS settings that apply to `port`. As in istiod, a port-level entry for the
    /// port replaces the policy's top-level settings entirely: an entry without `tls` means no
    /// explicit TLS (auto mTLS), not the top-level `tls`.
    pub fn tls_for_port(&self, port: u32) -> Option<&ClientTlsSettings> {
        match self
            .port_level_settings
            .iter()
            .find(|pl| pl.port.as_ref().map(|s| s.number) == Some(port))
        {
            Some(pl) => pl.tls.as_ref(),
            None => self.tls.as_ref(),
        }
    }
}
