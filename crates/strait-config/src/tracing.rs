//! Distributed tracing as one proxy runs it: whether it takes part, how many new traces it
//! samples, where sampled spans go, and which extra tags they carry. Compiled from MeshConfig
//! (`enableTracing`, `defaultConfig.tracing.sampling`, `extensionProviders`,
//! `defaultProviders.tracing`) and the Telemetry API, with Istio's precedence
//! (`strait_model::compile::tracing`).

use serde::{Deserialize, Serialize};

/// Sampling is carried in millionths so the settings stay `Eq` (Istio's percentage is a
/// double with 0.0001 % resolution at best in practice). 1,000,000 = every new trace.
pub const SAMPLING_SCALE: u32 = 1_000_000;

/// A proxy's tracing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracingSettings {
    /// Whether the proxy joins traces (propagates and continues trace context, decides
    /// sampling). Off, trace headers pass untouched, as Envoy without a tracer leaves them.
    /// `x-request-id` is set either way.
    pub enabled: bool,
    /// Share of new traces sampled, in millionths (see [`SAMPLING_SCALE`]). Istio's default
    /// is 1 %. A request arriving with a sampling decision keeps it.
    pub sampling: u32,
    /// Where sampled spans are exported; `None` means spans are decided and propagated but
    /// not reported (no provider, or `disableSpanReporting`).
    pub collector: Option<Collector>,
    /// Extra span attributes (Telemetry `customTags`), in name order.
    pub custom_tags: Vec<CustomTag>,
    /// `istio.mesh_id`, empty when the mesh config names none.
    pub mesh_id: String,
}

impl Default for TracingSettings {
    /// Istio's defaults: tracing on (`enableTracing: true`), 1 % sampled, nowhere to report.
    fn default() -> Self {
        TracingSettings {
            enabled: true,
            sampling: SAMPLING_SCALE / 100,
            collector: None,
            custom_tags: Vec::new(),
            mesh_id: String::new(),
        }
    }
}

/// An OpenTelemetry collector (an `opentelemetry` extension provider).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collector {
    /// The extension provider's name, for logs.
    pub provider: String,
    /// The provider's `service` as written (a hostname or an address), dialled through DNS
    /// when `endpoints` is empty.
    pub service: String,
    pub port: u16,
    /// The addresses (`ip:port`) of the mesh service `service` names, as the control plane
    /// knows them; empty for a name outside the mesh.
    pub endpoints: Vec<String>,
    /// OTLP over gRPC, or over HTTP (protobuf body).
    pub protocol: OtlpProtocol,
    /// Each export's deadline, in milliseconds (the HTTP provider's `timeout`; 5 s otherwise).
    pub timeout_ms: u64,
}

/// How spans reach the collector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    Grpc,
    Http {
        /// Request path (`/v1/traces` by default).
        path: String,
        /// Extra request headers, name and value.
        headers: Vec<(String, String)>,
    },
}

/// One custom span tag: a fixed value, a request header, or the proxy's environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomTag {
    Literal {
        tag: String,
        value: String,
    },
    /// The request header's value, else `default` (no tag when both are empty).
    Header {
        tag: String,
        header: String,
        default: String,
    },
    /// The proxy process's environment variable, else `default`.
    Environment {
        tag: String,
        name: String,
        default: String,
    },
}
