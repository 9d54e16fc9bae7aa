//! `networking.istio.io` ServiceEntry, WorkloadEntry and WorkloadGroup: services and workloads
//! that Kubernetes does not know about.

use std::collections::BTreeMap;

use super::common::{LabelSelector, istio_enum, spec};

istio_enum! {
    pub enum Location {
        MeshExternal,
        MeshInternal,
    }
}

istio_enum! {
    pub enum Resolution {
        None,
        Static,
        Dns,
        DnsRoundRobin,
        DynamicDns,
    }
}

spec! {
    pub struct ServiceEntrySpec {
        pub hosts: Vec<String>,
        pub addresses: Vec<String>,
        pub ports: Vec<ServicePort>,
        pub location: Option<Location>,
        pub resolution: Option<Resolution>,
        pub endpoints: Vec<WorkloadEntrySpec>,
        pub workload_selector: Option<LabelSelector>,
        pub export_to: Vec<String>,
        pub subject_alt_names: Vec<String>,
    }
}

impl ServiceEntrySpec {
    pub fn effective_resolution(&self) -> Resolution {
        self.resolution.unwrap_or(Resolution::None)
    }

    pub fn effective_location(&self) -> Location {
        self.location.unwrap_or(Location::MeshExternal)
    }
}

spec! {
    pub struct ServicePort {
        pub number: u32,
        pub protocol: String,
        pub name: String,
        pub target_port: Option<u32>,
    }
}

spec! {
    /// A single non-Kubernetes workload (also the element type of ServiceEntry `endpoints`).
    pub struct WorkloadEntrySpec {
        pub address: String,
        pub ports: BTreeMap<String, u32>,
        pub labels: BTreeMap<String, String>,
        pub network: String,
        pub locality: String,
        pub weight: Option<u32>,
        pub service_account: String,
    }
}

spec! {
    pub struct WorkloadGroupSpec {
        pub metadata: Option<WorkloadGroupMeta>,
        pub template: Option<WorkloadEntrySpec>,
        pub probe: Option<ReadinessProbe>,
    }
}

spec! {
    pub struct WorkloadGroupMeta {
        pub labels: BTreeMap<String, String>,
        pub annotations: BTreeMap<String, String>,
    }
}

spec! {
    pub struct ReadinessProbe {
        pub initial_delay_seconds: Option<i32>,
        pub timeout_seconds: Option<i32>,
        pub period_seconds: Option<i32>,
        pub success_threshold: Option<i32>,
        pub failure_threshold: Option<i32>,
        pub http_get: Option<HttpHealthCheck>,
        pub tcp_socket: Option<TcpHealthCheck>,
        pub exec: Option<ExecHealthCheck>,
        pub grpc: Option<GrpcHealthCheck>,
    }
}

spec! {
    pub struct HttpHealthCheck {
        pub path: String,
        pub port: u32,
        pub host: String,
        pub scheme: String,
        pub http_headers: Vec<HttpHeader>,
    }
}

spec! {
    pub struct HttpHeader {
        pub name: String,
        pub value: String,
    }
}

spec! {
    pub struct TcpHealthCheck {
        pub host: String,
        pub port: u32,
    }
}

spec! {
    pub struct ExecHealthCheck {
        pub command: Vec<String>,
    }
}

spec! {
    pub struct GrpcHealthCheck {
        pub port: u32,
        pub service: String,
    }
}
