//! `networking.istio.io` Sidecar (the resource): narrows what a sidecar proxy sees and accepts.

use super::common::{LabelSelector, istio_enum, spec};
use super::destination_rule::ConnectionPoolSettings;
use super::gateway::ServerTlsSettings;
use super::virtual_service::Destination;

spec! {
    pub struct SidecarSpec {
        pub workload_selector: Option<LabelSelector>,
        pub ingress: Vec<IngressListener>,
        pub egress: Vec<EgressListener>,
        pub inbound_connection_pool: Option<ConnectionPoolSettings>,
        pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
    }
}

spec! {
    pub struct SidecarPort {
        pub number: u32,
        pub protocol: String,
        pub name: String,
        pub target_port: Option<u32>,
    }
}

istio_enum! {
    pub enum CaptureMode {
        Default,
        Iptables,
        None,
    }
}

spec! {
    pub struct IngressListener {
        pub port: Option<SidecarPort>,
        pub bind: String,
        pub capture_mode: Option<CaptureMode>,
        pub default_endpoint: String,
        pub tls: Option<ServerTlsSettings>,
        pub connection_pool: Option<ConnectionPoolSettings>,
    }
}

spec! {
    pub struct EgressListener {
        pub port: Option<SidecarPort>,
        pub bind: String,
        pub capture_mode: Option<CaptureMode>,
        pub hosts: Vec<String>,
    }
}

istio_enum! {
    pub enum OutboundMode {
        RegistryOnly,
        AllowAny,
    }
}

spec! {
    pub struct OutboundTrafficPolicy {
        pub mode: Option<OutboundMode>,
        /// Deprecated and ignored by Istio.
        pub egress_proxy: Option<Destination>,
    }
}
