//! `telemetry.istio.io` Telemetry: metrics, access logs and tracing per mesh, namespace or
//! workload.

use std::collections::BTreeMap;

use super::common::{Duration, MatchLabels, PolicyTargetReference, istio_enum, spec};

spec! {
    pub struct TelemetrySpec {
        pub selector: Option<MatchLabels>,
        pub target_ref: Option<PolicyTargetReference>,
        pub target_refs: Vec<PolicyTargetReference>,
        pub tracing: Vec<Tracing>,
        pub metrics: Vec<Metrics>,
        pub access_logging: Vec<AccessLogging>,
    }
}

istio_enum! {
    pub enum WorkloadMode {
        ClientAndServer,
        Client,
        Server,
    }
}

spec! {
    pub struct ModeSelector {
        pub mode: Option<WorkloadMode>,
    }
}

spec! {
    pub struct ProviderRef {
        pub name: String,
    }
}

spec! {
    pub struct Tracing {
        #[serde(rename = "match")]
        pub matches: Option<ModeSelector>,
        pub providers: Vec<ProviderRef>,
        pub random_sampling_percentage: Option<f64>,
        pub disable_span_reporting: Option<bool>,
        pub custom_tags: BTreeMap<String, CustomTag>,
        pub use_request_id_for_trace_sampling: Option<bool>,
        pub enable_istio_tags: Option<bool>,
        pub disable_context_propagation: Option<bool>,
    }
}

spec! {
    /// A span tag: exactly one source is set.
    pub struct CustomTag {
        pub literal: Option<LiteralTag>,
        pub environment: Option<EnvironmentTag>,
        pub header: Option<HeaderTag>,
    }
}

spec! {
    pub struct LiteralTag {
        pub value: String,
    }
}

spec! {
    pub struct EnvironmentTag {
        pub name: String,
        pub default_value: String,
    }
}

spec! {
    pub struct HeaderTag {
        pub name: String,
        pub default_value: String,
    }
}

spec! {
    pub struct Metrics {
        pub providers: Vec<ProviderRef>,
        pub overrides: Vec<MetricsOverrides>,
        pub reporting_interval: Option<Duration>,
    }
}

istio_enum! {
    pub enum IstioMetric {
        AllMetrics,
        RequestCount,
        RequestDuration,
        RequestSize,
        ResponseSize,
        TcpOpenedConnections,
        TcpClosedConnections,
        TcpSentBytes,
        TcpReceivedBytes,
        GrpcRequestMessages,
        GrpcResponseMessages,
    }
}

spec! {
    pub struct MetricSelector {
        pub metric: Option<IstioMetric>,
        pub custom_metric: Option<String>,
        pub mode: Option<WorkloadMode>,
    }
}

istio_enum! {
    pub enum TagOperation {
        Upsert,
        Remove,
    }
}

spec! {
    pub struct TagOverride {
        pub operation: Option<TagOperation>,
        pub value: String,
    }
}

spec! {
    pub struct MetricsOverrides {
        #[serde(rename = "match")]
        pub matches: Option<MetricSelector>,
        pub disabled: Option<bool>,
        pub tag_overrides: BTreeMap<String, TagOverride>,
    }
}

spec! {
    pub struct AccessLogging {
        #[serde(rename = "match")]
        pub matches: Option<ModeSelector>,
        pub providers: Vec<ProviderRef>,
        pub disabled: Option<bool>,
        pub filter: Option<AccessLogFilter>,
    }
}

spec! {
    pub struct AccessLogFilter {
        pub expression: String,
    }
}
