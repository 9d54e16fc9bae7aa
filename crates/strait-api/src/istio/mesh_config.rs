//! MeshConfig (the `mesh` key of the `istio` ConfigMap, `meshConfig` of an IstioOperator, or a
//! `--mesh-config` file) and MeshNetworks (`meshNetworks`). Top-level fields are typed so typos
//! are caught; deep provider bodies strait does not interpret are accepted as they are.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sLabelSelector;

use super::common::{Duration, Opaque, istio_enum, spec};
use super::destination_rule::{
    ClientTlsSettings, ConnectionPoolSettings, LocalityLoadBalancerSetting, OutlierDetection,
    TcpKeepalive, ZoneAwareLoadBalancerSetting,
};
use super::virtual_service::HttpRetry;

spec! {
    pub struct MeshConfig {
        pub proxy_listen_port: Option<i32>,
        pub proxy_inbound_listen_port: Option<i32>,
        pub proxy_http_port: Option<i32>,
        pub connect_timeout: Option<Duration>,
        pub hbone_idle_timeout: Option<Duration>,
        pub protocol_detection_timeout: Option<Duration>,
        pub tcp_keepalive: Option<TcpKeepalive>,
        pub ingress_class: String,
        pub ingress_service: String,
        pub ingress_controller_mode: Option<String>,
        pub ingress_selector: String,
        pub enable_tracing: Option<bool>,
        /// Path of the proxies' access log (`/dev/stdout`); empty turns access logs off.
        pub access_log_file: Option<String>,
        pub access_log_format: String,
        pub access_log_encoding: Option<String>,
        pub enable_envoy_access_log_service: bool,
        pub disable_envoy_listener_log: bool,
        pub default_config: Option<ProxyConfig>,
        pub outbound_traffic_policy: Option<MeshOutboundTrafficPolicy>,
        pub inbound_traffic_policy: Option<Opaque>,
        pub config_sources: Vec<Opaque>,
        /// Default true: clients pick mTLS automatically for sidecar-injected servers.
        pub enable_auto_mtls: Option<bool>,
        /// Default `cluster.local`.
        pub trust_domain: Option<String>,
        pub trust_domain_aliases: Vec<String>,
        pub ca_certificates: Vec<CertificateData>,
        pub default_service_export_to: Vec<String>,
        pub default_virtual_service_export_to: Vec<String>,
        pub default_destination_rule_export_to: Vec<String>,
        /// Default `istio-system`: policies here apply mesh-wide.
        pub root_namespace: Option<String>,
        pub locality_lb_setting: Option<LocalityLoadBalancerSetting>,
        pub zone_aware_lb_setting: Option<ZoneAwareLoadBalancerSetting>,
        pub dns_refresh_rate: Option<Duration>,
        #[serde(rename = "h2UpgradePolicy")]
        pub h2_upgrade_policy: Option<String>,
        pub inbound_cluster_stat_name: String,
        pub outbound_cluster_stat_name: String,
        pub certificates: Vec<Opaque>,
        pub service_settings: Vec<ServiceSettings>,
        pub service_scope_configs: Vec<Opaque>,
        pub enable_prometheus_merge: Option<bool>,
        pub verify_certificate_at_client: Option<bool>,
        pub ca: Option<Opaque>,
        pub extension_providers: Vec<ExtensionProvider>,
        pub default_providers: Option<DefaultProviders>,
        pub discovery_selectors: Vec<K8sLabelSelector>,
        /// How proxies normalize request paths before policy and routing (default BASE).
        pub path_normalization: Option<PathNormalization>,
        pub default_http_retry_policy: Option<HttpRetry>,
        #[serde(rename = "meshMTLS")]
        pub mesh_mtls: Option<Opaque>,
        pub tls_defaults: Option<Opaque>,
        pub default_traffic_policy: Option<DefaultTrafficPolicy>,
        pub service_entry_visibility: Option<Opaque>,
    }
}

impl MeshConfig {
    pub fn trust_domain(&self) -> &str {
        self.trust_domain
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or("cluster.local")
    }

    pub fn root_namespace(&self) -> &str {
        self.root_namespace
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or("istio-system")
    }

    pub fn auto_mtls(&self) -> bool {
        self.enable_auto_mtls.unwrap_or(true)
    }

    /// Overlays `other` on `self` the way istiod merges mesh config layers: set fields replace,
    /// extension providers replace by name, trust domain aliases are unioned.
    pub fn merge(&mut self, other: &MeshConfig) {
        macro_rules! take_opt {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f.clone(); } )* };
        }
        take_opt!(
            trust_domain,
            root_namespace,
            access_log_file,
            enable_auto_mtls,
            outbound_traffic_policy,
            default_providers,
            locality_lb_setting,
            enable_prometheus_merge,
            enable_tracing,
            path_normalization
        );
        if let Some(dc) = &other.default_config {
            match &mut self.default_config {
                Some(mine) => mine.merge(dc),
                None => self.default_config = Some(dc.clone()),
            }
        }
        for p in &other.extension_providers {
            match self
                .extension_providers
                .iter_mut()
                .find(|e| e.name.eq_ignore_ascii_case(&p.name))
            {
                Some(e) => *e = p.clone(),
                None => self.extension_providers.push(p.clone()),
            }
        }
        for a in &other.trust_domain_aliases {
            if !self.trust_domain_aliases.contains(a) {
                self.trust_domain_aliases.push(a.clone());
            }
        }
        if !other.service_settings.is_empty() {
            self.service_settings = other.service_settings.clone();
        }
        if !other.ca_certificates.is_empty() {
            self.ca_certificates = other.ca_certificates.clone();
        }
    }
}

istio_enum! {
    pub enum MeshOutboundMode {
        RegistryOnly,
        AllowAny,
        AllowAnyDynamicDns,
    }
}

spec! {
    pub struct MeshOutboundTrafficPolicy {
        pub mode: Option<MeshOutboundMode>,
        pub tls: Option<ClientTlsSettings>,
    }
}

spec! {
    pub struct CertificateData {
        pub pem: Option<String>,
        pub spiffe_bundle_url: Option<String>,
        pub cert_signers: Vec<String>,
        pub trust_domains: Vec<String>,
    }
}

spec! {
    pub struct ServiceSettings {
        pub settings: Option<ServiceSettingsFlags>,
        pub hosts: Vec<String>,
    }
}

spec! {
    pub struct ServiceSettingsFlags {
        pub cluster_local: bool,
    }
}

spec! {
    /// A named telemetry/authorization backend. Exactly one provider kind is set.
    pub struct ExtensionProvider {
        pub name: String,
        pub envoy_ext_authz_http: Option<Opaque>,
        pub envoy_ext_authz_grpc: Option<Opaque>,
        pub zipkin: Option<Opaque>,
        pub lightstep: Option<Opaque>,
        pub datadog: Option<Opaque>,
        pub stackdriver: Option<Opaque>,
        pub opencensus: Option<Opaque>,
        pub skywalking: Option<Opaque>,
        pub opentelemetry: Option<OpenTelemetryProvider>,
        pub prometheus: Option<Opaque>,
        pub envoy_file_access_log: Option<Opaque>,
        pub envoy_http_als: Option<Opaque>,
        pub envoy_tcp_als: Option<Opaque>,
        pub envoy_otel_als: Option<Opaque>,
        pub sds: Option<Opaque>,
    }
}

/// What an extension provider can be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderUse {
    AccessLog,
    Metrics,
    Tracing,
    Authorization,
    Other,
}

impl ExtensionProvider {
    pub fn usage(&self) -> ProviderUse {
        if self.envoy_file_access_log.is_some()
            || self.envoy_http_als.is_some()
            || self.envoy_tcp_als.is_some()
            || self.envoy_otel_als.is_some()
        {
            ProviderUse::AccessLog
        } else if self.prometheus.is_some() {
            ProviderUse::Metrics
        } else if self.zipkin.is_some()
            || self.lightstep.is_some()
            || self.datadog.is_some()
            || self.opencensus.is_some()
            || self.skywalking.is_some()
            || self.opentelemetry.is_some()
        {
            ProviderUse::Tracing
        } else if self.envoy_ext_authz_http.is_some() || self.envoy_ext_authz_grpc.is_some() {
            ProviderUse::Authorization
        } else {
            ProviderUse::Other
        }
    }
}

spec! {
    /// An OpenTelemetry collector that receives spans over OTLP (gRPC, or HTTP with `http`).
    pub struct OpenTelemetryProvider {
        /// The collector's hostname (`otel-collector.observability.svc.cluster.local`, or
        /// `namespace/host`).
        pub service: String,
        pub port: u32,
        pub max_tag_length: Option<u32>,
        pub http: Option<OpenTelemetryHttp>,
        pub grpc: Option<Opaque>,
        pub resource_detectors: Option<Opaque>,
        pub dynatrace_sampler: Option<Opaque>,
    }
}

spec! {
    /// OTLP/HTTP: where to POST spans and with which headers.
    pub struct OpenTelemetryHttp {
        /// Default `/v1/traces`.
        pub path: String,
        /// Each export's deadline; default 5 s.
        pub timeout: Option<Duration>,
        pub headers: Vec<OpenTelemetryHeader>,
    }
}

spec! {
    pub struct OpenTelemetryHeader {
        pub name: String,
        pub value: Option<String>,
        pub env_name: Option<String>,
    }
}

spec! {
    /// `defaultConfig.tracing`: the legacy tracer settings; strait reads `sampling`.
    pub struct ProxyTracing {
        /// Percentage of new traces sampled (0-100), default 1.
        pub sampling: Option<f64>,
        pub custom_tags: Option<Opaque>,
        pub max_path_tag_length: Option<u32>,
        pub zipkin: Option<Opaque>,
        pub lightstep: Option<Opaque>,
        pub datadog: Option<Opaque>,
        pub stackdriver: Option<Opaque>,
        pub open_census_agent: Option<Opaque>,
        pub tls_settings: Option<Opaque>,
    }
}

spec! {
    pub struct DefaultProviders {
        pub tracing: Vec<String>,
        pub metrics: Vec<String>,
        pub access_logging: Vec<String>,
    }
}

spec! {
    pub struct DefaultTrafficPolicy {
        pub connection_pool: Option<ConnectionPoolSettings>,
        pub outlier_detection: Option<OutlierDetection>,
    }
}

spec! {
    /// `meshConfig.defaultConfig` and the `proxy.istio.io/config` annotation.
    pub struct ProxyConfig {
        pub config_path: String,
        pub binary_path: String,
        pub service_cluster: String,
        pub tracing_service_name: Option<String>,
        pub drain_duration: Option<Duration>,
        pub discovery_address: String,
        pub discovery_refresh_delay: Option<Duration>,
        pub zipkin_address: String,
        pub statsd_udp_address: String,
        pub envoy_metrics_service_address: String,
        pub proxy_admin_port: Option<i32>,
        pub availability_zone: String,
        pub control_plane_auth_policy: Option<String>,
        pub custom_config_file: String,
        pub stat_name_length: Option<i32>,
        pub concurrency: Option<i32>,
        pub proxy_bootstrap_template_path: String,
        pub interception_mode: Option<String>,
        pub tracing: Option<ProxyTracing>,
        pub sds: Option<Opaque>,
        pub envoy_access_log_service: Option<Opaque>,
        pub envoy_metrics_service: Option<Opaque>,
        pub proxy_metadata: BTreeMap<String, String>,
        pub runtime_values: BTreeMap<String, String>,
        pub status_port: Option<i32>,
        pub extra_stat_tags: Vec<String>,
        pub gateway_topology: Option<Opaque>,
        pub termination_drain_duration: Option<Duration>,
        pub mesh_id: String,
        pub readiness_probe: Option<Opaque>,
        pub proxy_stats_matcher: Option<Opaque>,
        pub hold_application_until_proxy_starts: Option<bool>,
        pub ca_certificates_pem: Vec<String>,
        pub image: Option<Opaque>,
        pub private_key_provider: Option<Opaque>,
        pub proxy_headers: Option<Opaque>,
        pub file_flush_interval: Option<Duration>,
        pub file_flush_min_size_kb: Option<u32>,
        pub stats_compression: Option<bool>,
        pub connection_settings: Option<Opaque>,
    }
}

impl ProxyConfig {
    fn merge(&mut self, other: &ProxyConfig) {
        if !other.mesh_id.is_empty() {
            self.mesh_id = other.mesh_id.clone();
        }
        if !other.discovery_address.is_empty() {
            self.discovery_address = other.discovery_address.clone();
        }
        for (k, v) in &other.proxy_metadata {
            self.proxy_metadata.insert(k.clone(), v.clone());
        }
        if other.tracing.is_some() {
            self.tracing = other.tracing.clone();
        }
        if other.hold_application_until_proxy_starts.is_some() {
            self.hold_application_until_proxy_starts = other.hold_application_until_proxy_starts;
        }
    }
}

spec! {
    pub struct MeshNetworks {
        pub networks: BTreeMap<String, Network>,
    }
}

spec! {
    pub struct Network {
        pub endpoints: Vec<NetworkEndpoints>,
        pub gateways: Vec<NetworkGateway>,
    }
}

spec! {
    pub struct NetworkEndpoints {
        pub from_cidr: Option<String>,
        pub from_registry: Option<String>,
    }
}

spec! {
    pub struct NetworkGateway {
        pub registry_service_name: Option<String>,
        pub address: Option<String>,
        pub port: u32,
        pub locality: String,
    }
}

spec! {
    pub struct PathNormalization {
        pub normalization: Option<PathNormalizationMode>,
    }
}

istio_enum! {
    pub enum PathNormalizationMode {
        /// BASE.
        Default,
        /// No normalization at all.
        #[serde(rename = "NONE")]
        Off,
        /// RFC 3986: dot segments resolved, unreserved escapes decoded.
        Base,
        /// BASE, and `//` merged into `/`.
        MergeSlashes,
        /// MERGE_SLASHES, after decoding `%2F` and `%5C` into `/` and `\`.
        DecodeAndMergeSlashes,
    }
}
